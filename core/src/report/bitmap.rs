//! `mdadm --examine-bitmap` and `mdadm --examine-badblocks` text.
//!
//! The texts are what mdadm 4.2 prints, stdout and stderr lines (its "mdadm: ..." complaints) in
//! program order, as the fixtures captured them with `2>&1`.

use super::units::{human_size, percent_1dp};
use crate::format::badblocks::{log_status, BadBlockLog, LogStatus};
use crate::format::bitmap::{
    chunk_count, count_bits, Bitmap, BitmapSuper, BITMAP_HEADER_BYTES, BITMAP_MAGIC,
    BITMAP_MAJOR_CLUSTERED, BITMAP_MAJOR_HOSTENDIAN,
};
use crate::format::sb1::Superblock1;
use crate::format::uuid;
use crate::format::MetadataVersion;
use alloc::string::String;
use core::fmt::Write;

/// Most per-node sections printed for a clustered bitmap (`nodes` is untrusted).
pub const MAX_CLUSTER_NODES: u32 = 64;

/// mdadm's chunk size spelling: shift down by 1024 while possible, "64 MB", "64 KB", "512 B"
/// (truncating: 1536 bytes is "1 KB").
pub fn human_chunksize(bytes: u64) -> String {
    const SUFFIXES: [&str; 7] = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut b = bytes;
    let mut i = 0;
    while b >> 10 != 0 {
        b >>= 10;
        i += 1;
    }
    let mut s = String::new();
    let _ = write!(s, "{b} {}", SUFFIXES[i.min(SUFFIXES.len() - 1)]);
    s
}

/// mdadm's name for a bitmap `state` value.
pub fn bitmap_state_name(state: u32) -> &'static str {
    match state {
        0 => "OK",
        2 => "Out of date",
        _ => "Unknown",
    }
}

/// The complaint mdadm prints for a member whose metadata has no bitmap.
pub fn no_bitmap_text(filename: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "mdadm: {filename} doesn't have bitmap");
    s
}

/// What one read of a bitmap yielded: the header and the bit counts mdadm derives.
struct Counts {
    total: u64,
    dirty: u64,
}

fn counts_of(bm: &Bitmap) -> Counts {
    Counts {
        total: bm.chunks(),
        dirty: bm.count_dirty(),
    }
}

fn bitmap_line(s: &mut String, c: &Counts) {
    let _ = writeln!(
        s,
        "          Bitmap : {} bits (chunks), {} dirty ({}%)",
        c.total,
        c.dirty,
        percent_1dp(c.dirty, c.total)
    );
}

/// How mdadm prints a bitmap's 16 UUID bytes: it follows the metadata of the member holding the
/// bitmap (`swapuuid` of its superblock type; a bitmap file without one is shown as 1.x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UuidShape {
    /// Bytes in stored order (1.x members and bitmap files, on little-endian hosts).
    Bytes,
    /// Four host-endian 32-bit words (0.90: the header holds the superblock's words as md
    /// keeps them in memory, so this prints the superblock's UUID).
    HostWords,
}

impl UuidShape {
    fn of(version: MetadataVersion) -> Self {
        match version {
            MetadataVersion::V0_90 => UuidShape::HostWords,
            _ => UuidShape::Bytes,
        }
    }

    fn format(self, u: &[u8; 16]) -> String {
        match self {
            UuidShape::Bytes => uuid::format_bytes(u),
            UuidShape::HostWords => {
                let w = |i: usize| {
                    u32::from_le_bytes([u[4 * i], u[4 * i + 1], u[4 * i + 2], u[4 * i + 3]])
                };
                alloc::format!("{:08x}:{:08x}:{:08x}:{:08x}", w(0), w(1), w(2), w(3))
            }
        }
    }
}

fn render(
    s: &mut String,
    filename: &str,
    h: &BitmapSuper,
    c: &Counts,
    slots: &[Option<Bitmap>],
    shape: UuidShape,
) {
    let bad_magic = h.magic != BITMAP_MAGIC;
    if bad_magic {
        s.push_str("mdadm: This is an md array.  To view a bitmap you need to examine\n");
        s.push_str("mdadm: a member device, not the array.\n");
        s.push_str("mdadm: Reporting bitmap that would be used if this array were used\n");
        s.push_str("mdadm: as a member of some other array\n");
    }
    let _ = writeln!(s, "        Filename : {filename}");
    let _ = writeln!(s, "           Magic : {:08x}", h.magic);
    if bad_magic {
        let _ = writeln!(
            s,
            "mdadm: invalid bitmap magic {:#x}, the bitmap file appears",
            h.magic
        );
        s.push_str("mdadm: to be corrupted or missing.\n");
    }
    // mdadm prints these u32 fields with %d.
    let _ = writeln!(s, "         Version : {}", h.version as i32);
    if !(BITMAP_MAJOR_HOSTENDIAN..=BITMAP_MAJOR_CLUSTERED).contains(&h.version) {
        let _ = writeln!(
            s,
            "mdadm: unknown bitmap version {}, either the bitmap file",
            h.version as i32
        );
        s.push_str("mdadm: is corrupted or you need to upgrade your tools\n");
        return;
    }
    let _ = writeln!(s, "            UUID : {}", shape.format(&h.uuid));
    if h.nodes == 0 {
        let _ = writeln!(s, "          Events : {}", h.events);
        let _ = writeln!(s, "  Events Cleared : {}", h.events_cleared);
        let _ = writeln!(s, "           State : {}", bitmap_state_name(h.state));
    }
    let _ = writeln!(
        s,
        "       Chunksize : {}",
        human_chunksize(u64::from(h.chunksize))
    );
    let _ = writeln!(
        s,
        "          Daemon : {}s flush period",
        h.daemon_sleep as i32
    );
    if h.write_behind != 0 {
        let _ = writeln!(
            s,
            "      Write Mode : Allow write behind, max {}",
            h.write_behind as i32
        );
    } else {
        s.push_str("      Write Mode : Normal\n");
    }
    // mdadm computes sync_size * 512 in 64 bits (human_size reads it as signed, as mdadm does).
    let human = human_size(h.sync_size.wrapping_mul(512));
    let _ = writeln!(s, "       Sync Size : {}{human}", h.sync_size / 2);
    if h.nodes == 0 {
        bitmap_line(s, c);
        return;
    }
    let _ = writeln!(s, "   Cluster nodes : {}", h.nodes as i32);
    let name_len = h.cluster_name.iter().position(|&b| b == 0).unwrap_or(64);
    let name = String::from_utf8_lossy(&h.cluster_name[..name_len]);
    let _ = writeln!(s, "    Cluster name : {name:<64}");
    for i in 0..h.nodes.min(MAX_CLUSTER_NODES) {
        match slots.get(i as usize) {
            Some(Some(bm)) => {
                let _ = writeln!(s, "       Node Slot : {i}");
                let _ = writeln!(s, "          Events : {}", bm.header.events);
                let _ = writeln!(s, "  Events Cleared : {}", bm.header.events_cleared);
                let _ = writeln!(
                    s,
                    "           State : {}",
                    bitmap_state_name(bm.header.state)
                );
                bitmap_line(s, &counts_of(bm));
            }
            _ => {
                let _ = writeln!(s, "   Unable to read bitmap on node: {i}");
            }
        }
    }
}

/// `mdadm --examine-bitmap <filename>` for a member whose bitmap decoded as `bm`.
///
/// For a clustered bitmap (`nodes != 0`) use [`examine_bitmap_text_clustered`] to include the
/// per-node sections.
pub fn examine_bitmap_text(filename: &str, bm: &Bitmap) -> String {
    examine_bitmap_text_clustered(filename, bm, &[])
}

/// As [`examine_bitmap_text`], with the bitmaps of each cluster node (slot `i` at
/// `bm.header.node_offset_sectors(i)` sectors from the first); a missing slot prints mdadm's
/// "Unable to read bitmap on node" line. Ignored when `nodes == 0`.
pub fn examine_bitmap_text_clustered(
    filename: &str,
    bm: &Bitmap,
    slots: &[Option<Bitmap>],
) -> String {
    let mut s = String::new();
    render(
        &mut s,
        filename,
        &bm.header,
        &counts_of(bm),
        slots,
        UuidShape::Bytes,
    );
    s
}

/// `mdadm --examine-bitmap` on whatever bytes lie where the bitmap should be (`buf` starts at
/// that offset and runs as far as the caller could read, e.g. to the end of the device), with
/// mdadm's complaints for a bad magic, an unknown version or a short read.
///
/// The UUID is shown as for a 1.x member; for a member of another metadata version use
/// [`examine_member_bitmap_text`].
pub fn examine_bitmap_bytes_text(filename: &str, buf: &[u8]) -> String {
    bytes_text(filename, buf, UuidShape::Bytes)
}

/// As [`examine_bitmap_bytes_text`] for the bitmap of a member with `version` metadata: mdadm
/// prints a 0.90 member's bitmap UUID as the superblock's four words, a 1.x one as bytes.
pub fn examine_member_bitmap_text(filename: &str, buf: &[u8], version: MetadataVersion) -> String {
    bytes_text(filename, buf, UuidShape::of(version))
}

fn bytes_text(filename: &str, buf: &[u8], shape: UuidShape) -> String {
    let mut s = String::new();
    let Ok(h) = BitmapSuper::decode(buf) else {
        s.push_str("mdadm: failed to read superblock of bitmap file\n");
        return s;
    };
    let mut c = Counts { total: 0, dirty: 0 };
    // mutants: `&&` → `||` is equivalent: chunk_count is 0 when either field is 0, and 0 bits
    // print as none counted (excluded in .cargo/mutants.toml). mdadm's own test, kept.
    if h.sync_size != 0 && h.chunksize != 0 {
        let want = chunk_count(h.sync_size, h.chunksize);
        let bits = &buf[BITMAP_HEADER_BYTES..];
        let have = (bits.len() as u64).saturating_mul(8);
        if have < want {
            let _ = writeln!(
                s,
                "mdadm: WARNING: bitmap file is not large enough for array size {}!\n",
                h.sync_size
            );
        }
        c.total = want.min(have);
        c.dirty = count_bits(bits, c.total);
    }
    render(&mut s, filename, &h, &c, &[], shape);
    s
}

/// `mdadm --examine-badblocks <devname>` for a 1.x member: "No bad-blocks list configured on",
/// "Bad-blocks list is empty in", or the list (`log` as read from the log area; None prints the
/// heading only).
pub fn examine_badblocks_text(
    devname: &str,
    sb: &Superblock1,
    log: Option<&BadBlockLog>,
) -> String {
    let mut s = String::new();
    match log_status(sb) {
        LogStatus::NotConfigured => {
            let _ = writeln!(s, "No bad-blocks list configured on {devname}");
        }
        LogStatus::Empty => {
            let _ = writeln!(s, "Bad-blocks list is empty in {devname}");
        }
        LogStatus::Present => {
            let _ = writeln!(s, "Bad-blocks on {devname}:");
            for e in log.map(|l| l.entries.as_slice()).unwrap_or(&[]) {
                let _ = writeln!(s, "{:>20} for {} sectors", e.start_sector, e.len_sectors);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::bitmap::BitmapSuper;

    #[test]
    fn chunksize_names() {
        assert_eq!(human_chunksize(64 << 20), "64 MB");
        assert_eq!(human_chunksize(64 << 10), "64 KB");
        assert_eq!(human_chunksize(512), "512 B");
        assert_eq!(human_chunksize(1536), "1 KB");
        assert_eq!(human_chunksize(1 << 31), "2 GB");
        assert_eq!(human_chunksize(0), "0 B");
        assert_eq!(human_chunksize(u64::MAX), "15 EB");
    }

    #[test]
    fn text_shapes() {
        let mut h = BitmapSuper::new([0xab; 16], 63488, 65536);
        h.events = 18;
        h.events_cleared = 17;
        h.write_behind = 256;
        let mut bm = Bitmap::new(h).unwrap();
        bm.set_sectors(128 * 64, 128 * 16).unwrap();
        let t = examine_bitmap_text("/dev/x", &bm);
        assert!(t.contains("      Write Mode : Allow write behind, max 256\n"));
        assert!(t.ends_with("          Bitmap : 496 bits (chunks), 16 dirty (3.2%)\n"));
        assert!(t.contains("       Sync Size : 31744 (31.00 MiB 32.51 MB)\n"));

        bm.header.nodes = 2;
        bm.header.cluster_name[..3].copy_from_slice(b"abc");
        let t = examine_bitmap_text_clustered("/dev/x", &bm, &[Some(bm.clone())]);
        assert!(!t.contains("  Events Cleared : 17\n       Chunksize"));
        assert!(t.contains(&alloc::format!(
            "    Cluster name : abc{}\n",
            " ".repeat(61)
        )));
        assert!(t.contains("       Node Slot : 0\n"));
        assert!(t.ends_with("   Unable to read bitmap on node: 1\n"));

        assert_eq!(
            no_bitmap_text("/dev/vda"),
            "mdadm: /dev/vda doesn't have bitmap\n"
        );
        // Garbage and short reads never panic.
        assert!(examine_bitmap_bytes_text("/dev/x", &[0u8; 10]).starts_with("mdadm: failed"));
        let mut raw = bm.header.to_bytes().to_vec();
        raw[44] = 0xff; // huge sync_size
        raw[68] = 0; // nodes = 0
        let t = examine_bitmap_bytes_text("/dev/x", &raw);
        assert!(t.starts_with("mdadm: WARNING: bitmap file is not large enough"));
        assert!(t.ends_with("0 bits (chunks), 0 dirty (0.0%)\n"));
    }

    #[test]
    fn uuid_shape_follows_the_member_metadata() {
        let u = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        let raw = BitmapSuper::new(u, 128, 65536).to_bytes().to_vec();
        let v0 = examine_member_bitmap_text("/dev/x", &raw, MetadataVersion::V0_90);
        assert!(v0.contains("            UUID : 04030201:08070605:0c0b0a09:100f0e0d\n"));
        let v1 = examine_member_bitmap_text("/dev/x", &raw, MetadataVersion::V1_2);
        assert!(v1.contains("            UUID : 01020304:05060708:090a0b0c:0d0e0f10\n"));
    }
}
