//! `mdraid assemble --scan` with no devices named: every block device /proc/partitions lists
//! is looked at (mdadm -A --scan without a config file), members are grouped by array UUID and
//! each array is assembled. Two arrays made here on loop devices must be found, each with its
//! own members. Arrays found elsewhere on the machine are allowed in the output (they are not
//! ours to know); none of ours may be reported as failed.
//!
//! Needs root and `losetup`; without them it says so and returns. Its own test binary, so no
//! other test's loop devices are in use while it scans.

use mdraid::testutil::TempDir;
use std::process::{Command, Stdio};

mod support;
use support::Loop;

fn mdraid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn assemble_scan_without_devices_finds_arrays_on_block_devices() {
    let tmp = TempDir::new("cli-scan");
    let mut loops = Vec::new();
    for i in 0..5 {
        let img = tmp.path().join(format!("s{i}.img"));
        std::fs::File::create(&img)
            .unwrap()
            .set_len(24 << 20)
            .unwrap();
        match Loop::new(&img, None) {
            Ok(l) => loops.push(l),
            Err(e) => {
                eprintln!("skipping: {e} (needs root and loop devices)");
                return;
            }
        }
    }
    let dev: Vec<&str> = loops.iter().map(|l| l.0.as_str()).collect();
    let parts = std::fs::read_to_string("/proc/partitions").unwrap();
    for d in &dev {
        let name = d.trim_start_matches("/dev/");
        assert!(
            parts
                .lines()
                .any(|l| l.split_whitespace().last() == Some(name)),
            "{d} not in /proc/partitions"
        );
    }
    let made = |args: &[&str]| {
        let o = mdraid(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    // A 1.2 pair with a name and a 0.90 pair plus a spare; the fifth device is blank.
    made(&[
        "create",
        "-l1",
        "-n2",
        "--name=scanone",
        "--run",
        dev[0],
        dev[1],
    ]);
    made(&[
        "create", "-l1", "-n2", "-e", "0.90", "-x1", "--run", dev[2], dev[3], dev[4],
    ]);
    let o = mdraid(&["assemble", "--scan", "--json"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    for d in &dev {
        assert!(
            !stderr
                .lines()
                .any(|l| l.contains(&format!("{d}:")) || l.contains(&format!("{d},"))),
            "one of our arrays failed: {stderr}"
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&o.stdout)));
    let arrays = v.as_array().expect("one entry per array");
    let members_of = |a: &serde_json::Value| -> Vec<String> {
        let mut m: Vec<String> = a["members"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|m| m["path"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        m.sort();
        m
    };
    let mut want_one = vec![dev[0].to_string(), dev[1].to_string()];
    want_one.sort();
    let mut want_two = vec![dev[2].to_string(), dev[3].to_string(), dev[4].to_string()];
    want_two.sort();
    let found: Vec<Vec<String>> = arrays.iter().map(members_of).collect();
    assert!(found.contains(&want_one), "1.2 array not found: {v}");
    assert!(found.contains(&want_two), "0.90 array not found: {v}");
    // The arrays were stopped clean and still assemble by name.
    made(&["check", dev[0], dev[1]]);
    made(&["check", dev[2], dev[3], dev[4]]);
}
