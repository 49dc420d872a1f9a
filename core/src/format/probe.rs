//! Finding a superblock on a device, and a version-independent view of it.
//!
//! mdadm tries every location (1.1 at sector 0, 1.2 at sector 8, 1.0 near the end, 0.90 near the
//! end) and, when several hold a superblock, keeps the one with the newest creation time. Loading
//! checks only what locates the superblock (magic, version, super_offset); the checksum is reported,
//! not enforced, so that `examine` can show a damaged superblock. Assembly applies the kernel's full
//! checks through [`Superblock::validate`].

use super::sb0::{self, Superblock0};
use super::sb1::{self, Superblock1};
use super::{FormatError, MetadataVersion};
use crate::device::BlockDevice;
use crate::Error;

/// No usable superblock on the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// No md superblock at any location.
    #[error("no md superblock detected")]
    NoSuperblock,
    /// The device is too small to hold any md superblock.
    #[error("device of {0} sectors is too small for md metadata")]
    TooSmall(u64),
}

/// A member's role as its superblock records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Active in this slot (0-based).
    Active(u32),
    /// A spare (or a device being rebuilt that has no slot yet).
    Spare,
    /// Marked faulty.
    Faulty,
    /// A journal device (not used by RAID1).
    Journal,
}

impl Role {
    /// Decodes a 1.x `dev_roles` entry.
    pub fn from_sb1(r: u16) -> Self {
        match r {
            sb1::ROLE_SPARE => Role::Spare,
            sb1::ROLE_FAULTY => Role::Faulty,
            sb1::ROLE_JOURNAL => Role::Journal,
            r if r < sb1::ROLE_MAX_ACTIVE => Role::Active(u32::from(r)),
            // Unknown values between 0xff00 and 0xfffc: md treats them as not active.
            _ => Role::Spare,
        }
    }
    /// Encodes as a 1.x `dev_roles` entry.
    pub fn to_sb1(self) -> u16 {
        match self {
            Role::Active(s) => s.min(u32::from(sb1::ROLE_MAX_ACTIVE - 1)) as u16,
            Role::Spare => sb1::ROLE_SPARE,
            Role::Faulty => sb1::ROLE_FAULTY,
            Role::Journal => sb1::ROLE_JOURNAL,
        }
    }
    /// Decodes a 0.90 disk record.
    pub fn from_sb0(d: &sb0::Disk0) -> Self {
        if d.state & sb0::DISK_FAULTY != 0 {
            Role::Faulty
        } else if d.state & sb0::DISK_ACTIVE != 0 && d.state & sb0::DISK_SYNC != 0 {
            Role::Active(d.raid_disk)
        } else {
            Role::Spare
        }
    }
}

/// Either kind of superblock, with the accessors assembly and reporting need.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Superblock {
    /// 1.0, 1.1 or 1.2.
    V1(Superblock1, MetadataVersion),
    /// 0.90.
    V0(Superblock0),
}

impl Superblock {
    /// Metadata version.
    pub fn version(&self) -> MetadataVersion {
        match self {
            Superblock::V1(_, v) => *v,
            Superblock::V0(_) => MetadataVersion::V0_90,
        }
    }
    /// Array UUID as 16 bytes in mdadm's print order.
    pub fn uuid(&self) -> [u8; 16] {
        match self {
            Superblock::V1(s, _) => s.set_uuid,
            Superblock::V0(s) => s.uuid_bytes(),
        }
    }
    /// The UUID a write-intent bitmap of this array must carry, as stored in its header
    /// (1.x: set_uuid as stored; 0.90: [`Superblock0::bitmap_uuid`]).
    pub fn bitmap_uuid(&self) -> [u8; 16] {
        match self {
            Superblock::V1(s, _) => s.set_uuid,
            Superblock::V0(s) => s.bitmap_uuid(),
        }
    }
    /// Event counter.
    pub fn events(&self) -> u64 {
        match self {
            Superblock::V1(s, _) => s.events,
            Superblock::V0(s) => s.events,
        }
    }
    /// Sets the event counter.
    pub fn set_events(&mut self, ev: u64) {
        match self {
            Superblock::V1(s, _) => s.events = ev,
            Superblock::V0(s) => s.events = ev,
        }
    }
    /// RAID level.
    pub fn level(&self) -> i32 {
        match self {
            Superblock::V1(s, _) => s.level,
            Superblock::V0(s) => s.level,
        }
    }
    /// Number of active slots.
    pub fn raid_disks(&self) -> u32 {
        match self {
            Superblock::V1(s, _) => s.raid_disks,
            Superblock::V0(s) => s.raid_disks,
        }
    }
    /// This device's role.
    pub fn role(&self) -> Role {
        match self {
            Superblock::V1(s, _) => s.role().map(Role::from_sb1).unwrap_or(Role::Spare),
            Superblock::V0(s) => Role::from_sb0(&s.this_disk),
        }
    }
    /// The role this superblock records for another device, by that device's identity
    /// (1.x dev_number, 0.90 disk record number).
    pub fn role_of(&self, dev_number: u32) -> Option<Role> {
        match self {
            Superblock::V1(s, _) => s
                .dev_roles
                .get(dev_number as usize)
                .map(|&r| Role::from_sb1(r)),
            Superblock::V0(s) => s.disks.get(dev_number as usize).map(Role::from_sb0),
        }
    }
    /// This device's identity within the array (1.x dev_number, 0.90 this_disk.number).
    pub fn dev_number(&self) -> u32 {
        match self {
            Superblock::V1(s, _) => s.dev_number,
            Superblock::V0(s) => s.this_disk.number,
        }
    }
    /// First data sector on the member.
    pub fn data_offset(&self) -> u64 {
        match self {
            Superblock::V1(s, _) => s.data_offset,
            Superblock::V0(_) => 0,
        }
    }
    /// Sectors of each member used by the array.
    pub fn component_sectors(&self) -> u64 {
        match self {
            Superblock::V1(s, _) => s.size,
            Superblock::V0(s) => u64::from(s.size) * 2,
        }
    }
    /// Whether the array was stopped cleanly with identical mirrors (no resync owed).
    ///
    /// 1.x: resync_offset is all ones. 0.90: the clean bit is set and the recovery checkpoint
    /// is all ones (the kernel reads the checkpoint only from a clean superblock).
    pub fn is_clean(&self) -> bool {
        match self {
            Superblock::V1(s, _) => s.is_clean(),
            Superblock::V0(s) => s.is_clean() && s.recovery_cp == u32::MAX,
        }
    }
    /// Creation time in seconds.
    pub fn ctime_secs(&self) -> u64 {
        match self {
            Superblock::V1(s, _) => Superblock1::time_secs(s.ctime),
            Superblock::V0(s) => u64::from(s.ctime),
        }
    }
    /// Whether the stored checksum is right.
    pub fn checksum_ok(&self) -> bool {
        match self {
            Superblock::V1(s, _) => s.checksum_ok(),
            Superblock::V0(s) => s.checksum_ok(),
        }
    }
    /// Recomputes the checksum.
    pub fn update_checksum(&mut self) {
        match self {
            Superblock::V1(s, _) => s.update_checksum(),
            Superblock::V0(s) => s.update_checksum(),
        }
    }
    /// The kernel's load checks for a device of `dev_sectors`, found at `sector`.
    pub fn validate(&self, sector: u64, dev_sectors: u64) -> Result<(), FormatError> {
        match self {
            Superblock::V1(s, _) => Ok(s.validate(sector, dev_sectors)?),
            Superblock::V0(s) => Ok(s.validate(dev_sectors)?),
        }
    }
    /// Checks the layout against the member's logical block size (bytes): see
    /// [`Superblock1::validate_blocks`]. 0.90's places (a 64 KiB-aligned superblock, the
    /// bitmap 4 KiB after it, data from sector 0) suit every block size up to 4 KiB; past
    /// that the superblock's own block is checked.
    pub fn validate_blocks(&self, sector: u64, block_bytes: u64) -> Result<(), FormatError> {
        match self {
            Superblock::V1(s, _) => Ok(s.validate_blocks(block_bytes)?),
            Superblock::V0(s) => {
                let unit = (block_bytes / 512).max(1);
                let bitmap = s.state & super::sb0::STATE_BITMAP_PRESENT != 0;
                if sector % unit != 0 || (block_bytes > 4096 && bitmap) {
                    return Err(super::sb0::Sb0Error::NotBlockAligned {
                        sector,
                        block_bytes,
                    }
                    .into());
                }
                Ok(())
            }
        }
    }
    /// Bytes as stored.
    pub fn to_bytes(&self) -> alloc::vec::Vec<u8> {
        match self {
            Superblock::V1(s, _) => s.to_bytes(),
            Superblock::V0(s) => s.to_bytes(),
        }
    }
}

/// A superblock found on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The superblock.
    pub sb: Superblock,
    /// The sector it was read from.
    pub sector: u64,
    /// Device size in sectors.
    pub dev_sectors: u64,
}

/// Sector where a 1.x superblock of `version` lives on a device of `dev_sectors`.
pub fn sb1_location(version: MetadataVersion, dev_sectors: u64) -> Option<u64> {
    match version {
        MetadataVersion::V1_1 => Some(0),
        MetadataVersion::V1_2 => Some(8),
        MetadataVersion::V1_0 => dev_sectors.checked_sub(16).map(|s| s & !7),
        MetadataVersion::V0_90 => sb0::location(dev_sectors),
    }
}

fn read_block<D: BlockDevice + ?Sized>(
    dev: &mut D,
    sector: u64,
    buf: &mut [u8; 4096],
) -> Result<bool, Error> {
    let size = dev.size();
    let off = sector.saturating_mul(512);
    match off.checked_add(4096) {
        Some(end) if end <= size => {
            dev.read_at(off, buf)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Looks for an md superblock of any version on `dev` (mdadm's guess_super).
///
/// Returns the newest by creation time when several versions are present (ties go as mdadm
/// breaks them: 0.90 first, then 1.0, 1.1, 1.2); with `only` set, looks for that version alone.
pub fn probe<D: BlockDevice + ?Sized>(
    dev: &mut D,
    only: Option<MetadataVersion>,
) -> Result<Found, Error> {
    let dev_sectors = dev.size() / 512;
    if dev_sectors < 16 {
        return Err(FormatError::from(ProbeError::TooSmall(dev_sectors)).into());
    }
    let mut best: Option<Found> = None;
    let mut buf = [0u8; 4096];
    // mdadm's guess_super order: 0.90 first, then 1.x as load_super1 tries them (1.0, 1.1,
    // 1.2); on a tie the first found stays.
    let order = [
        MetadataVersion::V0_90,
        MetadataVersion::V1_0,
        MetadataVersion::V1_1,
        MetadataVersion::V1_2,
    ];
    for v in order {
        if only.is_some_and(|o| o != v) {
            continue;
        }
        let Some(sector) = sb1_location(v, dev_sectors) else {
            continue;
        };
        if !read_block(dev, sector, &mut buf)? {
            continue;
        }
        let sb = if v == MetadataVersion::V0_90 {
            match Superblock0::parse(&buf) {
                Ok(s) => Superblock::V0(s),
                Err(_) => continue,
            }
        } else {
            match Superblock1::parse(&buf) {
                Ok(s) if s.super_offset == sector => Superblock::V1(s, v),
                _ => continue,
            }
        };
        // Between 1.x superblocks mdadm compares the raw 64-bit ctime (microseconds in the
        // high bits); across kinds, the seconds.
        let newer = best.as_ref().is_none_or(|b| match (&sb, &b.sb) {
            (Superblock::V1(n, _), Superblock::V1(o, _)) => n.ctime > o.ctime,
            _ => sb.ctime_secs() > b.sb.ctime_secs(),
        });
        if newer {
            best = Some(Found {
                sb,
                sector,
                dev_sectors,
            });
        }
    }
    best.ok_or_else(|| FormatError::from(ProbeError::NoSuperblock).into())
}
