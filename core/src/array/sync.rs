//! Sync actions and runtime membership on a running array, driven by the RAID1 engine.

use super::io::CallerBuf;
use super::{Array, ArrayError, Member, MemberState};
use crate::device::BlockDevice;
use crate::format::probe::{probe, Role, Superblock};
use crate::raid1::{MemberConfig, SyncAction};
use crate::{Result, SECTOR_SIZE};
use alloc::string::String;
use alloc::vec::Vec;

/// How a sync action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// The action.
    pub action: SyncAction,
    /// Mismatched sectors found (md `mismatch_cnt`; check and repair).
    pub mismatch_cnt: u64,
    /// Sectors written to members by the action.
    pub sectors_copied: u64,
    /// Sectors of the array the action covered.
    pub sectors_done: u64,
    /// It stopped before the end (a member failed).
    pub interrupted: bool,
}

/// Options for [`Array::add_member`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AddOptions {
    /// The new member is write-mostly.
    pub write_mostly: bool,
    /// The new member is failfast.
    pub failfast: bool,
    /// Only a re-add is acceptable (mdadm --re-add).
    pub re_add_only: bool,
    /// Device UUID for a new member (random from the caller); derived from the array's when
    /// absent (the no_std core has no entropy of its own).
    pub device_uuid: Option<[u8; 16]>,
}

/// What [`Array::add_member`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// The device is a spare (every slot was filled).
    Spare,
    /// The device was rebuilt into an empty slot.
    Rebuilt(SyncReport),
    /// The device came back to its old slot; only what changed meanwhile was copied.
    ReAdded(SyncReport),
}

/// How a device returns to its slot: recovery from `from`, copying below `bitmap_below` only
/// bitmap-dirty chunks.
#[derive(Clone, Copy, Debug)]
struct Comeback {
    slot: u32,
    from: u64,
    bitmap_below: u64,
}

/// Progress callback: (sectors done, sectors in total).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

impl<D: BlockDevice> Array<D> {
    /// The outcome of the last sync action that ended (also one the engine started by itself,
    /// such as a recovery onto a spare after a failure).
    pub fn last_sync(&self) -> Option<SyncReport> {
        self.last_sync
    }

    /// Sets md's sync speed limits (KiB/s) for later sync actions.
    pub fn set_speed_limits(&mut self, min_kib: u64, max_kib: u64) {
        self.speed_limits = (min_kib.max(1), max_kib.max(min_kib.max(1)));
        if self
            .engine
            .as_ref()
            .is_some_and(|e| e.requests_in_flight() == 0 && e.sync_status().is_none())
        {
            // Rebuilt with the new limits at the next use (it holds no state the array lacks).
            self.engine = None;
        }
    }

    /// Runs `action` to completion. `wait(deadline_ns)` is called when the engine waits for
    /// its speed limit and returns the time (ns) it waited until (`None`: virtual time);
    /// `progress` sees (done, total) sectors.
    pub fn run_sync_with(
        &mut self,
        action: SyncAction,
        now: u64,
        wait: &mut dyn FnMut(u64) -> Option<u64>,
        progress: Progress<'_>,
    ) -> Result<SyncReport> {
        if self.readonly {
            return Err(ArrayError::ReadOnly.into());
        }
        self.last_now = now;
        // md_check_recovery: spares take the empty slots before any requested action, and a
        // resync owed waits for that recovery to end.
        if let Some(r) = self.recover_spares(now, wait, progress)? {
            if action == SyncAction::Recovery {
                // The recovery asked for is the one md's recovery check just ran.
                return Ok(r);
            }
        }
        if action == SyncAction::Resync && !self.needs_resync {
            // md: nothing owed, nothing done.
            return Ok(SyncReport {
                action,
                mismatch_cnt: 0,
                sectors_copied: 0,
                sectors_done: 0,
                interrupted: false,
            });
        }
        self.last_sync = None;
        let clock = self.clock_ns.max(now.saturating_mul(1_000_000_000));
        self.clock_ns = clock;
        self.engine_mut()?
            .start_sync(action, clock)
            .map_err(|e| ArrayError::Invalid(alloc::format!("{} refused: {e}", action.as_str())))?;
        let mut buf = CallerBuf::None;
        loop {
            // Drive in slices so progress is reported as the action goes.
            self.drive(&mut buf, now, wait, true, &mut |_, _| false)?;
            if let Some(r) = self.last_sync {
                progress(r.sectors_done, r.sectors_done);
                return Ok(r);
            }
            match self.engine.as_ref().and_then(|e| e.sync_status()) {
                Some(st) => progress(st.done_sectors, st.total_sectors),
                None => return Err(ArrayError::Invalid("sync action vanished".into()).into()),
            }
        }
    }

    /// Members rebuilt from spares into empty slots while this array ran: (name, slot), in
    /// the order they came in sync.
    pub fn rebuilt_spares(&self) -> &[(String, u32)] {
        &self.rebuilt
    }

    /// md's recovery check (md_check_recovery → remove_and_add_spares): on an array running
    /// read-write with no sync action in progress, spares move into empty slots and are
    /// rebuilt; this runs that recovery to its end. Nothing happens without a spare and an
    /// empty slot. Returns the recovery's report when one ran.
    pub(crate) fn recover_spares(
        &mut self,
        now: u64,
        wait: &mut dyn FnMut(u64) -> Option<u64>,
        progress: Progress<'_>,
    ) -> Result<Option<SyncReport>> {
        let empty_slot = (0..self.raid_disks).any(|s| self.slot_member(s).is_none());
        let spare = self.members.iter().any(|m| m.state == MemberState::Spare);
        if self.readonly || !empty_slot || !spare {
            return Ok(None);
        }
        let clock = self.clock_ns.max(now.saturating_mul(1_000_000_000));
        self.clock_ns = clock;
        if self.engine_mut()?.sync_status().is_some() {
            return Ok(None);
        }
        self.last_sync = None;
        if self
            .engine_mut()?
            .start_sync(SyncAction::Recovery, clock)
            .is_err()
        {
            // Nothing the engine can rebuild from (no in-sync source): md leaves the spares.
            return Ok(None);
        }
        let mut buf = CallerBuf::None;
        loop {
            self.drive(&mut buf, now, wait, true, &mut |_, _| false)?;
            let status = self.engine.as_ref().and_then(|e| e.sync_status());
            match (self.last_sync, status) {
                (Some(r), None) => {
                    progress(r.sectors_done, r.sectors_done);
                    return Ok(Some(r));
                }
                (_, Some(st)) => progress(st.done_sectors, st.total_sectors),
                (None, None) => return Err(ArrayError::Invalid("recovery vanished".into()).into()),
            }
            if self.last_sync.is_some() {
                // One recovery ended and the engine started another (a member failed).
                self.last_sync = None;
            }
        }
    }

    /// [`Self::run_sync_with`] on the engine's virtual clock (speed limits shape the order of
    /// work, not the wall-clock time).
    pub fn run_sync(
        &mut self,
        action: SyncAction,
        now: u64,
        progress: Progress<'_>,
    ) -> Result<SyncReport> {
        self.run_sync_with(action, now, &mut |_| None, progress)
    }

    /// A resync if one is owed (after an unclean shutdown or creation without assume-clean).
    pub fn resync(&mut self, now: u64) -> Result<()> {
        if self.needs_resync && !self.readonly {
            self.run_sync(SyncAction::Resync, now, &mut |_, _| {})?;
        }
        Ok(())
    }

    fn engine_pos(&self, member: usize) -> Option<usize> {
        self.emap.iter().position(|m| *m == Some(member))
    }

    fn member_named(&self, name: &str) -> Result<usize> {
        self.members
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| {
                ArrayError::Invalid(alloc::format!("{name} is not a member of this array")).into()
            })
    }

    /// Fails a member (mdadm --fail): the survivors record it as faulty. The last in-sync
    /// mirror cannot fail.
    pub fn fail_member(&mut self, name: &str, now: u64) -> Result<()> {
        let i = self.member_named(name)?;
        if self.members[i].state == MemberState::Faulty {
            return Ok(());
        }
        self.last_now = now;
        // The spares md would have rebuilt when the array started come first.
        self.recover_spares(now, &mut |_| None, &mut |_, _| {})?;
        if self.members[i].state == MemberState::Faulty {
            return Ok(());
        }
        self.engine_mut()?;
        let pos = self
            .engine_pos(i)
            .ok_or_else(|| ArrayError::Invalid("member unknown to the engine".into()))?;
        self.engine_mut()?
            .fail_member(pos)
            .map_err(|e| ArrayError::Invalid(alloc::format!("{name}: {e}")))?;
        self.drive(
            &mut CallerBuf::None,
            now,
            &mut |_| None,
            false,
            &mut |_, _| false,
        )
    }

    /// Removes a faulty or spare device (mdadm --remove) and hands it back when it was a
    /// member. A device assembly already left out (the survivors list it as faulty) is named
    /// by `dev`: its entry in their role tables is forgotten.
    pub fn remove_member(&mut self, name: &str, dev: Option<D>, now: u64) -> Result<Option<D>> {
        self.last_now = now;
        if let Ok(i) = self.member_named(name) {
            match self.members[i].state {
                MemberState::InSync(_) => {
                    return Err(ArrayError::Invalid(alloc::format!(
                        "{name} is active: fail it first"
                    ))
                    .into())
                }
                MemberState::Spare | MemberState::Faulty => {
                    if let Some(pos) = self.engine_pos(i) {
                        if let Some(e) = self.engine.as_mut() {
                            let _ = e.remove_member(pos);
                        }
                    }
                    let dev_number = self.members[i].sb.dev_number();
                    let removed = self.members.remove(i);
                    if self.members.is_empty() {
                        self.retired = removed.sb.clone();
                    }
                    // Indices moved: the engine is rebuilt at the next use.
                    self.engine = None;
                    self.forget_role(dev_number);
                    self.write_superblocks(now)?;
                    return Ok(Some(removed.dev));
                }
            }
        }
        let Some(mut dev) = dev else {
            return Err(ArrayError::Invalid(alloc::format!(
                "{name} is not a member of this array"
            ))
            .into());
        };
        let found = probe(&mut dev, None)?;
        if found.sb.uuid() != self.lead_superblock().uuid() {
            return Err(ArrayError::Invalid(alloc::format!(
                "{name} is not a member of this array"
            ))
            .into());
        }
        let dev_number = found.sb.dev_number();
        match self.lead_superblock().role_of(dev_number) {
            Some(Role::Active(_)) if found.sb.events() + 1 >= self.events => {
                Err(ArrayError::Invalid(alloc::format!("{name} is active: fail it first")).into())
            }
            _ => {
                self.forget_role(dev_number);
                self.write_superblocks(now)?;
                Ok(Some(dev))
            }
        }
    }

    fn forget_role(&mut self, dev_number: u32) {
        super::machine::superblocks::forget_role(&mut self.members, dev_number);
    }

    /// Adds a device (mdadm --add): a device that left this array recently and whose data the
    /// bitmap still covers comes back to its slot, copying only what changed (re-add); any
    /// other device gets a fresh superblock and becomes a spare, rebuilt at once when a slot is
    /// empty. `progress` sees the rebuild.
    pub fn add_member(
        &mut self,
        name: String,
        mut dev: D,
        opts: &AddOptions,
        now: u64,
        progress: Progress<'_>,
    ) -> Result<AddOutcome> {
        if self.readonly {
            return Err(ArrayError::ReadOnly.into());
        }
        self.last_now = now;
        if self.members.iter().any(|m| m.name == name) {
            return Err(ArrayError::Invalid(alloc::format!("{name} is already a member")).into());
        }
        // The spares md would have rebuilt when the array started come first.
        self.recover_spares(now, &mut |_| None, progress)?;
        let lead = self.lead_superblock().clone();
        let needed = self.component_sectors;
        let back = match probe(&mut dev, None) {
            Ok(found) if found.sb.uuid() == lead.uuid() => self
                .comeback(&found.sb)
                .map(|c| (found.sb.clone(), found.sector, c)),
            _ => None,
        };
        if opts.re_add_only && back.is_none() {
            return Err(ArrayError::Invalid(alloc::format!(
                "{name}: cannot re-add (not a recent member of this array)"
            ))
            .into());
        }
        let dev_sectors = dev.size() / SECTOR_SIZE;
        let (sb, sb_sector) = match &back {
            Some((sb, sector, _)) => (sb.clone(), *sector),
            None => self.fresh_superblock(&lead, dev_sectors, opts)?,
        };
        let data_end = sb.data_offset() + needed;
        if dev_sectors < data_end {
            return Err(ArrayError::Invalid(alloc::format!(
                "{name}: {dev_sectors} sectors is too small (needs {data_end})"
            ))
            .into());
        }
        let comeback = back.map(|(_, _, c)| c);
        let mut member = Member {
            dev,
            name,
            sb,
            sb_sector,
            dev_sectors,
            state: MemberState::Spare,
            badblocks: None,
            rebuild: None,
            rebuild_bitmap: false,
        };
        // A re-added device brings its own bad-block log (a fresh superblock has none).
        member.badblocks = member.load_badblocks()?;
        self.members.push(member);
        let i = self.members.len() - 1;
        // Make sure the engine exists, then give the device a free position.
        self.engine_mut()?;
        let pos = self
            .emap
            .iter()
            .enumerate()
            .skip(self.raid_disks as usize)
            .find(|(p, m)| {
                m.is_none()
                    && self.engine.as_ref().and_then(|e| e.member_state(*p))
                        == Some(crate::raid1::MemberState::Missing)
            })
            .map(|(p, _)| p)
            .ok_or_else(|| ArrayError::Invalid("no free position for another member".into()));
        let pos = match pos {
            Ok(p) => p,
            Err(e) => {
                self.members.pop();
                return Err(e.into());
            }
        };
        self.emap[pos] = Some(i);
        let mut cfg: MemberConfig = self.member_config(i);
        cfg.spare = comeback.is_none();
        cfg.in_sync = false;
        cfg.recovery_offset = 0;
        self.last_sync = None;
        let r = match comeback {
            Some(c) => {
                cfg.recovery_offset = c.from;
                cfg.bitmap_recovery_below = c.bitmap_below;
                self.engine_mut()?.resume_member(pos, cfg, c.slot as usize)
            }
            None => self.engine_mut()?.add_member(pos, cfg),
        };
        r.map_err(|e| ArrayError::Invalid(alloc::format!("add: {e}")))?;
        if let (Some(c), Some(m)) = (comeback, self.members.get_mut(i)) {
            // Recorded at once (role = slot, recovery_offset, bit 128 when bitmap-based), so a
            // cut before the first checkpoint never leaves a superblock claiming more.
            m.rebuild = Some((c.slot, c.from));
            m.rebuild_bitmap = c.bitmap_below == u64::MAX;
        }
        let is_readd = comeback.is_some();
        // Its superblock and bitmap copy go out with the next metadata round.
        self.write_superblocks(now)?;
        if let Some(bm) = self.bitmap.as_mut() {
            bm.write_all(&mut self.members, self.events)?;
        }
        let mut buf = CallerBuf::None;
        self.drive(&mut buf, now, &mut |_| None, true, &mut |_, _| false)?;
        loop {
            if let Some(r) = self.last_sync {
                progress(r.sectors_done, r.sectors_done);
                return Ok(if is_readd {
                    AddOutcome::ReAdded(r)
                } else {
                    AddOutcome::Rebuilt(r)
                });
            }
            match self.engine.as_ref().and_then(|e| e.sync_status()) {
                Some(st) => progress(st.done_sectors, st.total_sectors),
                None => return Ok(AddOutcome::Spare),
            }
            self.drive(&mut buf, now, &mut |_| None, true, &mut |_, _| false)?;
        }
    }

    /// Whether a device of this array (superblock `sb`) may come back to its old slot, and
    /// how much must be copied (md's re-add; super_1_validate for a member whose recovery
    /// was interrupted). `None`: it is added as a new device and rebuilt in full.
    ///
    /// - It held a slot that is free now and its events are not ahead of the array's.
    /// - In sync when it left: a bitmap re-add, if the bitmap still covers everything
    ///   written since (events >= events_cleared).
    /// - Recovery interrupted at R (never in sync): when nothing happened without it (same
    ///   events) recovery continues from R as md does, bitmap-guided only when the superblock
    ///   says the recovery was bitmap-based (bit 128). When the array moved on without it,
    ///   the part below R may be stale too: the bitmap must cover the absence and guides the
    ///   copy below R; from R on everything is copied unless the recovery was bitmap-based.
    fn comeback(&self, sb: &Superblock) -> Option<Comeback> {
        let Role::Active(slot) = sb.role() else {
            return None;
        };
        let taken = self.slot_member(slot).is_some()
            || self
                .members
                .iter()
                .any(|m| m.rebuild.is_some_and(|(s, _)| s == slot));
        if slot >= self.raid_disks || taken || sb.events() > self.events {
            return None;
        }
        let bitmap_covers = self
            .bitmap
            .as_ref()
            .is_some_and(|bm| sb.events() >= bm.bitmap.header.events_cleared);
        let current = sb.events() == self.events;
        let (from, bitmap_below) = match super::recovery_point(sb) {
            None if bitmap_covers => (0, u64::MAX),
            None => return None,
            Some((r, true)) if bitmap_covers => (if current { r } else { 0 }, u64::MAX),
            Some((r, _)) if current => (r, 0),
            Some((r, false)) if bitmap_covers => (0, r),
            Some(_) => return None,
        };
        Some(Comeback {
            slot,
            from: from.min(self.component_sectors),
            bitmap_below,
        })
    }

    /// A superblock for a new member: the array's, with a new identity as a spare.
    fn fresh_superblock(
        &self,
        lead: &Superblock,
        dev_sectors: u64,
        opts: &AddOptions,
    ) -> Result<(Superblock, u64)> {
        let used: Vec<u32> = self.members.iter().map(|m| m.sb.dev_number()).collect();
        match lead {
            Superblock::V1(s, v) => {
                let mut n = s.clone();
                let dev_number = (0..n.max_dev)
                    .find(|d| {
                        !used.contains(d)
                            && n.dev_roles
                                .get(*d as usize)
                                .is_some_and(|&r| r == crate::format::sb1::ROLE_SPARE)
                    })
                    .ok_or_else(|| {
                        ArrayError::Invalid("no free device number (max_dev reached)".into())
                    })?;
                n.dev_number = dev_number;
                if let Some(r) = n.dev_roles.get_mut(dev_number as usize) {
                    *r = crate::format::sb1::ROLE_SPARE;
                }
                let sector = crate::format::probe::sb1_location(*v, dev_sectors)
                    .ok_or_else(|| ArrayError::Invalid("device too small".into()))?;
                if *v == crate::format::MetadataVersion::V1_0 {
                    // 1.0 keeps data at 0 and the superblock at the end: the data area must fit.
                    n.data_size = sector.saturating_sub(n.data_offset);
                } else {
                    n.data_size = dev_sectors.saturating_sub(n.data_offset);
                }
                n.super_offset = sector;
                n.recovery_offset = 0;
                n.feature_map &= !(crate::format::sb1::FEATURE_RECOVERY_OFFSET
                    | crate::format::sb1::FEATURE_BAD_BLOCKS);
                n.cnt_corrected_read = 0;
                // A new identity, derived from the array's and the position (no entropy here).
                let mut u = n.device_uuid;
                for (k, b) in u.iter_mut().enumerate() {
                    *b ^= (dev_number as u8)
                        .wrapping_mul(31)
                        .wrapping_add(k as u8)
                        .wrapping_add(self.events as u8);
                }
                n.device_uuid = u;
                n.devflags = u8::from(opts.write_mostly) * crate::format::sb1::DEVFLAG_WRITE_MOSTLY
                    + u8::from(opts.failfast) * crate::format::sb1::DEVFLAG_FAILFAST;
                Ok((Superblock::V1(n, *v), sector))
            }
            Superblock::V0(s) => {
                let mut n = s.clone();
                let number = (0..crate::format::sb0::SB0_DISKS as u32)
                    .find(|d| {
                        !used.contains(d)
                            && n.disks[*d as usize].state
                                & (crate::format::sb0::DISK_ACTIVE | crate::format::sb0::DISK_SYNC)
                                == 0
                            && (*d >= n.raid_disks
                                || n.disks[*d as usize].state & crate::format::sb0::DISK_REMOVED
                                    != 0
                                || n.disks[*d as usize].number == 0 && *d >= n.nr_disks)
                    })
                    .ok_or_else(|| ArrayError::Invalid("no free disk record".into()))?;
                // Its flags travel in its own record (the next update rebuilds the table).
                let flags = (u32::from(opts.write_mostly) * crate::format::sb0::DISK_WRITE_MOSTLY)
                    | (u32::from(opts.failfast) * crate::format::sb0::DISK_FAILFAST);
                let rec = crate::format::sb0::Disk0 {
                    number,
                    major: 0,
                    minor: 0,
                    raid_disk: number,
                    state: flags,
                };
                n.disks[number as usize] = rec;
                n.this_disk = rec;
                let sector = crate::format::sb0::location(dev_sectors)
                    .ok_or_else(|| ArrayError::Invalid("device too small".into()))?;
                Ok((Superblock::V0(n), sector))
            }
        }
    }
}
