//! The facts `mdadm --detail` prints, taken from a running [`Array`].

use super::{Array, MemberState};
use crate::device::BlockDevice;
use crate::format::probe::Superblock;
use crate::format::{sb0, sb1};
use crate::report::detail::{
    ConsistencyPolicy, DetailBitmap, DetailDisk, DetailIdentity, SyncAction, SyncProgress,
    SyncStatus,
};
use crate::report::DetailInfo;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

impl<D: BlockDevice> Array<D> {
    fn has_bitmap(sb: &Superblock) -> bool {
        match sb {
            Superblock::V1(s, _) => s.feature_map & sb1::FEATURE_BITMAP_OFFSET != 0,
            Superblock::V0(s) => s.state & sb0::STATE_BITMAP_PRESENT != 0,
        }
    }

    /// The superblock that speaks for the array: the first in-sync member's, else the first's,
    /// else (every member removed) the last one's.
    pub fn lead_superblock(&self) -> &Superblock {
        self.machine.lead_superblock().unwrap_or(&self.retired)
    }

    /// `mdadm --detail` facts; `device` names the array in the header line.
    pub fn detail_info(&self, device: &str, homehost: Option<String>) -> DetailInfo {
        let sb = self.lead_superblock();
        let bitmap = Self::has_bitmap(sb);
        let count = |f: fn(&MemberState) -> bool| {
            self.members().iter().filter(|m| f(&m.state)).count() as u32
        };
        let active = count(|s| matches!(s, MemberState::InSync(_)));
        let spares = count(|s| matches!(s, MemberState::Spare));
        let failed = count(|s| matches!(s, MemberState::Faulty));
        let (ctime, utime, identity, preferred_minor) = match sb {
            Superblock::V1(s, _) => (
                sb1::Superblock1::time_secs(s.ctime),
                sb1::Superblock1::time_secs(s.utime),
                DetailIdentity::from_sb1(s),
                None,
            ),
            Superblock::V0(s) => (
                u64::from(s.ctime),
                u64::from(s.utime),
                DetailIdentity::from_sb0(s),
                Some(s.md_minor as i32),
            ),
        };
        let identity = match identity {
            DetailIdentity::V1 { name, uuid, .. } => DetailIdentity::V1 {
                name,
                uuid,
                events: self.events(),
            },
            DetailIdentity::V0 {
                minor_version,
                uuid,
                ..
            } => DetailIdentity::V0 {
                minor_version,
                uuid,
                events: self.events(),
            },
        };
        let disks: Vec<DetailDisk> = self
            .members()
            .iter()
            .map(|m| {
                let (major, minor) = m.dev.device_number.unwrap_or((0, 0));
                let flags = match &m.sb {
                    Superblock::V1(s, _) => {
                        (if s.devflags & sb1::DEVFLAG_WRITE_MOSTLY != 0 {
                            sb0::DISK_WRITE_MOSTLY
                        } else {
                            0
                        }) | (if s.devflags & sb1::DEVFLAG_FAILFAST != 0 {
                            sb0::DISK_FAILFAST
                        } else {
                            0
                        })
                    }
                    Superblock::V0(s) => {
                        s.this_disk.state & (sb0::DISK_WRITE_MOSTLY | sb0::DISK_FAILFAST)
                    }
                };
                let (raid_disk, state) = match m.state {
                    MemberState::InSync(slot) => {
                        (slot as i32, sb0::DISK_ACTIVE | sb0::DISK_SYNC | flags)
                    }
                    MemberState::Spare => (-1, flags),
                    MemberState::Faulty => (-1, sb0::DISK_FAULTY),
                };
                DetailDisk {
                    number: m.sb.dev_number() as i32,
                    major,
                    minor,
                    raid_disk,
                    state,
                    path: Some(m.name.to_string()),
                }
            })
            .collect();
        DetailInfo {
            device: device.to_string(),
            version: self.version().as_str().to_string(),
            ctime,
            level: sb.level(),
            layout: 0,
            chunk_size: 0,
            array_size_bytes: self.size(),
            used_dev_sectors: Some(self.component_sectors()),
            raid_disks: self.raid_disks(),
            total_devices: self.members().len() as u32,
            preferred_minor,
            persistent: true,
            bitmap: if bitmap {
                DetailBitmap::Internal
            } else {
                DetailBitmap::None
            },
            utime,
            clean: !self.is_dirty(),
            sync: self.needs_resync().then_some(SyncProgress {
                action: SyncAction::Resync,
                status: SyncStatus::Pending,
            }),
            active_devices: active,
            working_devices: active + spares,
            failed_devices: failed,
            spare_devices: spares,
            consistency_policy: Some(if bitmap {
                ConsistencyPolicy::Bitmap
            } else {
                ConsistencyPolicy::Resync
            }),
            identity: Some(identity),
            homehost,
            disks,
        }
    }
}
