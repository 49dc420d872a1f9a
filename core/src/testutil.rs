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
