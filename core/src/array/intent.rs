//! The array's write-intent bitmap in use: an in-memory copy of the on-disk bitmap, written to
//! every working member before a write reaches a clean chunk (md's set-before-write rule), and
//! cleared when the array stops clean with all mirrors present.

use super::Member;
use crate::device::BlockDevice;
use crate::format::bitmap::{location_sb0, location_sb1, Bitmap, BitmapSuper};
use crate::format::probe::Superblock;
use crate::format::FormatError;
use crate::{Result, SECTOR_SIZE};
use alloc::vec::Vec;

/// The bitmap of a running array.
#[derive(Debug, Clone)]
pub struct IntentBitmap {
    /// Header and bits as md would have them now.
    pub bitmap: Bitmap,
    /// Whole sectors that hold header and bits, as last read or written; bytes past the bits
    /// are kept as they were (mdadm pads with ones).
    raw: Vec<u8>,
}

/// Byte offset of a member's bitmap, if its superblock says it has one.
pub(crate) fn location(sb: &Superblock, dev_sectors: u64) -> Option<u64> {
    match sb {
        Superblock::V1(s, _) => location_sb1(s),
        Superblock::V0(s) => location_sb0(s, dev_sectors),
    }
}

impl IntentBitmap {
    /// Reads the bitmap of `m`, if its superblock has one; stale bitmaps come back all dirty
    /// (the kernel's rule when the bitmap's events are older than the superblock's).
    pub(crate) fn load<D: BlockDevice>(m: &mut Member<D>) -> Result<Option<Self>> {
        let Some(off) = location(&m.sb, m.dev_sectors) else {
            return Ok(None);
        };
        // Whole logical blocks: md writes the bitmap in those, so the bytes past the bits up
        // to the block's end are read (and kept) too; the header is read as one block.
        let unit = crate::device::block_bytes(m.dev.logical_block_size()).max(SECTOR_SIZE);
        let mut head = alloc::vec![0u8; unit as usize];
        m.dev.read_at(off, &mut head)?;
        let header = BitmapSuper::parse(&head[..256]).map_err(FormatError::from)?;
        let len = header.byte_len().div_ceil(unit) * unit;
        let len = usize::try_from(len).map_err(|_| {
            FormatError::from(crate::format::BitmapError::TooLarge {
                chunks: header.chunks(),
            })
        })?;
        let mut raw = alloc::vec![0u8; len];
        m.dev.read_at(off, &mut raw)?;
        let mut bitmap = Bitmap::parse(&raw).map_err(FormatError::from)?;
        bitmap.apply_stale_rule(m.sb.events());
        Ok(Some(IntentBitmap { bitmap, raw }))
    }

    /// A bitmap that exists only in memory so far (a grown one): its image is header and bits
    /// in whole sectors.
    pub(crate) fn fresh(bitmap: Bitmap) -> Result<Self> {
        let len = bitmap.header.byte_len().div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
        let len = usize::try_from(len).map_err(|_| {
            FormatError::from(crate::format::BitmapError::TooLarge {
                chunks: bitmap.header.chunks(),
            })
        })?;
        let mut bm = IntentBitmap {
            bitmap,
            raw: alloc::vec![0u8; len],
        };
        let events = bm.bitmap.header.events;
        bm.encode(events)?;
        Ok(bm)
    }

    /// Clears every bit and records that everything up to `events` is in sync on all mirrors.
    pub(crate) fn clear_all(&mut self, events: u64) {
        self.bitmap.bits.iter_mut().for_each(|b| *b = 0);
        self.bitmap.header.events_cleared = events;
    }

    /// Stamps `events` into the header (events_cleared never ahead of it) and encodes header
    /// and bits into the whole sectors that hold them, which come back.
    pub(crate) fn encode(&mut self, events: u64) -> Result<&[u8]> {
        self.bitmap.header.events = events;
        // mutants: `>` → `>=` is equivalent: at equality the assignment stores the value
        // already there (excluded).
        if self.bitmap.header.events_cleared > events {
            self.bitmap.header.events_cleared = events;
        }
        self.bitmap
            .encode_into(&mut self.raw)
            .map_err(FormatError::from)?;
        Ok(&self.raw)
    }

    /// Extends the image to a whole number of `unit`-byte blocks (a member with larger blocks
    /// than the one it was read from), padding as mdadm pads the space past the bits: ones.
    pub(crate) fn pad_to(&mut self, unit: usize) {
        let len = self.raw.len().div_ceil(unit.max(1)) * unit.max(1);
        self.raw.resize(len, 0xff);
    }

    /// The encoded bitmap as last [`Self::encode`]d (whole sectors).
    pub(crate) fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Byte range within [`Self::raw`] of the 4 KiB pages holding the bits of chunks
    /// `first..end` (md writes a bitmap page at a time; the last page may be short).
    pub(crate) fn pages_of(&self, first: u64, end: u64) -> core::ops::Range<usize> {
        const PAGE: u64 = 4096;
        let header = crate::format::bitmap::BITMAP_HEADER_BYTES as u64;
        let lo = (header + first / 8) / PAGE * PAGE;
        // mutants: `first + 1` → `first * 1` is equivalent: every caller asks for end > first
        // (a set/clear step only for a chunk in range, the superblock round's 0..1, the grow's
        // 0..chunks), where the max is `end` either way; for 0..0 the 256-byte header puts
        // both in page 0 (excluded).
        let hi = (header + end.max(first + 1).div_ceil(8)).div_ceil(PAGE) * PAGE;
        let len = self.raw.len() as u64;
        (lo.min(len) as usize)..(hi.min(len) as usize)
    }

    /// Number of dirty chunks.
    pub fn dirty_chunks(&self) -> u64 {
        self.bitmap.count_dirty()
    }
}
