//! Membership commands of the [`Machine`]: md's recovery check (spares into empty slots),
//! adding a device (a new spare, or a re-add to its old slot), forgetting a device.
//!
//! Deciding how a device comes back is a function of the array's state and the superblock the
//! caller read from the device; the machine reads nothing itself.

use super::super::{AddOptions, ArrayError, Member, MemberState};
use super::{config, Detached, Machine, MachineError};
use crate::format::probe::{Role, Superblock};
use crate::raid1::{MemberConfig, SyncAction};
use alloc::vec::Vec;

/// How a device returns to its slot: recovery from `from`, copying below `bitmap_below` only
/// bitmap-dirty chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comeback {
    /// The slot it held.
    pub slot: u32,
    /// Recovery starts here.
    pub from: u64,
    /// Below this, only bitmap-dirty chunks are copied.
    pub bitmap_below: u64,
}

/// A device to add, as [`Machine::plan_add`] prepared it.
#[derive(Debug)]
pub struct AddPlan {
    /// The superblock it will carry.
    pub sb: Superblock,
    /// Where (sector).
    pub sb_sector: u64,
    /// Whether it comes back to its old slot, and from where.
    pub comeback: Option<Comeback>,
}

impl Machine {
    /// md's recovery check (md_check_recovery → remove_and_add_spares): on an array running
    /// read-write with no sync action, spares move into empty slots and are rebuilt, and a
    /// rebuild that was stopped (an interrupted replacement included: md counts every device
    /// with a slot that is not in sync) resumes; nothing while sync actions are frozen
    /// ([`Machine::stop_sync`]). Returns whether a recovery started.
    pub fn check_recovery(&mut self) -> bool {
        // md's check starts nothing while MD_RECOVERY_FROZEN is set (start_sync would clear it:
        // an explicit action ends a freeze, the check does not).
        if self.engine.sync_status().is_some() || !self.meta.is_idle() || self.engine.sync_frozen()
        {
            return false;
        }
        // The engine decides what there is to recover (a spare for an empty slot, a position
        // still Recovering); start_sync refuses on a read-only or stopping array, with nothing
        // to recover or with no in-sync source (md then leaves the spares).
        self.start_sync(SyncAction::Recovery).is_ok()
    }

    /// Decides how a device whose superblock is `found` (as probed from it, `None` when it
    /// has none) joins the array: its old slot (re-add) or a fresh superblock as a spare.
    /// `dev_sectors` is its size.
    pub fn plan_add(
        &self,
        found: Option<(Superblock, u64)>,
        dev_sectors: u64,
        opts: &AddOptions,
    ) -> crate::Result<AddPlan> {
        let lead = self
            .lead_superblock()
            .ok_or(ArrayError::NoWorkingMember)?
            .clone();
        let back = match found {
            Some((sb, sector)) if sb.uuid() == lead.uuid() => {
                self.comeback(&sb).map(|c| (sb, sector, c))
            }
            _ => None,
        };
        if opts.re_add_only && back.is_none() {
            return Err(ArrayError::Invalid(
                "cannot re-add (not a recent member of this array)".into(),
            )
            .into());
        }
        let (sb, sb_sector, comeback) = match back {
            Some((sb, sector, c)) => (sb, sector, Some(c)),
            None => {
                let (sb, sector) = self.fresh_superblock(&lead, dev_sectors, opts)?;
                (sb, sector, None)
            }
        };
        let data_end = sb.data_offset() + self.component_sectors;
        if dev_sectors < data_end {
            return Err(ArrayError::Invalid(alloc::format!(
                "{dev_sectors} sectors is too small (needs {data_end})"
            ))
            .into());
        }
        Ok(AddPlan {
            sb,
            sb_sector,
            comeback,
        })
    }

    /// Adds a member (while idle). Its superblock (and the whole bitmap) go out in the next
    /// metadata round; once that round is durable the engine takes the member: a comeback
    /// resumes its recovery, a spare is rebuilt into an empty slot if there is one. Returns
    /// its index in [`Self::members`].
    pub fn add_member(
        &mut self,
        mut member: Member<Detached>,
        comeback: Option<Comeback>,
    ) -> Result<usize, MachineError> {
        if self.readonly || self.stopping {
            return Err(MachineError::Refused("read-only or stopping"));
        }
        if self.is_busy() {
            return Err(MachineError::Refused("add while idle"));
        }
        if self.members.iter().any(|m| m.name == member.name) {
            return Err(MachineError::Refused("already a member"));
        }
        // The array's requests are whole blocks of its members' logical block size: a member
        // with larger blocks would refuse them (md refuses such a device too).
        if member.dev.block_bytes() > self.block_size() {
            return Err(MachineError::Refused(
                "the device's logical block size is larger than the array's",
            ));
        }
        // A comeback keeps the device's own layout: held to assembly's rule (each region on a
        // block of its own, Superblock::validate_blocks), or its superblock and bitmap writes
        // would cover each other.
        if member
            .sb
            .validate_blocks(member.sb_sector, member.dev.block_bytes())
            .is_err()
        {
            return Err(MachineError::Refused(
                "the device's metadata is not on blocks of its own for its logical block size",
            ));
        }
        let pos = self
            .emap
            .iter()
            .enumerate()
            .skip(self.raid_disks as usize)
            // mutants: `&&` → `||` is equivalent: while the machine is idle (and add_member
            // runs only then) a position has no member exactly when the engine has it Missing
            // (engine_config builds both from the members; an add sets emap at once and the
            // engine's position when its round is durable, busy in between; a refused add
            // clears emap). Excluded in .cargo/mutants.toml.
            .find(|(p, m)| {
                m.is_none()
                    && self.engine.member_state(*p) == Some(crate::raid1::PositionState::Missing)
            })
            .map(|(p, _)| p)
            .ok_or(MachineError::Refused("no free position for another member"))?;
        member.state = MemberState::Spare;
        if let Some(c) = comeback {
            // Recorded at once (role = slot, recovery_offset, bit 128 when bitmap-based), so a
            // cut before the first checkpoint never leaves a superblock claiming more.
            member.rebuild = Some((c.slot, c.from));
            member.rebuild_bitmap = c.bitmap_below == u64::MAX;
        }
        let mut cfg: MemberConfig = config::member_config(&member);
        cfg.spare = comeback.is_none();
        cfg.in_sync = false;
        cfg.recovery_offset = 0;
        if let Some(c) = comeback {
            cfg.recovery_offset = c.from;
            cfg.bitmap_recovery_below = c.bitmap_below;
        }
        self.meta.add_member(&member);
        self.members.push(member);
        let i = self.members.len() - 1;
        self.emap[pos] = Some(i);
        self.last_sync = None;
        self.meta.queue_add(super::metadata::Pending {
            pos,
            cfg,
            slot: comeback.map(|c| c.slot as usize),
        });
        self.pump();
        Ok(i)
    }

    /// Forgets a device the array no longer holds (assembly left it out) from the members'
    /// role tables, and writes the superblocks (while idle).
    pub fn forget_device(&mut self, dev_number: u32) -> Result<(), MachineError> {
        if self.readonly || self.stopping || self.is_busy() {
            return Err(MachineError::Refused("forget while idle"));
        }
        super::superblocks::forget_role(&mut self.members, dev_number);
        self.meta.queue_superblocks();
        self.pump();
        Ok(())
    }

    /// The superblock that speaks for the array: the first in-sync member's, else the
    /// first's; `None` without members.
    pub fn lead_superblock(&self) -> Option<&Superblock> {
        self.members
            .iter()
            .find(|m| matches!(m.state, MemberState::InSync(_)))
            .or(self.members.first())
            .map(|m| &m.sb)
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
    pub(super) fn comeback(&self, sb: &Superblock) -> Option<Comeback> {
        let Role::Active(slot) = sb.role() else {
            return None;
        };
        let taken = config::slot_member(&self.members, slot).is_some()
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
        let (from, bitmap_below) = match super::super::recovery_point(sb) {
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
    pub(super) fn fresh_superblock(
        &self,
        lead: &Superblock,
        dev_sectors: u64,
        opts: &AddOptions,
    ) -> crate::Result<(Superblock, u64)> {
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
                // mutants: `|` → `^` is equivalent (bits 2 and 8 are disjoint); excluded.
                n.feature_map &= !(crate::format::sb1::FEATURE_RECOVERY_OFFSET
                    | crate::format::sb1::FEATURE_BAD_BLOCKS);
                n.cnt_corrected_read = 0;
                // The caller's identity, else one derived from the array's and the position
                // (no entropy here).
                n.device_uuid = opts.device_uuid.unwrap_or_else(|| {
                    let mut u = n.device_uuid;
                    for (k, b) in u.iter_mut().enumerate() {
                        *b ^= (dev_number as u8)
                            .wrapping_mul(31)
                            .wrapping_add(k as u8)
                            .wrapping_add(self.events as u8);
                    }
                    u
                });
                // mutants: the first `*` → `/` is equivalent (x / 1 == x * 1: the flag is bit 0);
                // excluded.
                n.devflags = u8::from(opts.write_mostly) * crate::format::sb1::DEVFLAG_WRITE_MOSTLY
                    + u8::from(opts.failfast) * crate::format::sb1::DEVFLAG_FAILFAST;
                Ok((Superblock::V1(n, *v), sector))
            }
            Superblock::V0(s) => {
                let mut n = s.clone();
                // mutants: `ACTIVE | SYNC` → `^` is equivalent (bits 1 and 2); excluded.
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
                // mutants: `|` → `^` is equivalent (bits 9 and 10); excluded.
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
