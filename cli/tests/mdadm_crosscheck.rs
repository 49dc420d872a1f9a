//! Arrays made by mdraid, read by the real mdadm: `mdadm --examine` (and --examine-bitmap,
//! --examine-badblocks) of every member prints exactly what `mdraid examine` prints, across
//! metadata versions, sizes, bitmaps, spares, missing slots, device flags and after writes.
//!
//! Needs Debian's mdadm binary: `MDADM_BIN` (scripts/test.sh unpacks it into .cache/mdadm).
//! Without it the test says so and passes, unless `MDRAID_REQUIRE_MDADM=1` (as in CI).

use mdraid::testutil::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn mdadm_bin() -> Option<PathBuf> {
    let p = std::env::var_os("MDADM_BIN")
        .map(PathBuf::from)
        .filter(|p| p.exists());
    if p.is_none() {
        assert!(
            std::env::var("MDRAID_REQUIRE_MDADM").as_deref() != Ok("1"),
            "MDRAID_REQUIRE_MDADM=1 but MDADM_BIN does not name Debian's mdadm"
        );
        eprintln!(
            "mdadm_crosscheck: MDADM_BIN not set: skipping the comparison with the real mdadm"
        );
    }
    p
}

fn mdraid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn mdadm(bin: &Path, args: &[&str]) -> String {
    let o = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // mdadm writes some lines to stderr; the fixtures captured both, in order of appearance.
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    s
}

fn compare(bin: &Path, img: &str, what: &str) {
    let ours = String::from_utf8_lossy(&mdraid(&["examine", "--homehost", "mdlab", img]).stdout)
        .into_owned();
    let theirs = mdadm(bin, &["--examine", "--homehost=mdlab", img]);
    assert_eq!(ours, theirs, "{what}: {img}");
    let ours = mdraid(&["examine", "--examine-badblocks", img]);
    if ours.status.success() {
        let theirs = mdadm(bin, &["--examine-badblocks", img]);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            theirs,
            "{what}: badblocks of {img}"
        );
    }
}

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
        for img in &images {
            compare(&bin, img, &format!("case {i} after create"));
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
            compared += 1;
        }
    }
    assert_eq!(compared, 19, "every member of every case was compared");
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
