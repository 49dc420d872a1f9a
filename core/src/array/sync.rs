//! What sync actions and membership changes report.

use crate::raid1::SyncAction;
use core::sync::atomic::{AtomicU8, Ordering};

/// How a sync action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// The action.
    pub action: SyncAction,
    /// Mismatched sectors found (md `mismatch_cnt`; check and repair).
    pub mismatch_cnt: u64,
    /// Sectors written to members by the action.
    pub sectors_copied: u64,
    /// The member sectors below which the action is done: all of them
    /// ([`Array::component_sectors`](super::Array::component_sectors)) when it ran to its end
    /// (a resumed resync included), its last checkpoint when `interrupted`.
    pub sectors_done: u64,
    /// It stopped before the end (a member failed, or it was stopped: md's `idle`/`frozen`).
    pub interrupted: bool,
}

/// Options for [`Array::add_member`](super::Array::add_member).
#[derive(Clone, Copy, Debug, Default)]
pub struct AddOptions {
    /// The new member is write-mostly.
    pub write_mostly: bool,
    /// The new member is failfast.
    pub failfast: bool,
    /// Only a re-add is acceptable (mdadm --re-add).
    pub re_add_only: bool,
    /// Device UUID for a new member (random from the caller, as mdadm's); derived from the
    /// array's and the device number when absent (the no_std core has no entropy of its own).
    /// A re-added device keeps its own.
    pub device_uuid: Option<[u8; 16]>,
}

/// What [`Array::add_member`](super::Array::add_member) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// The device is a spare (every slot was filled).
    Spare,
    /// The device was rebuilt into an empty slot.
    Rebuilt(SyncReport),
    /// The device came back to its old slot; only what changed meanwhile was copied.
    ReAdded(SyncReport),
}

/// Progress callback: (sectors done, sectors in total).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// A stop asked for from another thread while [`Array::run_sync_stoppable`](super::Array::run_sync_stoppable)
/// runs: md's `sync_action` `idle` or `frozen` written while an action runs. The last
/// request before the driver looks wins; the driver takes it within one member I/O.
#[derive(Debug, Default)]
pub struct SyncStop(AtomicU8);

const STOP_NONE: u8 = 0;
const STOP_IDLE: u8 = 1;
const STOP_FROZEN: u8 = 2;

impl SyncStop {
    /// No stop asked for.
    pub const fn new() -> Self {
        SyncStop(AtomicU8::new(STOP_NONE))
    }

    /// Asks for md's `idle` (`freeze` false: the action stops, then md's recovery check
    /// restarts a recovery or an owed resync from its checkpoint; a check or repair stays
    /// stopped) or `frozen` (`freeze` true: it stops and nothing starts on its own).
    pub fn request(&self, freeze: bool) {
        let v = if freeze { STOP_FROZEN } else { STOP_IDLE };
        self.0.store(v, Ordering::Release);
    }

    /// The request not yet taken: `Some(freeze)`.
    pub(crate) fn take(&self) -> Option<bool> {
        // (A plain load first: the driver asks after every member I/O.)
        if self.0.load(Ordering::Relaxed) == STOP_NONE {
            return None;
        }
        match self.0.swap(STOP_NONE, Ordering::Acquire) {
            STOP_IDLE => Some(false),
            STOP_FROZEN => Some(true),
            _ => None,
        }
    }
}
