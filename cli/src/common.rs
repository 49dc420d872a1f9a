//! Helpers shared by the verbs: opening members, sizes, clock, errors.

use mdraid::array::{Array, AssembleOptions, AssembleReport};
use mdraid::device::{FileDevice, OpenOptions};
use std::fmt;
use std::path::PathBuf;

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

/// Opens a member device, naming it in any error.
pub fn open_dev(path: &PathBuf, read_only: bool) -> CliResult<FileDevice> {
    FileDevice::open_with(
        path,
        OpenOptions {
            read_only,
            direct: false,
        },
    )
    .map_err(|e| CliError(format!("cannot open {}: {e}", path.display())))
}

/// Opens every member.
pub fn open_all(paths: &[PathBuf], read_only: bool) -> CliResult<Vec<(String, FileDevice)>> {
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
    let (array, report) = Array::assemble(devs, opts)?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("64K"), Ok(65536));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert_eq!(super::parse_size("1m"), Ok(1 << 20));
        assert!(super::parse_size("x").is_err());
        assert!(super::parse_size("99999999999T").is_err());
    }
}
