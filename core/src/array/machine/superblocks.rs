//! Array state → superblock bytes: what one superblock round lays over every working member's
//! superblock (events, clean/dirty, resync checkpoint, roles, rebuild progress, utime).
//!
//! Shared by the [`super::Machine`] and the blocking [`crate::array::Array`]: both keep their
//! members as [`Member`]s (the machine's carry no device), so the policy lives here once.

use super::super::member::DeviceId;
use super::super::sb0_sync;
use super::super::{Member, MemberState};
use crate::format::probe::{Role, Superblock};
use crate::format::{sb1, MetadataVersion};
use alloc::vec::Vec;

/// The array-wide facts every superblock round writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SbState {
    /// The round's event count.
    pub events: u64,
    /// Writes may be in flight.
    pub dirty: bool,
    /// md's resync checkpoint (see [`resync_checkpoint`]).
    pub resync_cp: u64,
    /// Wall-clock seconds to stamp as utime.
    pub now: u64,
}

/// md's resync checkpoint: 0 while writes may be in flight, how far a resync got while one is
/// still owed, all ones once the mirrors are known identical.
pub(crate) fn resync_checkpoint(
    dirty: bool,
    needs_resync: bool,
    resync_done: u64,
    component_sectors: u64,
) -> u64 {
    if dirty {
        0
    } else if needs_resync {
        resync_done.min(component_sectors)
    } else {
        sb1::RESYNC_CLEAN
    }
}

impl<X> Member<X> {
    /// The role this member's entry in every superblock's role table should say.
    pub(crate) fn role(&self) -> Role {
        match self.state {
            MemberState::InSync(slot) => Role::Active(slot),
            MemberState::Spare => self
                .rebuild
                .map_or(Role::Spare, |(slot, _)| Role::Active(slot)),
            MemberState::Faulty => Role::Faulty,
        }
    }
}

/// Lays `st` over the superblock of every working member (in memory; the caller writes
/// `m.sb.to_bytes()` of each working member at `m.sb_sector`).
pub(crate) fn lay_superblocks<X: DeviceId>(
    members: &mut [Member<X>],
    raid_disks: u32,
    st: &SbState,
) {
    let roles: Vec<(u32, Role)> = members
        .iter()
        .map(|m| (m.sb.dev_number(), m.role()))
        .collect();
    // 0.90 keeps no role word per device: the whole disk table is rebuilt each time.
    let v090 = members
        .first()
        .is_some_and(|m| m.sb.version() == MetadataVersion::V0_90);
    let table = v090.then(|| sb0_sync::Sb0Table::build(raid_disks, members));
    let replacing: Vec<bool> = (0..members.len())
        .map(|i| super::replace::is_replacement(members, i))
        .collect();
    for (i, m) in members.iter_mut().enumerate() {
        if !m.state.is_working() {
            continue;
        }
        let rebuild = if m.state == MemberState::Spare {
            m.rebuild.map(|(_, o)| (o, m.rebuild_bitmap))
        } else {
            None
        };
        m.sync_badblocks_feature();
        if let Superblock::V1(s, _) = &mut m.sb {
            // md's super_1_sync: feature bit 16 on a replacement's own superblock.
            if replacing.get(i).copied().unwrap_or(false) {
                s.feature_map |= sb1::FEATURE_REPLACEMENT;
            } else {
                s.feature_map &= !sb1::FEATURE_REPLACEMENT;
            }
        }
        apply_state(&mut m.sb, st, &roles, rebuild);
        if let Some(t) = &table {
            t.apply(i, &mut m.sb);
        }
    }
}

/// Lays the array's current state over a member's superblock and fixes its checksum.
/// `rebuild`: this member is being rebuilt, (sectors done, bitmap-based). (0.90 disk records,
/// including those of members being rebuilt, are laid over by `sb0_sync::Sb0Table::apply`.)
fn apply_state(
    sb: &mut Superblock,
    st: &SbState,
    roles: &[(u32, Role)],
    rebuild: Option<(u64, bool)>,
) {
    let SbState {
        events,
        dirty,
        resync_cp,
        now,
    } = *st;
    match sb {
        Superblock::V1(s, _) => {
            s.events = events;
            s.resync_offset = resync_cp;
            // A member being rebuilt records how far (md's recovery_offset, feature bit 2) and,
            // for a bitmap-based rebuild (a re-add), feature bit 128, as super_1_sync does:
            // without it md copies everything from the offset.
            // mutants: `|` → `^` here is equivalent (bits 2 and 128 are disjoint).
            s.feature_map &= !(sb1::FEATURE_RECOVERY_OFFSET | sb1::FEATURE_RECOVERY_BITMAP);
            s.recovery_offset = 0;
            if let Some((off, bitmap_based)) = rebuild {
                s.feature_map |= sb1::FEATURE_RECOVERY_OFFSET;
                if bitmap_based {
                    s.feature_map |= sb1::FEATURE_RECOVERY_BITMAP;
                }
                s.recovery_offset = off;
            }
            // utime keeps ctime's encoding: microseconds in the top 24 bits; we write whole seconds.
            s.utime = now & 0xff_ffff_ffff;
            for &(dev, role) in roles {
                if let Some(r) = s.dev_roles.get_mut(dev as usize) {
                    *r = role.to_sb1();
                }
            }
        }
        Superblock::V0(s) => {
            s.events = events;
            // md (super_90_sync) writes the checkpoint and its events only while no write is
            // in flight; a clean array has a recovery checkpoint of all ones. The disk
            // records and counters are laid over by `sb0_sync::Sb0Table::apply`.
            s.cp_events = if dirty { 0 } else { events };
            s.state = sb0_sync::state_word(s.state, dirty, resync_cp);
            s.recovery_cp = if dirty {
                0
            } else {
                u32::try_from(resync_cp).unwrap_or(u32::MAX)
            };
            s.utime = now as u32;
        }
    }
    sb.update_checksum();
}

/// Marks `dev_number` as an empty position in every member's role table (md lists a
/// removed device as a spare entry, 0xffff, in 1.x; 0.90 marks the record removed).
pub(crate) fn forget_role<X>(members: &mut [Member<X>], dev_number: u32) {
    for m in members {
        match &mut m.sb {
            Superblock::V1(s, _) => {
                if let Some(r) = s.dev_roles.get_mut(dev_number as usize) {
                    *r = crate::format::sb1::ROLE_SPARE;
                }
            }
            Superblock::V0(s) => {
                if let Some(d) = s.disks.get_mut(dev_number as usize) {
                    // mutants: `|` → `^` (disjoint bits 3 and 0) and `|` → `&` are equivalent:
                    // the 0.90 disk table is rebuilt from the members (`Sb0Table`) in the
                    // superblock round every caller queues next, before anything is written.
                    d.state = crate::format::sb0::DISK_REMOVED | crate::format::sb0::DISK_FAULTY;
                }
            }
        }
    }
}
