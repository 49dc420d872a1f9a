//! Assembly: which of the given devices form the array, by md's rules.
//!
//! - The freshest device holding an active role (highest events) leads; its role table decides
//!   every other device's role.
//! - A device whose own superblock claims an active role but is more than one event behind the
//!   leader is kicked as non-fresh (the kernel's "kicking non-fresh" rule: events+1 < leader's).
//! - A device the leader lists as faulty is refused.
//! - Two devices claiming one slot: the fresher keeps it.
//! - Without `run`/`force` the array starts when the members found (in sync plus being
//!   rebuilt) are at least as many as the freshest superblock records as working (mdadm's rule).

use super::{Array, ArrayError, Member, MemberState};
use crate::device::BlockDevice;
use crate::format::probe::{probe, Role, Superblock};
use crate::format::FormatError;
use crate::{Error, Result};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Options for [`Array::assemble`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AssembleOptions {
    /// Start even when degraded (mdadm --run).
    pub run: bool,
    /// Start even when degraded or dirty (mdadm --force).
    pub force: bool,
    /// Start read-only: no metadata is written, writes are refused.
    pub readonly: bool,
}

/// Why a device was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KickReason {
    /// Its events are more than one behind the freshest member's.
    NonFresh {
        /// Its events.
        events: u64,
        /// The freshest member's events.
        freshest: u64,
    },
    /// The freshest member's superblock lists it as faulty.
    ListedFaulty,
    /// Its superblock failed the kernel's checks.
    Invalid(FormatError),
    /// Another, fresher device holds its slot.
    SlotTaken(u32),
    /// Its slot is beyond raid_disks.
    BadSlot(u32),
}

impl core::fmt::Display for KickReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KickReason::NonFresh { events, freshest } => {
                write!(f, "non-fresh (events {events}, freshest has {freshest})")
            }
            KickReason::ListedFaulty => f.write_str("listed as faulty by the freshest member"),
            KickReason::Invalid(e) => write!(f, "invalid superblock: {e}"),
            KickReason::SlotTaken(s) => write!(f, "slot {s} is held by a fresher device"),
            KickReason::BadSlot(s) => write!(f, "slot {s} is beyond the array's raid devices"),
        }
    }
}

/// A device left out of the array, handed back with the reason.
#[derive(Debug)]
pub struct Kicked<D> {
    /// Its name.
    pub name: String,
    /// The device.
    pub dev: D,
    /// Why.
    pub reason: KickReason,
}

/// What assembly did besides building the array.
#[derive(Debug)]
pub struct AssembleReport<D> {
    /// Devices left out.
    pub kicked: Vec<Kicked<D>>,
    /// Whether it started with fewer in-sync members than slots.
    pub degraded: bool,
    /// Whether the superblocks say the array was not shut down cleanly (needs resync).
    pub unclean: bool,
}

struct Candidate<D> {
    name: String,
    dev: D,
    sb: Superblock,
    sector: u64,
    dev_sectors: u64,
}

impl<D: BlockDevice> Array<D> {
    /// Assembles an array from `devices` (name, device), by md's rules.
    pub fn assemble(
        devices: Vec<(String, D)>,
        opts: &AssembleOptions,
    ) -> Result<(Self, AssembleReport<D>)> {
        if devices.is_empty() {
            return Err(ArrayError::NoDevices.into());
        }
        let mut kicked = Vec::new();
        let mut cands: Vec<Candidate<D>> = Vec::new();
        for (name, mut dev) in devices {
            let found = match probe(&mut dev, None) {
                Ok(f) => f,
                Err(Error::Format(_)) => {
                    return Err(ArrayError::NoSuperblock { device: name }.into())
                }
                Err(e) => return Err(e),
            };
            let unit = crate::device::block_bytes(dev.logical_block_size());
            if let Err(e) = found
                .sb
                .validate(found.sector, found.dev_sectors)
                .and_then(|()| found.sb.validate_blocks(found.sector, unit))
            {
                kicked.push(Kicked {
                    name,
                    dev,
                    reason: KickReason::Invalid(e),
                });
                continue;
            }
            if let Some(first) = cands.first() {
                if first.sb.uuid() != found.sb.uuid() {
                    return Err(ArrayError::UuidMismatch { device: name }.into());
                }
            }
            if found.sb.level() != 1 {
                return Err(ArrayError::UnsupportedLevel {
                    device: name,
                    level: found.sb.level(),
                }
                .into());
            }
            cands.push(Candidate {
                name,
                dev,
                sb: found.sb,
                sector: found.sector,
                dev_sectors: found.dev_sectors,
            });
        }

        // The leader: the freshest device that holds an active role in its own superblock.
        let leader = cands
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.sb.role(), Role::Active(_)))
            // Freshest first; among equals a fully synced device before one being rebuilt.
            .max_by_key(|(i, c)| (c.sb.events(), !rebuilding(&c.sb), core::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        let Some(leader) = leader else {
            // Nothing can lead: say why the first refused device was refused, if any was.
            return Err(match kicked.first() {
                Some(k) => ArrayError::Refused {
                    device: k.name.clone(),
                    reason: k.reason.to_string(),
                },
                None => ArrayError::NoActiveMembers,
            }
            .into());
        };
        let lead_sb = cands[leader].sb.clone();
        let freshest = lead_sb.events();
        let raid_disks = lead_sb.raid_disks();
        // The superblock is untrusted: a slot count the engine cannot hold is refused before
        // anything is sized from it.
        if raid_disks == 0 || raid_disks as usize > crate::raid1::MAX_SLOTS {
            return Err(ArrayError::Refused {
                device: cands[leader].name.clone(),
                reason: alloc::format!(
                    "raid_disks {raid_disks} is outside 1..={}",
                    crate::raid1::MAX_SLOTS
                ),
            }
            .into());
        }

        // Decide each device's state from the leader's role table.
        let mut states: Vec<core::result::Result<MemberState, KickReason>> =
            Vec::with_capacity(cands.len());
        for (i, c) in cands.iter().enumerate() {
            let own = c.sb.role();
            // Freshness is judged on the device's own claim, as the kernel does: a device that
            // believes it is active but missed more than one event holds stale data.
            if matches!(own, Role::Active(_)) && c.sb.events().saturating_add(1) < freshest {
                states.push(Err(KickReason::NonFresh {
                    events: c.sb.events(),
                    freshest,
                }));
                continue;
            }
            let role = if i == leader {
                own
            } else {
                lead_sb.role_of(c.sb.dev_number()).unwrap_or(Role::Spare)
            };
            states.push(match role {
                Role::Faulty | Role::Journal => Err(KickReason::ListedFaulty),
                Role::Spare => Ok(MemberState::Spare),
                Role::Active(slot) if slot >= raid_disks => Err(KickReason::BadSlot(slot)),
                // A device md was still rebuilding (recovery_offset short of the end) holds
                // current data only below its offset: it must not serve reads. It joins as a
                // spare; its rebuild resumes below.
                Role::Active(_) if rebuilding(&c.sb) => Ok(MemberState::Spare),
                // Its own superblock still says spare (md's super_1_validate reads a device's
                // role from its own superblock): a cut fell between the leader's superblock
                // naming it active and its own; its data is not known current.
                Role::Active(_) if own == Role::Spare => Ok(MemberState::Spare),
                Role::Active(slot) => Ok(MemberState::InSync(slot)),
            });
        }
        // One device per slot: the fresher one wins (the leader always keeps its own).
        for i in 0..cands.len() {
            let Ok(MemberState::InSync(slot)) = states[i] else {
                continue;
            };
            for j in 0..cands.len() {
                if i == j || states[j] != Ok(MemberState::InSync(slot)) {
                    continue;
                }
                let i_wins =
                    i == leader || (j != leader && cands[i].sb.events() >= cands[j].sb.events());
                states[if i_wins { j } else { i }] = Err(KickReason::SlotTaken(slot));
            }
        }

        let in_sync = states
            .iter()
            .filter(|s| matches!(s, Ok(MemberState::InSync(_))))
            .count() as u32;
        let degraded = in_sync < raid_disks;
        // mdadm starts an array whose missing mirrors are being rebuilt (okcnt + rebuilding_cnt).
        let rebuilding_cnt = cands
            .iter()
            .filter(|c| matches!(c.sb.role(), Role::Active(_)) && rebuilding(&c.sb))
            .count() as u32;
        // mdadm's start rule (Assemble.c): without --run, start when enough mirrors are there
        // to run at all (RAID1: one) and the members found in sync plus those being rebuilt are
        // at least as many as the freshest superblock says were working at its last update.
        let working = working_disks(&lead_sb);
        let enough = in_sync >= 1 && in_sync + rebuilding_cnt >= working;
        if !(enough || opts.run || opts.force) {
            let mut left_out: Vec<String> = kicked
                .iter()
                .map(|k| alloc::format!("{} left out: {}", k.name, k.reason))
                .collect();
            left_out.extend(
                cands
                    .iter()
                    .zip(&states)
                    .filter_map(|(c, s)| s.as_ref().err().map(|r| (c, r)))
                    .map(|(c, r)| alloc::format!("{} left out: {r}", c.name)),
            );
            return Err(ArrayError::NotEnough {
                have: in_sync,
                need: raid_disks,
                working,
                left_out,
            }
            .into());
        }

        // Forced, still: md's raid1 does not run without an in-sync mirror ("no operational
        // mirrors"); a device being rebuilt has nothing to be rebuilt from.
        if in_sync == 0 {
            return Err(ArrayError::NoActiveMembers.into());
        }

        // md resumes the recovery of a device it was rebuilding from its recovery_offset
        // (super_1_validate): into its slot when that slot is free and a mirror can feed it.
        let mut resume: Vec<Option<(u32, u64, bool)>> = alloc::vec![None; cands.len()];
        for (i, c) in cands.iter().enumerate() {
            let (Ok(MemberState::Spare), Role::Active(slot), Some((off, bitmap_based))) = (
                &states[i],
                lead_sb.role_of(c.sb.dev_number()).unwrap_or(Role::Spare),
                super::recovery_point(&c.sb),
            ) else {
                continue;
            };
            if c.sb.role() != Role::Active(slot) {
                continue;
            }
            // A replacement (feature bit 16, md's super_1_validate) resumes next to the slot's
            // in-sync original; any other rebuild needs the slot free.
            let replacement = matches!(&c.sb, Superblock::V1(s, _)
                if s.feature_map & crate::format::sb1::FEATURE_REPLACEMENT != 0);
            let held = states.contains(&Ok(MemberState::InSync(slot)));
            let taken = (held && !replacement) || resume.iter().flatten().any(|r| r.0 == slot);
            // mutants: `slot < raid_disks` → `<=` is equivalent: a device whose slot (the
            // same table entry) is past raid_disks was kicked as BadSlot above, so it is never
            // Ok(Spare) here. Excluded in .cargo/mutants.toml.
            if slot < raid_disks && !taken {
                resume[i] = Some((slot, off, bitmap_based));
            }
        }

        let component_sectors = lead_sb.component_sectors();
        let unclean = !lead_sb.is_clean();
        let mut members = Vec::new();
        for ((c, state), resume) in cands.into_iter().zip(states).zip(resume) {
            match state {
                Ok(state) => {
                    let mut m = Member {
                        dev: c.dev,
                        name: c.name,
                        sb: c.sb,
                        sb_sector: c.sector,
                        dev_sectors: c.dev_sectors,
                        state,
                        badblocks: None,
                        rebuild: resume.map(|(slot, off, _)| (slot, off.min(component_sectors))),
                        rebuild_bitmap: resume.is_some_and(|r| r.2),
                    };
                    m.badblocks = m.load_badblocks()?;
                    members.push(m);
                }
                Err(reason) => kicked.push(Kicked {
                    name: c.name,
                    dev: c.dev,
                    reason,
                }),
            }
        }
        // The bitmap as the in-sync members hold it (each carries the same copy).
        let bitmap = match members
            .iter_mut()
            .find(|m| matches!(m.state, MemberState::InSync(_)))
        {
            Some(m) => super::intent::IntentBitmap::load(m)?,
            None => None,
        };
        let array = Array::from_parts(super::Parts {
            retired: lead_sb.clone(),
            bitmap,
            members,
            raid_disks,
            component_sectors,
            events: freshest,
            dirty: unclean,
            needs_resync: unclean,
            readonly: opts.readonly,
            resync_done: match &lead_sb {
                Superblock::V1(s, _) => s.resync_offset,
                // mutants: the guard → `true` is equivalent: resync_done is read only while a
                // resync is owed (needs_resync, here `unclean`), and what makes one owed later
                // (a grow) sets it first. Excluded in .cargo/mutants.toml.
                Superblock::V0(_) if unclean => 0,
                Superblock::V0(_) => u64::MAX,
            },
            wall_secs: lead_sb_utime(&lead_sb),
        })?;
        Ok((
            array,
            AssembleReport {
                kicked,
                degraded,
                unclean,
            },
        ))
    }
}

/// How many members the superblock records as working, as mdadm counts them (its req_cnt):
/// 1.x (getinfo_super1) counts role-table entries that hold a slot below raid_disks; 0.90
/// (mdadm 4.2's getinfo_super0 recomputes it rather than reading the working_disks word)
/// counts disk records that are active, in sync, not faulty and in a slot below raid_disks.
fn working_disks(sb: &Superblock) -> u32 {
    match sb {
        Superblock::V1(s, _) => s
            .dev_roles
            .iter()
            .take(s.max_dev as usize)
            .filter(|&&r| u32::from(r) < s.raid_disks)
            .count() as u32,
        Superblock::V0(s) => {
            // mutants: `|` → `^` is equivalent (bits 1 and 2 are disjoint); excluded.
            let want = crate::format::sb0::DISK_ACTIVE | crate::format::sb0::DISK_SYNC;
            s.disks
                .iter()
                .filter(|d| {
                    d.state & want == want
                        && d.state & crate::format::sb0::DISK_FAULTY == 0
                        && d.raid_disk < s.raid_disks
                })
                .count() as u32
        }
    }
}

/// Whether a 1.x device was still being rebuilt: recovery_offset valid and short of the end.
fn rebuilding(sb: &Superblock) -> bool {
    match sb {
        Superblock::V1(s, _) => {
            s.feature_map & crate::format::sb1::FEATURE_RECOVERY_OFFSET != 0
                && s.recovery_offset < s.size
        }
        // 0.90 marks a device being rebuilt by an active role without the sync bit, which
        // Role::from_sb0 already reads as not active.
        Superblock::V0(_) => false,
    }
}

/// The leader's last update time in seconds: the clock metadata written by reads starts from.
fn lead_sb_utime(sb: &Superblock) -> u64 {
    match sb {
        Superblock::V1(s, _) => crate::format::sb1::Superblock1::time_secs(s.utime),
        Superblock::V0(s) => u64::from(s.utime),
    }
}
