//! Metadata writes widened to whole logical blocks (`align_writes`) on a layout the array
//! never makes itself: a 1.2 bitmap that is not block aligned on 4 KiB members (a foreign
//! layout that assembly takes as it finds it). Every layout creation makes has block-aligned
//! metadata, so only a hand-built machine [`State`] reaches the widening's guard and its shift
//! of the image offset: the tests written for the mutants cargo-mutants found surviving there
//! (see TESTING.md).

mod common;

use mdraid::array::machine::{IoBuffer, IoKind, Machine, State};
use mdraid::array::setup::{self, DeviceInfo};
use mdraid::array::{CreateOptions, CreateSlot, Now};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::Superblock;
use mdraid::format::MetadataVersion;
use mdraid::raid1::{ArrayRequest, BufRef};

const BLOCK: u64 = 4096;
const NOW: Now = Now {
    mono_ns: 1_000_000_000,
    wall_secs: 1_900_000_000,
};
/// 64 KiB chunks over 16 GiB members (a 64 KiB bitmap reserve): about 260,000 chunks, a
/// bitmap image of several 4 KiB blocks.
const CHUNK: u64 = 64 << 10;
const SIZE: u64 = 16 << 30;
/// The bitmap moved to 10 sectors past the superblock (sector 8): byte 9216, 1 KiB into a
/// 4 KiB block.
const BITMAP_SECTORS_AFTER_SB: i32 = 10;

/// A clean 1.2 array of two 4 KiB-block members whose bitmap starts 1 KiB into a block.
fn unaligned_bitmap_machine() -> (Machine, u64) {
    let info = |i: usize| DeviceInfo {
        name: format!("d{i}"),
        size: SIZE,
        device_number: None,
        block_size: 512,
    };
    let slot = |i: usize| CreateSlot::Device {
        name: format!("d{i}"),
        dev: info(i),
        write_mostly: false,
        failfast: false,
    };
    let opts = CreateOptions {
        bitmap: BitmapRequest::Internal {
            chunk_bytes: Some(CHUNK),
        },
        name: "align".into(),
        now: NOW.wall_secs - 100,
        uuid: [5; 16],
        seed: 5,
        ..common::create_options(MetadataVersion::V1_2, 2)
    };
    let (created, _writes) = setup::create(vec![slot(0), slot(1)], &opts, NOW).unwrap();
    let (raid_disks, component_sectors, events) = (
        created.raid_disks(),
        created.component_sectors(),
        created.events(),
    );
    let resync_done = created.engine().resync_offset();
    assert!(!created.needs_resync() && !created.is_dirty());
    let (mut members, bitmap) = created.into_members();
    let mut loc = None;
    for m in &mut members {
        m.dev.block_size = BLOCK as u32;
        let Superblock::V1(s, _) = &mut m.sb else {
            panic!("1.2 superblock expected");
        };
        s.bitmap_offset = BITMAP_SECTORS_AFTER_SB;
        let at = (s.super_offset + BITMAP_SECTORS_AFTER_SB as u64) * 512;
        assert!(at % BLOCK != 0 && at > s.super_offset * 512 + BLOCK);
        assert!(
            at + 3 * BLOCK <= s.data_offset * 512,
            "bitmap clear of the data"
        );
        loc = Some(at);
    }
    let mut bitmap = bitmap.expect("a bitmap");
    // Creation leaves every bit set (the daemon clears them later): start from a bitmap
    // the daemon has cleared, so a write's bit needs a bitmap round.
    bitmap.bitmap.bits.fill(0);
    assert!(
        bitmap.bitmap.chunks() > 3 * 32768,
        "{} chunks",
        bitmap.bitmap.chunks()
    );
    let state = State {
        members,
        raid_disks,
        component_sectors,
        events,
        dirty: false,
        needs_resync: false,
        readonly: false,
        bitmap: Some(bitmap),
        resync_done,
    };
    (Machine::new(state, NOW).unwrap(), loc.unwrap())
}

/// One metadata write as handed out: (member, disk offset, length, image offset, image length).
type MetaWrite = (usize, u64, u64, usize, usize);

/// Submits a 4 KiB write at `sector` and completes every I/O at once until it finishes;
/// returns the metadata writes handed out on the way.
fn write_and_collect(m: &mut Machine, sector: u64) -> Vec<MetaWrite> {
    let id = m
        .handle_submit(ArrayRequest::write(sector, BLOCK / 512, BufRef(1)))
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..10_000 {
        while let Some(io) = m.poll_io() {
            if let (IoKind::Write, IoBuffer::Machine { index, offset }) = (io.kind, io.buf) {
                let image = m.buffer(index).map_or(0, |b| b.len());
                out.push((io.member, io.offset, io.len, offset, image));
            }
            m.handle_io_completion(io.id, Ok(())).unwrap();
        }
        if let Some((done, r)) = m.poll_completion() {
            assert_eq!(done, id);
            r.unwrap();
            return out;
        }
        let _ = m.poll_event();
        let t = m
            .poll_timeout()
            .expect("nothing in flight and no completion");
        m.handle_timeout(Now {
            mono_ns: t,
            wall_secs: NOW.wall_secs,
        });
    }
    panic!("the write never completed");
}

/// The bitmap page written for a bit in the image's second-to-last block, at 1 KiB into a
/// member block: widened to the two blocks it touches, from the image byte 1 KiB before the
/// page (the widened block ends 1 KiB short of the image's end). The header page cannot be
/// widened inside the image (its block starts before the bitmap) and goes out as it is.
/// (Mutants in align_writes: the guard's `&&` → `||` (an underflow on the header page),
/// `start - back + len` → `start + back + len` and `(start - back) * len` (the page not
/// widened), `start -= back` → `+=` (bytes from the wrong place of the image).)
#[test]
fn a_bitmap_page_not_block_aligned_is_widened_within_its_image() {
    let (mut m, loc) = unaligned_bitmap_machine();
    let header = m.bitmap().unwrap().bitmap.header.clone();
    let image_len = header.byte_len().div_ceil(BLOCK) * BLOCK;
    let page = image_len - 2 * BLOCK;
    let chunk = (page - 256) * 8 + 5;
    assert!(chunk < header.chunks());
    assert_eq!(m.bitmap().unwrap().dirty_chunks(), 0);
    let writes = write_and_collect(&mut m, chunk * CHUNK / 512);
    let bitmap: Vec<_> = writes.iter().filter(|w| w.1 >= loc - BLOCK / 4).collect();
    assert!(!bitmap.is_empty(), "{writes:?}");
    for &&(member, offset, len, start, image) in &bitmap {
        assert_eq!(image as u64, image_len, "{writes:?}");
        // The bytes at each disk offset are the image's bytes for it.
        assert_eq!(offset - loc, start as u64, "member {member}: {writes:?}");
        assert!(
            start as u64 + len <= image as u64,
            "inside the image: {writes:?}"
        );
    }
    let lo = (loc + page) / BLOCK * BLOCK;
    let widened: Vec<_> = bitmap.iter().filter(|w| w.1 == lo).collect();
    assert_eq!(widened.len(), 2, "one per member: {writes:?}");
    for w in widened {
        assert_eq!((w.2, w.3), (2 * BLOCK, (lo - loc) as usize), "{writes:?}");
    }
    assert!(
        bitmap.iter().any(|w| (w.1, w.2, w.3) == (loc, BLOCK, 0)),
        "the header page as it is: {writes:?}"
    );
    // Superblock writes are whole blocks.
    for &(_, offset, len, _, _) in writes.iter().filter(|w| w.1 < loc - BLOCK / 4) {
        assert!(offset % BLOCK == 0 && len % BLOCK == 0, "{writes:?}");
    }
}
