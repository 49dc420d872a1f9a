//! The sync and membership verbs on md's own arrays, with md's names in the JSON.

use mdraid::testutil::*;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

mod support;

fn mdraid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn copies(fx: &str, tmp: &TempDir) -> Vec<String> {
    fixture_members(fx)
        .iter()
        .map(|d| {
            fixture_image_copy(fx, d, tmp.path())
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn resync_of_the_unclean_fixture_copies_16_chunks_and_leaves_it_clean() {
    let tmp = TempDir::new("cli-resync");
    let m = copies("r1-unclean", &tmp);
    let before = String::from_utf8_lossy(&mdraid(&["examine", &m[0]]).stdout).into_owned();
    assert!(before.contains("          State : active"));
    let v = json(&mdraid(&["resync", "--json", &m[0], &m[1]]));
    assert_eq!(v["action"], "resync");
    assert_eq!(v["sectors_copied"], 16 * 128);
    for img in &m {
        let ex = String::from_utf8_lossy(&mdraid(&["examine", img]).stdout).into_owned();
        assert!(ex.contains("          State : clean"), "{ex}");
    }
    // Nothing left to do: a second resync copies nothing.
    let v = json(&mdraid(&["resync", "--json", &m[0], &m[1]]));
    assert_eq!(v["sectors_copied"], 0);
    let v = json(&mdraid(&["check", "--json", &m[0], &m[1]]));
    assert_eq!(
        (v["action"].as_str(), v["mismatch_cnt"].as_u64()),
        (Some("check"), Some(0))
    );
}

#[test]
fn add_of_the_stale_member_re_adds_it() {
    let tmp = TempDir::new("cli-readd");
    let m = copies("r1-degraded-stale", &tmp);
    let v = json(&mdraid(&[
        "add", "--run", "--json", &m[0], "--device", &m[1],
    ]));
    assert!(v["result"].as_str().unwrap().starts_with("re-added"), "{v}");
    let d = json(&mdraid(&["detail", "--json", &m[0], &m[1]]));
    assert_eq!(d["raid_devices"], 2);
    assert_eq!(d["array_size_kib"], 31744);
    let members = d["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    for mem in members {
        assert_eq!(mem["role"], "active");
        assert_eq!(mem["in_sync"], true);
        assert!(mem["slot"].is_u64() && mem["path"].is_string());
    }
    assert!(d["state"].as_str().unwrap().starts_with("clean"));
    // And the re-added member holds gen 2.
    let o = mdraid(&["cat", "--run", "--offset", "4M", "--length", "512", &m[1]]);
    assert_eq!(o.stdout[..], pattern_sector("r1-degraded-stale", 2, 0)[..]);
}

#[test]
fn fail_then_remove_then_re_add() {
    let tmp = TempDir::new("cli-members");
    let m = copies("r1-v1.2-bitmap", &tmp);
    let v = json(&mdraid(&[
        "fail", "--json", &m[0], &m[1], "--device", &m[1],
    ]));
    assert_eq!(v["result"], "faulty");
    // The last mirror cannot fail.
    let o = mdraid(&["fail", "--run", &m[0], "--device", &m[0]]);
    assert!(!o.status.success());
    let d = json(&mdraid(&["detail", "--run", "--json", &m[0], &m[1]]));
    assert_eq!(d["members"].as_array().unwrap().len(), 1, "{d}");
    let v = json(&mdraid(&[
        "remove", "--run", "--json", &m[0], "--device", &m[1],
    ]));
    assert_eq!(v["result"], "removed");
    let v = json(&mdraid(&[
        "re-add", "--run", "--json", &m[0], "--device", &m[1],
    ]));
    assert!(v["result"].as_str().unwrap().starts_with("re-added"), "{v}");
    let v = json(&mdraid(&["check", "--json", &m[0], &m[1]]));
    assert_eq!(v["mismatch_cnt"], 0);
}

#[test]
fn bench_json_has_every_ratio() {
    let o = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(["bench", "--json"])
        .output()
        .unwrap();
    let v = json(&o);
    for k in [
        "sim_read_scaling_2",
        "sim_read_scaling_4",
        "seqwrite_vs_limit",
    ] {
        let r = v[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {v}"));
        assert!(r > 0.0, "{k}: {r}");
    }
    // io_uring may be refused by the environment: then the benchmark says why instead.
    assert!(
        v["uring_randread_qd32_vs_single"].is_f64()
            || v["details"]["uring_randread_qd32_vs_single"]["error"].is_string(),
        "{v}"
    );
}

fn images(tmp: &TempDir, names: &[&str], bytes: u64) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let p = tmp.path().join(format!("{n}.img"));
            std::fs::File::create(&p).unwrap().set_len(bytes).unwrap();
            p.to_str().unwrap().to_string()
        })
        .collect()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `this` line of a 0.90 examine: the member's own record.
fn this_line(img: &str) -> String {
    let ex = String::from_utf8_lossy(&mdraid(&["examine", img]).stdout).into_owned();
    ex.lines()
        .find(|l| l.starts_with("this"))
        .unwrap_or_else(|| panic!("no this line: {ex}"))
        .to_string()
}

/// 0.90: a spare rebuilt by `add` (into the empty slot) and by `fail` (into the freed slot)
/// is recorded active sync in its slot, and the next command starts the array whole.
#[test]
fn a_rebuilt_0_90_spare_becomes_active() {
    let tmp = TempDir::new("cli-sb0-add");
    let m = images(&tmp, &["a", "c"], 32 << 20);
    ok(&mdraid(&[
        "create",
        "--level=1",
        "--raid-devices=2",
        "--metadata=0.90",
        "--assume-clean",
        &m[0],
        "missing",
    ]));
    let err = ok(&mdraid(&["add", "--run", &m[0], "--device", &m[1]]));
    assert!(err.contains("rebuilt"), "{err}");
    let this = this_line(&m[1]);
    assert!(
        this.contains("active sync") && this.split_whitespace().nth(1) == Some("1"),
        "{this}"
    );
    let v = json(&mdraid(&["detail", "--json", &m[0], &m[1]]));
    assert_eq!(v["degraded"], false, "{v}");
    assert!(v["kicked"].as_array().unwrap().is_empty(), "{v}");

    let tmp = TempDir::new("cli-sb0-fail");
    let m = images(&tmp, &["a", "b", "s"], 32 << 20);
    ok(&mdraid(&[
        "create",
        "--level=1",
        "--raid-devices=2",
        "--metadata=0.90",
        "--assume-clean",
        "--spare-devices=1",
        &m[0],
        &m[1],
        &m[2],
    ]));
    ok(&mdraid(&["fail", &m[0], &m[1], &m[2], "--device", &m[1]]));
    let this = this_line(&m[2]);
    assert!(
        this.contains("active sync") && this.split_whitespace().nth(1) == Some("1"),
        "{this}"
    );
    // a and s start without --run: the superblocks record both working.
    ok(&mdraid(&["cat", "--length", "512", &m[0], &m[2]]));
}

/// md's recovery check on a running array: spares go into the empty slots and are rebuilt
/// before the requested action, for 0.90 and 1.2, and the CLI reports which went where.
#[test]
fn spares_present_at_assembly_are_rebuilt_by_any_running_verb() {
    for md in ["0.90", "1.2"] {
        let tmp = TempDir::new("cli-spares");
        let m = images(&tmp, &["d0", "d1", "d2"], 32 << 20);
        let meta = format!("--metadata={md}");
        ok(&mdraid(&[
            "create",
            "--level=1",
            "--raid-devices=3",
            &meta,
            "--spare-devices=2",
            &m[0],
            "missing",
            "missing",
            &m[1],
            &m[2],
        ]));
        // A resync is owed (no --assume-clean): the recovery runs first, then the resync.
        let v = json(&mdraid(&["resync", "--json", &m[0], &m[1], &m[2]]));
        assert_eq!(v["action"], "resync", "{md}: {v}");
        assert_eq!(
            v["rebuilt"],
            serde_json::json!([{"device": m[1], "slot": 1}, {"device": m[2], "slot": 2}]),
            "{md}: {v}"
        );
        let v = json(&mdraid(&["detail", "--json", &m[0], &m[1], &m[2]]));
        assert_eq!(v["degraded"], false, "{md}: {v}");
        let members = v["members"].as_array().unwrap();
        assert!(members.iter().all(|x| x["in_sync"] == true), "{md}: {v}");
        // Nothing left to rebuild: a check reports no spare rebuilt.
        let err = ok(&mdraid(&["check", &m[0], &m[1], &m[2]]));
        assert!(!err.contains("spare rebuilt"), "{md}: {err}");
    }
    // The text form names the spare and the slot (a check, 1.2).
    let tmp = TempDir::new("cli-spares-text");
    let m = images(&tmp, &["d0", "d1"], 32 << 20);
    ok(&mdraid(&[
        "create",
        "--level=1",
        "--raid-devices=2",
        "--metadata=1.2",
        "--assume-clean",
        "--spare-devices=1",
        &m[0],
        "missing",
        &m[1],
    ]));
    let err = ok(&mdraid(&["check", &m[0], &m[1]]));
    assert!(
        err.contains(&format!("mdraid: {}: spare rebuilt into slot 1", m[1])),
        "{err}"
    );
    assert!(err.contains("check done"), "{err}");
}

/// A 1.2 member's resync_offset (its superblock at 4 KiB).
fn resync_offset(img: &str) -> u64 {
    let raw = std::fs::read(img).unwrap();
    mdraid::format::sb1::Superblock1::parse(&raw[4096..8192])
        .unwrap()
        .resync_offset
}

/// The stop a signal asks for: SIGINT or SIGTERM ends the running action at its checkpoint,
/// the array is stopped cleanly with it recorded (md's resync offset), the command fails
/// saying so, and the same verb resumes from the checkpoint.
#[test]
fn a_signal_stops_a_resync_at_its_checkpoint_and_the_next_resync_resumes_there() {
    let tmp = TempDir::new("cli-resync-signal");
    let img = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let (a, b) = (img("a.img"), img("b.img"));
    for (p, fill) in [(&a, 0u8), (&b, 0x5a)] {
        std::fs::write(p, vec![fill; 64 << 20]).unwrap();
    }
    let o = mdraid(&[
        "create",
        "--level=1",
        "--raid-devices=2",
        "--metadata=1.2",
        "--bitmap=none",
        &a,
        &b,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (sig, name) in [("-INT", "SIGINT"), ("-TERM", "SIGTERM")] {
        // Paced at 2 MiB/s: the 64 MiB resync would take half a minute.
        let o = support::mdraid_signalled(
            &[
                "resync",
                "--json",
                "--speed-min=1000",
                "--speed-max=2000",
                &a,
                &b,
            ],
            sig,
            1500,
        );
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains("resync interrupted at sector"),
            "{name}: {err}"
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["interrupted"], true, "{name}: {v}");
        let done = v["sectors_done"].as_u64().unwrap();
        assert!(done > 0, "{name}: nothing done before the signal: {v}");
        for m in [&a, &b] {
            // md's stop with a resync owed: the checkpoint as resync_offset, which mdadm's
            // examine shows only as "active" (clean is a resync_offset of MaxSector).
            assert_eq!(resync_offset(m), done, "{name}");
            let ex = String::from_utf8_lossy(&mdraid(&["examine", m]).stdout).into_owned();
            assert!(ex.contains("          State : active"), "{name}: {ex}");
        }
    }
    // Unpaced, the resync resumes at the last checkpoint and ends there.
    let v = json(&mdraid(&["resync", "--json", &a, &b]));
    assert_eq!(v["interrupted"], false);
    assert_eq!(resync_offset(&a), u64::MAX);
    let ex = String::from_utf8_lossy(&mdraid(&["examine", &a]).stdout).into_owned();
    assert!(ex.contains("          State : clean"), "{ex}");
    let v = json(&mdraid(&["check", "--json", &a, &b]));
    assert_eq!(v["mismatch_cnt"], 0);
}
