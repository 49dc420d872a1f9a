//! `create`.

use crate::common::CliResult;
use clap::Args;

#[derive(Args, Debug)]
pub struct CreateArgs {}

pub fn run(_a: CreateArgs) -> CliResult {
    Ok(())
}
