//! `mdraid grow` over image files, read back by Debian's mdadm 4.2: after every grow (bitmap
//! on, off and with a chosen chunk; raid-devices up and down; size up, down and max) `mdadm
//! --examine` of every member and `mdadm --examine-bitmap` of its bitmap print exactly what
//! `mdraid examine` prints, for 0.90, 1.0, 1.1 and 1.2. A grown bitmap on a clean array has no
//! dirty bit; a grown region is resynced (differing garbage on the members beforehand, then
//! `check` finds mismatch_cnt 0 — and with `--assume-clean` it does not), and the data written
//! before every grow reads back unchanged.
//!
//! Needs `MDADM_BIN` (scripts/test.sh unpacks Debian's mdadm into .cache/mdadm). Without it the
//! examine comparisons are skipped (said loudly), unless `MDRAID_REQUIRE_MDADM=1` (as in CI);
//! the mdraid-only assertions run either way.

use mdraid::testutil::TempDir;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

mod support;
use support::{compare_bitmap, mdadm, mdadm_bin, mdraid, mdraid_ok};

/// `mdadm --examine` equals `mdraid examine`; when the member has a bitmap, `mdadm
/// --examine-bitmap` of a copy of it equals `mdraid examine --examine-bitmap` (mdadm finds an
/// internal bitmap only on a block device, so it reads the bitmap area copied out). Returns
/// mdraid's bitmap text, if any.
fn compare(bin: Option<&Path>, img: &str, what: &str) -> Option<String> {
    let ours = mdraid_ok(&["examine", "--homehost", "mdlab", img], what);
    if let Some(bin) = bin {
        let theirs = mdadm(bin, &["--examine", "--homehost=mdlab", img]);
        assert_eq!(ours, theirs, "{what}: examine {img}");
    }
    if !ours.contains("Internal Bitmap") {
        return None;
    }
    Some(match bin {
        Some(bin) => compare_bitmap(bin, img, what),
        None => mdraid_ok(&["examine", "--examine-bitmap", img], what),
    })
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .and_then(|r| r.trim_start().strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// Bytes from a fixed seed (splitmix64).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Different garbage on each member in data bytes `from..to` (array offsets), where the array
/// does not reach (yet): only a resync makes the mirrors agree there.
fn scribble(members: &[String], data_offset_bytes: u64, from: u64, to: u64) {
    use std::os::unix::fs::FileExt;
    for (i, m) in members.iter().enumerate() {
        let f = std::fs::OpenOptions::new().write(true).open(m).unwrap();
        let g = pattern(0xbad0 + i as u64, (to - from) as usize);
        f.write_all_at(&g, data_offset_bytes + from).unwrap();
    }
}

fn write_data(members: &[String], data: &[u8]) {
    let mut args = vec!["write".to_string()];
    args.extend(members.iter().cloned());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "write: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn cat(members: &[&str], len: usize) -> Vec<u8> {
    let mut args = vec!["cat", "--length"];
    let l = len.to_string();
    args.push(&l);
    args.extend(members);
    let o = mdraid(&args);
    assert!(
        o.status.success(),
        "cat: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn check_mismatch(members: &[&str]) -> u64 {
    let mut args = vec!["check", "--json"];
    args.extend(members);
    let out = mdraid_ok(&args, "grow");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["mismatch_cnt"].as_u64().unwrap()
}

/// The array size in KiB as examine prints it (RAID1: the component size).
fn used_kib(ex: &str) -> u64 {
    field(ex, "Array Size")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn grow(members: &[&str], opts: &[&str]) {
    let mut args = vec!["grow", "--run"];
    args.extend(opts);
    args.extend(members);
    mdraid_ok(&args, "grow");
}

#[test]
fn grow_bitmap_devices_and_size_read_back_by_mdadm() {
    let bin = mdadm_bin();
    let bin = bin.as_deref();
    const MIB: u64 = 1 << 20;
    const DEV: u64 = 40 * MIB;
    const USED_KIB: u64 = 20000;
    for (meta, data_offset) in [("1.2", 2048u64), ("1.1", 2048), ("1.0", 0), ("0.90", 0)] {
        let dir = TempDir::new(&format!("grow-{meta}"));
        let imgs: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                let p = dir.path().join(n);
                std::fs::File::create(&p).unwrap().set_len(DEV).unwrap();
                p.to_str().unwrap().to_string()
            })
            .collect();
        let all: Vec<&str> = imgs.iter().map(String::as_str).collect();
        let what = |step: &str| format!("{meta}: {step}");
        let size = USED_KIB.to_string();
        let mut args = vec![
            "create",
            "--level=1",
            "--raid-devices=2",
            "--spare-devices=1",
            "--bitmap=none",
            "--assume-clean",
            "--homehost",
            "mdlab",
            "--metadata",
            meta,
            "--size",
            &size,
        ];
        args.extend(&all);
        mdraid_ok(&args, "grow");
        let data = pattern(7, 3 * MIB as usize);
        write_data(&imgs, &data);

        // Bitmap on: in the space mdadm uses, no dirty bit on a clean array.
        grow(&all, &["--bitmap=internal"]);
        for m in &all {
            let bm = compare(bin, m, &what("bitmap on")).expect("a bitmap after grow");
            assert!(
                bm.contains(", 0 dirty (0.0%)"),
                "{}: {bm}",
                what("bitmap on")
            );
        }
        let ex = mdraid_ok(&["examine", all[0]], "grow");
        match meta {
            "1.2" | "1.1" => assert_eq!(field(&ex, "Internal Bitmap"), "8 sectors from superblock"),
            "1.0" => assert!(field(&ex, "Internal Bitmap").starts_with('-'), "{ex}"),
            _ => assert_eq!(field(&ex, "Internal Bitmap"), "present"),
        }
        let refused = mdraid(&[&["grow", "--bitmap=internal"][..], &all[..]].concat());
        assert!(!refused.status.success(), "a second bitmap must be refused");

        // Bitmap off, then on with a chunk of our choice.
        grow(&all, &["--bitmap=none"]);
        for m in &all {
            assert!(compare(bin, m, &what("bitmap off")).is_none());
        }
        grow(&all, &["--bitmap=internal", "--bitmap-chunk=64K"]);
        for m in &all {
            let bm = compare(bin, m, &what("bitmap 64K")).unwrap();
            assert_eq!(field(&bm, "Chunksize"), "64 KB", "{bm}");
            assert!(bm.contains(", 0 dirty (0.0%)"), "{bm}");
        }

        // Size max: the grown region (garbage, different on each member) is resynced.
        let ex = mdraid_ok(&["examine", all[0]], "grow");
        let scribble_to = if meta == "0.90" {
            // Data runs up to the superblock, 64 KiB before the last 64 KiB boundary.
            (DEV / 65536 - 1) * 65536
        } else {
            let avail: u64 = field(&ex, "Avail Dev Size")
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            avail * 512
        };
        scribble(&imgs[..2], data_offset * 512, USED_KIB * 1024, scribble_to);
        grow(&all, &["--size=max"]);
        for m in &all {
            compare(bin, m, &what("size max"));
        }
        let ex = mdraid_ok(&["examine", all[0]], "grow");
        let grown = used_kib(&ex);
        assert!(
            grown > 2 * USED_KIB - 2048,
            "{}: {grown}K",
            what("size max")
        );
        assert_eq!(
            check_mismatch(&all[..2]),
            0,
            "{}",
            what("check after size max")
        );
        assert_eq!(
            cat(&all[..2], data.len()),
            data,
            "{}",
            what("data after size max")
        );

        // raid-devices 3: the spare fills the new slot.
        grow(&all, &["--raid-devices=3"]);
        for m in &all {
            let ex = mdraid_ok(&["examine", m], "grow");
            assert_eq!(field(&ex, "Raid Devices"), "3");
            compare(bin, m, &what("raid-devices 3"));
        }
        assert_eq!(
            check_mismatch(&all),
            0,
            "{}",
            what("check after raid-devices 3")
        );
        let refused = mdraid(&[&["grow", "--raid-devices=2"][..], &all[..]].concat());
        assert!(
            !refused.status.success(),
            "{}: 3 active members cannot fit 2 slots",
            what("raid-devices 2")
        );
        mdraid_ok(
            &[&["fail", "--device", all[1]][..], &all[..]].concat(),
            "grow",
        );
        mdraid_ok(
            &["remove", "--run", "--device", all[1], all[0], all[2]],
            "grow",
        );
        let left = [all[0], all[2]];
        grow(&left, &["--raid-devices=2"]);
        for m in &left {
            let ex = mdraid_ok(&["examine", m], "grow");
            assert_eq!(field(&ex, "Raid Devices"), "2");
            compare(bin, m, &what("raid-devices 2"));
        }
        assert_eq!(
            check_mismatch(&left),
            0,
            "{}",
            what("check after raid-devices 2")
        );
        assert_eq!(
            cat(&left, data.len()),
            data,
            "{}",
            what("data after raid-devices 2")
        );

        // Shrink, then grow back with --assume-clean over fresh garbage: nothing resynced, so
        // check sees the garbage (the resync above is what made it agree).
        grow(&left, &["--size=10000"]);
        for m in &left {
            compare(bin, m, &what("size 10000"));
            let e = mdraid_ok(&["examine", m], "grow");
            assert_eq!(used_kib(&e), 10000, "{e}");
        }
        assert_eq!(check_mismatch(&left), 0, "{}", what("check after shrink"));
        let left_s: Vec<String> = left.iter().map(|s| s.to_string()).collect();
        scribble(&left_s, data_offset * 512, 10000 * 1024, 15000 * 1024);
        grow(&left, &["--size=15000", "--assume-clean"]);
        for m in &left {
            compare(bin, m, &what("size 15000 assume-clean"));
        }
        assert!(
            check_mismatch(&left) > 0,
            "{}: --assume-clean must not resync",
            what("check after assume-clean")
        );
        assert_eq!(cat(&left, data.len()), data, "{}", what("data at the end"));
    }
}

/// Large sparse members (10 GiB to 2 TiB): the bitmap goes where mdadm puts it for every
/// metadata version (mdadm reads it back), and a size change keeps it readable. Nothing here
/// may resync (the images would stop being sparse): created and grown assume-clean.
#[test]
fn grow_bitmap_on_large_members_read_back_by_mdadm() {
    let bin = mdadm_bin();
    let bin = bin.as_deref();
    const GIB: u64 = 1 << 30;
    for size in [10 * GIB + 3 * 512, 300 * GIB, 2048 * GIB] {
        for meta in ["1.2", "1.1", "1.0", "0.90"] {
            if meta == "0.90" && size > 1024 * GIB {
                continue;
            }
            let dir = TempDir::new(&format!("grow-big-{meta}"));
            let imgs: Vec<String> = ["a", "b"]
                .iter()
                .map(|n| {
                    let p = dir.path().join(n);
                    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
                    p.to_str().unwrap().to_string()
                })
                .collect();
            let all: Vec<&str> = imgs.iter().map(String::as_str).collect();
            let what = format!("{meta} {size}");
            let mut args = vec![
                "create",
                "--level=1",
                "--raid-devices=2",
                "--bitmap=none",
                "--assume-clean",
                "--homehost",
                "mdlab",
                "--metadata",
                meta,
            ];
            args.extend(&all);
            mdraid_ok(&args, "grow");
            grow(&all, &["--bitmap=internal"]);
            for m in &all {
                let bm = compare(bin, m, &format!("{what}: bitmap on")).unwrap();
                assert!(bm.contains(", 0 dirty (0.0%)"), "{what}: {bm}");
            }
            let ex = mdraid_ok(&["examine", all[0]], "grow");
            let kib = used_kib(&ex);
            let half = (kib / 2).to_string();
            grow(&all, &["--size", &half]);
            for m in &all {
                compare(bin, m, &format!("{what}: size {half}"));
            }
            // Back to the old size, assume-clean (a resync would fill the sparse images).
            grow(&all, &["--size", &kib.to_string(), "--assume-clean"]);
            for m in &all {
                let bm = compare(bin, m, &format!("{what}: size {kib}")).unwrap();
                assert!(
                    bm.contains(", 0 dirty (0.0%)"),
                    "{what}: assume-clean: {bm}"
                );
            }
        }
    }
}

/// A size grow whose bits no longer fit the bitmap's space doubles the chunk (md_bitmap_resize);
/// mdadm reads the result as we print it, for 1.2 (the space is what the bitmap occupies) and
/// 0.90 (60 KiB).
#[test]
fn a_grown_size_doubles_a_full_bitmap_chunk() {
    let bin = mdadm_bin();
    let bin = bin.as_deref();
    for (meta, from_kib, to, chunk_after) in [
        ("1.2", "1024", "16M", "8 KB"),
        ("0.90", "1024", "max", "4 KB"),
    ] {
        let dir = TempDir::new(&format!("grow-chunk-{meta}"));
        let imgs: Vec<String> = ["a", "b"]
            .iter()
            .map(|n| {
                let p = dir.path().join(n);
                std::fs::File::create(&p)
                    .unwrap()
                    .set_len(40 << 20)
                    .unwrap();
                p.to_str().unwrap().to_string()
            })
            .collect();
        let all: Vec<&str> = imgs.iter().map(String::as_str).collect();
        let mut args = vec![
            "create",
            "--level=1",
            "--raid-devices=2",
            "--bitmap=internal",
            "--bitmap-chunk=4K",
            "--assume-clean",
            "--homehost",
            "mdlab",
            "--metadata",
            meta,
            "--size",
            from_kib,
        ];
        args.extend(&all);
        mdraid_ok(&args, "grow");
        grow(&all, &["--size", to]);
        for m in &all {
            let bm = compare(bin, m, &format!("{meta}: size {to}")).unwrap();
            assert_eq!(field(&bm, "Chunksize"), chunk_after, "{meta}: {bm}");
            assert!(
                bm.contains(", 0 dirty (0.0%)"),
                "{meta}: after the resync: {bm}"
            );
        }
        assert_eq!(check_mismatch(&all), 0, "{meta}");
    }
}
