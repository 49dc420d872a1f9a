//! `mdadm --examine <device>` for superblocks 1.x and 0.90, line for line as mdadm 4.2 prints it.
//!
//! The superblock is taken as read, untrusted: nothing here can panic or loop without bound on a
//! corrupt one, and where mdadm's C arithmetic wraps on absurd values the same wrapped text is
//! printed. Facts mdadm gathers besides the superblock (device size, the bitmap header, the home
//! host, device names) come in through [`ExamineOpts`].

use super::fields::{
    c_str, ctime24, level_name, r0_layout_name, r10_layout, r5_layout_name, r6_layout_name, Line,
    Report,
};
use super::units::human_size;
use crate::format::sb0::{self, Disk0, Superblock0};
use crate::format::sb1::{self, Superblock1};
use crate::format::sha1::sha1;
use crate::format::uuid::format_bytes;
use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Key width of examine fields ("          Magic").
const W: usize = 15;
/// Key width of the two last 1.x lines ("   Device Role").
const W_ROLE: usize = 14;
/// The write-intent bitmap magic ("bitm").
const BITMAP_MAGIC: u32 = 0x6d74_6962;
/// feature_map bit: new_offset is valid (reshape moving the data).
const FEATURE_NEW_OFFSET: u32 = 64;
/// feature_map bit: multiple partial-parity logs.
const FEATURE_MULTIPLE_PPLS: u32 = 2048;
/// feature_map bit: RAID0 layout is recorded.
const FEATURE_RAID0_LAYOUT: u32 = 4096;
/// Roles below or at this are slots (mdadm's MD_DISK_ROLE_MAX).
const ROLE_MAX: u16 = 0xff00;
/// Array State never prints more columns than there can be slots.
const MAX_STATE_COLUMNS: u64 = ROLE_MAX as u64;

/// What `--examine` needs besides the superblock.
#[derive(Clone, Copy, Default)]
pub struct ExamineOpts<'a> {
    /// The device as named on the command line; printed as the `"/dev/vda:"` header line.
    /// None prints no header.
    pub device: Option<&'a str>,
    /// The local host name: an array whose name (1.x) or UUID (0.90) belongs to it is marked
    /// "(local to host NAME)". mdadm uses `--homehost`, else the config file, else the hostname.
    pub homehost: Option<&'a str>,
    /// Size of the examined device in sectors (1.1/1.2 "Unused Space ... after=").
    pub dev_sectors: u64,
    /// When the superblock claims a bitmap: at least the first 256 bytes read at the bitmap
    /// location (1.x: superblock sector + bitmap_offset; 0.90: superblock sector + 8). Like mdadm,
    /// a bitmap whose magic or UUID does not match (or that could not be read: pass `Some(&[])`)
    /// makes the report behave as if the superblock's bitmap bit were clear, checksum included.
    /// None: not read; the bitmap counts as valid, of unknown size.
    pub bitmap_header: Option<&'a [u8]>,
    /// Maps a device number (major, minor) to its path, for the 0.90 device table. Without it,
    /// or when it answers None, no name is printed (what mdadm does for a device it cannot find
    /// under /dev). (0, 0) is never looked up.
    pub dev_name: Option<&'a dyn Fn(u32, u32) -> Option<String>>,
}

impl core::fmt::Debug for ExamineOpts<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExamineOpts")
            .field("device", &self.device)
            .field("homehost", &self.homehost)
            .field("dev_sectors", &self.dev_sectors)
            .field("bitmap_header", &self.bitmap_header.map(<[u8]>::len))
            .field("dev_name", &self.dev_name.is_some())
            .finish()
    }
}

fn rd32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

fn rd64(b: &[u8], off: usize) -> u64 {
    u64::from(rd32(b, off)) | (u64::from(rd32(b, off + 4)) << 32)
}

/// The bitmap header facts examine uses.
struct BitmapFacts {
    chunksize: u32,
    sync_size: u64,
    nodes: u32,
    cluster_name: String,
}

impl BitmapFacts {
    /// Parses the header when it is a bitmap of the array `uuid`; None otherwise.
    fn parse(b: &[u8], uuid: &[u8; 16]) -> Option<Self> {
        if b.len() < 256 || rd32(b, 0) != BITMAP_MAGIC || b.get(8..24) != Some(&uuid[..]) {
            return None;
        }
        Some(BitmapFacts {
            sync_size: rd64(b, 40),
            chunksize: rd32(b, 52),
            nodes: rd32(b, 68),
            cluster_name: c_str(b.get(72..136).unwrap_or(&[])),
        })
    }

    /// mdadm's calc_bitmap_size(bms, 4096): header plus one bit per chunk, rounded up to 4 KiB,
    /// truncated to 32 bits as mdadm returns it.
    fn bytes(&self) -> u64 {
        if self.chunksize == 0 {
            return 0;
        }
        let cs = u64::from(self.chunksize);
        let bits = self.sync_size.wrapping_mul(512).wrapping_add(cs - 1) / cs;
        let bytes = ((bits.wrapping_add(7)) >> 3).wrapping_add(256);
        let rounded = bytes.wrapping_add(4095) & !4095;
        u64::from(rounded as u32)
    }
}

/// The reshape fields of a 1.x superblock (offsets 100..128).
struct Reshape1 {
    new_level: u32,
    position: u64,
    delta_disks: i32,
    new_layout: u32,
    new_chunk: u32,
    new_offset: i32,
}

impl Reshape1 {
    fn of(sb: &Superblock1) -> Self {
        let r = &sb.reshape;
        Reshape1 {
            new_level: rd32(r, 0),
            position: rd64(r, 4),
            delta_disks: rd32(r, 12) as i32,
            new_layout: rd32(r, 16),
            new_chunk: rd32(r, 20),
            new_offset: rd32(r, 24) as i32,
        }
    }
}

/// Where the 1.x superblock leaves room around the data (mdadm's getinfo_super1 rules).
fn unused_space(sb: &Superblock1, bitmap: Option<&BitmapFacts>, dev_sectors: u64) -> (u64, u64) {
    let features = sb.feature_map;
    let super_offset = sb.super_offset;
    let data_offset = sb.data_offset;
    let bitmap_offset: i64 = if features & sb1::FEATURE_BITMAP_OFFSET != 0 {
        i64::from(sb.bitmap_offset)
    } else {
        0
    };
    let ppl_on = features & sb1::FEATURE_BITMAP_OFFSET == 0
        && features & (sb1::FEATURE_PPL | FEATURE_MULTIPLE_PPLS) != 0;
    let (ppl_offset, ppl_size) = if ppl_on {
        let raw = sb.bitmap_offset as u32;
        (u64::from(raw & 0xffff), u64::from(raw >> 16))
    } else {
        (0, 0)
    };
    // mdadm uses the used size for redundant levels and the whole data area otherwise.
    let data_size = if sb.level <= 0 { sb.data_size } else { sb.size };
    let bblog = sb.bblog_offset != 0 && sb.bblog_size != 0;
    let bblog_at = super_offset.wrapping_add(sb.bblog_offset as i64 as u64);
    let (before, mut after);
    if data_offset < super_offset {
        // 1.0: data first, metadata at the end.
        before = data_offset;
        let mut end = super_offset;
        if bblog && bblog_at < end {
            end = bblog_at;
        }
        let meta = super_offset
            .wrapping_add(bitmap_offset as u64)
            .wrapping_add(ppl_offset);
        if meta < end {
            end = meta;
        }
        after = if data_offset.wrapping_add(data_size) < end {
            end.wrapping_sub(data_size).wrapping_sub(data_offset)
        } else {
            0
        };
    } else {
        // 1.1/1.2: metadata first. (mdadm forgets super_offset when ending the bitmap.)
        let mut earliest = super_offset.wrapping_add(72);
        if bitmap_offset > 0 {
            let size = bitmap.map_or(0, |b| b.bytes() / 512);
            let bmend = (bitmap_offset as u64).wrapping_add(size);
            if bmend > earliest {
                earliest = bmend;
            }
        } else if ppl_offset > 0 {
            let pplend = ppl_offset + ppl_size;
            if pplend > earliest {
                earliest = pplend;
            }
        }
        if bblog {
            let bbend = bblog_at.wrapping_add(u64::from(sb.bblog_size));
            if bbend > earliest {
                earliest = bbend;
            }
        }
        before = data_offset.saturating_sub(earliest);
        after = dev_sectors
            .wrapping_sub(data_size)
            .wrapping_sub(data_offset);
    }
    if before == 0 && after == 0 {
        // mdadm's marker for "no room, but offset changes are supported": hides the line.
        after = 1;
    }
    if sb.role() == Some(sb1::ROLE_JOURNAL) {
        after = dev_sectors.wrapping_sub(data_offset) % 8;
    }
    (before, after)
}

/// Whether the 1.x name "homehost:name" belongs to `homehost`.
fn sb1_is_local(name: &[u8; 32], homehost: Option<&str>) -> bool {
    let Some(h) = homehost else { return false };
    let h = h.as_bytes();
    let l = h.len();
    l > 0 && l < 32 && name[l] == b':' && &name[..l] == h
}

/// Whether a 0.90 UUID was derived from `homehost` (its last 8 bytes are the host's SHA-1).
pub(crate) fn sb0_is_local(set_uuid: &[u32; 4], homehost: Option<&str>) -> bool {
    let Some(h) = homehost else { return false };
    let hash = sha1(h.as_bytes());
    let mut tail = [0u8; 8];
    tail[..4].copy_from_slice(&set_uuid[2].to_le_bytes());
    tail[4..].copy_from_slice(&set_uuid[3].to_le_bytes());
    tail == hash[..8]
}

/// `mdadm --examine` for a 1.x superblock.
pub fn examine_sb1(sb: &Superblock1, opts: &ExamineOpts<'_>) -> Report {
    let mut r = Report::default();
    if let Some(d) = opts.device {
        r.raw(format!("{d}:"));
    }
    // mdadm drops the bitmap feature bit in memory when the bitmap does not check out; every
    // later line (and the checksum comparison) sees the changed superblock.
    let mut sb_view: Cow<'_, Superblock1> = Cow::Borrowed(sb);
    let mut bitmap = None;
    if sb.feature_map & sb1::FEATURE_BITMAP_OFFSET != 0 {
        if let Some(hdr) = opts.bitmap_header {
            bitmap = BitmapFacts::parse(hdr, &sb.set_uuid);
            if bitmap.is_none() {
                sb_view.to_mut().feature_map &= !sb1::FEATURE_BITMAP_OFFSET;
            }
        }
    }
    let sb = sb_view.as_ref();
    let expected_csum = sb.compute_checksum();
    let features = sb.feature_map;
    let level = sb.level as u32; // mdadm compares the level unsigned here
    let raid_disks = sb.raid_disks;

    r.field("Magic", format!("{:08x}", crate::format::MD_MAGIC), W);
    let minor = if sb.super_offset <= 4 {
        "1.1"
    } else if sb.super_offset <= 8 {
        "1.2"
    } else {
        "1.0"
    };
    r.field("Version", minor, W);
    r.field("Feature Map", format!("{:#x}", features), W);
    r.field("Array UUID", format_bytes(&sb.set_uuid), W);
    let mut name = c_str(&sb.set_name);
    if sb1_is_local(&sb.set_name, opts.homehost) {
        let _ = write!(name, "  (local to host {})", opts.homehost.unwrap_or(""));
    }
    r.field("Name", name, W);
    if let Some(b) = &bitmap {
        if b.nodes > 0 && features & sb1::FEATURE_BITMAP_OFFSET != 0 {
            r.field("Cluster Name", format!("{:<64}", b.cluster_name), W);
        }
    }
    r.field(
        "Creation Time",
        ctime24(Superblock1::time_secs(sb.ctime) as i64),
        W,
    );
    r.field("Raid Level", level_name(sb.level).unwrap_or("-unknown-"), W);
    r.field("Raid Devices", format!("{}", raid_disks as i32), W);
    r.blank();
    r.field(
        "Avail Dev Size",
        format!("{} sectors{}", sb.data_size, human_size(sb.data_size << 9)),
        W,
    );
    if level > 0 {
        let (ddsks, denom): (i32, i64) = match level {
            1 => (1, 1),
            4 | 5 => ((raid_disks as i32).wrapping_sub(1), 1),
            6 => ((raid_disks as i32).wrapping_sub(2), 1),
            10 => (
                raid_disks as i32,
                i64::from(sb.layout & 255) * i64::from((sb.layout >> 8) & 255),
            ),
            _ => (0, 1),
        };
        if ddsks != 0 && denom != 0 {
            let asize = ((sb.size as i64) << 9).wrapping_mul(i64::from(ddsks)) / denom;
            r.field(
                "Array Size",
                format!("{} KiB{}", (asize >> 10) as u64, human_size(asize as u64)),
                W,
            );
        }
        if sb.size != sb.data_size {
            r.field(
                "Used Dev Size",
                format!("{} sectors{}", sb.size, human_size(sb.size << 9)),
                W,
            );
        }
    }
    if sb.data_offset != 0 {
        r.field("Data Offset", format!("{} sectors", sb.data_offset), W);
    }
    let reshape = Reshape1::of(sb);
    if reshape.new_offset != 0 && features & FEATURE_NEW_OFFSET != 0 {
        let off = sb
            .data_offset
            .wrapping_add(reshape.new_offset as i64 as u64);
        r.field("New Offset", format!("{off} sectors"), W);
    }
    r.field("Super Offset", format!("{} sectors", sb.super_offset), W);
    if features & sb1::FEATURE_RECOVERY_OFFSET != 0 {
        r.field(
            "Recovery Offset",
            format!("{} sectors", sb.recovery_offset),
            W,
        );
    }
    let (before, after) = unused_space(sb, bitmap.as_ref(), opts.dev_sectors);
    if after != 1 && features & FEATURE_NEW_OFFSET == 0 {
        r.field(
            "Unused Space",
            format!("before={before} sectors, after={after} sectors"),
            W,
        );
    }
    r.field("State", if sb.is_clean() { "clean" } else { "active" }, W);
    r.field("Device UUID", format_bytes(&sb.device_uuid), W);
    r.blank();
    if features & sb1::FEATURE_BITMAP_OFFSET != 0 {
        r.field(
            "Internal Bitmap",
            format!("{} sectors from superblock", sb.bitmap_offset),
            W,
        );
    } else if features & (sb1::FEATURE_PPL | FEATURE_MULTIPLE_PPLS) != 0 {
        let raw = sb.bitmap_offset as u32;
        r.field(
            "PPL",
            format!(
                "{} sectors at offset {} sectors from superblock",
                raw >> 16,
                raw & 0xffff
            ),
            W,
        );
    }
    let mut delta_extra: u64 = 0;
    if features & sb1::FEATURE_RESHAPE_ACTIVE != 0 {
        r.field(
            "Reshape pos'n",
            format!(
                "{}{}",
                reshape.position / 2,
                human_size(reshape.position << 9)
            ),
            W,
        );
        if reshape.delta_disks != 0 {
            let rd = raid_disks as i32;
            r.field(
                "Delta Devices",
                format!(
                    "{} ({}->{})",
                    reshape.delta_disks,
                    rd.wrapping_sub(reshape.delta_disks),
                    rd
                ),
                W,
            );
            if reshape.delta_disks < 0 {
                delta_extra = u64::from(reshape.delta_disks.unsigned_abs());
            }
        }
        if reshape.new_level != level {
            r.field(
                "New Level",
                level_name(reshape.new_level as i32).unwrap_or("-unknown-"),
                W,
            );
        }
        if reshape.new_layout != sb.layout {
            if let Some(l) = layout_for_level("New Layout", level as i32, reshape.new_layout) {
                r.lines.push(l);
            }
        }
        if reshape.new_chunk != sb.chunksize {
            r.field(
                "New Chunksize",
                format!("{}K", (reshape.new_chunk / 2) as i32),
                W,
            );
        }
        r.blank();
    }
    if sb.devflags != 0 {
        let mut flags = String::new();
        if sb.devflags & sb1::DEVFLAG_WRITE_MOSTLY != 0 {
            flags.push_str(" write-mostly");
        }
        if sb.devflags & sb1::DEVFLAG_FAILFAST != 0 {
            flags.push_str(" failfast");
        }
        r.lines.push(layout_line("Flags", flags, W));
    }
    r.field(
        "Update Time",
        ctime24(Superblock1::time_secs(sb.utime) as i64),
        W,
    );
    if sb.bblog_size != 0 && sb.bblog_offset != 0 {
        let mut v = format!(
            "{} entries available at offset {} sectors",
            u32::from(sb.bblog_size) * 512 / 8,
            sb.bblog_offset
        );
        if features & sb1::FEATURE_BAD_BLOCKS != 0 {
            v.push_str(" - bad blocks present.");
        }
        r.field("Bad Block Log", v, W);
    }
    if expected_csum == sb.sb_csum {
        r.field("Checksum", format!("{:x} - correct", sb.sb_csum), W);
    } else {
        r.field(
            "Checksum",
            format!("{:x} - expected {:x}", sb.sb_csum, expected_csum),
            W,
        );
    }
    r.field("Events", format!("{}", sb.events), W);
    r.blank();
    let layout_name = match level {
        0 if features & FEATURE_RAID0_LAYOUT != 0 => {
            Some(r0_layout_name(sb.layout).unwrap_or("-unknown-"))
        }
        5 => Some(r5_layout_name(sb.layout).unwrap_or("-unknown-")),
        6 => Some(r6_layout_name(sb.layout).unwrap_or("-unknown-")),
        _ => None,
    };
    if let Some(n) = layout_name {
        r.field("Layout", n, W);
    }
    if level == 10 {
        r.lines
            .push(layout_line("Layout", r10_layout(sb.layout), W));
    }
    match level {
        0 | 4 | 5 | 6 | 10 => r.field("Chunk Size", format!("{}K", sb.chunksize / 2), W),
        u32::MAX => r.field("Rounding", format!("{}K", sb.chunksize / 2), W),
        _ => {}
    }
    r.blank();

    // mdadm treats a dev_number past max_dev as a spare.
    let role = sb.role().unwrap_or(sb1::ROLE_SPARE);
    let role_text = if role >= sb1::ROLE_FAULTY {
        String::from("spare")
    } else if role == sb1::ROLE_JOURNAL {
        String::from("Journal")
    } else if features & sb1::FEATURE_REPLACEMENT != 0 {
        format!("Replacement device {role}")
    } else {
        format!("Active device {role}")
    };
    r.field("Device Role", role_text, W_ROLE);

    let columns = (u64::from(raid_disks) + delta_extra).min(MAX_STATE_COLUMNS);
    let mut inconsistent = false;
    let mut state = String::new();
    let mut counts = alloc::vec![0u32; columns as usize];
    for &role in &sb.dev_roles {
        if let Some(c) = counts.get_mut(usize::from(role)) {
            *c += 1;
        }
    }
    for &cnt in &counts {
        state.push(match cnt {
            2 if level > 0 => 'R',
            1 => 'A',
            0 => '.',
            _ => {
                inconsistent = true;
                '?'
            }
        });
    }
    state.push_str(" ('A' == active, '.' == missing, 'R' == replacing)");
    r.field("Array State", state, W_ROLE);
    let limit = u64::from(raid_disks) + delta_extra;
    if sb
        .dev_roles
        .iter()
        .any(|&role| role <= ROLE_MAX && u64::from(role) > limit)
    {
        inconsistent = true;
    }
    if inconsistent {
        r.raw("WARNING Array state is inconsistent - each number should appear only once");
        let mut s = String::new();
        for (d, &role) in sb.dev_roles.iter().enumerate() {
            if role >= sb1::ROLE_FAULTY {
                let _ = write!(s, " {d}:-");
            } else {
                let _ = write!(s, " {d}:{role}");
            }
        }
        r.raw(s);
    }
    r
}

/// A line mdadm prints as `"key :"` followed by text that brings its own leading space
/// (Flags, RAID10 layouts): a field when there is text, else the bare key.
/// The layout line mdadm prints for RAID5/6/10 (`key` is "Layout" or "New Layout"); other
/// levels have none.
fn layout_for_level(key: &'static str, level: i32, layout: u32) -> Option<Line> {
    match level {
        5 => Some(Line::field(
            key,
            r5_layout_name(layout).unwrap_or("-unknown-"),
            W,
        )),
        6 => Some(Line::field(
            key,
            r6_layout_name(layout).unwrap_or("-unknown-"),
            W,
        )),
        10 => Some(layout_line(key, r10_layout(layout), W)),
        _ => None,
    }
}

fn layout_line(key: &'static str, text: String, width: usize) -> Line {
    match text.strip_prefix(' ') {
        Some(rest) => Line::field(key, rest, width),
        None if text.is_empty() => Line::Raw(format!("{key:>width$} :")),
        // e.g. "NO REDUNDANCY" glued to the colon, as mdadm prints it.
        None => Line::Raw(format!("{key:>width$} :{text}")),
    }
}

/// `mdadm --examine` for a 0.90 superblock.
pub fn examine_sb0(sb: &Superblock0, opts: &ExamineOpts<'_>) -> Report {
    let mut r = Report::default();
    if let Some(d) = opts.device {
        r.raw(format!("{d}:"));
    }
    // As for 1.x, a bitmap that does not check out clears the "bitmap present" bit in memory.
    let mut sb_view: Cow<'_, Superblock0> = Cow::Borrowed(sb);
    if sb.state & sb0::STATE_BITMAP_PRESENT != 0 {
        if let Some(hdr) = opts.bitmap_header {
            if BitmapFacts::parse(hdr, &sb.bitmap_uuid()).is_none() {
                sb_view.to_mut().state &= !sb0::STATE_BITMAP_PRESENT;
            }
        }
    }
    let sb = sb_view.as_ref();
    let expected_csum = sb.compute_checksum();
    r.field("Magic", format!("{:08x}", crate::format::MD_MAGIC), W);
    r.field(
        "Version",
        format!(
            "{}.{:02}.{:02}",
            sb.major_version as i32, sb.minor_version as i32, sb.patch_version as i32
        ),
        W,
    );
    let u = &sb.set_uuid;
    if sb.minor_version >= 90 {
        let mut v = format!("{:08x}:{:08x}:{:08x}:{:08x}", u[0], u[1], u[2], u[3]);
        if sb0_is_local(u, opts.homehost) {
            let _ = write!(v, " (local to host {})", opts.homehost.unwrap_or(""));
        }
        r.field("UUID", v, W);
    } else {
        r.field("UUID", format!("{:08x}", u[0]), W);
    }
    if rd32(&sb.raw[..], 48) != 0 {
        r.field("Eedk", "not persistent", W);
    }
    r.field("Creation Time", ctime24(i64::from(sb.ctime)), W);
    r.field("Raid Level", level_name(sb.level).unwrap_or("-unknown-"), W);
    if sb.level > 0 {
        r.field(
            "Used Dev Size",
            format!("{}{}", sb.size as i32, human_size(u64::from(sb.size) << 10)),
            W,
        );
        let (ddsks, denom): (i32, i64) = match sb.level {
            1 => (1, 1),
            4 | 5 => ((sb.raid_disks as i32).wrapping_sub(1), 1),
            6 => ((sb.raid_disks as i32).wrapping_sub(2), 1),
            10 => (
                sb.raid_disks as i32,
                i64::from(sb.layout & 255) * i64::from((sb.layout >> 8) & 255),
            ),
            _ => (0, 1),
        };
        if ddsks != 0 && denom != 0 {
            let asize = (i64::from(sb.size) << 10).wrapping_mul(i64::from(ddsks)) / denom;
            r.field(
                "Array Size",
                format!("{}{}", (asize >> 10) as u64, human_size(asize as u64)),
                W,
            );
        }
    }
    r.field("Raid Devices", format!("{}", sb.raid_disks as i32), W);
    r.field("Total Devices", format!("{}", sb.nr_disks as i32), W);
    r.field("Preferred Minor", format!("{}", sb.md_minor as i32), W);
    r.blank();
    // Reshape fields exist only from 0.91, which this crate's parser refuses; nothing to print.
    r.field("Update Time", ctime24(i64::from(sb.utime)), W);
    r.field("State", if sb.is_clean() { "clean" } else { "active" }, W);
    if sb.state & sb0::STATE_BITMAP_PRESENT != 0 {
        r.field("Internal Bitmap", "present", W);
    }
    r.field("Active Devices", format!("{}", sb.active_disks as i32), W);
    r.field("Working Devices", format!("{}", sb.working_disks as i32), W);
    r.field("Failed Devices", format!("{}", sb.failed_disks as i32), W);
    r.field("Spare Devices", format!("{}", sb.spare_disks as i32), W);
    if expected_csum == sb.sb_csum {
        r.field("Checksum", format!("{:x} - correct", sb.sb_csum), W);
    } else {
        r.field(
            "Checksum",
            format!("{:x} - expected {:x}", sb.sb_csum, expected_csum),
            W,
        );
    }
    r.field("Events", format!("{}", sb.events), W);
    r.blank();
    if let Some(l) = layout_for_level("Layout", sb.level, sb.layout) {
        r.lines.push(l);
    }
    match sb.level {
        0 | 4 | 5 | 6 | 10 => r.field("Chunk Size", format!("{}K", sb.chunk_size / 1024), W),
        -1 => r.field("Rounding", format!("{}K", sb.chunk_size / 1024), W),
        _ => {}
    }
    r.blank();
    r.raw("      Number   Major   Minor   RaidDevice State");
    // mdadm walks raid_disks + spare_disks records (an int sum); there are only 27.
    let rows = (sb.raid_disks.wrapping_add(sb.spare_disks) as i32).clamp(0, sb0::SB0_DISKS as i32);
    let this = sb0_row(None, &sb.this_disk, opts);
    r.lines.push(this);
    r.blank();
    for (d, disk) in sb.disks.iter().enumerate().take(rows as usize) {
        r.lines.push(sb0_row(Some(d), disk, opts));
    }
    r
}

/// One row of the 0.90 device table; `d` None is the "this" row.
fn sb0_row(d: Option<usize>, disk: &Disk0, opts: &ExamineOpts<'_>) -> Line {
    let label = match d {
        Some(d) => format!("{d:4}"),
        None => String::from("this"),
    };
    let mut text = format!(
        "{:>4} {:5}   {:5}    {:5}    {:5}     ",
        label, disk.number as i32, disk.major as i32, disk.minor as i32, disk.raid_disk as i32
    );
    let wonly = disk.state & sb0::DISK_WRITE_MOSTLY != 0;
    let failfast = disk.state & sb0::DISK_FAILFAST != 0;
    let st = disk.state & !(sb0::DISK_WRITE_MOSTLY | sb0::DISK_FAILFAST);
    let mut words: Vec<&str> = Vec::new();
    if st & sb0::DISK_FAULTY != 0 {
        words.push("faulty");
    }
    if st & sb0::DISK_ACTIVE != 0 {
        words.push("active");
    }
    if st & sb0::DISK_SYNC != 0 {
        words.push("sync");
    }
    if st & sb0::DISK_REMOVED != 0 {
        words.push("removed");
    }
    if wonly {
        words.push("write-mostly");
    }
    if failfast {
        words.push("failfast");
    }
    if st == 0 {
        words.push("spare");
    }
    for w in &words {
        text.push(' ');
        text.push_str(w);
    }
    let name = if disk.major == 0 && disk.minor == 0 {
        None
    } else {
        opts.dev_name.and_then(|f| f(disk.major, disk.minor))
    };
    if let Some(n) = &name {
        let _ = write!(text, "   {n}");
    }
    let mut cells = alloc::vec![
        ("number", format!("{}", disk.number as i32)),
        ("major", format!("{}", disk.major)),
        ("minor", format!("{}", disk.minor)),
        ("raid_device", format!("{}", disk.raid_disk as i32)),
        ("state", words.join(" ")),
    ];
    if let Some(n) = name {
        cells.push(("device", n));
    }
    Line::Row { text, cells }
}
