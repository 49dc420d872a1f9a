//! The rest of mdadm's surface over image files, held against Debian's mdadm 4.2:
//!
//! - `examine --brief` prints what `mdadm --examine --brief` prints, for every metadata
//!   version, several arrays at once, spares, and the md fixtures (read in place);
//!   `detail --brief` names the array as mdadm's brief lines do;
//! - `assemble --update=...` leaves superblocks and bitmaps that `mdadm --examine` /
//!   `--examine-bitmap` print exactly as `mdraid examine` does, with mdadm's meaning;
//! - `zero-superblock` writes the same bytes as `mdadm --zero-superblock`, both examine the
//!   result alike, and a member held by a running command is refused;
//! - every assembling verb under `--readonly` leaves every member byte-identical;
//! - `assemble --scan` groups the devices by array and assembles each.
//!
//! Needs Debian's mdadm binary: `MDADM_BIN` (scripts/test.sh unpacks it into .cache/mdadm).
//! Without it the mdadm comparisons say so and pass, unless `MDRAID_REQUIRE_MDADM=1` (CI).

use mdraid::testutil::{
    fixture_image, fixture_image_copy, fixture_members, fixture_names, TempDir,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn mdadm_bin() -> Option<PathBuf> {
    let p = std::env::var_os("MDADM_BIN")
        .map(PathBuf::from)
        .filter(|p| p.exists());
    let Some(bin) = p else {
        assert!(
            std::env::var("MDRAID_REQUIRE_MDADM").as_deref() != Ok("1"),
            "MDRAID_REQUIRE_MDADM=1 but MDADM_BIN does not name Debian's mdadm"
        );
        eprintln!("surface: MDADM_BIN not set: skipping the comparison with the real mdadm");
        return None;
    };
    let o = Command::new(&bin).arg("--version").output().unwrap();
    let v = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        v.starts_with("mdadm - v4.2 "),
        "{} is not mdadm 4.2: {v}",
        bin.display()
    );
    Some(bin)
}

fn mdraid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mdraid_ok(args: &[&str]) -> String {
    let o = mdraid(args);
    assert!(o.status.success(), "mdraid {args:?}: {}", err(&o));
    out(&o)
}

/// mdadm's stdout then stderr, and its exit status.
fn mdadm(bin: &Path, args: &[&str]) -> (String, i32) {
    let o = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let mut s = out(&o);
    s.push_str(&err(&o));
    (s, o.status.code().unwrap_or(-1))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Creates an array of `metadata` over new 12 MiB images `names` in `dir` (the last
/// `spares` of them spares), with an internal bitmap.
fn create(
    dir: &Path,
    metadata: &str,
    names: &[&str],
    spares: usize,
    extra: &[&str],
) -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(format!("{n}.img"))).collect();
    for p in &paths {
        std::fs::File::create(p).unwrap().set_len(12 << 20).unwrap();
    }
    let active = paths.len() - spares;
    let raid = format!("--raid-devices={active}");
    let meta = format!("--metadata={metadata}");
    let mut args = vec!["create", "--level=1", &raid, &meta, "--homehost=box"];
    args.extend_from_slice(extra);
    let strs: Vec<&str> = paths.iter().map(|p| s(p)).collect();
    args.extend_from_slice(&strs[..active]);
    let sp = format!("--spare-devices={spares}");
    if spares > 0 {
        args.push(&sp);
        args.extend_from_slice(&strs[active..]);
    }
    mdraid_ok(&args);
    paths
}

fn bytes_of(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The member's bitmap area as a file of its own, and the metadata name for mdadm's `-e`
/// (mdadm finds an internal bitmap only on a block device; on a file it reads from byte 0).
fn extract_bitmap(img: &Path, out: &Path) -> Option<&'static str> {
    use mdraid::device::{BlockDevice, FileDevice};
    use mdraid::format::bitmap::{location_sb0, location_sb1, BitmapSuper};
    use mdraid::format::probe::{probe, Superblock};
    use mdraid::format::MetadataVersion;
    let mut dev = FileDevice::open(img).unwrap();
    let found = probe(&mut dev, None).ok()?;
    let (off, meta) = match &found.sb {
        Superblock::V0(s) => (location_sb0(s, found.dev_sectors), "0.90"),
        Superblock::V1(s, MetadataVersion::V1_0) => (location_sb1(s), "1.0"),
        Superblock::V1(s, MetadataVersion::V1_1) => (location_sb1(s), "1.1"),
        Superblock::V1(s, _) => (location_sb1(s), "1.2"),
    };
    let off = off?;
    let mut head = [0u8; 256];
    dev.read_at(off, &mut head).unwrap();
    let h = BitmapSuper::decode(&head).unwrap();
    let want = (256 + h.chunks().div_ceil(8)).div_ceil(4096) * 4096;
    let mut buf = vec![0u8; want.min(dev.size() - off) as usize];
    dev.read_at(off, &mut buf).unwrap();
    std::fs::write(out, &buf).unwrap();
    Some(meta)
}

/// `mdadm --examine` and (where there is a bitmap) `--examine-bitmap` of `img` equal
/// `mdraid examine` and `examine --examine-bitmap`.
fn same_examine(bin: &Path, img: &Path, what: &str) {
    let ours = mdraid_ok(&["examine", "--homehost", "box", s(img)]);
    let (theirs, _) = mdadm(bin, &["--examine", "--homehost=box", s(img)]);
    assert_eq!(ours, theirs, "{what}: examine {}", img.display());
    let copy = img.with_extension("bitmap");
    if let Some(meta) = extract_bitmap(img, &copy) {
        let ours = mdraid_ok(&["examine", "--examine-bitmap", s(img)]).replace(
            &format!("        Filename : {}\n", s(img)),
            &format!("        Filename : {}\n", s(&copy)),
        );
        let (theirs, _) = mdadm(bin, &["--examine-bitmap", "-e", meta, s(&copy)]);
        assert_eq!(ours, theirs, "{what}: examine-bitmap {}", img.display());
        std::fs::remove_file(&copy).unwrap();
    }
}

/// The value of `key :` in mdadm's examine text.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.trim_start().starts_with(&format!("{key} :")))
        .map(|l| l.split_once(" : ").unwrap().1.to_string())
}

const METADATA: [&str; 4] = ["0.90", "1.0", "1.1", "1.2"];

#[test]
fn examine_brief_equals_mdadm_for_every_metadata_version_and_the_fixtures() {
    let Some(bin) = mdadm_bin() else { return };
    let dir = TempDir::new("brief");
    let mut all = Vec::new();
    for (i, m) in METADATA.iter().enumerate() {
        let tag = m.replace('.', "");
        let names: Vec<String> = (0..3).map(|k| format!("m{tag}-{k}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        // Every other array has a spare; one name needs mdadm's quoting and escaping.
        let name = if i == 2 {
            "my data/x".to_string()
        } else {
            format!("d{tag}")
        };
        let nm = format!("--name={name}");
        let paths = create(dir.path(), m, &refs, i % 2, &["--bitmap=internal", &nm]);
        let strs: Vec<&str> = paths.iter().map(|p| s(p)).collect();
        let ours = mdraid_ok(&[&["examine", "--brief"][..], &strs].concat());
        let (theirs, _) = mdadm(&bin, &[&["--examine", "--brief"][..], &strs].concat());
        assert_eq!(ours, theirs, "metadata {m}");
        assert!(ours.starts_with("ARRAY "), "{ours}");
        all.extend(paths);
    }
    // Four arrays' members interleaved, plus a device with no superblock: one line per array,
    // in mdadm's order, the blank device passed over in silence.
    let blank = dir.path().join("blank.img");
    std::fs::File::create(&blank)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    all.sort();
    all.insert(3, blank);
    let strs: Vec<&str> = all.iter().map(|p| s(p)).collect();
    let ours = mdraid_ok(&[&["examine", "--brief"][..], &strs].concat());
    let (theirs, _) = mdadm(&bin, &[&["--examine", "--brief"][..], &strs].concat());
    assert_eq!(ours, theirs, "interleaved arrays");
    assert_eq!(ours.matches("ARRAY ").count(), 4, "{ours}");
    // The fixtures made by real mdadm, in place (decompressed once into the cache).
    for fx in fixture_names() {
        let imgs: Vec<PathBuf> = fixture_members(&fx)
            .iter()
            .map(|d| fixture_image(&fx, d))
            .collect();
        let strs: Vec<&str> = imgs.iter().map(|p| s(p)).collect();
        let ours = mdraid_ok(&[&["examine", "--brief"][..], &strs].concat());
        let (theirs, _) = mdadm(&bin, &[&["--examine", "--brief"][..], &strs].concat());
        assert_eq!(ours, theirs, "fixture {fx}");
    }
}

#[test]
fn detail_brief_is_mdadms_array_line() {
    let Some(bin) = mdadm_bin() else { return };
    let dir = TempDir::new("dbrief");
    for (i, m) in METADATA.iter().enumerate() {
        let tag = m.replace('.', "");
        let names: Vec<String> = (0..3).map(|k| format!("m{tag}-{k}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let spares = i % 2;
        let paths = create(
            dir.path(),
            m,
            &refs,
            spares,
            &["--name=data", "--assume-clean"],
        );
        let strs: Vec<&str> = paths.iter().map(|p| s(p)).collect();
        let ours = mdraid_ok(&[&["detail", "--brief"][..], &strs].concat());
        // mdadm's Detail prints the device, metadata, spares, then brief_detail_super: the
        // name and UUID as its examine --brief line has them.
        let (eb, _) = mdadm(&bin, &[&["--examine", "--brief"][..], &strs].concat());
        let token = |k: &str| {
            eb.split_whitespace()
                .find_map(|t| t.strip_prefix(k).map(String::from))
                .unwrap_or_else(|| panic!("{k} in {eb}"))
        };
        let uuid = token("UUID=");
        let mut want = if *m == "0.90" {
            "ARRAY /dev/md0 metadata=0.90".to_string()
        } else {
            format!("ARRAY /dev/md/data metadata={m}")
        };
        if spares > 0 {
            want += &format!(" spares={spares}");
        }
        if *m != "0.90" {
            want += &format!(" name={}", token("name="));
        }
        want += &format!(" UUID={uuid}\n");
        assert_eq!(ours, want, "metadata {m}");
    }
}

/// The updates mdadm 4.2 understands for a metadata, and what `mdadm --examine` must show
/// after each (beyond printing exactly what mdraid prints).
#[test]
fn update_on_assembly_is_what_mdadm_reads() {
    let Some(bin) = mdadm_bin() else { return };
    let dir = TempDir::new("update");
    let new_uuid = "01234567:89abcdef:fedcba98:76543210";
    let updates: &[(&str, &[&str])] = &[
        ("uuid", &["--uuid", new_uuid]),
        ("uuid", &[]),
        ("name", &["--name=renamed"]),
        ("homehost", &["--homehost=newhost"]),
        ("resync", &[]),
        ("devicesize", &[]),
        ("no-bitmap", &[]),
    ];
    for m in METADATA {
        for (k, (update, extra)) in updates.iter().enumerate() {
            let what = format!("{m} --update={update} {extra:?}");
            let tag = format!("u{}-{k}", m.replace('.', ""));
            let names = [format!("{tag}a"), format!("{tag}b"), format!("{tag}c")];
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let paths = create(
                dir.path(),
                m,
                &refs,
                1,
                &["--bitmap=internal", "--name=data"],
            );
            // Grown members (1.1/1.2 keep their superblock at the start; 0.90 and 1.0 would
            // lose theirs at the end, and mdadm refuses devicesize for them anyway).
            if *update == "devicesize" && (m == "1.1" || m == "1.2") {
                for p in &paths {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(p)
                        .unwrap()
                        .set_len(16 << 20)
                        .unwrap();
                }
            }
            let strs: Vec<&str> = paths.iter().map(|p| s(p)).collect();
            let before: Vec<String> = strs
                .iter()
                .map(|p| mdadm(&bin, &["--examine", "--homehost=box", p]).0)
                .collect();
            let bytes_before = bytes_of(&paths);
            // The events a plain assembly of the same members leaves (mdraid's 0.90 start
            // records itself): the update itself must not move them, as mdadm's does not.
            let twins: Vec<PathBuf> = paths.iter().map(|p| p.with_extension("twin")).collect();
            for (p, t) in paths.iter().zip(&twins) {
                std::fs::copy(p, t).unwrap();
            }
            let tstrs: Vec<&str> = twins.iter().map(|p| s(p)).collect();
            mdraid_ok(&[&["assemble"][..], &tstrs].concat());
            let plain: Vec<Option<String>> = tstrs
                .iter()
                .map(|p| field(&mdadm(&bin, &["--examine", p]).0, "Events"))
                .collect();
            twins.iter().for_each(|t| std::fs::remove_file(t).unwrap());
            let upd = format!("--update={update}");
            let mut args = vec!["assemble", upd.as_str()];
            if !extra.iter().any(|e| e.starts_with("--homehost")) {
                args.push("--homehost=box");
            }
            args.extend_from_slice(extra);
            args.extend_from_slice(&strs);
            let o = mdraid(&args);
            let understood = !matches!(
                (m, *update),
                ("0.90", "name") | ("0.90", "devicesize") | ("1.0", "devicesize")
            );
            if !understood {
                assert!(!o.status.success(), "{what}: accepted");
                let meta = if m == "0.90" { "0.90" } else { "1.x" };
                assert!(
                    err(&o).contains(&format!(
                        "--update={update} not understood for {meta} metadata"
                    )),
                    "{what}: {}",
                    err(&o)
                );
                assert!(
                    bytes_of(&paths) == bytes_before,
                    "{what}: refused but written"
                );
                continue;
            }
            assert!(o.status.success(), "{what}: {}", err(&o));
            for ((p, was), plain_events) in paths.iter().zip(&before).zip(&plain) {
                same_examine(&bin, p, &what);
                let (now, _) = mdadm(&bin, &["--examine", "--homehost=box", s(p)]);
                let uuid_key = if m == "0.90" { "UUID" } else { "Array UUID" };
                let uuid = field(&now, uuid_key).unwrap();
                assert_eq!(&field(&now, "Events"), plain_events, "{what}: events moved");
                match (*update, extra.is_empty()) {
                    ("uuid", false) if m == "0.90" => {
                        assert!(uuid.starts_with(new_uuid), "{what}: {uuid}")
                    }
                    ("uuid", false) => assert_eq!(uuid, new_uuid, "{what}"),
                    ("uuid", true) => {
                        assert_ne!(field(was, uuid_key).unwrap(), uuid, "{what}: same uuid");
                        if m == "0.90" {
                            // A random uuid keeps the homehost's hash: still local to box.
                            assert!(uuid.ends_with("(local to host box)"), "{what}: {uuid}");
                        }
                    }
                    ("name", _) => {
                        assert_eq!(
                            field(&now, "Name").unwrap(),
                            "box:renamed  (local to host box)",
                            "{what}"
                        )
                    }
                    ("homehost", _) if m == "0.90" => {
                        assert!(!uuid.contains("local to host"), "{what}: {uuid}");
                        let (nh, _) = mdadm(&bin, &["--examine", "--homehost=newhost", s(p)]);
                        assert!(
                            field(&nh, "UUID")
                                .unwrap()
                                .ends_with("(local to host newhost)"),
                            "{what}: {nh}"
                        );
                    }
                    ("homehost", _) => {
                        assert_eq!(field(&now, "Name").unwrap(), "newhost:data", "{what}")
                    }
                    ("resync", _) => {
                        let state = field(&now, "State").unwrap();
                        assert!(state.starts_with("active"), "{what}: {state}");
                    }
                    ("devicesize", _) => {
                        let avail = |t: &str| {
                            let f = field(t, "Avail Dev Size").unwrap();
                            f.split(' ').next().unwrap().parse::<u64>().unwrap()
                        };
                        assert_eq!(avail(&now), avail(was) + 8192, "{what}");
                    }
                    ("no-bitmap", _) => {
                        assert!(!now.contains("Internal Bitmap"), "{what}: {now}");
                        assert!(
                            extract_bitmap(p, &p.with_extension("bm")).is_none(),
                            "{what}"
                        );
                    }
                    _ => unreachable!(),
                }
            }
            if *update == "uuid" {
                // Every member and its bitmap name the same new array; mdraid assembles it.
                let (eb, _) = mdadm(&bin, &[&["--examine", "--brief"][..], &strs].concat());
                assert_eq!(eb.matches("ARRAY ").count(), 1, "{what}: {eb}");
                mdraid_ok(&[&["assemble", "--run"][..], &strs].concat());
            }
        }
    }
}

#[test]
fn zero_superblock_writes_what_mdadm_writes() {
    let Some(bin) = mdadm_bin() else { return };
    let dir = TempDir::new("zero");
    for m in METADATA {
        let tag = format!("z{}", m.replace('.', ""));
        let names = [format!("{tag}a"), format!("{tag}b")];
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let paths = create(dir.path(), m, &refs, 0, &["--bitmap=internal"]);
        let theirs_img = dir.path().join(format!("{tag}-mdadm.img"));
        std::fs::copy(&paths[0], &theirs_img).unwrap();
        let o = mdraid(&["zero-superblock", s(&paths[0])]);
        assert!(o.status.success(), "{m}: {}", err(&o));
        let (text, code) = mdadm(&bin, &["--zero-superblock", s(&theirs_img)]);
        assert_eq!(code, 0, "{m}: mdadm: {text}");
        assert!(
            std::fs::read(&paths[0]).unwrap() == std::fs::read(&theirs_img).unwrap(),
            "{m}: mdraid and mdadm zeroed different bytes"
        );
        // Both examine the zeroed member alike (mdadm's words, its exit status).
        let (theirs, code) = mdadm(&bin, &["--examine", s(&paths[0])]);
        let o = mdraid(&["examine", s(&paths[0])]);
        assert_eq!(code, 1);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(err(&o).replace("mdraid:", "mdadm:"), theirs, "{m}");
        assert_eq!(
            theirs,
            format!("mdadm: No md superblock detected on {}.\n", s(&paths[0]))
        );
        let o = mdraid(&["examine", "--examine-bitmap", s(&paths[0])]);
        assert_eq!(err(&o).replace("mdraid:", "mdadm:"), theirs, "{m}: -X");
        // The other member is untouched: still what mdadm reads it as.
        same_examine(&bin, &paths[1], &format!("{m}: survivor"));
        // A second zeroing finds nothing, as mdadm's does.
        let o = mdraid(&["zero-superblock", s(&paths[0])]);
        let (theirs, code) = mdadm(&bin, &["--zero-superblock", s(&theirs_img)]);
        assert_eq!(o.status.code(), Some(code), "{m}");
        assert_eq!(
            err(&o).replace("mdraid:", "mdadm:"),
            theirs.replace(s(&theirs_img), s(&paths[0])),
            "{m}"
        );
    }
    // Two superblocks on one device (a 0.90 array, then a 1.2 one made over it with
    // --force): both examine it alike (mdadm's tie-break picks the 0.90 one), and zeroing
    // goes on until neither is left, as mdadm's repeated Kill does.
    let dual = create(dir.path(), "0.90", &["dual-a", "dual-b"], 0, &[]);
    let strs: Vec<&str> = dual.iter().map(|p| s(p)).collect();
    mdraid_ok(
        &[
            &[
                "create",
                "--level=1",
                "--raid-devices=2",
                "--metadata=1.2",
                "--force",
            ][..],
            &strs,
        ]
        .concat(),
    );
    same_examine(&bin, &dual[0], "two superblocks");
    let ours = mdraid_ok(&["examine", "--brief", strs[0]]);
    assert_eq!(
        ours,
        mdadm(&bin, &["--examine", "--brief", strs[0]]).0,
        "two superblocks"
    );
    let theirs_img = dir.path().join("dual-mdadm.img");
    std::fs::copy(&dual[0], &theirs_img).unwrap();
    mdraid_ok(&["zero-superblock", strs[0]]);
    assert_eq!(mdadm(&bin, &["--zero-superblock", s(&theirs_img)]).1, 0);
    assert!(
        std::fs::read(&dual[0]).unwrap() == std::fs::read(&theirs_img).unwrap(),
        "two superblocks: mdraid and mdadm zeroed different bytes"
    );
    assert_eq!(
        mdadm(&bin, &["--examine", strs[0]]).1,
        1,
        "a superblock is left"
    );
    // A member of an array a running command holds is refused, untouched.
    let paths = create(
        dir.path(),
        "1.2",
        &["busy-a", "busy-b"],
        0,
        &["--assume-clean"],
    );
    let mut cat = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(["cat", s(&paths[0]), s(&paths[1])])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its first bytes on stdout: the array is assembled and its members held (the rest of
    // the 11 MiB waits on the pipe, which is not read).
    let mut first = [0u8; 1];
    cat.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    let before = bytes_of(&paths);
    let o = mdraid(&["zero-superblock", s(&paths[0])]);
    cat.kill().unwrap();
    let _ = cat.wait();
    assert!(!o.status.success(), "zeroed a busy member");
    assert_eq!(
        err(&o),
        format!(
            "mdraid: Couldn't open {} for write - not zeroing\n",
            s(&paths[0])
        )
    );
    assert!(bytes_of(&paths) == before, "a refused zeroing wrote");
}

#[test]
fn read_only_verbs_leave_every_member_byte_identical() {
    let dir = TempDir::new("ro");
    // An unclean array made by real mdadm (a write was cut: dirty, bitmap bits set, resync
    // owed): a writable start would write at once. Plus an array of ours with a spare.
    let fx: Vec<PathBuf> = fixture_members("r1-unclean")
        .iter()
        .map(|d| fixture_image_copy("r1-unclean", d, dir.path()))
        .collect();
    let ours = create(
        dir.path(),
        "1.2",
        &["ro-a", "ro-b", "ro-c"],
        1,
        &["--bitmap=internal"],
    );
    for paths in [fx, ours] {
        let strs: Vec<&str> = paths.iter().map(|p| s(p)).collect();
        let before = bytes_of(&paths);
        let dev = strs[1];
        let reads: &[&[&str]] = &[
            &["assemble"],
            &["detail"],
            &["stop"],
            &["cat", "--length", "64K"],
        ];
        for verb in reads {
            let args = [*verb, &["--readonly"], &strs].concat();
            let o = mdraid(&args);
            assert!(o.status.success(), "{args:?}: {}", err(&o));
            assert!(bytes_of(&paths) == before, "{args:?} wrote");
        }
        let writes: &[&[&str]] = &[
            &["write"],
            &["resync"],
            &["check"],
            &["repair"],
            &["fail", "--device", dev],
            &["remove", "--run", "--device", dev],
            &["add", "--run", "--device", dev],
            &["re-add", "--run", "--device", dev],
        ];
        for verb in writes {
            let args = [*verb, &["--readonly"], &strs].concat();
            let o = if verb[0] == "write" {
                let mut c = Command::new(env!("CARGO_BIN_EXE_mdraid"))
                    .args(&args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                let _ = c.stdin.take().unwrap().write_all(&[7u8; 8192]);
                c.wait_with_output().unwrap()
            } else {
                mdraid(&args)
            };
            assert!(
                !o.status.success(),
                "{args:?} succeeded on a read-only array"
            );
            let e = err(&o);
            assert!(
                e.contains("read-only") || e.contains("is active: fail it first"),
                "{args:?}: unclear refusal: {e}"
            );
            assert_eq!(e.lines().count(), 1, "{args:?}: {e}");
            assert!(bytes_of(&paths) == before, "{args:?} wrote");
        }
        // The same verbs may write without --readonly: proof that the comparison can fail.
        mdraid_ok(&[&["stop"][..], &strs].concat());
        if paths[0].to_str().unwrap().contains("vd") {
            assert!(
                bytes_of(&paths) != before,
                "a read-write stop of an unclean array wrote nothing"
            );
        }
    }
    // --readwrite undoes a verb's read-only default; both at once are a usage error.
    let fx: Vec<PathBuf> = fixture_members("r1-unclean")
        .iter()
        .map(|d| fixture_image_copy("r1-unclean", d, dir.path()))
        .collect();
    let strs: Vec<&str> = fx.iter().map(|p| s(p)).collect();
    let before = bytes_of(&fx);
    mdraid_ok(&[&["detail"][..], &strs].concat());
    assert!(bytes_of(&fx) == before, "detail is read-only by default");
    let o = mdraid(&[&["detail", "--readonly", "--readwrite"][..], &strs].concat());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn assemble_scan_groups_members_by_array() {
    let dir = TempDir::new("scan");
    let one = create(
        dir.path(),
        "1.2",
        &["s-one-a", "s-one-b"],
        0,
        &["--name=one"],
    );
    let two = create(
        dir.path(),
        "0.90",
        &["s-two-a", "s-two-b", "s-two-c"],
        1,
        &[],
    );
    let blank = dir.path().join("s-blank.img");
    std::fs::File::create(&blank)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let all = [&two[2], &one[0], &blank, &two[0], &one[1], &two[1]];
    let strs: Vec<&str> = all.iter().map(|p| s(p)).collect();
    let o = mdraid(&[&["assemble", "--scan", "--json"][..], &strs].concat());
    assert!(o.status.success(), "{}", err(&o));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let arrays = v.as_array().expect("one entry per array");
    assert_eq!(arrays.len(), 2, "{v}");
    let members = |a: &serde_json::Value| -> Vec<String> {
        let mut m: Vec<String> = a["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["path"].as_str().unwrap().to_string())
            .collect();
        m.sort();
        m
    };
    // The first array seen (the 0.90 one, through its spare) comes first.
    assert_eq!(arrays[0]["metadata"], "0.90");
    assert_eq!(
        members(&arrays[0]),
        two.iter().map(|p| s(p).to_string()).collect::<Vec<_>>()
    );
    assert_eq!(arrays[1]["metadata"], "1.2");
    assert_eq!(
        members(&arrays[1]),
        one.iter().map(|p| s(p).to_string()).collect::<Vec<_>>()
    );
    let o = mdraid(&[&["assemble", "--scan"][..], &strs].concat());
    assert!(o.status.success());
    assert_eq!(
        err(&o),
        "mdraid: /dev/md0 has been started with 2 drives and 1 spare.\n\
         mdraid: /dev/md/one has been started with 2 drives.\n"
    );
    // With --update, each array found gets it.
    mdraid_ok(&[&["assemble", "--scan", "--update=resync"][..], &strs].concat());
    let o = mdraid(&["examine", "--json", s(&one[0])]);
    assert!(out(&o).contains("active"), "{}", out(&o));
    // No array among the devices given.
    let o = mdraid(&["assemble", "--scan", s(&blank)]);
    assert!(!o.status.success());
}

/// The same on loop devices, where mdadm finds an internal bitmap itself and opens members
/// with O_EXCL: after an update `mdadm --examine` and `--examine-bitmap` of each loop device
/// print what mdraid prints; a read-only command leaves them byte-identical; a member held
/// exclusively is refused by both mdraid's and mdadm's zero-superblock, and a free one is
/// zeroed by ours as mdadm then reads it. The one allowed skip: without a working `losetup`
/// (no loop support, not root) the test says why and returns.
#[test]
fn loop_devices_update_read_only_and_zero() {
    let Some(bin) = mdadm_bin() else { return };
    let dir = TempDir::new("surface-loop");
    let imgs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("l{i}.img")))
        .collect();
    for p in &imgs {
        std::fs::File::create(p).unwrap().set_len(12 << 20).unwrap();
    }
    struct Detach(Vec<String>);
    impl Drop for Detach {
        fn drop(&mut self) {
            for d in &self.0 {
                let _ = Command::new("losetup").args(["-d", d]).status();
            }
        }
    }
    let mut loops = Detach(Vec::new());
    for p in &imgs {
        match Command::new("losetup")
            .args(["-f", "--show", s(p)])
            .output()
        {
            Ok(o) if o.status.success() => loops
                .0
                .push(String::from_utf8_lossy(&o.stdout).trim().to_string()),
            Ok(o) => {
                eprintln!("skipping: losetup failed: {}", err(&o).trim());
                return;
            }
            Err(e) => {
                eprintln!("skipping: no losetup: {e}");
                return;
            }
        }
    }
    let devs: Vec<&str> = loops.0.iter().map(String::as_str).collect();
    mdraid_ok(
        &[
            &["create", "--level=1", "--raid-devices=2", "--metadata=1.2"][..],
            &["--bitmap=internal", "--name=lo", "--homehost=box"],
            &devs,
        ]
        .concat(),
    );
    let uuid = "0badc0de:01234567:89abcdef:fedcba98";
    mdraid_ok(&[&["assemble", "--update=uuid", "--uuid", uuid][..], &devs].concat());
    for d in &devs {
        let ours = mdraid_ok(&["examine", "--homehost", "box", d]);
        let (theirs, _) = mdadm(&bin, &["--examine", "--homehost=box", d]);
        assert_eq!(ours, theirs, "examine {d}");
        assert_eq!(field(&theirs, "Array UUID").unwrap(), uuid);
        let ours = mdraid_ok(&["examine", "--examine-bitmap", d]);
        let (theirs, _) = mdadm(&bin, &["--examine-bitmap", d]);
        assert_eq!(ours, theirs, "examine-bitmap {d}");
        assert!(theirs.contains(&format!("UUID : {uuid}")), "{theirs}");
    }
    let read = |d: &str| std::fs::read(d).unwrap();
    let before: Vec<Vec<u8>> = devs.iter().map(|d| read(d)).collect();
    for verb in [&["assemble"][..], &["stop"], &["cat", "--length", "64K"]] {
        let args = [verb, &["--readonly"], &devs].concat();
        mdraid_ok(&args);
        let now: Vec<Vec<u8>> = devs.iter().map(|d| read(d)).collect();
        assert!(now == before, "{args:?} wrote");
    }
    // Held exclusively (here by the test itself): both refuse.
    let held = mdraid::device::FileDevice::open(devs[1]).unwrap();
    let o = mdraid(&["zero-superblock", devs[1]]);
    assert!(!o.status.success());
    assert_eq!(
        err(&o),
        format!(
            "mdraid: Couldn't open {} for write - not zeroing\n",
            devs[1]
        )
    );
    let (theirs, code) = mdadm(&bin, &["--zero-superblock", devs[1]]);
    assert_ne!(code, 0, "mdadm zeroed a held device");
    assert_eq!(err(&o).replace("mdraid:", "mdadm:"), theirs);
    drop(held);
    mdraid_ok(&["zero-superblock", devs[0]]);
    let (theirs, code) = mdadm(&bin, &["--examine", devs[0]]);
    assert_eq!(
        (theirs, code),
        (
            format!("mdadm: No md superblock detected on {}.\n", devs[0]),
            1
        )
    );
}
