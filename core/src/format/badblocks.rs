//! The bad-block log of a 1.x member.
//!
//! The log lives at `super_offset + bblog_offset` sectors and is `bblog_size` sectors long. Each
//! entry is a little-endian u64: the start in bits 63..10 and the length in bits 9..0 (the
//! length itself, 1..=512, not length-1), both in units of `2^bblog_shift` sectors. The start
//! is an absolute device sector, not an array sector. The first all-ones entry ends the list,
//! and md fills every unused entry with all-ones bytes. Feature bit 8 of the superblock is set
//! while the list is non-empty, and the kernel reads the area only then: until md first writes
//! it, the area holds what mdadm left there (all zeros in the fixtures, which decode as
//! zero-length entries). (Fixture r1-badblocks: `0x0000_0000_0040_0008` is 8 sectors at device
//! sector 4096.)
//!
//! The kernel keeps at most 512 entries (one page); it loads any entries (merging overlaps and
//! splitting lengths above 512) and writes its table back sorted, without overlaps, adjacent
//! ranges merged while an entry stays within 512 units. [`BadBlockLog`] keeps entries exactly as
//! stored so that `to_bytes(parse(x)) == x`; [`BadBlockLog::add`] and [`BadBlockLog::remove`]
//! work on the normalized form (see [`BadBlockLog::normalize`]).

use super::bytes::*;
use super::sb1::{Superblock1, FEATURE_BAD_BLOCKS};
use alloc::vec::Vec;

/// Most units one entry covers.
pub const BB_MAX_LEN: u64 = 512;
/// Most entries the kernel keeps (one 4 KiB page of 8-byte entries).
pub const BB_MAX_ENTRIES: usize = 512;
/// Largest `bblog_size` (sectors) the kernel loads.
pub const BB_MAX_LOG_SECTORS: u16 = 8;
/// Largest shift this implementation handles (keeps an entry's sector length within u32).
pub const BB_MAX_SHIFT: u8 = 22;
/// Bits of the on-disk start field.
const START_BITS: u32 = 54;

/// Errors decoding, encoding or editing a bad-block log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadBlockError {
    /// Fewer bytes than needed.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A `bblog_shift` larger than [`BB_MAX_SHIFT`].
    #[error("unsupported bad-block shift {0}")]
    BadShift(u8),
    /// A log larger than the kernel's one page (8 sectors).
    #[error("bad-block log of {0} sectors is larger than the kernel's 8")]
    LogTooLarge(u16),
    /// More entries than the log (or the kernel's table) holds.
    #[error("bad-block log full: {needed} entries needed, room for {capacity}")]
    LogFull {
        /// Entries the list needs.
        needed: usize,
        /// Entries that fit.
        capacity: usize,
    },
    /// A range that does not fit the on-disk encoding (start beyond 2^54 units, or an overflow).
    #[error("bad-block range at sector {start} (+{len}) cannot be encoded")]
    OutOfRange {
        /// First sector.
        start: u64,
        /// Sectors.
        len: u64,
    },
    /// An entry with length zero (the kernel ignores these; it never writes them).
    #[error("entry {0} has length zero")]
    ZeroLength(usize),
    /// An entry longer than 512 units or not aligned to the unit.
    #[error("entry {0} is longer than 512 units or not aligned to the unit")]
    BadLength(usize),
    /// An entry that starts before the end of the previous one.
    #[error("entry {0} is out of order or overlaps the previous one")]
    Unsorted(usize),
}

/// One bad range, in sectors (multiples of the log's unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BadBlock {
    /// First bad sector (absolute device sector).
    pub start_sector: u64,
    /// Bad sectors from there.
    pub len_sectors: u32,
}

impl BadBlock {
    /// One past the last bad sector.
    pub fn end(&self) -> u64 {
        self.start_sector
            .saturating_add(u64::from(self.len_sectors))
    }
}

/// Where the log is and how it stands, from the superblock alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStatus {
    /// No log configured (`bblog_size` or `bblog_offset` zero).
    NotConfigured,
    /// A log area exists but feature bit 8 says it is empty.
    Empty,
    /// The log holds entries.
    Present,
}

/// The log's status as mdadm judges it for `--examine-badblocks` (it also treats a
/// `bblog_size` above 100 sectors as not configured).
pub fn log_status(sb: &Superblock1) -> LogStatus {
    if sb.bblog_size == 0 || sb.bblog_size > 100 || sb.bblog_offset == 0 {
        LogStatus::NotConfigured
    } else if sb.feature_map & FEATURE_BAD_BLOCKS == 0 {
        LogStatus::Empty
    } else {
        LogStatus::Present
    }
}

/// Byte offset and byte length of a 1.x member's log (`super_offset + bblog_offset` sectors,
/// `bblog_size` sectors), or None when none is configured or the offset is not addressable.
pub fn log_location(sb: &Superblock1) -> Option<(u64, usize)> {
    if sb.bblog_size == 0 || sb.bblog_offset == 0 {
        return None;
    }
    let s = i128::from(sb.super_offset) + i128::from(sb.bblog_offset);
    let off = u64::try_from(s.checked_mul(512)?).ok()?;
    Some((off, usize::from(sb.bblog_size) * 512))
}

/// Entries a log of `size_sectors` holds, capped at the kernel's 512.
pub fn capacity(size_sectors: u16) -> usize {
    (usize::from(size_sectors) * 64).min(BB_MAX_ENTRIES)
}

/// A member's bad-block list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BadBlockLog {
    /// `bblog_shift`: entries count in units of `2^shift` sectors.
    pub shift: u8,
    /// Entries in stored order.
    pub entries: Vec<BadBlock>,
}

impl BadBlockLog {
    /// An empty list with the given unit.
    pub fn new(shift: u8) -> Result<Self, BadBlockError> {
        if shift > BB_MAX_SHIFT {
            return Err(BadBlockError::BadShift(shift));
        }
        Ok(BadBlockLog {
            shift,
            entries: Vec::new(),
        })
    }

    /// Decodes the entries of `buf` (the log area) up to the first all-ones entry. Entries are
    /// kept as stored, including zero-length or unsorted ones (see [`Self::validate`]).
    pub fn parse(buf: &[u8], shift: u8) -> Result<Self, BadBlockError> {
        let mut log = Self::new(shift)?;
        for chunk in buf.chunks_exact(8) {
            let raw = le64(chunk, 0);
            if raw == u64::MAX {
                break;
            }
            let units = raw >> 10;
            let count = (raw & 0x3ff) as u32;
            // units < 2^54 and shift <= 22: the start fits u64 only if units << shift does.
            let start_sector = units
                .checked_shl(u32::from(shift))
                .filter(|s| s >> shift == units)
                .ok_or(BadBlockError::OutOfRange {
                    start: units,
                    len: u64::from(count),
                })?;
            // count < 1024 and shift <= 22, so this stays below 2^32.
            let len_sectors = count << shift;
            log.entries.push(BadBlock {
                start_sector,
                len_sectors,
            });
        }
        Ok(log)
    }

    /// The list as the kernel loads it for a member: `buf` must hold the `bblog_size` sectors
    /// read from [`log_location`]; the shift comes from the superblock. The kernel reads the
    /// area only while feature bit 8 is set (until the first bad block is recorded the area is
    /// whatever mdadm left there, zeros in practice), so without the bit this is an empty list.
    /// Refuses logs the kernel would not load (more than 8 sectors). Use [`Self::parse`] to
    /// decode the area byte for byte regardless of the bit.
    pub fn parse_for(sb: &Superblock1, buf: &[u8]) -> Result<Self, BadBlockError> {
        if sb.feature_map & FEATURE_BAD_BLOCKS == 0 {
            return Self::new(sb.bblog_shift);
        }
        if sb.bblog_size > BB_MAX_LOG_SECTORS {
            return Err(BadBlockError::LogTooLarge(sb.bblog_size));
        }
        let need = usize::from(sb.bblog_size) * 512;
        let area = buf.get(..need).ok_or(BadBlockError::Truncated {
            need,
            have: buf.len(),
        })?;
        Self::parse(area, sb.bblog_shift)
    }

    fn unit(&self) -> u64 {
        1u64 << self.shift.min(BB_MAX_SHIFT)
    }

    fn encode_entry(&self, e: &BadBlock) -> Result<u64, BadBlockError> {
        let unit = self.unit();
        let bad = BadBlockError::OutOfRange {
            start: e.start_sector,
            len: u64::from(e.len_sectors),
        };
        let units = e.start_sector >> self.shift;
        let count = u64::from(e.len_sectors) >> self.shift;
        if e.start_sector % unit != 0
            || u64::from(e.len_sectors) % unit != 0
            || units >= 1 << START_BITS
            || count > 0x3ff
        {
            return Err(bad);
        }
        Ok((units << 10) | count)
    }

    /// Writes the entries over `buf` and fills the rest of it with all-ones bytes, as md does.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<(), BadBlockError> {
        if self.shift > BB_MAX_SHIFT {
            return Err(BadBlockError::BadShift(self.shift));
        }
        let cap = buf.len() / 8;
        if self.entries.len() > cap {
            return Err(BadBlockError::LogFull {
                needed: self.entries.len(),
                capacity: cap,
            });
        }
        let raws = self
            .entries
            .iter()
            .map(|e| self.encode_entry(e))
            .collect::<Result<Vec<_>, _>>()?;
        buf.iter_mut().for_each(|b| *b = 0xff);
        for (i, raw) in raws.into_iter().enumerate() {
            put64(buf, i * 8, raw);
        }
        Ok(())
    }

    /// The log area of `size_sectors` sectors: entries, then all-ones.
    pub fn to_bytes(&self, size_sectors: u16) -> Result<Vec<u8>, BadBlockError> {
        let mut v = alloc::vec![0xffu8; usize::from(size_sectors) * 512];
        self.encode_into(&mut v)?;
        Ok(v)
    }

    /// Checks the form the kernel writes: every entry 1..=512 units long and aligned to the
    /// unit, entries sorted and not overlapping. (The kernel's loader is laxer: it merges
    /// whatever it reads; [`Self::normalize`] does the same.)
    pub fn validate(&self) -> Result<(), BadBlockError> {
        if self.shift > BB_MAX_SHIFT {
            return Err(BadBlockError::BadShift(self.shift));
        }
        let unit = self.unit();
        let mut prev_end = 0u64;
        for (i, e) in self.entries.iter().enumerate() {
            let len = u64::from(e.len_sectors);
            if len == 0 {
                return Err(BadBlockError::ZeroLength(i));
            }
            if len > BB_MAX_LEN * unit || len % unit != 0 || e.start_sector % unit != 0 {
                return Err(BadBlockError::BadLength(i));
            }
            if i > 0 && e.start_sector < prev_end {
                return Err(BadBlockError::Unsorted(i));
            }
            prev_end = e.end();
        }
        Ok(())
    }

    /// Bad ranges as sorted, disjoint, non-adjacent `(start, end)` sector pairs.
    fn extents(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .entries
            .iter()
            .filter(|e| e.len_sectors > 0)
            .map(|e| (e.start_sector, e.end()))
            .collect();
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        out
    }

    /// Rebuilds entries from sorted extents: each extent split from its start into pieces of at
    /// most 512 units (what the kernel's merging produces).
    fn entries_from(&self, extents: &[(u64, u64)]) -> Vec<BadBlock> {
        let max = BB_MAX_LEN * self.unit();
        let mut v = Vec::new();
        for &(s, e) in extents {
            let mut at = s;
            while at < e {
                let len = (e - at).min(max);
                v.push(BadBlock {
                    start_sector: at,
                    len_sectors: len as u32, // at most 512 << 22 < 2^32
                });
                at += len;
            }
        }
        v
    }

    /// Sorts and merges the entries as the kernel would after loading them: overlapping and
    /// adjacent ranges join, zero-length entries go, pieces longer than 512 units split.
    pub fn normalize(&mut self) {
        let ext = self.extents();
        self.entries = self.entries_from(&ext);
    }

    /// Entries the normalized list would need.
    pub fn normalized_len(&self) -> usize {
        let ext = self.extents();
        self.entries_from(&ext).len()
    }

    fn commit(&mut self, ext: &[(u64, u64)], capacity: usize) -> Result<(), BadBlockError> {
        let cap = capacity.min(BB_MAX_ENTRIES);
        let entries = self.entries_from(ext);
        for e in &entries {
            self.encode_entry(e)?;
        }
        if entries.len() > cap {
            return Err(BadBlockError::LogFull {
                needed: entries.len(),
                capacity: cap,
            });
        }
        self.entries = entries;
        Ok(())
    }

    /// Records `len` bad sectors from `start` (rounded out to whole units, as the kernel's
    /// badblocks_set does) and normalizes the list. Fails without changing anything when the
    /// result needs more than `capacity` entries (see [`capacity`]) or cannot be encoded.
    pub fn add(&mut self, start: u64, len: u64, capacity: usize) -> Result<(), BadBlockError> {
        if self.shift > BB_MAX_SHIFT {
            return Err(BadBlockError::BadShift(self.shift));
        }
        if len == 0 {
            return Ok(());
        }
        let oor = BadBlockError::OutOfRange { start, len };
        let unit = self.unit();
        let end = start.checked_add(len).ok_or(oor.clone())?;
        let s = start - start % unit;
        let e = end.div_ceil(unit).checked_mul(unit).ok_or(oor)?;
        let mut ext = self.extents();
        ext.push((s, e));
        ext.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ext.len());
        for (a, b) in ext {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.commit(&merged, capacity)
    }

    /// Forgets bad sectors in `len` sectors from `start` (only whole units inside the range, as
    /// the kernel's badblocks_clear does) and normalizes the list. Splitting a range can need an
    /// extra entry: fails without changing anything when the result exceeds `capacity`.
    pub fn remove(&mut self, start: u64, len: u64, capacity: usize) -> Result<(), BadBlockError> {
        if self.shift > BB_MAX_SHIFT {
            return Err(BadBlockError::BadShift(self.shift));
        }
        let unit = self.unit();
        let end = start.saturating_add(len);
        let s = start.div_ceil(unit).saturating_mul(unit);
        let e = end - end % unit;
        let mut out = Vec::new();
        for (a, b) in self.extents() {
            if s >= e || b <= s || a >= e {
                out.push((a, b));
                continue;
            }
            if a < s {
                out.push((a, s));
            }
            if b > e {
                out.push((e, b));
            }
        }
        self.commit(&out, capacity)
    }

    /// Whether any sector in `[start, start + len)` is bad.
    pub fn is_bad(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len);
        len > 0
            && self
                .entries
                .iter()
                .any(|e| e.len_sectors > 0 && e.start_sector < end && start < e.end())
    }

    /// The first bad stretch touching `[start, start + len)`: `(first, sectors)` of the whole
    /// contiguous bad extent (adjacent entries joined) that holds the lowest bad sector in the
    /// range. `first` may lie before `start`, as with the kernel's is_badblock.
    pub fn first_bad(&self, start: u64, len: u64) -> Option<(u64, u64)> {
        if len == 0 {
            return None;
        }
        let end = start.saturating_add(len);
        self.extents()
            .into_iter()
            .find(|&(a, b)| a < end && start < b)
            .map(|(a, b)| (a, b - a))
    }

    /// Total bad sectors (overlaps counted once).
    pub fn bad_sectors(&self) -> u64 {
        self.extents().iter().map(|(a, b)| b - a).sum()
    }

    /// Whether the list is empty (feature bit 8 should then be clear).
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(|e| e.len_sectors == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn bb(s: u64, l: u32) -> BadBlock {
        BadBlock {
            start_sector: s,
            len_sectors: l,
        }
    }

    #[test]
    fn fixture_entry_encoding() {
        let mut buf = vec![0xffu8; 4096];
        buf[..8].copy_from_slice(&0x0040_0008u64.to_le_bytes());
        let log = BadBlockLog::parse(&buf, 0).unwrap();
        assert_eq!(log.entries, vec![bb(4096, 8)]);
        assert_eq!(log.to_bytes(8).unwrap(), buf);
        assert!(log.validate().is_ok());
        assert!(log.is_bad(4100, 1));
        assert!(!log.is_bad(4104, 100));
        assert!(!log.is_bad(4000, 96));
        assert!(log.is_bad(4000, 97));
        assert_eq!(log.first_bad(4000, 200), Some((4096, 8)));
        assert_eq!(log.first_bad(4100, 1), Some((4096, 8)));
        assert_eq!(log.first_bad(0, 4096), None);
    }

    #[test]
    fn shift_units() {
        let mut buf = vec![0xffu8; 512];
        // start 10 units, 3 units, shift 3 -> sector 80, 24 sectors.
        buf[..8].copy_from_slice(&((10u64 << 10) | 3).to_le_bytes());
        let mut log = BadBlockLog::parse(&buf, 3).unwrap();
        assert_eq!(log.entries, vec![bb(80, 24)]);
        assert_eq!(log.to_bytes(1).unwrap(), buf);
        // Adding rounds out to 8-sector units (104..112), which touches 80..104: they join.
        log.add(105, 2, 64).unwrap();
        assert_eq!(log.entries, vec![bb(80, 32)]);
        // Removing rounds in: 81..95 holds no whole unit, 81..97 holds only 88..96.
        log.remove(81, 14, 64).unwrap();
        assert_eq!(log.entries, vec![bb(80, 32)]);
        log.remove(81, 16, 64).unwrap();
        assert_eq!(log.entries, vec![bb(80, 8), bb(96, 16)]);
        assert!(BadBlockLog::new(23).is_err());
        assert!(BadBlockLog::parse(&buf, 40).is_err());
        let bad = BadBlockLog {
            shift: 3,
            entries: vec![bb(81, 8)],
        };
        assert!(bad.to_bytes(1).is_err());
        assert_eq!(bad.validate(), Err(BadBlockError::BadLength(0)));
    }

    #[test]
    fn add_merges_and_splits() {
        let mut log = BadBlockLog::new(0).unwrap();
        log.add(100, 10, 512).unwrap();
        log.add(120, 10, 512).unwrap();
        assert_eq!(log.entries, vec![bb(100, 10), bb(120, 10)]);
        log.add(110, 10, 512).unwrap();
        assert_eq!(log.entries, vec![bb(100, 30)]);
        log.add(0, 0, 512).unwrap();
        assert_eq!(log.entries.len(), 1);
        log.add(130, 1000, 512).unwrap();
        assert_eq!(log.entries, vec![bb(100, 512), bb(612, 512), bb(1124, 6)]);
        assert_eq!(log.bad_sectors(), 1030);
        // Capacity is checked and the list is unchanged on failure.
        let before = log.clone();
        assert_eq!(
            log.add(5000, 1, 3),
            Err(BadBlockError::LogFull {
                needed: 4,
                capacity: 3
            })
        );
        assert_eq!(log, before);
        assert!(log.add(u64::MAX - 1, 5, 512).is_err());
        assert!(log.add(1 << 54, 1, 512).is_err());
        assert_eq!(log, before);
    }

    #[test]
    fn remove_splits() {
        let mut log = BadBlockLog::new(0).unwrap();
        log.add(0, 100, 512).unwrap();
        log.remove(40, 10, 512).unwrap();
        assert_eq!(log.entries, vec![bb(0, 40), bb(50, 50)]);
        let before = log.clone();
        assert!(matches!(
            log.remove(10, 5, 2),
            Err(BadBlockError::LogFull { .. })
        ));
        assert_eq!(log, before);
        log.remove(0, 1000, 512).unwrap();
        assert!(log.entries.is_empty());
        assert!(log.is_empty());
        assert_eq!(log.to_bytes(8).unwrap(), vec![0xffu8; 4096]);
    }

    #[test]
    fn validate_and_normalize() {
        let mut log = BadBlockLog {
            shift: 0,
            entries: vec![bb(50, 10), bb(0, 0), bb(55, 10), bb(0, 20)],
        };
        assert_eq!(log.validate(), Err(BadBlockError::ZeroLength(1)));
        log.entries.remove(1);
        assert_eq!(log.validate(), Err(BadBlockError::Unsorted(1)));
        assert_eq!(log.normalized_len(), 2);
        log.normalize();
        assert_eq!(log.entries, vec![bb(0, 20), bb(50, 15)]);
        assert!(log.validate().is_ok());
        // Raw lengths above 512 units parse (the kernel splits them) and normalize splits.
        let mut buf = vec![0xffu8; 512];
        buf[..8].copy_from_slice(&((1u64 << 10) | 1000).to_le_bytes());
        buf[8..16].copy_from_slice(&(5000u64 << 10).to_le_bytes());
        let mut l2 = BadBlockLog::parse(&buf, 0).unwrap();
        assert_eq!(l2.entries, vec![bb(1, 1000), bb(5000, 0)]);
        assert_eq!(l2.to_bytes(1).unwrap(), buf);
        assert_eq!(l2.validate(), Err(BadBlockError::BadLength(0)));
        l2.normalize();
        assert_eq!(l2.entries, vec![bb(1, 512), bb(513, 488)]);
        // Too many entries for the area.
        assert!(matches!(l2.to_bytes(0), Err(BadBlockError::LogFull { .. })));
    }

    #[test]
    fn sizes() {
        assert_eq!(capacity(8), 512);
        assert_eq!(capacity(1), 64);
        assert_eq!(capacity(100), 512);
        assert_eq!(capacity(0), 0);
    }
}
