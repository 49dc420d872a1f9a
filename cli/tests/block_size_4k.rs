//! Arrays on loop devices with 4 KiB logical sectors (a 4Kn disk): `mdraid create`, a write
//! through O_DIRECT (the CLI's default), a resync, check, fail / re-add and stop all work —
//! the kernel refuses any partial-block I/O, metadata included — and the real mdadm reads
//! every member as `mdraid examine` prints it, bitmap included, for every metadata version.
//!
//! Needs root and `losetup` (loop devices with `--sector-size 4096`); without them it says so
//! and returns. Needs Debian's mdadm (`MDADM_BIN`) for the comparison, as the cross-check does.

use mdraid::testutil::TempDir;
use std::process::{Command, Output, Stdio};

mod support;
use support::{mdadm, mdadm_bin, Loop};

fn mdraid(args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(b) = stdin {
        c.stdin.take().unwrap().write_all(b).unwrap();
    }
    c.wait_with_output().unwrap()
}

fn ok(args: &[&str], stdin: Option<&[u8]>) -> String {
    let o = mdraid(args, stdin);
    assert!(
        o.status.success(),
        "mdraid {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn arrays_on_4k_sector_devices_work_and_mdadm_reads_them() {
    let tmp = TempDir::new("cli-4k");
    let mut loops = Vec::new();
    for i in 0..3 {
        let img = tmp.path().join(format!("m{i}.img"));
        std::fs::File::create(&img)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        match Loop::new(&img, Some(4096)) {
            Ok(l) => loops.push(l),
            Err(e) => {
                eprintln!("skipping: {e} (needs root and loop devices)");
                return;
            }
        }
    }
    let ss = Command::new("blockdev")
        .args(["--getss", &loops[0].0])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ss.stdout).trim(), "4096");
    let (a, b, c) = (loops[0].0.clone(), loops[1].0.clone(), loops[2].0.clone());
    let real = mdadm_bin();
    let data: Vec<u8> = (0..(3 << 20) as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    for meta in ["0.90", "1.0", "1.1", "1.2"] {
        let what = format!("metadata {meta}");
        // c is the replacement below: no superblock of an earlier round on it.
        ok(&["zero-superblock", &c], None);
        let out = ok(
            &[
                "create",
                "-l1",
                "-n2",
                "-e",
                meta,
                "--bitmap=internal",
                "--force",
                &a,
                &b,
            ],
            None,
        );
        assert!(out.contains("array created"), "{what}: {out}");
        ok(&["resync", &a, &b], None);
        ok(&["write", "--direct", &a, &b], Some(&data));
        let back = mdraid(&["cat", "--direct", &a, &b], None);
        assert!(back.status.success(), "{what}: cat failed");
        assert!(
            back.stdout[..data.len()] == data[..],
            "{what}: data differs"
        );
        let check = ok(&["check", &a, &b], None);
        assert!(check.contains("mismatch_cnt 0"), "{what}: {check}");
        // Bytes that are not whole 4 KiB blocks: read-modify-write of the covering blocks.
        let odd: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8 ^ 0x5a).collect();
        ok(
            &["write", "--direct", "--offset", "5000", &a, &b],
            Some(&odd),
        );
        let back = mdraid(&["cat", "--direct", &a, &b], None);
        assert!(back.status.success(), "{what}: cat failed");
        let mut want = data.clone();
        want[5000..6000].copy_from_slice(&odd);
        assert!(
            back.stdout[..want.len()] == want[..],
            "{what}: odd write differs"
        );
        // A member out and back: superblock rounds on one member, a bitmap-based re-add.
        ok(&["fail", &a, &b, "--device", &b], None);
        ok(&["write", "--direct", &a], Some(&want[..1 << 20]));
        ok(&["re-add", &a, "--device", &b], None);
        let check = ok(&["check", &a, &b], None);
        assert!(check.contains("mismatch_cnt 0"), "{what}: {check}");
        // The bitmap off and on again (grow), then a hot replace of a by c: more metadata
        // rounds, a fresh bitmap written whole, a replacement's superblocks.
        ok(&["grow", "--bitmap=none", &a, &b], None);
        ok(&["grow", "--bitmap=internal", &a, &b], None);
        ok(&["replace", &a, &b, "--device", &a, "--with", &c], None);
        let check = ok(&["check", &b, &c], None);
        assert!(check.contains("mismatch_cnt 0"), "{what}: {check}");
        let back = mdraid(&["cat", "--direct", &b, &c], None);
        assert!(
            back.stdout[..want.len()] == want[..],
            "{what}: data after replace"
        );
        ok(&["stop", &b, &c], None);
        if let Some(bin) = &real {
            for dev in [&b, &c] {
                let ours = ok(&["examine", dev], None);
                let theirs = mdadm(bin, &["--examine", dev]);
                assert_eq!(ours, theirs, "{what}: --examine of {dev}");
                assert!(ours.contains("Events"), "{what}: {ours}");
                let ours = ok(&["examine", "--examine-bitmap", dev], None);
                let theirs = mdadm(bin, &["--examine-bitmap", dev]);
                assert_eq!(ours, theirs, "{what}: --examine-bitmap of {dev}");
                assert!(
                    ours.contains("0 dirty"),
                    "{what}: a clean array's bitmap: {ours}"
                );
            }
        }
    }
}
