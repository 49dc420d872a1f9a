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

pub fn report_json(r: &SyncReport) -> serde_json::Value {
    json!({
        "action": r.action.as_str(),
        "sectors_copied": r.sectors_copied,
        "mismatch_cnt": r.mismatch_cnt,
        "sectors_done": r.sectors_done,
    })
}

pub fn run(kind: SyncKind, a: &SyncArgs) -> CliResult {
    let (mut array, _) = assemble(&a.asm.members, &a.asm.options(false))?;
    let mut bar: Option<ProgressBar> = None;
    let report = array.run_sync(kind, now(), (a.speed_min, a.speed_max), &mut |done, total| {
        let pb = bar.get_or_insert_with(|| progress_bar(kind.as_str(), total).unwrap_or_else(ProgressBar::hidden));
        pb.set_position(done * 512);
    })?;
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    array.stop(now())?;
    if a.json {
        println!("{}", report_json(&report));
    } else {
        eprint!("mdraid: {} done: {} sectors copied", report.action.as_str(), report.sectors_copied);
        if matches!(kind, SyncKind::Check | SyncKind::Repair) {
            eprint!(", mismatch_cnt {}", report.mismatch_cnt);
        }
        eprintln!();
    }
    Ok(())
}
