//! The bitmap format's edges (`format::bitmap`): boundaries the format unit tests do not
//! reach — the write-behind limit, the bits size limit, a chunk count that is not a multiple
//! of 8, a bits vector shorter than its header says, partial last bytes, clustered bitmaps and
//! where each superblock puts its bitmap. Written for the bitmap group of cargo-mutants (see
//! TESTING.md); each test names what it holds.

mod common;

use mdraid::array::{Array, CreateOptions};
use mdraid::device::MemDevice;
use mdraid::format::bitmap::{
    count_bits, location_sb0, location_sb1, offset_sb0, Bitmap, BitmapError, BitmapSuper,
    BITMAP_MAGIC, BITMAP_STATE_STALE, BITMAP_STATE_WRITE_ERROR, MAX_BITS_BYTES, WRITE_BEHIND_MAX,
};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::{sb0, sb1, MetadataVersion};

fn hdr(sync_size: u64, chunksize: u32) -> BitmapSuper {
    BitmapSuper::new([3; 16], sync_size, chunksize)
}

#[test]
fn write_behind_up_to_the_limit_is_valid() {
    let mut h = hdr(1 << 20, 65536);
    h.write_behind = WRITE_BEHIND_MAX;
    assert_eq!(h.validate(), Ok(()));
    h.write_behind = WRITE_BEHIND_MAX + 1;
    assert_eq!(
        h.validate(),
        Err(BitmapError::BadWriteBehind(WRITE_BEHIND_MAX + 1))
    );
}

#[test]
fn header_and_bits_round_up_to_whole_sectors() {
    // 256 header bytes + ceil(chunks / 8): 256 + 256 = 512 is one sector, one more chunk byte
    // is two, and a 1 MiB bitmap is 2049 sectors.
    assert_eq!(hdr(2048 * 128, 65536).byte_len(), 512);
    assert_eq!(hdr(2048 * 128, 65536).sectors(), 1);
    assert_eq!(hdr(2048 * 128 + 1, 65536).byte_len(), 513);
    assert_eq!(hdr(2048 * 128 + 1, 65536).sectors(), 2);
    let big = hdr((1 << 23) * 128, 65536);
    assert_eq!(big.bits_len(), 1 << 20);
    assert_eq!(big.sectors(), 2049);
    assert_eq!(big.space_bytes(4096), (1 << 20) + 4096);
    assert_eq!(big.node_offset_sectors(3), 3 * ((1 << 20) + 4096) / 512);
}

#[test]
fn a_chunk_range_ending_on_a_chunk_boundary_takes_no_next_chunk() {
    let h = hdr(1 << 20, 65536); // 128-sector chunks
    assert_eq!(h.chunks_for(0, 128), Some(0..1));
    assert_eq!(h.chunks_for(128, 128), Some(1..2));
    assert_eq!(h.chunks_for(100, 28), Some(0..1));
    assert_eq!(h.chunks_for(100, 29), Some(0..2));
    assert_eq!(h.chunks_for(300, 0), Some(2..2));
}

#[test]
fn bits_of_exactly_the_limit_are_accepted_and_one_more_byte_is_not() {
    // 512-byte chunks over 2^33 * 8 sectors need exactly MAX_BITS_BYTES of bits: the header
    // alone parses up to the missing bits (Truncated), one chunk more is TooLarge.
    let at = hdr(MAX_BITS_BYTES * 8, 512);
    assert_eq!(at.bits_len(), MAX_BITS_BYTES);
    let need = 256 + MAX_BITS_BYTES as usize;
    assert_eq!(
        Bitmap::parse(&at.to_bytes()),
        Err(BitmapError::Truncated { need, have: 256 })
    );
    let over = hdr(MAX_BITS_BYTES * 8 + 1, 512);
    assert!(matches!(
        Bitmap::parse(&over.to_bytes()),
        Err(BitmapError::TooLarge { .. })
    ));
    assert!(matches!(
        Bitmap::new(over),
        Err(BitmapError::TooLarge { .. })
    ));
}

/// 12 chunks of 512 bytes: two bytes of bits, the last one half used.
fn twelve() -> Bitmap {
    Bitmap::new(hdr(12, 512)).unwrap()
}

#[test]
fn chunks_past_the_count_are_out_of_range_even_inside_the_last_byte() {
    let mut bm = twelve();
    assert_eq!(bm.chunks(), 12);
    assert_eq!(bm.bits.len(), 2);
    bm.bits[1] = 0xf0; // trailing bits as read: not chunks
    for c in 12..16 {
        assert!(!bm.get(c), "chunk {c}");
        assert_eq!(
            bm.set(c),
            Err(BitmapError::ChunkOutOfRange {
                chunk: c,
                chunks: 12
            })
        );
        assert!(bm.clear(c).is_err(), "chunk {c}");
    }
    assert_eq!(bm.bits[1], 0xf0, "untouched");
    assert_eq!(bm.count_dirty(), 0);
    assert_eq!(bm.dirty_chunks().count(), 0);
    // Every chunk in range: its own bit, LSB first.
    for c in 0..12u64 {
        assert!(!bm.set(c).unwrap());
        assert_eq!(bm.bits[(c / 8) as usize] & (1 << (c % 8)), 1 << (c % 8));
        assert!(bm.get(c));
        assert_eq!(bm.count_dirty(), c + 1);
    }
    assert_eq!(bm.bits, vec![0xff, 0xff]);
    assert_eq!(
        bm.dirty_chunks().collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>()
    );
    for c in (0..12u64).rev() {
        assert!(bm.clear(c).unwrap());
        assert!(!bm.get(c));
        assert_eq!(bm.count_dirty(), c);
    }
    assert_eq!(bm.bits, vec![0x00, 0xf0]);
}

#[test]
fn a_bits_vector_shorter_than_its_header_is_out_of_range_not_a_panic() {
    // `bits` is a public field: a caller may leave it short. Chunks past it read clean and
    // refuse to change.
    let mut bm = Bitmap {
        header: hdr(64, 512),
        bits: vec![0xff],
    };
    assert_eq!(bm.chunks(), 64);
    assert!(bm.get(7));
    for c in [8, 9, 63] {
        assert!(!bm.get(c), "chunk {c}");
        assert!(bm.set(c).is_err(), "chunk {c}");
        assert!(bm.clear(c).is_err(), "chunk {c}");
    }
}

#[test]
fn count_bits_counts_the_used_part_of_a_partial_last_byte() {
    assert_eq!(count_bits(&[0xff, 0x0f], 12), 12);
    assert_eq!(count_bits(&[0xff, 0xff], 12), 12);
    assert_eq!(count_bits(&[0x00, 0x05], 11), 2);
    assert_eq!(count_bits(&[0x00, 0x05], 10), 1);
    assert_eq!(count_bits(&[0x01, 0x01, 0x01], 17), 3);
    assert_eq!(count_bits(&[0x80, 0x80, 0x80], 23), 2);
    assert_eq!(
        count_bits(&[0xff], 16),
        8,
        "bits past the vector are not there"
    );
    assert_eq!(count_bits(&[0xff, 0xff], 0), 0);
    assert_eq!(count_bits(&[0xaa; 4], 32), 16);
}

#[test]
fn a_clustered_bitmap_is_not_stale_for_older_events_but_its_flag_still_counts() {
    let mut h = hdr(1 << 20, 65536);
    h.events = 10;
    h.nodes = 2;
    let mut bm = Bitmap::new(h).unwrap();
    bm.set(5).unwrap();
    assert!(!bm.is_stale(11));
    assert_eq!(bm.count_dirty_for(11), 1);
    assert!(!bm.needs_sync(6, 11));
    assert!(!bm.apply_stale_rule(11));
    assert_eq!(bm.count_dirty(), 1);
    bm.header.state = BITMAP_STATE_STALE;
    assert!(bm.is_stale(0));
    assert!(bm.needs_sync(6, 0));
    // Other state bits are not the stale bit.
    bm.header.state = BITMAP_STATE_WRITE_ERROR;
    assert!(!bm.is_stale(0));
    assert!(!bm.header.stale_flag());
}

fn created(version: MetadataVersion, bitmap: bool) -> Vec<MemDevice> {
    let slots = common::mem_slots(2, 24 << 20);
    let opts = CreateOptions {
        bitmap: if bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(1 << 20),
            }
        } else {
            BitmapRequest::None
        },
        name: "loc".into(),
        now: 1_900_000_000,
        uuid: [4; 16],
        seed: 4,
        ..common::create_options(version, 2)
    };
    let a = Array::create(slots, &opts).unwrap();
    a.devices().to_vec()
}

fn magic_at(dev: &MemDevice, off: u64) -> bool {
    let b = &dev.as_slice()[off as usize..off as usize + 4];
    u32::from_le_bytes(b.try_into().unwrap()) == BITMAP_MAGIC
}

#[test]
fn each_superblock_points_at_its_bitmap() {
    for v in [
        MetadataVersion::V1_0,
        MetadataVersion::V1_1,
        MetadataVersion::V1_2,
    ] {
        for dev in created(v, true) {
            let mut d = dev.clone();
            let Superblock::V1(s, _) = probe(&mut d, None).unwrap().sb else {
                panic!("{v:?}: not 1.x");
            };
            let at = location_sb1(&s).expect("a bitmap");
            assert!(magic_at(&dev, at), "{v:?}: no bitmap at {at}");
            assert_eq!(
                at,
                (s.super_offset as i64 + i64::from(s.bitmap_offset)) as u64 * 512
            );
            let mut no = s.clone();
            no.feature_map &= !sb1::FEATURE_BITMAP_OFFSET;
            assert_eq!(location_sb1(&no), None, "{v:?}");
            // Other feature bits do not make a bitmap.
            no.feature_map = !sb1::FEATURE_BITMAP_OFFSET;
            assert_eq!(location_sb1(&no), None, "{v:?}");
            // An offset before the device start is none.
            let mut neg = s.clone();
            neg.bitmap_offset = -(s.super_offset as i32) - 1;
            assert_eq!(location_sb1(&neg), None, "{v:?}");
        }
        for dev in created(v, false) {
            let mut d = dev.clone();
            let Superblock::V1(s, _) = probe(&mut d, None).unwrap().sb else {
                panic!("{v:?}: not 1.x");
            };
            assert_eq!(location_sb1(&s), None, "{v:?}");
        }
    }
    for dev in created(MetadataVersion::V0_90, true) {
        let sectors = dev.as_slice().len() as u64 / 512;
        let mut d = dev.clone();
        let Superblock::V0(s) = probe(&mut d, None).unwrap().sb else {
            panic!("not 0.90");
        };
        let at = location_sb0(&s, sectors).expect("a bitmap");
        assert!(magic_at(&dev, at), "0.90: no bitmap at {at}");
        assert_eq!(at, sb0::location(sectors).unwrap() * 512 + 4096);
        assert_eq!(offset_sb0(sectors), Some(at));
        let mut no = s.clone();
        no.state &= !sb0::STATE_BITMAP_PRESENT;
        assert_eq!(location_sb0(&no, sectors), None);
        no.state = !sb0::STATE_BITMAP_PRESENT;
        assert_eq!(location_sb0(&no, sectors), None);
        // The offset alone is there whether or not the state says bitmap.
        assert_eq!(offset_sb0(sectors), Some(at));
        assert_eq!(offset_sb0(100), None, "too small for a 0.90 superblock");
    }
}

/// The state bits are md's (`enum bitmap_state`: BITMAP_STALE is bit 1, BITMAP_WRITE_ERROR bit
/// 2), read from the header's byte 48. (Mutant: `1 << 2` → `1 >> 2` made the write-error
/// flag 0.)
#[test]
fn state_flags_are_mds_bits() {
    let mut raw = hdr(1 << 20, 65536).to_bytes();
    raw[48] = 1 << 2;
    let h = BitmapSuper::parse(&raw).unwrap();
    assert_eq!(h.state, BITMAP_STATE_WRITE_ERROR);
    assert!(!h.stale_flag());
    raw[48] = 1 << 1;
    let h = BitmapSuper::parse(&raw).unwrap();
    assert_eq!(h.state, BITMAP_STATE_STALE);
    assert!(h.stale_flag());
}
