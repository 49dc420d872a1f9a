//! 0.90 arrays with an internal bitmap, checked against the on-disk rules of mdadm 4.2 (super0.c:
//! add_internal_bitmap0, write_bitmap0, load_super0) and md (super_90_load, md_bitmap_read_sb),
//! recomputed here from raw bytes rather than through the crate's own decoders.

mod common;

use mdraid::array::{Array, AssembleOptions, CreateOptions};
use mdraid::device::MemDevice;
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;

const NOW: u64 = 1_800_000_000;

fn word(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap())
}

/// mdadm's calc_sb0_csum over the 4096 raw bytes: 1024 words with sb_csum (word 38) as 0,
/// summed into 64 bits and folded.
fn independent_csum(sb: &[u8]) -> u32 {
    let sum: u64 = (0..1024)
        .filter(|&i| i != 38)
        .map(|i| u64::from(word(sb, i)))
        .sum();
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}

fn create(dev_bytes: usize, chunk: Option<u64>, homehost: Option<&str>) -> Vec<MemDevice> {
    let slots = common::mem_slots(2, dev_bytes);
    let opts = CreateOptions {
        bitmap: BitmapRequest::Internal { chunk_bytes: chunk },
        name: String::new(),
        homehost: homehost.map(String::from),
        assume_clean: false,
        now: NOW,
        uuid: [
            0x10, 0x32, 0x54, 0x76, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ],
        seed: 3,
        ..common::create_options(MetadataVersion::V0_90, 2)
    };
    Array::create(slots, &opts)
        .unwrap()
        .stop()
        .unwrap()
        .into_iter()
        .map(|m| m.dev)
        .collect()
}

/// Checks one member as mdadm and md would; returns (sb events, bitmap events, chunk bytes).
fn check_member(dev: &MemDevice, what: &str) -> (u64, u64, u32) {
    let d = dev.as_slice();
    let sectors = d.len() as u64 / 512;
    let sb_at = (((sectors & !127) - 128) * 512) as usize;
    let sb = &d[sb_at..sb_at + 4096];
    assert_eq!(word(sb, 0), 0xa92b_4efc, "{what}: magic");
    // MD_SB_BITMAP_PRESENT is state bit 8 (word 33).
    assert_ne!(word(sb, 33) & (1 << 8), 0, "{what}: bitmap-present bit");
    assert_eq!(word(sb, 38), independent_csum(sb), "{what}: checksum");

    // The bitmap follows the 4 KiB superblock; its UUID is the superblock's words as they lie
    // in memory (set_uuid0 at byte 20, set_uuid1..3 at 52..64).
    let bm = &d[sb_at + 4096..sb_at + 4096 + 60 * 1024];
    assert_eq!(word(bm, 0), 0x6d74_6962, "{what}: bitmap magic");
    assert_eq!(word(bm, 1), 4, "{what}: bitmap version");
    let mut uuid = sb[20..24].to_vec();
    uuid.extend_from_slice(&sb[52..64]);
    assert_eq!(&bm[8..24], &uuid[..], "{what}: bitmap uuid");
    let sync_size = u64::from_le_bytes(bm[40..48].try_into().unwrap());
    assert_eq!(sync_size, u64::from(word(sb, 8)) * 2, "{what}: sync_size");
    let chunk = word(bm, 13);
    assert!(chunk.is_power_of_two() && chunk >= 4096, "{what}: chunk");
    // Header and bits fit the 60 KiB room md gives a 0.90 bitmap.
    let bits = (sync_size * 512).div_ceil(u64::from(chunk));
    assert!(256 + bits.div_ceil(8) <= 60 * 1024, "{what}: room");
    let events = u64::from_le_bytes(sb[156..164].try_into().unwrap());
    let bm_events = u64::from_le_bytes(bm[24..32].try_into().unwrap());
    (events, bm_events, chunk)
}

#[test]
fn created_0_90_bitmap_is_what_mdadm_writes() {
    for (bytes, chunk, host) in [
        (20_000 * 1024, None, Some("mdlab")),
        (33 * 1024 * 1024 + 512, Some(64 * 1024), None),
        (300 * 1024 * 1024, Some(4096 * 4), Some("h")),
    ] {
        let devs = create(bytes, chunk, host);
        for (i, d) in devs.iter().enumerate() {
            let what = format!("{bytes} bytes, chunk {chunk:?}, member {i}");
            let (_, _, c) = check_member(d, &what);
            if let Some(c0) = chunk {
                assert_eq!(u64::from(c), c0, "{what}");
            } else {
                assert_eq!(c, 64 << 20, "{what}: mdadm's default chunk");
            }
            // write_bitmap0: ones after the header through the whole 60 KiB.
            let sectors = d.as_slice().len() as u64 / 512;
            let at = (((sectors & !127) - 128) * 512) as usize + 4096;
            assert!(
                d.as_slice()[at + 256..at + 60 * 1024]
                    .iter()
                    .all(|&b| b == 0xff),
                "{what}: bitmap filled with ones"
            );
        }
    }
}

#[test]
fn writes_keep_the_0_90_bitmap_bit_checksum_and_uuid() {
    let devs = create(40 * 1024 * 1024, Some(1 << 20), Some("mdlab"));
    let named = devs
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("m{i}"), d))
        .collect();
    let (mut a, _) = Array::assemble(named, &AssembleOptions::default()).unwrap();
    assert!(a.bitmap().is_some(), "the bitmap is found again");
    a.write(3 << 20, &[0x5a; 8192]).unwrap();
    let members = a.stop().unwrap();
    for (i, m) in members.iter().enumerate() {
        let (events, bm_events, _) = check_member(&m.dev, &format!("after write, member {i}"));
        assert!(events > 0);
        assert_eq!(
            events, bm_events,
            "member {i}: bitmap events follow the superblock"
        );
    }
}
