//! The progress bar on a terminal: it moves while a resync runs and its rate is the real one.
//! A pseudo-terminal comes from util-linux's `script` (Debian: bsdutils, an essential package).

use mdraid::testutil::TempDir;
use std::process::Command;

/// (bytes done, bytes/s) of every frame drawn, in order.
fn frames(out: &str) -> Vec<(f64, f64)> {
    let unit = |n: &str, u: &str| {
        let n: f64 = n.parse().ok()?;
        let m = match u.trim_end_matches("/s") {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1048576.0,
            "GiB" => 1073741824.0,
            "TiB" => 1099511627776.0,
            _ => return None,
        };
        Some(n * m)
    };
    out.split(['\r', '\n', '\x1b'])
        .filter_map(|l| {
            // "  resync [==>   ] 18.81 MiB/299.00 MiB 254.71 MiB/s ETA 1s"
            let rest = l.split_once("] ")?.1;
            let w: Vec<&str> = rest.split_whitespace().collect();
            let (done_n, done_u) = (w.first()?, w.get(1)?.split('/').next()?);
            let rate = unit(w.get(3)?, w.get(4)?)?;
            Some((unit(done_n, done_u)?, rate))
        })
        .collect()
}

#[test]
fn resync_bar_moves_and_reports_the_real_rate() {
    let tmp = TempDir::new("cli-progress");
    let bin = env!("CARGO_BIN_EXE_mdraid");
    let (a, b) = (tmp.path().join("a.img"), tmp.path().join("b.img"));
    for p in [&a, &b] {
        std::fs::File::create(p)
            .unwrap()
            .set_len(256 << 20)
            .unwrap();
    }
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let o = Command::new(bin)
        .args(["create", "-l1", "-n2", "--bitmap=none", a, b])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t0 = std::time::Instant::now();
    let o = Command::new("script")
        .args(["-qec", &format!("{bin} resync {a} {b}"), "/dev/null"])
        .output()
        .expect("util-linux's script runs the resync on a pseudo-terminal");
    let elapsed = t0.elapsed().as_secs_f64();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    assert!(out.contains("resync done"), "{out}");
    let f = frames(&out);
    let mut positions: Vec<u64> = f.iter().map(|x| x.0 as u64).collect();
    positions.dedup();
    assert!(
        positions.len() >= 4,
        "the bar showed only {} distinct positions: {out}",
        positions.len()
    );
    let total = 255.0 * 1048576.0; // a 256 MiB member less 1.2's 1 MiB data offset
    let real = total / elapsed;
    let (_, last_rate) = *f.iter().rev().find(|x| x.0 > 0.0).unwrap();
    assert!(
        last_rate > real / 2.0 && last_rate < real * 2.0,
        "bar rate {last_rate:.0} B/s, real {real:.0} B/s ({elapsed:.2} s)"
    );
}
