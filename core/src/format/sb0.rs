//! md superblock version 0.90: 4096 bytes of host-endian 32-bit words near the device's end.
//!
//! Only little-endian hosts are supported (a byte-swapped magic is reported as foreign-endian).
//! Named fields are decoded; every other word is kept in `raw` so that serializing writes back
//! exactly what was read.

use super::bytes::*;
use super::MD_MAGIC;
use alloc::boxed::Box;
use alloc::vec::Vec;

/// Superblock size in bytes.
pub const SB0_BYTES: usize = 4096;
/// Disk records in the superblock.
pub const SB0_DISKS: usize = 27;
/// `state` bit: clean.
pub const STATE_CLEAN: u32 = 1;
/// `state` bit: a bitmap is present.
pub const STATE_BITMAP_PRESENT: u32 = 1 << 8;
/// Disk state bit: faulty.
pub const DISK_FAULTY: u32 = 1;
/// Disk state bit: active.
pub const DISK_ACTIVE: u32 = 1 << 1;
/// Disk state bit: in sync.
pub const DISK_SYNC: u32 = 1 << 2;
/// Disk state bit: removed.
pub const DISK_REMOVED: u32 = 1 << 3;
/// Disk state bit: write-mostly.
pub const DISK_WRITE_MOSTLY: u32 = 1 << 9;
/// Disk state bit: failfast.
pub const DISK_FAILFAST: u32 = 1 << 10;

/// Errors decoding a 0.90 superblock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Sb0Error {
    /// Fewer than 4096 bytes.
    #[error("truncated: need 4096 bytes, have {0}")]
    Truncated(usize),
    /// No md magic.
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    /// The superblock was written by a host of the other byte order.
    #[error("superblock written by a big-endian host")]
    ForeignEndian,
    /// major/minor version not 0.90.
    #[error("unsupported version {major}.{minor}")]
    BadVersion {
        /// major_version.
        major: u32,
        /// minor_version.
        minor: u32,
    },
    /// Stored checksum differs from the computed one.
    #[error("checksum {stored:#x} is wrong, expected {expected:#x}")]
    BadChecksum {
        /// On disk.
        stored: u32,
        /// Computed.
        expected: u32,
    },
    /// The superblock (or the bitmap 4 KiB after it) does not start on a logical block of its
    /// own on the member (blocks over 4 KiB).
    #[error("superblock at sector {sector} and its bitmap do not each start on a {block_bytes}-byte block (the device's logical block)")]
    NotBlockAligned {
        /// The superblock's sector.
        sector: u64,
        /// The device's logical block size.
        block_bytes: u64,
    },
    /// Device too small for a 0.90 superblock, or size beyond the device.
    #[error("size {size_kib} KiB does not fit the device's {dev_sectors} sectors")]
    BadSize {
        /// The `size` field.
        size_kib: u32,
        /// Device size.
        dev_sectors: u64,
    },
    /// this_disk or raid_disks out of range.
    #[error("{0}")]
    BadDisk(&'static str),
}

/// One 128-byte disk record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Disk0 {
    /// Index of this record.
    pub number: u32,
    /// Device major number when written.
    pub major: u32,
    /// Device minor number when written.
    pub minor: u32,
    /// Role in the array.
    pub raid_disk: u32,
    /// DISK_* bits.
    pub state: u32,
}

/// A 0.90 superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock0 {
    /// word 1
    pub major_version: u32,
    /// word 2
    pub minor_version: u32,
    /// word 3
    pub patch_version: u32,
    /// words 5, 13, 14, 15
    pub set_uuid: [u32; 4],
    /// word 6, seconds
    pub ctime: u32,
    /// word 7
    pub level: i32,
    /// word 8: KiB of each member used
    pub size: u32,
    /// word 9
    pub nr_disks: u32,
    /// word 10
    pub raid_disks: u32,
    /// word 11
    pub md_minor: u32,
    /// word 32 (byte 128)
    pub utime: u32,
    /// word 33
    pub state: u32,
    /// word 34
    pub active_disks: u32,
    /// word 35
    pub working_disks: u32,
    /// word 36
    pub failed_disks: u32,
    /// word 37
    pub spare_disks: u32,
    /// word 38
    pub sb_csum: u32,
    /// byte 156
    pub events: u64,
    /// byte 164
    pub cp_events: u64,
    /// byte 172
    pub recovery_cp: u32,
    /// word 64
    pub layout: u32,
    /// word 65
    pub chunk_size: u32,
    /// byte 512: 27 disk records
    pub disks: [Disk0; SB0_DISKS],
    /// byte 3968
    pub this_disk: Disk0,
    /// The 4096 bytes as read; named fields are laid over it on serialize.
    pub raw: Box<[u8; SB0_BYTES]>,
}

fn disk_at(b: &[u8], o: usize) -> Disk0 {
    Disk0 {
        number: le32(b, o),
        major: le32(b, o + 4),
        minor: le32(b, o + 8),
        raid_disk: le32(b, o + 12),
        state: le32(b, o + 16),
    }
}

fn put_disk(b: &mut [u8], o: usize, d: &Disk0) {
    put32(b, o, d.number);
    put32(b, o + 4, d.major);
    put32(b, o + 8, d.minor);
    put32(b, o + 12, d.raid_disk);
    put32(b, o + 16, d.state);
}

impl Superblock0 {
    /// Decodes 4096 bytes. Checks magic, byte order and version.
    pub fn parse(buf: &[u8]) -> Result<Self, Sb0Error> {
        if buf.len() < SB0_BYTES {
            return Err(Sb0Error::Truncated(buf.len()));
        }
        let magic = le32(buf, 0);
        if magic != MD_MAGIC {
            if magic == MD_MAGIC.swap_bytes() {
                return Err(Sb0Error::ForeignEndian);
            }
            return Err(Sb0Error::BadMagic(magic));
        }
        let (major, minor) = (le32(buf, 4), le32(buf, 8));
        if major != 0 || minor != 90 {
            return Err(Sb0Error::BadVersion { major, minor });
        }
        let mut raw = Box::new([0u8; SB0_BYTES]);
        raw.copy_from_slice(&buf[..SB0_BYTES]);
        let mut disks = [Disk0::default(); SB0_DISKS];
        for (i, d) in disks.iter_mut().enumerate() {
            *d = disk_at(buf, 512 + 128 * i);
        }
        Ok(Superblock0 {
            major_version: major,
            minor_version: minor,
            patch_version: le32(buf, 12),
            set_uuid: [le32(buf, 20), le32(buf, 52), le32(buf, 56), le32(buf, 60)],
            ctime: le32(buf, 24),
            level: le32(buf, 28) as i32,
            size: le32(buf, 32),
            nr_disks: le32(buf, 36),
            raid_disks: le32(buf, 40),
            md_minor: le32(buf, 44),
            utime: le32(buf, 128),
            state: le32(buf, 132),
            active_disks: le32(buf, 136),
            working_disks: le32(buf, 140),
            failed_disks: le32(buf, 144),
            spare_disks: le32(buf, 148),
            sb_csum: le32(buf, 152),
            events: le64(buf, 156),
            cp_events: le64(buf, 164),
            recovery_cp: le32(buf, 172),
            layout: le32(buf, 256),
            chunk_size: le32(buf, 260),
            disks,
            this_disk: disk_at(buf, 3968),
            raw,
        })
    }

    /// Encodes 4096 bytes: `raw` with the named fields laid over it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.raw.to_vec();
        put32(&mut b, 0, MD_MAGIC);
        put32(&mut b, 4, self.major_version);
        put32(&mut b, 8, self.minor_version);
        put32(&mut b, 12, self.patch_version);
        put32(&mut b, 20, self.set_uuid[0]);
        put32(&mut b, 52, self.set_uuid[1]);
        put32(&mut b, 56, self.set_uuid[2]);
        put32(&mut b, 60, self.set_uuid[3]);
        put32(&mut b, 24, self.ctime);
        put32(&mut b, 28, self.level as u32);
        put32(&mut b, 32, self.size);
        put32(&mut b, 36, self.nr_disks);
        put32(&mut b, 40, self.raid_disks);
        put32(&mut b, 44, self.md_minor);
        put32(&mut b, 128, self.utime);
        put32(&mut b, 132, self.state);
        put32(&mut b, 136, self.active_disks);
        put32(&mut b, 140, self.working_disks);
        put32(&mut b, 144, self.failed_disks);
        put32(&mut b, 148, self.spare_disks);
        put32(&mut b, 152, self.sb_csum);
        put64(&mut b, 156, self.events);
        put64(&mut b, 164, self.cp_events);
        put32(&mut b, 172, self.recovery_cp);
        put32(&mut b, 256, self.layout);
        put32(&mut b, 260, self.chunk_size);
        for (i, d) in self.disks.iter().enumerate() {
            put_disk(&mut b, 512 + 128 * i, d);
        }
        put_disk(&mut b, 3968, &self.this_disk);
        b
    }

    /// The checksum mdadm computes: 32-bit words summed into 64 bits, folded lo+hi.
    pub fn compute_checksum(&self) -> u32 {
        let mut b = self.to_bytes();
        put32(&mut b, 152, 0);
        let sum: u64 = b
            .chunks_exact(4)
            .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .sum();
        ((sum & 0xffff_ffff) + (sum >> 32)) as u32
    }

    /// Whether the stored checksum is right.
    pub fn checksum_ok(&self) -> bool {
        self.sb_csum == self.compute_checksum()
    }

    /// Stores the right checksum.
    pub fn update_checksum(&mut self) {
        self.sb_csum = self.compute_checksum();
    }

    /// The kernel's load checks (super_90_load) for a device of `dev_sectors`.
    pub fn validate(&self, dev_sectors: u64) -> Result<(), Sb0Error> {
        let expected = self.compute_checksum();
        if self.sb_csum != expected {
            return Err(Sb0Error::BadChecksum {
                stored: self.sb_csum,
                expected,
            });
        }
        let sb_sector = location(dev_sectors).ok_or(Sb0Error::BadSize {
            size_kib: self.size,
            dev_sectors,
        })?;
        if u64::from(self.size) * 2 > sb_sector {
            return Err(Sb0Error::BadSize {
                size_kib: self.size,
                dev_sectors,
            });
        }
        if self.raid_disks as usize > SB0_DISKS || self.nr_disks as usize > SB0_DISKS {
            return Err(Sb0Error::BadDisk("raid_disks or nr_disks above 27"));
        }
        if self.this_disk.number as usize >= SB0_DISKS {
            return Err(Sb0Error::BadDisk("this_disk number above 26"));
        }
        Ok(())
    }

    /// Whether the array was shut down cleanly.
    pub fn is_clean(&self) -> bool {
        self.state & STATE_CLEAN != 0
    }

    /// The array UUID as 16 bytes, in the order mdadm prints (each word as its hex digits).
    pub fn uuid_bytes(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        for (i, w) in self.set_uuid.iter().enumerate() {
            u[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        u
    }

    /// The array UUID as md and mdadm keep it in memory for this superblock (mdadm's
    /// `uuid_from_super0`, the kernel's `mddev->uuid`): the four words in host (little-endian)
    /// byte order. This is what the bitmap header's UUID must hold, and what both compare it with.
    pub fn bitmap_uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        for (i, w) in self.set_uuid.iter().enumerate() {
            u[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        u
    }
}

/// Bytes mdadm writes for a 0.90 internal bitmap right after the superblock: the header and
/// then all ones, 60 KiB in all (the bitmap's whole room in the 64 KiB reserved at the end).
pub const BITMAP_AREA_BYTES: usize = 60 * 1024;

/// Sector at which a 0.90 superblock lives on a device of `dev_sectors`; None when the device is
/// too small (md needs at least 128 sectors beyond a 64 KiB boundary).
pub fn location(dev_sectors: u64) -> Option<u64> {
    (dev_sectors & !127).checked_sub(128).filter(|&s| s > 0)
}
