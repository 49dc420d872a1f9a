//! The `mdraid` command against the md fixtures: the same text as mdadm, the same data as md,
//! the same geometry as mdadm's create.

use mdraid::device::FileDevice;
use mdraid::format::bitmap::location_sb1;
use mdraid::format::probe::{probe, Superblock};
use mdraid::testutil::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const DEVNAMES: &str = "254:0=/dev/vda,254:16=/dev/vdb,254:32=/dev/vdc,254:48=/dev/vdd";

fn mdraid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .env("MDRAID_DEVNAMES", DEVNAMES)
        .stdin(Stdio::null())
        .output()
        .expect("run mdraid")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Lines compared with mdadm's: the device header line and Filename are the only ones allowed
/// to differ (they name the image file instead of /dev/vdX).
fn comparable(s: &str) -> Vec<String> {
    s.lines()
        .enumerate()
        .filter(|(i, l)| {
            let header = *i == 0 && l.ends_with(':');
            !(header || l.trim_start().starts_with("Filename :"))
        })
        .map(|(_, l)| l.to_string())
        .collect()
}

fn assert_same_lines(got: &str, want: &str, what: &str) {
    let (g, w) = (comparable(got), comparable(want));
    for (i, (a, b)) in g.iter().zip(w.iter()).enumerate() {
        assert_eq!(a, b, "{what}: line {} differs", i + 1);
    }
    assert_eq!(
        g.len(),
        w.len(),
        "{what}: {} lines, mdadm printed {}\n{got}",
        g.len(),
        w.len()
    );
}

#[test]
fn examine_matches_mdadm_for_every_fixture_member() {
    for fx in fixture_names() {
        for dev in fixture_members(&fx) {
            let img = fixture_image(&fx, &dev);
            let o = mdraid(&["examine", "--homehost", "mdlab", img.to_str().unwrap()]);
            assert!(
                o.status.success(),
                "{fx}/{dev}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_same_lines(
                &text(&o),
                &fixture_text(&fx, &format!("examine-{dev}.txt")),
                &format!("{fx}/{dev} examine"),
            );
        }
    }
}

#[test]
fn examine_bitmap_matches_mdadm_where_there_is_a_bitmap() {
    let mut compared = 0;
    for fx in fixture_names() {
        for dev in fixture_members(&fx) {
            let img = fixture_image(&fx, &dev);
            let want = fixture_text(&fx, &format!("bitmap-{dev}.txt"));
            let o = mdraid(&["examine", "--examine-bitmap", img.to_str().unwrap()]);
            if want.contains("doesn't have bitmap") || want.contains("invalid bitmap magic") {
                // No bitmap (1.0 without one, 0.90): a clear error is what we give.
                assert!(!o.status.success(), "{fx}/{dev}");
                assert!(
                    String::from_utf8_lossy(&o.stderr).contains("doesn't have bitmap"),
                    "{fx}/{dev}"
                );
                continue;
            }
            assert!(
                o.status.success(),
                "{fx}/{dev}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_same_lines(&text(&o), &want, &format!("{fx}/{dev} examine-bitmap"));
            compared += 1;
        }
    }
    assert!(compared >= 15, "only {compared} bitmaps compared");
}

#[test]
fn examine_badblocks_matches_mdadm() {
    let img = fixture_image("r1-badblocks", "vda");
    let o = mdraid(&["examine", "--examine-badblocks", img.to_str().unwrap()]);
    assert!(o.status.success());
    let got = text(&o).replace(img.to_str().unwrap(), "/dev/vda");
    assert_eq!(got, fixture_text("r1-badblocks", "badblocks-vda.txt"));
}

/// The array bytes the fixture's writes produced (zeros elsewhere).
fn expected_array(fx: &str, len: usize) -> Vec<u8> {
    let meta: serde_json::Value = serde_json::from_str(&fixture_text(fx, "fixture.json")).unwrap();
    let mut v = vec![0u8; len];
    for w in meta["writes"].as_array().unwrap() {
        let off = w["array_offset"].as_u64().unwrap() as usize;
        let bytes = w["bytes"].as_u64().unwrap() as usize;
        let p = pattern(
            w["scenario"].as_str().unwrap(),
            w["gen"].as_u64().unwrap() as u32,
            bytes,
        );
        v[off..off + bytes].copy_from_slice(&p);
    }
    v
}

fn member_paths(fx: &str, dir: &Path) -> Vec<String> {
    fixture_members(fx)
        .iter()
        .map(|d| fixture_image_copy(fx, d, dir).to_str().unwrap().to_string())
        .collect()
}

#[test]
fn cat_of_every_assembled_fixture_is_its_pattern() {
    for fx in fixture_names() {
        let tmp = TempDir::new("cli-cat");
        let members = member_paths(&fx, tmp.path());
        let mut args = vec!["cat", "--run"];
        args.extend(members.iter().map(String::as_str));
        let o = mdraid(&args);
        assert!(
            o.status.success(),
            "{fx}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let want = expected_array(&fx, o.stdout.len());
        assert!(
            o.stdout.len() >= 16 << 20,
            "{fx}: only {} bytes",
            o.stdout.len()
        );
        assert!(
            o.stdout == want,
            "{fx}: array bytes differ from the pattern"
        );
        if fx == "r1-degraded-stale" {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("vdb.img") && err.contains("non-fresh"),
                "{err}"
            );
        }
    }
}

#[test]
fn cat_offset_and_length() {
    let tmp = TempDir::new("cli-cat-range");
    let members = member_paths("r1-degraded-stale", tmp.path());
    let o = mdraid(&[
        "cat",
        "--run",
        "--offset",
        "4M",
        "--length",
        "1024",
        &members[0],
        &members[1],
    ]);
    assert!(o.status.success());
    let mut want = pattern("r1-degraded-stale", 2, 1024);
    assert_eq!(o.stdout, want);
    // Past the end: a clear error, no output.
    let o = mdraid(&["cat", "--run", "--offset", "1G", &members[0]]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("beyond"));
    want.clear();
}

/// mdadm's start rule (Assemble.c): without --run the array starts when the members found (in
/// sync plus rebuilding) are at least as many as the freshest superblock records as working.
#[test]
fn degraded_arrays_start_by_mdadms_working_count() {
    // r1-missing records one working disk ("A."); r1-degraded-stale's freshest member (vda)
    // recorded vdb failed and removed ("A."), vdb is non-fresh: mdadm 4.2 starts both with
    // vda alone, without --run.
    for fx in ["r1-missing", "r1-degraded-stale"] {
        let tmp = TempDir::new("cli-run");
        let members = member_paths(fx, tmp.path());
        let mut args = vec!["cat", "--length", "512"];
        args.extend(members.iter().map(String::as_str));
        let o = mdraid(&args);
        assert!(
            o.status.success(),
            "{fx} refused: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // One member of arrays that recorded two working ("AA", 1.2 and 0.90): mdadm refuses
    // without --run; --run starts it.
    for fx in ["r1-v1.2-bitmap", "r1-v0.90"] {
        let tmp = TempDir::new("cli-run1");
        let members = member_paths(fx, tmp.path());
        let mut args = vec!["cat", "--length", "512", &members[0]];
        let o = mdraid(&args);
        assert_eq!(o.status.code(), Some(1), "{fx} started without --run");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("--run") && err.lines().count() == 1,
            "{fx}: {err}"
        );
        args.insert(1, "--run");
        assert!(mdraid(&args).status.success(), "{fx} with --run");
    }
}

/// A refused start says why each device was left out, one line each, and exits 1.
#[test]
fn a_refused_start_lists_the_left_out_devices() {
    let tmp = TempDir::new("cli-refuse");
    let p: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let f = tmp.path().join(format!("{n}.img"));
            std::fs::File::create(&f).unwrap().set_len(8 << 20).unwrap();
            f.to_str().unwrap().to_string()
        })
        .collect();
    let o = mdraid(&[
        "create",
        "--level=1",
        "--raid-devices=3",
        "--metadata=1.2",
        "--assume-clean",
        &p[0],
        &p[1],
        &p[2],
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = mdraid(&["fail", &p[0], &p[1], &p[2], "--device", &p[2]]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // a and b recorded c faulty: two working. Given a and c, only a is usable: refused.
    let o = mdraid(&["cat", "--length", "512", &p[0], &p[2]]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].contains("assembled from 1 drive (out of 3), need 2 to start"),
        "{err}"
    );
    assert_eq!(
        lines[1],
        format!("{} left out: listed as faulty by the freshest member", p[2])
    );
}

#[test]
fn write_then_cat_roundtrip_and_clean_stop() {
    let tmp = TempDir::new("cli-write");
    let members = member_paths("r1-v1.2-bitmap", tmp.path());
    let data = pattern("cli", 9, 64 * 1024);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(["write", "--offset", "1M", &members[0], &members[1]])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = mdraid(&[
        "cat",
        "--offset",
        "1M",
        "--length",
        "64K",
        &members[0],
        &members[1],
    ]);
    assert_eq!(o.stdout, data);
    // Both mirrors hold it, and both superblocks are clean again.
    for m in &members {
        let o = mdraid(&["cat", "--run", "--offset", "1M", "--length", "64K", m]);
        assert_eq!(o.stdout, data, "{m}");
        let ex = text(&mdraid(&["examine", m]));
        assert!(ex.contains("          State : clean"), "{ex}");
    }
}

/// The mdadm --create line of a fixture's scenario, as mdraid create arguments over `paths`.
fn create_args(fx: &str, paths: &[PathBuf]) -> Vec<String> {
    let script = fixture_text(fx, "scenario.sh");
    let line = script
        .lines()
        .find(|l| l.starts_with("mdadm --create"))
        .expect("create line");
    let mut args = vec!["create".to_string()];
    let mut i = 0;
    for w in line.split_whitespace().skip(3) {
        if w.starts_with("</dev/null") {
            break;
        }
        if let Some(d) = w.strip_prefix("/dev/") {
            let idx = ["vda", "vdb", "vdc", "vdd"]
                .iter()
                .position(|x| *x == d)
                .unwrap();
            args.push(paths[idx].to_str().unwrap().to_string());
            i += 1;
        } else {
            args.push(w.to_string());
        }
    }
    assert!(i >= 1);
    args
}

/// The geometry fields of a member superblock, with the bitmap chunk and sync size.
fn geometry_of(path: &Path) -> String {
    let mut dev = FileDevice::open(path).unwrap();
    let f = probe(&mut dev, None).unwrap();
    match f.sb {
        Superblock::V1(s, v) => {
            let bm = location_sb1(&s).map(|off| {
                let mut h = [0u8; 256];
                use mdraid::device::BlockDevice;
                dev.read_at(off, &mut h).unwrap();
                let chunk = u32::from_le_bytes(h[52..56].try_into().unwrap());
                let sync = u64::from_le_bytes(h[40..48].try_into().unwrap());
                (chunk, sync)
            });
            format!(
                "v{v} data_offset={} data_size={} super_offset={} max_dev={} size={} feature_map={:#x} bitmap_offset={} bitmap={bm:?} bblog={}+{} shift={} raid_disks={} dev_number={} role={:?} devflags={}",
                s.data_offset, s.data_size, s.super_offset, s.max_dev, s.size, s.feature_map & !0x8,
                s.bitmap_offset, s.bblog_offset, s.bblog_size, s.bblog_shift, s.raid_disks, s.dev_number, s.role(), s.devflags
            )
        }
        Superblock::V0(s) => format!(
            "v0.90 at={} size={} raid_disks={} nr_disks={} this={:?} state_bitmap={}",
            f.sector,
            s.size,
            s.raid_disks,
            s.nr_disks,
            (s.this_disk.number, s.this_disk.raid_disk),
            s.state & 0x100
        ),
    }
}

#[test]
fn create_reproduces_every_fixture_geometry() {
    for fx in fixture_names() {
        let tmp = TempDir::new("cli-create");
        let meta: serde_json::Value =
            serde_json::from_str(&fixture_text(&fx, "fixture.json")).unwrap();
        let bytes = meta["member_bytes"].as_u64().unwrap();
        let n = fixture_members(&fx).len().max(2);
        let paths: Vec<PathBuf> = (0..n.max(4))
            .map(|i| tmp.path().join(format!("m{i}.img")))
            .collect();
        for p in &paths {
            std::fs::File::create(p).unwrap().set_len(bytes).unwrap();
        }
        let args = create_args(&fx, &paths);
        let o = mdraid(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            o.status.success(),
            "{fx}: {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for (i, dev) in fixture_members(&fx).iter().enumerate() {
            let ours = geometry_of(&paths[i]);
            let theirs = geometry_of(&fixture_image(&fx, dev));
            assert_eq!(ours, theirs, "{fx}/{dev}");
        }
    }
}

/// `mdraid create` over sparse files of sizes no fixture has writes exactly the layout of
/// mdadm's rules (format::geometry, itself checked against hand-derived mdadm values).
#[test]
fn create_over_sparse_files_follows_mdadm_rules_at_every_size() {
    use mdraid::format::geometry::{plan_create, CreateParams};
    use mdraid::format::MetadataVersion;
    const K: u64 = 1024;
    let sizes = [
        1 << 20,
        20000 * K,
        100 << 20,
        (8 << 30) + 512,
        200 << 30,
        2 << 40,
        (16 << 40) - (1 << 20),
    ];
    for size in sizes {
        for (meta, v) in [
            ("1.2", MetadataVersion::V1_2),
            ("1.1", MetadataVersion::V1_1),
            ("1.0", MetadataVersion::V1_0),
            ("0.90", MetadataVersion::V0_90),
        ] {
            let tmp = TempDir::new("cli-sparse");
            let paths: Vec<PathBuf> = (0..2)
                .map(|i| tmp.path().join(format!("{i}.img")))
                .collect();
            for p in &paths {
                std::fs::File::create(p).unwrap().set_len(size).unwrap();
            }
            let (a, b) = (paths[0].to_str().unwrap(), paths[1].to_str().unwrap());
            let o = mdraid(&[
                "create",
                "--level=1",
                "--raid-devices=2",
                &format!("--metadata={meta}"),
                a,
                b,
            ]);
            let plan = plan_create(&CreateParams::new(v, 2), &[size / 512, size / 512]);
            let Ok(plan) = plan else {
                // mdadm refuses too (e.g. 0.90 above 2 TiB, or a member too small): so must we.
                assert!(
                    !o.status.success(),
                    "{meta} {size}: created but mdadm's rules refuse"
                );
                continue;
            };
            assert!(
                o.status.success(),
                "{meta} {size}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let mut dev = FileDevice::open(&paths[0]).unwrap();
            let f = probe(&mut dev, None).unwrap();
            let l = &plan.members[0];
            match f.sb {
                Superblock::V1(s, _) => {
                    let got = (
                        s.data_offset,
                        s.data_size,
                        s.super_offset,
                        s.max_dev,
                        s.size,
                        s.bblog_offset,
                        s.bblog_size,
                    );
                    let want = (
                        l.data_offset,
                        l.data_size,
                        l.super_offset,
                        l.max_dev,
                        plan.size_sectors,
                        l.bblog_offset,
                        l.bblog_size,
                    );
                    assert_eq!(got, want, "{meta} {size}");
                    assert_eq!(
                        s.feature_map & 1 != 0,
                        plan.bitmap.is_some(),
                        "{meta} {size}: bitmap"
                    );
                    if plan.bitmap.is_some() {
                        assert_eq!(Some(s.bitmap_offset), l.bitmap_offset, "{meta} {size}");
                    }
                }
                Superblock::V0(s) => {
                    assert_eq!(f.sector, l.super_offset, "{meta} {size}");
                    assert_eq!(u64::from(s.size) * 2, plan.size_sectors, "{meta} {size}");
                }
            }
        }
    }
}
