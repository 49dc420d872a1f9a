//! `--examine` and `--detail` text against what mdadm 4.2 printed for every fixture.

use mdraid::format::{sb0, sb1};
use mdraid::report::detail::{
    ConsistencyPolicy, DetailBitmap, DetailDisk, DetailIdentity, DISK_ACTIVE, DISK_FAILFAST,
    DISK_SYNC, DISK_WRITE_MOSTLY,
};
use mdraid::report::{detail_array, examine_sb0, examine_sb1, DetailInfo, ExamineOpts};
use mdraid::testutil::edge::edge_image;
use mdraid::testutil::*;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

fn read_at(path: &Path, off: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).unwrap();
    b
}

/// The guest's virtio disks: vda is 254:0, vdb 254:16, ...
fn guest_name(major: u32, minor: u32) -> Option<String> {
    if major != 254 || minor % 16 != 0 || minor / 16 >= 26 {
        return None;
    }
    Some(format!("/dev/vd{}", (b'a' + (minor / 16) as u8) as char))
}

fn guest_minor(dev: &str) -> u32 {
    u32::from(dev.as_bytes()[2] - b'a') * 16
}

#[allow(clippy::large_enum_variant)]
enum Found {
    V1(sb1::Superblock1, u64),
    V0(sb0::Superblock0),
}

/// The superblock on a member image (1.x at 8, 0 or the end; else 0.90), and the image size.
fn find_sb(img: &Path) -> (Found, u64) {
    let sectors = std::fs::metadata(img).unwrap().len() / 512;
    for sector in [8, 0, (sectors - 16) & !7] {
        let raw = read_at(img, sector * 512, 4096);
        if let Ok(sb) = sb1::Superblock1::parse(&raw) {
            if sb.super_offset == sector {
                return (Found::V1(sb, sector), sectors);
            }
        }
    }
    let loc = sb0::location(sectors).expect("device too small");
    let sb = sb0::Superblock0::parse(&read_at(img, loc * 512, 4096)).expect("no superblock");
    (Found::V0(sb), sectors)
}

fn assert_lines(got: &str, want: &str, what: &str) {
    let (g, w): (Vec<_>, Vec<_>) = (got.lines().collect(), want.lines().collect());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert_eq!(a, b, "{what}: line {} differs", i + 1);
    }
    assert_eq!(g.len(), w.len(), "{what}: line count\n{got}");
    assert_eq!(got, want, "{what}: trailing text");
}

fn examine_text(img: &Path, dev: &str) -> String {
    let (found, sectors) = find_sb(img);
    let name = format!("/dev/{dev}");
    let lookup = |ma, mi| guest_name(ma, mi);
    match found {
        Found::V1(sb, sector) => {
            let bitmap = (sb.feature_map & sb1::FEATURE_BITMAP_OFFSET != 0).then(|| {
                let at = (sector as i64 + i64::from(sb.bitmap_offset)) as u64;
                read_at(img, at * 512, 512)
            });
            let opts = ExamineOpts {
                device: Some(&name),
                homehost: Some("mdlab"),
                dev_sectors: sectors,
                bitmap_header: bitmap.as_deref(),
                dev_name: Some(&lookup),
            };
            examine_sb1(&sb, &opts).to_text()
        }
        Found::V0(sb) => {
            let opts = ExamineOpts {
                device: Some(&name),
                homehost: Some("mdlab"),
                dev_sectors: sectors,
                bitmap_header: None,
                dev_name: Some(&lookup),
            };
            examine_sb0(&sb, &opts).to_text()
        }
    }
}

#[test]
fn examine_matches_mdadm() {
    let mut seen = 0;
    for fx in fixture_names() {
        for dev in fixture_members(&fx) {
            let img = fixture_image(&fx, &dev);
            let got = examine_text(&img, &dev);
            let want = fixture_text(&fx, &format!("examine-{dev}.txt"));
            assert_lines(&got, &want, &format!("{fx}/{dev}"));
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} members");
}

/// What the array layer will report for a fixture's array while it ran, built here from the
/// members' superblocks. The fixtures' `--detail` ran before the array stopped: a clean stop
/// added one event afterwards, and the array was "active" (not clean) while it ran.
fn detail_info(fx: &str) -> DetailInfo {
    let mut v1 = Vec::new();
    let mut v0 = Vec::new();
    for dev in fixture_members(fx) {
        match find_sb(&fixture_image(fx, &dev)).0 {
            Found::V1(sb, _) => v1.push((dev, sb)),
            Found::V0(sb) => v0.push((dev, sb)),
        }
    }
    let mut disks = Vec::new();
    let mut info = if let Some(fresh) = v1.iter().map(|(_, s)| s).max_by_key(|s| s.events) {
        let fresh = fresh.clone();
        let (mut active, mut spares) = (0, 0);
        for (dev, sb) in v1.iter().filter(|(_, s)| s.events == fresh.events) {
            let role = fresh.dev_roles[sb.dev_number as usize];
            let mut state = 0;
            let mut raid_disk = -1;
            if u32::from(role) < fresh.raid_disks {
                state = DISK_ACTIVE | DISK_SYNC;
                raid_disk = i32::from(role);
                active += 1;
            } else if role == sb1::ROLE_SPARE {
                spares += 1;
            } else {
                continue;
            }
            if sb.devflags & sb1::DEVFLAG_WRITE_MOSTLY != 0 {
                state |= DISK_WRITE_MOSTLY;
            }
            if sb.devflags & sb1::DEVFLAG_FAILFAST != 0 {
                state |= DISK_FAILFAST;
            }
            disks.push(DetailDisk {
                number: sb.dev_number as i32,
                major: 254,
                minor: guest_minor(dev),
                raid_disk,
                state,
                path: Some(format!("/dev/{dev}")),
            });
        }
        let bitmap = fresh.feature_map & sb1::FEATURE_BITMAP_OFFSET != 0;
        DetailInfo {
            device: "/dev/md0".into(),
            version: match fresh.super_offset {
                0 => "1.1",
                8 => "1.2",
                _ => "1.0",
            }
            .into(),
            ctime: sb1::Superblock1::time_secs(fresh.ctime),
            level: fresh.level,
            layout: fresh.layout,
            chunk_size: fresh.chunksize * 512,
            array_size_bytes: fresh.size * 512,
            used_dev_sectors: Some(fresh.size),
            raid_disks: fresh.raid_disks,
            total_devices: disks.len() as u32,
            preferred_minor: None,
            persistent: true,
            bitmap: if bitmap {
                DetailBitmap::Internal
            } else {
                DetailBitmap::None
            },
            utime: sb1::Superblock1::time_secs(fresh.utime),
            clean: false,
            sync: None,
            active_devices: active,
            working_devices: active + spares,
            failed_devices: 0,
            spare_devices: spares,
            consistency_policy: Some(if bitmap {
                ConsistencyPolicy::Bitmap
            } else {
                ConsistencyPolicy::Resync
            }),
            identity: Some(DetailIdentity::from_sb1(&fresh)),
            homehost: Some("mdlab".into()),
            disks: Vec::new(),
        }
    } else {
        let (_, fresh) = v0.iter().max_by_key(|(_, s)| s.events).unwrap();
        for (dev, sb) in &v0 {
            let d = sb.this_disk;
            disks.push(DetailDisk {
                number: d.number as i32,
                major: d.major,
                minor: d.minor,
                raid_disk: d.raid_disk as i32,
                state: d.state & (DISK_ACTIVE | DISK_SYNC),
                path: Some(format!("/dev/{dev}")),
            });
        }
        DetailInfo {
            device: "/dev/md0".into(),
            version: "0.90".into(),
            ctime: fresh.ctime.into(),
            level: fresh.level,
            layout: fresh.layout,
            chunk_size: fresh.chunk_size,
            array_size_bytes: u64::from(fresh.size) * 1024,
            used_dev_sectors: Some(u64::from(fresh.size) * 2),
            raid_disks: fresh.raid_disks,
            total_devices: fresh.nr_disks,
            preferred_minor: Some(fresh.md_minor as i32),
            persistent: true,
            bitmap: DetailBitmap::None,
            utime: fresh.utime.into(),
            clean: false,
            sync: None,
            active_devices: fresh.active_disks,
            working_devices: fresh.working_disks,
            failed_devices: fresh.failed_disks,
            spare_devices: fresh.spare_disks,
            consistency_policy: Some(ConsistencyPolicy::Resync),
            identity: Some(DetailIdentity::from_sb0(fresh)),
            homehost: Some("mdlab".into()),
            disks: Vec::new(),
        }
    };
    info.disks = disks;
    // A clean stop bumped the on-disk events after `--detail` ran.
    let stopped_clean = match v1.iter().map(|(_, s)| s).max_by_key(|s| s.events) {
        Some(fresh) => fresh.is_clean(),
        None => v0.iter().all(|(_, s)| s.is_clean()),
    };
    // r1-missing: while it ran, its superblock still carried the creation second; the stop wrote
    // the one now on disk a second later (a runtime fact the images cannot show).
    if fx == "r1-missing" {
        info.utime -= 1;
    }
    if stopped_clean {
        match info.identity.as_mut().unwrap() {
            DetailIdentity::V1 { events, .. } | DetailIdentity::V0 { events, .. } => *events -= 1,
            _ => unreachable!(),
        }
    }
    info
}

#[test]
fn detail_matches_mdadm() {
    for fx in fixture_names() {
        let info = detail_info(&fx);
        let got = detail_array(&info).to_text();
        let want = fixture_text(&fx, "detail.txt");
        assert_lines(&got, &want, &format!("{fx}/detail"));
    }
}

// ---- Edge cases: fixture superblocks altered, against what mdadm 4.2 printed for the same bytes.
//
// Each case below alters a fixture member's superblock (1.2: r1-v1.2-bitmap/vda, 1.0:
// r1-v1.0/vda, 0.90: r1-v0.90/vda) the way `mutate` says. The expected text is that member's
// fixture examine text with line edits (start, end, replacement lines), taken from real mdadm 4.2
// run on images altered the same way (`mdadm --examine --homehost=mdlab`, TZ=UTC) on a host where
// only 254:0 resolves to a device name (/dev/vda).

type Edits = &'static [(usize, usize, &'static [&'static str])];

#[rustfmt::skip]
const EDGE_CASES: &[(&str, Edits)] = &[
    ("badcsum", &[(21, 23, &["       Checksum : 652f5915 - expected 652f594f", "         Events : 77"])]),
    ("faulty", &[(21, 22, &["       Checksum : 65305913 - correct"]), (25, 27, &["   Device Role : spare", "   Array State : .A ('A' == active, '.' == missing, 'R' == replacing)"])]),
    ("spare", &[(21, 22, &["       Checksum : 65305914 - correct"]), (25, 27, &["   Device Role : spare", "   Array State : .A ('A' == active, '.' == missing, 'R' == replacing)"])]),
    ("journal", &[(21, 22, &["       Checksum : 65305912 - correct"]), (25, 27, &["   Device Role : Journal", "   Array State : .A ('A' == active, '.' == missing, 'R' == replacing)"])]),
    ("recovery", &[(3, 4, &["    Feature Map : 0x3"]), (14, 14, &["Recovery Offset : 12345 sectors"]), (21, 22, &["       Checksum : 652f8950 - correct"])]),
    ("replacement", &[(3, 4, &["    Feature Map : 0x11"]), (21, 22, &["       Checksum : 652e5925 - correct"]), (25, 27, &["   Device Role : Replacement device 0", "   Array State : R. ('A' == active, '.' == missing, 'R' == replacing)"])]),
    ("dup_roles", &[(21, 22, &["       Checksum : 652e5915 - correct"]), (26, 27, &["   Array State : R. ('A' == active, '.' == missing, 'R' == replacing)"])]),
    ("three_roles", &[(21, 22, &["       Checksum : 652d5916 - correct"]), (26, 27, &["   Array State : ?. ('A' == active, '.' == missing, 'R' == replacing)", "WARNING Array state is inconsistent - each number should appear only once", " 0:0 1:0 2:0 3:- 4:- 5:- 6:- 7:- 8:- 9:- 10:- 11:- 12:- 13:- 14:- 15:- 16:- 17:- 18:- 19:- 20:- 21:- 22:- 23:- 24:- 25:- 26:- 27:- 28:- 29:- 30:- 31:- 32:- 33:- 34:- 35:- 36:- 37:- 38:- 39:- 40:- 41:- 42:- 43:- 44:- 45:- 46:- 47:- 48:- 49:- 50:- 51:- 52:- 53:- 54:- 55:- 56:- 57:- 58:- 59:- 60:- 61:- 62:- 63:- 64:- 65:- 66:- 67:- 68:- 69:- 70:- 71:- 72:- 73:- 74:- 75:- 76:- 77:- 78:- 79:- 80:- 81:- 82:- 83:- 84:- 85:- 86:- 87:- 88:- 89:- 90:- 91:- 92:- 93:- 94:- 95:- 96:- 97:- 98:- 99:- 100:- 101:- 102:- 103:- 104:- 105:- 106:- 107:- 108:- 109:- 110:- 111:- 112:- 113:- 114:- 115:- 116:- 117:- 118:- 119:- 120:- 121:- 122:- 123:- 124:- 125:- 126:- 127:-"])]),
    ("role_high", &[(21, 22, &["       Checksum : 65335915 - correct"]), (26, 27, &["   Array State : A. ('A' == active, '.' == missing, 'R' == replacing)", "WARNING Array state is inconsistent - each number should appear only once", " 0:0 1:5 2:- 3:- 4:- 5:- 6:- 7:- 8:- 9:- 10:- 11:- 12:- 13:- 14:- 15:- 16:- 17:- 18:- 19:- 20:- 21:- 22:- 23:- 24:- 25:- 26:- 27:- 28:- 29:- 30:- 31:- 32:- 33:- 34:- 35:- 36:- 37:- 38:- 39:- 40:- 41:- 42:- 43:- 44:- 45:- 46:- 47:- 48:- 49:- 50:- 51:- 52:- 53:- 54:- 55:- 56:- 57:- 58:- 59:- 60:- 61:- 62:- 63:- 64:- 65:- 66:- 67:- 68:- 69:- 70:- 71:- 72:- 73:- 74:- 75:- 76:- 77:- 78:- 79:- 80:- 81:- 82:- 83:- 84:- 85:- 86:- 87:- 88:- 89:- 90:- 91:- 92:- 93:- 94:- 95:- 96:- 97:- 98:- 99:- 100:- 101:- 102:- 103:- 104:- 105:- 106:- 107:- 108:- 109:- 110:- 111:- 112:- 113:- 114:- 115:- 116:- 117:- 118:- 119:- 120:- 121:- 122:- 123:- 124:- 125:- 126:- 127:-"])]),
    ("active", &[(15, 16, &["          State : active"])]),
    ("nobitmapmagic", &[(3, 4, &["    Feature Map : 0x0"]), (18, 19, &[]), (21, 22, &["       Checksum : 652f5971 - expected 652f5970"])]),
    ("reshape", &[(3, 4, &["    Feature Map : 0x5"]), (19, 19, &["  Reshape pos'n : 2048", "  Delta Devices : -1 (3->2)", "      New Level : raid5", "  New Chunksize : 64K", ""]), (21, 22, &["       Checksum : 652f69a0 - correct"]), (26, 27, &["   Array State : AA. ('A' == active, '.' == missing, 'R' == replacing)"])]),
    ("devflag_other", &[(19, 19, &["          Flags :"]), (21, 22, &["       Checksum : 652f5919 - correct"])]),
    ("devflag_wm", &[(19, 19, &["          Flags : write-mostly"]), (21, 22, &["       Checksum : 652f5916 - correct"])]),
    ("level5", &[(7, 9, &["     Raid Level : raid5", "   Raid Devices : 3"]), (11, 12, &["     Array Size : 63488 KiB (62.00 MiB 65.01 MB)"]), (21, 22, &["       Checksum : 652f599c - correct"]), (24, 24, &["         Layout : left-symmetric", "     Chunk Size : 64K"]), (26, 27, &["   Array State : AA. ('A' == active, '.' == missing, 'R' == replacing)"])]),
    ("level10", &[(7, 9, &["     Raid Level : raid10", "   Raid Devices : 4"]), (11, 12, &["     Array Size : 63488 KiB (62.00 MiB 65.01 MB)"]), (21, 22, &["       Checksum : 652f5aa2 - correct"]), (24, 24, &["         Layout : near=2", "     Chunk Size : 64K"]), (26, 27, &["   Array State : AA.. ('A' == active, '.' == missing, 'R' == replacing)"])]),
    ("level0lay", &[(3, 4, &["    Feature Map : 0x1001"]), (7, 8, &["     Raid Level : raid0"]), (11, 12, &[]), (21, 22, &["       Checksum : 652f6996 - correct"]), (24, 24, &["         Layout : alternate", "     Chunk Size : 64K"])]),
    ("linear", &[(7, 8, &["     Raid Level : linear"]), (11, 12, &[]), (21, 22, &["       Checksum : 652f5914 - correct"]), (24, 24, &["       Rounding : 0K"])]),
    ("truncated", &[(14, 15, &["   Unused Space : before=1968 sectors, after=18446744073709526080 sectors"])]),
    ("newoffset", &[(3, 4, &["    Feature Map : 0x45"]), (13, 13, &["     New Offset : 18446744073709549568 sectors"]), (14, 15, &[]), (19, 19, &["  Reshape pos'n : 0", "      New Level : raid0", ""]), (21, 22, &["       Checksum : 652f495a - correct"])]),
    ("ppl", &[(3, 4, &["    Feature Map : 0x400"]), (14, 15, &["   Unused Space : before=1840 sectors, after=0 sectors"]), (18, 19, &["            PPL : 200 sectors at offset 8 sectors from superblock"]), (21, 22, &["       Checksum : 65f75d14 - correct"])]),
    ("bigbitmap", &[(14, 15, &["   Unused Space : before=1912 sectors, after=0 sectors"])]),
    ("name_nohost", &[(5, 6, &["           Name : otherhost:fix"]), (21, 22, &["       Checksum : 6a255d36 - correct"])]),
    ("devnum_big", &[(21, 22, &["       Checksum : 652f6c9d - correct"]), (25, 26, &["   Device Role : spare"])]),
    ("nobblog", &[(20, 22, &["       Checksum : 65275915 - correct"])]),
    ("v10_active", &[(15, 16, &["          State : active"]), (20, 21, &["       Checksum : 73f4ab4f - correct"])]),
    ("v10_bitmap_ok", &[(3, 4, &["    Feature Map : 0x1"]), (14, 15, &["   Unused Space : before=0 sectors, after=96 sectors"]), (18, 18, &["Internal Bitmap : -16 sectors from superblock"]), (20, 21, &["       Checksum : 73f4a759 - correct"])]),
    ("sb0_badcsum", &[(18, 20, &["       Checksum : 6ab0a6c6 - expected 6ab0a715", "         Events : 99"]), (26, 27, &["   1     1     254       16        1      active sync"])]),
    ("sb0_faulty", &[(14, 15, &[" Active Devices : 1"]), (16, 17, &[" Failed Devices : 1"]), (18, 19, &["       Checksum : 6ab0a6c1 - correct"]), (26, 27, &["   1     1     254       16        1      faulty"])]),
    ("sb0_spare", &[(17, 19, &["  Spare Devices : 1", "       Checksum : 6ab0a7e9 - correct"]), (26, 27, &["   1     1     254       16        1      active sync", "   2     2     254       32        2      spare"])]),
    ("sb0_wm", &[(18, 19, &["       Checksum : 6ab0aec6 - correct"]), (23, 24, &["this     0     254        0        0      active sync write-mostly   /dev/vda"]), (26, 27, &["   1     1     254       16        1      active sync write-mostly failfast"])]),
    ("sb0_active", &[(13, 14, &["          State : active"]), (18, 19, &["       Checksum : 6ab0a6c5 - correct"]), (26, 27, &["   1     1     254       16        1      active sync"])]),
    ("sb0_bitmap", &[(18, 19, &["       Checksum : 6ab0a7c6 - expected 6ab0a6c6"]), (26, 27, &["   1     1     254       16        1      active sync"])]),
    ("sb0_bitmap_ok", &[(14, 14, &["Internal Bitmap : present"]), (18, 19, &["       Checksum : 6ab0a7c6 - correct"]), (26, 27, &["   1     1     254       16        1      active sync"])]),
    ("sb0_removed", &[(18, 19, &["       Checksum : 6ab0a6c8 - correct"]), (26, 27, &["   1     1     254       16        1      removed"])]),
    ("sb0_level5", &[(5, 6, &["     Raid Level : raid5"]), (7, 9, &["     Array Size : 65408 (63.88 MiB 66.98 MB)", "   Raid Devices : 3"]), (18, 19, &["       Checksum : 6ab1a6cd - correct"]), (21, 21, &["         Layout : left-symmetric", "     Chunk Size : 64K"]), (26, 27, &["   1     1     254       16        1      active sync", "   2     0       0        0        0      spare"])]),
    ("sb0_notpersist", &[(4, 4, &["           Eedk : not persistent"]), (18, 19, &["       Checksum : 6ab0a6c7 - correct"]), (26, 27, &["   1     1     254       16        1      active sync"])]),
];

fn apply_edits(base: &str, edits: Edits) -> String {
    let mut lines: Vec<String> = base.lines().map(String::from).collect();
    for &(a, b, new) in edits.iter().rev() {
        lines.splice(a..b, new.iter().map(|s| s.to_string()));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn edge_cases_match_mdadm() {
    let host_name = |ma: u32, mi: u32| (ma == 254 && mi == 0).then(|| "/dev/vda".to_string());
    let names: Vec<&str> = EDGE_CASES.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        names,
        mdraid::testutil::edge::CASES,
        "the table and the case list drift"
    );
    for &(case, edits) in EDGE_CASES {
        let (fx, img, sector) = edge_image(case);
        let dev_sectors = img.len() as u64 / 512;
        let raw = &img[sector as usize * 512..sector as usize * 512 + 4096];
        let got = if case.starts_with("sb0_") {
            let sb = sb0::Superblock0::parse(raw).unwrap();
            let bm = &img[(sector as usize + 8) * 512..][..512];
            let opts = ExamineOpts {
                device: Some("/dev/vda"),
                homehost: Some("mdlab"),
                dev_sectors,
                bitmap_header: Some(bm),
                dev_name: Some(&host_name),
            };
            examine_sb0(&sb, &opts).to_text()
        } else {
            let sb = sb1::Superblock1::parse(raw).unwrap();
            let mut bitmap = Vec::new();
            if sb.feature_map & sb1::FEATURE_BITMAP_OFFSET != 0 {
                let at = (sector as i64 + i64::from(sb.bitmap_offset)) as usize * 512;
                bitmap = img[at..at + 512].to_vec();
            }
            let opts = ExamineOpts {
                device: Some("/dev/vda"),
                homehost: Some("mdlab"),
                dev_sectors,
                bitmap_header: Some(&bitmap),
                dev_name: Some(&host_name),
            };
            examine_sb1(&sb, &opts).to_text()
        };
        let want = apply_edits(&fixture_text(fx, "examine-vda.txt"), edits);
        assert_lines(&got, &want, case);
    }
}

/// Superblocks with random bytes in random places never make examine panic.
#[test]
fn examine_survives_garbage() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let raw1 = read_at(&fixture_image("r1-v1.2-bitmap", "vda"), 8 * 512, 4096);
    let img0 = fixture_image("r1-v0.90", "vda");
    let raw0 = read_at(&img0, sb0::location(65536).unwrap() * 512, 4096);
    let name = |_: u32, _: u32| Some("/dev/x".to_string());
    for round in 0..3000 {
        let mut bm = vec![0u8; 512];
        for b in bm.iter_mut() {
            *b = next() as u8;
        }
        bm[..4].copy_from_slice(&0x6d74_6962u32.to_le_bytes());
        let opts = ExamineOpts {
            device: Some("/dev/x"),
            homehost: Some("mdlab"),
            dev_sectors: next() >> (next() % 64),
            bitmap_header: (round % 3 != 0).then_some(&bm[..]),
            dev_name: Some(&name),
        };
        let mut r1 = raw1.clone();
        let mut r0 = raw0.clone();
        for _ in 0..(1 + next() % 24) {
            let v = next();
            // Mostly the fixed part, where the interesting fields are.
            let at1 = (v % 300) as usize;
            r1[at1] = (v >> 32) as u8;
            let at0 = (v % 4096) as usize;
            r0[at0] = (v >> 40) as u8;
            if v % 7 == 0 {
                r1[8 + (v % 200) as usize] = 0xff;
            }
        }
        r1[..4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
        r1[4..8].copy_from_slice(&1u32.to_le_bytes());
        if let Ok(sb) = sb1::Superblock1::parse(&r1) {
            let t = examine_sb1(&sb, &opts).to_text();
            assert!(t.len() < 1 << 20);
        }
        r0[..12].copy_from_slice(&[0xfc, 0x4e, 0x2b, 0xa9, 0, 0, 0, 0, 90, 0, 0, 0]);
        if let Ok(sb) = sb0::Superblock0::parse(&r0) {
            let _ = examine_sb0(&sb, &opts).to_text();
        }
    }
}
