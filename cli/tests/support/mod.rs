//! What the tests that hold mdraid against Debian's mdadm 4.2 share: finding the binary
//! (`MDADM_BIN`; `MDRAID_REQUIRE_MDADM=1` makes its absence a failure), running both tools,
//! and comparing `--examine`, `--examine-badblocks` and `--examine-bitmap` of a member image.
//! Each test binary uses what it needs of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn mdadm_bin() -> Option<PathBuf> {
    let p = std::env::var_os("MDADM_BIN")
        .map(PathBuf::from)
        .filter(|p| p.exists());
    if p.is_none() {
        assert!(
            std::env::var("MDRAID_REQUIRE_MDADM").as_deref() != Ok("1"),
            "MDRAID_REQUIRE_MDADM=1 but MDADM_BIN does not name Debian's mdadm"
        );
        eprintln!(
            "{}: MDADM_BIN not set: skipping the comparison with the real mdadm",
            env!("CARGO_CRATE_NAME")
        );
    }
    if let Some(bin) = &p {
        // The comparisons were written against Debian's mdadm 4.2: record which one ran.
        let o = Command::new(bin).arg("--version").output().unwrap();
        let v = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!(
            "{}: {} is {}",
            env!("CARGO_CRATE_NAME"),
            bin.display(),
            v.trim()
        );
        assert!(
            v.starts_with("mdadm - v4.2 "),
            "{} is not mdadm 4.2 (the version these comparisons hold for): {v}",
            bin.display()
        );
    }
    p
}

pub fn mdraid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn mdadm(bin: &Path, args: &[&str]) -> String {
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

/// Starts `mdraid` with `args`, sends it `sig` (`kill`'s form: "-INT") after `ms`
/// milliseconds and waits for it: its output.
pub fn mdraid_signalled(args: &[&str], sig: &str, ms: u64) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_mdraid"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let k = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success(), "kill {sig}");
    child.wait_with_output().unwrap()
}

/// Runs `mdraid`, which must succeed; its stdout.
pub fn mdraid_ok(args: &[&str], what: &str) -> String {
    let o = mdraid(args);
    assert!(
        o.status.success(),
        "{what}: mdraid {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn compare(bin: &Path, img: &str, what: &str) {
    let ours = mdraid_ok(&["examine", "--homehost", "mdlab", img], what);
    let theirs = mdadm(bin, &["--examine", "--homehost=mdlab", img]);
    assert_eq!(ours, theirs, "{what}: {img}");
    // mdadm lists a bad-block log for 1.x only (0.90 has none).
    if !theirs.contains("Version : 0.90") {
        let ours = mdraid_ok(&["examine", "--examine-badblocks", img], what);
        let theirs = mdadm(bin, &["--examine-badblocks", img]);
        assert_eq!(ours, theirs, "{what}: badblocks of {img}");
    }
}

/// The member's internal bitmap area as its own file, and the metadata name for mdadm's `-e`.
///
/// mdadm locates an internal bitmap only on a block device; on an image file `--examine-bitmap`
/// reads from byte 0. So the bitmap is copied out (from where the superblock says it is) and
/// mdadm reads that copy as the member's (`-e` picks the metadata, hence the UUID shape, as the
/// superblock it would have found on the device).
pub fn extract_bitmap(img: &str, out: &Path) -> &'static str {
    use mdraid::device::{BlockDevice, FileDevice};
    use mdraid::format::bitmap::{location_sb0, location_sb1, BitmapSuper};
    use mdraid::format::probe::{probe, Superblock};
    use mdraid::format::MetadataVersion;
    let mut dev = FileDevice::open(img).unwrap();
    let found = probe(&mut dev, None).unwrap();
    let (off, meta) = match &found.sb {
        Superblock::V0(s) => (location_sb0(s, found.dev_sectors), "0.90"),
        Superblock::V1(s, MetadataVersion::V1_0) => (location_sb1(s), "1.0"),
        Superblock::V1(s, MetadataVersion::V1_1) => (location_sb1(s), "1.1"),
        Superblock::V1(s, _) => (location_sb1(s), "1.2"),
    };
    let off = off.expect("the superblock says there is a bitmap");
    let mut head = [0u8; 256];
    dev.read_at(off, &mut head).unwrap();
    let h = BitmapSuper::decode(&head).unwrap();
    let want = (256 + h.chunks().div_ceil(8)).div_ceil(4096) * 4096;
    let len = want.min(dev.size() - off);
    let mut buf = vec![0u8; len as usize];
    dev.read_at(off, &mut buf).unwrap();
    std::fs::write(out, &buf).unwrap();
    meta
}

/// `mdadm --examine-bitmap` of the member's bitmap equals `mdraid examine --examine-bitmap`
/// (the Filename line names the copy mdadm read); for 0.90 the bitmap's UUID is also the one
/// mdadm prints for the superblock. Returns mdraid's text (naming `img`).
pub fn compare_bitmap(bin: &Path, img: &str, what: &str) -> String {
    let copy = PathBuf::from(format!("{img}.bitmap"));
    let meta = extract_bitmap(img, &copy);
    let copy = copy.to_str().unwrap();
    let text = mdraid_ok(&["examine", "--examine-bitmap", img], what);
    let ours = text.replace(
        &format!("        Filename : {img}\n"),
        &format!("        Filename : {copy}\n"),
    );
    let theirs = mdadm(bin, &["--examine-bitmap", "-e", meta, copy]);
    assert_eq!(ours, theirs, "{what}: bitmap of {img}");
    std::fs::remove_file(copy).unwrap();
    let uuid_of = |text: &str, key: &str| -> String {
        let line = text.lines().find(|l| l.trim_start().starts_with(key));
        let line = line.unwrap_or_else(|| panic!("{what}: no {key} in {text}"));
        let v = line.split_once(" : ").unwrap().1;
        v.split(' ').next().unwrap().to_string()
    };
    let sb = mdadm(bin, &["--examine", img]);
    let key = if meta == "0.90" { "UUID" } else { "Array UUID" };
    if meta == "0.90" {
        // mdadm drops the bitmap bit in memory (and then finds the checksum wrong) unless the
        // bitmap's magic and UUID check out.
        assert!(
            sb.contains("Internal Bitmap : present\n"),
            "{what}: {img}: {sb}"
        );
        assert!(sb.contains(" - correct\n"), "{what}: {img}: checksum: {sb}");
    }
    assert_eq!(
        uuid_of(&theirs, "UUID"),
        uuid_of(&sb, key),
        "{what}: bitmap UUID of {img}"
    );
    text
}

/// A loop device over `img` (with `sector_size`-byte logical sectors when given), detached on
/// drop. Err says why there is none (no losetup, not root), for the test to print and return.
pub struct Loop(pub String);

impl Loop {
    pub fn new(img: &Path, sector_size: Option<u32>) -> Result<Loop, String> {
        let mut c = Command::new("losetup");
        c.args(["-f", "--show"]);
        if let Some(s) = sector_size {
            c.args(["--sector-size", &s.to_string()]);
        }
        let o = c
            .arg(img)
            .output()
            .map_err(|e| format!("no losetup: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "losetup failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(Loop(String::from_utf8_lossy(&o.stdout).trim().to_string()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// The io_uring driver over an assembled array's machine, or None (said on stderr) where the
/// kernel refuses io_uring — a failure instead with `MDRAID_REQUIRE_URING=1`, as in CI.
pub fn uring_or_skip(
    m: mdraid::array::machine::Machine,
    devs: Vec<mdraid::device::FileDevice>,
    what: &str,
) -> Option<mdraid::driver::uring::UringDriver> {
    use mdraid::driver::uring::{DriverError, UringConfig, UringDriver};
    match UringDriver::new(m, devs, UringConfig::new(32, 32, 4096)) {
        Ok(d) => Some(d),
        Err(DriverError::UringUnavailable(e)) => {
            assert!(
                std::env::var("MDRAID_REQUIRE_URING").as_deref() != Ok("1"),
                "io_uring refused with MDRAID_REQUIRE_URING=1: {e}"
            );
            eprintln!("io_uring unavailable ({e}): skipping {what}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}
