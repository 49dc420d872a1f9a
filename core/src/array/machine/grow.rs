//! Growing an existing array (mdadm `--grow`, md's reshape of a RAID1): adding or removing
//! the internal write-intent bitmap, changing the number of slots, changing the component
//! size. Each is a command on an idle array whose metadata goes out in ordered rounds, so a
//! cut at any point leaves members that assemble to the right data:
//!
//! - **bitmap added**: the bitmap (header and bits) is written to every working member first,
//!   then the superblocks that point at it (before them the area is unused); bits start clear
//!   on a clean, complete array, set from the resync checkpoint on when a resync is owed, and
//!   all set on a degraded array (md_bitmap_load: nothing is known about a missing member);
//! - **bitmap removed**: one superblock round without it;
//! - **raid-disks**: one superblock round with the new count (md's raid1_reshape moves the
//!   members down into the lowest slots and refuses when more members hold a slot than the
//!   new count); the driver then runs md's recovery check, which fills new slots from spares;
//! - **size**: the bitmap resized to the new size first (whole, with the chunks of the new
//!   region set unless `assume_clean`), then the superblocks with the new size and, when
//!   growing without `assume_clean`, a resync owed from the old size (md's raid1_resize sets
//!   recovery_cp to the old size); the driver then runs that resync.

use super::super::{IntentBitmap, MemberState};
use super::{config, Machine, MachineError};
use crate::format::bitmap::{Bitmap, BitmapSuper};
use crate::format::geometry::{self, Sb1Space};
use crate::format::probe::Superblock;
use crate::format::{sb0, sb1, MetadataVersion};
use alloc::vec::Vec;

/// `--bitmap=`: what happens to the write-intent bitmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitmapGrow {
    /// `internal`, with `--bitmap-chunk` in bytes when given.
    Internal {
        /// Bytes per bit; `None` for mdadm's choice.
        chunk_bytes: Option<u64>,
    },
    /// `none`: remove it.
    None,
}

/// `--size=`: the new component size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrowSize {
    /// `max`: the most every member allows.
    Max,
    /// That many sectors (mdadm's `--size` is KiB: twice that).
    Sectors(u64),
}

/// What a size change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeChange {
    /// Component sectors before.
    pub old_sectors: u64,
    /// Component sectors after.
    pub new_sectors: u64,
    /// A resync of the grown region is owed (run it with `start_sync(Resync)`).
    pub resync_owed: bool,
}

/// One `mdadm --grow` change, for a driver's `grow` (mdadm takes one at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrowRequest {
    /// `--bitmap=`.
    Bitmap(BitmapGrow),
    /// `--raid-devices=`; `force` runs degraded without spares for the new slots.
    RaidDisks {
        /// The new number of slots.
        n: u32,
        /// mdadm's `--force`.
        force: bool,
    },
    /// `--size=`, with `--assume-clean`.
    Size {
        /// The new size.
        size: GrowSize,
        /// Owe no resync of a grown region.
        assume_clean: bool,
    },
}

/// What a driver's grow did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrowReport {
    /// The size change, for `--size`.
    pub size: Option<SizeChange>,
    /// The sync actions that ran after it (recovery into new slots, resync of a grown
    /// region).
    pub syncs: alloc::vec::Vec<super::super::SyncReport>,
}

const REFUSED_BUSY: MachineError = MachineError::Refused("grow while idle and read-write");

impl Machine {
    fn grow_ready(&self) -> Result<(), MachineError> {
        if self.readonly || self.stopping || self.is_busy() {
            return Err(REFUSED_BUSY);
        }
        Ok(())
    }

    /// Whether every slot holds an in-sync member.
    fn complete(&self) -> bool {
        (0..self.raid_disks).all(|s| config::slot_member(&self.members, s).is_some())
    }

    /// Adds or removes the internal write-intent bitmap (mdadm --grow --bitmap=…), in the
    /// space mdadm 4.2 would use (see [`geometry::grow_bitmap_1x`]).
    pub fn grow_bitmap(&mut self, req: BitmapGrow) -> Result<(), MachineError> {
        self.grow_ready()?;
        match req {
            BitmapGrow::None => {
                if self.bitmap.is_none() {
                    return Err(MachineError::Refused("no bitmap found"));
                }
                self.bitmap = None;
                for m in &mut self.members {
                    // Without a bitmap a rebuild copies everything from its offset.
                    m.rebuild_bitmap = false;
                    match &mut m.sb {
                        Superblock::V1(s, _) => s.feature_map &= !sb1::FEATURE_BITMAP_OFFSET,
                        Superblock::V0(s) => s.state &= !sb0::STATE_BITMAP_PRESENT,
                    }
                }
                self.rebuild_engine()?;
                self.meta.queue_superblocks();
            }
            BitmapGrow::Internal { chunk_bytes } => {
                if self.bitmap.is_some() {
                    return Err(MachineError::Refused("bitmap already present"));
                }
                let size = self.component_sectors;
                // mdadm places it member by member, in-sync members first; the first one's
                // chunk is then asked of every other.
                let mut order: Vec<usize> = (0..self.members.len())
                    .filter(|&i| self.members[i].state.is_working())
                    .collect();
                order.sort_by_key(|&i| !matches!(self.members[i].state, MemberState::InSync(_)));
                let mut chunk = chunk_bytes;
                let mut offsets = alloc::vec![None; self.members.len()];
                for &i in &order {
                    let placed = match &self.members[i].sb {
                        Superblock::V1(s, v) => {
                            geometry::grow_bitmap_1x(&space(s, *v), size, chunk)
                                .map(|(o, c)| (Some(o), c))
                        }
                        Superblock::V0(_) => {
                            geometry::grow_bitmap_090(size, chunk).map(|c| (None, c))
                        }
                    };
                    let (off, c) = placed.map_err(|_| {
                        MachineError::Refused("no room for the bitmap or a bad chunk size")
                    })?;
                    chunk = Some(c);
                    offsets[i] = Some(off);
                }
                let chunk = chunk.ok_or(MachineError::Refused("no working member"))?;
                let chunksize =
                    u32::try_from(chunk).map_err(|_| MachineError::Refused("chunk too large"))?;
                let lead = self
                    .lead_superblock()
                    .ok_or(MachineError::Refused("no working member"))?;
                let mut header = BitmapSuper::new(lead.bitmap_uuid(), size, chunksize);
                // The bitmap begins now: a device that left earlier is not covered by it
                // (md: a stale new bitmap gets events_cleared = the array's events).
                header.events = self.events;
                header.events_cleared = self.events;
                let mut bm =
                    Bitmap::new(header).map_err(|_| MachineError::Refused("bitmap too large"))?;
                let chunks = bm.chunks();
                let first_dirty = if !self.complete() {
                    Some(0)
                } else if self.needs_resync || self.dirty {
                    // What md's resync still owes (from its checkpoint) stays owed.
                    Some(if self.dirty { 0 } else { self.resync_done })
                } else {
                    None
                };
                if let Some(from) = first_dirty {
                    let cs = u64::from(chunksize) / 512;
                    for c in (from / cs.max(1)).min(chunks)..chunks {
                        let _ = bm.set(c);
                    }
                }
                let mut ibm = IntentBitmap::fresh(bm)
                    .map_err(|_| MachineError::Refused("bitmap too large"))?;
                // Written in whole blocks of the members' logical block size.
                ibm.pad_to(self.block_size() as usize);
                for (i, m) in self.members.iter_mut().enumerate() {
                    match &mut m.sb {
                        Superblock::V1(s, _) => {
                            if let Some(Some(off)) = offsets[i] {
                                s.bitmap_offset = off;
                                s.feature_map |= sb1::FEATURE_BITMAP_OFFSET;
                            }
                        }
                        Superblock::V0(s) => {
                            if offsets[i].is_some() {
                                s.state |= sb0::STATE_BITMAP_PRESENT;
                            }
                        }
                    }
                }
                self.bitmap = Some(ibm);
                self.rebuild_engine()?;
                self.meta.queue_bitmap_then_superblocks();
            }
        }
        self.pump();
        Ok(())
    }

    /// Changes the number of slots (mdadm --grow --raid-devices=N). Fewer: refused while more
    /// members hold a slot (in sync or being rebuilt into one) than `n`, else the members move
    /// down into the lowest slots (md's raid1_reshape). More: refused unless as many spares
    /// wait as slots are added, or `force` (mdadm's check; md itself would run degraded).
    /// The driver then runs [`Machine::check_recovery`].
    pub fn grow_raid_disks(&mut self, n: u32, force: bool) -> Result<(), MachineError> {
        self.grow_ready()?;
        let max = match self.lead_superblock() {
            Some(Superblock::V1(s, _)) => s.max_dev.min(crate::raid1::MAX_SLOTS as u32 - 2),
            Some(Superblock::V0(_)) => sb0::SB0_DISKS as u32,
            None => return Err(MachineError::Refused("no working member")),
        };
        if n == 0 || n > max {
            return Err(MachineError::Refused("raid-devices out of range"));
        }
        if n == self.raid_disks {
            return Ok(());
        }
        // Members holding a slot, by slot.
        let mut held: Vec<(u32, usize)> = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            match (m.state, m.rebuild) {
                (MemberState::InSync(s), _) => held.push((s, i)),
                (MemberState::Spare, Some((s, _))) => held.push((s, i)),
                _ => {}
            }
        }
        if n < self.raid_disks {
            if held.len() > n as usize {
                return Err(MachineError::Refused(
                    "more active members than raid-devices: fail and remove them first",
                ));
            }
            held.sort_unstable();
            for (new_slot, &(_, i)) in held.iter().enumerate() {
                let m = &mut self.members[i];
                let new_slot = new_slot as u32;
                match m.state {
                    MemberState::InSync(_) => m.state = MemberState::InSync(new_slot),
                    _ => {
                        if let Some(r) = m.rebuild.as_mut() {
                            r.0 = new_slot;
                        }
                    }
                }
            }
        } else if !force {
            let spares = self
                .members
                .iter()
                .filter(|m| m.state == MemberState::Spare && m.rebuild.is_none())
                .count() as u32;
            // mdadm's check counts the spares against the slots added.
            if spares < n - self.raid_disks {
                return Err(MachineError::Refused(
                    "not enough spares to fill the new slots (use force to run degraded)",
                ));
            }
        }
        self.raid_disks = n;
        for m in &mut self.members {
            match &mut m.sb {
                Superblock::V1(s, _) => s.raid_disks = n,
                Superblock::V0(s) => s.raid_disks = n,
            }
        }
        self.rebuild_engine()?;
        self.meta.queue_superblocks();
        self.pump();
        Ok(())
    }

    /// The most sectors of data every working member allows (md's update_size with 0).
    pub fn max_component_sectors(&self) -> u64 {
        self.members
            .iter()
            .filter(|m| m.state.is_working())
            .map(member_max)
            .min()
            .unwrap_or(0)
    }

    /// Changes the component size (mdadm --grow --size). Growing owes a resync of the new
    /// region unless `assume_clean`; shrinking drops what lies beyond.
    pub fn grow_size(
        &mut self,
        req: GrowSize,
        assume_clean: bool,
    ) -> Result<SizeChange, MachineError> {
        self.grow_ready()?;
        let max = self.max_component_sectors();
        let new = match req {
            GrowSize::Max => max,
            GrowSize::Sectors(s) => s,
        };
        if new == 0 {
            return Err(MachineError::Refused("size zero"));
        }
        if new > max {
            return Err(MachineError::Refused(
                "no space left on a member for that size",
            ));
        }
        let version = self.lead_superblock().map(|s| s.version());
        if version == Some(MetadataVersion::V0_90)
            && (new % 2 != 0 || new / 2 > u64::from(u32::MAX))
        {
            return Err(MachineError::Refused(
                "0.90 sizes are whole KiB below 4 TiB",
            ));
        }
        let old = self.component_sectors;
        let change = SizeChange {
            old_sectors: old,
            new_sectors: new,
            resync_owed: false,
        };
        if new == old {
            return Ok(change);
        }
        let grows = new > old;
        let owed = grows && !assume_clean;
        // The bitmap follows the size (md_bitmap_resize); its space is what it has.
        let mut first_round_bitmap = false;
        if let Some(bm) = self.bitmap.as_ref() {
            let space = self.bitmap_space_sectors(bm);
            let old_h = bm.bitmap.header.clone();
            let old_chunk = u64::from(old_h.chunksize);
            let chunk = geometry::resized_bitmap_chunk(new, old_chunk, space);
            let chunksize = u32::try_from(chunk)
                .map_err(|_| MachineError::Refused("bitmap chunk too large"))?;
            let mut h = old_h;
            h.sync_size = new;
            h.chunksize = chunksize;
            let mut nb = Bitmap::new(h).map_err(|_| MachineError::Refused("bitmap too large"))?;
            let ratio = chunk / old_chunk.max(1);
            for c in bm.bitmap.dirty_chunks() {
                let _ = nb.set(c / ratio.max(1));
            }
            if owed {
                let cs = chunk / 512;
                for c in old / cs.max(1)..nb.chunks() {
                    let _ = nb.set(c);
                }
            }
            let mut ibm =
                IntentBitmap::fresh(nb).map_err(|_| MachineError::Refused("bitmap too large"))?;
            ibm.pad_to(self.block_size() as usize);
            self.bitmap = Some(ibm);
            first_round_bitmap = true;
        }
        // mdadm sets every member's sysfs size first: for a member in a slot md rewrites a
        // 1.x data_size to the size asked for, or the most the device allows for max
        // (super_1_rdev_size_change); it refuses a size below the current one.
        for m in &mut self.members {
            let avail = member_max(m);
            let in_slot = matches!(m.state, MemberState::InSync(_)) || m.rebuild.is_some();
            match &mut m.sb {
                Superblock::V1(s, _) => {
                    if grows && in_slot {
                        s.data_size = match req {
                            GrowSize::Max => avail,
                            GrowSize::Sectors(n) => n.min(avail),
                        };
                    }
                    s.size = new;
                }
                Superblock::V0(s) => s.size = (new / 2) as u32,
            }
            if let Some((_, off)) = m.rebuild.as_mut() {
                *off = (*off).min(new);
            }
        }
        self.component_sectors = new;
        if owed {
            if !self.needs_resync {
                self.resync_done = old;
            }
            self.resync_done = self.resync_done.min(old);
            self.needs_resync = true;
        } else if self.needs_resync {
            self.resync_done = self.resync_done.min(new);
        }
        self.rebuild_engine()?;
        if first_round_bitmap {
            self.meta.queue_bitmap_then_superblocks();
        } else {
            self.meta.queue_superblocks();
        }
        self.pump();
        Ok(SizeChange {
            resync_owed: owed,
            ..change
        })
    }

    /// The sectors the bitmap may occupy when it is resized: md's bitmap_info.space (1.1/1.2:
    /// what it occupies now; 1.0: up to the superblock or the bad-block log; 0.90: 60 KiB).
    fn bitmap_space_sectors(&self, bm: &IntentBitmap) -> u64 {
        let now = bm.bitmap.header.byte_len().div_ceil(512);
        match self.lead_superblock() {
            Some(Superblock::V1(s, MetadataVersion::V1_0)) if s.bitmap_offset < 0 => {
                let mut space = u64::from(s.bitmap_offset.unsigned_abs());
                if s.bblog_size > 0 && s.bblog_offset < 0 && s.bblog_offset > s.bitmap_offset {
                    // Never over the bad-block log (md would count it in).
                    space = u64::from((s.bblog_offset - s.bitmap_offset).unsigned_abs());
                }
                space.max(now)
            }
            Some(Superblock::V1(s, MetadataVersion::V1_0)) => {
                (8u64.saturating_sub(s.bitmap_offset.max(0) as u64)).max(now)
            }
            Some(Superblock::V0(_)) => (sb0::BITMAP_AREA_BYTES as u64 / 512).max(now),
            _ => now,
        }
    }
}

fn space(s: &sb1::Superblock1, version: MetadataVersion) -> Sb1Space {
    Sb1Space {
        version,
        super_offset: s.super_offset,
        data_offset: s.data_offset,
        data_size: s.data_size,
        bblog_offset: s.bblog_offset,
        bblog_size: s.bblog_size,
        max_dev: s.max_dev,
    }
}

/// The most data sectors member `m` allows after md resizes it. md takes the device's new
/// room only when it holds the current size (rdev_size_store refuses less); else the member
/// keeps its `data_size`.
fn member_max<X>(m: &super::super::Member<X>) -> u64 {
    match &m.sb {
        Superblock::V1(s, v) => {
            match geometry::grow_max_data_sectors_1x(*v, m.dev_sectors, s.data_offset) {
                Some(max) if max >= s.size => max,
                _ => s.data_size,
            }
        }
        // Data runs up to the superblock; md's 0.90 limit is 4 TiB less a KiB.
        Superblock::V0(_) => m.sb_sector.min((2u64 << 32) - 2),
    }
}
