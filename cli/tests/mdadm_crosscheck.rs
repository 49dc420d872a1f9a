//! Arrays made by mdraid, read by the real mdadm: `mdadm --examine` (and --examine-bitmap,
//! --examine-badblocks) of every member prints exactly what `mdraid examine` prints, across
//! metadata versions, sizes, bitmaps, spares, missing slots, device flags and after writes.
//!
//! Needs Debian's mdadm binary: `MDADM_BIN` (scripts/test.sh unpacks it into .cache/mdadm).
//! Without it the test says so and passes, unless `MDRAID_REQUIRE_MDADM=1` (as in CI).

use mdraid::testutil::TempDir;
use std::process::{Command, Stdio};

mod support;
use support::*;

struct Case {
    metadata: &'static str,
    sizes: &'static [u64],
    extra: &'static [&'static str],
    devices: &'static [&'static str],
}

#[test]
fn mdadm_reads_what_mdraid_writes() {
    let Some(bin) = mdadm_bin() else { return };
    const M: u64 = 1 << 20;
    const G: u64 = 1 << 30;
    let cases = [
        Case {
            metadata: "1.2",
            sizes: &[32 * M],
            extra: &["--bitmap=internal"],
            devices: &["a", "b"],
        },
        Case {
            metadata: "1.1",
            sizes: &[20000 * 1024],
            extra: &["--bitmap=internal"],
            devices: &["a", "b"],
        },
        Case {
            metadata: "1.0",
            sizes: &[100 * M + 3 * 512],
            extra: &["--bitmap=internal", "--bitmap-chunk=1M"],
            devices: &["a", "b"],
        },
        Case {
            metadata: "1.0",
            sizes: &[64 * M],
            extra: &["--bitmap=none"],
            devices: &["a", "b"],
        },
        Case {
            metadata: "0.90",
            sizes: &[33 * M + 512],
            extra: &["--bitmap=none"],
            devices: &["a", "b"],
        },
        Case {
            metadata: "1.2",
            sizes: &[G + 512],
            extra: &[],
            devices: &["a", "missing"],
        },
        Case {
            metadata: "1.2",
            sizes: &[300 * G, 301 * G, 302 * G, 303 * G],
            extra: &["--spare-devices=1", "--raid-devices=3"],
            devices: &["a", "b", "c", "d"],
        },
        Case {
            metadata: "1.2",
            sizes: &[3 * 1024 * G],
            extra: &["--assume-clean"],
            devices: &["a", "--write-mostly", "--failfast", "b"],
        },
        Case {
            metadata: "1.1",
            sizes: &[9 * G],
            extra: &["--bitmap=internal", "--bitmap-chunk=64K"],
            devices: &["a", "b"],
        },
        Case {
            metadata: "0.90",
            sizes: &[20000 * 1024],
            extra: &["--bitmap=internal"],
            devices: &["a", "b"],
        },
        Case {
            metadata: "0.90",
            sizes: &[300 * M + 3 * 512],
            extra: &["--bitmap=internal", "--bitmap-chunk=64K"],
            devices: &["a", "b"],
        },
        Case {
            metadata: "0.90",
            sizes: &[3 * G, 3 * G + 64 * 1024],
            extra: &["--bitmap=internal", "--bitmap-chunk=1M"],
            devices: &["a", "b"],
        },
    ];
    let mut compared = 0;
    for (i, c) in cases.iter().enumerate() {
        let tmp = TempDir::new("xcheck");
        let mut args: Vec<String> = vec![
            "create".into(),
            "--level=1".into(),
            format!("--metadata={}", c.metadata),
        ];
        if !c.extra.iter().any(|e| e.starts_with("--raid-devices")) {
            args.push("--raid-devices=2".into());
        }
        args.extend(["--homehost=mdlab".into(), "--name=xcheck".into()]);
        args.extend(c.extra.iter().map(|s| s.to_string()));
        let mut images = Vec::new();
        let mut k = 0;
        for d in c.devices {
            if d.starts_with("--") || *d == "missing" {
                args.push(d.to_string());
                continue;
            }
            let p = tmp.path().join(format!("{d}.img"));
            std::fs::File::create(&p)
                .unwrap()
                .set_len(c.sizes[k.min(c.sizes.len() - 1)])
                .unwrap();
            k += 1;
            args.push(p.to_str().unwrap().into());
            images.push(p.to_str().unwrap().to_string());
        }
        let o = mdraid(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            o.status.success(),
            "case {i}: {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let bitmap = c.extra.contains(&"--bitmap=internal");
        for img in &images {
            compare(&bin, img, &format!("case {i} after create"));
            if bitmap {
                compare_bitmap(&bin, img, &format!("case {i} after create"));
            }
        }
        // After a write and a clean stop (events, utime, dirty/clean transitions, bitmap bits).
        let mut w = vec!["write", "--run", "--offset", "64K"];
        w.extend(images.iter().map(String::as_str));
        let mut child = Command::new(env!("CARGO_BIN_EXE_mdraid"))
            .args(&w)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&[0x5a; 8192])
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "case {i}: write: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for img in &images {
            compare(&bin, img, &format!("case {i} after write"));
            if bitmap {
                compare_bitmap(&bin, img, &format!("case {i} after write"));
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 25, "every member of every case was compared");
}

/// mdadm's own fixtures, re-read by the binary here, still match ours (guards against a mdadm
/// build that differs from the one that made the fixtures).
#[test]
fn mdadm_and_mdraid_agree_on_the_fixtures() {
    let Some(bin) = mdadm_bin() else { return };
    for fx in mdraid::testutil::fixture_names() {
        for dev in mdraid::testutil::fixture_members(&fx) {
            let img = mdraid::testutil::fixture_image(&fx, &dev);
            compare(&bin, img.to_str().unwrap(), &fx);
        }
    }
}

/// After every sync action and membership change, mdadm reads the superblocks as we print them
/// (clean state, events, roles, bitmap events, bad-block log).
#[test]
fn mdadm_reads_our_superblocks_after_sync_actions() {
    let Some(bin) = mdadm_bin() else { return };
    use mdraid::testutil::{fixture_image_copy, fixture_members};
    let (tu, ts) = (TempDir::new("xcheck-sync-u"), TempDir::new("xcheck-sync-s"));
    let copy = |fx: &str, dir: &TempDir| -> Vec<String> {
        fixture_members(fx)
            .iter()
            .map(|d| {
                fixture_image_copy(fx, d, dir.path())
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let u = copy("r1-unclean", &tu);
    let s = copy("r1-degraded-stale", &ts);
    let steps: Vec<Vec<&str>> = vec![
        vec!["resync", &u[0], &u[1]],
        vec!["check", &u[0], &u[1]],
        vec!["repair", &u[0], &u[1]],
        vec!["fail", &u[0], &u[1], "--device", &u[1]],
        vec!["remove", "--run", &u[0], "--device", &u[1]],
        vec!["re-add", "--run", &u[0], "--device", &u[1]],
        vec!["add", "--run", &s[0], "--device", &s[1]],
    ];
    for st in steps {
        let o = mdraid(&st);
        assert!(
            o.status.success(),
            "{st:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for img in u.iter().chain(s.iter()) {
            compare(&bin, img, &format!("after {st:?}"));
        }
    }
    let ex = mdadm(&bin, &["--examine", &u[0]]);
    assert!(ex.contains("          State : clean"), "{ex}");
}

fn write_stdin(args: &[&str], bytes: usize, what: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&vec![0xa5; bytes])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 0.90 + internal bitmap through a member's life: a degraded write (bits set on the survivor
/// only), then the old member re-added and its dirty chunks copied back; mdadm reads superblocks
/// and bitmaps as we print them at every step.
#[test]
fn mdadm_reads_a_0_90_bitmap_after_degraded_write_and_re_add() {
    let Some(bin) = mdadm_bin() else { return };
    for (size, chunk) in [(64u64 << 20, "64K"), (200 << 20, "1M")] {
        let tmp = TempDir::new("xcheck-v090");
        let imgs: Vec<String> = ["a", "b"]
            .iter()
            .map(|d| {
                let p = tmp.path().join(format!("{d}.img"));
                std::fs::File::create(&p).unwrap().set_len(size).unwrap();
                p.to_str().unwrap().to_string()
            })
            .collect();
        let (a, b) = (imgs[0].as_str(), imgs[1].as_str());
        let what = format!("0.90 {size} bytes, chunk {chunk}");
        let bc = format!("--bitmap-chunk={chunk}");
        mdraid_ok(
            &[
                "create",
                "--level=1",
                "--raid-devices=2",
                "--metadata=0.90",
                "--homehost=mdlab",
                "--bitmap=internal",
                &bc,
                "--assume-clean",
                a,
                b,
            ],
            &what,
        );
        let step = |name: &str, members: &[&str]| {
            for img in members {
                compare(&bin, img, &format!("{what}: {name}"));
                compare_bitmap(&bin, img, &format!("{what}: {name}"));
            }
        };
        step("create", &[a, b]);
        mdraid_ok(&["fail", a, b, "--device", b], &what);
        mdraid_ok(&["remove", "--run", a, "--device", b], &what);
        write_stdin(&["write", "--run", "--offset", "3M", a], 200_000, &what);
        step("degraded write", &[a, b]);
        let bm = mdraid_ok(&["examine", "--examine-bitmap", a], &what);
        assert!(
            !bm.contains(" 0 dirty"),
            "{what}: the degraded write left dirty bits: {bm}"
        );
        mdraid_ok(&["re-add", "--run", a, "--device", b], &what);
        step("re-add", &[a, b]);
        let bm = mdraid_ok(&["examine", "--examine-bitmap", a], &what);
        assert!(
            bm.contains(" 0 dirty"),
            "{what}: clean after the re-add: {bm}"
        );
    }
}

/// A member added to an array whose first member has a bad-block entry: every member's feature
/// map and bad-block log read by mdadm as we print them, and the new member's "bad blocks
/// present" bit set only where its own log has entries.
#[test]
fn mdadm_reads_members_added_next_to_a_bad_block() {
    let Some(bin) = mdadm_bin() else { return };
    use mdraid::testutil::{fixture_image_copy, fixture_members};
    let tmp = TempDir::new("xcheck-bb-add");
    let m: Vec<String> = fixture_members("r1-badblocks")
        .iter()
        .map(|d| {
            fixture_image_copy("r1-badblocks", d, tmp.path())
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let size = std::fs::metadata(&m[0]).unwrap().len();
    let new = |n: &str| {
        let p = tmp.path().join(n);
        std::fs::File::create(&p).unwrap().set_len(size).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (spare, rebuilt) = (new("spare.img"), new("rebuilt.img"));
    let (a, b) = (m[0].as_str(), m[1].as_str());
    let steps: Vec<Vec<&str>> = vec![
        // A spare next to a full array: nothing is copied to it, its log stays empty.
        vec!["add", "--run", a, b, "--device", &spare],
        vec!["fail", a, b, &spare, "--device", b],
        vec!["remove", "--run", a, &spare, "--device", b],
        // Into the free slot; the spare (rebuilt above) and the first member are the sources.
        vec!["add", "--run", a, &spare, "--device", &rebuilt],
    ];
    for st in &steps {
        mdraid_ok(st, &format!("{st:?}"));
        for img in [a, b, spare.as_str(), rebuilt.as_str()] {
            let ex = mdadm(&bin, &["--examine", img]);
            if !ex.contains("Magic : a92b4efc") {
                continue; // not a member yet
            }
            compare(&bin, img, &format!("after {st:?}"));
            let bb = mdadm(&bin, &["--examine-badblocks", img]);
            let has_entries = bb.contains(" for ");
            let bit8 = ex
                .lines()
                .find(|l| l.contains("Feature Map :"))
                .and_then(|l| u32::from_str_radix(l.rsplit("0x").next().unwrap().trim(), 16).ok())
                .map(|f| f & 8 != 0)
                .unwrap();
            assert_eq!(
                bit8, has_entries,
                "after {st:?}: {img}: feature bit 8 vs its log: {bb}"
            );
        }
    }
}

/// After spares are rebuilt (by `add` into an empty slot, by `fail` into the freed slot, and by
/// md's recovery check before a `check`), mdadm reads every member as we print it, for 0.90
/// and 1.2, and shows each rebuilt member active sync in its slot.
#[test]
fn mdadm_reads_rebuilt_spares_as_we_print_them() {
    let Some(bin) = mdadm_bin() else { return };
    let mut compared = 0;
    for md in ["0.90", "1.2"] {
        let tmp = TempDir::new("xcheck-rebuild");
        let img = |n: &str| {
            let p = tmp.path().join(format!("{n}.img"));
            std::fs::File::create(&p)
                .unwrap()
                .set_len(32 << 20)
                .unwrap();
            p.to_str().unwrap().to_string()
        };
        let meta = format!("--metadata={md}");
        let (a, c) = (img("a"), img("c"));
        let (d0, d1, d2) = (img("d0"), img("d1"), img("d2"));
        let (f0, f1, fs) = (img("f0"), img("f1"), img("fs"));
        let steps: Vec<Vec<&str>> = vec![
            vec![
                "create",
                "--level=1",
                "-n2",
                &meta,
                "--assume-clean",
                &a,
                "missing",
            ],
            vec!["add", "--run", &a, "--device", &c],
            vec![
                "create",
                "--level=1",
                "-n3",
                &meta,
                "-x2",
                "--assume-clean",
                &d0,
                "missing",
                "missing",
                &d1,
                &d2,
            ],
            vec!["check", &d0, &d1, &d2],
            vec![
                "create",
                "--level=1",
                "-n2",
                &meta,
                "-x1",
                "--assume-clean",
                &f0,
                &f1,
                &fs,
            ],
            vec!["fail", &f0, &f1, &fs, "--device", &f1],
        ];
        for st in &steps {
            let o = mdraid(st);
            assert!(
                o.status.success(),
                "{st:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        for (img, slot) in [
            (&a, 0),
            (&c, 1),
            (&d0, 0),
            (&d1, 1),
            (&d2, 2),
            (&f0, 0),
            (&fs, 1),
        ] {
            compare(&bin, img, &format!("{md} after the rebuilds"));
            compared += 1;
            let ex = mdadm(&bin, &["--examine", img]);
            let want = if md == "0.90" {
                format!("this     {slot} ")
            } else {
                format!("   Device Role : Active device {slot}\n")
            };
            assert!(ex.contains(&want), "{md} {img}: want {want:?}\n{ex}");
            if md == "0.90" {
                let this = ex.lines().find(|l| l.starts_with("this")).unwrap();
                assert!(this.contains("active sync"), "{img}: {this}");
            }
        }
    }
    assert_eq!(compared, 14);
}

/// Random 4 KiB writes (and reads checked against `model`) with 32 in flight through the array
/// machine on the io_uring driver; `fail_at` fails that member by command mid-workload.
/// Returns the members that failed (notices) and the largest number in flight.
fn uring_workload(
    devs: Vec<(String, mdraid::device::FileDevice)>,
    model: &mut [u8],
    ops: u64,
    seed: u64,
    fail_at: Option<(u64, usize)>,
) -> Option<(Vec<usize>, usize)> {
    use mdraid::array::machine::Notice;
    use mdraid::array::{Array, AssembleOptions};
    use mdraid::driver::uring::{BufId, UringDriver};
    let (a, _) = Array::assemble(
        devs,
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (m, devs) = a.into_machine(mdraid::driver::now()).unwrap();
    let mut drv = uring_or_skip(m, devs, "the concurrent workload")?;
    let blocks = (model.len() / 4096) as u64;
    let mut x = seed | 1;
    let mut rng = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut free: Vec<usize> = (0..32).collect();
    let mut pending = std::collections::HashMap::new();
    let (mut failed, mut max_inflight) = (Vec::new(), 0);
    let reap = |drv: &mut UringDriver,
                pending: &mut std::collections::HashMap<_, (usize, Option<Vec<u8>>)>,
                free: &mut Vec<usize>| {
        let (id, r) = drv.next_completion().unwrap().unwrap();
        r.unwrap();
        let (b, want) = pending.remove(&id).unwrap();
        if let Some(want) = want {
            assert!(drv.buffer(BufId(b)).unwrap() == &want[..], "read back");
        }
        free.push(b);
    };
    for i in 0..ops {
        if free.is_empty() {
            reap(&mut drv, &mut pending, &mut free);
        }
        if let Some((at, member)) = fail_at {
            if i == at {
                drv.fail_member(member).unwrap();
            }
        }
        let b = free.pop().unwrap();
        let blk = rng() % blocks;
        let range = (blk * 4096) as usize..((blk + 1) * 4096) as usize;
        let id = if rng() % 4 == 0 {
            let id = drv.submit_read(blk * 8, 8, BufId(b)).unwrap();
            pending.insert(id, (b, Some(model[range].to_vec())));
            id
        } else {
            let d: Vec<u8> = (0..4096).map(|k| (rng() >> (k % 7)) as u8).collect();
            drv.buffer_mut(BufId(b)).unwrap().copy_from_slice(&d);
            model[range].copy_from_slice(&d);
            let id = drv.submit_write(blk * 8, 8, BufId(b), i % 64 == 0).unwrap();
            pending.insert(id, (b, None));
            id
        };
        let _ = id;
        max_inflight = max_inflight.max(pending.len());
    }
    while !pending.is_empty() {
        reap(&mut drv, &mut pending, &mut free);
    }
    while let Some(n) = drv.poll_event() {
        if let Notice::MemberFailed { member } = n {
            failed.push(member);
        }
    }
    let (m, devs) = drv.stop().unwrap();
    assert!(!m.is_dirty(), "stopped clean");
    drop(devs);
    failed.sort_unstable();
    Some((failed, max_inflight))
}

/// After a concurrent io_uring workload (32 array requests in flight through the machine) in
/// which one member's descriptor refuses writes (the kernel's EBADF on its first superblock
/// write, in a metadata round) and another is failed by command mid-workload, then a remove
/// and re-add of the latter through the blocking path and more io_uring workload: mdadm 4.2
/// reads every member's superblock and bitmap as `mdraid examine` prints them, the re-added
/// mirror is identical to the first, and the array holds every write.
#[test]
fn mdadm_reads_members_after_a_concurrent_uring_workload_failures_and_re_add() {
    let Some(bin) = mdadm_bin() else { return };
    use mdraid::device::{FileDevice, Lock, OpenOptions};
    for md in ["1.2", "0.90"] {
        let tmp = TempDir::new("xcheck-uring");
        let imgs: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|d| {
                let p = tmp.path().join(format!("{d}.img"));
                std::fs::File::create(&p)
                    .unwrap()
                    .set_len(32 << 20)
                    .unwrap();
                p.to_str().unwrap().to_string()
            })
            .collect();
        let (a, b, c) = (imgs[0].as_str(), imgs[1].as_str(), imgs[2].as_str());
        let what = format!("{md} uring");
        let meta = format!("--metadata={md}");
        mdraid_ok(
            &[
                "create",
                "--level=1",
                "--raid-devices=3",
                &meta,
                "--homehost=mdlab",
                "--bitmap=internal",
                "--bitmap-chunk=1M",
                "--assume-clean",
                a,
                b,
                c,
            ],
            &what,
        );
        let open = |p: &str, ro: bool| {
            let o = OpenOptions {
                read_only: ro,
                lock: if ro { Lock::Unlocked } else { Lock::Auto },
                ..Default::default()
            };
            (p.to_string(), FileDevice::open_with(p, o).unwrap())
        };
        let mut model = vec![0u8; 4 << 20];
        let devs = vec![open(a, false), open(b, false), open(c, true)];
        let Some((failed, max)) = uring_workload(devs, &mut model, 1500, 7, Some((600, 1))) else {
            return;
        };
        assert_eq!(failed, vec![1, 2], "{what}: both failures noticed");
        assert!(max >= 32, "{what}: {max} in flight");
        let step = |name: &str| {
            for img in [a, b, c] {
                compare(&bin, img, &format!("{what}: {name}"));
                compare_bitmap(&bin, img, &format!("{what}: {name}"));
            }
        };
        step("workload with failures");
        let bm = mdraid_ok(&["examine", "--examine-bitmap", a], &what);
        assert!(
            !bm.contains(" 0 dirty"),
            "{what}: degraded writes left bits: {bm}"
        );
        mdraid_ok(&["remove", "--run", a, "--device", b], &what);
        mdraid_ok(&["re-add", "--run", a, "--device", b], &what);
        step("re-add");
        let devs = vec![open(a, false), open(b, false)];
        let (failed, max) = uring_workload(devs, &mut model, 800, 11, None).unwrap();
        assert!(failed.is_empty() && max >= 32, "{what}: {failed:?} {max}");
        step("workload after the re-add");
        // The mirrors are identical where it matters (the data areas) and hold every write.
        let data_of = |img: &str| {
            let mut d = FileDevice::open_with(
                img,
                OpenOptions {
                    read_only: true,
                    lock: Lock::Unlocked,
                    ..Default::default()
                },
            )
            .unwrap();
            let found = mdraid::format::probe::probe(&mut d, None).unwrap();
            let off = (found.sb.data_offset() * 512) as usize;
            std::fs::read(img).unwrap()[off..off + model.len()].to_vec()
        };
        let (da, db) = (data_of(a), data_of(b));
        assert!(da == model, "{what}: a holds every write");
        assert!(db == model, "{what}: the re-added b is identical");
        let check = mdraid_ok(&["check", "--json", a, b], &what);
        assert!(check.contains("\"mismatch_cnt\":0"), "{what}: {check}");
    }
}

/// The examine edge cases (altered fixture superblocks, `mdraid::testutil::edge`) run through
/// the real mdadm: each altered image is written out and `mdadm --examine` of it must print
/// exactly what `mdraid examine` prints (not only what mdadm once printed).
#[test]
fn the_examine_edge_cases_against_the_real_mdadm() {
    let Some(bin) = mdadm_bin() else { return };
    let tmp = TempDir::new("edge");
    for case in mdraid::testutil::edge::CASES {
        let (_, img, _) = mdraid::testutil::edge::edge_image(case);
        let path = tmp.path().join(format!("{case}.img"));
        std::fs::write(&path, &img).unwrap();
        let p = path.to_str().unwrap();
        let ours = mdraid(&["examine", "--homehost", "mdlab", p]);
        let theirs = Command::new(&bin)
            .args(["--examine", "--homehost=mdlab", p])
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let mut want = String::from_utf8_lossy(&theirs.stdout).into_owned();
        want.push_str(&String::from_utf8_lossy(&theirs.stderr));
        let mut got = String::from_utf8_lossy(&ours.stdout).into_owned();
        got.push_str(&String::from_utf8_lossy(&ours.stderr));
        assert_eq!(got, want, "edge case {case}");
        // Both agree on whether examine succeeded.
        assert_eq!(ours.status.success(), theirs.status.success(), "{case}");
    }
}
