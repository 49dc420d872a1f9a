//! Array state → engine configuration: what the RAID1 engine is told about each member and
//! which member each engine position holds. Shared by the [`super::Machine`] and the blocking
//! [`crate::array::Array`].

use super::super::{IntentBitmap, Member, MemberState};
use crate::format::badblocks;
use crate::format::probe::Superblock;
use crate::format::sb1;
use crate::raid1::{BadBlockTable, BitmapConfig, MemberConfig, Raid1Config};
use alloc::vec::Vec;

/// The array-wide facts the engine configuration depends on.
pub(crate) struct ArrayFacts<'a> {
    pub raid_disks: u32,
    pub component_sectors: u64,
    pub readonly: bool,
    pub dirty: bool,
    pub needs_resync: bool,
    /// While a resync is owed: sectors below this are known in sync.
    pub resync_done: u64,
    /// Sync speed limits in KiB/s (min, max).
    pub speed_limits: (u64, u64),
    pub bitmap: Option<&'a IntentBitmap>,
}

/// The member holding `slot`, if any.
pub(crate) fn slot_member<X>(members: &[Member<X>], slot: u32) -> Option<usize> {
    members
        .iter()
        .position(|m| m.state == MemberState::InSync(slot))
}

/// What the engine needs to know about one member.
pub(crate) fn member_config<X>(m: &Member<X>) -> MemberConfig {
    let mut mc = MemberConfig::in_sync();
    if let Superblock::V1(s, _) = &m.sb {
        mc.write_mostly = s.devflags & sb1::DEVFLAG_WRITE_MOSTLY != 0;
        mc.failfast = s.devflags & sb1::DEVFLAG_FAILFAST != 0;
        // Every 1.x member with a log area gets a table, empty or not: a write error is
        // then recorded as a bad block instead of failing the member.
        if s.bblog_size > 0 && s.bblog_offset != 0 {
            let data_offset = s.data_offset;
            let ranges = m
                .badblocks
                .iter()
                .flat_map(|log| log.entries.iter())
                .filter(|e| e.start_sector + u64::from(e.len_sectors) > data_offset)
                .map(|e| {
                    let start = e.start_sector.max(data_offset);
                    (
                        start - data_offset,
                        e.start_sector + u64::from(e.len_sectors) - start,
                    )
                })
                .collect();
            mc.bad_blocks = Some(BadBlockTable {
                ranges,
                capacity: badblocks::capacity(s.bblog_size),
            });
        }
    }
    if m.state == MemberState::Spare {
        mc.spare = true;
        mc.in_sync = false;
        if let Some((_, off)) = m.rebuild {
            // Being rebuilt into its slot: current below `off` (engine_config places it).
            mc.spare = false;
            mc.recovery_offset = off;
            mc.bitmap_recovery_below = if m.rebuild_bitmap { u64::MAX } else { 0 };
        }
    }
    mc
}

/// The engine configuration for the array as it stands, and which member each engine
/// position holds: positions `0..raid_disks` are the slots, then the spares, then free
/// positions for devices added at run time.
pub(crate) fn engine_config<X>(
    members: &[Member<X>],
    facts: &ArrayFacts<'_>,
) -> (Raid1Config, Vec<Option<usize>>) {
    let slots = facts.raid_disks as usize;
    // A member being rebuilt goes back into its slot (when still free), the other spares
    // after the slots.
    let rebuilding = |slot: u32| {
        slot_member(members, slot).is_none().then(|| {
            members.iter().position(|m| {
                m.state == MemberState::Spare && m.rebuild.is_some_and(|r| r.0 == slot)
            })
        })?
    };
    let in_slot: Vec<usize> = (0..facts.raid_disks).filter_map(rebuilding).collect();
    let spares: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].state == MemberState::Spare && !in_slot.contains(&i))
        .collect();
    let positions = (slots + spares.len() + 2)
        .min(crate::raid1::MAX_SLOTS)
        .max(slots);
    let mut cfg = Raid1Config::new(positions, facts.component_sectors);
    cfg.raid_disks = slots;
    let mut emap = alloc::vec![None; positions];
    for (pos, mc) in cfg.members.iter_mut().enumerate() {
        let member = if pos < slots {
            slot_member(members, pos as u32).or_else(|| rebuilding(pos as u32))
        } else {
            spares.get(pos - slots).copied()
        };
        match member {
            Some(i) => {
                *mc = member_config(&members[i]);
                if members[i].state == MemberState::Spare {
                    // A plain spare, or one being rebuilt but not in its slot.
                    mc.spare = pos >= slots;
                }
                emap[pos] = Some(i);
            }
            None => *mc = MemberConfig::missing(),
        }
    }
    if facts.readonly {
        // A read-only array never syncs (md keeps resync pending on a read-only array).
        cfg.sync_window = 0;
        cfg.sync_buffers = 0;
        // Nor does it rewrite a bad range after a read error (raid1's fix_read_error runs only
        // on a writable array): the read goes to another mirror and nothing is written.
        cfg.fix_buffers = 0;
    }
    cfg.sync_speed_min_kib = facts.speed_limits.0;
    cfg.sync_speed_max_kib = facts.speed_limits.1;
    // Where a resync would start: the superblock's checkpoint (1.x), else the beginning.
    cfg.resync_offset = if facts.needs_resync {
        facts.resync_done.min(facts.component_sectors)
    } else {
        u64::MAX
    };
    cfg.start_clean = !facts.dirty;
    if let Some(bm) = facts.bitmap {
        if let Some(cs) = bm.bitmap.header.chunk_sectors() {
            let mut b = BitmapConfig::new(cs);
            b.set_chunks = dirty_runs(bm);
            cfg.bitmap = Some(b);
        }
    }
    (cfg, emap)
}

/// The bitmap's dirty chunks as sorted `(first, count)` runs.
// mutants: the guard → `false` and its `+` → `*` are equivalent in outcome: chunks come in
// increasing order, so `first * n == c` never holds (n stays 1) and both only split the runs
// into single chunks, the same set for the engine (excluded in .cargo/mutants.toml).
fn dirty_runs(bm: &IntentBitmap) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for c in bm.bitmap.dirty_chunks() {
        match runs.last_mut() {
            Some((first, n)) if *first + *n == c => *n += 1,
            _ => runs.push((c, 1)),
        }
    }
    runs
}
