//! What sync actions and membership changes report.

use crate::raid1::SyncAction;

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
