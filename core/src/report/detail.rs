//! `mdadm --detail <array>`, line for line as mdadm 4.2 prints it.
//!
//! mdadm builds this report from the kernel (GET_ARRAY_INFO, GET_DISK_INFO, sysfs, /proc/mdstat)
//! plus one member's superblock. [`DetailInfo`] is that same set of facts as plain data, so the
//! array layer fills it from its own state; [`detail_array`] then does mdadm's arrangement (slots,
//! replacement pairs, spares after a blank line) and wording.

use super::examine::sb0_is_local;
use super::fields::{
    c_str, ctime24, level_name, r0_layout_name, r10_layout, r5_layout_name, r6_layout_name, Line,
    Report,
};
use super::units::human_size;
use crate::format::sb0::Superblock0;
use crate::format::sb1::Superblock1;
use crate::format::uuid::format_bytes;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Key width of detail fields ("           Version").
const W: usize = 18;
/// Upper bound on slots laid out, whatever `raid_disks` claims (md allows 1920 members).
const MAX_SLOTS: usize = 4096;

/// Member state bit (md's MD_DISK_FAULTY): the member failed.
pub const DISK_FAULTY: u32 = 1 << 0;
/// Member state bit (MD_DISK_ACTIVE): the member holds a slot and is in sync.
pub const DISK_ACTIVE: u32 = 1 << 1;
/// Member state bit (MD_DISK_SYNC): in sync.
pub const DISK_SYNC: u32 = 1 << 2;
/// Member state bit (MD_DISK_REMOVED): an empty slot.
pub const DISK_REMOVED: u32 = 1 << 3;
/// Member state bit (MD_DISK_WRITEMOSTLY).
pub const DISK_WRITE_MOSTLY: u32 = 1 << 9;
/// Member state bit (MD_DISK_FAILFAST).
pub const DISK_FAILFAST: u32 = 1 << 10;
/// Member state bit (MD_DISK_JOURNAL).
pub const DISK_JOURNAL: u32 = 1 << 18;

/// The array's write-intent bitmap, as `--detail` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DetailBitmap {
    /// No bitmap: no "Intent Bitmap" line.
    #[default]
    None,
    /// An internal bitmap ("Internal").
    Internal,
    /// A clustered internal bitmap ("Internal(Clustered)").
    Clustered,
    /// An external bitmap file, by path.
    File(String),
}

/// What the array is syncing, as /proc/mdstat names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncAction {
    /// "recovery": rebuilding a member ("recovering", "Rebuild").
    Recovery,
    /// "resync" (also a repair).
    Resync,
    /// "reshape".
    Reshape,
    /// "check".
    Check,
}

/// How far the sync is, as /proc/mdstat shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// Running, this many percent done.
    Percent(u32),
    /// Waiting for another array on the same devices ("=DELAYED").
    Delayed,
    /// Not started yet ("=PENDING", e.g. read-only).
    Pending,
    /// Done by another cluster node ("=REMOTE").
    Remote,
}

/// A sync in progress or pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    /// What is being done.
    pub action: SyncAction,
    /// How far.
    pub status: SyncStatus,
}

/// md's consistency policy (sysfs `consistency_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsistencyPolicy {
    /// "unknown"
    Unknown,
    /// "none" (RAID0, linear)
    None,
    /// "resync": a full resync after an unclean stop.
    Resync,
    /// "bitmap": only dirty bitmap chunks resync.
    Bitmap,
    /// "journal"
    Journal,
    /// "ppl"
    Ppl,
}

impl ConsistencyPolicy {
    /// The sysfs / mdadm word.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsistencyPolicy::Unknown => "unknown",
            ConsistencyPolicy::None => "none",
            ConsistencyPolicy::Resync => "resync",
            ConsistencyPolicy::Bitmap => "bitmap",
            ConsistencyPolicy::Journal => "journal",
            ConsistencyPolicy::Ppl => "ppl",
        }
    }
}

/// The superblock part of `--detail` (name, UUID, events), taken from one member's superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DetailIdentity {
    /// Superblock 1.x.
    V1 {
        /// set_name, "homehost:name", NUL padded.
        name: [u8; 32],
        /// set_uuid.
        uuid: [u8; 16],
        /// events.
        events: u64,
    },
    /// Superblock 0.90.
    V0 {
        /// minor_version (90).
        minor_version: u32,
        /// set_uuid0..3.
        uuid: [u32; 4],
        /// events.
        events: u64,
    },
}

impl DetailIdentity {
    /// From a 1.x superblock.
    pub fn from_sb1(sb: &Superblock1) -> Self {
        DetailIdentity::V1 {
            name: sb.set_name,
            uuid: sb.set_uuid,
            events: sb.events,
        }
    }

    /// From a 0.90 superblock.
    pub fn from_sb0(sb: &Superblock0) -> Self {
        DetailIdentity::V0 {
            minor_version: sb.minor_version,
            uuid: sb.set_uuid,
            events: sb.events,
        }
    }
}

/// One member as the kernel lists it (GET_DISK_INFO).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetailDisk {
    /// The member's number in the array (md's desc_nr: the 1.x dev_number, the 0.90 record).
    pub number: i32,
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Slot, or -1 (spare, faulty, not yet placed).
    pub raid_disk: i32,
    /// `DISK_*` bits as the kernel reports them: faulty; else active|sync when in sync; plus
    /// write-mostly, failfast, journal. A member rebuilding into a slot has neither active nor
    /// sync.
    pub state: u32,
    /// The device path; None prints "missing" (or nothing for 0:0).
    pub path: Option<String>,
}

/// Every fact `mdadm --detail` prints about a running array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetailInfo {
    /// The array device as named on the command line, e.g. "/dev/md0" (the header line).
    pub device: String,
    /// Metadata version as mdadm prints it: "1.2", "1.0", "0.90".
    pub version: String,
    /// Creation time, seconds since the epoch; 0 prints no line.
    pub ctime: u64,
    /// RAID level (1 for RAID1). A level without a name prints no line.
    pub level: i32,
    /// Layout (RAID 0/5/6/10 only).
    pub layout: u32,
    /// Chunk size in bytes (RAID 0/4/5/6/10 only).
    pub chunk_size: u32,
    /// Array size in bytes; 0 (not started) prints no "Array Size" and adds ", Not Started".
    pub array_size_bytes: u64,
    /// Sectors of each member in use; None prints "unknown". Printed for levels >= 1.
    pub used_dev_sectors: Option<u64>,
    /// Member slots.
    pub raid_disks: u32,
    /// Members present (nr_disks).
    pub total_devices: u32,
    /// md minor recorded in a 0.90 superblock; printed for 0.90 only (Some).
    pub preferred_minor: Option<i32>,
    /// Whether the array has superblocks.
    pub persistent: bool,
    /// The bitmap.
    pub bitmap: DetailBitmap,
    /// Last superblock update, seconds since the epoch; 0 prints no line.
    pub utime: u64,
    /// The kernel's clean flag (false while writes may be in flight: "active").
    pub clean: bool,
    /// Sync in progress (from /proc/mdstat), if any.
    pub sync: Option<SyncProgress>,
    /// Active members.
    pub active_devices: u32,
    /// Working members.
    pub working_devices: u32,
    /// Failed members.
    pub failed_devices: u32,
    /// Spare members.
    pub spare_devices: u32,
    /// Consistency policy; None prints no line.
    pub consistency_policy: Option<ConsistencyPolicy>,
    /// Name, UUID and events from a member superblock; None prints none of them.
    pub identity: Option<DetailIdentity>,
    /// The local host, for "(local to host ...)".
    pub homehost: Option<String>,
    /// Members, in any order (they are laid out by number, as mdadm walks them).
    pub disks: Vec<DetailDisk>,
}

/// mdadm's `enough()` with clean = 1: can the array run with the slots in `avail`?
fn enough(level: i32, layout: u32, avail: &[bool]) -> bool {
    let raid_disks = avail.len();
    let avail_disks = avail.iter().filter(|&&a| a).count();
    match level {
        10 => {
            let near = (layout & 255) as usize;
            let copies = near * ((layout >> 8) & 255) as usize;
            if raid_disks == 0 {
                return false;
            }
            let mut first = 0usize;
            loop {
                let mut cnt = 0;
                let mut this = first;
                for _ in 0..copies {
                    if avail[this] {
                        cnt += 1;
                    }
                    this = (this + 1) % raid_disks;
                }
                if cnt == 0 {
                    return false;
                }
                first = (first + near) % raid_disks;
                if first == 0 {
                    return true;
                }
            }
        }
        -4 => avail_disks >= 1,
        -1 | 0 => avail_disks == raid_disks,
        1 => avail_disks >= 1,
        4 if avail_disks + 1 == raid_disks && !avail[raid_disks - 1] => true,
        4 | 5 => avail_disks + 1 >= raid_disks,
        6 => avail_disks + 2 >= raid_disks,
        _ => false,
    }
}

const EMPTY_SLOT: DetailDisk = DetailDisk {
    number: -1,
    major: 0,
    minor: 0,
    raid_disk: 0,
    state: DISK_REMOVED,
    path: None,
};

/// mdadm's table: slot i at 2i, its replacement at 2i+1, everyone else after 2*raid_disks.
fn lay_out(info: &DetailInfo, slots: usize) -> Vec<DetailDisk> {
    let mut table: Vec<DetailDisk> = (0..slots * 2)
        .map(|d| DetailDisk {
            raid_disk: (d / 2) as i32,
            ..EMPTY_SLOT
        })
        .collect();
    let mut members: Vec<&DetailDisk> = info.disks.iter().collect();
    members.sort_by_key(|d| d.number);
    for disk in members {
        // mdadm skips 0:0 (an empty kernel slot); a member with a path is present even when it
        // has no device number (an image file).
        if disk.major == 0 && disk.minor == 0 && disk.path.is_none() {
            continue;
        }
        let slot = usize::try_from(disk.raid_disk)
            .ok()
            .filter(|&s| s < slots && disk.state & DISK_JOURNAL == 0);
        let free = |i: usize, t: &Vec<DetailDisk>| t[i].state == DISK_REMOVED;
        match slot {
            Some(s) if free(2 * s, &table) => table[2 * s] = disk.clone(),
            Some(s) if free(2 * s + 1, &table) => table[2 * s + 1] = disk.clone(),
            _ => table.push(disk.clone()),
        }
    }
    table
}

fn row(disk: &DetailDisk, info: &DetailInfo) -> Line {
    let raid_disks = info.raid_disks as i64;
    let rd = i64::from(disk.raid_disk);
    let mut text = if disk.number < 0 && disk.raid_disk < 0 {
        format!(
            "       -   {:5}    {:5}        -     ",
            disk.major as i32, disk.minor as i32
        )
    } else if disk.raid_disk < 0 || disk.state & DISK_JOURNAL != 0 {
        format!(
            "   {:5}   {:5}    {:5}        -     ",
            disk.number, disk.major as i32, disk.minor as i32
        )
    } else if disk.number < 0 {
        format!(
            "       -   {:5}    {:5}    {:5}     ",
            disk.major as i32, disk.minor as i32, disk.raid_disk
        )
    } else {
        format!(
            "   {:5}   {:5}    {:5}    {:5}     ",
            disk.number, disk.major as i32, disk.minor as i32, disk.raid_disk
        )
    };
    let mut words: Vec<String> = Vec::new();
    if info.raid_disks != 0 {
        let st = disk.state;
        if st & DISK_FAULTY != 0 {
            words.push("faulty".into());
        }
        if st & DISK_ACTIVE != 0 {
            words.push("active".into());
        }
        if st & DISK_SYNC != 0 {
            words.push("sync".into());
            let layout = info.layout;
            if info.level == 10 && layout & !0x1ffff == 0 {
                let nc = layout & 0xff;
                let fc = (layout >> 8) & 0xff;
                let copies = nc * fc;
                if fc == 1 && copies != 0 && info.raid_disks % copies == 0 && copies <= 26 {
                    let set = (disk.raid_disk.rem_euclid(copies as i32)) as u8;
                    words.push(format!("set-{}", char::from(b'A' + set)));
                }
            }
        }
        if st & DISK_REMOVED != 0 {
            words.push("removed".into());
        }
        if st & DISK_WRITE_MOSTLY != 0 {
            words.push("writemostly".into());
        }
        if st & DISK_FAILFAST != 0 {
            words.push("failfast".into());
        }
        if st & DISK_JOURNAL != 0 {
            words.push("journal".into());
        }
        if st & (DISK_ACTIVE | DISK_SYNC | DISK_REMOVED | DISK_FAULTY | DISK_JOURNAL) == 0 {
            words.push("spare".into());
            if rd < raid_disks && rd >= 0 {
                words.push("rebuilding".into());
            }
        }
        for w in &words {
            text.push(' ');
            text.push_str(w);
        }
    }
    let device = match &disk.path {
        Some(p) => Some(p.clone()),
        None if disk.major != 0 || disk.minor != 0 => Some(String::from("missing")),
        None => None,
    };
    if let Some(d) = &device {
        let _ = write!(text, "   {d}");
    }
    let number = if disk.number < 0 {
        String::from("-")
    } else {
        format!("{}", disk.number)
    };
    let raid_device = if disk.raid_disk < 0 || disk.state & DISK_JOURNAL != 0 {
        String::from("-")
    } else {
        format!("{}", disk.raid_disk)
    };
    let mut cells = alloc::vec![
        ("number", number),
        ("major", format!("{}", disk.major)),
        ("minor", format!("{}", disk.minor)),
        ("raid_device", raid_device),
        ("state", words.join(" ")),
    ];
    if let Some(d) = device {
        cells.push(("device", d));
    }
    Line::Row { text, cells }
}

/// `mdadm --detail` for an array described by `info`.
pub fn detail_array(info: &DetailInfo) -> Report {
    let mut r = Report::default();
    r.raw(format!("{}:", info.device));
    r.field("Version", info.version.clone(), W);
    if info.ctime != 0 {
        r.field("Creation Time", ctime24(info.ctime as i64), W);
    }
    if let Some(n) = level_name(info.level) {
        r.field("Raid Level", n, W);
    }
    if info.array_size_bytes != 0 {
        r.field(
            "Array Size",
            format!(
                "{}{}",
                info.array_size_bytes >> 10,
                human_size(info.array_size_bytes)
            ),
            W,
        );
    }
    if info.level >= 1 {
        match info.used_dev_sectors {
            Some(s) if s > 0 => r.field(
                "Used Dev Size",
                format!("{}{}", s / 2, human_size(s << 9)),
                W,
            ),
            _ => r.field("Used Dev Size", "unknown", W),
        }
    }
    if info.raid_disks != 0 {
        r.field("Raid Devices", format!("{}", info.raid_disks as i32), W);
    }
    r.field("Total Devices", format!("{}", info.total_devices as i32), W);
    if let Some(m) = info.preferred_minor {
        r.field("Preferred Minor", format!("{m}"), W);
    }
    r.field(
        "Persistence",
        if info.persistent {
            "Superblock is persistent"
        } else {
            "Superblock is not persistent"
        },
        W,
    );
    r.blank();
    match &info.bitmap {
        DetailBitmap::None => {}
        DetailBitmap::Internal => {
            r.field("Intent Bitmap", "Internal", W);
            r.blank();
        }
        DetailBitmap::Clustered => {
            r.field("Intent Bitmap", "Internal(Clustered)", W);
            r.blank();
        }
        DetailBitmap::File(p) => {
            r.field("Intent Bitmap", p.clone(), W);
            r.blank();
        }
    }
    if info.utime != 0 {
        r.field("Update Time", ctime24(info.utime as i64), W);
    }

    let slots = (info.raid_disks as usize).min(MAX_SLOTS);
    let table = lay_out(info, slots);
    if info.raid_disks != 0 {
        let avail: Vec<bool> = (0..slots)
            .map(|d| (table[2 * d].state | table[2 * d + 1].state) & DISK_SYNC != 0)
            .collect();
        let degraded = if avail.iter().all(|&a| a) && slots == info.raid_disks as usize {
            ""
        } else if !enough(info.level, info.layout, &avail) {
            ", FAILED"
        } else {
            ", degraded"
        };
        let word = if info.clean { "clean" } else { "active" };
        let mut v = format!("{word}{degraded}");
        if let Some(sync) = info.sync {
            v.push_str(match sync.action {
                SyncAction::Recovery => ", recovering",
                SyncAction::Resync => ", resyncing",
                SyncAction::Reshape => ", reshaping",
                SyncAction::Check => ", checking",
            });
        }
        if info.array_size_bytes == 0 {
            v.push_str(", Not Started");
        }
        match info.sync.map(|s| s.status) {
            Some(SyncStatus::Delayed) => v.push_str(" (DELAYED)"),
            Some(SyncStatus::Pending) => v.push_str(" (PENDING)"),
            Some(SyncStatus::Remote) => v.push_str(" (REMOTE)"),
            _ => {}
        }
        v.push(' ');
        r.field("State", v, W);
    }
    r.field(
        "Active Devices",
        format!("{}", info.active_devices as i32),
        W,
    );
    r.field(
        "Working Devices",
        format!("{}", info.working_devices as i32),
        W,
    );
    r.field(
        "Failed Devices",
        format!("{}", info.failed_devices as i32),
        W,
    );
    r.field("Spare Devices", format!("{}", info.spare_devices as i32), W);
    r.blank();
    match info.level {
        5 => r.field(
            "Layout",
            r5_layout_name(info.layout).unwrap_or("-unknown-"),
            W,
        ),
        0 if info.layout != 0 => r.field(
            "Layout",
            r0_layout_name(info.layout).unwrap_or("-unknown-"),
            W,
        ),
        6 => r.field(
            "Layout",
            r6_layout_name(info.layout).unwrap_or("-unknown-"),
            W,
        ),
        10 => {
            let t = r10_layout(info.layout);
            match t.strip_prefix(' ') {
                Some(rest) => r.field("Layout", String::from(rest), W),
                None => r.raw(format!("{:>W$} :{t}", "Layout")),
            }
        }
        _ => {}
    }
    match info.level {
        0 | 4 | 5 | 6 | 10 if info.chunk_size != 0 => {
            r.field("Chunk Size", format!("{}K", info.chunk_size / 1024), W);
            r.blank();
        }
        -1 => {
            r.field("Rounding", format!("{}K", info.chunk_size / 1024), W);
            r.blank();
        }
        _ => {}
    }
    if info.raid_disks != 0 {
        if let Some(p) = info.consistency_policy {
            r.field("Consistency Policy", p.as_str(), W);
            r.blank();
        }
    }
    if let Some(SyncProgress {
        action,
        status: SyncStatus::Percent(pct),
    }) = info.sync
    {
        let word = match action {
            SyncAction::Recovery => "Rebuild",
            SyncAction::Resync => "Resync",
            SyncAction::Reshape => "Reshape",
            SyncAction::Check => "Check",
        };
        r.field(format!("{word} Status"), format!("{pct}% complete"), W);
        // mdadm prints reshape details here; this crate does not reshape.
        r.blank();
    }
    match &info.identity {
        Some(DetailIdentity::V1 { name, uuid, events }) => {
            let mut n = c_str(name);
            if let Some(h) = info.homehost.as_deref() {
                let l = h.len();
                if l > 0 && l < 32 && name[l] == b':' && &name[..l] == h.as_bytes() {
                    let _ = write!(n, "  (local to host {h})");
                }
            }
            r.field("Name", n, W);
            r.field("UUID", format_bytes(uuid), W);
            r.field("Events", format!("{events}"), W);
            r.blank();
        }
        Some(DetailIdentity::V0 {
            minor_version,
            uuid,
            events,
        }) => {
            let mut u = if *minor_version >= 90 {
                format!(
                    "{:08x}:{:08x}:{:08x}:{:08x}",
                    uuid[0], uuid[1], uuid[2], uuid[3]
                )
            } else {
                format!("{:08x}", uuid[0])
            };
            if sb0_is_local(uuid, info.homehost.as_deref()) {
                let _ = write!(
                    u,
                    " (local to host {})",
                    info.homehost.as_deref().unwrap_or("")
                );
            }
            r.field("UUID", u, W);
            let (hi, lo) = ((events >> 32) as u32 as i32, *events as u32 as i32);
            r.field("Events", format!("{hi}.{lo}"), W);
            r.blank();
        }
        None => {}
    }
    if info.raid_disks != 0 {
        r.raw("    Number   Major   Minor   RaidDevice State");
    } else {
        r.raw("    Number   Major   Minor   RaidDevice");
    }
    for (d, disk) in table.iter().enumerate() {
        let empty = disk.major == 0 && disk.minor == 0 && disk.path.is_none();
        if empty && (d >= slots * 2 || d % 2 == 1) {
            continue;
        }
        if d == slots * 2 {
            r.blank();
        }
        r.lines.push(row(disk, info));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn disk(number: i32, minor: u32, raid_disk: i32, state: u32) -> DetailDisk {
        DetailDisk {
            number,
            major: 8,
            minor,
            raid_disk,
            state,
            path: Some(format!("/dev/sd{}", char::from(b'a' + (minor / 16) as u8))),
        }
    }

    fn base() -> DetailInfo {
        DetailInfo {
            device: "/dev/md0".to_string(),
            version: "1.2".to_string(),
            ctime: 1_795_619_366,
            level: 1,
            layout: 0,
            chunk_size: 0,
            array_size_bytes: 31744 * 1024,
            used_dev_sectors: Some(63488),
            raid_disks: 2,
            total_devices: 2,
            preferred_minor: None,
            persistent: true,
            bitmap: DetailBitmap::None,
            utime: 1_795_619_367,
            clean: true,
            sync: None,
            active_devices: 2,
            working_devices: 2,
            failed_devices: 0,
            spare_devices: 0,
            consistency_policy: Some(ConsistencyPolicy::Resync),
            identity: None,
            homehost: None,
            disks: alloc::vec![
                disk(0, 0, 0, DISK_ACTIVE | DISK_SYNC),
                disk(1, 16, 1, DISK_ACTIVE | DISK_SYNC),
            ],
        }
    }

    fn table(r: &Report) -> Vec<String> {
        let t = r.to_text();
        let start = t.find("    Number").unwrap();
        t[start..].lines().map(String::from).collect()
    }

    #[test]
    fn clean_optimal() {
        let r = detail_array(&base());
        assert_eq!(r.get("State"), Some("clean "));
        assert!(r.to_text().contains(
            "\n       Update Time : Wed Nov 25 15:09:27 2026\n             State : clean \n"
        ));
        assert_eq!(
            table(&r)[1],
            "       0       8        0        0      active sync   /dev/sda"
        );
    }

    #[test]
    fn rebuilding_spare_and_recovery_status() {
        let mut i = base();
        i.disks[1].state = 0; // in its slot, not yet in sync
        i.sync = Some(SyncProgress {
            action: SyncAction::Recovery,
            status: SyncStatus::Percent(42),
        });
        let r = detail_array(&i);
        assert_eq!(r.get("State"), Some("clean, degraded, recovering "));
        let text = r.to_text();
        assert!(text.contains(
            "Consistency Policy : resync\n\n    Rebuild Status : 42% complete\n\n    Number"
        ));
        assert_eq!(
            table(&r)[2],
            "       1       8       16        1      spare rebuilding   /dev/sdb"
        );
    }

    #[test]
    fn faulty_member_and_spares_after_blank() {
        let mut i = base();
        i.disks[1] = disk(1, 16, -1, DISK_FAULTY);
        i.disks.push(disk(2, 32, -1, 0));
        let r = detail_array(&i);
        assert_eq!(r.get("State"), Some("clean, degraded "));
        assert_eq!(
            table(&r),
            [
                "    Number   Major   Minor   RaidDevice State",
                "       0       8        0        0      active sync   /dev/sda",
                "       -       0        0        1      removed",
                "",
                "       1       8       16        -      faulty   /dev/sdb",
                "       2       8       32        -      spare   /dev/sdc",
            ]
        );
    }

    #[test]
    fn all_gone_is_failed_and_unnamed_is_missing() {
        let mut i = base();
        i.level = 5;
        i.raid_disks = 3;
        i.disks = alloc::vec![disk(0, 0, 0, DISK_ACTIVE | DISK_SYNC)];
        i.disks[0].path = None;
        let r = detail_array(&i);
        assert_eq!(r.get("State"), Some("clean, FAILED "));
        assert_eq!(
            table(&r)[1],
            "       0       8        0        0      active sync   missing"
        );
        assert_eq!(r.get("Layout"), Some("left-asymmetric"));
    }

    #[test]
    fn replacement_shares_the_slot() {
        let mut i = base();
        i.disks.push(disk(2, 32, 0, 0));
        i.sync = Some(SyncProgress {
            action: SyncAction::Recovery,
            status: SyncStatus::Pending,
        });
        i.array_size_bytes = 0;
        let r = detail_array(&i);
        assert_eq!(
            r.get("State"),
            Some("clean, recovering, Not Started (PENDING) ")
        );
        assert_eq!(r.get("Array Size"), None);
        assert_eq!(
            table(&r),
            [
                "    Number   Major   Minor   RaidDevice State",
                "       0       8        0        0      active sync   /dev/sda",
                "       2       8       32        0      spare rebuilding   /dev/sdc",
                "       1       8       16        1      active sync   /dev/sdb",
            ]
        );
    }

    #[test]
    fn writemostly_failfast_and_json_cells() {
        let mut i = base();
        i.disks[1].state |= DISK_WRITE_MOSTLY | DISK_FAILFAST;
        let r = detail_array(&i);
        let rows: Vec<_> = r.rows().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1][4],
            ("state", "active sync writemostly failfast".to_string())
        );
        assert_eq!(rows[1][5], ("device", "/dev/sdb".to_string()));
    }

    #[test]
    fn identity_v1_local_and_v0_events() {
        let mut i = base();
        let mut name = [0u8; 32];
        name[..13].copy_from_slice(b"mdlab:fixture");
        i.identity = Some(DetailIdentity::V1 {
            name,
            uuid: [0x11; 16],
            events: 18,
        });
        i.homehost = Some("mdlab".to_string());
        let r = detail_array(&i);
        assert_eq!(r.get("Name"), Some("mdlab:fixture  (local to host mdlab)"));
        assert_eq!(r.get("UUID"), Some("11111111:11111111:11111111:11111111"));
        assert_eq!(r.get("Events"), Some("18"));
        i.identity = Some(DetailIdentity::V0 {
            minor_version: 90,
            uuid: [1, 2, 3, 4],
            events: (5 << 32) | 0xffff_fffe,
        });
        let r = detail_array(&i);
        assert_eq!(r.get("UUID"), Some("00000001:00000002:00000003:00000004"));
        assert_eq!(r.get("Events"), Some("5.-2"));
    }

    #[test]
    fn huge_raid_disks_is_bounded() {
        let mut i = base();
        i.raid_disks = u32::MAX;
        i.level = 10;
        i.layout = 0x102;
        let r = detail_array(&i);
        assert!(
            r.get("State").unwrap().contains("degraded")
                || r.get("State").unwrap().contains("FAILED")
        );
    }
}
