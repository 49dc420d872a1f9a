//! `grow`: mdadm --grow for RAID1: add or remove the write-intent bitmap, change the number
//! of slots, change the component size. The array machine does the work; this only parses.

use super::sync::{report_json, SyncBar};
use super::AssembleArgs;
use crate::common::{assemble, parse_bitmap_chunk, parse_md_size_kib, CliError, CliResult, MdSize};
use clap::Args;
use mdraid::array::machine::{BitmapGrow, GrowRequest, GrowSize};
use serde_json::json;

#[derive(Args, Debug)]
pub struct GrowArgs {
    #[command(flatten)]
    pub asm: AssembleArgs,
    /// Add (`internal`) or remove (`none`) the write-intent bitmap.
    #[arg(long, short = 'b', value_name = "internal|none")]
    pub bitmap: Option<String>,
    /// Bitmap chunk size, in mdadm's units: a bare number is KiB; K/M/G/T suffixes (e.g. 64M).
    #[arg(long = "bitmap-chunk", value_parser = parse_bitmap_chunk, value_name = "SIZE")]
    pub bitmap_chunk: Option<u64>,
    /// The new number of slots: new ones are filled from spares and rebuilt (without enough
    /// spares only with --force, degraded); empty ones go (refused while members hold them).
    #[arg(long = "raid-devices", short = 'n', value_name = "N")]
    pub raid_devices: Option<u32>,
    /// The new component size, in mdadm's units (a bare number is KiB), or `max`.
    #[arg(long, short = 'z', value_parser = parse_md_size_kib, value_name = "SIZE")]
    pub size: Option<MdSize>,
    /// With --size: the grown region needs no resync.
    #[arg(long = "assume-clean")]
    pub assume_clean: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn request(a: &GrowArgs) -> CliResult<GrowRequest> {
    let asked = [
        a.bitmap.is_some(),
        a.raid_devices.is_some(),
        a.size.is_some(),
    ];
    if asked.iter().filter(|&&x| x).count() != 1 {
        return Err(CliError(
            "grow: give exactly one of --bitmap, --raid-devices, --size".into(),
        ));
    }
    if a.bitmap_chunk.is_some() && a.bitmap.as_deref() != Some("internal") {
        return Err(CliError("--bitmap-chunk needs --bitmap=internal".into()));
    }
    if a.assume_clean && a.size.is_none() {
        return Err(CliError("--assume-clean goes with --size".into()));
    }
    Ok(match (&a.bitmap, a.raid_devices, a.size) {
        (Some(b), _, _) => GrowRequest::Bitmap(match b.as_str() {
            "internal" => BitmapGrow::Internal {
                chunk_bytes: a.bitmap_chunk,
            },
            "none" => BitmapGrow::None,
            other => {
                return Err(CliError(format!(
                    "--bitmap={other}: only internal or none (no bitmap files)"
                )))
            }
        }),
        (_, Some(n), _) => GrowRequest::RaidDisks {
            n,
            force: a.asm.force,
        },
        (_, _, Some(s)) => GrowRequest::Size {
            size: match s {
                MdSize::Max => GrowSize::Max,
                MdSize::Kib(k) => GrowSize::Sectors(k.saturating_mul(2)),
            },
            assume_clean: a.assume_clean,
        },
        _ => return Err(CliError("grow: nothing to change".into())),
    })
}

pub fn run(a: &GrowArgs) -> CliResult {
    let req = request(a)?;
    let (mut array, _) = assemble(&a.asm.members, &a.asm.options(false))?;
    let mut bar = SyncBar::new("grow");
    crate::cmd::sync::stop_on_signals();
    let report = array.grow_stoppable(
        req,
        &mut |done, total| bar.update(done, total),
        &crate::cmd::sync::SIGNAL_STOP,
    )?;
    bar.finish();
    let (raid_disks, size_kib) = (array.raid_disks(), array.component_sectors() / 2);
    let bitmap = array.bitmap().is_some();
    let stopped = array.sync_frozen();
    array.stop()?;
    if a.json {
        let syncs: Vec<_> = report.syncs.iter().map(report_json).collect();
        println!(
            "{}",
            json!({
                "raid_devices": raid_disks,
                "component_size_kib": size_kib,
                "bitmap": bitmap,
                "syncs": syncs,
            })
        );
    } else {
        if let Some(s) = report.size {
            if s.old_sectors == s.new_sectors {
                eprintln!("mdraid: component size unchanged at {}K", s.new_sectors / 2);
            } else {
                eprintln!(
                    "mdraid: component size has been set to {}K",
                    s.new_sectors / 2
                );
            }
        }
        for s in report.syncs.iter().filter(|s| !s.interrupted) {
            eprintln!(
                "mdraid: {} done: {} sectors copied",
                s.action.as_str(),
                s.sectors_copied
            );
        }
    }
    if stopped {
        let at = report
            .syncs
            .iter()
            .rfind(|s| s.interrupted)
            .map(|s| {
                format!(
                    " ({} interrupted at sector {})",
                    s.action.as_str(),
                    s.sectors_done
                )
            })
            .unwrap_or_default();
        return Err(CliError(format!(
            "the grow's sync was stopped by a signal{at}: the change is made and the array was \
             stopped with the rest recorded; the next command that assembles it resumes it"
        )));
    }
    Ok(())
}
