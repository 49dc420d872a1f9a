//! The report model shared by `--examine` and `--detail`: a list of lines, most of them
//! `key : value` fields, rendered to mdadm's exact text or walked as facts (for `--json`).
//!
//! Also the small pieces of mdadm's presentation that both reports use: its name tables for levels
//! and layouts and `ctime` text. (Human-readable sizes are in [`super::units`].)

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// One line of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Line {
    /// `key : value`, the key right-aligned to `width` columns (mdadm's layout).
    Field {
        /// The key without its alignment padding, e.g. "Magic".
        key: Cow<'static, str>,
        /// Everything after `" : "`, exactly as printed (mdadm sometimes leaves a trailing space).
        value: String,
        /// Columns the key is right-aligned to (15 for examine, 18 for detail, 14 for two
        /// examine lines).
        width: usize,
    },
    /// An empty line.
    Blank,
    /// A device-table row: its rendered text plus the same facts as named cells.
    Row {
        /// The line as mdadm prints it.
        text: String,
        /// (column, value) pairs: "number", "major", "minor", "raid_device", "state", "device".
        cells: Vec<(&'static str, String)>,
    },
    /// Any other line (headers, warnings), printed as is.
    Raw(String),
}

impl Line {
    /// A field line.
    pub fn field(
        key: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
        width: usize,
    ) -> Self {
        Line::Field {
            key: key.into(),
            value: value.into(),
            width,
        }
    }

    /// Writes the line's text (without newline) to `out`.
    pub fn render(&self, out: &mut String) {
        match self {
            Line::Field { key, value, width } => {
                let _ = write!(out, "{:>w$} : {}", key, value, w = *width);
            }
            Line::Blank => {}
            Line::Row { text, .. } => out.push_str(text),
            Line::Raw(s) => out.push_str(s),
        }
    }
}

/// A report: lines in mdadm's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The lines, first to last.
    pub lines: Vec<Line>,
}

impl Report {
    /// mdadm's text: every line followed by a newline.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            l.render(&mut s);
            s.push('\n');
        }
        s
    }

    /// The `key : value` fields in order, keys without padding.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lines.iter().filter_map(|l| match l {
            Line::Field { key, value, .. } => Some((key.as_ref(), value.as_str())),
            _ => None,
        })
    }

    /// The value of the first field named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The device-table rows, as named cells.
    pub fn rows(&self) -> impl Iterator<Item = &[(&'static str, String)]> {
        self.lines.iter().filter_map(|l| match l {
            Line::Row { cells, .. } => Some(cells.as_slice()),
            _ => None,
        })
    }

    pub(crate) fn field(
        &mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
        width: usize,
    ) {
        self.lines.push(Line::field(key, value, width));
    }

    pub(crate) fn blank(&mut self) {
        self.lines.push(Line::Blank);
    }

    pub(crate) fn raw(&mut self, s: impl Into<String>) {
        self.lines.push(Line::Raw(s.into()));
    }
}

/// `ctime()` text cut to 24 characters, as mdadm prints it with `%.24s`.
pub(crate) fn ctime24(secs: i64) -> String {
    let mut s = crate::time::UtcTime::from_unix(secs).ctime();
    s.truncate(24);
    s
}

/// mdadm's name for a RAID level (its `pers` table, first match), if it has one.
pub(crate) fn level_name(level: i32) -> Option<&'static str> {
    Some(match level {
        -1 => "linear",
        0 => "raid0",
        1 => "raid1",
        4 => "raid4",
        5 => "raid5",
        -4 => "multipath",
        6 => "raid6",
        10 => "raid10",
        -5 => "faulty",
        -100 => "container",
        _ => return None,
    })
}

/// mdadm's name for a RAID5 layout.
pub(crate) fn r5_layout_name(layout: u32) -> Option<&'static str> {
    Some(match layout {
        0 => "left-asymmetric",
        1 => "right-asymmetric",
        2 => "left-symmetric",
        3 => "right-symmetric",
        4 => "parity-first",
        5 => "parity-last",
        _ => return None,
    })
}

/// mdadm's name for a RAID6 layout.
pub(crate) fn r6_layout_name(layout: u32) -> Option<&'static str> {
    Some(match layout {
        8 => "ddf-zero-restart",
        9 => "ddf-N-restart",
        10 => "ddf-N-continue",
        16 => "left-asymmetric-6",
        17 => "right-asymmetric-6",
        18 => "left-symmetric-6",
        19 => "right-symmetric-6",
        20 => "parity-first-6",
        _ => return r5_layout_name(layout),
    })
}

/// mdadm's name for a RAID0 layout.
pub(crate) fn r0_layout_name(layout: u32) -> Option<&'static str> {
    Some(match layout {
        1 => "original",
        2 => "alternate",
        0 => "dangerous",
        _ => return None,
    })
}

/// mdadm's RAID10 layout text, e.g. `" near=2"` (with its leading space) or `"NO REDUNDANCY"`.
pub(crate) fn r10_layout(layout: u32) -> String {
    let near = layout & 255;
    let far = (layout >> 8) & 255;
    let offset = layout & 0x10000 != 0;
    let mut s = String::new();
    let mut sep = "";
    if near != 1 {
        let _ = write!(s, "{sep} near={near}");
        sep = ",";
    }
    if far != 1 {
        let kind = if offset { "offset" } else { "far" };
        let _ = write!(s, "{sep} {kind}={far}");
    }
    if near * far == 1 {
        s.push_str("NO REDUNDANCY");
    }
    s
}

/// Bytes up to the first NUL (at most `b.len()`), as text; invalid UTF-8 is replaced.
pub(crate) fn c_str(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r10_layouts() {
        assert_eq!(r10_layout(0x102), " near=2");
        assert_eq!(r10_layout(0x201), " far=2");
        assert_eq!(r10_layout(0x10201), " offset=2");
        assert_eq!(r10_layout(0x101), "NO REDUNDANCY");
        assert_eq!(r10_layout(0x202), " near=2, far=2");
    }

    #[test]
    fn render() {
        let mut r = Report::default();
        r.field("Magic", "a92b4efc", 15);
        r.blank();
        r.raw("x");
        assert_eq!(r.to_text(), "          Magic : a92b4efc\n\nx\n");
        assert_eq!(r.get("Magic"), Some("a92b4efc"));
    }
}
