//! Rules of `Superblock1::validate_blocks` (`core/src/format/sb1.rs`): on a device with
//! logical blocks larger than a sector every region of a 1.x layout starts on a block, and
//! the bitmap and the bad-block log start past the block(s) the superblock occupies (md
//! writes the superblock a whole block at a time). Written for the mutants cargo-mutants
//! found surviving the `validate` group (scripts/mutants.sh, TESTING.md); each test names
//! its mutants.

mod common;
use common::new_array;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::sb1::{Superblock1, FEATURE_BITMAP_OFFSET};
use mdraid::format::MetadataVersion;

/// A 1.2 member's superblock (sector 8), valid on 4 KiB blocks, with `max_dev` roles.
fn sb12(max_dev: u32) -> Superblock1 {
    let mut devs = new_array(2, MetadataVersion::V1_2);
    let Superblock::V1(mut s, _) = probe(&mut devs[0], None).unwrap().sb else {
        panic!("1.2 expected")
    };
    assert_eq!(s.super_offset, 8);
    assert!(s.validate_blocks(4096).is_ok(), "the layout as made");
    s.max_dev = max_dev;
    s
}

/// What `validate_blocks(4096)` says with the bitmap, or the bad-block log, `off` sectors
/// past the superblock: `Ok`, or the name of the region refused.
fn region_at(s: &Superblock1, bitmap: bool, off: i32) -> Result<(), String> {
    let mut t = s.clone();
    if bitmap {
        t.feature_map |= FEATURE_BITMAP_OFFSET;
        t.bitmap_offset = off;
        t.bblog_size = 0;
    } else {
        t.feature_map &= !FEATURE_BITMAP_OFFSET;
        t.bblog_size = 8;
        t.bblog_offset = off;
    }
    assert!(
        t.validate_blocks(512).is_ok(),
        "anything goes on 512-byte blocks"
    );
    t.validate_blocks(4096).map_err(|e| {
        let m = e.to_string();
        m.split(" at ").next().unwrap_or(&m).to_string()
    })
}

/// The superblock at sector 8 in one 4 KiB block (8 sectors: up to 1920 roles, 4096 bytes):
/// a bitmap or log starting at the superblock itself is inside its block and refused; one
/// starting 8 sectors on, where the next block begins, is accepted, also when the superblock
/// fills its block exactly. (Mutants in the block-end sum
/// `(sb_start + ceil(len / 512) + unit - 1) / unit * unit`: `* unit` → `/`, `/ unit` → `%`,
/// `+ unit` → `-`, `sb_start +` → `-` put the end at or before the superblock's start;
/// `- 1` → `+ 1`, `/ 1`, `+ unit` → `*`, `sb_start +` → `*` put it a block or more later
/// when the superblock fills its block; `len + 511` → `len - 511` left a one-sector
/// superblock no sectors; `sb_start / unit * unit` → `* unit` moved the block's start far
/// past it.)
#[test]
fn the_bitmap_and_log_start_past_the_superblocks_block() {
    for max_dev in [128, 384, 1920] {
        let s = sb12(max_dev);
        for bitmap in [true, false] {
            let what = if bitmap { "bitmap" } else { "bad-block log" };
            assert_eq!(
                region_at(&s, bitmap, 0),
                Err(what.to_string()),
                "{what} at the superblock, {max_dev} roles"
            );
            assert_eq!(
                region_at(&s, bitmap, 8),
                Ok(()),
                "{what} at the next block, {max_dev} roles"
            );
        }
    }
}

/// A superblock longer than one 4 KiB block (2000 roles: 4256 bytes, 9 sectors) occupies two:
/// a bitmap or log may start only past the second, 16 sectors on, or before the superblock
/// (as in 1.0, negative offsets: 8 sectors before it is the block before). (Mutants: `len +
/// 511` → `len - 511` in the sector count rounded down to 8 sectors and let them start inside
/// the superblock; `sb_start + bblog_offset` → `-` put a log 8 sectors before the superblock
/// 8 sectors after it, inside.)
#[test]
fn a_superblock_longer_than_a_block_occupies_the_next_one_too() {
    let s = sb12(2000);
    assert_eq!(s.byte_len(), 4256);
    for bitmap in [true, false] {
        let what = if bitmap { "bitmap" } else { "bad-block log" };
        assert_eq!(
            region_at(&s, bitmap, 8),
            Err(what.to_string()),
            "{what} at 8"
        );
        assert_eq!(region_at(&s, bitmap, 16), Ok(()), "{what} at 16");
        assert_eq!(region_at(&s, bitmap, -8), Ok(()), "{what} at -8");
    }
}
