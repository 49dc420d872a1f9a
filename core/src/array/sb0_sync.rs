//! The 0.90 disk table as md's `super_90_sync` writes it at every superblock update.
//!
//! 0.90 has no per-device role word: each update rebuilds the whole table of 27 disk records
//! and the counters from the members present. An in-sync member's record sits at its slot; every
//! other member (spare, being rebuilt, faulty) gets the next record from `raid_disks` up, in
//! member order; a slot left without a member is marked removed and faulty. `this_disk` is the
//! member's own record, so a member's record number changes as the array changes.

use super::{Member, MemberState};
use crate::format::probe::Superblock;
use crate::format::sb0::{
    self, Disk0, DISK_ACTIVE, DISK_FAILFAST, DISK_FAULTY, DISK_REMOVED, DISK_SYNC,
    DISK_WRITE_MOSTLY, SB0_DISKS,
};
use alloc::vec::Vec;

/// One update's table: the records, the counters and each member's record number.
pub(super) struct Sb0Table {
    disks: [Disk0; SB0_DISKS],
    nr_disks: u32,
    active: u32,
    working: u32,
    failed: u32,
    spare: u32,
    /// Record number of each member (by index in the member list); `None` past the 27th.
    desc: Vec<Option<u32>>,
}

impl Sb0Table {
    /// The table for `members` of an array with `raid_disks` slots.
    pub(super) fn build<X: super::member::DeviceId>(
        raid_disks: u32,
        members: &[Member<X>],
    ) -> Self {
        let mut t = Sb0Table {
            disks: [Disk0::default(); SB0_DISKS],
            nr_disks: 0,
            active: 0,
            working: 0,
            failed: 0,
            spare: 0,
            desc: Vec::with_capacity(members.len()),
        };
        // md presets record 0 as removed: an empty slot 0 keeps only that bit (and is not
        // counted as failed), a quirk mdadm's examine shows as it is.
        t.disks[0].state = DISK_REMOVED;
        let mut next_spare = raid_disks;
        for m in members {
            let active_slot = match m.state {
                MemberState::InSync(slot) if slot < raid_disks => Some(slot),
                _ => None,
            };
            let desc = active_slot.unwrap_or_else(|| {
                next_spare += 1;
                next_spare - 1
            });
            let Some(d) = t.disks.get_mut(desc as usize) else {
                // No room for a record (md never lets a 0.90 array hold that many devices).
                t.desc.push(None);
                continue;
            };
            t.desc.push(Some(desc));
            t.nr_disks += 1;
            let own = own_record(&m.sb);
            let (major, minor) = m.dev.device_number().unwrap_or((own.major, own.minor));
            *d = Disk0 {
                number: desc,
                major,
                minor,
                raid_disk: active_slot.unwrap_or(desc),
                state: 0,
            };
            match m.state {
                MemberState::Faulty => d.state = DISK_FAULTY,
                _ if active_slot.is_some() => {
                    // mutants: `|` → `^` here and below is equivalent: the bits are disjoint
                    // (active 1 and sync 2, write-mostly 9 and failfast 10, removed 3 and
                    // faulty 0; excluded).
                    d.state = DISK_ACTIVE | DISK_SYNC;
                    t.active += 1;
                    t.working += 1;
                }
                _ => {
                    t.spare += 1;
                    t.working += 1;
                }
            }
            // The member's write-mostly and failfast flags live in its own record.
            d.state |= own.state & (DISK_WRITE_MOSTLY | DISK_FAILFAST);
        }
        for (i, d) in t.disks.iter_mut().enumerate().take(raid_disks as usize) {
            if d.state == 0 && d.number == 0 {
                *d = Disk0 {
                    number: i as u32,
                    major: 0,
                    minor: 0,
                    raid_disk: i as u32,
                    state: DISK_REMOVED | DISK_FAULTY,
                };
                t.failed += 1;
            }
        }
        t
    }

    /// Lays the table over member `i`'s 0.90 superblock (other versions are left alone) and
    /// fixes its checksum.
    pub(super) fn apply(&self, i: usize, sb: &mut Superblock) {
        let Superblock::V0(s) = sb else {
            return;
        };
        s.disks = self.disks;
        s.nr_disks = self.nr_disks;
        s.active_disks = self.active;
        s.working_disks = self.working;
        s.failed_disks = self.failed;
        s.spare_disks = self.spare;
        if let Some(Some(desc)) = self.desc.get(i) {
            s.this_disk = self.disks[*desc as usize];
        }
        // md writes the records from zeroed memory: no word of an old record survives.
        s.raw[512..].fill(0);
        sb.update_checksum();
    }
}

/// The member's own record as its superblock holds it (a 1.x member has none).
fn own_record(sb: &Superblock) -> Disk0 {
    match sb {
        Superblock::V0(s) => s.this_disk,
        Superblock::V1(..) => Disk0::default(),
    }
}

/// md's 0.90 state word: clean only when no write is in flight and no resync is owed;
/// the bitmap-present bit is kept.
pub(super) fn state_word(old: u32, dirty: bool, resync_cp: u64) -> u32 {
    let clean = !dirty && resync_cp == crate::format::sb1::RESYNC_CLEAN;
    // mutants: `|` → `^` is equivalent: bitmap-present is bit 8, clean bit 0 (excluded).
    (old & sb0::STATE_BITMAP_PRESENT) | if clean { sb0::STATE_CLEAN } else { 0 }
}
