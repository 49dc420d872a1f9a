//! Text reports in mdadm's layouts (`--examine`, `--detail`, `--examine-bitmap`).

pub mod bitmap;
pub mod units;
