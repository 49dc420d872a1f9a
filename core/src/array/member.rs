//! One member of an array: its device, superblock and state.

use crate::device::BlockDevice;
use crate::format::probe::Superblock;
use alloc::string::String;

/// What a member does in the running array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// A mirror holding current data, in this slot.
    InSync(u32),
    /// A spare: no slot, data not current.
    Spare,
    /// Failed: no longer written.
    Faulty,
}

impl MemberState {
    /// Whether the member still receives metadata writes.
    pub fn is_working(self) -> bool {
        !matches!(self, MemberState::Faulty)
    }
}

/// A member device with its superblock.
#[derive(Debug)]
pub struct Member<D> {
    /// The device.
    pub dev: D,
    /// A name for messages and reports (the path given by the user).
    pub name: String,
    /// Its superblock as last read or written.
    pub sb: Superblock,
    /// Sector holding the superblock.
    pub sb_sector: u64,
    /// Device size in sectors.
    pub dev_sectors: u64,
    /// State in the array.
    pub state: MemberState,
}

impl<D: BlockDevice> Member<D> {
    /// Byte offset on the device of array byte `offset`.
    pub fn data_byte(&self, offset: u64) -> u64 {
        self.sb.data_offset() * crate::SECTOR_SIZE + offset
    }
}
