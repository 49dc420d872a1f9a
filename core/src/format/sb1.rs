//! md superblock version 1.x (1.0, 1.1, 1.2): 256 bytes + 2 bytes per `dev_roles` entry, LE.

use super::bytes::*;
use super::MD_MAGIC;
use alloc::vec::Vec;

/// Size of the fixed part.
pub const SB1_FIXED: usize = 256;
/// Kernel limit on `max_dev` (the superblock must fit in 4 KiB).
pub const MAX_DEV_LIMIT: u32 = 1920;
/// Every feature bit the kernel knows (it refuses others).
pub const FEATURE_ALL: u32 = 0x1fff;
/// feature_map bit: `bitmap_offset` is valid.
pub const FEATURE_BITMAP_OFFSET: u32 = 1;
/// feature_map bit: `recovery_offset` is valid.
pub const FEATURE_RECOVERY_OFFSET: u32 = 2;
/// feature_map bit: a reshape is active.
pub const FEATURE_RESHAPE_ACTIVE: u32 = 4;
/// feature_map bit: the bad-block log is non-empty.
pub const FEATURE_BAD_BLOCKS: u32 = 8;
/// feature_map bit: this device is a replacement.
pub const FEATURE_REPLACEMENT: u32 = 16;
/// feature_map bit: the recovery at `recovery_offset` is bitmap-based (md sets it while a
/// re-added member is recovered with the bitmap; without it recovery copies everything from
/// `recovery_offset`).
pub const FEATURE_RECOVERY_BITMAP: u32 = 128;
/// feature_map bit: journal device.
pub const FEATURE_JOURNAL: u32 = 512;
/// feature_map bit: partial parity log.
pub const FEATURE_PPL: u32 = 1024;
/// `devflags` bit: write-mostly.
pub const DEVFLAG_WRITE_MOSTLY: u8 = 1;
/// `devflags` bit: failfast.
pub const DEVFLAG_FAILFAST: u8 = 2;
/// `dev_roles` value: spare.
pub const ROLE_SPARE: u16 = 0xffff;
/// `dev_roles` value: faulty.
pub const ROLE_FAULTY: u16 = 0xfffe;
/// `dev_roles` value: journal.
pub const ROLE_JOURNAL: u16 = 0xfffd;
/// Roles below this are active slots.
pub const ROLE_MAX_ACTIVE: u16 = 0xff00;
/// `resync_offset` of a clean array.
pub const RESYNC_CLEAN: u64 = u64::MAX;

/// Errors decoding or validating a 1.x superblock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Sb1Error {
    /// Fewer bytes than the structure needs.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// No md magic.
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    /// major_version is not 1.
    #[error("unsupported major version {0}")]
    BadVersion(u32),
    /// max_dev above the kernel's 1920.
    #[error("max_dev {0} exceeds 1920")]
    MaxDevTooLarge(u32),
    /// Feature bits the kernel does not know.
    #[error("unknown feature bits {0:#x}")]
    UnknownFeatures(u32),
    /// Stored checksum differs from the computed one.
    #[error("checksum {stored:#x} is wrong, expected {expected:#x}")]
    BadChecksum {
        /// On disk.
        stored: u32,
        /// Computed.
        expected: u32,
    },
    /// super_offset does not name the sector the superblock was read from.
    #[error("super_offset {stored} does not match the superblock's location at sector {actual}")]
    WrongSuperOffset {
        /// On disk.
        stored: u64,
        /// Where it was found.
        actual: u64,
    },
    /// data_size below the kernel's minimum of 10 sectors.
    #[error("data_size {0} sectors is too small")]
    DataTooSmall(u64),
    /// Non-zero padding.
    #[error("non-zero padding")]
    NonZeroPad,
    /// A region does not start on a logical block of the member (a 4 KiB-sector device), or
    /// starts inside the superblock's block: md writes metadata in whole blocks, so the
    /// superblock's write would cover it, and the device refuses anything smaller.
    #[error("{what} at sector {start} is not on a {block_bytes}-byte block of its own (the device's logical block)")]
    NotBlockAligned {
        /// Which region.
        what: &'static str,
        /// First sector (relative to the device start).
        start: i128,
        /// The device's logical block size.
        block_bytes: u64,
    },
    /// The data area, bitmap or bad-block log lies outside the device or overlaps the superblock.
    #[error("{what} (sectors {start}..{end}) lies outside the device's {dev_sectors} sectors or overlaps the superblock")]
    BadLayout {
        /// Which region.
        what: &'static str,
        /// First sector.
        start: i128,
        /// One past the last sector.
        end: i128,
        /// Device size.
        dev_sectors: u64,
    },
    /// Bad-block log parameters the kernel refuses.
    #[error("bad-block log: {0}")]
    BadBlockLog(&'static str),
}

/// A 1.x superblock, field for field (see DESIGN.md §2). Untrusted until [`Superblock1::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock1 {
    /// Offset 4.
    pub major_version: u32,
    /// Offset 8.
    pub feature_map: u32,
    /// Offset 12, must be 0.
    pub pad0: u32,
    /// Offset 16.
    pub set_uuid: [u8; 16],
    /// Offset 32: "homehost:name", NUL padded.
    pub set_name: [u8; 32],
    /// Offset 64: low 40 bits seconds, high 24 bits microseconds.
    pub ctime: u64,
    /// Offset 72.
    pub level: i32,
    /// Offset 76.
    pub layout: u32,
    /// Offset 80: sectors of each member used by the array.
    pub size: u64,
    /// Offset 88.
    pub chunksize: u32,
    /// Offset 92.
    pub raid_disks: u32,
    /// Offset 96: signed sectors from the superblock (also PPL offset/size when PPL is on).
    pub bitmap_offset: i32,
    /// Offsets 100..128: new_level, reshape_position, delta_disks, new_layout, new_chunk,
    /// new_offset — kept raw; meaningful only with the reshape feature bits.
    pub reshape: [u8; 28],
    /// Offset 128, sectors.
    pub data_offset: u64,
    /// Offset 136, sectors.
    pub data_size: u64,
    /// Offset 144, sectors.
    pub super_offset: u64,
    /// Offset 152, sectors.
    pub recovery_offset: u64,
    /// Offset 160.
    pub dev_number: u32,
    /// Offset 164.
    pub cnt_corrected_read: u32,
    /// Offset 168.
    pub device_uuid: [u8; 16],
    /// Offset 184.
    pub devflags: u8,
    /// Offset 185.
    pub bblog_shift: u8,
    /// Offset 186, sectors.
    pub bblog_size: u16,
    /// Offset 188: signed sectors from the superblock.
    pub bblog_offset: i32,
    /// Offset 192: same encoding as `ctime`.
    pub utime: u64,
    /// Offset 200.
    pub events: u64,
    /// Offset 208: all ones when clean.
    pub resync_offset: u64,
    /// Offset 216.
    pub sb_csum: u32,
    /// Offset 220.
    pub max_dev: u32,
    /// Offsets 224..256, must be zero.
    pub pad3: [u8; 32],
    /// Offset 256: `max_dev` roles.
    pub dev_roles: Vec<u16>,
}

impl Superblock1 {
    /// Decodes `buf` (at least 256 + 2*max_dev bytes; a 4 KiB read always suffices).
    ///
    /// Checks only magic, major version and `max_dev`, which decoding needs. Use
    /// [`Self::validate`] for the kernel's full load checks.
    pub fn parse(buf: &[u8]) -> Result<Self, Sb1Error> {
        if buf.len() < SB1_FIXED {
            return Err(Sb1Error::Truncated {
                need: SB1_FIXED,
                have: buf.len(),
            });
        }
        let magic = le32(buf, 0);
        if magic != MD_MAGIC {
            return Err(Sb1Error::BadMagic(magic));
        }
        let major_version = le32(buf, 4);
        if major_version != 1 {
            return Err(Sb1Error::BadVersion(major_version));
        }
        let max_dev = le32(buf, 220);
        if max_dev > MAX_DEV_LIMIT {
            return Err(Sb1Error::MaxDevTooLarge(max_dev));
        }
        let need = SB1_FIXED + 2 * max_dev as usize;
        if buf.len() < need {
            return Err(Sb1Error::Truncated {
                need,
                have: buf.len(),
            });
        }
        let dev_roles = (0..max_dev as usize)
            .map(|i| le16(buf, SB1_FIXED + 2 * i))
            .collect();
        Ok(Superblock1 {
            major_version,
            feature_map: le32(buf, 8),
            pad0: le32(buf, 12),
            set_uuid: arr(buf, 16),
            set_name: arr(buf, 32),
            ctime: le64(buf, 64),
            level: le32(buf, 72) as i32,
            layout: le32(buf, 76),
            size: le64(buf, 80),
            chunksize: le32(buf, 88),
            raid_disks: le32(buf, 92),
            bitmap_offset: le32(buf, 96) as i32,
            reshape: arr(buf, 100),
            data_offset: le64(buf, 128),
            data_size: le64(buf, 136),
            super_offset: le64(buf, 144),
            recovery_offset: le64(buf, 152),
            dev_number: le32(buf, 160),
            cnt_corrected_read: le32(buf, 164),
            device_uuid: arr(buf, 168),
            devflags: buf[184],
            bblog_shift: buf[185],
            bblog_size: le16(buf, 186),
            bblog_offset: le32(buf, 188) as i32,
            utime: le64(buf, 192),
            events: le64(buf, 200),
            resync_offset: le64(buf, 208),
            sb_csum: le32(buf, 216),
            max_dev,
            pad3: arr(buf, 224),
            dev_roles,
        })
    }

    /// Bytes this superblock occupies: 256 + 2*max_dev.
    pub fn byte_len(&self) -> usize {
        SB1_FIXED + 2 * self.max_dev as usize
    }

    /// Encodes exactly as stored (the checksum field as it is; see [`Self::update_checksum`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = alloc::vec![0u8; self.byte_len()];
        put32(&mut b, 0, MD_MAGIC);
        put32(&mut b, 4, self.major_version);
        put32(&mut b, 8, self.feature_map);
        put32(&mut b, 12, self.pad0);
        b[16..32].copy_from_slice(&self.set_uuid);
        b[32..64].copy_from_slice(&self.set_name);
        put64(&mut b, 64, self.ctime);
        put32(&mut b, 72, self.level as u32);
        put32(&mut b, 76, self.layout);
        put64(&mut b, 80, self.size);
        put32(&mut b, 88, self.chunksize);
        put32(&mut b, 92, self.raid_disks);
        put32(&mut b, 96, self.bitmap_offset as u32);
        b[100..128].copy_from_slice(&self.reshape);
        put64(&mut b, 128, self.data_offset);
        put64(&mut b, 136, self.data_size);
        put64(&mut b, 144, self.super_offset);
        put64(&mut b, 152, self.recovery_offset);
        put32(&mut b, 160, self.dev_number);
        put32(&mut b, 164, self.cnt_corrected_read);
        b[168..184].copy_from_slice(&self.device_uuid);
        b[184] = self.devflags;
        b[185] = self.bblog_shift;
        put16(&mut b, 186, self.bblog_size);
        put32(&mut b, 188, self.bblog_offset as u32);
        put64(&mut b, 192, self.utime);
        put64(&mut b, 200, self.events);
        put64(&mut b, 208, self.resync_offset);
        put32(&mut b, 216, self.sb_csum);
        put32(&mut b, 220, self.max_dev);
        b[224..256].copy_from_slice(&self.pad3);
        // Roles beyond the vector (a caller shrank it) are written as spare-free zeros; the
        // vector should always hold max_dev entries.
        for (i, r) in self
            .dev_roles
            .iter()
            .take(self.max_dev as usize)
            .enumerate()
        {
            put16(&mut b, SB1_FIXED + 2 * i, *r);
        }
        b
    }

    /// The checksum md would store for this content.
    pub fn compute_checksum(&self) -> u32 {
        let mut b = self.to_bytes();
        put32(&mut b, 216, 0);
        checksum_bytes(&b)
    }

    /// Whether the stored checksum is right.
    pub fn checksum_ok(&self) -> bool {
        self.sb_csum == self.compute_checksum()
    }

    /// Stores the right checksum.
    pub fn update_checksum(&mut self) {
        self.sb_csum = self.compute_checksum();
    }

    /// The kernel's load checks (super_1_load), given where the superblock was found and the
    /// device's size in sectors.
    pub fn validate(&self, found_at_sector: u64, dev_sectors: u64) -> Result<(), Sb1Error> {
        if self.feature_map & !FEATURE_ALL != 0 {
            return Err(Sb1Error::UnknownFeatures(self.feature_map & !FEATURE_ALL));
        }
        if self.pad0 != 0 || self.pad3 != [0; 32] {
            return Err(Sb1Error::NonZeroPad);
        }
        if self.super_offset != found_at_sector {
            return Err(Sb1Error::WrongSuperOffset {
                stored: self.super_offset,
                actual: found_at_sector,
            });
        }
        let expected = self.compute_checksum();
        if self.sb_csum != expected {
            return Err(Sb1Error::BadChecksum {
                stored: self.sb_csum,
                expected,
            });
        }
        if self.data_size < 10 {
            return Err(Sb1Error::DataTooSmall(self.data_size));
        }
        let sb_start = i128::from(self.super_offset);
        let sb_end = sb_start + (self.byte_len() as i128 + 511) / 512;
        let data_start = i128::from(self.data_offset);
        let data_end = data_start + i128::from(self.data_size);
        let dev = i128::from(dev_sectors);
        let overlaps_sb = |s: i128, e: i128| s < sb_end && sb_start < e;
        if data_end > dev || overlaps_sb(data_start, data_end) {
            return Err(Sb1Error::BadLayout {
                what: "data area",
                start: data_start,
                end: data_end,
                dev_sectors,
            });
        }
        if self.size > self.data_size {
            return Err(Sb1Error::BadLayout {
                what: "used size",
                start: data_start,
                end: data_start + i128::from(self.size),
                dev_sectors,
            });
        }
        if self.bblog_size != 0 {
            if self.bblog_offset == 0 {
                return Err(Sb1Error::BadBlockLog("non-empty log with offset 0"));
            }
            if self.bblog_shift > 62 {
                return Err(Sb1Error::BadBlockLog("shift too large"));
            }
            let s = sb_start + i128::from(self.bblog_offset);
            let e = s + i128::from(self.bblog_size);
            if s < 0 || e > dev {
                return Err(Sb1Error::BadLayout {
                    what: "bad-block log",
                    start: s,
                    end: e,
                    dev_sectors,
                });
            }
        } else if self.feature_map & FEATURE_BAD_BLOCKS != 0 {
            return Err(Sb1Error::BadBlockLog("feature bit set but no log"));
        }
        if self.feature_map & FEATURE_BITMAP_OFFSET != 0 {
            let s = sb_start + i128::from(self.bitmap_offset);
            if s < 0 || s >= dev || overlaps_sb(s, s + 1) {
                return Err(Sb1Error::BadLayout {
                    what: "bitmap",
                    start: s,
                    end: s + 1,
                    dev_sectors,
                });
            }
        }
        Ok(())
    }

    /// Checks the layout against a member whose logical blocks are `block_bytes` (a power of
    /// two from 512): the superblock, bitmap, bad-block log and data area each start on a
    /// block, and the bitmap and the log start past the superblock's block. On 512-byte
    /// devices everything passes. md cannot run such a member either (its block-sized
    /// metadata writes would be refused or cover the bitmap); assembly refuses it.
    pub fn validate_blocks(&self, block_bytes: u64) -> Result<(), Sb1Error> {
        let unit = i128::from(block_bytes / 512).max(1);
        if unit == 1 {
            return Ok(());
        }
        let sb_start = i128::from(self.super_offset);
        let sb_block_end =
            (sb_start + (self.byte_len() as i128 + 511) / 512 + unit - 1) / unit * unit;
        let sb_block_start = sb_start / unit * unit;
        let mut regions = alloc::vec![
            ("superblock", sb_start, false),
            ("data area", i128::from(self.data_offset), false),
        ];
        if self.feature_map & FEATURE_BITMAP_OFFSET != 0 {
            regions.push(("bitmap", sb_start + i128::from(self.bitmap_offset), true));
        }
        if self.bblog_size != 0 {
            regions.push((
                "bad-block log",
                sb_start + i128::from(self.bblog_offset),
                true,
            ));
        }
        for (what, start, metadata) in regions {
            let in_sb_block = metadata && sb_block_start <= start && start < sb_block_end;
            if start.rem_euclid(unit) != 0 || in_sb_block {
                return Err(Sb1Error::NotBlockAligned {
                    what,
                    start,
                    block_bytes,
                });
            }
        }
        Ok(())
    }

    /// The "homehost:name" field up to its first NUL.
    pub fn name(&self) -> &[u8] {
        let n = self.set_name.iter().position(|&c| c == 0).unwrap_or(32);
        &self.set_name[..n]
    }

    /// Role of this device (`dev_roles[dev_number]`), or None when dev_number is out of range.
    pub fn role(&self) -> Option<u16> {
        self.dev_roles.get(self.dev_number as usize).copied()
    }

    /// Whether the array was shut down cleanly.
    pub fn is_clean(&self) -> bool {
        self.resync_offset == RESYNC_CLEAN
    }

    /// Seconds part of `ctime`/`utime`.
    pub fn time_secs(t: u64) -> u64 {
        t & 0xff_ffff_ffff
    }
}

/// md's 1.x checksum over `b` (whose checksum field must already be zero).
pub fn checksum_bytes(b: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    let mut chunks = b.chunks_exact(4);
    for c in &mut chunks {
        sum += u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    if rest.len() >= 2 {
        sum += u64::from(u16::from_le_bytes([rest[0], rest[1]]));
    }
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}
