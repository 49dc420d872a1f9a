//! Bitmaps and bad-block logs of every fixture member: they decode, re-encode byte for byte, and
//! render exactly as `mdadm --examine-bitmap` / `--examine-badblocks` did.

use mdraid::format::badblocks::{self, BadBlock, BadBlockLog, LogStatus};
use mdraid::format::bitmap::{self, Bitmap, BitmapSuper};
use mdraid::format::{sb0, sb1};
use mdraid::report::bitmap::{
    examine_badblocks_text, examine_bitmap_bytes_text, examine_bitmap_text, no_bitmap_text,
};
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

fn read_to_end(path: &Path, off: u64) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    let mut b = Vec::new();
    f.read_to_end(&mut b).unwrap();
    b
}

#[allow(clippy::large_enum_variant)]
enum Meta {
    V1(sb1::Superblock1),
    V0(sb0::Superblock0),
}

fn superblock(img: &Path) -> Meta {
    let sectors = std::fs::metadata(img).unwrap().len() / 512;
    for sector in [0, 8, (sectors - 16) & !7] {
        if let Ok(sb) = sb1::Superblock1::parse(&read_at(img, sector * 512, 4096)) {
            if sb.super_offset == sector {
                return Meta::V1(sb);
            }
        }
    }
    let loc = sb0::location(sectors).unwrap();
    Meta::V0(sb0::Superblock0::parse(&read_at(img, loc * 512, 4096)).expect("a superblock"))
}

/// Reads a bitmap the way a driver would: the header first, then header plus bits.
fn load_bitmap(img: &Path, off: u64) -> (Bitmap, Vec<u8>) {
    let h = BitmapSuper::parse(&read_at(img, off, 512)).unwrap();
    h.validate().unwrap();
    let raw = read_at(img, off, h.byte_len() as usize);
    (Bitmap::parse(&raw).unwrap(), raw)
}

#[test]
fn bitmaps_roundtrip_and_examine_text() {
    let mut with_bitmap = 0;
    let mut without = 0;
    for fx in fixture_names() {
        for dev in fixture_members(&fx) {
            let img = fixture_image(&fx, &dev);
            let name = format!("/dev/{dev}");
            let want = fixture_text(&fx, &format!("bitmap-{dev}.txt"));
            match superblock(&img) {
                Meta::V1(sb) => match bitmap::location_sb1(&sb) {
                    Some(off) => {
                        let (bm, raw) = load_bitmap(&img, off);
                        assert_eq!(bm.to_bytes(), raw, "{fx}/{dev}: re-encoding");
                        assert_eq!(bm.header.uuid, sb.set_uuid, "{fx}/{dev}: uuid");
                        assert_eq!(bm.header.sync_size, sb.size, "{fx}/{dev}: sync_size");
                        // Writing back into the sector keeps what follows the bits.
                        let mut sector = read_at(&img, off, 4096);
                        let orig = sector.clone();
                        bm.encode_into(&mut sector).unwrap();
                        assert_eq!(sector, orig, "{fx}/{dev}: encode_into");
                        assert_eq!(
                            examine_bitmap_text(&name, &bm),
                            want,
                            "{fx}/{dev}: --examine-bitmap"
                        );
                        // The raw-bytes path (as mdadm reads) agrees.
                        assert_eq!(
                            examine_bitmap_bytes_text(&name, &read_to_end(&img, off)),
                            want,
                            "{fx}/{dev}: raw --examine-bitmap"
                        );
                        with_bitmap += 1;
                    }
                    None => {
                        assert_eq!(no_bitmap_text(&name), want, "{fx}/{dev}");
                        without += 1;
                    }
                },
                Meta::V0(sb) => {
                    let sectors = std::fs::metadata(&img).unwrap().len() / 512;
                    assert_eq!(bitmap::location_sb0(&sb, sectors), None, "{fx}/{dev}");
                    // mdadm looks 4 KiB after the superblock anyway and reports what it finds.
                    let off = bitmap::offset_sb0(sectors).unwrap();
                    let buf = read_to_end(&img, off);
                    assert!(Bitmap::parse(&buf).is_err());
                    assert_eq!(
                        examine_bitmap_bytes_text(&name, &buf),
                        want,
                        "{fx}/{dev}: 0.90 --examine-bitmap"
                    );
                    without += 1;
                }
            }
        }
    }
    assert!(with_bitmap >= 15, "only {with_bitmap} bitmaps seen");
    assert!(without >= 4, "only {without} bitmap-less members seen");
}

#[test]
fn unclean_bitmap_dirty_chunks() {
    for dev in ["vda", "vdb"] {
        let img = fixture_image("r1-unclean", dev);
        let Meta::V1(sb) = superblock(&img) else {
            panic!("1.2 expected")
        };
        let (bm, _) = load_bitmap(&img, bitmap::location_sb1(&sb).unwrap());
        assert_eq!(bm.header.chunksize, 64 << 10);
        assert_eq!(bm.chunks(), 496);
        assert_eq!(bm.count_dirty(), 16);
        assert_eq!(
            bm.dirty_chunks().collect::<Vec<_>>(),
            (64..80).collect::<Vec<_>>()
        );
        // The generation-2 write: 1 MiB at array offset 4 MiB = chunks 64..80.
        assert_eq!(bm.header.chunks_for(8192, 2048), Some(64..80));
        assert!(!bm.is_stale(sb.events));
        assert_eq!(bm.count_dirty_for(sb.events), 16);
    }
}

#[test]
fn stale_bitmap_of_kicked_member() {
    // vdb was failed and removed; vda went on. vdb's bitmap is older than the array.
    let a = fixture_image("r1-degraded-stale", "vda");
    let b = fixture_image("r1-degraded-stale", "vdb");
    let (Meta::V1(sa), Meta::V1(sb)) = (superblock(&a), superblock(&b)) else {
        panic!("1.x expected")
    };
    let (bma, _) = load_bitmap(&a, bitmap::location_sb1(&sa).unwrap());
    let (mut bmb, _) = load_bitmap(&b, bitmap::location_sb1(&sb).unwrap());
    assert!(!bma.is_stale(sa.events));
    assert!(bmb.is_stale(sa.events));
    assert!(!bmb.is_stale(sb.events));
    assert_eq!(bmb.count_dirty_for(sa.events), bmb.chunks());
    assert!(bmb.apply_stale_rule(sa.events));
    assert_eq!(bmb.header.events_cleared, sa.events);
    assert_eq!(bmb.count_dirty(), bmb.chunks());
}

#[test]
fn badblock_logs_roundtrip() {
    let mut seen = 0;
    for fx in fixture_names() {
        for dev in fixture_members(&fx) {
            let img = fixture_image(&fx, &dev);
            let Meta::V1(sb) = superblock(&img) else {
                continue;
            };
            let Some((off, len)) = badblocks::log_location(&sb) else {
                continue;
            };
            let raw = read_at(&img, off, len);
            // Byte for byte, whatever the area holds (never-written logs are all zeros).
            let stored = BadBlockLog::parse(&raw, sb.bblog_shift).unwrap();
            assert_eq!(
                stored.to_bytes(sb.bblog_size).unwrap(),
                raw,
                "{fx}/{dev}: re-encoding"
            );
            // What the kernel loads.
            let log = BadBlockLog::parse_for(&sb, &raw).unwrap();
            log.validate().unwrap();
            let present = sb.feature_map & sb1::FEATURE_BAD_BLOCKS != 0;
            assert_eq!(!log.is_empty(), present, "{fx}/{dev}: feature bit 8");
            assert_eq!(!stored.is_empty(), present, "{fx}/{dev}: stored entries");
            if !present {
                assert!(log.entries.is_empty());
            }
            let status = badblocks::log_status(&sb);
            assert_eq!(
                status,
                if present {
                    LogStatus::Present
                } else {
                    LogStatus::Empty
                }
            );
            if status == LogStatus::Empty {
                assert_eq!(
                    examine_badblocks_text(&format!("/dev/{dev}"), &sb, Some(&log)),
                    format!("Bad-blocks list is empty in /dev/{dev}\n")
                );
            }
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} logs seen");
}

#[test]
fn badblocks_fixture() {
    let img = fixture_image("r1-badblocks", "vda");
    let Meta::V1(sb) = superblock(&img) else {
        panic!("1.2 expected")
    };
    let (off, len) = badblocks::log_location(&sb).unwrap();
    assert_eq!((off, len), ((8 + 16) * 512, 8 * 512));
    let raw = read_at(&img, off, len);
    let log = BadBlockLog::parse_for(&sb, &raw).unwrap();
    assert_eq!(
        log.entries,
        vec![BadBlock {
            start_sector: 4096,
            len_sectors: 8
        }]
    );
    assert_eq!(badblocks::capacity(sb.bblog_size), 512);
    // Device sector 4096 is array sector 2048 with the data offset of 2048.
    assert_eq!(sb.data_offset, 2048);
    assert!(log.is_bad(sb.data_offset + 2048, 1));
    assert_eq!(
        examine_badblocks_text("/dev/vda", &sb, Some(&log)),
        fixture_text("r1-badblocks", "badblocks-vda.txt")
    );
    // The sysfs view of the same list.
    let sysfs: String = log
        .entries
        .iter()
        .map(|e| format!("{} {}\n", e.start_sector, e.len_sectors))
        .collect();
    assert_eq!(sysfs, fixture_text("r1-badblocks", "badblocks-sysfs.txt"));

    // Adding a neighbour merges; removing it restores the original bytes.
    let mut l2 = log.clone();
    l2.add(4104, 8, badblocks::capacity(sb.bblog_size)).unwrap();
    assert_eq!(
        l2.entries,
        vec![BadBlock {
            start_sector: 4096,
            len_sectors: 16
        }]
    );
    l2.remove(4104, 8, 512).unwrap();
    assert_eq!(l2.to_bytes(sb.bblog_size).unwrap(), raw);

    // No log configured.
    let mut none = sb.clone();
    none.bblog_size = 0;
    assert_eq!(
        examine_badblocks_text("/dev/vda", &none, None),
        "No bad-blocks list configured on /dev/vda\n"
    );
}

/// A small deterministic generator for the property tests (no external crates).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 17
    }
}

/// The property the log must keep: the set of bad sectors equals a plain model set, and the
/// entries stay in the kernel's form.
#[test]
fn add_remove_match_a_model() {
    for shift in [0u8, 3] {
        let unit = 1u64 << shift;
        let mut rng = Lcg(0x5eed + u64::from(shift));
        let mut log = BadBlockLog::new(shift).unwrap();
        let mut model = vec![false; 4096];
        for step in 0..3000 {
            let s = rng.next() % 4000;
            let n = rng.next() % 90;
            let before = log.clone();
            if rng.next() % 3 == 0 {
                let r = log.remove(s, n, badblocks::capacity(8));
                if r.is_ok() {
                    // Only whole units inside the range are cleared.
                    let a = s.div_ceil(unit) * unit;
                    let b = (s + n) / unit * unit;
                    for x in a..b.max(a) {
                        model[x as usize] = false;
                    }
                } else {
                    assert_eq!(log, before);
                }
            } else {
                let r = log.add(s, n, badblocks::capacity(8));
                if r.is_ok() && n > 0 {
                    let a = s / unit * unit;
                    let b = (s + n).div_ceil(unit) * unit;
                    for x in a..b {
                        model[x as usize] = true;
                    }
                } else if r.is_err() {
                    assert_eq!(log, before);
                }
            }
            log.validate()
                .unwrap_or_else(|e| panic!("step {step}: {e} {:?}", log.entries));
            // Adjacent entries are only ever split at 512-unit boundaries of an extent.
            for w in log.entries.windows(2) {
                if w[0].end() == w[1].start_sector {
                    assert_eq!(u64::from(w[0].len_sectors), 512 * unit, "step {step}");
                }
            }
            let mut seen = vec![false; 4096];
            for e in &log.entries {
                for x in e.start_sector..e.end() {
                    seen[x as usize] = true;
                }
            }
            assert_eq!(seen, model, "step {step}");
            for _ in 0..16 {
                let x = rng.next() % 4096;
                assert_eq!(
                    log.is_bad(x, 1),
                    model[x as usize],
                    "step {step} sector {x}"
                );
            }
            // first_bad agrees with the model on a random window.
            let (ws, wn) = (rng.next() % 4000, rng.next() % 96 + 1);
            let first = (ws..ws + wn).find(|&x| model[x as usize]);
            match (log.first_bad(ws, wn), first) {
                (None, None) => {}
                (Some((fs, fl)), Some(x)) => {
                    assert!(fs <= x && x < fs + fl, "step {step}");
                    assert!(fs >= ws || model[ws as usize], "step {step}");
                    assert!((fs..fs + fl).all(|y| model[y as usize]), "step {step}");
                }
                other => panic!("step {step}: {other:?}"),
            }
            assert_eq!(log.is_bad(ws, wn), first.is_some());
            // Every state serializes and reads back identically.
            let bytes = log.to_bytes(8).unwrap();
            assert_eq!(BadBlockLog::parse(&bytes, shift).unwrap(), log);
        }
    }
}

#[test]
fn fill_the_log() {
    let mut log = BadBlockLog::new(0).unwrap();
    let cap = badblocks::capacity(1);
    for i in 0..cap as u64 {
        log.add(i * 10, 1, cap).unwrap();
    }
    assert_eq!(log.entries.len(), 64);
    assert!(log.add(10_000, 1, cap).is_err());
    // Merging into an existing entry needs no room.
    log.add(1, 2, cap).unwrap();
    assert_eq!(log.entries.len(), 64);
    // A new range does not fit.
    log.add(100_000, 100, cap).unwrap_err();
    assert_eq!(log.to_bytes(1).unwrap().len(), 512);
}
