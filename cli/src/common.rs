//! Helpers shared by the verbs: opening members, sizes, clock, errors.

use mdraid::array::{Array, AssembleOptions, AssembleReport};
use mdraid::device::{DeviceIdentity, FileDevice, Lock, OpenOptions};
use std::fmt;
use std::path::{Path, PathBuf};

/// A CLI failure: one line for the user.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<mdraid::Error> for CliError {
    fn from(e: mdraid::Error) -> Self {
        CliError(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError(e.to_string())
    }
}

/// `Result` for verbs.
pub type CliResult<T = ()> = Result<T, CliError>;

/// Seconds since the epoch (md's utime/ctime).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Opens a member device for the life of the command, naming it in any error. Writers hold it
/// exclusively (O_EXCL on block devices, `flock` on files), read-only opens share it with other
/// readers only (see [`Lock`]): two commands never work on the same member at once.
pub fn open_dev(path: &Path, read_only: bool) -> CliResult<FileDevice> {
    open_locked(path, read_only, Lock::Auto)
}

/// Opens a device with an explicit lock (`examine` looks without one, as mdadm -E does).
pub fn open_locked(path: &Path, read_only: bool, lock: Lock) -> CliResult<FileDevice> {
    FileDevice::open_with(
        path,
        OpenOptions {
            read_only,
            direct: false,
            lock,
        },
    )
    .map_err(|e| {
        let name = path.display();
        let busy = e
            .errno()
            .map(|n| std::io::Error::from_raw_os_error(n).kind())
            == Some(std::io::ErrorKind::ResourceBusy);
        match busy {
            true if path_is_block(path) => CliError(format!(
                "{name} is busy: mounted or in use by another program"
            )),
            true => CliError(format!("{name} is in use by another command")),
            false => CliError(format!("cannot open {name}: {e}")),
        }
    })
}

fn path_is_block(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path)
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false)
}

/// Refuses a device named twice, under the same path or another (a symlink, a hard link, a
/// second node of the same block device): md would refuse to hold it twice. `missing` slots
/// are not devices.
pub fn check_distinct<'a>(paths: impl IntoIterator<Item = &'a Path>) -> CliResult {
    let mut seen: Vec<(DeviceIdentity, &Path)> = Vec::new();
    for p in paths {
        let id = DeviceIdentity::of_path(p)
            .map_err(|e| CliError(format!("cannot open {}: {e}", p.display())))?;
        if let Some((_, first)) = seen.iter().find(|(i, _)| *i == id) {
            return Err(CliError(format!(
                "{} and {} are the same device",
                first.display(),
                p.display()
            )));
        }
        seen.push((id, p));
    }
    Ok(())
}

/// Opens every member, each once.
pub fn open_all(paths: &[PathBuf], read_only: bool) -> CliResult<Vec<(String, FileDevice)>> {
    check_distinct(paths.iter().map(PathBuf::as_path))?;
    paths
        .iter()
        .map(|p| Ok((p.display().to_string(), open_dev(p, read_only)?)))
        .collect()
}

/// Assembles the array from `paths`, printing what md would log about left-out devices.
pub fn assemble(
    paths: &[PathBuf],
    opts: &AssembleOptions,
) -> CliResult<(Array<FileDevice>, AssembleReport<FileDevice>)> {
    if paths.is_empty() {
        return Err(CliError("no member devices given".into()));
    }
    let devs = open_all(paths, opts.readonly)?;
    let (mut array, report) = Array::assemble(devs, opts)?;
    // Real time: md's sync speed limits and safe-mode delay in seconds, utime from the clock.
    array.set_clock(Box::new(mdraid::array::SystemClock));
    for k in &report.kicked {
        eprintln!("mdraid: {} left out: {}", k.name, k.reason);
    }
    Ok((array, report))
}

/// Parses sizes the way mdadm does: a number with an optional K/M/G/T suffix (powers of 1024);
/// a bare number is bytes for offsets and lengths.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'B' => 1,
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'S' => 512,
                _ => return Err(format!("unknown size suffix in '{s}'")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// Parses a size the way mdadm's `parse_size` does for `--size` and `--bitmap-chunk`: a
/// positive number of KiB, or with a suffix `K`, `M`, `G`, `T` (powers of 1024, upper case
/// only) or `s` (512-byte sectors). Returns sectors.
pub fn parse_md_sectors(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if !c.is_ascii_digit() => {
            let m: u64 = match c {
                'K' => 2,
                'M' => 2 << 10,
                'G' => 2 << 20,
                'T' => 2 << 30,
                's' => 1,
                _ => return Err(format!("invalid size '{s}': use K, M, G, T or s")),
            };
            (&s[..i], m)
        }
        _ => (s, 2),
    };
    let n: u64 = num
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("invalid size '{s}'"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// `--size` on create: all the space the members offer, or a size per member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MdSize {
    /// `max`: what mdadm does without `--size`.
    Max,
    /// KiB per member.
    Kib(u64),
}

impl MdSize {
    /// KiB, `None` for `max`.
    pub fn kib(self) -> Option<u64> {
        match self {
            MdSize::Max => None,
            MdSize::Kib(k) => Some(k),
        }
    }
}

/// `--size`: mdadm's units (see [`parse_md_sectors`]), at least 4 KiB, or `max`.
pub fn parse_md_size_kib(s: &str) -> Result<MdSize, String> {
    if s == "max" {
        return Ok(MdSize::Max);
    }
    let sectors = parse_md_sectors(s)?;
    if sectors < 8 {
        return Err(format!("invalid size '{s}': at least 4K"));
    }
    Ok(MdSize::Kib(sectors / 2))
}

/// `--bitmap-chunk`: mdadm's units, a power of two number of sectors. Returns bytes.
pub fn parse_bitmap_chunk(s: &str) -> Result<u64, String> {
    let sectors = parse_md_sectors(s)?;
    if !sectors.is_power_of_two() {
        return Err(format!(
            "invalid bitmap chunk size '{s}': a power of two (e.g. 4K, 64M)"
        ));
    }
    Ok(sectors * 512)
}

#[cfg(test)]
mod tests {
    #[test]
    fn md_units() {
        use super::{parse_bitmap_chunk, parse_md_sectors, MdSize};
        let parse_md_size_kib = |s| super::parse_md_size_kib(s).map(MdSize::kib);
        // A bare number is KiB, as in mdadm.
        assert_eq!(parse_md_sectors("4"), Ok(8));
        assert_eq!(parse_md_size_kib("51200"), Ok(Some(51200)));
        assert_eq!(parse_md_size_kib("50M"), Ok(Some(51200)));
        assert_eq!(parse_md_size_kib("1G"), Ok(Some(1 << 20)));
        assert_eq!(parse_md_size_kib("2T"), Ok(Some(2 << 30)));
        assert_eq!(parse_md_size_kib("16s"), Ok(Some(8)));
        assert_eq!(parse_md_size_kib("max"), Ok(None));
        assert!(parse_md_size_kib("4s").is_err());
        assert!(parse_md_size_kib("0").is_err());
        assert!(parse_md_size_kib("-5").is_err());
        assert!(parse_md_size_kib("5m").is_err());
        assert!(parse_md_size_kib("5KB").is_err());
        assert!(parse_md_size_kib("").is_err());
        assert!(parse_md_size_kib("99999999999999T").is_err());
        assert_eq!(parse_bitmap_chunk("4"), Ok(4096));
        assert_eq!(parse_bitmap_chunk("64M"), Ok(64 << 20));
        assert!(parse_bitmap_chunk("3K").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("64K"), Ok(65536));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert_eq!(super::parse_size("1m"), Ok(1 << 20));
        assert!(super::parse_size("x").is_err());
        assert!(super::parse_size("99999999999T").is_err());
    }
}
