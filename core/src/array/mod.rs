//! Arrays of member devices: create, assemble, run, stop.
//!
//! The array itself is the sans-IO [`Machine`] (the RAID1 engine plus md's metadata policy).
//! [`Array`] is its blocking driver over [`BlockDevice`]s: it owns the member devices, carries
//! out every I/O the machine hands out (data and metadata alike) synchronously, and takes its
//! time from a [`Clock`]. Assembly follows md's rules (DESIGN.md §3 "Assembly"); creation
//! follows mdadm's layout rules ([`crate::format::geometry`]).

mod assemble;
mod blocking;
mod clock;
mod create;
mod detail;
mod intent;
pub mod machine;
mod member;
mod sb0_sync;
pub mod scan;
pub mod setup;
mod sync;
pub mod update;

pub use crate::raid1::SyncAction;
pub use assemble::{AssembleOptions, AssembleReport, KickReason, Kicked};
#[cfg(feature = "std")]
pub use clock::SystemClock;
pub use clock::{Clock, VirtualClock};
pub use create::{CreateOptions, CreateSlot};
pub use intent::IntentBitmap;
pub use machine::{Machine, Now};
pub use member::{recovery_point, Member, MemberState};
pub use sync::{AddOptions, AddOutcome, Progress, SyncReport, SyncStop};

use crate::device::BlockDevice;
use crate::format::probe::Superblock;
use crate::format::MetadataVersion;
use crate::Result;
use alloc::boxed::Box;
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
    Io(#[from] crate::raid1::ArrayIoError),
    /// The machine refused a request (its pool is full: `Busy`; or a malformed request).
    #[error("request refused: {0}")]
    Submit(#[from] crate::raid1::SubmitError),
    /// Every member failed.
    #[error("no working member left")]
    NoWorkingMember,
}

/// An array as create or assemble leave it, before its machine is built.
pub(crate) struct Parts<D> {
    pub members: Vec<Member<D>>,
    pub raid_disks: u32,
    /// Sectors of each member used by the array.
    pub component_sectors: u64,
    pub events: u64,
    pub dirty: bool,
    /// The superblocks said unclean (or a new array without assume-clean): mirrors may differ
    /// until a resync.
    pub needs_resync: bool,
    pub readonly: bool,
    pub bitmap: Option<IntentBitmap>,
    /// While a resync is owed: sectors below this are known in sync (md's checkpoint).
    pub resync_done: u64,
    /// Wall-clock seconds the array's virtual clock starts at.
    pub wall_secs: u64,
    /// The superblock speaking for the array when no member can.
    pub retired: Superblock,
}

/// A running RAID1 array: the [`Machine`] driven synchronously over its member devices.
pub struct Array<D> {
    machine: Machine,
    /// The member devices, indexed as the machine's members.
    devs: Vec<D>,
    clock: Box<dyn Clock>,
    /// Spares rebuilt into slots while the array ran: (member name, slot).
    rebuilt: Vec<(String, u32)>,
    /// A superblock speaking for the array when no member can (every member removed): the
    /// array's identity (version, UUID, geometry) outlives its devices, as an md array does.
    retired: Superblock,
}

impl<D> core::fmt::Debug for Array<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Array")
            .field("machine", &self.machine)
            .field("devices", &self.devs.len())
            .finish_non_exhaustive()
    }
}

impl<D: BlockDevice> Array<D> {
    /// Builds the machine for an array create or assemble made.
    pub(crate) fn from_parts(p: Parts<D>) -> Result<Self> {
        let clock = VirtualClock::new(p.wall_secs);
        let now = clock.read();
        let mut devs = Vec::with_capacity(p.members.len());
        let members = p
            .members
            .into_iter()
            .map(|m| {
                let (d, m) = m.detach();
                devs.push(d);
                m
            })
            .collect();
        let state = machine::State {
            members,
            raid_disks: p.raid_disks,
            component_sectors: p.component_sectors,
            events: p.events,
            dirty: p.dirty,
            needs_resync: p.needs_resync,
            readonly: p.readonly,
            bitmap: p.bitmap,
            resync_done: p.resync_done,
        };
        let machine = Machine::new(state, now)
            .map_err(|e| ArrayError::Invalid(alloc::format!("engine: {e}")))?;
        Ok(Array {
            machine,
            devs,
            clock: Box::new(clock),
            rebuilt: Vec::new(),
            retired: p.retired,
        })
    }

    /// Replaces the array's clock (the default is a [`VirtualClock`] starting at the
    /// superblocks' time). A long-lived array on a [`SystemClock`] goes clean ~200 ms after
    /// its last write once [`Self::tick`] is called.
    pub fn set_clock(&mut self, clock: Box<dyn Clock>) {
        self.clock = clock;
        let now = self.clock.now();
        self.machine.handle_timeout(now);
    }

    /// The array's state machine (getters: counters, sync status, bitmap).
    pub fn machine(&self) -> &Machine {
        &self.machine
    }
    /// Members' metadata, in the order given to create/assemble (then added ones).
    pub fn members(&self) -> &[Member<machine::Detached>] {
        self.machine.members()
    }
    /// The member devices, indexed as [`Self::members`].
    pub fn devices(&self) -> &[D] {
        &self.devs
    }
    /// Number of mirrors (slots).
    pub fn raid_disks(&self) -> u32 {
        self.machine.raid_disks()
    }
    /// Array size in bytes.
    pub fn size(&self) -> u64 {
        self.machine.component_sectors() * crate::SECTOR_SIZE
    }
    /// Sectors used on each member.
    pub fn component_sectors(&self) -> u64 {
        self.machine.component_sectors()
    }
    /// Current event count.
    pub fn events(&self) -> u64 {
        self.machine.events()
    }
    /// Whether superblocks are marked dirty (writes since the last clean point).
    pub fn is_dirty(&self) -> bool {
        self.machine.is_dirty()
    }
    /// Metadata version.
    pub fn version(&self) -> MetadataVersion {
        self.lead_superblock().version()
    }
    /// Whether the mirrors may differ (unclean shutdown or a new array) until a resync.
    pub fn needs_resync(&self) -> bool {
        self.machine.needs_resync()
    }
    /// The write-intent bitmap in use, if any.
    pub fn bitmap(&self) -> Option<&IntentBitmap> {
        self.machine.bitmap()
    }
    /// Whether every slot has an in-sync member.
    pub fn is_degraded(&self) -> bool {
        self.in_sync_count() < self.raid_disks()
    }
    /// Number of in-sync members.
    pub fn in_sync_count(&self) -> u32 {
        self.members()
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

    /// Splits the array into its state machine and its devices (indexed as the machine's
    /// members), for a driver that keeps many requests in flight. Nothing is written. `now`
    /// should come from the clock the array ran on (the machine's clock never goes back:
    /// [`SystemClock::read`] when the array ran on a [`SystemClock`]).
    pub fn into_machine(mut self, now: Now) -> Result<(Machine, Vec<D>)> {
        self.machine.handle_timeout(now);
        Ok((self.machine, self.devs))
    }

    /// The blocking facade over a machine a driver ran (the inverse of
    /// [`Self::into_machine`]): `devs` indexed as its members. Refused while the machine has
    /// work in flight or has stopped. The array's clock starts at the machine's last time (a
    /// [`VirtualClock`]; [`Self::set_clock`] to change it).
    pub fn from_machine(machine: Machine, devs: Vec<D>) -> Result<Self> {
        if devs.len() != machine.members().len() {
            return Err(ArrayError::Invalid(alloc::format!(
                "{} devices for {} members",
                devs.len(),
                machine.members().len()
            ))
            .into());
        }
        if machine.is_busy() || machine.is_stopped() {
            return Err(ArrayError::Invalid("the machine is busy or stopped".into()).into());
        }
        let retired = machine
            .lead_superblock()
            .cloned()
            .ok_or(ArrayError::NoDevices)?;
        let clock = VirtualClock::at(machine.now());
        Ok(Array {
            machine,
            devs,
            clock: Box::new(clock),
            rebuilt: Vec::new(),
            retired,
        })
    }

    /// Hands the members back without writing anything, as a crash or power cut leaves them
    /// (for tests of crash consistency; a normal shutdown is [`Self::stop`]).
    pub fn abandon(self) -> Vec<Member<D>> {
        let (members, _) = self.machine.into_members();
        members
            .into_iter()
            .zip(self.devs)
            .map(|(m, d)| m.attach(d))
            .collect()
    }
}
