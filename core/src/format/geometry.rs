//! mdadm's layout rules for new members: where the superblock, bitmap, bad-block log and data go,
//! for every metadata version and any device size.
//!
//! These are the rules of `mdadm --create` in mdadm 4.2 (Debian 12), restated from its
//! `Create.c`, `super1.c` (`choose_bm_space`, `validate_geometry1`, `init_super1`,
//! `add_internal_bitmap1`, `write_init_super1`) and `super0.c` (`validate_geometry0`,
//! `add_internal_bitmap0`). mdadm decides in three steps, and so does [`plan_create`]:
//!
//! 1. **Per member, the usable size.** 1.1/1.2 put data after a data offset that is chosen once,
//!    from the *first* member listed (bitmap reserve + reshape headroom of about 0.1 %, rounded up
//!    to 1 MiB). 1.0 keeps 12 KiB for superblock and bad-block log at the end plus a bitmap
//!    reserve; 0.90 keeps the last 64 KiB-aligned 64 KiB.
//! 2. **The array.** The component size (`size` in the superblock) is the smallest usable size,
//!    rounded down to 64 KiB for RAID1, or the size the caller asked for. A write-intent bitmap is
//!    added when asked for, or (mdadm's default) when the array is larger than 100 GiB; its chunk
//!    is the smallest power of two that lets the bitmap fit its reserve, and at least 64 MiB.
//! 3. **Per member, the layout.** Superblock sector, `data_size`, bitmap and bad-block-log
//!    offsets, from the member's own size and the array's size and bitmap.
//!
//! Every function is pure arithmetic on sector counts: no I/O, no panics, no overflow on any
//! input (huge sizes give an error, never a wrapped value).

use super::MetadataVersion;
use alloc::vec::Vec;

/// Largest number of devices (active + spare) a 1.x superblock can describe: its role table must
/// fit in 4 KiB after the 256-byte header.
pub const MAX_DEVS_1X: u32 = 1920;
/// Number of disk records in a 0.90 superblock.
pub const MAX_DEVS_090: u32 = 27;
/// mdadm's default internal bitmap chunk (bytes) when none is asked for.
pub const DEFAULT_BITMAP_CHUNK: u64 = 64 << 20;
/// Smallest bitmap chunk mdadm accepts (bytes): sub-page chunks are refused.
pub const MIN_BITMAP_CHUNK: u64 = 4096;
/// Largest bitmap chunk that can be asked for (bytes): mdadm keeps `--bitmap-chunk` in a C `int`.
pub const MAX_REQUESTED_BITMAP_CHUNK: u64 = 1 << 30;
/// Largest bitmap chunk mdadm can choose (bytes): the header's 32-bit `chunksize` holds powers of
/// two up to 2 GiB. Arrays needing more (members of petabytes) are refused.
pub const MAX_BITMAP_CHUNK: u64 = 1 << 31;
/// mdadm turns a bitmap on by itself for arrays larger than this many KiB (100 GiB).
pub const AUTO_BITMAP_KIB: u64 = 100 << 20;
/// 0.90 keeps `size` in KiB in 32 bits: mdadm refuses 4 TiB and more per device.
pub const MAX_SIZE_KIB_090: u64 = 1 << 32;
/// Size of the bitmap header in bytes.
pub const BITMAP_HEADER_BYTES: u64 = 256;

const ONE_MIB_SECTORS: u64 = 2048;
/// 1.x superblock sector for 1.2.
const SB_SECTOR_1_2: u64 = 8;
/// Sectors mdadm reserves for a bad-block log.
const BBLOG_SECTORS: u16 = 8;
/// Space for the 0.90 bitmap: the 64 KiB reserve minus the 4 KiB superblock.
const BITMAP_ROOM_090_BYTES: u64 = 60 * 1024;

/// Why a layout cannot be made. Comes only from the caller's parameters and device sizes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GeometryError {
    /// No member device was given.
    #[error("no member devices given")]
    NoMembers,
    /// raid_disks is zero.
    #[error("a RAID1 array needs at least one raid device")]
    NoRaidDisks,
    /// More active + spare devices than the superblock can describe.
    #[error("too many devices requested: {requested} > {max}")]
    TooManyDevices {
        /// raid_disks + spares.
        requested: u64,
        /// The metadata's limit.
        max: u32,
    },
    /// The device cannot hold the metadata at all.
    #[error("device {index} is too small ({dev_sectors} sectors) for {version} metadata: needs more than {needs} sectors")]
    DeviceTooSmall {
        /// Index of the member in the list given.
        index: usize,
        /// Metadata version.
        version: MetadataVersion,
        /// The device's size.
        dev_sectors: u64,
        /// Sectors taken by metadata (and data offset) alone.
        needs: u64,
    },
    /// The device holds the metadata but leaves less than 1 KiB for data.
    #[error("no free space left on device {index} ({dev_sectors} sectors)")]
    NoFreeSpace {
        /// Index of the member in the list given.
        index: usize,
        /// The device's size.
        dev_sectors: u64,
    },
    /// The usable size is under 64 KiB, so RAID1's rounding leaves nothing.
    #[error("usable size {usable_kib} KiB rounds down to 0 (RAID1 sizes are multiples of 64 KiB)")]
    ArrayTooSmall {
        /// Smallest usable member size.
        usable_kib: u64,
    },
    /// The requested size is below mdadm's minimum of 4 KiB.
    #[error("invalid size {size_kib} KiB: at least 4 KiB")]
    SizeTooSmall {
        /// Requested size.
        size_kib: u64,
    },
    /// A member is smaller than the requested size.
    #[error("device {index} is smaller than given size: {available_kib} KiB < {size_kib} KiB + metadata")]
    SizeTooLarge {
        /// Index of the member in the list given.
        index: usize,
        /// Requested size.
        size_kib: u64,
        /// What the member offers.
        available_kib: u64,
    },
    /// 0.90 cannot describe 4 TiB or more per device.
    #[error("0.90 metadata supports at most 4 terabytes per device ({size_kib} KiB asked)")]
    TooLargeForV090 {
        /// Size asked for or found.
        size_kib: u64,
    },
    /// A device size whose byte count does not fit 64 bits.
    #[error("device {index} size of {dev_sectors} sectors is beyond 2^64 bytes")]
    DeviceTooLarge {
        /// Index of the member in the list given.
        index: usize,
        /// The device's size.
        dev_sectors: u64,
    },
    /// The requested bitmap chunk is not a power of two number of sectors, or is too large.
    #[error(
        "invalid bitmap chunk size {chunk_bytes} bytes: a power of two from 512 bytes to 1 GiB"
    )]
    BitmapChunkInvalid {
        /// Requested chunk.
        chunk_bytes: u64,
    },
    /// The requested bitmap chunk would need more bits than the bitmap space holds.
    #[error("bitmap chunk size {chunk_bytes} bytes not supported: at least {min_bytes} bytes")]
    BitmapChunkTooSmall {
        /// Requested chunk.
        chunk_bytes: u64,
        /// Smallest chunk that fits.
        min_bytes: u64,
    },
    /// The chunk that fits is larger than a bitmap header can hold.
    #[error("bitmap chunk of {chunk_bytes} bytes needed, above the 2 GiB limit")]
    BitmapChunkTooLarge {
        /// The chunk the bitmap would need.
        chunk_bytes: u64,
    },
    /// The array is too small to have a bitmap (no bitmap space is reserved under 64 KiB).
    #[error("no room for a bitmap on an array of {size_sectors} sectors")]
    NoRoomForBitmap {
        /// Component size.
        size_sectors: u64,
    },
}

/// Whether the new array gets a write-intent bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitmapRequest {
    /// mdadm without `--bitmap`: an internal bitmap with the default chunk when the array is
    /// larger than 100 GiB ([`AUTO_BITMAP_KIB`]), else none.
    Auto,
    /// `--bitmap=none`: never a bitmap.
    None,
    /// `--bitmap=internal`, with `--bitmap-chunk` as `chunk_bytes` when given.
    Internal {
        /// The chunk in bytes (a power of two, at least 4 KiB), or `None` for mdadm's choice.
        chunk_bytes: Option<u64>,
    },
}

/// What `mdadm --create --level=1` is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateParams {
    /// `--metadata`.
    pub version: MetadataVersion,
    /// `--raid-devices`, counting `missing` slots.
    pub raid_disks: u32,
    /// `--spare-devices`: devices given beyond the raid devices.
    pub spare_devices: u32,
    /// `--bitmap` / `--bitmap-chunk`.
    pub bitmap: BitmapRequest,
    /// `--size` in KiB; `None` for the largest size all members allow.
    pub requested_size_kib: Option<u64>,
}

impl CreateParams {
    /// `raid_disks` mirrors, no spares, mdadm's default bitmap rule, largest size.
    pub fn new(version: MetadataVersion, raid_disks: u32) -> Self {
        CreateParams {
            version,
            raid_disks,
            spare_devices: 0,
            bitmap: BitmapRequest::Auto,
            requested_size_kib: None,
        }
    }
}

/// The write-intent bitmap of a new array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitmapGeometry {
    /// Bytes of array data per bit.
    pub chunk_bytes: u64,
    /// Sectors the bitmap covers (the header's `sync_size`): the component size.
    pub sync_sectors: u64,
    /// Number of bits (chunks).
    pub chunks: u64,
    /// Header plus bits, in bytes, not rounded.
    pub bytes: u64,
}

/// Where everything goes on one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberLayout {
    /// The member's size in sectors.
    pub dev_sectors: u64,
    /// Sector of the superblock.
    pub super_offset: u64,
    /// Sector where array data starts.
    pub data_offset: u64,
    /// 1.x `data_size` ("Avail Dev Size"): sectors usable for data from `data_offset`. For 0.90,
    /// the sectors before the superblock.
    pub data_size: u64,
    /// 1.x `max_dev` (entries in the role table); 0 for 0.90.
    pub max_dev: u32,
    /// Bitmap start in sectors relative to `super_offset`, when the array has a bitmap
    /// (0.90: always 8, just after the superblock).
    pub bitmap_offset: Option<i32>,
    /// Sectors the bitmap occupies (header and bits rounded up to 4 KiB); 0 without a bitmap.
    pub bitmap_space_sectors: u64,
    /// 1.x bad-block log start relative to `super_offset` (0 when there is none).
    pub bblog_offset: i32,
    /// 1.x bad-block log sectors (0 when there is none).
    pub bblog_size: u16,
    /// 1.x bad-block log shift (mdadm always writes 0).
    pub bblog_shift: u8,
}

/// The plan for a whole new array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayLayout {
    /// Metadata version.
    pub version: MetadataVersion,
    /// Component size in sectors: 1.x `size`; 0.90 `size` is this in KiB. The array's capacity.
    pub size_sectors: u64,
    /// The array-wide data offset (1.1/1.2 take it from the first member; 0 otherwise).
    pub data_offset: u64,
    /// `max_dev` for 1.x (0 for 0.90).
    pub max_dev: u32,
    /// The bitmap, if any.
    pub bitmap: Option<BitmapGeometry>,
    /// One layout per member, in the order given.
    pub members: Vec<MemberLayout>,
}

impl ArrayLayout {
    /// Component size in KiB (0.90's `size` field, mdadm's "Used Dev Size" in KiB).
    pub fn size_kib(&self) -> u64 {
        self.size_sectors / 2
    }
}

/// Sectors mdadm sets aside for a bitmap on a device or array of `sectors` (its
/// `choose_bm_space`): none under 64 KiB, 4 KiB up to 8 GiB, 64 KiB above 8 GiB and 128 KiB from
/// 200 GiB (each bound measured after the reserve).
pub fn bitmap_reserve_sectors(sectors: u64) -> u64 {
    const GIB: u64 = 2 * 1024 * 1024;
    if sectors < 128 {
        0
    } else if sectors - 128 >= 200 * GIB {
        256
    } else if sectors - 8 > 8 * GIB {
        128
    } else {
        8
    }
}

/// The 1.1/1.2 data offset mdadm chooses for a device of `dev_sectors`: 12 KiB of metadata, the
/// bitmap reserve, and reshape headroom (128 MiB, halved while more than 1/1024 of the device),
/// rounded up to 1 MiB.
pub fn default_data_offset(dev_sectors: u64) -> u64 {
    let mut headroom: u64 = 128 * 1024 * 2;
    while headroom > 0 && (headroom << 10) > dev_sectors {
        headroom >>= 1;
    }
    let raw = 24 + bitmap_reserve_sectors(dev_sectors) + headroom;
    // raw < 2^19, no overflow.
    (raw + ONE_MIB_SECTORS - 1) & !(ONE_MIB_SECTORS - 1)
}

/// Sector of the superblock on a device of `dev_sectors`; `None` when the device is too small
/// for that version (1.x needs 24 sectors, 0.90 needs 128 beyond a 64 KiB boundary).
pub fn super_offset(version: MetadataVersion, dev_sectors: u64) -> Option<u64> {
    match version {
        MetadataVersion::V0_90 => (dev_sectors & !127).checked_sub(128),
        _ if dev_sectors < 24 => None,
        MetadataVersion::V1_0 => Some((dev_sectors - 16) & !7),
        MetadataVersion::V1_1 => Some(0),
        MetadataVersion::V1_2 => Some(SB_SECTOR_1_2),
    }
}

/// `max_dev` mdadm writes for `devices` active + spare slots: the role table rounded so that the
/// superblock fills whole 512-byte sectors.
pub fn max_dev_for(devices: u32) -> u32 {
    let bytes = 256 + 2 * devices as u64;
    let rounded = (bytes + 511) & !511;
    ((rounded - 256) / 2) as u32
}

/// Bitmap header plus one bit per chunk, in bytes, for `sync_sectors` of array and a chunk of
/// `chunk_bytes` (which must be non-zero). Saturates instead of overflowing.
pub fn bitmap_bytes(sync_sectors: u64, chunk_bytes: u64) -> u64 {
    let chunks = bitmap_chunks(sync_sectors, chunk_bytes);
    chunks.div_ceil(8).saturating_add(BITMAP_HEADER_BYTES)
}

/// Number of bitmap bits: chunks covering `sync_sectors` (rounded up).
pub fn bitmap_chunks(sync_sectors: u64, chunk_bytes: u64) -> u64 {
    if chunk_bytes == 0 {
        return 0;
    }
    let bytes = sync_sectors as u128 * 512;
    let n = bytes.div_ceil(chunk_bytes as u128);
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Sectors a bitmap occupies on disk: header and bits rounded up to 4 KiB (mdadm's
/// `calc_bitmap_size(.., 4096)`).
pub fn bitmap_space_sectors(sync_sectors: u64, chunk_bytes: u64) -> u64 {
    let b = bitmap_bytes(sync_sectors, chunk_bytes);
    b.div_ceil(4096).saturating_mul(8)
}

/// The bitmap chunk mdadm picks (or checks) for `size_sectors` of array under `version`:
/// the smallest power of two from 4 KiB that lets the bits fit the bitmap's room (the bitmap
/// reserve for 1.x, 60 KiB for 0.90), then at least 64 MiB unless the caller chose one.
pub fn bitmap_chunk(
    version: MetadataVersion,
    size_sectors: u64,
    requested: Option<u64>,
) -> Result<u64, GeometryError> {
    if let Some(c) = requested {
        // mdadm takes --bitmap-chunk as a power-of-two number of sectors.
        if c < 512 || !c.is_power_of_two() || c > MAX_REQUESTED_BITMAP_CHUNK {
            return Err(GeometryError::BitmapChunkInvalid { chunk_bytes: c });
        }
    }
    let room_bytes: u64 = match version {
        MetadataVersion::V0_90 => BITMAP_ROOM_090_BYTES,
        _ => {
            // Creating: the room is the bitmap reserve for the array's size (capped at 128 KiB
            // when no chunk is given, which the reserve never exceeds).
            let room = bitmap_reserve_sectors(size_sectors);
            if room <= 1 {
                return Err(GeometryError::NoRoomForBitmap { size_sectors });
            }
            room * 512
        }
    };
    let max_bits = ((room_bytes - BITMAP_HEADER_BYTES) * 8) as u128;
    let mut min_chunk: u128 = MIN_BITMAP_CHUNK as u128;
    let mut bits: u128 = size_sectors as u128 * 512 / min_chunk + 1;
    while bits > max_bits {
        min_chunk *= 2;
        bits = bits.div_ceil(2);
    }
    let chunk = match requested {
        None => min_chunk.max(DEFAULT_BITMAP_CHUNK as u128),
        Some(c) if (c as u128) < min_chunk => {
            return Err(GeometryError::BitmapChunkTooSmall {
                chunk_bytes: c,
                min_bytes: u64::try_from(min_chunk).unwrap_or(u64::MAX),
            })
        }
        Some(c) => c as u128,
    };
    if chunk > MAX_BITMAP_CHUNK as u128 {
        return Err(GeometryError::BitmapChunkTooLarge {
            chunk_bytes: u64::try_from(chunk).unwrap_or(u64::MAX),
        });
    }
    Ok(chunk as u64)
}

/// Sectors a member of `dev_sectors` offers for array data (mdadm's `validate_geometry` free
/// size). `data_offset` is the array-wide 1.1/1.2 data offset (ignored for 1.0 and 0.90).
/// Errors name member index 0; [`plan_create`] fills in the real index.
pub fn usable_sectors(
    version: MetadataVersion,
    dev_sectors: u64,
    data_offset: u64,
) -> Result<u64, GeometryError> {
    let too_small = |needs| GeometryError::DeviceTooSmall {
        index: 0,
        version,
        dev_sectors,
        needs,
    };
    match version {
        MetadataVersion::V0_90 => {
            if dev_sectors < 128 {
                return Err(too_small(127));
            }
            Ok((dev_sectors & !127) - 128)
        }
        MetadataVersion::V1_0 => {
            // Superblock (8 KiB slot), bad-block log, bitmap reserve.
            let overhead = 16 + 8 + bitmap_reserve_sectors(dev_sectors);
            let aligned = dev_sectors & !7;
            if aligned < overhead || dev_sectors < 24 {
                return Err(too_small(overhead.max(23)));
            }
            Ok(aligned - overhead)
        }
        MetadataVersion::V1_1 | MetadataVersion::V1_2 => {
            if dev_sectors < data_offset || dev_sectors < 24 {
                return Err(too_small(data_offset.max(23)));
            }
            Ok(dev_sectors - data_offset)
        }
    }
}

fn with_index(e: GeometryError, i: usize) -> GeometryError {
    match e {
        GeometryError::DeviceTooSmall {
            version,
            dev_sectors,
            needs,
            ..
        } => GeometryError::DeviceTooSmall {
            index: i,
            version,
            dev_sectors,
            needs,
        },
        other => other,
    }
}

/// Plans `mdadm --create --level=1` over members of the given sizes (sectors), in the order they
/// are listed (without `missing` slots): the array's size and bitmap, and each member's layout.
pub fn plan_create(p: &CreateParams, member_sectors: &[u64]) -> Result<ArrayLayout, GeometryError> {
    let version = p.version;
    if p.raid_disks == 0 {
        return Err(GeometryError::NoRaidDisks);
    }
    let devices = p.raid_disks as u64 + p.spare_devices as u64;
    let max = match version {
        MetadataVersion::V0_90 => MAX_DEVS_090,
        _ => MAX_DEVS_1X,
    };
    if devices > max as u64 {
        return Err(GeometryError::TooManyDevices {
            requested: devices,
            max,
        });
    }
    if member_sectors.is_empty() {
        return Err(GeometryError::NoMembers);
    }
    for (i, &s) in member_sectors.iter().enumerate() {
        if s > u64::MAX / 512 {
            return Err(GeometryError::DeviceTooLarge {
                index: i,
                dev_sectors: s,
            });
        }
    }
    if let Some(k) = p.requested_size_kib {
        if k < 4 {
            return Err(GeometryError::SizeTooSmall { size_kib: k });
        }
        if version == MetadataVersion::V0_90 && k >= MAX_SIZE_KIB_090 {
            return Err(GeometryError::TooLargeForV090 { size_kib: k });
        }
    }

    // Step 1: the array-wide data offset comes from the first member.
    let data_offset = match version {
        MetadataVersion::V1_1 | MetadataVersion::V1_2 => default_data_offset(member_sectors[0]),
        _ => 0,
    };
    let mut min_kib = u64::MAX;
    for (i, &s) in member_sectors.iter().enumerate() {
        let free = usable_sectors(version, s, data_offset).map_err(|e| with_index(e, i))?;
        let kib = free / 2;
        if kib == 0 {
            return Err(GeometryError::NoFreeSpace {
                index: i,
                dev_sectors: s,
            });
        }
        if let Some(k) = p.requested_size_kib {
            if kib < k {
                return Err(GeometryError::SizeTooLarge {
                    index: i,
                    size_kib: k,
                    available_kib: kib,
                });
            }
        }
        min_kib = min_kib.min(kib);
    }

    // Step 2: the component size and the bitmap.
    let size_kib = match p.requested_size_kib {
        Some(k) => k,
        None => {
            if version == MetadataVersion::V0_90 && min_kib >= MAX_SIZE_KIB_090 {
                return Err(GeometryError::TooLargeForV090 { size_kib: min_kib });
            }
            // RAID1: keep the size a multiple of 64 KiB, for a later reshape to striping.
            let k = min_kib & !63;
            if k == 0 {
                return Err(GeometryError::ArrayTooSmall {
                    usable_kib: min_kib,
                });
            }
            k
        }
    };
    let size_sectors = size_kib * 2;
    let chunk = match p.bitmap {
        BitmapRequest::None => None,
        BitmapRequest::Auto if size_kib <= AUTO_BITMAP_KIB => None,
        BitmapRequest::Auto => Some(bitmap_chunk(version, size_sectors, None)?),
        BitmapRequest::Internal { chunk_bytes } => {
            Some(bitmap_chunk(version, size_sectors, chunk_bytes)?)
        }
    };
    let bitmap = chunk.map(|c| BitmapGeometry {
        chunk_bytes: c,
        sync_sectors: size_sectors,
        chunks: bitmap_chunks(size_sectors, c),
        bytes: bitmap_bytes(size_sectors, c),
    });
    let max_dev = match version {
        MetadataVersion::V0_90 => 0,
        _ => max_dev_for(devices as u32),
    };

    // Step 3: each member.
    let mut members = Vec::with_capacity(member_sectors.len());
    for (i, &s) in member_sectors.iter().enumerate() {
        let m = member(
            version,
            s,
            size_sectors,
            data_offset,
            max_dev,
            bitmap.as_ref(),
        )
        .map_err(|e| with_index(e, i))?;
        members.push(m);
    }
    Ok(ArrayLayout {
        version,
        size_sectors,
        data_offset,
        max_dev,
        bitmap,
        members,
    })
}

/// The layout of one member of an array whose members all have `dev_sectors`.
pub fn member_layout(p: &CreateParams, dev_sectors: u64) -> Result<MemberLayout, GeometryError> {
    let plan = plan_create(p, &[dev_sectors])?;
    Ok(plan.members[0])
}

/// The component size (`size`, sectors) of an array whose members all have `dev_sectors`.
pub fn array_size_sectors(p: &CreateParams, dev_sectors: u64) -> Result<u64, GeometryError> {
    plan_create(p, &[dev_sectors]).map(|a| a.size_sectors)
}

fn member(
    version: MetadataVersion,
    dev_sectors: u64,
    size: u64,
    data_offset: u64,
    max_dev: u32,
    bitmap: Option<&BitmapGeometry>,
) -> Result<MemberLayout, GeometryError> {
    let too_small = |needs| GeometryError::DeviceTooSmall {
        index: 0,
        version,
        dev_sectors,
        needs,
    };
    let sb = super_offset(version, dev_sectors).ok_or_else(|| too_small(23))?;
    let bm_space = bitmap.map_or(0, |b| bitmap_space_sectors(b.sync_sectors, b.chunk_bytes));
    let mut m = MemberLayout {
        dev_sectors,
        super_offset: sb,
        data_offset: 0,
        data_size: 0,
        max_dev,
        bitmap_offset: None,
        bitmap_space_sectors: bm_space,
        bblog_offset: 0,
        bblog_size: 0,
        bblog_shift: 0,
    };
    match version {
        MetadataVersion::V0_90 => {
            m.data_size = sb;
            if bitmap.is_some() {
                m.bitmap_offset = Some(8);
            }
        }
        MetadataVersion::V1_0 => {
            // Space below the superblock: the bitmap (or the bitmap reserve) and 8 sectors of
            // bad-block log right under the superblock, shrunk if the array leaves less.
            let reserve = match bitmap {
                Some(_) => bm_space,
                None => bitmap_reserve_sectors(size),
            };
            let mut below = reserve + u64::from(BBLOG_SECTORS);
            let end = size.checked_add(below).ok_or_else(|| too_small(sb))?;
            if sb < end {
                below = sb.checked_sub(size).ok_or_else(|| too_small(size))?;
            }
            m.data_size = sb - below;
            if below >= u64::from(BBLOG_SECTORS) {
                m.bblog_size = BBLOG_SECTORS;
                m.bblog_offset = -i32::from(BBLOG_SECTORS);
            }
            if let Some(b) = bitmap {
                // The bitmap's place is sized from mdadm's own bit count (chunks + 1), in 4 KiB
                // blocks, under the bad-block log.
                let bits = b.sync_sectors as u128 * 512 / b.chunk_bytes as u128 + 1;
                let bytes = bits.div_ceil(8) + BITMAP_HEADER_BYTES as u128;
                let room = bytes.div_ceil(4096) * 8 + u128::from(BBLOG_SECTORS);
                let off = i32::try_from(room).map_err(|_| GeometryError::BitmapChunkTooLarge {
                    chunk_bytes: b.chunk_bytes,
                })?;
                m.bitmap_offset = Some(-off);
            }
        }
        MetadataVersion::V1_1 | MetadataVersion::V1_2 => {
            if dev_sectors < data_offset {
                return Err(too_small(data_offset));
            }
            m.data_offset = data_offset;
            m.data_size = dev_sectors - data_offset;
            // The bitmap (or its reserve) sits 4 KiB after the superblock; the bad-block log
            // follows it when there is room before the data, else it ends at the data.
            let (bm_offset, space) = match bitmap {
                Some(_) => (8u64, bm_space),
                None => (8u64, bitmap_reserve_sectors(size)),
            };
            if bitmap.is_some() {
                m.bitmap_offset = Some(8);
            }
            let bb_end = sb + bm_offset + space + u64::from(BBLOG_SECTORS);
            if data_offset >= bb_end {
                m.bblog_size = BBLOG_SECTORS;
                m.bblog_offset = i32::try_from(bm_offset + space).unwrap_or(i32::MAX);
            } else if data_offset >= sb + 16 {
                m.bblog_size = BBLOG_SECTORS;
                m.bblog_offset =
                    i32::try_from(data_offset - u64::from(BBLOG_SECTORS) - sb).unwrap_or(i32::MAX);
            }
        }
    }
    Ok(m)
}

// ---- growing an existing array (mdadm --grow) ----

/// What a 1.x member's superblock says about the space around its data, as
/// [`grow_bitmap_1x`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sb1Space {
    /// 1.0, 1.1 or 1.2.
    pub version: MetadataVersion,
    /// Sector of the superblock.
    pub super_offset: u64,
    /// Sector where data starts.
    pub data_offset: u64,
    /// `data_size` ("Avail Dev Size").
    pub data_size: u64,
    /// Bad-block log start, relative to the superblock (signed sectors).
    pub bblog_offset: i32,
    /// Bad-block log sectors.
    pub bblog_size: u16,
    /// Entries in the role table.
    pub max_dev: u32,
}

/// Where `mdadm --grow --bitmap=internal` puts the bitmap of an existing 1.x member and with
/// which chunk: (bitmap_offset relative to the superblock, chunk bytes). This is mdadm 4.2's
/// add_internal_bitmap1 for a kernel that takes `bitmap/location` (every kernel since 2.6.x):
/// 1.1/1.2 start 4 KiB after the superblock, in the room up to the bad-block log (or the data);
/// 1.0 ends just before the bad-block log, in the room between the data and the superblock,
/// starting on a 4 KiB multiple (or, with under 3 KiB of room and at most 384 role entries,
/// 1 KiB after the superblock). Without a requested chunk the room counts at most 128 KiB and
/// the chunk is at least 64 MiB. `size_sectors` is the array's component size.
pub fn grow_bitmap_1x(
    sb: &Sb1Space,
    size_sectors: u64,
    requested: Option<u64>,
) -> Result<(i32, u64), GeometryError> {
    if let Some(c) = requested {
        if c < 512 || !c.is_power_of_two() || c > MAX_REQUESTED_BITMAP_CHUNK {
            return Err(GeometryError::BitmapChunkInvalid { chunk_bytes: c });
        }
    }
    let no_room = GeometryError::NoRoomForBitmap { size_sectors };
    // (room in sectors, fixed offset or None for "ends before the log", log sectors)
    let (mut room, offset, bbl): (i128, Option<i128>, i128) = match sb.version {
        MetadataVersion::V1_0 => {
            let room =
                i128::from(sb.super_offset) - i128::from(sb.data_offset) - i128::from(sb.data_size);
            let mut bbl = i128::from(sb.bblog_size).max(8);
            bbl = bbl.max(-i128::from(sb.bblog_offset));
            if room < 6 && sb.max_dev <= 384 {
                (6, Some(2), 0)
            } else {
                (room, None, bbl)
            }
        }
        MetadataVersion::V1_1 | MetadataVersion::V1_2 => {
            let (room, bbl) = if sb.bblog_size != 0 {
                (
                    i128::from(sb.bblog_offset) + i128::from(sb.bblog_size),
                    i128::from(sb.bblog_size),
                )
            } else {
                (i128::from(sb.data_offset) - i128::from(sb.super_offset), 8)
            };
            (room - 8, Some(8), bbl)
        }
        MetadataVersion::V0_90 => return Err(no_room),
    };
    room -= bbl;
    if requested.is_none() && room > 256 {
        room = 256;
    }
    if room <= 1 {
        return Err(no_room);
    }
    let max_bits = (room as u128 * 512 - u128::from(BITMAP_HEADER_BYTES)) * 8; // room > 1
    let mut min_chunk: u128 = u128::from(MIN_BITMAP_CHUNK);
    let mut bits: u128 = u128::from(size_sectors) * 512 / min_chunk + 1;
    while bits > max_bits {
        min_chunk *= 2;
        bits = bits.div_ceil(2);
    }
    let chunk: u128 = match requested {
        None => min_chunk.max(u128::from(DEFAULT_BITMAP_CHUNK)),
        Some(c) if u128::from(c) < min_chunk => {
            return Err(GeometryError::BitmapChunkTooSmall {
                chunk_bytes: c,
                min_bytes: u64::try_from(min_chunk).unwrap_or(u64::MAX),
            })
        }
        Some(c) => u128::from(c),
    };
    if chunk > u128::from(MAX_BITMAP_CHUNK) {
        return Err(GeometryError::BitmapChunkTooLarge {
            chunk_bytes: u64::try_from(chunk).unwrap_or(u64::MAX),
        });
    }
    let offset = match offset {
        Some(o) => o,
        None => {
            // mdadm counts one bit more than the chunks here (its `bits + 1`).
            let bits = u128::from(size_sectors) * 512 / chunk + 1;
            let space = (bits.div_ceil(8) + u128::from(BITMAP_HEADER_BYTES)).div_ceil(4096) * 8;
            -(space as i128) - bbl
        }
    };
    let offset = i32::try_from(offset).map_err(|_| no_room)?;
    Ok((offset, chunk as u64))
}

/// The chunk `mdadm --grow --bitmap=internal` gives a 0.90 array (the bitmap goes 4 KiB after
/// the superblock, in at most 60 KiB): the same rule as at creation.
pub fn grow_bitmap_090(size_sectors: u64, requested: Option<u64>) -> Result<u64, GeometryError> {
    bitmap_chunk(MetadataVersion::V0_90, size_sectors, requested)
}

/// The bitmap chunk after md resizes a bitmap to `size_sectors` (md_bitmap_resize with no
/// chunk asked for): the old chunk, doubled until header and bits fit `space_sectors`.
pub fn resized_bitmap_chunk(size_sectors: u64, chunk_bytes: u64, space_sectors: u64) -> u64 {
    let mut chunk = chunk_bytes.max(MIN_BITMAP_CHUNK);
    while chunk < MAX_BITMAP_CHUNK && bitmap_bytes(size_sectors, chunk) > space_sectors * 512 {
        chunk *= 2;
    }
    chunk
}

/// The sectors md lets a 1.x member's data use when `mdadm --grow --size` resizes it (the
/// kernel's super_1_rdev_size_change, which rewrites `data_size`): 1.1/1.2 the device after
/// the data offset; 1.0 up to the superblock's slot at the device's end, less the bitmap
/// reserve and 4 KiB for the bad-block log.
pub fn grow_max_data_sectors_1x(
    version: MetadataVersion,
    dev_sectors: u64,
    data_offset: u64,
) -> Option<u64> {
    match version {
        MetadataVersion::V1_0 => {
            let sb = dev_sectors.checked_sub(16)? & !7;
            sb.checked_sub(bitmap_reserve_sectors(dev_sectors) + 8)
        }
        MetadataVersion::V1_1 | MetadataVersion::V1_2 => dev_sectors.checked_sub(data_offset),
        MetadataVersion::V0_90 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_bounds() {
        assert_eq!(bitmap_reserve_sectors(127), 0);
        assert_eq!(bitmap_reserve_sectors(128), 8);
        // 8 GiB + 8 sectors is the last "4 KiB" size.
        assert_eq!(bitmap_reserve_sectors(16 * 1024 * 1024 + 8), 8);
        assert_eq!(bitmap_reserve_sectors(16 * 1024 * 1024 + 9), 128);
        assert_eq!(bitmap_reserve_sectors(400 * 1024 * 1024 + 127), 128);
        assert_eq!(bitmap_reserve_sectors(400 * 1024 * 1024 + 128), 256);
        assert_eq!(bitmap_reserve_sectors(u64::MAX), 256);
    }

    #[test]
    fn max_dev_rounding() {
        assert_eq!(max_dev_for(1), 128);
        assert_eq!(max_dev_for(128), 128);
        assert_eq!(max_dev_for(129), 384);
        assert_eq!(max_dev_for(1920), 1920);
    }

    #[test]
    fn data_offset_extremes() {
        assert_eq!(default_data_offset(0), 2048);
        assert_eq!(default_data_offset(u64::MAX), 264192);
    }
}
