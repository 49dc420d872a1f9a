//! mdadm 4.2's create-time layout: every fixture member is reproduced exactly, and a table of
//! other sizes (1 MiB to 16 TiB, odd sizes, reserve and bitmap boundaries) checks values derived
//! by hand from mdadm 4.2's Create.c / super1.c / super0.c (the derivation sits with each row).
//!
//! Shorthand used in the derivations (all in 512-byte sectors unless KiB is said):
//! - `R(x)`, the bitmap reserve (choose_bm_space): 0 if x < 128; 256 if x-128 >= 200 GiB
//!   (419430400); 128 if x-8 > 8 GiB (16777216); else 8.
//! - `H(d)`, reshape headroom: 262144 halved while H*1024 > d.
//! - 1.1/1.2 data offset `DO(d) = roundup(24 + R(d) + H(d), 2048)`, d = first member;
//!   usable = d - DO.
//! - 1.0 usable = (d & !7) - (16 + 8 + R(d)); 0.90 usable = (d & !127) - 128.
//! - size = (usable / 2 KiB) rounded down to 64 KiB, in sectors (x2).
//! - bitmap (internal, or automatic above 100 GiB of size): room R(size) sectors (0.90: 60 KiB),
//!   max_bits = (room*512 - 256) * 8, min_chunk doubles from 4 KiB while the bits
//!   (size*512/min_chunk + 1, halved rounding up) exceed max_bits; chunk = max(min, 64 MiB).
//!   Bitmap space = header + ceil(size*512/chunk) bits, rounded up to 4 KiB.
//! - 1.1/1.2 bad-block log at 8 + (bitmap space, or R(size) without bitmap) after the superblock.
//! - 1.0: below the superblock ((d-16) & !7) sit 8 sectors of bad-block log and the bitmap (or
//!   R(size)); data_size = super - that. Bitmap offset = -(8 + 4 KiB blocks of
//!   (size*512/chunk + 1) bits + header).

use mdraid::format::geometry::*;
use mdraid::format::{sb0, sb1, MetadataVersion};
use mdraid::testutil::*;
use std::io::{Read, Seek, SeekFrom};

use MetadataVersion::{V0_90, V1_0, V1_1, V1_2};

const GIB: u64 = 2 * 1024 * 1024; // sectors
const TIB: u64 = 1024 * GIB;

fn read_at(path: &std::path::Path, off: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).unwrap();
    b
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// What each fixture's scenario.sh asked mdadm for.
struct FixtureParams {
    name: &'static str,
    version: MetadataVersion,
    raid_disks: u32,
    spares: u32,
    bitmap: BitmapRequest,
}

const INTERNAL: BitmapRequest = BitmapRequest::Internal { chunk_bytes: None };

fn fixture_params() -> Vec<FixtureParams> {
    let fp = |name, version, raid_disks, spares, bitmap| FixtureParams {
        name,
        version,
        raid_disks,
        spares,
        bitmap,
    };
    vec![
        fp("r1-3way-spare", V1_2, 3, 1, INTERNAL),
        fp("r1-badblocks", V1_2, 2, 0, INTERNAL),
        fp("r1-degraded-stale", V1_2, 2, 0, INTERNAL),
        fp("r1-missing", V1_2, 2, 0, INTERNAL),
        fp(
            "r1-unclean",
            V1_2,
            2,
            0,
            BitmapRequest::Internal {
                chunk_bytes: Some(64 * 1024),
            },
        ),
        fp("r1-v0.90", V0_90, 2, 0, BitmapRequest::None),
        fp("r1-v1.0", V1_0, 2, 0, BitmapRequest::None),
        fp("r1-v1.1-bitmap", V1_1, 2, 0, INTERNAL),
        fp("r1-v1.2-bitmap", V1_2, 2, 0, INTERNAL),
        fp("r1-writemostly", V1_2, 2, 0, INTERNAL),
    ]
}

/// The table above matches the scenario scripts (so a typo here cannot hide a wrong rule).
#[test]
fn fixture_table_matches_scenarios() {
    let table = fixture_params();
    let mut names: Vec<&str> = table.iter().map(|f| f.name).collect();
    names.sort();
    assert_eq!(names, fixture_names(), "every fixture has a row");
    for f in &table {
        let sh = fixture_text(f.name, "scenario.sh");
        let create = sh
            .lines()
            .find(|l| l.starts_with("mdadm --create"))
            .unwrap_or_else(|| panic!("{}: no create line", f.name));
        assert!(
            create.contains(&format!("--metadata={} ", f.version.as_str())),
            "{}: {create}",
            f.name
        );
        assert!(
            create.contains(&format!("--raid-devices={} ", f.raid_disks)),
            "{}: {create}",
            f.name
        );
        let spares = if f.spares > 0 {
            format!("--spare-devices={}", f.spares)
        } else {
            String::new()
        };
        assert_eq!(
            create.contains("--spare-devices"),
            f.spares > 0,
            "{}",
            f.name
        );
        assert!(create.contains(&spares), "{}: {create}", f.name);
        let bm = match f.bitmap {
            BitmapRequest::None => "--bitmap=none",
            _ => "--bitmap=internal",
        };
        assert!(create.contains(bm), "{}: {create}", f.name);
        let chunk = matches!(
            f.bitmap,
            BitmapRequest::Internal {
                chunk_bytes: Some(_)
            }
        );
        assert_eq!(
            create.contains("--bitmap-chunk=64K"),
            chunk,
            "{}: {create}",
            f.name
        );
    }
}

#[test]
fn fixtures_reproduced() {
    let mut checked = 0;
    for f in fixture_params() {
        let json: serde_json::Value =
            serde_json::from_str(&fixture_text(f.name, "fixture.json")).unwrap();
        let member_bytes = json["member_bytes"].as_u64().unwrap();
        assert_eq!(member_bytes, 33554432);
        let devs = fixture_members(f.name);
        let sizes: Vec<u64> = devs
            .iter()
            .map(|d| {
                let len = std::fs::metadata(fixture_image(f.name, d)).unwrap().len();
                assert_eq!(len, member_bytes, "{}/{d}", f.name);
                len / 512
            })
            .collect();
        let p = CreateParams {
            version: f.version,
            raid_disks: f.raid_disks,
            spare_devices: f.spares,
            bitmap: f.bitmap,
            requested_size_kib: None,
        };
        let plan = plan_create(&p, &sizes).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        assert_eq!(plan.members.len(), devs.len());
        for (dev, m) in devs.iter().zip(&plan.members) {
            let what = format!("{}/{dev}", f.name);
            let img = fixture_image(f.name, dev);
            if f.version == V0_90 {
                let loc = sb0::location(m.dev_sectors).unwrap();
                assert_eq!(m.super_offset, loc, "{what}");
                let sb = sb0::Superblock0::parse(&read_at(&img, loc * 512, 4096)).unwrap();
                assert_eq!(u64::from(sb.size) * 2, plan.size_sectors, "{what}: size");
                assert_eq!(sb.state & (1 << 8) != 0, plan.bitmap.is_some(), "{what}");
                assert_eq!(m.data_offset, 0);
                assert_eq!(m.bitmap_offset, None);
                assert_eq!(m.data_size, loc);
                checked += 1;
                continue;
            }
            let raw = read_at(&img, m.super_offset * 512, 4096);
            let sb = sb1::Superblock1::parse(&raw).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(sb.super_offset, m.super_offset, "{what}: super_offset");
            assert_eq!(sb.data_offset, m.data_offset, "{what}: data_offset");
            assert_eq!(sb.data_size, m.data_size, "{what}: data_size");
            assert_eq!(sb.size, plan.size_sectors, "{what}: size");
            assert_eq!(sb.max_dev, m.max_dev, "{what}: max_dev");
            assert_eq!(sb.bblog_offset, m.bblog_offset, "{what}: bblog_offset");
            assert_eq!(sb.bblog_size, m.bblog_size, "{what}: bblog_size");
            assert_eq!(sb.bblog_shift, m.bblog_shift, "{what}: bblog_shift");
            let has_bitmap = sb.feature_map & sb1::FEATURE_BITMAP_OFFSET != 0;
            assert_eq!(has_bitmap, plan.bitmap.is_some(), "{what}: bitmap");
            if let Some(bm) = plan.bitmap {
                assert_eq!(
                    Some(sb.bitmap_offset),
                    m.bitmap_offset,
                    "{what}: bitmap_offset"
                );
                let at = (sb.super_offset as i64 + i64::from(sb.bitmap_offset)) as u64 * 512;
                let hdr = read_at(&img, at, 256);
                assert_eq!(le32(&hdr, 0), 0x6d74_6962, "{what}: bitmap magic");
                assert_eq!(u64::from(le32(&hdr, 52)), bm.chunk_bytes, "{what}: chunk");
                assert_eq!(le64(&hdr, 40), bm.sync_sectors, "{what}: sync_size");
                assert_eq!(m.bitmap_space_sectors, 8, "{what}");
            } else {
                assert_eq!(m.bitmap_offset, None);
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} members");
}

/// The fixture members' values, spelled out: 32 MiB = 65536 sectors.
#[test]
fn fixture_values_by_hand() {
    // 1.2: R(65536) = 8, H = 64 (64*1024 = 65536), DO = roundup(24+8+64, 2048) = 2048,
    // usable 63488 = 31744 KiB (a multiple of 64), bitmap: room 8 -> max_bits 30720,
    // bits 63488*512/4096+1 = 7937 fit -> 4 KiB, so the 64 MiB default; 1 chunk -> 8 sectors;
    // bad-block log at 8 + 8 = 16.
    let p = CreateParams {
        bitmap: INTERNAL,
        ..CreateParams::new(V1_2, 2)
    };
    let a = plan_create(&p, &[65536, 65536]).unwrap();
    assert_eq!(a.size_sectors, 63488);
    assert_eq!(a.bitmap.unwrap().chunk_bytes, 64 << 20);
    assert_eq!(a.bitmap.unwrap().chunks, 1);
    let m = a.members[1];
    assert_eq!(
        (m.super_offset, m.data_offset, m.data_size, m.max_dev),
        (8, 2048, 63488, 128)
    );
    assert_eq!(
        (m.bitmap_offset, m.bblog_offset, m.bblog_size),
        (Some(8), 16, 8)
    );
    // 1.0 without bitmap: usable 65536 - 32 = 65504 = 32752 KiB -> 32704 KiB = 65408 sectors;
    // super at 65520; below it R(65408) + 8 = 16 -> data_size 65504, log at -8.
    let m = member_layout(&CreateParams::new(V1_0, 2), 65536).unwrap();
    assert_eq!(
        (m.super_offset, m.data_offset, m.data_size),
        (65520, 0, 65504)
    );
    assert_eq!((m.bblog_offset, m.bblog_size), (-8, 8));
    assert_eq!(
        array_size_sectors(&CreateParams::new(V1_0, 2), 65536).unwrap(),
        65408
    );
    // 0.90: 65536 - 128 = 65408 = 32704 KiB (a multiple of 64).
    let a = plan_create(&CreateParams::new(V0_90, 2), &[65536]).unwrap();
    assert_eq!((a.size_kib(), a.members[0].super_offset), (32704, 65408));
}

/// One expected row: version, device sectors, bitmap request, then what mdadm 4.2 writes.
struct Row {
    v: MetadataVersion,
    dev: u64,
    bitmap: BitmapRequest,
    size: u64,
    super_offset: u64,
    data_offset: u64,
    data_size: u64,
    /// (chunk bytes, bitmap_offset, bitmap space sectors)
    bm: Option<(u64, i32, u64)>,
    /// (bblog_offset, bblog_size)
    bblog: (i32, u16),
}

#[allow(clippy::too_many_arguments)]
fn row(
    v: MetadataVersion,
    dev: u64,
    bitmap: BitmapRequest,
    size: u64,
    super_offset: u64,
    data_offset: u64,
    data_size: u64,
    bm: Option<(u64, i32, u64)>,
    bblog: (i32, u16),
) -> Row {
    Row {
        v,
        dev,
        bitmap,
        size,
        super_offset,
        data_offset,
        data_size,
        bm,
        bblog,
    }
}

const AUTO: BitmapRequest = BitmapRequest::Auto;
const MB64: u64 = 64 << 20;

#[test]
fn sizes_table() {
    let rows = vec![
        // ---- 1 MiB = 2048 sectors ----
        // 1.0: usable (2048 & !7) - (24 + R=8) = 2016 = 1008 KiB -> 960 KiB = 1920; super
        // (2048-16) & !7 = 2032; below: R(1920)=8 + 8 = 16 -> data_size 2016, log -8.
        row(V1_0, 2048, AUTO, 1920, 2032, 0, 2016, None, (-8, 8)),
        // 1.0 with a bitmap: room R(1920) = 8, bits 241 fit -> 64 MiB; 1 bit + header = 8
        // sectors below the 8-sector log -> data_size 2032 - 16 = 2016, bitmap at -(8+8) = -16.
        row(
            V1_0,
            2048,
            INTERNAL,
            1920,
            2032,
            0,
            2016,
            Some((MB64, -16, 8)),
            (-8, 8),
        ),
        // 0.90: (2048 & !127) - 128 = 1920 = 960 KiB (multiple of 64); super at 1920.
        row(V0_90, 2048, AUTO, 1920, 1920, 0, 1920, None, (0, 0)),
        // ---- 20000 KiB = 40000 sectors ----
        // 1.2: R = 8, H = 32 (64*1024 > 40000), DO = roundup(64) = 2048; usable 37952
        // = 18976 KiB -> 18944 KiB = 37888; log at 8 + R(37888)=8 = 16.
        row(V1_2, 40000, AUTO, 37888, 8, 2048, 37952, None, (16, 8)),
        // 1.1: same offsets, superblock at 0, log at 0 + 8 + 8 = 16 sectors from it.
        row(V1_1, 40000, AUTO, 37888, 0, 2048, 37952, None, (16, 8)),
        // 1.0: 40000 - 32 = 39968 = 19984 KiB -> 19968 KiB = 39936; super 39984;
        // data_size 39984 - 16 = 39968.
        row(V1_0, 40000, AUTO, 39936, 39984, 0, 39968, None, (-8, 8)),
        // 0.90: (40000 & !127) = 39936, - 128 = 39808 = 19904 KiB (311 * 64).
        row(V0_90, 40000, AUTO, 39808, 39808, 0, 39808, None, (0, 0)),
        // ---- 100 MiB = 204800 sectors ----
        // 1.2: R = 8, H = 128 (256*1024 > 204800), DO = 2048; usable 202752 = 101376 KiB
        // = 1584 * 64 exactly. Bitmap: bits 202752*512/4096+1 = 25345 <= 30720 -> 64 MiB,
        // ceil(202752/131072) = 2 bits -> 8 sectors, log at 8 + 8 = 16.
        row(
            V1_2,
            204800,
            INTERNAL,
            202752,
            8,
            2048,
            202752,
            Some((MB64, 8, 8)),
            (16, 8),
        ),
        // 1.0: 204800 - 32 = 204768 = 102384 KiB -> 102336 KiB = 204672; super 204784.
        row(V1_0, 204800, AUTO, 204672, 204784, 0, 204768, None, (-8, 8)),
        // 0.90: 204800 - 128 = 204672 = 102336 KiB = 1599 * 64.
        row(V0_90, 204800, AUTO, 204672, 204672, 0, 204672, None, (0, 0)),
        // ---- 1 GiB = 2097152 sectors ----
        // 1.2: R = 8, H = 2048 (2048*1024 = 2097152 <= d), DO = roundup(24+8+2048 = 2080)
        // = 4096; usable 2093056 = 1046528 KiB = 16352 * 64.
        row(V1_2, GIB, AUTO, 2093056, 8, 4096, 2093056, None, (16, 8)),
        row(V1_1, GIB, AUTO, 2093056, 0, 4096, 2093056, None, (16, 8)),
        // 1.0: 2097152 - 32 = 2097120 = 1048560 KiB -> 1048512 KiB = 2097024; super 2097136.
        row(V1_0, GIB, AUTO, 2097024, 2097136, 0, 2097120, None, (-8, 8)),
        // 0.90: 2097152 - 128 = 2097024 = 1048512 KiB = 16383 * 64.
        row(V0_90, GIB, AUTO, 2097024, 2097024, 0, 2097024, None, (0, 0)),
        // ---- odd: 1 GiB + 12345 = 2109497 sectors ----
        // 1.2: R = 8, H = 2048, DO = 4096; usable 2105401 = 1052700 KiB -> 1052672 = 2105344.
        row(
            V1_2,
            GIB + 12345,
            AUTO,
            2105344,
            8,
            4096,
            2105401,
            None,
            (16, 8),
        ),
        // 1.0: d & !7 = 2109496, - 32 = 2109464 = 1054732 KiB -> 1054720 KiB = 2109440;
        // super (2109497 - 16) & !7 = 2109480; data_size 2109480 - 16 = 2109464.
        row(
            V1_0,
            GIB + 12345,
            AUTO,
            2109440,
            2109480,
            0,
            2109464,
            None,
            (-8, 8),
        ),
        // 0.90: d & !127 = 2109440, - 128 = 2109312 = 1054656 KiB = 16479 * 64.
        row(
            V0_90,
            GIB + 12345,
            AUTO,
            2109312,
            2109312,
            0,
            2109312,
            None,
            (0, 0),
        ),
        // ---- 8 GiB + 1 = 16777217 sectors ----
        // R = 8 (16777217 - 8 is not > 8 GiB). 1.2: H = 16384, DO = roundup(16416) = 18432;
        // usable 16758785 = 8379392 KiB (130928 * 64) -> 16758784.
        row(
            V1_2,
            8 * GIB + 1,
            AUTO,
            16758784,
            8,
            18432,
            16758785,
            None,
            (16, 8),
        ),
        // 1.0: 16777216 - 32 = 16777184 = 8388592 KiB -> 8388544 KiB = 16777088;
        // super (16777201) & !7 = 16777200; data_size 16777184.
        row(
            V1_0,
            8 * GIB + 1,
            AUTO,
            16777088,
            16777200,
            0,
            16777184,
            None,
            (-8, 8),
        ),
        // 0.90: 16777216 - 128 = 16777088 = 8388544 KiB = 131071 * 64.
        row(
            V0_90,
            8 * GIB + 1,
            AUTO,
            16777088,
            16777088,
            0,
            16777088,
            None,
            (0, 0),
        ),
        // ---- 8 GiB + 9 = 16777225: the first size with a 64 KiB reserve ----
        // 1.0: R = 128, usable 16777224 - 152 = 16777072 = 8388536 KiB -> 8388480 KiB
        // = 16776960; the space under the superblock is sized from the array, R(16776960) = 8:
        // super 16777208, data_size 16777208 - 16 = 16777192.
        row(
            V1_0,
            8 * GIB + 9,
            AUTO,
            16776960,
            16777208,
            0,
            16777192,
            None,
            (-8, 8),
        ),
        // 1.2: DO = roundup(24 + 128 + 16384 = 16536) = 18432; usable 16758793 = 8379396 KiB
        // -> 8379392 KiB = 16758784; log at 8 + R(16758784)=8 = 16.
        row(
            V1_2,
            8 * GIB + 9,
            AUTO,
            16758784,
            8,
            18432,
            16758793,
            None,
            (16, 8),
        ),
        // ---- 200 GiB = 419430400 sectors: R = 128, bitmap automatic (size > 100 GiB) ----
        // 1.2: H = 262144, DO = roundup(24+128+262144 = 262296) = 264192; usable 419166208
        // = 209583104 KiB (multiple of 64). Bitmap room R(419166208) = 128 -> max_bits 522240;
        // 52395777 bits need 7 halvings -> 512 KiB -> 64 MiB default; ceil(419166208/131072)
        // = 3198 bits = 400 bytes + header -> 8 sectors; log at 16.
        row(
            V1_2,
            200 * GIB,
            AUTO,
            419166208,
            8,
            264192,
            419166208,
            Some((MB64, 8, 8)),
            (16, 8),
        ),
        // 1.0: 419430400 - 152 = 419430248 = 209715124 KiB -> 209715072 KiB = 419430144;
        // bitmap 3200 bits -> 8 sectors, mdadm's own count 3199 + 1 -> 1 block -> offset -16;
        // super 419430384, data_size 419430384 - 16 = 419430368.
        row(
            V1_0,
            200 * GIB,
            AUTO,
            419430144,
            419430384,
            0,
            419430368,
            Some((MB64, -16, 8)),
            (-8, 8),
        ),
        // 0.90: 419430400 - 128 = 419430272 = 209715136 KiB (3276799 * 64); automatic bitmap
        // in the 60 KiB after the superblock: 52428785 bits over 489472 -> 512 KiB -> 64 MiB.
        row(
            V0_90,
            200 * GIB,
            AUTO,
            419430272,
            419430272,
            0,
            419430272,
            Some((MB64, 8, 8)),
            (0, 0),
        ),
        // 1.2 with --bitmap=none: no bitmap, the log still sits after R(size) = 128: 8+128.
        row(
            V1_2,
            200 * GIB,
            BitmapRequest::None,
            419166208,
            8,
            264192,
            419166208,
            None,
            (136, 8),
        ),
        // ---- 200 GiB + 128 = 419430528: R = 256 ----
        // 1.2: DO = roundup(24+256+262144 = 262424) = 264192; usable 419166336 = 209583168 KiB
        // (3274737 * 64). Bitmap room R(419166336) = 128 -> 64 MiB, 8 sectors, log 16.
        row(
            V1_2,
            200 * GIB + 128,
            AUTO,
            419166336,
            8,
            264192,
            419166336,
            Some((MB64, 8, 8)),
            (16, 8),
        ),
        // 1.0: 419430528 - 280 = 419430248: the same array size as at 200 GiB (419430144);
        // super 419430512, data_size 419430512 - 16 = 419430496.
        row(
            V1_0,
            200 * GIB + 128,
            AUTO,
            419430144,
            419430512,
            0,
            419430496,
            Some((MB64, -16, 8)),
            (-8, 8),
        ),
        // ---- 2 TiB = 4294967296 sectors: the bitmap outgrows 4 KiB ----
        // 1.2: R = 256, DO = 264192; usable 4294703104 = 2147351552 KiB (33552368 * 64).
        // Bitmap room 256 -> max_bits 1046528; 536837889 bits need 10 halvings -> 4 MiB ->
        // 64 MiB; ceil(4294703104/131072) = 32766 bits = 4096 bytes + 256 -> 8 KiB = 16
        // sectors, so the log moves to 8 + 16 = 24.
        row(
            V1_2,
            2 * TIB,
            AUTO,
            4294703104,
            8,
            264192,
            4294703104,
            Some((MB64, 8, 16)),
            (24, 8),
        ),
        row(
            V1_1,
            2 * TIB,
            AUTO,
            4294703104,
            0,
            264192,
            4294703104,
            Some((MB64, 8, 16)),
            (24, 8),
        ),
        // 1.0: 4294967296 - 280 = 4294967016 = 2147483508 KiB -> 2147483456 KiB = 4294966912;
        // 32768 bits -> 16 sectors (mdadm's 32767 + 1 too) -> bitmap at -24; super 4294967280,
        // data_size 4294967280 - 24 = 4294967256.
        row(
            V1_0,
            2 * TIB,
            AUTO,
            4294966912,
            4294967280,
            0,
            4294967256,
            Some((MB64, -24, 16)),
            (-8, 8),
        ),
        // 0.90: 4294967296 - 128 = 4294967168 = 2147483584 KiB (< 4 TiB); 536870897 bits over
        // 489472 -> 2048x -> 8 MiB -> 64 MiB; 32768 bits -> 16 sectors.
        row(
            V0_90,
            2 * TIB,
            AUTO,
            4294967168,
            4294967168,
            0,
            4294967168,
            Some((MB64, 8, 16)),
            (0, 0),
        ),
        // ---- 16 TiB = 34359738368 sectors ----
        // 1.2: usable 34359474176 = 17179737088 KiB (268433392 * 64). 4294934273 bits need
        // 8192x -> 32 MiB -> 64 MiB; ceil(34359474176/131072) = 262142 bits = 32768 bytes
        // + 256 -> 9 blocks = 72 sectors; log at 8 + 72 = 80.
        row(
            V1_2,
            16 * TIB,
            AUTO,
            34359474176,
            8,
            264192,
            34359474176,
            Some((MB64, 8, 72)),
            (80, 8),
        ),
        // 1.0: 34359738368 - 280 = 34359738088 = 17179869044 KiB -> 17179868992 KiB
        // = 34359737984; 262144 bits -> 72 sectors, offset -(72 + 8) = -80; super
        // 34359738352, data_size 34359738352 - 80 = 34359738272.
        row(
            V1_0,
            16 * TIB,
            AUTO,
            34359737984,
            34359738352,
            0,
            34359738272,
            Some((MB64, -80, 72)),
            (-8, 8),
        ),
    ];
    for (i, r) in rows.iter().enumerate() {
        let p = CreateParams {
            bitmap: r.bitmap,
            ..CreateParams::new(r.v, 2)
        };
        let what = format!("row {i}: {} on {} sectors", r.v, r.dev);
        let a = plan_create(&p, &[r.dev, r.dev]).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(a.size_sectors, r.size, "{what}: size");
        for m in &a.members {
            assert_eq!(m.super_offset, r.super_offset, "{what}: super_offset");
            assert_eq!(m.data_offset, r.data_offset, "{what}: data_offset");
            assert_eq!(m.data_size, r.data_size, "{what}: data_size");
            assert_eq!(
                (m.bblog_offset, m.bblog_size),
                r.bblog,
                "{what}: bad-block log"
            );
            let got = a.bitmap.map(|b| {
                (
                    b.chunk_bytes,
                    m.bitmap_offset.unwrap(),
                    m.bitmap_space_sectors,
                )
            });
            assert_eq!(got, r.bm, "{what}: bitmap");
            if r.v == V0_90 {
                assert_eq!(m.max_dev, 0);
            } else {
                assert_eq!(m.max_dev, 128);
            }
            // Whatever the size, the pieces never overlap and stay on the device.
            assert!(m.data_offset + a.size_sectors <= m.dev_sectors, "{what}");
            assert!(m.data_offset + m.data_size <= m.dev_sectors, "{what}");
            assert!(a.size_sectors <= m.data_size, "{what}");
            if r.v != V1_0 && r.v != V0_90 {
                let meta_end = m.super_offset as i64 + i64::from(m.bblog_offset);
                assert!(
                    meta_end + i64::from(m.bblog_size) <= m.data_offset as i64,
                    "{what}"
                );
            }
        }
    }
}

/// 0.90 cannot describe 4 TiB: 16 TiB members are refused unless a smaller --size is asked.
#[test]
fn v090_limit() {
    // usable (16 TiB - 128) / 2 KiB >= 2^32 KiB -> mdadm: "devices too large for RAID level 1".
    let e = plan_create(&CreateParams::new(V0_90, 2), &[16 * TIB]).unwrap_err();
    assert!(matches!(e, GeometryError::TooLargeForV090 { .. }), "{e}");
    // 4 TiB exactly: usable 8589934464 sectors = 4294967232 KiB < 2^32 -> fine,
    // 4294967232 KiB is already a multiple of 64.
    let a = plan_create(&CreateParams::new(V0_90, 2), &[4 * TIB]).unwrap();
    assert_eq!(a.size_kib(), 4294967232);
    // 4 TiB + 64 KiB: usable 4294967296 KiB = 2^32 -> refused.
    let e = plan_create(&CreateParams::new(V0_90, 2), &[4 * TIB + 128]).unwrap_err();
    assert!(matches!(e, GeometryError::TooLargeForV090 { .. }), "{e}");
    // --size=3T on 16 TiB: size 3221225472 KiB; automatic bitmap: 805306369 bits over 489472
    // -> 2048x -> 8 MiB -> 64 MiB.
    let p = CreateParams {
        requested_size_kib: Some(3 << 30),
        ..CreateParams::new(V0_90, 2)
    };
    let a = plan_create(&p, &[16 * TIB]).unwrap();
    assert_eq!(a.size_sectors, 6442450944);
    assert_eq!(a.bitmap.unwrap().chunk_bytes, MB64);
    let p = CreateParams {
        requested_size_kib: Some(4 << 30),
        ..CreateParams::new(V0_90, 2)
    };
    assert!(matches!(
        plan_create(&p, &[16 * TIB]),
        Err(GeometryError::TooLargeForV090 { .. })
    ));
}

/// mdadm adds a bitmap by itself only when the array is larger than 100 GiB.
#[test]
fn automatic_bitmap_threshold() {
    // A member of d = 209848320: R = 128, H = 131072 (262144*1024 > d), DO =
    // roundup(24+128+131072 = 131224) = 133120; usable 209715200 = exactly 100 GiB -> no bitmap.
    let d = 209848320;
    let a = plan_create(&CreateParams::new(V1_2, 2), &[d]).unwrap();
    assert_eq!((a.data_offset, a.size_kib()), (133120, 100 << 20));
    assert!(a.bitmap.is_none());
    // 64 KiB more: size 104857664 KiB > 100 GiB -> internal bitmap, 64 MiB chunks.
    let a = plan_create(&CreateParams::new(V1_2, 2), &[d + 128]).unwrap();
    assert_eq!(a.size_kib(), (100 << 20) + 64);
    assert_eq!(a.bitmap.unwrap().chunk_bytes, MB64);
    // --bitmap=none keeps it off.
    let p = CreateParams {
        bitmap: BitmapRequest::None,
        ..CreateParams::new(V1_2, 2)
    };
    assert!(plan_create(&p, &[d + 128]).unwrap().bitmap.is_none());
}

#[test]
fn requested_size_and_chunk() {
    // --size=50000 on 100 MiB (1.2): taken as is (no 64 KiB rounding when asked), data_size
    // still covers the whole device after the data offset.
    let p = CreateParams {
        requested_size_kib: Some(50000),
        ..CreateParams::new(V1_2, 2)
    };
    let a = plan_create(&p, &[204800]).unwrap();
    assert_eq!(a.size_sectors, 100000);
    assert_eq!(a.members[0].data_size, 202752);
    // The largest that fits is the usable 101376 KiB; one more is refused.
    let p = CreateParams {
        requested_size_kib: Some(101377),
        ..CreateParams::new(V1_2, 2)
    };
    assert!(matches!(
        plan_create(&p, &[204800]),
        Err(GeometryError::SizeTooLarge {
            available_kib: 101376,
            ..
        })
    ));
    let p = CreateParams {
        requested_size_kib: Some(3),
        ..CreateParams::new(V1_2, 2)
    };
    assert!(matches!(
        plan_create(&p, &[204800]),
        Err(GeometryError::SizeTooSmall { .. })
    ));
    // --bitmap-chunk: 4 KiB fits 20000 KiB members (7937... bits <= 30720); 2 KiB is below the
    // 4 KiB minimum; 3000 is not a power of two; 64 KiB on 16 TiB needs at least 32 MiB.
    let chunk = |c: u64| CreateParams {
        bitmap: BitmapRequest::Internal {
            chunk_bytes: Some(c),
        },
        ..CreateParams::new(V1_2, 2)
    };
    let a = plan_create(&chunk(4096), &[40000]).unwrap();
    let bm = a.bitmap.unwrap();
    // 37888 sectors / 8 sectors per chunk = 4736 bits = 592 bytes + 256 -> 8 sectors.
    assert_eq!((bm.chunk_bytes, bm.chunks, bm.bytes), (4096, 4736, 848));
    assert!(matches!(
        plan_create(&chunk(2048), &[40000]),
        Err(GeometryError::BitmapChunkTooSmall {
            min_bytes: 4096,
            ..
        })
    ));
    assert!(matches!(
        plan_create(&chunk(3000), &[40000]),
        Err(GeometryError::BitmapChunkInvalid { .. })
    ));
    assert!(matches!(
        plan_create(&chunk(64 << 10), &[16 * TIB]),
        Err(GeometryError::BitmapChunkTooSmall {
            min_bytes: 33554432,
            ..
        })
    ));
    // 32 MiB is the smallest accepted there: 262142 * 2 = 524284 bits = 65536 bytes (rounded
    // up) + 256 -> 17 blocks = 136 sectors; the log follows at 8 + 136 = 144.
    let a = plan_create(&chunk(32 << 20), &[16 * TIB]).unwrap();
    assert_eq!(a.members[0].bitmap_space_sectors, 136);
    assert_eq!(a.members[0].bblog_offset, 144);
}

/// The first member listed chooses the 1.1/1.2 data offset for all.
#[test]
fn mixed_member_sizes() {
    // [1 GiB, 200 GiB]: DO(1 GiB) = 4096 for both; size from the 1 GiB member, 2093056.
    let a = plan_create(&CreateParams::new(V1_2, 2), &[GIB, 200 * GIB]).unwrap();
    assert_eq!((a.data_offset, a.size_sectors), (4096, 2093056));
    assert_eq!(a.members[1].data_size, 200 * GIB - 4096);
    // [200 GiB, 1 GiB]: DO(200 GiB) = 264192; the 1 GiB member offers 2097152 - 264192
    // = 1832960 = 916480 KiB (14320 * 64).
    let a = plan_create(&CreateParams::new(V1_2, 2), &[200 * GIB, GIB]).unwrap();
    assert_eq!((a.data_offset, a.size_sectors), (264192, 1832960));
    assert_eq!(a.members[1].data_size, 1832960);
    // 1.0: each member keeps its own end; the array takes the smaller usable size.
    let a = plan_create(&CreateParams::new(V1_0, 2), &[40000, GIB]).unwrap();
    assert_eq!(a.size_sectors, 39936);
    assert_eq!(a.members[1].super_offset, 2097136);
    assert_eq!(a.members[1].data_size, 2097120);
    // A member too small for the first member's data offset is named.
    let e = plan_create(&CreateParams::new(V1_2, 2), &[200 * GIB, 200000]).unwrap_err();
    assert!(
        matches!(e, GeometryError::DeviceTooSmall { index: 1, .. }),
        "{e}"
    );
}

#[test]
fn device_counts() {
    let mut p = CreateParams::new(V1_2, 2);
    p.spare_devices = 126;
    assert_eq!(plan_create(&p, &[GIB]).unwrap().max_dev, 128);
    p.spare_devices = 127;
    assert_eq!(plan_create(&p, &[GIB]).unwrap().max_dev, 384);
    p.spare_devices = 1918;
    assert_eq!(plan_create(&p, &[GIB]).unwrap().max_dev, 1920);
    p.spare_devices = 1919;
    assert!(matches!(
        plan_create(&p, &[GIB]),
        Err(GeometryError::TooManyDevices { max: 1920, .. })
    ));
    let mut p = CreateParams::new(V0_90, 27);
    assert!(plan_create(&p, &[GIB]).is_ok());
    p.spare_devices = 1;
    assert!(matches!(
        plan_create(&p, &[GIB]),
        Err(GeometryError::TooManyDevices { max: 27, .. })
    ));
    assert!(matches!(
        plan_create(&CreateParams::new(V1_2, 0), &[GIB]),
        Err(GeometryError::NoRaidDisks)
    ));
    assert!(matches!(
        plan_create(&CreateParams::new(V1_2, 2), &[]),
        Err(GeometryError::NoMembers)
    ));
}

/// Tiny devices: a clear error, never a panic or an underflow; the smallest that work.
#[test]
fn tiny_devices() {
    use GeometryError::*;
    let plan = |v, d| plan_create(&CreateParams::new(v, 2), &[d]);
    for v in [V0_90, V1_0, V1_1, V1_2] {
        for d in 0..3000u64 {
            match plan(v, d) {
                Ok(a) => {
                    let m = a.members[0];
                    assert!(a.size_sectors >= 128, "{v} {d}");
                    assert!(m.data_offset + a.size_sectors <= d, "{v} {d}");
                    assert!(a.size_sectors <= m.data_size, "{v} {d}");
                }
                Err(DeviceTooSmall { .. } | NoFreeSpace { .. } | ArrayTooSmall { .. }) => {}
                Err(e) => panic!("{v} {d}: unexpected {e}"),
            }
        }
    }
    // 1.2: DO is 2048 for any tiny device; 2048 leaves nothing, 2050 leaves 1 KiB (rounds to
    // 0), 2176 leaves 64 KiB.
    assert!(matches!(plan(V1_2, 23), Err(DeviceTooSmall { .. })));
    assert!(matches!(plan(V1_2, 2047), Err(DeviceTooSmall { .. })));
    assert!(matches!(plan(V1_2, 2048), Err(NoFreeSpace { .. })));
    assert!(matches!(plan(V1_2, 2049), Err(NoFreeSpace { .. })));
    assert!(matches!(
        plan(V1_2, 2050),
        Err(ArrayTooSmall { usable_kib: 1 })
    ));
    assert!(matches!(
        plan(V1_2, 2175),
        Err(ArrayTooSmall { usable_kib: 63 })
    ));
    assert_eq!(plan(V1_2, 2176).unwrap().size_sectors, 128);
    // 1.0: 24 sectors hold only metadata; 160 = 128 usable: super at 144, 16 below it.
    assert!(matches!(plan(V1_0, 23), Err(DeviceTooSmall { .. })));
    assert!(matches!(plan(V1_0, 24), Err(NoFreeSpace { .. })));
    assert!(matches!(plan(V1_0, 159), Err(ArrayTooSmall { .. })));
    let m = plan(V1_0, 160).unwrap().members[0];
    assert_eq!(
        (m.super_offset, m.data_size, m.bblog_offset),
        (144, 128, -8)
    );
    // 0.90: under 128 sectors there is no superblock place; 256 gives 64 KiB.
    assert!(matches!(plan(V0_90, 127), Err(DeviceTooSmall { .. })));
    assert!(matches!(plan(V0_90, 255), Err(NoFreeSpace { .. })));
    assert_eq!(plan(V0_90, 256).unwrap().size_sectors, 128);
    // A bitmap on the smallest arrays: reserve R(128) = 8 is enough for one 64 MiB chunk.
    let p = CreateParams {
        bitmap: INTERNAL,
        ..CreateParams::new(V1_2, 2)
    };
    let a = plan_create(&p, &[2176]).unwrap();
    assert_eq!(a.bitmap.unwrap().chunk_bytes, MB64);
    // ... but a 4 KiB --size leaves no bitmap reserve at all.
    let p = CreateParams {
        requested_size_kib: Some(4),
        ..p
    };
    assert!(matches!(
        plan_create(&p, &[2176]),
        Err(NoRoomForBitmap { size_sectors: 8 })
    ));
}

/// Absurd sizes give errors or sane layouts, never overflow.
#[test]
fn huge_devices() {
    for v in [V0_90, V1_0, V1_1, V1_2] {
        for d in [
            u64::MAX,
            u64::MAX / 512,
            u64::MAX / 512 + 1,
            1 << 50,
            1 << 52,
        ] {
            for bitmap in [AUTO, BitmapRequest::None, INTERNAL] {
                let p = CreateParams {
                    bitmap,
                    ..CreateParams::new(v, 2)
                };
                if let Ok(a) = plan_create(&p, &[d]) {
                    let m = a.members[0];
                    assert!(m.data_offset + a.size_sectors <= d, "{v} {d}");
                }
            }
        }
    }
    // 1.2 members of 2^40 sectors (512 TiB): about 2^37 bits at 4 KiB, over 1046528 bits
    // -> 2^18 halvings -> 1 GiB chunks; 2^41 sectors -> 2 GiB, the largest a header holds;
    // 2^50 sectors would need 1 TiB chunks: refused.
    let p = CreateParams {
        bitmap: INTERNAL,
        ..CreateParams::new(V1_2, 2)
    };
    let a = plan_create(&p, &[1 << 40]).unwrap();
    assert_eq!(a.bitmap.unwrap().chunk_bytes, 1 << 30);
    let a = plan_create(&p, &[1 << 41]).unwrap();
    assert_eq!(a.bitmap.unwrap().chunk_bytes, 1 << 31);
    assert!(matches!(
        plan_create(&p, &[1 << 50]),
        Err(GeometryError::BitmapChunkTooLarge { .. })
    ));
}
