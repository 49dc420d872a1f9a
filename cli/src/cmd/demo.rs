//! `demo`: the README's main job.

use crate::common::CliResult;
use clap::Args;

#[derive(Args, Debug)]
pub struct DemoArgs {}

pub fn run(_a: DemoArgs) -> CliResult {
    Ok(())
}
