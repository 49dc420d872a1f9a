//! `zero-superblock`: mdadm --zero-superblock.

use crate::common::{check_distinct, open_locked, CliError, CliResult};
use clap::Args;
use mdraid::array::update::zero_superblocks;
use mdraid::device::Lock;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ZeroArgs {
    /// Zero even a device another command holds (mdadm's --force opens without O_EXCL).
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Devices or image files.
    #[arg(required = true, value_name = "DEVICE")]
    pub devices: Vec<PathBuf>,
}

/// Each device is held exclusively while its superblocks are zeroed: a member of an array
/// that a running command holds (or a mounted device) is refused in mdadm's words. A device
/// without a superblock is reported and left alone, as mdadm does (and, like mdadm, that is
/// not a failure).
pub fn run(a: &ZeroArgs) -> CliResult {
    check_distinct(a.devices.iter().map(PathBuf::as_path))?;
    let mut failed = 0;
    for p in &a.devices {
        let name = p.display();
        let lock = if a.force { Lock::Unlocked } else { Lock::Auto };
        let mut dev = match open_locked(p, false, lock) {
            Ok(d) => d,
            Err(_) => {
                eprintln!("mdraid: Couldn't open {name} for write - not zeroing");
                failed += 1;
                continue;
            }
        };
        match zero_superblocks(&mut dev) {
            Ok(0) => eprintln!("mdraid: Unrecognised md component device - {name}"),
            Ok(_) => {}
            Err(e) => {
                eprintln!("mdraid: Could not zero superblock on {name}: {e}");
                failed += 1;
            }
        }
    }
    match failed {
        0 => Ok(()),
        _ if a.devices.len() == 1 => Err(CliError(String::new())),
        n => Err(CliError(format!("{n} devices not zeroed"))),
    }
}
