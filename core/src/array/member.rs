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

/// What metadata code needs from a member's device: its (major, minor), which 0.90 disk
/// records carry. Lets the same metadata code run over real devices and over the
/// [`crate::array::machine::Machine`]'s device-less members.
pub(crate) trait DeviceId {
    fn device_number(&self) -> Option<(u32, u32)>;
    /// Logical block size in bytes: every metadata write to the device is a whole number of
    /// these (md rounds superblock and bitmap writes up to it).
    fn logical_block_size(&self) -> u32;
}

impl<D: BlockDevice> DeviceId for D {
    fn device_number(&self) -> Option<(u32, u32)> {
        BlockDevice::device_number(self)
    }
    fn logical_block_size(&self) -> u32 {
        BlockDevice::logical_block_size(self)
    }
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
    /// Its bad-block log as loaded (1.x members whose log has entries).
    pub badblocks: Option<crate::format::badblocks::BadBlockLog>,
    /// While a spare is being rebuilt into a slot: (slot, sectors rebuilt), persisted as md does
    /// (role = slot, recovery_offset with feature bit 2) so md resumes a rebuild we began.
    pub rebuild: Option<(u32, u64)>,
    /// The rebuild is md's bitmap-based one (a re-add, feature bit 128): at and above the
    /// offset only bitmap-dirty chunks are copied. Without it, everything from the offset is.
    pub rebuild_bitmap: bool,
}

/// Where a 1.x device's recovery stopped, when short of the end: (recovery_offset, whether
/// it is bitmap-based). md (super_1_validate) never takes such a device as in sync; without
/// feature bit 128 it copies everything from the offset (saved_raid_disk = -1).
pub fn recovery_point(sb: &Superblock) -> Option<(u64, bool)> {
    use crate::format::sb1::{FEATURE_RECOVERY_BITMAP, FEATURE_RECOVERY_OFFSET};
    match sb {
        Superblock::V1(s, _)
            if s.feature_map & FEATURE_RECOVERY_OFFSET != 0 && s.recovery_offset < s.size =>
        {
            Some((
                s.recovery_offset,
                s.feature_map & FEATURE_RECOVERY_BITMAP != 0,
            ))
        }
        // 0.90 has no recovery offset: a device being rebuilt is a record without the sync
        // bit, which reads as a spare (rebuilt from the start, as md does).
        _ => None,
    }
}

impl<D: BlockDevice> Member<D> {
    /// Reads the bad-block log of a 1.x member whose superblock says it holds entries.
    pub(crate) fn load_badblocks(
        &mut self,
    ) -> crate::Result<Option<crate::format::badblocks::BadBlockLog>> {
        use crate::format::badblocks::{log_location, BadBlockLog};
        let Superblock::V1(s, _) = &self.sb else {
            return Ok(None);
        };
        if s.feature_map & crate::format::sb1::FEATURE_BAD_BLOCKS == 0 {
            return Ok(None);
        }
        let Some((off, len)) = log_location(s) else {
            return Ok(None);
        };
        let mut raw = alloc::vec![0u8; len];
        self.dev.read_at(off, &mut raw)?;
        Ok(Some(
            BadBlockLog::parse_for(s, &raw).map_err(crate::format::FormatError::from)?,
        ))
    }
}

impl<X> Member<X> {
    /// Splits the member into its device and its device-less metadata (the machine's side).
    pub(crate) fn detach(self) -> (X, Member<super::machine::Detached>)
    where
        X: DeviceId,
    {
        let detached = super::machine::Detached {
            device_number: self.dev.device_number(),
            block_size: self.dev.logical_block_size(),
        };
        let Member {
            dev,
            name,
            sb,
            sb_sector,
            dev_sectors,
            state,
            badblocks,
            rebuild,
            rebuild_bitmap,
        } = self;
        (
            dev,
            Member {
                dev: detached,
                name,
                sb,
                sb_sector,
                dev_sectors,
                state,
                badblocks,
                rebuild,
                rebuild_bitmap,
            },
        )
    }

    /// The member with `dev` as its device (the metadata stays).
    pub(crate) fn attach<Y>(self, dev: Y) -> Member<Y> {
        Member {
            dev,
            name: self.name,
            sb: self.sb,
            sb_sector: self.sb_sector,
            dev_sectors: self.dev_sectors,
            state: self.state,
            badblocks: self.badblocks,
            rebuild: self.rebuild,
            rebuild_bitmap: self.rebuild_bitmap,
        }
    }

    /// Adds `sector..sector + sectors` (data-area sectors) to this 1.x member's bad-block log
    /// and encodes the log into `raw` (resized to the log area). Returns the log's byte offset
    /// on the device; `None` when the member keeps no log (0.90, or no log area).
    pub(crate) fn add_bad_blocks(
        &mut self,
        sector: u64,
        sectors: u64,
        raw: &mut alloc::vec::Vec<u8>,
    ) -> crate::Result<Option<u64>> {
        use crate::format::badblocks::{capacity, log_location, BadBlockLog};
        use crate::format::FormatError;
        let Superblock::V1(s, _) = &self.sb else {
            return Ok(None);
        };
        let Some((off, len)) = log_location(s) else {
            return Ok(None);
        };
        let log = self.badblocks.get_or_insert_with(|| BadBlockLog {
            shift: s.bblog_shift,
            entries: alloc::vec::Vec::new(),
        });
        log.add(s.data_offset + sector, sectors, capacity(s.bblog_size))
            .map_err(FormatError::from)?;
        raw.resize(len, 0);
        log.encode_into(raw).map_err(FormatError::from)?;
        Ok(Some(off))
    }

    /// Sets a 1.x member's "bad blocks present" feature bit (8) from its own log, as md's
    /// super_1_sync does on every superblock write: the bit describes this member's log only.
    pub(crate) fn sync_badblocks_feature(&mut self) {
        if let Superblock::V1(s, _) = &mut self.sb {
            // Zero-length words (a log area never written holds zeros) add no range in md.
            let entries = self
                .badblocks
                .as_ref()
                .is_some_and(|l| l.entries.iter().any(|e| e.len_sectors > 0));
            if entries {
                s.feature_map |= crate::format::sb1::FEATURE_BAD_BLOCKS;
            } else {
                s.feature_map &= !crate::format::sb1::FEATURE_BAD_BLOCKS;
            }
        }
    }

    /// Byte offset on the device of array byte `offset`.
    pub fn data_byte(&self, offset: u64) -> u64 {
        self.sb.data_offset() * crate::SECTOR_SIZE + offset
    }
}
