//! md's write-intent bitmap: a 256-byte header followed by one bit per chunk.
//!
//! Layout (all little-endian; the kernel's `bitmap_super_s`, mirrored by mdadm's `bitmap.h`):
//!
//! | off | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `0x6d746962` ("bitm") |
//! | 4 | 4 | version: 3 host-endian bits, 4 little-endian bits (default), 5 clustered |
//! | 8 | 16 | uuid of the array |
//! | 24 | 8 | events when the bitmap was last written |
//! | 32 | 8 | events_cleared: events when bits were last cleared |
//! | 40 | 8 | sync_size: sectors covered (the array's resync range) |
//! | 48 | 4 | state: bit 1 stale (out of date), bit 2 write error |
//! | 52 | 4 | chunksize in bytes (power of two, at least 512) |
//! | 56 | 4 | daemon_sleep in seconds |
//! | 60 | 4 | write_behind: outstanding write-behind writes allowed (0..=16383) |
//! | 64 | 4 | sectors_reserved for the bitmap |
//! | 68 | 4 | nodes (clustered bitmaps) |
//! | 72 | 64 | cluster_name |
//! | 136 | 120 | padding |
//!
//! Chunk `i` is bit `i % 8` (LSB first) of byte `i / 8` after the header. On little-endian hosts
//! the host-endian version 3 has the same bit order, so both are read the same way.
//!
//! Where it lives: for 1.x members at `super_offset + bitmap_offset` sectors when feature bit 1
//! is set ([`location_sb1`]); for 0.90 members 4 KiB after the superblock when state bit 8 is set
//! ([`location_sb0`]). A clustered bitmap holds one such bitmap per node, each padded to 4 KiB
//! ([`BitmapSuper::node_offset_sectors`]).

use super::bytes::*;
use super::sb0::{self, Superblock0};
use super::sb1::{Superblock1, FEATURE_BITMAP_OFFSET};
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

/// `magic` of every bitmap ("bitm" in little-endian).
pub const BITMAP_MAGIC: u32 = 0x6d74_6962;
/// Header size in bytes; the bits follow directly.
pub const BITMAP_HEADER_BYTES: usize = 256;
/// Oldest version the kernel reads: bits in host byte order.
pub const BITMAP_MAJOR_HOSTENDIAN: u32 = 3;
/// The version md writes: bits little-endian.
pub const BITMAP_MAJOR_HI: u32 = 4;
/// Clustered bitmaps (one per node).
pub const BITMAP_MAJOR_CLUSTERED: u32 = 5;
/// `state` bit: the bitmap is out of date (every chunk must be resynced).
pub const BITMAP_STATE_STALE: u32 = 1 << 1;
/// `state` bit: a bitmap write failed.
pub const BITMAP_STATE_WRITE_ERROR: u32 = 1 << 2;
/// Largest `write_behind` the kernel accepts (its per-chunk counter limit).
pub const WRITE_BEHIND_MAX: u32 = 16383;
/// Smallest chunk size the kernel accepts, in bytes.
pub const MIN_CHUNK_BYTES: u32 = 512;
/// Largest bits area [`Bitmap::new`] / [`Bitmap::parse`] will hold (1 GiB of bits = 2^33
/// chunks); bounds allocations made from untrusted headers.
pub const MAX_BITS_BYTES: u64 = 1 << 30;

/// Errors decoding, validating or using a bitmap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitmapError {
    /// Fewer bytes than needed.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// No bitmap magic.
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    /// A version the kernel does not read (it knows 3, 4 and 5).
    #[error("unsupported bitmap version {0}")]
    UnsupportedVersion(u32),
    /// Chunk size zero, below 512 bytes or not a power of two.
    #[error("bad chunk size {0} bytes")]
    BadChunkSize(u32),
    /// daemon_sleep of zero seconds.
    #[error("daemon sleep period {0} out of range")]
    BadDaemonSleep(u32),
    /// write_behind above 16383.
    #[error("write-behind limit {0} out of range (0 - 16383)")]
    BadWriteBehind(u32),
    /// The bits area this header describes is larger than [`MAX_BITS_BYTES`] (or than memory
    /// can address).
    #[error("bitmap of {chunks} chunks is too large")]
    TooLarge {
        /// Chunks described by the header.
        chunks: u64,
    },
    /// A chunk index beyond the bitmap.
    #[error("chunk {chunk} is beyond the bitmap's {chunks} chunks")]
    ChunkOutOfRange {
        /// The index asked for.
        chunk: u64,
        /// Chunks in the bitmap.
        chunks: u64,
    },
    /// The bits vector does not match the header's chunk count.
    #[error("bits area holds {have} bytes, header needs {need}")]
    BitsLength {
        /// Bytes the header needs.
        need: usize,
        /// Bytes held.
        have: usize,
    },
}

/// Chunks needed to cover `sync_size` sectors with `chunksize`-byte chunks:
/// `ceil(sync_size * 512 / chunksize)` (mdadm's `bitmap_bits`). Zero when `chunksize` is zero.
pub fn chunk_count(sync_size: u64, chunksize: u32) -> u64 {
    if chunksize == 0 {
        return 0;
    }
    let bytes = u128::from(sync_size) * 512;
    let c = u128::from(chunksize);
    // At most 2^64 * 512 / 1, which fits u128; the quotient fits u64 for chunksize >= 512.
    u64::try_from(bytes.div_ceil(c)).unwrap_or(u64::MAX)
}

/// Bytes of bits for `chunks` chunks: `ceil(chunks / 8)`.
pub fn bits_bytes(chunks: u64) -> u64 {
    chunks.div_ceil(8)
}

/// The 256-byte bitmap header, field for field. Untrusted until [`BitmapSuper::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitmapSuper {
    /// Offset 0: [`BITMAP_MAGIC`] when valid.
    pub magic: u32,
    /// Offset 4: 3, 4 or 5.
    pub version: u32,
    /// Offset 8: the array's UUID, in superblock byte order.
    pub uuid: [u8; 16],
    /// Offset 24.
    pub events: u64,
    /// Offset 32.
    pub events_cleared: u64,
    /// Offset 40: sectors covered.
    pub sync_size: u64,
    /// Offset 48: `BITMAP_STATE_*` bits.
    pub state: u32,
    /// Offset 52: bytes per chunk.
    pub chunksize: u32,
    /// Offset 56: seconds between bitmap daemon passes.
    pub daemon_sleep: u32,
    /// Offset 60.
    pub write_behind: u32,
    /// Offset 64: sectors reserved for the bitmap (0 when the writer did not say).
    pub sectors_reserved: u32,
    /// Offset 68: cluster nodes (version 5).
    pub nodes: u32,
    /// Offset 72: cluster name, NUL padded.
    pub cluster_name: [u8; 64],
    /// Offset 136..256: padding, kept as read.
    pub pad: [u8; 120],
}

impl BitmapSuper {
    /// A fresh header the way md writes one for a new array: version 4, the given geometry,
    /// daemon_sleep 5 s, no write-behind, zero events.
    pub fn new(uuid: [u8; 16], sync_size: u64, chunksize: u32) -> Self {
        BitmapSuper {
            magic: BITMAP_MAGIC,
            version: BITMAP_MAJOR_HI,
            uuid,
            events: 0,
            events_cleared: 0,
            sync_size,
            state: 0,
            chunksize,
            daemon_sleep: 5,
            write_behind: 0,
            sectors_reserved: 0,
            nodes: 0,
            cluster_name: [0; 64],
            pad: [0; 120],
        }
    }

    /// Decodes the first 256 bytes of `buf` without checking anything but the length (for
    /// reporting what lies where a bitmap should be, as `mdadm --examine-bitmap` does).
    pub fn decode(buf: &[u8]) -> Result<Self, BitmapError> {
        if buf.len() < BITMAP_HEADER_BYTES {
            return Err(BitmapError::Truncated {
                need: BITMAP_HEADER_BYTES,
                have: buf.len(),
            });
        }
        Ok(BitmapSuper {
            magic: le32(buf, 0),
            version: le32(buf, 4),
            uuid: arr(buf, 8),
            events: le64(buf, 24),
            events_cleared: le64(buf, 32),
            sync_size: le64(buf, 40),
            state: le32(buf, 48),
            chunksize: le32(buf, 52),
            daemon_sleep: le32(buf, 56),
            write_behind: le32(buf, 60),
            sectors_reserved: le32(buf, 64),
            nodes: le32(buf, 68),
            cluster_name: arr(buf, 72),
            pad: arr(buf, 136),
        })
    }

    /// Decodes a header, checking the length and the magic. Use [`Self::validate`] for the
    /// kernel's load checks.
    pub fn parse(buf: &[u8]) -> Result<Self, BitmapError> {
        let h = Self::decode(buf)?;
        if h.magic != BITMAP_MAGIC {
            return Err(BitmapError::BadMagic(h.magic));
        }
        Ok(h)
    }

    /// Encodes the 256 bytes exactly as the fields say.
    pub fn to_bytes(&self) -> [u8; BITMAP_HEADER_BYTES] {
        let mut b = [0u8; BITMAP_HEADER_BYTES];
        put32(&mut b, 0, self.magic);
        put32(&mut b, 4, self.version);
        b[8..24].copy_from_slice(&self.uuid);
        put64(&mut b, 24, self.events);
        put64(&mut b, 32, self.events_cleared);
        put64(&mut b, 40, self.sync_size);
        put32(&mut b, 48, self.state);
        put32(&mut b, 52, self.chunksize);
        put32(&mut b, 56, self.daemon_sleep);
        put32(&mut b, 60, self.write_behind);
        put32(&mut b, 64, self.sectors_reserved);
        put32(&mut b, 68, self.nodes);
        b[72..136].copy_from_slice(&self.cluster_name);
        b[136..256].copy_from_slice(&self.pad);
        b
    }

    /// The kernel's load checks (md_bitmap_read_sb), in its order: magic, version 3..=5,
    /// chunk size at least 512 and a power of two, daemon_sleep non-zero, write_behind at most
    /// 16383. (The UUID and events are compared with the array by the caller; see
    /// [`Bitmap::is_stale`].)
    pub fn validate(&self) -> Result<(), BitmapError> {
        if self.magic != BITMAP_MAGIC {
            return Err(BitmapError::BadMagic(self.magic));
        }
        if !(BITMAP_MAJOR_HOSTENDIAN..=BITMAP_MAJOR_CLUSTERED).contains(&self.version) {
            return Err(BitmapError::UnsupportedVersion(self.version));
        }
        if self.chunksize < MIN_CHUNK_BYTES || !self.chunksize.is_power_of_two() {
            return Err(BitmapError::BadChunkSize(self.chunksize));
        }
        if self.daemon_sleep == 0 {
            return Err(BitmapError::BadDaemonSleep(self.daemon_sleep));
        }
        if self.write_behind > WRITE_BEHIND_MAX {
            return Err(BitmapError::BadWriteBehind(self.write_behind));
        }
        Ok(())
    }

    /// Chunks covering `sync_size` (0 when chunksize is 0).
    pub fn chunks(&self) -> u64 {
        chunk_count(self.sync_size, self.chunksize)
    }

    /// Bytes of bits after the header.
    pub fn bits_len(&self) -> u64 {
        bits_bytes(self.chunks())
    }

    /// Header plus bits, in bytes.
    pub fn byte_len(&self) -> u64 {
        self.bits_len().saturating_add(BITMAP_HEADER_BYTES as u64)
    }

    /// Sectors that header plus bits occupy.
    pub fn sectors(&self) -> u64 {
        self.byte_len().div_ceil(512)
    }

    /// Header plus bits rounded up to `boundary` bytes (mdadm's `calc_bitmap_size`; md pads each
    /// node's bitmap to 4096). `boundary` 0 is treated as 1.
    pub fn space_bytes(&self, boundary: u64) -> u64 {
        let b = boundary.max(1);
        self.byte_len().div_ceil(b).saturating_mul(b)
    }

    /// Sector offset of node `slot`'s bitmap from the first one, in a clustered bitmap.
    pub fn node_offset_sectors(&self, slot: u32) -> u64 {
        (self.space_bytes(4096) / 512).saturating_mul(u64::from(slot))
    }

    /// Sectors per chunk (chunksize / 512), or None when the chunk size is not usable.
    pub fn chunk_sectors(&self) -> Option<u64> {
        (self.chunksize >= MIN_CHUNK_BYTES && self.chunksize.is_power_of_two())
            .then(|| u64::from(self.chunksize) / 512)
    }

    /// The chunks touched by `len` sectors from array sector `start` (an empty range for
    /// `len == 0`; clipped to the bitmap). None when the chunk size is not usable.
    pub fn chunks_for(&self, start: u64, len: u64) -> Option<Range<u64>> {
        let cs = self.chunk_sectors()?;
        let n = self.chunks();
        if len == 0 {
            let c = (start / cs).min(n);
            return Some(c..c);
        }
        let first = start / cs;
        let last = start.saturating_add(len - 1) / cs;
        Some(first.min(n)..last.saturating_add(1).min(n))
    }

    /// Whether the stale bit is set in `state`.
    pub fn stale_flag(&self) -> bool {
        self.state & BITMAP_STATE_STALE != 0
    }
}

/// A bitmap: header plus the bits for `header.chunks()` chunks (trailing bits in the last byte
/// are kept as read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    /// The header.
    pub header: BitmapSuper,
    /// `ceil(chunks / 8)` bytes, chunk `i` at bit `i % 8` of byte `i / 8`.
    pub bits: Vec<u8>,
}

impl Bitmap {
    /// A bitmap with every chunk clean, for `header`'s geometry.
    pub fn new(header: BitmapSuper) -> Result<Self, BitmapError> {
        let len = Self::bits_len_checked(&header)?;
        Ok(Bitmap {
            header,
            bits: vec![0u8; len],
        })
    }

    fn bits_len_checked(h: &BitmapSuper) -> Result<usize, BitmapError> {
        if h.chunksize == 0 {
            return Err(BitmapError::BadChunkSize(0));
        }
        let chunks = h.chunks();
        let n = bits_bytes(chunks);
        if n > MAX_BITS_BYTES {
            return Err(BitmapError::TooLarge { chunks });
        }
        usize::try_from(n).map_err(|_| BitmapError::TooLarge { chunks })
    }

    /// Decodes header and bits from `buf` (which starts at the bitmap's first byte and holds at
    /// least [`BitmapSuper::byte_len`] bytes). Checks the magic and that the chunk size is
    /// non-zero; [`BitmapSuper::validate`] does the rest.
    pub fn parse(buf: &[u8]) -> Result<Self, BitmapError> {
        let header = BitmapSuper::parse(buf)?;
        let len = Self::bits_len_checked(&header)?;
        let need = BITMAP_HEADER_BYTES + len;
        let bits = buf
            .get(BITMAP_HEADER_BYTES..need)
            .ok_or(BitmapError::Truncated {
                need,
                have: buf.len(),
            })?
            .to_vec();
        Ok(Bitmap { header, bits })
    }

    /// Header followed by the bits.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(BITMAP_HEADER_BYTES + self.bits.len());
        v.extend_from_slice(&self.header.to_bytes());
        v.extend_from_slice(&self.bits);
        v
    }

    /// Writes header and bits over the start of `buf`, leaving the rest of it as it was (so a
    /// caller can update the sectors it read).
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<(), BitmapError> {
        let need = BITMAP_HEADER_BYTES + self.bits.len();
        let have = buf.len();
        let out = buf
            .get_mut(..need)
            .ok_or(BitmapError::Truncated { need, have })?;
        out[..BITMAP_HEADER_BYTES].copy_from_slice(&self.header.to_bytes());
        out[BITMAP_HEADER_BYTES..].copy_from_slice(&self.bits);
        Ok(())
    }

    /// Chunks this bitmap covers.
    pub fn chunks(&self) -> u64 {
        self.header.chunks()
    }

    fn locate(&self, chunk: u64) -> Result<(usize, u8), BitmapError> {
        let chunks = self.chunks();
        let byte = usize::try_from(chunk / 8).ok();
        match byte {
            Some(b) if chunk < chunks && b < self.bits.len() => Ok((b, 1u8 << (chunk % 8))),
            _ => Err(BitmapError::ChunkOutOfRange { chunk, chunks }),
        }
    }

    /// Whether chunk `chunk` is dirty (false beyond the bitmap).
    pub fn get(&self, chunk: u64) -> bool {
        self.locate(chunk)
            .map(|(b, m)| self.bits[b] & m != 0)
            .unwrap_or(false)
    }

    /// Marks `chunk` dirty; returns whether it was dirty already.
    pub fn set(&mut self, chunk: u64) -> Result<bool, BitmapError> {
        let (b, m) = self.locate(chunk)?;
        let was = self.bits[b] & m != 0;
        self.bits[b] |= m;
        Ok(was)
    }

    /// Marks `chunk` clean; returns whether it was dirty.
    pub fn clear(&mut self, chunk: u64) -> Result<bool, BitmapError> {
        let (b, m) = self.locate(chunk)?;
        let was = self.bits[b] & m != 0;
        self.bits[b] &= !m;
        Ok(was)
    }

    /// Marks every chunk touched by `len` sectors from array sector `start` dirty (clipped to
    /// the bitmap); returns the chunks that were clean before.
    pub fn set_sectors(&mut self, start: u64, len: u64) -> Result<u64, BitmapError> {
        let r = self
            .header
            .chunks_for(start, len)
            .ok_or(BitmapError::BadChunkSize(self.header.chunksize))?;
        let mut newly = 0;
        for c in r {
            if !self.set(c)? {
                newly += 1;
            }
        }
        Ok(newly)
    }

    /// Dirty chunks among the first `chunks()` bits (trailing bits of the last byte ignored).
    pub fn count_dirty(&self) -> u64 {
        count_bits(&self.bits, self.chunks())
    }

    /// Iterates over the dirty chunk numbers in increasing order.
    pub fn dirty_chunks(&self) -> impl Iterator<Item = u64> + '_ {
        let n = self.chunks();
        self.bits
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .flat_map(|(i, &b)| {
                (0..8u64).filter_map(move |k| (b & (1 << k) != 0).then_some(i as u64 * 8 + k))
            })
            .take_while(move |&c| c < n)
    }

    /// The kernel's stale rule: a bitmap whose events are older than the array's (the
    /// superblock's `events`), or whose state says stale, no longer records every write since
    /// the array was last in sync, so every chunk must be treated as dirty. (Clustered bitmaps,
    /// `nodes != 0`, are exempt from the events comparison, as in the kernel.)
    pub fn is_stale(&self, sb_events: u64) -> bool {
        self.header.stale_flag() || (self.header.nodes == 0 && self.header.events < sb_events)
    }

    /// Whether `chunk` needs resync given the array's events: its bit, or any chunk when the
    /// bitmap is stale.
    pub fn needs_sync(&self, chunk: u64, sb_events: u64) -> bool {
        if chunk >= self.chunks() {
            return false;
        }
        self.is_stale(sb_events) || self.get(chunk)
    }

    /// Dirty chunks given the array's events (all of them when stale).
    pub fn count_dirty_for(&self, sb_events: u64) -> u64 {
        if self.is_stale(sb_events) {
            self.chunks()
        } else {
            self.count_dirty()
        }
    }

    /// Sets every bit (the whole bits area, as the kernel does to an out-of-date bitmap).
    pub fn mark_all_dirty(&mut self) {
        self.bits.iter_mut().for_each(|b| *b = 0xff);
    }

    /// Applies the stale rule as the kernel does when it loads the bitmap: when stale, every
    /// bit is set and `events_cleared` becomes `sb_events`. Returns whether it was stale.
    pub fn apply_stale_rule(&mut self, sb_events: u64) -> bool {
        if !self.is_stale(sb_events) {
            return false;
        }
        self.mark_all_dirty();
        self.header.events_cleared = sb_events;
        true
    }
}

/// Set bits among the first `nbits` bits of `bits` (LSB first).
pub fn count_bits(bits: &[u8], nbits: u64) -> u64 {
    let full = usize::try_from(nbits / 8).unwrap_or(usize::MAX);
    let mut n: u64 = bits
        .iter()
        .take(full)
        .map(|b| u64::from(b.count_ones()))
        .sum();
    let rem = (nbits % 8) as u32;
    if rem != 0 {
        if let Some(&b) = bits.get(full) {
            n += u64::from((b & ((1u8 << rem) - 1)).count_ones());
        }
    }
    n
}

/// Byte offset of a 1.x member's bitmap: `(super_offset + bitmap_offset) * 512`, or None when
/// feature bit 1 is clear (no bitmap) or the sum falls outside the device's address space.
pub fn location_sb1(sb: &Superblock1) -> Option<u64> {
    if sb.feature_map & FEATURE_BITMAP_OFFSET == 0 {
        return None;
    }
    let s = i128::from(sb.super_offset) + i128::from(sb.bitmap_offset);
    u64::try_from(s.checked_mul(512)?).ok()
}

/// Byte offset where a 0.90 member's bitmap would live: 4 KiB after its superblock (what mdadm
/// reads, whether or not the superblock says there is a bitmap). None when the device is too
/// small for a 0.90 superblock.
pub fn offset_sb0(dev_sectors: u64) -> Option<u64> {
    sb0::location(dev_sectors)?
        .checked_mul(512)?
        .checked_add(sb0::SB0_BYTES as u64)
}

/// Byte offset of a 0.90 member's bitmap, or None when its state lacks the bitmap bit (8).
pub fn location_sb0(sb: &Superblock0, dev_sectors: u64) -> Option<u64> {
    if sb.state & sb0::STATE_BITMAP_PRESENT == 0 {
        return None;
    }
    offset_sb0(dev_sectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(sync: u64, chunk: u32) -> BitmapSuper {
        BitmapSuper::new([7; 16], sync, chunk)
    }

    #[test]
    fn geometry() {
        assert_eq!(chunk_count(63488, 64 << 20), 1);
        assert_eq!(chunk_count(63488, 64 << 10), 496);
        assert_eq!(chunk_count(0, 4096), 0);
        assert_eq!(chunk_count(10, 0), 0);
        assert_eq!(chunk_count(u64::MAX, 512), u64::MAX);
        assert_eq!(bits_bytes(496), 62);
        assert_eq!(bits_bytes(1), 1);
        let h = hdr(63488, 64 << 10);
        assert_eq!(h.byte_len(), 318);
        assert_eq!(h.sectors(), 1);
        assert_eq!(h.space_bytes(4096), 4096);
        assert_eq!(h.node_offset_sectors(2), 16);
        assert_eq!(h.chunk_sectors(), Some(128));
        assert_eq!(h.chunks_for(0, 1), Some(0..1));
        assert_eq!(h.chunks_for(127, 2), Some(0..2));
        assert_eq!(h.chunks_for(128 * 64, 128 * 16), Some(64..80));
        assert_eq!(h.chunks_for(63487, 100), Some(495..496));
        assert_eq!(h.chunks_for(1 << 40, 1), Some(496..496));
        assert_eq!(h.chunks_for(5, 0), Some(0..0));
        assert_eq!(hdr(10, 1000).chunks_for(0, 1), None);
    }

    #[test]
    fn header_roundtrip_and_checks() {
        let mut h = hdr(63488, 65536);
        h.pad[3] = 9;
        h.cluster_name[0] = b'x';
        let b = h.to_bytes();
        assert_eq!(BitmapSuper::parse(&b).unwrap(), h);
        assert!(h.validate().is_ok());
        assert_eq!(
            BitmapSuper::parse(&b[..255]),
            Err(BitmapError::Truncated {
                need: 256,
                have: 255
            })
        );
        let mut bad = b;
        bad[0] = 0;
        assert!(matches!(
            BitmapSuper::parse(&bad),
            Err(BitmapError::BadMagic(_))
        ));
        assert!(BitmapSuper::decode(&bad).is_ok());
        for (v, ok) in [(2, false), (3, true), (4, true), (5, true), (6, false)] {
            let mut x = h.clone();
            x.version = v;
            assert_eq!(x.validate().is_ok(), ok, "version {v}");
        }
        for (c, ok) in [(0, false), (256, false), (512, true), (3 << 10, false)] {
            let mut x = h.clone();
            x.chunksize = c;
            assert_eq!(x.validate().is_ok(), ok, "chunk {c}");
        }
        let mut x = h.clone();
        x.daemon_sleep = 0;
        assert_eq!(x.validate(), Err(BitmapError::BadDaemonSleep(0)));
        x.daemon_sleep = 5;
        x.write_behind = 16384;
        assert_eq!(x.validate(), Err(BitmapError::BadWriteBehind(16384)));
    }

    #[test]
    fn bits() {
        let mut bm = Bitmap::new(hdr(63488, 65536)).unwrap();
        assert_eq!(bm.bits.len(), 62);
        assert_eq!(bm.count_dirty(), 0);
        assert!(!bm.set(64).unwrap());
        assert!(bm.set(64).unwrap());
        assert!(bm.get(64));
        assert_eq!(bm.bits[8], 1);
        assert_eq!(bm.set_sectors(128 * 64, 128 * 16).unwrap(), 15);
        assert_eq!(bm.count_dirty(), 16);
        assert_eq!(
            bm.dirty_chunks().collect::<Vec<_>>(),
            (64..80).collect::<Vec<_>>()
        );
        assert!(bm.clear(70).unwrap());
        assert!(!bm.clear(70).unwrap());
        assert_eq!(bm.count_dirty(), 15);
        assert!(bm.set(496).is_err());
        assert!(!bm.get(496));
        assert!(!bm.get(u64::MAX));
        // Trailing bits past the last chunk are kept but not counted.
        let mut one = Bitmap::new(hdr(63488, 64 << 20)).unwrap();
        one.bits[0] = 0xfe;
        assert_eq!(one.count_dirty(), 0);
        assert_eq!(one.dirty_chunks().count(), 0);
        let bytes = one.to_bytes();
        assert_eq!(bytes.len(), 257);
        assert_eq!(Bitmap::parse(&bytes).unwrap(), one);
        assert!(matches!(
            Bitmap::parse(&bytes[..256]),
            Err(BitmapError::Truncated { need: 257, .. })
        ));
        let mut buf = vec![0xaau8; 512];
        one.encode_into(&mut buf).unwrap();
        assert_eq!(&buf[..257], &bytes[..]);
        assert_eq!(buf[257], 0xaa);
        assert!(one.encode_into(&mut buf[..100]).is_err());
    }

    #[test]
    fn stale_rule() {
        let mut h = hdr(63488, 65536);
        h.events = 18;
        let mut bm = Bitmap::new(h).unwrap();
        bm.set(3).unwrap();
        assert!(!bm.is_stale(18));
        assert!(!bm.is_stale(17));
        assert!(bm.is_stale(19));
        assert_eq!(bm.count_dirty_for(18), 1);
        assert_eq!(bm.count_dirty_for(19), 496);
        assert!(bm.needs_sync(3, 18));
        assert!(!bm.needs_sync(4, 18));
        assert!(bm.needs_sync(4, 19));
        assert!(!bm.needs_sync(496, 19));
        let mut s = bm.clone();
        s.header.state = BITMAP_STATE_STALE;
        assert!(s.is_stale(0));
        assert!(!bm.apply_stale_rule(18));
        assert!(bm.apply_stale_rule(20));
        assert_eq!(bm.count_dirty(), 496);
        assert_eq!(bm.header.events_cleared, 20);
    }

    #[test]
    fn untrusted_sizes() {
        let mut h = hdr(u64::MAX, 512);
        assert!(matches!(
            Bitmap::new(h.clone()),
            Err(BitmapError::TooLarge { .. })
        ));
        let b = h.to_bytes();
        assert!(matches!(
            Bitmap::parse(&b),
            Err(BitmapError::TooLarge { .. })
        ));
        h.chunksize = 0;
        assert_eq!(Bitmap::new(h.clone()), Err(BitmapError::BadChunkSize(0)));
        assert_eq!(h.byte_len(), 256);
        h.sync_size = u64::MAX;
        h.chunksize = 1;
        assert_eq!(h.chunks(), u64::MAX);
        assert_eq!(h.byte_len(), (1 << 61) + 256);
        assert_eq!(h.space_bytes(4096), (1 << 61) + 4096);
        assert_eq!(h.node_offset_sectors(u32::MAX), u64::MAX);
    }
}
