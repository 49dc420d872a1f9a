//! The write-intent bitmap in use (array/intent.rs), held to md's rules where the other tests
//! leave it loose: a bitmap made in memory (grow --bitmap=internal) is written as md writes
//! one, header and bits in whole logical blocks of the member and nothing past them.

mod common;

use mdraid::array::machine::{BitmapGrow, IoKind, Machine};
use mdraid::array::setup::{create, DeviceInfo};
use mdraid::array::{CreateOptions, CreateSlot, Now};
use mdraid::format::probe::Superblock;
use mdraid::format::MetadataVersion;

/// A clean two-way 1.2 array without a bitmap, built by `setup::create` on 64 MiB devices of
/// `block` bytes a logical block.
fn machine(block: u32) -> Machine {
    let slot = |n: &str| CreateSlot::Device {
        name: n.into(),
        dev: DeviceInfo {
            name: n.into(),
            size: 64 << 20,
            device_number: None,
            block_size: block,
        },
        write_mostly: false,
        failfast: false,
    };
    let opts = CreateOptions {
        name: "intent".into(),
        uuid: [5; 16],
        seed: 2,
        ..common::create_options(MetadataVersion::V1_2, 2)
    };
    create(vec![slot("a"), slot("b")], &opts, Now::default())
        .unwrap()
        .0
}

/// Completes every I/O the machine hands out; the writes as (member, offset, len).
fn drain(m: &mut Machine) -> Vec<(usize, u64, u64)> {
    let mut writes = Vec::new();
    while let Some(io) = m.poll_io() {
        if io.kind == IoKind::Write {
            writes.push((io.member, io.offset, io.len));
        }
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    writes
}

// Catches intent.rs 60:66 (`IntentBitmap::fresh`: the image's length `div_ceil(512) * 512`
// → `+ 512`, one sector more than header and bits hold, which the first round and the clean
// stop then write).
#[test]
fn a_grown_bitmap_is_written_in_the_blocks_of_its_header_and_bits_only() {
    for block in [512u32, 4096] {
        let mut m = machine(block);
        m.grow_bitmap(BitmapGrow::Internal {
            chunk_bytes: Some(64 << 10),
        })
        .unwrap();
        let mut writes = drain(&mut m);
        m.stop();
        writes.extend(drain(&mut m));
        assert!(m.is_stopped());
        let Superblock::V1(s, _) = &m.members()[0].sb else {
            panic!("not 1.x")
        };
        let bm_off = s.super_offset * 512 + s.bitmap_offset as u64 * 512;
        // md's bitmap: a 256-byte header then one bit a chunk, written in whole logical blocks.
        let h = &m.bitmap().unwrap().bitmap.header;
        let chunks = (h.sync_size * 512).div_ceil(u64::from(h.chunksize));
        let bytes = 256 + chunks.div_ceil(8);
        let unit = u64::from(block);
        let bm_end = bm_off + bytes.div_ceil(unit) * unit;
        let of_bitmap: Vec<_> = writes
            .iter()
            .filter(|&&(_, off, _)| off >= bm_off && off < bm_end)
            .collect();
        assert!(
            of_bitmap.len() >= 4,
            "block {block}: both members' bitmaps written at the grow and the stop: {writes:?}"
        );
        for &&(member, off, len) in &of_bitmap {
            assert!(
                off + len <= bm_end,
                "block {block}: member {member}'s write {off}+{len} runs past the bitmap's \
                 {bytes} bytes in blocks (end {bm_end})"
            );
            assert_eq!(off % unit, 0, "block {block}: whole blocks");
            assert_eq!(len % unit, 0, "block {block}: whole blocks");
        }
    }
}
