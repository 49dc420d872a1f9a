//! Arrays of member devices: create, assemble, plain I/O, stop.
//!
//! An [`Array`] owns its member devices and their superblocks. Assembly follows md's rules
//! (DESIGN.md §3 "Assembly"); creation follows mdadm's layout rules ([`crate::format::geometry`]).
//! Until the RAID1 engine drives I/O, reads go to the first in-sync member and writes to every
//! in-sync member, with md's metadata ordering: superblocks marked dirty before the first write,
//! clean again at stop.

mod assemble;
mod create;
mod detail;
mod intent;
mod io;
pub mod machine;
mod member;
mod sb0_sync;
mod sync;

pub use crate::raid1::SyncAction as SyncKind;
pub use assemble::{AssembleOptions, AssembleReport, KickReason, Kicked};
pub use create::{CreateOptions, CreateSlot};
pub use intent::IntentBitmap;
pub use member::{recovery_point, Member, MemberState};
pub use sync::{AddOptions, AddOutcome, SyncReport};

use crate::device::BlockDevice;
use crate::format::probe::Superblock;
use crate::format::MetadataVersion;
use crate::{Error, Result};
use alloc::string::String;
use alloc::vec::Vec;

/// An array operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArrayError {
    /// Invalid parameters.
    #[error("{0}")]
    Invalid(String),
    /// No devices were given.
    #[error("no devices given")]
    NoDevices,
    /// A device carries no md superblock.
    #[error("{device}: no md superblock found")]
    NoSuperblock {
        /// The device.
        device: String,
    },
    /// A device belongs to another array.
    #[error("{device}: superblock does not match the other members (array UUID differs) - assembly aborted")]
    UuidMismatch {
        /// The device.
        device: String,
    },
    /// Only RAID1 is supported.
    #[error("{device}: raid level {level} is not supported (only raid1)")]
    UnsupportedLevel {
        /// The device.
        device: String,
        /// The level found.
        level: i32,
    },
    /// A device's superblock failed the kernel's checks, and no other member could lead.
    #[error("{device}: {reason}")]
    Refused {
        /// The device.
        device: String,
        /// Why.
        reason: String,
    },
    /// Assembly found no in-sync member.
    #[error("no in-sync member among the devices given - assembly aborted")]
    NoActiveMembers,
    /// Degraded start without --run/--force: fewer members found than the freshest
    /// superblock says were working. The devices left out follow, one line each.
    #[error("assembled from {have} drive{s} (out of {need}){req}, but not started: use --run to start it degraded{left}",
        s = if *have == 1 { "" } else { "s" },
        req = if working == need { String::new() } else { alloc::format!(", need {working} to start") },
        left = left_out.iter().map(|l| alloc::format!("\n{l}")).collect::<String>())]
    NotEnough {
        /// In-sync members found.
        have: u32,
        /// Slots in the array.
        need: u32,
        /// Members the freshest superblock records as working (mdadm's req_cnt).
        working: u32,
        /// "name left out: reason" for each device assembly left out.
        left_out: Vec<String>,
    },
    /// An offset or length outside the array.
    #[error("{op} of {len} bytes at {offset} is beyond the array's {size} bytes")]
    OutOfRange {
        /// "read" or "write".
        op: &'static str,
        /// Byte offset.
        offset: u64,
        /// Length.
        len: u64,
        /// Array size.
        size: u64,
    },
    /// The array is read-only.
    #[error("array is read-only")]
    ReadOnly,
    /// An array request failed on every mirror that could serve it.
    #[error("array I/O error: {0}")]
    Io(String),
    /// Every member failed.
    #[error("no working member left")]
    NoWorkingMember,
}

/// A running RAID1 array.
#[derive(Debug)]
pub struct Array<D> {
    members: Vec<Member<D>>,
    raid_disks: u32,
    /// Sectors of each member used by the array.
    component_sectors: u64,
    events: u64,
    dirty: bool,
    /// The superblocks said unclean at assembly (or creation without assume-clean): mirrors
    /// may differ until a resync.
    needs_resync: bool,
    readonly: bool,
    /// The write-intent bitmap, when the array has one.
    bitmap: Option<IntentBitmap>,
    /// The RAID1 engine, built at the first I/O.
    engine: Option<crate::raid1::Raid1>,
    /// The engine's clock (ns), fed from the `now` of the calls.
    clock_ns: u64,
    /// The last `now` (seconds) a caller gave, for metadata written by reads and flushes.
    last_now: u64,
    /// Which member each engine position holds.
    emap: Vec<Option<usize>>,
    /// While a resync is owed: sectors below this are known in sync (md's resync checkpoint).
    resync_done: u64,
    /// The outcome of the last sync action.
    last_sync: Option<SyncReport>,
    /// Sync speed limits in KiB/s (min, max), md's defaults unless set.
    speed_limits: (u64, u64),
    /// Spares rebuilt into slots while the array ran: (member name, slot).
    rebuilt: Vec<(String, u32)>,
    /// A superblock speaking for the array when no member can (every member removed): the
    /// array's identity (version, UUID, geometry) outlives its devices, as an md array does.
    /// Set at creation/assembly, refreshed when the last member is removed.
    retired: Superblock,
}

impl<D: BlockDevice> Array<D> {
    /// Members, in the order given to create/assemble.
    pub fn members(&self) -> &[Member<D>] {
        &self.members
    }
    /// Number of mirrors (slots).
    pub fn raid_disks(&self) -> u32 {
        self.raid_disks
    }
    /// Array size in bytes.
    pub fn size(&self) -> u64 {
        self.component_sectors * crate::SECTOR_SIZE
    }
    /// Sectors used on each member.
    pub fn component_sectors(&self) -> u64 {
        self.component_sectors
    }
    /// Current event count.
    pub fn events(&self) -> u64 {
        self.events
    }
    /// Whether superblocks are marked dirty (writes since the last clean point).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
    /// Metadata version.
    pub fn version(&self) -> MetadataVersion {
        self.lead_superblock().version()
    }
    /// Whether the mirrors may differ (unclean shutdown or a new array) until a resync.
    pub fn needs_resync(&self) -> bool {
        self.needs_resync
    }
    /// The write-intent bitmap in use, if any.
    pub fn bitmap(&self) -> Option<&IntentBitmap> {
        self.bitmap.as_ref()
    }
    /// Whether every slot has an in-sync member.
    pub fn is_degraded(&self) -> bool {
        self.in_sync_count() < self.raid_disks
    }
    /// Number of in-sync members.
    pub fn in_sync_count(&self) -> u32 {
        self.members
            .iter()
            .filter(|m| matches!(m.state, MemberState::InSync(_)))
            .count() as u32
    }

    fn check_range(&self, op: &'static str, offset: u64, len: usize) -> Result<()> {
        let size = self.size();
        match offset.checked_add(len as u64) {
            Some(end) if end <= size => Ok(()),
            _ => Err(ArrayError::OutOfRange {
                op,
                offset,
                len: len as u64,
                size,
            }
            .into()),
        }
    }

    /// Rewrites every working member's superblock with the current state (events+1).
    pub(crate) fn write_superblocks(&mut self, now: u64) -> Result<()> {
        // md's md_update_sb: a member that fails while its superblock is written must be
        // recorded as faulty in the survivors' superblocks too, so the round repeats (with a new
        // event count) until one completes without a new failure.
        loop {
            let failed_before = self.faulty_count();
            self.write_superblocks_once(now)?;
            if let Some(bm) = self.bitmap.as_mut() {
                bm.write_all(&mut self.members, self.events)?;
            }
            if self.faulty_count() == failed_before {
                return Ok(());
            }
        }
    }

    pub(crate) fn faulty_count(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.state == MemberState::Faulty)
            .count()
    }

    fn write_superblocks_once(&mut self, now: u64) -> Result<()> {
        self.events += 1;
        let st = machine::superblocks::SbState {
            events: self.events,
            dirty: self.dirty,
            resync_cp: machine::superblocks::resync_checkpoint(
                self.dirty,
                self.needs_resync,
                self.resync_done,
                self.component_sectors,
            ),
            now,
        };
        machine::superblocks::lay_superblocks(&mut self.members, self.raid_disks, &st);
        let mut working = 0;
        let mut last_err = None;
        for m in self.members.iter_mut().filter(|m| m.state.is_working()) {
            let bytes = m.sb.to_bytes();
            let r = m
                .dev
                .write_at(m.sb_sector * crate::SECTOR_SIZE, &bytes)
                .and_then(|_| m.dev.flush());
            match r {
                Ok(()) => working += 1,
                Err(e) => {
                    m.state = MemberState::Faulty;
                    last_err = Some(e);
                }
            }
        }
        if working == 0 {
            return Err(last_err
                .map(Error::from)
                .unwrap_or_else(|| ArrayError::NoWorkingMember.into()));
        }
        Ok(())
    }

    /// Hands the members back without writing anything, as a crash or power cut leaves them
    /// (for tests of crash consistency; a normal shutdown is [`Self::stop`]).
    pub fn abandon(self) -> Vec<Member<D>> {
        self.members
    }

    /// Stops the array: superblocks are written clean and flushed; the devices are handed back.
    pub fn stop(mut self, now: u64) -> Result<Vec<Member<D>>> {
        if self.readonly {
            return Ok(self.members);
        }
        if self.engine.is_some() {
            self.flush()?;
        }
        // Clean, complete and owing nothing: the bits have done their job. md clears them
        // lazily; at stop nothing can race with the clearing, and the superblocks are written
        // clean before the cleared bitmap, so a cut in between leaves set bits on a clean array,
        // which md ignores.
        let complete = self.in_sync_count() == self.raid_disks && !self.needs_resync;
        let clear_bits = complete && self.bitmap.as_ref().is_some_and(|b| b.dirty_chunks() > 0);
        if self.dirty || clear_bits {
            self.dirty = false;
            if clear_bits {
                if let Some(bm) = self.bitmap.as_mut() {
                    // events_cleared follows the new event count (write_all caps it).
                    bm.clear_all(u64::MAX);
                }
            }
            self.write_superblocks(now)?;
        }
        Ok(self.members)
    }
}
