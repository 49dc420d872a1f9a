//! The sync and membership verbs on md's own arrays, with md's names in the JSON.

use mdraid::testutil::*;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

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
