//! Sync actions on a stopped-I/O array (driven to completion by the caller's thread).

use super::{Array, MemberState};
use crate::device::BlockDevice;
use crate::{Result, SECTOR_SIZE};

/// 64 KiB: md's resync block.
const BLOCK: u64 = 128;

impl<D: BlockDevice> Array<D> {
    /// Makes every in-sync mirror identical to the first one over the range still owed a
    /// resync (all of it without a bitmap; only the dirty chunks with one), then records the
    /// array as in sync. Does nothing when no resync is owed.
    pub fn resync(&mut self, now: u64) -> Result<()> {
        if !self.needs_resync || self.readonly {
            return Ok(());
        }
        let slots: alloc::vec::Vec<usize> = (0..self.raid_disks)
            .filter_map(|s| self.slot_member(s))
            .collect();
        let Some((&src, dsts)) = slots.split_first() else {
            return Ok(());
        };
        let chunk_sectors = self
            .bitmap
            .as_ref()
            .and_then(|b| b.bitmap.header.chunk_sectors());
        let mut buf = alloc::vec![0u8; (BLOCK * SECTOR_SIZE) as usize];
        let mut sector = 0;
        while sector < self.component_sectors {
            let n = BLOCK.min(self.component_sectors - sector);
            let dirty = match (&self.bitmap, chunk_sectors) {
                (Some(bm), Some(cs)) if !bm.bitmap.is_stale(self.events) => {
                    (sector / cs..=(sector + n - 1) / cs).any(|c| bm.bitmap.get(c))
                }
                _ => true,
            };
            if dirty {
                let b = &mut buf[..(n * SECTOR_SIZE) as usize];
                let at = self.members[src].data_byte(sector * SECTOR_SIZE);
                self.members[src].dev.read_at(at, b)?;
                for &d in dsts {
                    let at = self.members[d].data_byte(sector * SECTOR_SIZE);
                    if self.members[d].dev.write_at(at, b).is_err() {
                        self.members[d].state = MemberState::Faulty;
                    }
                }
            }
            sector += n;
        }
        for &d in dsts {
            if self.members[d].state != MemberState::Faulty && self.members[d].dev.flush().is_err()
            {
                self.members[d].state = MemberState::Faulty;
            }
        }
        self.needs_resync = false;
        self.engine = None;
        self.write_superblocks(now)
    }
}
