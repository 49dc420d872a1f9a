//! Test support shared by this crate's tests and the other crates' (feature `test-utils`):
//! the md fixtures in `../shared/fixtures` and their data pattern.
//!
//! Fixture images are xz-compressed; they are decompressed once into a cache folder
//! (`$MDRAID_FIXTURE_CACHE`, default `<workspace>/target/fixture-cache`) and never touched in place.

use std::path::{Path, PathBuf};
use std::string::String;
use std::vec::Vec;
use std::{format, vec};

/// The fixtures folder: `$MDRAID_FIXTURES`, else `../shared/fixtures` from the workspace root.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(p) = std::env::var("MDRAID_FIXTURES") {
        return PathBuf::from(p);
    }
    workspace_root().join("../shared/fixtures")
}

/// The workspace root (the folder holding this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core has a parent")
        .to_path_buf()
}

/// Names of every fixture folder, sorted.
pub fn fixture_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder (../shared/fixtures) must exist")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("fixture.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Member names ("vda", "vdb", ...) of a fixture, from its image files.
pub fn fixture_members(fixture: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir().join(fixture))
        .expect("fixture folder")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".img.xz")
                .map(String::from)
        })
        .collect();
    v.sort();
    v
}

/// A decompressed, read-only-by-convention copy of a fixture member image in the cache.
pub fn fixture_image(fixture: &str, dev: &str) -> PathBuf {
    let cache = std::env::var("MDRAID_FIXTURE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target/fixture-cache"));
    let dir = cache.join(fixture);
    let out = dir.join(format!("{dev}.img"));
    if out.exists() {
        return out;
    }
    std::fs::create_dir_all(&dir).expect("create fixture cache");
    let src = fixtures_dir().join(fixture).join(format!("{dev}.img.xz"));
    // Decompress to a unique temporary name, then rename: concurrent tests never see half a file.
    let tmp = dir.join(format!(
        "{dev}.img.tmp.{}.{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::File::create(&tmp).expect("create temp image");
    let st = std::process::Command::new("xz")
        .arg("-dc")
        .arg(&src)
        .stdout(f)
        .status()
        .expect("run xz (install xz-utils)");
    assert!(st.success(), "xz -dc {} failed", src.display());
    std::fs::rename(&tmp, &out).expect("rename image");
    out
}

/// A private, writable copy of a fixture member image in `dir` (for tests that modify arrays).
pub fn fixture_image_copy(fixture: &str, dev: &str, dir: &Path) -> PathBuf {
    let p = dir.join(format!("{dev}.img"));
    std::fs::copy(fixture_image(fixture, dev), &p).expect("copy fixture image");
    p
}

/// The text file `name` of a fixture.
pub fn fixture_text(fixture: &str, name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(fixture).join(name)).expect("fixture text file")
}

/// Sector `s` of a written range in the fixtures' data pattern.
pub fn pattern_sector(scenario: &str, gen: u32, s: u64) -> [u8; 512] {
    let line = format!("mdraid-fixture {scenario} gen {gen} sector {s:09}\n");
    let mut out = [0u8; 512];
    for (i, b) in line.bytes().cycle().take(512).enumerate() {
        out[i] = b;
    }
    out
}

/// `bytes` of the pattern (a multiple of 512).
pub fn pattern(scenario: &str, gen: u32, bytes: usize) -> Vec<u8> {
    let mut v = vec![0u8; bytes];
    for (s, chunk) in v.chunks_mut(512).enumerate() {
        chunk.copy_from_slice(&pattern_sector(scenario, gen, s as u64)[..chunk.len()]);
    }
    v
}

/// A fresh temporary folder, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/mdraid-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "mdraid-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Altered fixture superblocks: the examine edge cases, shared by the text test (against
/// mdadm's captured output) and the cross-check that runs mdadm itself on the same bytes.
pub mod edge {
    use crate::format::{sb0, sb1};
    use std::vec::Vec;

    /// Every edge case, by name.
    pub const CASES: &[&str] = &[
        "badcsum",
        "faulty",
        "spare",
        "journal",
        "recovery",
        "replacement",
        "dup_roles",
        "three_roles",
        "role_high",
        "active",
        "nobitmapmagic",
        "reshape",
        "devflag_other",
        "devflag_wm",
        "level5",
        "level10",
        "level0lay",
        "linear",
        "truncated",
        "newoffset",
        "ppl",
        "bigbitmap",
        "name_nohost",
        "devnum_big",
        "nobblog",
        "v10_active",
        "v10_bitmap_ok",
        "sb0_badcsum",
        "sb0_faulty",
        "sb0_spare",
        "sb0_wm",
        "sb0_active",
        "sb0_bitmap",
        "sb0_bitmap_ok",
        "sb0_removed",
        "sb0_level5",
        "sb0_notpersist",
    ];

    fn put(raw: &mut [u8], off: usize, bytes: &[u8]) {
        raw[off..off + bytes.len()].copy_from_slice(bytes);
    }
    fn p16(raw: &mut [u8], off: usize, v: u16) {
        put(raw, off, &v.to_le_bytes());
    }
    fn p32(raw: &mut [u8], off: usize, v: u32) {
        put(raw, off, &v.to_le_bytes());
    }
    fn p64(raw: &mut [u8], off: usize, v: u64) {
        put(raw, off, &v.to_le_bytes());
    }

    /// The alteration named `case`, in place; returns whether the checksum is to be left stale.
    pub fn mutate(case: &str, sb: &mut [u8]) -> bool {
        match case {
            "badcsum" => {
                p64(sb, 200, 77);
                return true;
            }
            "faulty" => p16(sb, 256, sb1::ROLE_FAULTY),
            "spare" => p16(sb, 256, sb1::ROLE_SPARE),
            "journal" => p16(sb, 256, sb1::ROLE_JOURNAL),
            "recovery" => {
                p32(sb, 8, 3);
                p64(sb, 152, 12345);
            }
            "replacement" => {
                p32(sb, 8, 0x11);
                p16(sb, 258, 0);
            }
            "dup_roles" => p16(sb, 258, 0),
            "three_roles" => {
                p16(sb, 258, 0);
                p16(sb, 260, 0);
            }
            "role_high" => p16(sb, 258, 5),
            "active" => p64(sb, 208, 0),
            "nobitmapmagic" => p32(sb, 96, 100),
            "reshape" => {
                p32(sb, 8, 5);
                p32(sb, 100, 5);
                p64(sb, 104, 4096);
                p32(sb, 112, u32::MAX);
                p32(sb, 116, 2);
                p32(sb, 120, 128);
            }
            "devflag_other" => sb[184] = 4,
            "devflag_wm" => sb[184] = 1,
            "level5" => {
                p32(sb, 72, 5);
                p32(sb, 92, 3);
                p32(sb, 76, 2);
                p32(sb, 88, 128);
            }
            "level10" => {
                p32(sb, 72, 10);
                p32(sb, 92, 4);
                p32(sb, 76, 0x102);
                p32(sb, 88, 128);
            }
            "level0lay" => {
                p32(sb, 72, 0);
                p32(sb, 88, 128);
                p32(sb, 8, 0x1001);
                p32(sb, 76, 2);
            }
            "linear" => {
                p32(sb, 72, u32::MAX);
                p32(sb, 88, 0);
            }
            "newoffset" => {
                p32(sb, 8, 0x45);
                p32(sb, 124, 0xffff_f000);
            }
            "ppl" => {
                p32(sb, 8, 0x400);
                p32(sb, 96, 8 | (200 << 16));
            }
            "name_nohost" => {
                let mut n = [0u8; 32];
                n[..13].copy_from_slice(b"otherhost:fix");
                put(sb, 32, &n);
            }
            "devnum_big" => p32(sb, 160, 5000),
            "nobblog" => p16(sb, 186, 0),
            "v10_active" => p64(sb, 208, 1000),
            "v10_bitmap_ok" => {
                p32(sb, 8, 1);
                p32(sb, 96, -16i32 as u32);
            }
            "truncated" | "bigbitmap" => {}
            // 0.90: disk records at 512 + 128*i (number, major, minor, raid_disk, state).
            "sb0_badcsum" => {
                p32(sb, 156, 99);
                return true;
            }
            "sb0_faulty" => {
                p32(sb, 512 + 128 + 16, 1);
                p32(sb, 136, 1);
                p32(sb, 144, 1);
            }
            "sb0_spare" => {
                p32(sb, 148, 1);
                for (i, v) in [2, 254, 32, 2, 0].into_iter().enumerate() {
                    p32(sb, 512 + 256 + 4 * i, v);
                }
            }
            "sb0_wm" => {
                p32(sb, 512 + 128 + 16, 6 | (1 << 9) | (1 << 10));
                p32(sb, 3968 + 16, 6 | (1 << 9));
            }
            "sb0_active" => p32(sb, 132, 0),
            "sb0_bitmap" | "sb0_bitmap_ok" => p32(sb, 132, 1 | (1 << 8)),
            "sb0_removed" => p32(sb, 512 + 128 + 16, 8),
            "sb0_level5" => {
                p32(sb, 28, 5);
                p32(sb, 40, 3);
                p32(sb, 256, 2);
                p32(sb, 260, 65536);
            }
            "sb0_notpersist" => p32(sb, 48, 1),
            other => panic!("no alteration for {other}"),
        }
        false
    }

    /// A whole member image for edge case `case`: the fixture it starts from, the image
    /// (superblock altered, checksum recomputed unless the case is about the checksum, bitmap
    /// header placed where the case wants it, truncated for "truncated") and the superblock's
    /// sector.
    pub fn edge_image(case: &str) -> (&'static str, Vec<u8>, u64) {
        let read = |fx: &str| std::fs::read(super::fixture_image(fx, "vda")).unwrap();
        let img12 = read("r1-v1.2-bitmap");
        let bitmap12 = img12[16 * 512..17 * 512].to_vec();
        if let Some(rest) = case.strip_prefix("sb0_") {
            let mut img = read("r1-v0.90");
            let loc = sb0::location(img.len() as u64 / 512).unwrap();
            let at = loc as usize * 512;
            let mut raw = img[at..at + 4096].to_vec();
            let stale = mutate(case, &mut raw);
            let mut sb = sb0::Superblock0::parse(&raw).unwrap();
            if !stale {
                sb.update_checksum();
                p32(&mut raw, 152, sb.sb_csum);
            }
            img[at..at + 4096].copy_from_slice(&raw);
            if rest == "bitmap_ok" {
                let mut bitmap = bitmap12;
                for (i, w) in sb.set_uuid.iter().enumerate() {
                    put(&mut bitmap, 8 + 4 * i, &w.to_le_bytes());
                }
                img[at + 8 * 512..at + 9 * 512].copy_from_slice(&bitmap);
            }
            return ("r1-v0.90", img, loc);
        }
        let (fx, sector) = if case.starts_with("v10_") {
            ("r1-v1.0", 65520u64)
        } else {
            ("r1-v1.2-bitmap", 8)
        };
        let mut img = read(fx);
        let at = sector as usize * 512;
        let mut raw = img[at..at + 4096].to_vec();
        let stale = mutate(case, &mut raw);
        let mut sb = sb1::Superblock1::parse(&raw).unwrap();
        if !stale {
            sb.update_checksum();
            p32(&mut raw, 216, sb.sb_csum);
        }
        img[at..at + 4096].copy_from_slice(&raw);
        let bm = (sector as i64 + i64::from(sb.bitmap_offset)) as usize * 512;
        match case {
            "bigbitmap" => {
                p64(&mut img[bm..], 40, 63488 * 64);
                p32(&mut img[bm..], 52, 4096);
            }
            "v10_bitmap_ok" => {
                let mut bitmap = bitmap12;
                put(&mut bitmap, 8, &sb.set_uuid);
                img[bm..bm + 512].copy_from_slice(&bitmap);
            }
            "truncated" => img.truncate(40000 * 512),
            _ => {}
        }
        (fx, img, sector)
    }
}
