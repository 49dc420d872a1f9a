//! Bad input at the command line: one clear line on stderr, a non-zero exit, never a panic.

use mdraid::testutil::*;
use std::process::{Command, Output, Stdio};

fn mdraid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Fails with exactly one line on stderr that contains every one of `words`.
fn fails_clearly(args: &[&str], words: &[&str]) {
    let o = mdraid(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    for w in words {
        assert!(err.contains(w), "{args:?}: '{w}' not in: {err}");
    }
}

fn blank(dir: &std::path::Path, name: &str, size: u64) -> String {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn clear_errors() {
    let tmp = TempDir::new("cli-errors");
    let a = blank(tmp.path(), "a.img", 32 << 20);
    let b = blank(tmp.path(), "b.img", 32 << 20);
    let tiny = blank(tmp.path(), "tiny.img", 4096);
    let small = blank(tmp.path(), "small.img", 40 << 10);

    fails_clearly(&["examine", &a], &["No md superblock detected on", "a.img"]);
    fails_clearly(&["examine", &tiny], &["No md superblock detected"]);
    fails_clearly(
        &["examine", "/nonexistent/x.img"],
        &["cannot open", "/nonexistent/x.img"],
    );
    fails_clearly(&["cat", &a, &b], &["a.img", "no md superblock"]);
    fails_clearly(
        &["create", "--level=5", "--raid-devices=2", &a, &b],
        &["raid level 5", "RAID1"],
    );
    fails_clearly(
        &["create", "--level=1", "--raid-devices=3", &a, &b],
        &["2 devices given"],
    );
    fails_clearly(
        &[
            "create",
            "--level=1",
            "--raid-devices=2",
            "--metadata=2.0",
            &a,
            &b,
        ],
        &["metadata", "2.0"],
    );
    fails_clearly(
        &[
            "create",
            "--level=1",
            "--raid-devices=2",
            "--bitmap=external",
            &a,
            &b,
        ],
        &["--bitmap=external"],
    );
    // A chunk that is no power of two is a usage error (exit 2), as in mdadm.
    let o = mdraid(&[
        "create",
        "--level=1",
        "--raid-devices=2",
        "--bitmap-chunk=3K",
        &a,
        &b,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid bitmap chunk size '3K'"));
    fails_clearly(
        &["create", "--level=1", "--raid-devices=2", &small, &tiny],
        &["small"],
    );
    fails_clearly(
        &[
            "create",
            "--level=1",
            "--raid-devices=2",
            "missing",
            "missing",
        ],
        &["missing"],
    );

    // An array exists now; creating over it again needs --run.
    assert!(mdraid(&[
        "create",
        "--level=1",
        "--raid-devices=2",
        "--assume-clean",
        &a,
        &b
    ])
    .status
    .success());
    fails_clearly(
        &["create", "--level=1", "--raid-devices=2", &a, &b],
        &["appears to be part of a raid array", "--run"],
    );
    fails_clearly(&["cat", "--offset", "1G", &a, &b], &["beyond"]);
    fails_clearly(&["cat", "--length", "1G", &a, &b], &["run past"]);
    // Usage errors are clap's: exit status 2, the bad value named.
    let o = mdraid(&["cat", "--offset", "12Q", &a, &b]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown size suffix in '12Q'"));

    // Truncate a member so its data area runs past the end: refused with the reason.
    let f = std::fs::OpenOptions::new().write(true).open(&b).unwrap();
    f.set_len(1 << 20).unwrap();
    fails_clearly(&["cat", &b], &["b.img", "data area"]);
    // Its healthy mirror still serves the array degraded, with a note about the refused one.
    let o = mdraid(&["cat", "--run", "--length", "4096", &a, &b]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("b.img left out"));

    // Members of different arrays.
    let c = blank(tmp.path(), "c.img", 32 << 20);
    let d = blank(tmp.path(), "d.img", 32 << 20);
    assert!(mdraid(&[
        "create",
        "--level=1",
        "--raid-devices=2",
        "--assume-clean",
        &c,
        &d
    ])
    .status
    .success());
    fails_clearly(&["cat", &a, &c], &["c.img", "does not match"]);
}
