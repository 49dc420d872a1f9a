//! `replace`: hot-replace a member (mdadm `--replace D [--with S]`).
//!
//! The spare S (a spare of the array, or a new device added as one first; any spare when
//! `--with` is not given) is rebuilt as D's replacement while D keeps serving I/O; when the
//! copy completes D is faulty and S holds its slot. An array assembled from a cut mid-replace
//! finishes the copy it had begun.

use super::AssembleArgs;
use crate::common::{assemble, open_dev, CliError, CliResult};
use clap::Args;
use mdraid::array::{AddOptions, AddOutcome};
use mdraid::device::DeviceIdentity;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ReplaceArgs {
    #[command(flatten)]
    pub asm: AssembleArgs,
    /// The member to replace.
    #[arg(long, short = 'd', value_name = "DEV")]
    pub device: PathBuf,
    /// The spare to rebuild as its replacement (added to the array first when it is not a
    /// member).
    #[arg(long, value_name = "SPARE")]
    pub with: Option<PathBuf>,
    /// Speed limit floor in KiB/s (md's sync_speed_min).
    #[arg(long = "speed-min", default_value_t = 1000)]
    pub speed_min: u64,
    /// Speed limit ceiling in KiB/s (md's sync_speed_max).
    #[arg(long = "speed-max", default_value_t = 200_000)]
    pub speed_max: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Whether `a` and `b` name the same file or block device.
fn same(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (DeviceIdentity::of_path(a), DeviceIdentity::of_path(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

pub fn run(a: &ReplaceArgs) -> CliResult {
    let mut members = a.asm.members.clone();
    let name_of = |members: &[PathBuf], p: &Path| {
        members
            .iter()
            .find(|m| same(m, p))
            .map(|m| m.display().to_string())
    };
    if name_of(&members, &a.device).is_none() {
        members.push(a.device.clone());
    }
    let name = name_of(&members, &a.device).unwrap_or_default();
    let (mut array, _report) = assemble(&members, &a.asm.options(false))?;
    if (a.speed_min, a.speed_max) != (1000, 200_000) {
        // (Waits for the array to be idle: a replace resumed at assembly runs to its end.)
        array.set_speed_limits(a.speed_min, a.speed_max)?;
    }
    let with = match &a.with {
        None => None,
        Some(w) => Some(match name_of(&members, w) {
            Some(n) => n,
            None => {
                // A new device: it joins as a spare first (md's --with needs a spare).
                let n = w.display().to_string();
                let dev = open_dev(w, false)?;
                let opts = AddOptions {
                    device_uuid: Some(crate::cmd::create::random_bytes()),
                    ..Default::default()
                };
                match array.add_member(n.clone(), dev, &opts, &mut |_, _| {})? {
                    AddOutcome::Spare => n,
                    _ => {
                        return Err(CliError(format!(
                        "{n} was rebuilt into an empty slot: no spare left to replace {name} with"
                    )))
                    }
                }
            }
        }),
    };
    let mut bar = crate::cmd::sync::SyncBar::new("replace");
    crate::cmd::sync::stop_on_signals();
    let report = array.replace_member_stoppable(
        &name,
        with.as_deref(),
        &mut |done, total| bar.update(done, total),
        &crate::cmd::sync::SIGNAL_STOP,
    )?;
    bar.finish();
    let replacement = array
        .rebuilt_spares()
        .last()
        .map(|(n, _)| n.clone())
        .unwrap_or_default();
    let v = crate::cmd::lifecycle::array_json_now(&array);
    array.stop()?;
    if report.interrupted {
        return Err(CliError(format!(
            "{name}: the replacement copy was interrupted ({} sectors copied): the array was \
             stopped with it recorded; `mdraid replace` of {name} resumes it",
            report.sectors_copied
        )));
    }
    if a.json {
        println!(
            "{}",
            json!({
                "device": name,
                "replacement": replacement,
                "sectors_copied": report.sectors_copied,
                "array": v,
            })
        );
    } else {
        eprintln!(
            "mdraid: {name}: replaced by {replacement} ({} sectors copied); {name} is faulty",
            report.sectors_copied
        );
    }
    Ok(())
}
