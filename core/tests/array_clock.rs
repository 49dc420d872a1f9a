//! Time on a long-lived array, on a virtual clock: md's safe mode (clean ~200 ms after the last
//! write), the bitmap daemon (bits of idle chunks cleared after its passes), and a steady write
//! stream costing one dirty marking, not one per second. Each claim is read back from the
//! members' own superblocks and bitmaps, not from the array's memory.

mod common;

use mdraid::array::{Array, CreateOptions, VirtualClock};
use mdraid::device::MemDevice;
use mdraid::format::bitmap::Bitmap;
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::MetadataVersion;

const MIB: usize = 1 << 20;
const MS: u64 = 1_000_000;

fn array(bitmap: bool) -> (Array<MemDevice>, VirtualClock) {
    let slots = common::mem_slots(2, 64 * MIB);
    let opts = CreateOptions {
        bitmap: if bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(1 << 20),
            }
        } else {
            BitmapRequest::None
        },
        name: "clock".into(),
        now: 1_900_000_000,
        seed: 7,
        ..common::create_options(MetadataVersion::V1_2, 2)
    };
    let mut a = Array::create(slots, &opts).unwrap();
    let clock = VirtualClock::new(1_900_000_000);
    a.set_clock(Box::new(clock.clone()));
    (a, clock)
}

/// What member `i`'s own superblock says: (events, clean).
fn on_disk(a: &Array<MemDevice>, i: usize) -> (u64, bool) {
    let mut dev = a.devices()[i].clone();
    let sb = probe(&mut dev, None).unwrap().sb;
    let clean = match &sb {
        Superblock::V1(s, _) => s.resync_offset == u64::MAX,
        Superblock::V0(s) => s.state & 1 != 0,
    };
    (sb.events(), clean)
}

/// Dirty bits in member `i`'s on-disk bitmap.
fn bits_on_disk(a: &Array<MemDevice>, i: usize) -> u64 {
    let m = &a.members()[i];
    let Superblock::V1(s, _) = &m.sb else {
        unreachable!()
    };
    let off = (s.super_offset as i64 + i64::from(s.bitmap_offset)) as usize * 512;
    let raw = &a.devices()[i].as_slice()[off..off + 64 * 1024];
    Bitmap::parse(raw).unwrap().count_dirty()
}

#[test]
fn an_idle_open_array_goes_clean_after_the_safe_mode_delay() {
    let (mut a, clock) = array(false);
    a.write(MIB as u64, &[1; 4096]).unwrap();
    assert!(a.is_dirty());
    assert!(
        !on_disk(&a, 0).1 && !on_disk(&a, 1).1,
        "dirty on disk after a write"
    );
    // Before the delay nothing changes.
    clock.advance(150 * MS);
    a.tick().unwrap();
    assert!(a.is_dirty() && !on_disk(&a, 0).1);
    // After it the superblocks are clean on every member, with nobody writing or stopping.
    clock.advance(100 * MS);
    a.tick().unwrap();
    assert!(!a.is_dirty());
    assert!(
        on_disk(&a, 0).1 && on_disk(&a, 1).1,
        "clean on disk after the delay"
    );
    assert_eq!(on_disk(&a, 0).0, on_disk(&a, 1).0);
    // The next write marks it dirty again.
    a.write(0, &[2; 512]).unwrap();
    assert!(!on_disk(&a, 1).1);
}

#[test]
fn bitmap_bits_clear_after_idle_daemon_passes() {
    let (mut a, clock) = array(true);
    // A new array's bitmap starts all set (as mdadm writes it); the kernel's daemon clears
    // what is in sync. Writes keep their chunks set meanwhile.
    let chunks = a.bitmap().unwrap().bitmap.chunks();
    assert_eq!(bits_on_disk(&a, 0), chunks);
    a.write(5 * MIB as u64, &[3; 4096]).unwrap();
    a.write(9 * MIB as u64, &[3; 4096]).unwrap();
    assert!(a.bitmap().unwrap().bitmap.get(5) && a.bitmap().unwrap().bitmap.get(9));
    // One daemon period (5 s) is not enough: md clears a chunk idle for two passes.
    clock.advance(5_100 * MS);
    a.tick().unwrap();
    let mid = bits_on_disk(&a, 0);
    assert!(mid > 0, "cleared after one pass");
    for _ in 0..4 {
        clock.advance(5_100 * MS);
        a.tick().unwrap();
    }
    assert_eq!(
        bits_on_disk(&a, 0),
        0,
        "bits still set after idle passes (mid: {mid})"
    );
    assert_eq!(bits_on_disk(&a, 1), 0);
    assert_eq!(a.bitmap().unwrap().dirty_chunks(), 0);
    assert!(on_disk(&a, 0).1, "clean too");
}

#[test]
fn a_steady_write_stream_costs_one_dirty_marking() {
    let (mut a, clock) = array(false);
    let e0 = on_disk(&a, 0).0;
    // Ten seconds of writes, one every 20 ms (well inside the 200 ms safe-mode delay).
    for i in 0..500u64 {
        a.write((i % 1000) * 4096, &[i as u8; 4096]).unwrap();
        clock.advance(20 * MS);
        a.tick().unwrap();
    }
    // One superblock round: the dirty marking (events + 1), none per second.
    assert_eq!(
        a.events(),
        e0 + 1,
        "superblock rounds during a steady stream"
    );
    assert_eq!(on_disk(&a, 0), (e0 + 1, false));
    // Then idle: one more round, clean.
    clock.advance(300 * MS);
    a.tick().unwrap();
    assert_eq!(on_disk(&a, 1), (e0 + 2, true));
}
