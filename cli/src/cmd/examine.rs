//! `examine` (and the text part of `detail`).

use crate::common::{open_dev, CliResult};
use clap::Args;
use mdraid::array::{Array, AssembleReport};
use mdraid::device::FileDevice;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ExamineArgs {
    /// Show the write-intent bitmap instead (mdadm --examine-bitmap / -X).
    #[arg(long, short = 'X')]
    pub examine_bitmap: bool,
    /// Show the bad-block log instead.
    #[arg(long)]
    pub examine_badblocks: bool,
    /// The local host name for "(local to host ...)" (default: this machine's).
    #[arg(long)]
    pub homehost: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Devices or image files.
    #[arg(required = true, value_name = "DEVICE")]
    pub devices: Vec<PathBuf>,
}

pub fn run(a: ExamineArgs) -> CliResult {
    for p in &a.devices {
        let _dev = open_dev(p, true)?;
        todo_report();
    }
    Ok(())
}

fn todo_report() {}

pub fn detail_text(_array: &Array<FileDevice>, _report: &AssembleReport<FileDevice>) -> String {
    String::new()
}
