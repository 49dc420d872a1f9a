//! `bench`: end-to-end benchmarks, each a ratio against a baseline measured in the same run.

use crate::common::{CliError, CliResult};
use clap::Args;
use mdraid::raid1::driver::bench;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Folder for the io_uring benchmark's files (default: the system's temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON: each benchmark's ratio under its name, the details under "details".
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: BenchArgs) -> CliResult {
    let results = bench::all(a.dir.as_deref());
    let mut ratios = Map::new();
    let mut details = Map::new();
    let mut failed = Vec::new();
    if !a.json {
        println!(
            "{:<32} {:>12} {:>12} {:>8} {:>7}  unit / baseline",
            "benchmark", "value", "baseline", "ratio", "target"
        );
    }
    for (name, r) in results {
        match r {
            Ok(b) => {
                ratios.insert(name.clone(), json!(b.ratio));
                details.insert(
                    name.clone(),
                    serde_json::from_str(&b.to_json()).unwrap_or(Value::Null),
                );
                if !a.json {
                    println!(
                        "{:<32} {:>12.1} {:>12.1} {:>8.3} {:>7.2}  {} / {}",
                        name, b.value, b.baseline, b.ratio, b.target, b.unit, b.baseline_desc
                    );
                }
            }
            Err(e) => {
                // A benchmark that cannot run here (io_uring refused) says so and is left out.
                eprintln!("mdraid: {name}: {e}");
                details.insert(name.clone(), json!({ "error": e.to_string() }));
                // The key is always there; null says it could not be measured here.
                ratios.insert(name.clone(), Value::Null);
                failed.push(name);
            }
        }
    }
    if a.json {
        ratios.insert("details".into(), Value::Object(details));
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Object(ratios)).unwrap_or_default()
        );
    }
    if failed.len() == 4 {
        return Err(CliError("no benchmark could run".into()));
    }
    Ok(())
}
