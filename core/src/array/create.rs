//! Creating an array: mdadm's layout for every member, fresh superblocks and bitmaps.

use super::{Array, ArrayError, Member, MemberState};
use crate::device::BlockDevice;
use crate::format::bitmap::{BitmapSuper, BITMAP_HEADER_BYTES};
use crate::format::geometry::{
    plan_create, ArrayLayout, BitmapGeometry, BitmapRequest, CreateParams, MemberLayout,
};
use crate::format::probe::{sb1_location, Role, Superblock};
use crate::format::sb0::{self, Disk0, Superblock0};
use crate::format::sb1::{self, Superblock1};
use crate::format::MetadataVersion;
use crate::{Result, SECTOR_SIZE};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

/// One position in the create list.
#[derive(Debug)]
pub enum CreateSlot<D> {
    /// A device.
    Device {
        /// Name for messages.
        name: String,
        /// The device.
        dev: D,
        /// Mark write-mostly (reads avoid it).
        write_mostly: bool,
        /// Mark failfast.
        failfast: bool,
    },
    /// `missing`: the slot starts empty (degraded array).
    Missing,
}

/// Parameters of a new array (mdadm --create's options).
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Metadata version.
    pub version: MetadataVersion,
    /// Number of mirrors; the list's first `raid_disks` entries fill the slots, the rest are spares.
    pub raid_disks: u32,
    /// Internal bitmap or none.
    pub bitmap: BitmapRequest,
    /// Array name (1.x); stored as "homehost:name" when a homehost is given.
    pub name: String,
    /// Home host (1.x).
    pub homehost: Option<String>,
    /// Mark the mirrors in sync without a resync.
    pub assume_clean: bool,
    /// Use only this much of each member (KiB), as mdadm --size.
    pub size_kib: Option<u64>,
    /// Creation time, seconds since the epoch.
    pub now: u64,
    /// Array UUID.
    pub uuid: [u8; 16],
    /// Seed for device UUIDs (any random value).
    pub seed: u64,
    /// 0.90 preferred minor.
    pub md_minor: u32,
}

fn rand_uuid(rng: &mut crate::splitmix::SplitMix64) -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&rng.next().to_le_bytes());
    u[8..].copy_from_slice(&rng.next().to_le_bytes());
    u
}

fn set_name(opts: &CreateOptions) -> Result<[u8; 32]> {
    let full = match &opts.homehost {
        Some(h) if !opts.name.contains(':') => alloc::format!("{h}:{}", opts.name),
        _ => opts.name.clone(),
    };
    if full.len() > 32 {
        return Err(
            ArrayError::Invalid(alloc::format!("name '{full}' is longer than 32 bytes")).into(),
        );
    }
    let mut n = [0u8; 32];
    n[..full.len()].copy_from_slice(full.as_bytes());
    Ok(n)
}

impl<D: BlockDevice> Array<D> {
    /// Creates a RAID1 array over `slots` (mdadm --create --level=1).
    ///
    /// Superblocks (and bitmaps) are written and flushed on every device. Without
    /// `assume_clean`, the superblocks say a resync is needed, as mdadm leaves them for md.
    pub fn create(slots: Vec<CreateSlot<D>>, opts: &CreateOptions) -> Result<Self> {
        let n = opts.raid_disks;
        let max_disks = if opts.version == MetadataVersion::V0_90 {
            sb0::SB0_DISKS as u32
        } else {
            1920
        };
        if n == 0 || n > max_disks {
            return Err(ArrayError::Invalid(alloc::format!(
                "raid devices must be 1..{max_disks}, not {n}"
            ))
            .into());
        }
        if (slots.len() as u32) < n {
            return Err(ArrayError::Invalid(alloc::format!(
                "{n} raid devices need {n} devices (or 'missing'), {} given",
                slots.len()
            ))
            .into());
        }
        if slots.len() as u32 > max_disks {
            return Err(ArrayError::Invalid(alloc::format!(
                "at most {max_disks} devices with metadata {}",
                opts.version
            ))
            .into());
        }
        if slots
            .iter()
            .skip(n as usize)
            .any(|s| matches!(s, CreateSlot::Missing))
        {
            return Err(ArrayError::Invalid(
                "'missing' may only stand for a raid device, not a spare".into(),
            )
            .into());
        }
        if !slots
            .iter()
            .take(n as usize)
            .any(|s| matches!(s, CreateSlot::Device { .. }))
        {
            return Err(ArrayError::Invalid("every raid device is 'missing'".into()).into());
        }
        // md's metadata is laid out in 4 KiB units (the 1.2 superblock 4 KiB in, the bitmap
        // 4 KiB after a 1.x or 0.90 superblock): on larger logical blocks those regions share
        // a block, which neither whole-block writes nor assembly's block rule allow (md could
        // not write them either).
        let large = slots.iter().find_map(|s| match s {
            CreateSlot::Device { name, dev, .. }
                if crate::device::block_bytes(dev.logical_block_size()) > 4096 =>
            {
                Some((name, dev.logical_block_size()))
            }
            _ => None,
        });
        if let Some((name, block)) = large {
            return Err(ArrayError::Invalid(alloc::format!(
                "{name} has {block}-byte logical blocks: md's metadata needs blocks of at most 4096 bytes"
            ))
            .into());
        }
        let total = slots.len() as u32;
        let name = set_name(opts)?;

        // mdadm plans the whole array at once: the smallest member sets the size, the first
        // listed sets the data offset for 1.1/1.2.
        let params = CreateParams {
            version: opts.version,
            raid_disks: n,
            spare_devices: total - n,
            bitmap: opts.bitmap,
            requested_size_kib: opts.size_kib,
        };
        let sectors: Vec<u64> = slots
            .iter()
            .filter_map(|s| match s {
                CreateSlot::Device { dev, .. } => Some(dev.size() / SECTOR_SIZE),
                CreateSlot::Missing => None,
            })
            .collect();
        let plan: ArrayLayout =
            plan_create(&params, &sectors).map_err(crate::format::FormatError::from)?;
        let size = plan.size_sectors;
        let mut present_layouts = plan.members.iter();
        let layouts: Vec<Option<&MemberLayout>> = slots
            .iter()
            .map(|s| match s {
                CreateSlot::Device { .. } => present_layouts.next(),
                CreateSlot::Missing => None,
            })
            .collect();

        let mut uuid_head = [0u8; 8];
        uuid_head.copy_from_slice(&opts.uuid[..8]);
        let mut rng = crate::splitmix::SplitMix64::new(opts.seed ^ u64::from_le_bytes(uuid_head));
        let roles: Vec<Option<Role>> = slots
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                CreateSlot::Missing => None,
                _ if (i as u32) < n => Some(Role::Active(i as u32)),
                _ => Some(Role::Spare),
            })
            .collect();

        let mut members = Vec::new();
        for (i, (slot, layout)) in slots.into_iter().zip(layouts).enumerate() {
            let (
                CreateSlot::Device {
                    name: dev_name,
                    mut dev,
                    write_mostly,
                    failfast,
                },
                Some(layout),
            ) = (slot, layout)
            else {
                continue;
            };
            let dev_sectors = dev.size() / SECTOR_SIZE;
            let role = roles[i].unwrap_or(Role::Spare);
            let sb = if opts.version == MetadataVersion::V0_90 {
                Superblock::V0(new_sb0(
                    opts,
                    size,
                    &roles,
                    i,
                    write_mostly,
                    failfast,
                    plan.bitmap.is_some(),
                ))
            } else {
                let mut s = new_sb1(
                    opts,
                    &name,
                    size,
                    layout,
                    &roles,
                    i as u32,
                    rand_uuid(&mut rng),
                );
                s.devflags = u8::from(write_mostly) * sb1::DEVFLAG_WRITE_MOSTLY
                    + u8::from(failfast) * sb1::DEVFLAG_FAILFAST;
                s.update_checksum();
                Superblock::V1(s, opts.version)
            };
            let sb_sector = match &sb {
                Superblock::V1(s, _) => s.super_offset,
                Superblock::V0(_) => sb1_location(MetadataVersion::V0_90, dev_sectors).unwrap_or(0),
            };
            write_metadata(&mut dev, &sb, sb_sector, layout, plan.bitmap.as_ref())?;
            let state = match role {
                Role::Active(s) => MemberState::InSync(s),
                _ => MemberState::Spare,
            };
            members.push(Member {
                badblocks: None,
                rebuild: None,
                rebuild_bitmap: false,
                dev,
                name: dev_name,
                sb,
                sb_sector,
                dev_sectors,
                state,
            });
        }
        let mut bitmap = None;
        if let Some(m) = members.first_mut() {
            bitmap = super::intent::IntentBitmap::load(m)?;
        }
        let retired = members
            .first()
            .map(|m| m.sb.clone())
            .ok_or(ArrayError::NoDevices)?;
        Array::from_parts(super::Parts {
            retired,
            resync_done: if opts.assume_clean { u64::MAX } else { 0 },
            wall_secs: opts.now,
            bitmap,
            members,
            raid_disks: n,
            component_sectors: size,
            events: 0,
            dirty: false,
            needs_resync: !opts.assume_clean,
            readonly: false,
        })
    }
}

fn new_sb1(
    opts: &CreateOptions,
    name: &[u8; 32],
    size: u64,
    l: &MemberLayout,
    roles: &[Option<Role>],
    dev_number: u32,
    device_uuid: [u8; 16],
) -> Superblock1 {
    let mut dev_roles = alloc::vec![sb1::ROLE_SPARE; l.max_dev as usize];
    for (i, r) in roles.iter().enumerate() {
        if let (Some(r), Some(slot)) = (r, dev_roles.get_mut(i)) {
            *slot = r.to_sb1();
        }
    }
    Superblock1 {
        major_version: 1,
        feature_map: if l.bitmap_offset.is_some() {
            sb1::FEATURE_BITMAP_OFFSET
        } else {
            0
        },
        pad0: 0,
        set_uuid: opts.uuid,
        set_name: *name,
        ctime: opts.now & 0xff_ffff_ffff,
        level: 1,
        layout: 0,
        size,
        chunksize: 0,
        raid_disks: opts.raid_disks,
        bitmap_offset: l.bitmap_offset.unwrap_or(0),
        reshape: [0; 28],
        data_offset: l.data_offset,
        data_size: l.data_size,
        super_offset: l.super_offset,
        recovery_offset: 0,
        dev_number,
        cnt_corrected_read: 0,
        device_uuid,
        devflags: 0,
        bblog_shift: l.bblog_shift,
        bblog_size: l.bblog_size,
        bblog_offset: l.bblog_offset,
        utime: opts.now & 0xff_ffff_ffff,
        events: 0,
        resync_offset: if opts.assume_clean {
            sb1::RESYNC_CLEAN
        } else {
            0
        },
        sb_csum: 0,
        max_dev: l.max_dev,
        pad3: [0; 32],
        dev_roles,
    }
}

fn new_sb0(
    opts: &CreateOptions,
    size: u64,
    roles: &[Option<Role>],
    me: usize,
    wm: bool,
    ff: bool,
    bitmap: bool,
) -> Superblock0 {
    let mut u = opts.uuid;
    // mdadm ties a 0.90 array to its home host by storing the first 8 bytes of the host name's
    // SHA-1 as uuid words 2 and 3 (in memory order), which is how examine knows it is local.
    if let Some(h) = &opts.homehost {
        let hash = crate::format::sha1::sha1(h.as_bytes());
        for w in 0..2 {
            let word = u32::from_le_bytes([
                hash[4 * w],
                hash[4 * w + 1],
                hash[4 * w + 2],
                hash[4 * w + 3],
            ]);
            u[8 + 4 * w..12 + 4 * w].copy_from_slice(&word.to_be_bytes());
        }
    }
    let word = |i: usize| u32::from_be_bytes([u[4 * i], u[4 * i + 1], u[4 * i + 2], u[4 * i + 3]]);
    let mut disks = [Disk0::default(); sb0::SB0_DISKS];
    let (mut active, mut spare, mut failed) = (0u32, 0u32, 0u32);
    for (i, r) in roles.iter().enumerate().take(sb0::SB0_DISKS) {
        let d = &mut disks[i];
        d.number = i as u32;
        d.raid_disk = i as u32;
        d.state = match r {
            Some(Role::Active(_)) => {
                active += 1;
                sb0::DISK_ACTIVE | sb0::DISK_SYNC
            }
            Some(_) => {
                spare += 1;
                0
            }
            None => {
                failed += 1;
                sb0::DISK_FAULTY | sb0::DISK_REMOVED
            }
        };
    }
    if let Some(d) = disks.get_mut(me) {
        if wm {
            d.state |= sb0::DISK_WRITE_MOSTLY;
        }
        if ff {
            d.state |= sb0::DISK_FAILFAST;
        }
    }
    let mut sb = Superblock0 {
        major_version: 0,
        minor_version: 90,
        patch_version: 0,
        set_uuid: [word(0), word(1), word(2), word(3)],
        ctime: opts.now as u32,
        level: 1,
        size: (size / 2).min(u64::from(u32::MAX)) as u32,
        nr_disks: active + spare,
        raid_disks: opts.raid_disks,
        md_minor: opts.md_minor,
        utime: opts.now as u32,
        state: if opts.assume_clean {
            sb0::STATE_CLEAN
        } else {
            0
        },
        active_disks: active,
        working_disks: active + spare,
        failed_disks: failed,
        spare_disks: spare,
        sb_csum: 0,
        events: 0,
        cp_events: 0,
        recovery_cp: if opts.assume_clean { u32::MAX } else { 0 },
        layout: 0,
        chunk_size: 0,
        disks,
        this_disk: disks.get(me).copied().unwrap_or_default(),
        raw: Box::new([0u8; sb0::SB0_BYTES]),
    };
    if bitmap {
        sb.state |= sb0::STATE_BITMAP_PRESENT;
    }
    sb.update_checksum();
    sb
}

/// Writes superblock, bitmap (all bits set, as mdadm writes a new one) and an empty bad-block
/// log, then flushes.
fn write_metadata<D: BlockDevice>(
    dev: &mut D,
    sb: &Superblock,
    sb_sector: u64,
    l: &MemberLayout,
    bitmap: Option<&BitmapGeometry>,
) -> Result<()> {
    // Whole logical blocks, as mdadm writes metadata: the superblock padded with zeros, the
    // bitmap with ones (a 4 KiB-sector device refuses anything smaller under O_DIRECT).
    let unit = crate::device::block_bytes(dev.logical_block_size());
    let mut sb_bytes = sb.to_bytes();
    sb_bytes.resize(
        (sb_bytes.len() as u64).div_ceil(unit) as usize * unit as usize,
        0,
    );
    dev.write_at(sb_sector * SECTOR_SIZE, &sb_bytes)?;
    if let (Some(bg), Some(off)) = (bitmap, l.bitmap_offset) {
        let at = sb_sector
            .checked_add_signed(i64::from(off))
            .ok_or_else(|| ArrayError::Invalid("bitmap offset before the device start".into()))?;
        let chunk = u32::try_from(bg.chunk_bytes)
            .map_err(|_| ArrayError::Invalid("bitmap chunk too large".into()))?;
        // The header carries the UUID md and mdadm derive from the superblock (for 0.90 the
        // words in host order, homehost hash included), or neither accepts the bitmap.
        let header = BitmapSuper::new(sb.bitmap_uuid(), bg.sync_sectors, chunk);
        let mut bytes = header.to_bytes().to_vec();
        // mdadm fills the bitmap with ones (md ignores set bits on a clean array and resyncs
        // them on a new one): for 1.x up to a whole sector, for 0.90 its whole 60 KiB room.
        let total = match sb {
            Superblock::V0(_) => sb0::BITMAP_AREA_BYTES as u64,
            Superblock::V1(..) => {
                let unit = unit.max(SECTOR_SIZE);
                (BITMAP_HEADER_BYTES as u64 + bg.chunks.div_ceil(8)).div_ceil(unit) * unit
            }
        };
        bytes.resize(total as usize, 0xff);
        dev.write_at(at * SECTOR_SIZE, &bytes)?;
    }
    if let Superblock::V1(s, _) = sb {
        if s.bblog_size > 0 {
            if let Some(bb) = sb_sector.checked_add_signed(i64::from(s.bblog_offset)) {
                let zeros = alloc::vec![0u8; usize::from(s.bblog_size) * SECTOR_SIZE as usize];
                dev.write_at(bb * SECTOR_SIZE, &zeros)?;
            }
        }
    }
    dev.flush()?;
    Ok(())
}
