//! `fail`, `remove`, `add`, `re-add`: manage one member of the array.

use super::AssembleArgs;
use crate::common::{assemble, open_dev, CliError, CliResult};
use clap::Args;
use mdraid::array::{AddOptions, AddOutcome, Array};
use mdraid::device::{DeviceIdentity, FileDevice};
use mdraid::format::probe::probe;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct MemberArgs {
    #[command(flatten)]
    pub asm: AssembleArgs,
    /// The member device to act on.
    #[arg(long, short = 'd', value_name = "DEV")]
    pub device: PathBuf,
    /// The added device is write-mostly.
    #[arg(long = "write-mostly")]
    pub write_mostly: bool,
    /// The added device is failfast.
    #[arg(long)]
    pub failfast: bool,
    /// The added device is not failfast.
    #[arg(long)]
    pub nofailfast: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Fail,
    Remove,
    Add,
    ReAdd,
}

/// A device holding another array's superblock is that array's member: adding it here would
/// take it from that array, so it needs --force (mdadm's wording for such devices).
fn refuse_foreign(
    dev: &mut FileDevice,
    name: &str,
    array: &Array<FileDevice>,
    force: bool,
) -> CliResult {
    let ours = array.lead_superblock().uuid();
    match probe(dev, None) {
        Ok(found) if found.sb.uuid() != ours && !force => Err(CliError(format!(
            "{name} appears to be part of another array (UUID {}), use --force to add it anyway",
            mdraid::format::uuid::format_bytes(&found.sb.uuid())
        ))),
        _ => Ok(()),
    }
}

pub fn run(verb: Verb, a: &MemberArgs) -> CliResult {
    let name = a.device.display().to_string();
    // The device acted on is assembled with the others when it is a member (fail), and left
    // out otherwise (remove, add, re-add take it separately).
    // "The same device" is the same file or block device, whatever path names it.
    let same = |m: &PathBuf| {
        m == &a.device
            || matches!(
                (DeviceIdentity::of_path(m), DeviceIdentity::of_path(&a.device)),
                (Ok(x), Ok(y)) if x == y
            )
    };
    let mut members = a.asm.members.clone();
    if verb == Verb::Fail && !members.iter().any(same) {
        members.push(a.device.clone());
    }
    members.retain(|m| verb == Verb::Fail || !same(m));
    let (mut array, report) = assemble(&members, &a.asm.options(false))?;
    // A recovery stopped by a signal: where.
    let mut interrupted = None;
    let outcome = match verb {
        Verb::Fail => {
            array.fail_member(&name)?;
            match array.last_sync() {
                // md rebuilds onto a spare at once.
                Some(r) if r.action == mdraid::array::SyncAction::Recovery => {
                    format!(
                        "faulty; a spare was rebuilt ({} sectors copied)",
                        r.sectors_copied
                    )
                }
                _ => "faulty".to_string(),
            }
        }
        Verb::Remove => {
            // A failed member was left out at assembly (its superblock lost to the survivors);
            // it is removed by forgetting its slot in their role tables.
            let dev = open_dev(&a.device, true)?;
            array.remove_member(&name, Some(dev))?;
            "removed".to_string()
        }
        Verb::Add | Verb::ReAdd => {
            let mut dev = open_dev(&a.device, false)?;
            refuse_foreign(&mut dev, &name, &array, a.asm.force)?;
            let opts = AddOptions {
                write_mostly: a.write_mostly,
                failfast: a.failfast && !a.nofailfast,
                re_add_only: verb == Verb::ReAdd,
                device_uuid: Some(crate::cmd::create::random_bytes()),
            };
            let mut bar = crate::cmd::sync::SyncBar::new("recovery");
            crate::cmd::sync::stop_on_signals();
            let out = array.add_member_stoppable(
                name.clone(),
                dev,
                &opts,
                &mut |done, total| bar.update(done, total),
                &crate::cmd::sync::SIGNAL_STOP,
            )?;
            bar.finish();
            match out {
                AddOutcome::Spare => "spare".to_string(),
                AddOutcome::Rebuilt(r) | AddOutcome::ReAdded(r) if r.interrupted => {
                    interrupted = Some(r.sectors_done);
                    format!("recovery interrupted ({} sectors copied)", r.sectors_copied)
                }
                AddOutcome::Rebuilt(r) => format!("rebuilt ({} sectors copied)", r.sectors_copied),
                AddOutcome::ReAdded(r) => format!("re-added ({} sectors copied)", r.sectors_copied),
            }
        }
    };
    let _ = report;
    let v = crate::cmd::lifecycle::array_json_now(&array);
    let rebuilt = crate::cmd::sync::rebuilt_json(array.rebuilt_spares());
    crate::cmd::sync::print_rebuilt(array.rebuilt_spares());
    array.stop()?;
    if a.json {
        println!(
            "{}",
            json!({ "device": name, "result": outcome, "array": v, "rebuilt": rebuilt })
        );
    } else {
        eprintln!("mdraid: {name}: {outcome}");
    }
    if let Some(at) = interrupted {
        return Err(CliError(format!(
            "{name}: the recovery was interrupted at sector {at}: the array was stopped with it \
             recorded; assembling the array resumes it there"
        )));
    }
    if verb == Verb::ReAdd && outcome == "spare" {
        return Err(CliError(format!("{name} could not be re-added")));
    }
    Ok(())
}
