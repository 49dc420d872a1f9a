//! Where `grow --bitmap=internal` puts a bitmap, against mdadm 4.2's rules, over device sizes
//! from 40 MiB to 3 TiB (no devices needed: the machine is built by `setup::create` and the
//! grow's superblock changes are visible before any I/O):
//! - 1.1/1.2: 8 sectors after the superblock with the chunk mdadm's create would pick for the
//!   same array (the room is the bitmap reserve create left before the bad-block log);
//! - 1.0: ending just before the bad-block log (-8), starting on a 4 KiB multiple;
//! - 0.90: the bitmap-present bit, with create's chunk;
//! - the bits: none dirty on a clean complete array, all on a degraded one, from the resync
//!   checkpoint on when a resync is owed.

mod common;

use mdraid::array::machine::{BitmapGrow, Machine};
use mdraid::array::setup::{create, DeviceInfo};
use mdraid::array::{CreateOptions, CreateSlot, Now};
use mdraid::format::geometry::{bitmap_space_sectors, grow_bitmap_1x, BitmapRequest, Sb1Space};
use mdraid::format::probe::Superblock;
use mdraid::format::MetadataVersion;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn machine(
    v: MetadataVersion,
    size: u64,
    bitmap: BitmapRequest,
    missing: bool,
    clean: bool,
) -> Machine {
    let mut slots = vec![CreateSlot::Device {
        name: "a".into(),
        dev: DeviceInfo {
            name: "a".into(),
            size,
            device_number: None,
            block_size: 512,
        },
        write_mostly: false,
        failfast: false,
    }];
    slots.push(if missing {
        CreateSlot::Missing
    } else {
        CreateSlot::Device {
            name: "b".into(),
            dev: DeviceInfo {
                name: "b".into(),
                size,
                device_number: None,
                block_size: 512,
            },
            write_mostly: false,
            failfast: false,
        }
    });
    let opts = CreateOptions {
        bitmap,
        name: "g".into(),
        assume_clean: clean,
        uuid: [3; 16],
        ..common::create_options(v, 2)
    };
    create(slots, &opts, Now::default()).unwrap().0
}

/// Completes every I/O the machine hands out (the bytes go nowhere).
fn settle(m: &mut Machine) {
    while let Some(io) = m.poll_io() {
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    assert!(!m.is_busy());
}

fn placement(m: &Machine) -> (Option<i32>, u32) {
    let off = match &m.members()[0].sb {
        Superblock::V1(s, _) => Some(s.bitmap_offset),
        Superblock::V0(_) => None,
    };
    (off, m.bitmap().unwrap().bitmap.header.chunksize)
}

const SIZES: [u64; 7] = [
    40 * MIB,
    100 * MIB + 3 * 512,
    GIB + 512,
    9 * GIB,
    210 * GIB,
    GIB << 10,
    3 * (GIB << 10),
];

#[test]
fn grown_bitmaps_sit_where_mdadm_puts_them() {
    for v in [
        MetadataVersion::V1_2,
        MetadataVersion::V1_1,
        MetadataVersion::V0_90,
    ] {
        for size in SIZES {
            if v == MetadataVersion::V0_90 && size > 2 * (GIB << 10) {
                continue;
            }
            for chunk in [None, Some(64 << 20), Some(128 << 20)] {
                let mut g = machine(v, size, BitmapRequest::None, false, true);
                let made = machine(
                    v,
                    size,
                    BitmapRequest::Internal { chunk_bytes: chunk },
                    false,
                    true,
                );
                g.grow_bitmap(BitmapGrow::Internal { chunk_bytes: chunk })
                    .unwrap_or_else(|e| panic!("{v} {size}: {e}"));
                assert_eq!(placement(&g), placement(&made), "{v} {size} {chunk:?}");
                if let Superblock::V1(s, _) = &g.members()[0].sb {
                    assert_eq!(s.bitmap_offset, 8);
                    assert_ne!(s.feature_map & 1, 0);
                } else if let Superblock::V0(s) = &g.members()[0].sb {
                    assert_ne!(s.state & (1 << 8), 0);
                }
                assert_eq!(g.bitmap().unwrap().dirty_chunks(), 0, "{v} {size}");
            }
        }
    }
}

#[test]
fn a_grown_1_0_bitmap_ends_before_the_bad_block_log() {
    for size in SIZES {
        let mut g = machine(
            MetadataVersion::V1_0,
            size,
            BitmapRequest::None,
            false,
            true,
        );
        let s = match &g.members()[0].sb {
            Superblock::V1(s, _) => s.clone(),
            _ => unreachable!(),
        };
        g.grow_bitmap(BitmapGrow::Internal { chunk_bytes: None })
            .unwrap();
        let (off, chunk) = placement(&g);
        let off = off.unwrap();
        // The room mdadm sees: between the data's end and the superblock, less the log.
        let room = (s.super_offset - s.data_offset - s.data_size) as i64 - 8;
        assert!(room > 1, "{size}: room {room}");
        let space = bitmap_space_sectors(s.size, u64::from(chunk));
        assert_eq!(off % 8, 0, "{size}: a 4 KiB multiple before the superblock");
        assert!(
            i64::from(-off) - 8 >= space as i64,
            "{size}: off {off} space {space}"
        );
        assert!(
            i64::from(-off) - 8 <= room.min(256),
            "{size}: off {off} room {room}"
        );
        assert_eq!(s.bblog_offset, -8, "{size}");
        assert!(u64::from(chunk) >= 64 << 20);
        // The same answer from the geometry rule directly.
        let direct = grow_bitmap_1x(
            &Sb1Space {
                version: MetadataVersion::V1_0,
                super_offset: s.super_offset,
                data_offset: s.data_offset,
                data_size: s.data_size,
                bblog_offset: s.bblog_offset,
                bblog_size: s.bblog_size,
                max_dev: s.max_dev,
            },
            s.size,
            None,
        )
        .unwrap();
        assert_eq!(direct, (off, u64::from(chunk)));
    }
}

#[test]
fn chunks_too_small_for_the_room_are_refused() {
    // 1 TiB with 4 KiB chunks needs 32 MiB of bits: far beyond the 128 KiB reserve.
    let mut g = machine(
        MetadataVersion::V1_2,
        GIB << 10,
        BitmapRequest::None,
        false,
        true,
    );
    assert!(g
        .grow_bitmap(BitmapGrow::Internal {
            chunk_bytes: Some(4096)
        })
        .is_err());
    assert!(g.bitmap().is_none(), "a refused grow changes nothing");
    assert!(g
        .grow_bitmap(BitmapGrow::Internal {
            chunk_bytes: Some(3000)
        })
        .is_err());
}

#[test]
fn grown_bits_are_dirty_where_md_would_sync() {
    // Degraded: everything (nothing is known about the missing mirror).
    let mut d = machine(
        MetadataVersion::V1_2,
        9 * GIB,
        BitmapRequest::None,
        true,
        true,
    );
    d.grow_bitmap(BitmapGrow::Internal {
        chunk_bytes: Some(64 << 20),
    })
    .unwrap();
    let bm = d.bitmap().unwrap();
    assert_eq!(bm.dirty_chunks(), bm.bitmap.chunks());
    // A resync owed from 0 (created without assume-clean): everything.
    let mut r = machine(
        MetadataVersion::V1_2,
        9 * GIB,
        BitmapRequest::None,
        false,
        false,
    );
    r.grow_bitmap(BitmapGrow::Internal {
        chunk_bytes: Some(64 << 20),
    })
    .unwrap();
    let bm = r.bitmap().unwrap();
    assert_eq!(bm.dirty_chunks(), bm.bitmap.chunks());
    // Removing it: feature bit off, nothing left to remove twice.
    assert!(
        r.grow_bitmap(BitmapGrow::None).is_err(),
        "busy until the rounds are done"
    );
    settle(&mut r);
    r.grow_bitmap(BitmapGrow::None).unwrap();
    settle(&mut r);
    assert!(r.bitmap().is_none());
    match &r.members()[0].sb {
        Superblock::V1(s, _) => assert_eq!(s.feature_map & 1, 0),
        _ => unreachable!(),
    }
    assert!(r.grow_bitmap(BitmapGrow::None).is_err());
}

#[test]
fn hostile_superblock_fields_give_errors_not_panics() {
    for v in [
        MetadataVersion::V1_0,
        MetadataVersion::V1_1,
        MetadataVersion::V1_2,
    ] {
        for (so, dof, ds, bo, bs) in [
            (u64::MAX, 0, 0, i32::MIN, u16::MAX),
            (0, u64::MAX, u64::MAX, i32::MAX, u16::MAX),
            (u64::MAX, u64::MAX, 0, -1, 0),
            (8, 0, 0, 0, 0),
        ] {
            let sp = Sb1Space {
                version: v,
                super_offset: so,
                data_offset: dof,
                data_size: ds,
                bblog_offset: bo,
                bblog_size: bs,
                max_dev: u32::MAX,
            };
            for size in [0, 1, u64::MAX] {
                for chunk in [None, Some(4096), Some(1 << 30)] {
                    let _ = grow_bitmap_1x(&sp, size, chunk);
                }
            }
        }
    }
}
