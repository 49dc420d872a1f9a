//! `resync`, `check`, `repair`: run a sync action to completion, or until SIGINT / SIGTERM
//! stops it at its checkpoint (md's `frozen`): the array is then stopped cleanly with the
//! checkpoint recorded, and the same verb resumes a resync from it.

use super::AssembleArgs;
use crate::common::{assemble, CliError, CliResult};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mdraid::array::{SyncAction, SyncReport, SyncStop};
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

/// The bar of a running sync action, fed by the core's progress callback (sectors done of
/// sectors total). Created at the first report, when the total is known; it redraws on its own
/// (steady tick) between reports, and its position is in bytes so the rate reads in bytes/s.
pub struct SyncBar {
    action: &'static str,
    bar: Option<ProgressBar>,
}

impl SyncBar {
    pub fn new(action: &'static str) -> Self {
        SyncBar { action, bar: None }
    }

    pub fn update(&mut self, done_sectors: u64, total_sectors: u64) {
        let action = self.action;
        let pb = self.bar.get_or_insert_with(|| {
            let pb = progress_bar(action, total_sectors).unwrap_or_else(ProgressBar::hidden);
            pb.enable_steady_tick(std::time::Duration::from_millis(100));
            pb
        });
        pb.set_length(total_sectors * 512);
        pb.set_position(done_sectors * 512);
    }

    /// Position and length, bytes (for tests).
    #[cfg(test)]
    fn position(&self) -> Option<(u64, Option<u64>)> {
        self.bar.as_ref().map(|b| (b.position(), b.length()))
    }

    pub fn finish(self) {
        if let Some(pb) = self.bar {
            pb.finish_and_clear();
        }
    }
}

pub fn report_json(r: &SyncReport) -> serde_json::Value {
    json!({
        "action": r.action.as_str(),
        "sectors_copied": r.sectors_copied,
        "mismatch_cnt": r.mismatch_cnt,
        "sectors_done": r.sectors_done,
        "interrupted": r.interrupted,
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

/// What SIGINT or SIGTERM asks of a running sync action: md's `frozen` (it ends at its
/// checkpoint and nothing restarts it), taken by the driver between member I/Os.
pub(crate) static SIGNAL_STOP: SyncStop = SyncStop::new();

extern "C" fn on_stop_signal(_: libc::c_int) {
    // One atomic store: async-signal-safe.
    SIGNAL_STOP.request(true);
}

/// Lets SIGINT and SIGTERM stop the sync action (a resync, check, repair, or the syncs of
/// add, re-add, replace and grow) instead of killing the process mid-action (which the members
/// survive too, but with the array left dirty): once; a second signal kills at once.
pub(crate) fn stop_on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction with a zeroed struct, an empty mask and a handler that only does
        // an atomic store; SA_RESETHAND puts the default action back after one delivery.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

pub fn run(kind: SyncAction, a: &SyncArgs) -> CliResult {
    let (mut array, _) = assemble(&a.asm.members, &a.asm.options(false))?;
    array.set_speed_limits(a.speed_min, a.speed_max)?;
    let mut bar = SyncBar::new(kind.as_str());
    stop_on_signals();
    let report = array.run_sync_stoppable(
        kind,
        &mut |done, total| bar.update(done, total),
        &SIGNAL_STOP,
    )?;
    bar.finish();
    let rebuilt = rebuilt_json(array.rebuilt_spares());
    print_rebuilt(array.rebuilt_spares());
    let total = array.component_sectors();
    array.stop()?;
    if a.json {
        let mut v = report_json(&report);
        v["rebuilt"] = rebuilt;
        println!("{v}");
    }
    if report.interrupted {
        return Err(CliError(format!(
            "{} interrupted at sector {} of {}: the array was stopped with it recorded{}",
            report.action.as_str(),
            report.sectors_done,
            total,
            if report.action == SyncAction::Resync {
                "; `mdraid resync` resumes it there"
            } else {
                ""
            }
        )));
    }
    if !a.json {
        eprint!(
            "mdraid: {} done: {} sectors copied",
            report.action.as_str(),
            report.sectors_copied
        );
        if matches!(kind, SyncAction::Check | SyncAction::Repair) {
            eprint!(", mismatch_cnt {}", report.mismatch_cnt);
        }
        eprintln!();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn bar_counts_bytes() {
        let mut b = super::SyncBar::new("resync");
        b.update(2048, 8192);
        assert_eq!(b.position(), Some((2048 * 512, Some(8192 * 512))));
        b.update(8192, 8192);
        assert_eq!(b.position(), Some((8192 * 512, Some(8192 * 512))));
        b.finish();
    }
}
