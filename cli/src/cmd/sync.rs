//! `resync`, `check`, `repair`: run a sync action to completion.

use super::AssembleArgs;
use crate::common::{assemble, now, CliResult};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mdraid::array::{SyncKind, SyncReport};
use serde_json::json;
use std::io::IsTerminal;

#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub asm: AssembleArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Speed limit floor in KiB/s (md's sync_speed_min).
    #[arg(long = "speed-min", default_value_t = 1000)]
    pub speed_min: u64,
    /// Speed limit ceiling in KiB/s (md's sync_speed_max).
    #[arg(long = "speed-max", default_value_t = 200_000)]
    pub speed_max: u64,
}

/// A progress bar on a terminal (rate and ETA), nothing otherwise.
pub fn progress_bar(action: &str, total_sectors: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(total_sectors * 512);
    let style = ProgressStyle::with_template(
        "{prefix:>8} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_prefix(action.to_string());
    Some(pb)
}

/// Makes the engine's speed limit real: when it waits for a deadline (ns on its clock), sleep
/// for the difference from the clock it was at when first asked, and report the time reached.
pub fn real_time_waiter() -> impl FnMut(u64) -> Option<u64> {
    let mut origin: Option<(std::time::Instant, u64)> = None;
    move |deadline| {
        let (t0, c0) = *origin.get_or_insert((std::time::Instant::now(), deadline));
        let target = std::time::Duration::from_nanos(deadline.saturating_sub(c0));
        let elapsed = t0.elapsed();
        if target > elapsed {
            std::thread::sleep(target - elapsed);
        }
        Some(c0 + t0.elapsed().as_nanos() as u64)
    }
}

pub fn report_json(r: &SyncReport) -> serde_json::Value {
    json!({
        "action": r.action.as_str(),
        "sectors_copied": r.sectors_copied,
        "mismatch_cnt": r.mismatch_cnt,
        "sectors_done": r.sectors_done,
    })
}

/// The spares md's recovery check rebuilt into empty slots, as JSON.
pub fn rebuilt_json(rebuilt: &[(String, u32)]) -> serde_json::Value {
    rebuilt
        .iter()
        .map(|(d, slot)| json!({ "device": d, "slot": slot }))
        .collect()
}

/// One line per spare rebuilt into an empty slot.
pub fn print_rebuilt(rebuilt: &[(String, u32)]) {
    for (d, slot) in rebuilt {
        eprintln!("mdraid: {d}: spare rebuilt into slot {slot}");
    }
}

pub fn run(kind: SyncKind, a: &SyncArgs) -> CliResult {
    let (mut array, _) = assemble(&a.asm.members, &a.asm.options(false))?;
    array.set_speed_limits(a.speed_min, a.speed_max);
    let mut bar: Option<ProgressBar> = None;
    let report =
        array.run_sync_with(kind, now(), &mut real_time_waiter(), &mut |done, total| {
            let pb = bar.get_or_insert_with(|| {
                progress_bar(kind.as_str(), total).unwrap_or_else(ProgressBar::hidden)
            });
            pb.set_position(done * 512);
        })?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let rebuilt = rebuilt_json(array.rebuilt_spares());
    print_rebuilt(array.rebuilt_spares());
    array.stop(now())?;
    if a.json {
        let mut v = report_json(&report);
        v["rebuilt"] = rebuilt;
        println!("{v}");
    } else {
        eprint!(
            "mdraid: {} done: {} sectors copied",
            report.action.as_str(),
            report.sectors_copied
        );
        if matches!(kind, SyncKind::Check | SyncKind::Repair) {
            eprint!(", mismatch_cnt {}", report.mismatch_cnt);
        }
        eprintln!();
    }
    Ok(())
}
