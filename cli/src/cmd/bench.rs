//! `bench`: end-to-end benchmarks, each a ratio against a baseline measured in the same run.
//!
//! The library's (`mdraid::driver::bench::all`: virtual-time engine runs and the machine on the
//! io_uring driver over files), then this command's own: `mdraid write` / `mdraid cat` of
//! 512 MiB, as a user runs them, against the faster of O_DIRECT and buffered `fio` (or `dd`
//! where fio is not installed) on one file.

use crate::common::{CliError, CliResult};
use clap::Args;
use mdraid::driver::bench::{self, BenchDir, BenchError, BenchRatio};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Folder for the benchmarks' files (default: the system's temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON: each benchmark's ratio under its name, the details under "details".
    #[arg(long)]
    pub json: bool,
    /// Run only the benchmarks whose name contains this (repeatable).
    #[arg(long)]
    pub only: Vec<String>,
}

pub fn run(a: BenchArgs) -> CliResult {
    let want = |n: &str| a.only.is_empty() || a.only.iter().any(|o| n.contains(o.as_str()));
    let mut results = bench::all(a.dir.as_deref(), &want);
    if want("cli_write_vs_best") || want("cli_read_vs_best") {
        results.extend(cli_benches(a.dir.as_deref()));
    }
    let mut ratios = Map::new();
    let mut details = Map::new();
    let mut failed = Vec::new();
    if !a.json {
        println!(
            "{:<38} {:>12} {:>12} {:>8} {:>7}  unit / baseline",
            "benchmark", "value", "baseline", "ratio", "target"
        );
    }
    let n = results.len();
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
                        "{:<38} {:>12.1} {:>12.1} {:>8.3} {:>7.2}  {} / {}",
                        name, b.value, b.baseline, b.ratio, b.target, b.unit, b.baseline_desc
                    );
                }
            }
            Err(e) => {
                // A benchmark that cannot run here (io_uring refused, no fio/dd) says so and
                // is left out; the key is always there, null.
                eprintln!("mdraid: {name}: {e}");
                details.insert(name.clone(), json!({ "error": e.to_string() }));
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
    if failed.len() == n {
        return Err(CliError("no benchmark could run".into()));
    }
    Ok(())
}

const CLI_BYTES: u64 = 512 << 20;
const ROUNDS: usize = 3;

fn cli_benches(dir: Option<&Path>) -> Vec<(String, Result<BenchRatio, BenchError>)> {
    let names = ["cli_write_vs_best", "cli_read_vs_best"];
    match cli_pair(dir) {
        Ok((w, r)) => vec![(names[0].into(), Ok(w)), (names[1].into(), Ok(r))],
        Err(e) => {
            let msg = e.to_string();
            vec![
                (names[0].into(), Err(e)),
                (
                    names[1].into(),
                    Err(BenchError::Os(std::io::Error::other(msg))),
                ),
            ]
        }
    }
}

fn other(msg: String) -> BenchError {
    BenchError::Os(std::io::Error::other(msg))
}

/// Runs `cmd` to completion (stdin from `input` if given, output discarded); its wall time.
fn timed(cmd: &mut Command, input: Option<&Path>) -> Result<f64, BenchError> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.stdin(match input {
        Some(p) => Stdio::from(std::fs::File::open(p)?),
        None => Stdio::null(),
    });
    let start = Instant::now();
    let out = cmd.output()?;
    let t = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(other(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(t)
}

/// Writes back and drops `paths` from the page cache (POSIX_FADV_DONTNEED).
fn drop_cache(paths: &[&Path]) -> Result<(), BenchError> {
    use std::os::unix::io::AsRawFd;
    for p in paths {
        let f = std::fs::File::open(p)?;
        f.sync_all()?;
        // SAFETY: posix_fadvise takes an open descriptor (owned by `f`, alive for the call) and
        // plain integers; it touches no memory of ours.
        let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if r != 0 {
            return Err(BenchError::Os(std::io::Error::from_raw_os_error(r)));
        }
    }
    Ok(())
}

fn has(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The baseline tool's command for one file: a write of 512 MiB from `input` or a read.
fn baseline(fio: bool, write: bool, direct: bool, file: &Path, input: &Path) -> Command {
    if fio {
        let mut c = Command::new("fio");
        c.args([
            "--name=base",
            "--bs=1M",
            "--size=512M",
            "--ioengine=io_uring",
        ])
        .arg("--iodepth=32")
        .arg(format!("--filename={}", file.display()))
        .arg(format!("--direct={}", u8::from(direct)))
        .arg(if write { "--rw=write" } else { "--rw=read" })
        .arg("--output=/dev/null");
        if write {
            c.arg("--end_fsync=1");
        }
        c
    } else {
        let mut c = Command::new("dd");
        c.arg("bs=1M").arg("status=none");
        if write {
            c.arg(format!("if={}", input.display()))
                .arg(format!("of={}", file.display()))
                .arg("conv=notrunc,fdatasync");
            if direct {
                c.arg("oflag=direct");
            }
        } else {
            c.arg(format!("if={}", file.display())).arg("of=/dev/null");
            if direct {
                c.arg("iflag=direct");
            }
        }
        c
    }
}

/// `mdraid write` and `mdraid cat` of 512 MiB over two file members (internal bitmap, the
/// default queue depth, request size and I/O mode) against the faster of O_DIRECT and
/// buffered fio (dd without fio) on one file; page cache dropped before every read. Three
/// alternating rounds; each ratio is the median of the rounds' baseline time / mdraid time.
fn cli_pair(dir: Option<&Path>) -> Result<(BenchRatio, BenchRatio), BenchError> {
    let fio = has("fio");
    if !fio && !has("dd") {
        return Err(other("neither fio nor dd is installed".into()));
    }
    let exe = std::env::current_exe()?;
    let d = BenchDir::new(dir, "cli")?;
    let input = d.file("in.bin", CLI_BYTES)?;
    let one = d.file("one.img", CLI_BYTES)?;
    // Room for the data offset and the bitmap in front of 512 MiB of data.
    let a = d.file("a.img", CLI_BYTES + (4 << 20))?;
    let b = d.file("b.img", CLI_BYTES + (4 << 20))?;
    let (sa, sb) = (a.display().to_string(), b.display().to_string());
    let create = [
        "create",
        "--level=1",
        "--raid-devices=2",
        "--metadata=1.2",
        "--bitmap=internal",
        "--assume-clean",
        "--size=524288",
        &sa,
        &sb,
    ];
    timed(Command::new(&exe).args(create), None)?;
    let best = |write: bool| -> Result<f64, BenchError> {
        let mut t = f64::MAX;
        for direct in [true, false] {
            if !write {
                drop_cache(&[&one])?;
            }
            t = t.min(timed(
                &mut baseline(fio, write, direct, &one, &input),
                None,
            )?);
        }
        Ok(t)
    };
    let ours_w = || timed(Command::new(&exe).args(["write", &sa, &sb]), Some(&input));
    let ours_r = || -> Result<f64, BenchError> {
        drop_cache(&[&a, &b])?;
        timed(Command::new(&exe).args(["cat", &sa, &sb]), None)
    };
    let mut out = Vec::new();
    for (write, name, target) in [
        (true, "cli_write_vs_best", 0.8),
        (false, "cli_read_vs_best", 1.9),
    ] {
        let (mut t_ours, mut t_base, mut ratios) = (0.0, 0.0, Vec::new());
        for round in 0..ROUNDS {
            let run = |w: bool| if w { ours_w() } else { ours_r() };
            let (o, b) = if round % 2 == 0 {
                let b = best(write)?;
                (run(write)?, b)
            } else {
                let o = run(write)?;
                (o, best(write)?)
            };
            t_ours += o;
            t_base += b;
            ratios.push(b / f64::max(o, 1e-9));
        }
        ratios.sort_by(|x, y| x.total_cmp(y));
        let ratio = ratios[ratios.len() / 2];
        let base = (ROUNDS as f64 * 512.0) / f64::max(t_base, 1e-9);
        out.push(BenchRatio::new(
            name,
            "MiB/s",
            base * ratio,
            base,
            target,
            ROUNDS as u64,
            (t_ours * 1e9) as u64,
            if fio {
                "faster of O_DIRECT and buffered fio (1 MiB, QD 32) on one file"
            } else {
                "faster of O_DIRECT and buffered dd (1 MiB) on one file"
            },
        ));
    }
    let r = out.pop().ok_or_else(|| other("no result".into()))?;
    let w = out.pop().ok_or_else(|| other("no result".into()))?;
    Ok((w, r))
}
