//! `mdraid`: an mdadm-like command over image files and block devices.
//!
//! Arrays live only while a command runs: each verb assembles the array from the member devices
//! named on the command line, does its work, and stops it cleanly (superblocks written clean).

mod cmd;
mod common;
mod devnames;

fn main() {
    let (cli, positions) = cmd::parse();
    if let Err(e) = cmd::run(cli, positions) {
        // An empty message means the verb already reported the failure itself.
        if !e.0.is_empty() {
            eprintln!("mdraid: {e:#}");
        }
        std::process::exit(1);
    }
}
