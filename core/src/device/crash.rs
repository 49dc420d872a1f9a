//! Sparse in-memory devices: [`SparseDevice`] (any size, unwritten space reads as zeros) and
//! [`CrashDevice`] (the same storage behind a volatile write cache that a power cut can lose).
//!
//! Both keep data in a map of 4 KiB pages, so memory follows the data written, not the device
//! size: a 16 TiB member that sees a few superblock writes costs a few pages.

use super::{check_range, BlockDevice, DeviceError, IoOp, MemDevice};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Page size of the sparse store.
const PAGE: u64 = 4096;

// ---------------------------------------------------------------------------------------------

/// A device of any size that stores only the pages written; the rest reads as zeros.
/// Writes are durable at once (no cache).
///
/// ```
/// use mdraid::device::{BlockDevice, SparseDevice};
/// let mut d = SparseDevice::new(16 << 40); // 16 TiB
/// let end = d.size() - 512;
/// d.write_at(end, &[0xa5; 512]).unwrap();
/// let mut b = [0u8; 512];
/// d.read_at(end, &mut b).unwrap();
/// assert_eq!(b, [0xa5; 512]);
/// d.read_at(0, &mut b).unwrap();
/// assert_eq!(b, [0; 512]);
/// assert_eq!(d.allocated_bytes(), 4096);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseDevice {
    size: u64,
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl SparseDevice {
    /// A zero-filled device of `size` bytes.
    pub fn new(size: u64) -> Self {
        SparseDevice {
            size,
            pages: BTreeMap::new(),
        }
    }
    /// A device holding `data` (all-zero pages are not stored).
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut d = SparseDevice::new(data.len() as u64);
        for (i, chunk) in data.chunks(PAGE as usize).enumerate() {
            if chunk.iter().any(|&b| b != 0) {
                d.store(i as u64 * PAGE, chunk);
            }
        }
        d
    }
    /// Bytes of page storage in use (a multiple of 4096).
    pub fn allocated_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }
    /// The whole image as bytes, or `None` if it does not fit in memory's address space.
    pub fn to_vec(&self) -> Option<Vec<u8>> {
        let len = usize::try_from(self.size).ok()?;
        let mut v = alloc::vec![0u8; len];
        self.load(0, &mut v);
        Some(v)
    }
    /// The whole image as a [`MemDevice`], or `None` if it does not fit.
    pub fn to_mem_device(&self) -> Option<MemDevice> {
        self.to_vec().map(MemDevice::from_vec)
    }

    /// Copies `buf.len()` bytes at `offset` out; the caller has checked the range.
    fn load(&self, offset: u64, buf: &mut [u8]) {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE as usize - in_page).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            match self.pages.get(&(pos / PAGE)) {
                Some(p) => dst.copy_from_slice(&p[in_page..in_page + n]),
                None => dst.fill(0),
            }
            done += n;
        }
    }
    /// Copies `buf` in at `offset`; the caller has checked the range.
    fn store(&mut self, offset: u64, buf: &[u8]) {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE as usize - in_page).min(buf.len() - done);
            let page = self
                .pages
                .entry(pos / PAGE)
                .or_insert_with(|| alloc::vec![0u8; PAGE as usize].into_boxed_slice());
            page[in_page..in_page + n].copy_from_slice(&buf[done..done + n]);
            done += n;
        }
    }
}

impl BlockDevice for SparseDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Read, offset, buf.len(), self.size)?;
        self.load(offset, buf);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Write, offset, buf.len(), self.size)?;
        self.store(offset, buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

use crate::splitmix::SplitMix64;

/// A write accepted into the cache but not yet made durable by a flush.
#[derive(Clone, Debug)]
struct Pending {
    offset: u64,
    data: Vec<u8>,
    /// Written with [`CrashDevice::write_durable`]: already in the durable store, kept here
    /// only so that older cached writes to the same bytes cannot land on top of it.
    fua: bool,
}

/// What the last [`CrashDevice::power_cut`] did to the cached writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutStats {
    /// Cached writes that reached the media whole.
    pub kept: u64,
    /// Cached writes lost whole.
    pub dropped: u64,
    /// Cached writes of which some atomic units landed and some did not.
    pub torn: u64,
}

/// An in-memory device with a volatile write cache, for crash-consistency tests.
///
/// - [`write_at`](BlockDevice::write_at) puts data in the cache; reads see it at once.
/// - [`flush`](BlockDevice::flush) makes everything written so far durable.
/// - [`write_durable`](Self::write_durable) is a FUA write: durable when it returns.
/// - [`power_cut`](Self::power_cut) loses the cache: each cached write independently lands
///   whole, is lost, or is torn (each atomic unit, 512 bytes by default, lands or not on its
///   own); the choice is a deterministic function of the seed. Writes that land are applied in
///   the order they were issued, so each sector ends up holding its durable contents or the
///   contents of any one of the cached writes to it (not necessarily the newest: the cache may
///   have destaged an older write and lost a newer one). The device then holds the durable
///   image, as a disk does after power returns, and a copy is returned.
///
/// Storage is sparse (see [`SparseDevice`]); cached writes cost their own length.
///
/// ```
/// use mdraid::device::{BlockDevice, CrashDevice};
/// let mut d = CrashDevice::new(1 << 30);
/// d.write_at(0, &[1; 512]).unwrap();
/// d.flush().unwrap();
/// d.write_at(0, &[2; 512]).unwrap();
/// let mut b = [0u8; 512];
/// d.read_at(0, &mut b).unwrap();
/// assert_eq!(b, [2; 512]); // the cache is visible before the cut
/// assert!(!d.is_durable(0, 512));
/// let mut image = d.power_cut(7);
/// image.read_at(0, &mut b).unwrap();
/// assert!(b == [1; 512] || b == [2; 512]);
/// assert_eq!(d.pending_writes(), 0); // the device now holds the durable image
/// ```
#[derive(Clone, Debug)]
pub struct CrashDevice {
    durable: SparseDevice,
    pending: Vec<Pending>,
    unit: u64,
    last_cut: CutStats,
    flushes: u64,
}

impl CrashDevice {
    /// A zero-filled device of `size` bytes with an empty cache.
    pub fn new(size: u64) -> Self {
        Self::from_image(SparseDevice::new(size))
    }
    /// A device whose durable contents are `image`.
    pub fn from_image(image: SparseDevice) -> Self {
        CrashDevice {
            durable: image,
            pending: Vec::new(),
            unit: crate::SECTOR_SIZE,
            last_cut: CutStats::default(),
            flushes: 0,
        }
    }
    /// Sets the atomic write unit a power cut tears writes at (default 512 bytes; 0 means
    /// writes are never torn).
    pub fn with_atomic_unit(mut self, bytes: u32) -> Self {
        self.unit = u64::from(bytes);
        self
    }

    /// A FUA write: `buf` is durable at `offset` when this returns.
    pub fn write_durable(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Write, offset, buf.len(), self.durable.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        self.durable.store(offset, buf);
        if !self.pending.is_empty() {
            self.pending.push(Pending {
                offset,
                data: buf.to_vec(),
                fua: true,
            });
        }
        Ok(())
    }
    /// Reads what would survive a power cut that lost the whole cache.
    pub fn read_durable(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Read, offset, buf.len(), self.durable.size)?;
        self.durable.load(offset, buf);
        Ok(())
    }
    /// Whether every byte of `[offset, offset+len)` is durable (no cached write to it is
    /// pending, or a later FUA write covered it).
    pub fn is_durable(&self, offset: u64, len: u64) -> bool {
        let mut open: Vec<(u64, u64)> = alloc::vec![(offset, offset.saturating_add(len))];
        for p in self.pending.iter().rev() {
            let (a, b) = (p.offset, p.offset + p.data.len() as u64);
            if p.fua {
                open = open
                    .into_iter()
                    .flat_map(|(s, e)| {
                        let left = (s, e.min(a));
                        let right = (s.max(b), e);
                        [left, right]
                    })
                    .filter(|(s, e)| s < e)
                    .collect();
            } else if open.iter().any(|&(s, e)| s < b && a < e) {
                return false;
            }
            if open.is_empty() {
                break;
            }
        }
        true
    }
    /// Cached writes not yet durable.
    pub fn pending_writes(&self) -> usize {
        self.pending.iter().filter(|p| !p.fua).count()
    }
    /// Bytes of cached writes not yet durable.
    pub fn pending_bytes(&self) -> u64 {
        self.pending
            .iter()
            .filter(|p| !p.fua)
            .map(|p| p.data.len() as u64)
            .sum()
    }
    /// Flushes seen.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }
    /// The durable store.
    pub fn durable(&self) -> &SparseDevice {
        &self.durable
    }
    /// What the last power cut did.
    pub fn last_cut(&self) -> CutStats {
        self.last_cut
    }

    /// Cuts power: keeps a seed-chosen part of the cache (see the type's docs), empties the
    /// cache and returns a copy of the durable image, which the device now holds.
    pub fn power_cut(&mut self, seed: u64) -> SparseDevice {
        let mut rng = SplitMix64(seed);
        let unit = self.unit;
        let pending = core::mem::take(&mut self.pending);
        let mut stats = CutStats::default();
        for p in &pending {
            if p.fua {
                self.durable.store(p.offset, &p.data);
                continue;
            }
            let pieces = split_units(p.offset, p.data.len(), unit);
            // 0: lands whole, 1: lost, 2: torn (falls back to whole/lost for one-unit writes).
            let mut fate = rng.next() % 3;
            if fate == 2 && pieces.len() < 2 {
                fate = rng.next() % 2;
            }
            match fate {
                0 => {
                    stats.kept += 1;
                    self.durable.store(p.offset, &p.data);
                }
                1 => stats.dropped += 1,
                _ => {
                    stats.torn += 1;
                    for (start, end) in pieces {
                        if rng.next() & 1 == 0 {
                            self.durable
                                .store(p.offset + start as u64, &p.data[start..end]);
                        }
                    }
                }
            }
        }
        self.last_cut = stats;
        self.durable.clone()
    }
    /// Cuts power losing the whole cache (as if every cached write was dropped).
    pub fn power_cut_lose_all(&mut self) -> SparseDevice {
        let pending = core::mem::take(&mut self.pending);
        self.last_cut = CutStats {
            dropped: pending.iter().filter(|p| !p.fua).count() as u64,
            ..CutStats::default()
        };
        self.durable.clone()
    }
}

/// Splits a write of `len` bytes at `offset` at absolute `unit` boundaries; returns byte ranges
/// relative to the write. `unit == 0` gives one piece.
fn split_units(offset: u64, len: usize, unit: u64) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if unit == 0 {
        out.push((0, len));
        return out;
    }
    let mut start = 0usize;
    while start < len {
        let pos = offset + start as u64;
        let to_boundary = unit - pos % unit;
        let end = (start as u64).saturating_add(to_boundary).min(len as u64) as usize;
        out.push((start, end));
        start = end;
    }
    out
}

impl BlockDevice for CrashDevice {
    fn size(&self) -> u64 {
        self.durable.size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Read, offset, buf.len(), self.durable.size)?;
        self.durable.load(offset, buf);
        let end = offset + buf.len() as u64;
        for p in &self.pending {
            let (a, b) = (p.offset, p.offset + p.data.len() as u64);
            let (s, e) = (a.max(offset), b.min(end));
            if s < e {
                let dst = (s - offset) as usize..(e - offset) as usize;
                let src = (s - a) as usize..(e - a) as usize;
                buf[dst].copy_from_slice(&p.data[src]);
            }
        }
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Write, offset, buf.len(), self.durable.size)?;
        if !buf.is_empty() {
            self.pending.push(Pending {
                offset,
                data: buf.to_vec(),
                fua: false,
            });
        }
        Ok(())
    }
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.write_durable(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.flushes += 1;
        // In issue order, FUA entries included: they are durable already but must stay on top
        // of older cached writes to the same bytes.
        for p in core::mem::take(&mut self.pending) {
            self.durable.store(p.offset, &p.data);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_reads_zero_and_spans_pages() {
        let mut d = SparseDevice::new(3 * PAGE);
        d.write_at(PAGE - 3, &[9; 6]).unwrap();
        assert_eq!(d.allocated_bytes(), 2 * PAGE);
        let mut b = [1u8; 10];
        d.read_at(PAGE - 5, &mut b).unwrap();
        assert_eq!(b, [0, 0, 9, 9, 9, 9, 9, 9, 0, 0]);
        assert!(d.read_at(3 * PAGE - 4, &mut b).is_err());
        assert!(d.write_at(u64::MAX - 2, &b).is_err());
        let v = d.to_vec().unwrap();
        assert_eq!(SparseDevice::from_bytes(&v), d);
    }

    #[test]
    fn split_units_follows_absolute_boundaries() {
        assert_eq!(
            split_units(500, 600, 512),
            alloc::vec![(0, 12), (12, 524), (524, 600)]
        );
        assert_eq!(split_units(0, 1024, 0), alloc::vec![(0, 1024)]);
        assert_eq!(
            split_units(0, 1024, 512),
            alloc::vec![(0, 512), (512, 1024)]
        );
    }

    #[test]
    fn fua_write_is_not_undone_by_older_cached_write() {
        let mut d = CrashDevice::new(8192);
        d.write_at(0, &[1; 1024]).unwrap();
        d.write_durable(512, &[2; 512]).unwrap();
        assert!(d.is_durable(512, 512));
        assert!(!d.is_durable(0, 1024));
        let mut b = [0u8; 512];
        d.read_at(512, &mut b).unwrap();
        assert_eq!(b, [2; 512]);
        for seed in 0..32 {
            let mut c = d.clone();
            let v = c.power_cut(seed).to_vec().unwrap();
            assert_eq!(v[512..1024], [2; 512], "seed {seed}");
        }
        let mut c = d.clone();
        c.flush().unwrap();
        let v = c.durable().to_vec().unwrap();
        assert_eq!(v[512..1024], [2; 512]);
        assert_eq!(v[..512], [1; 512]);
    }
}
