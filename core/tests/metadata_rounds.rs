//! What a superblock round writes, read back from the members' own superblocks: the tests
//! written for mutants that cargo-mutants found surviving the crash and machine suites (see
//! TESTING.md). Each names the mutant it exists for.

mod common;
use common::utime_secs;
use mdraid::array::{Array, CreateOptions, VirtualClock};
use mdraid::device::MemDevice;
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::MetadataVersion;

const MIB: usize = 1 << 20;
const MS: u64 = 1_000_000;
/// The wall clock the arrays run on (seconds); creation is stamped earlier.
const WALL: u64 = 1_900_000_000;

fn array(version: MetadataVersion, bitmap: bool) -> (Array<MemDevice>, VirtualClock) {
    let slots = common::mem_slots(2, 64 * MIB);
    let opts = CreateOptions {
        bitmap: if bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(1 << 20),
            }
        } else {
            BitmapRequest::None
        },
        name: "rounds".into(),
        now: WALL - 1000,
        uuid: [9; 16],
        seed: 9,
        ..common::create_options(version, 2)
    };
    let mut a = Array::create(slots, &opts).unwrap();
    let clock = VirtualClock::new(WALL);
    a.set_clock(Box::new(clock.clone()));
    (a, clock)
}

/// Member `i`'s superblock as on its device.
fn sb_on_disk(a: &Array<MemDevice>, i: usize) -> Superblock {
    let mut dev = a.devices()[i].clone();
    probe(&mut dev, None).unwrap().sb
}

/// For `apply_state`'s `now & 0xff_ffff_ffff` (mutant: `|`): every round stamps the wall
/// clock's seconds as utime on every member, in both formats.
#[test]
fn every_round_stamps_the_wall_clock_as_utime() {
    for version in [MetadataVersion::V1_2, MetadataVersion::V0_90] {
        let (mut a, clock) = array(version, false);
        let created = utime_secs(&sb_on_disk(&a, 0));
        assert_eq!(created, WALL - 1000, "{version:?}: creation time");
        clock.advance(7_000 * MS);
        a.write(MIB as u64, &[1; 4096]).unwrap();
        for i in 0..2 {
            let sb = sb_on_disk(&a, i);
            assert_eq!(
                utime_secs(&sb),
                WALL + 7,
                "{version:?} member {i}: dirty round"
            );
            if let Superblock::V1(s, _) = &sb {
                assert_eq!(s.utime >> 40, 0, "member {i}: no microseconds written");
            }
        }
        // The clean marking after the safe-mode delay is stamped at its own time.
        clock.advance(3_000 * MS);
        a.tick().unwrap();
        assert!(!a.is_dirty(), "{version:?}: clean after the delay");
        for i in 0..2 {
            assert_eq!(
                utime_secs(&sb_on_disk(&a, i)),
                WALL + 10,
                "{version:?} member {i}: clean round"
            );
        }
    }
}

/// For `forget_role` (mutant: body removed): a removed member's entry in the survivors' 1.x
/// role tables becomes an empty position (0xffff, as mdadm --remove leaves it), not faulty.
#[test]
fn a_removed_member_leaves_an_empty_role_entry() {
    let (mut a, _clock) = array(MetadataVersion::V1_2, false);
    let gone = sb_on_disk(&a, 1).dev_number() as usize;
    a.fail_member("m1").unwrap();
    let role = |a: &Array<MemDevice>| match sb_on_disk(a, 0) {
        Superblock::V1(s, _) => s.dev_roles[gone],
        Superblock::V0(_) => unreachable!(),
    };
    assert_eq!(role(&a), mdraid::format::sb1::ROLE_FAULTY, "failed");
    a.remove_member("m1", None)
        .unwrap()
        .expect("the device back");
    assert_eq!(role(&a), mdraid::format::sb1::ROLE_SPARE, "removed");
    assert_eq!(a.members().len(), 1);
}

/// The blocking driver returns from each call with every round it caused on every working
/// member: the on-disk events equal the array's after a write, a failure, a removal, an add
/// (with its rebuild), a check and the clean marking. (Written for the `is_idle` mutants, which
/// it does not catch: a synchronous driver carries out every I/O it is handed before it asks
/// whether the machine is idle; `a_round_in_flight_keeps_the_machine_busy` does.)
#[test]
fn each_call_returns_with_its_rounds_on_disk() {
    for version in [MetadataVersion::V1_2, MetadataVersion::V0_90] {
        let (mut a, clock) = array(version, true);
        let check = |a: &Array<MemDevice>, what: &str| {
            for (i, m) in a.members().iter().enumerate() {
                if m.state.is_working() {
                    assert_eq!(
                        sb_on_disk(a, i).events(),
                        a.events(),
                        "{version:?} {what}: member {i} ({}) on disk",
                        m.name
                    );
                }
            }
        };
        a.write(MIB as u64, &[1; 4096]).unwrap();
        check(&a, "write");
        let e = a.events();
        a.fail_member("m1").unwrap();
        assert!(a.events() > e, "{version:?}: the failure is a round");
        check(&a, "fail");
        let dev = a.remove_member("m1", None).unwrap().unwrap();
        check(&a, "remove");
        a.add_member(
            "m1".into(),
            dev,
            &mdraid::array::AddOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        check(&a, "add");
        a.run_sync(mdraid::array::SyncAction::Check, &mut |_, _| {})
            .unwrap();
        check(&a, "check");
        clock.advance(10_000 * MS);
        a.tick().unwrap();
        assert!(!a.is_dirty());
        check(&a, "clean");
    }
}

/// A machine made by `setup::create` over two 64 MiB devices (nothing read back: every I/O
/// this test completes is a write or a flush).
fn machine() -> mdraid::array::machine::Machine {
    use mdraid::array::setup;
    let opts = CreateOptions {
        bitmap: BitmapRequest::Internal {
            chunk_bytes: Some(1 << 20),
        },
        name: "direct".into(),
        now: WALL,
        uuid: [5; 16],
        seed: 5,
        ..common::create_options(MetadataVersion::V1_2, 2)
    };
    let now = mdraid::array::Now {
        mono_ns: 0,
        wall_secs: WALL,
    };
    setup::create(common::info_slots(2, 64 * MIB as u64), &opts, now)
        .unwrap()
        .0
}

/// For `Metadata::is_idle` (mutants: `true`; the first `&&` → `||`): a superblock round in
/// flight with nothing else (a member failed on an idle array) keeps the machine busy, and a
/// removal waits for it.
#[test]
fn a_round_in_flight_keeps_the_machine_busy() {
    use mdraid::array::machine::IoKind;
    let mut m = machine();
    assert!(!m.is_busy(), "idle after creation");
    m.fail_member(1).unwrap();
    let mut held = Vec::new();
    while let Some(io) = m.poll_io() {
        held.push(io);
    }
    assert!(
        held.iter().any(|io| io.kind == IoKind::Write),
        "the failure's superblock round: {held:?}"
    );
    assert_eq!(m.engine().requests_in_flight(), 0);
    assert!(m.is_busy(), "busy with the round in flight");
    assert!(m.remove_member(1).is_err(), "removal during the round");
    for io in held {
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    while let Some(io) = m.poll_io() {
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    assert!(!m.is_busy(), "idle once the round is done");
    m.remove_member(1).unwrap();
}

/// For `Metadata::poll_io`'s `preflush: !w.flush` (mutant: `!` deleted): every metadata write
/// (superblock, bitmap page) flushes the member's cache first and is FUA, so what it vouches
/// for (a cleared bit, a rebuilt member in sync) is durable before it; a flush is a plain one.
#[test]
fn metadata_writes_are_preflush_and_fua() {
    use mdraid::array::machine::{IoBuffer, IoKind};
    use mdraid::raid1::{ArrayRequest, BufRef};
    let mut m = machine();
    let mut seen = (0, 0);
    let run = |m: &mut mdraid::array::machine::Machine, seen: &mut (u32, u32)| {
        for _ in 0..10_000 {
            let Some(io) = m.poll_io() else { break };
            if let IoBuffer::Machine { .. } = io.buf {
                if io.kind == IoKind::Write {
                    assert!(io.preflush && io.fua, "metadata write {io:?}");
                    seen.0 += 1;
                }
            }
            if io.kind == IoKind::Flush {
                assert!(!io.preflush && !io.fua, "flush {io:?}");
                seen.1 += 1;
            }
            m.handle_io_completion(io.id, Ok(())).unwrap();
            while m.poll_completion().is_some() {}
        }
    };
    m.handle_submit(ArrayRequest::write(0, 8, BufRef(1)))
        .unwrap();
    run(&mut m, &mut seen);
    m.stop();
    run(&mut m, &mut seen);
    assert!(m.is_stopped());
    assert!(
        seen.0 >= 4 && seen.1 >= 2,
        "metadata writes and flushes seen: {seen:?}"
    );
}

/// For `Machine::complete_metadata_io`'s check of a completion (mutants: its `&&` → `||`,
/// `<` → `<=`): a metadata completion reported twice, for a write not handed out yet, or
/// from an earlier round, is refused as unknown and changes nothing.
#[test]
fn a_repeated_or_stale_metadata_completion_is_refused() {
    use mdraid::array::machine::MachineError;
    use mdraid::raid1::{ArrayRequest, BufRef};
    let mut m = machine();
    // Round A: the failure's superblocks (one working member left: its superblock and the
    // bitmap's header page).
    m.fail_member(1).unwrap();
    let first = m.poll_io().expect("round A");
    // The write not handed out yet, by its would-be id, is no completion either.
    let next = mdraid::array::machine::IoId::from_raw(first.id.raw() + 1);
    assert!(
        matches!(
            m.handle_io_completion(next, Ok(())),
            Err(MachineError::UnknownIo(_))
        ),
        "a completion of a write not handed out"
    );
    let a: Vec<_> = std::iter::once(first)
        .chain(std::iter::from_fn(|| m.poll_io()))
        .collect();
    assert!(a.len() >= 2, "{a:?}");
    assert_eq!(a[1].id, next, "ids number the round's writes");
    m.handle_io_completion(a[0].id, Ok(())).unwrap();
    assert!(
        matches!(
            m.handle_io_completion(a[0].id, Ok(())),
            Err(MachineError::UnknownIo(_))
        ),
        "a second completion of the same write"
    );
    for io in &a[1..] {
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    let mut more: Vec<_> = std::iter::from_fn(|| m.poll_io()).collect();
    while let Some(io) = more.pop() {
        m.handle_io_completion(io.id, Ok(())).unwrap();
        more.extend(std::iter::from_fn(|| m.poll_io()));
    }
    assert!(!m.is_busy());
    let events = m.events();
    // Round B: a write's dirty marking, held; round A's first write completes again.
    m.handle_submit(ArrayRequest::write(0, 8, BufRef(1)))
        .unwrap();
    let b: Vec<_> = std::iter::from_fn(|| m.poll_io()).collect();
    assert!(!b.is_empty() && m.is_busy());
    for io in &a {
        assert!(
            matches!(
                m.handle_io_completion(io.id, Ok(())),
                Err(MachineError::UnknownIo(_))
            ),
            "round A's {io:?} during round B"
        );
    }
    assert!(m.is_busy(), "round B still waits for its own writes");
    assert_eq!(m.events(), events + 1);
    for io in b {
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
}

/// Dirty bits in the on-disk bitmap of a stopped member.
fn bits_after_stop(m: &mdraid::array::Member<MemDevice>) -> u64 {
    let Superblock::V1(s, _) = &m.sb else {
        unreachable!()
    };
    let off = (s.super_offset as i64 + i64::from(s.bitmap_offset)) as usize * 512;
    let raw = &m.dev.as_slice()[off..off + 64 * 1024];
    mdraid::format::bitmap::Bitmap::parse(raw)
        .unwrap()
        .count_dirty()
}

/// For the Stop job's "complete and owing nothing" test in `start_job` (mutants: `==` → `!=`,
/// `&&` → `||`, `!` deleted): stopping a complete array clears its bitmap, stopping a
/// degraded one keeps the bits that say what the missing member lacks (a re-add copies them).
#[test]
fn stop_clears_the_bitmap_only_when_complete() {
    let (mut a, _clock) = array(MetadataVersion::V1_2, true);
    a.write(5 * MIB as u64, &[3; 4096]).unwrap();
    let members = a.stop().unwrap();
    assert_eq!(bits_after_stop(&members[0]), 0, "complete: cleared at stop");

    let (mut a, _clock) = array(MetadataVersion::V1_2, true);
    a.fail_member("m1").unwrap();
    a.write(5 * MIB as u64, &[3; 4096]).unwrap();
    let members = a.stop().unwrap();
    let survivor = members.iter().find(|m| m.name == "m0").unwrap();
    assert!(
        bits_after_stop(survivor) > 0,
        "degraded: the written chunk's bit must survive the stop"
    );
}

/// For the Stop job's `dirty_chunks() > 0` (mutant: `>=`): stopping a clean, complete array
/// with no bit set writes no round (md leaves a clean array's metadata alone): once a write's
/// dirty marking and the bits (creation sets them all, as mdadm does) have been cleared.
#[test]
fn stopping_a_clean_array_writes_no_round() {
    for version in [MetadataVersion::V1_2, MetadataVersion::V0_90] {
        let what = format!("{version:?}");
        let (mut a, clock) = array(version, true);
        a.write(5 * MIB as u64, &[3; 4096]).unwrap();
        // The safe-mode delay, then the bitmap daemon's periods.
        for _ in 0..10 {
            clock.advance(10_000 * MS);
            a.tick().unwrap();
        }
        assert!(!a.is_dirty(), "{what}: clean");
        let events: Vec<u64> = (0..2).map(|i| sb_on_disk(&a, i).events()).collect();
        assert_eq!(events, [a.events(); 2], "{what}: on disk before the stop");
        let members = a.stop().unwrap();
        for (i, m) in members.iter().enumerate() {
            let mut dev = m.dev.clone();
            assert_eq!(
                probe(&mut dev, None).unwrap().sb.events(),
                events[i],
                "{what}: member {i} took a round at stop"
            );
        }
    }
}

/// For `start_job`'s search for a replacement's original (mutant: `k != i` → `==`): the round
/// that puts a finished replacement in its slot records the original faulty too (md's
/// raid1_spare_active before md_update_sb), so no superblock round shows two members in sync
/// in one slot; the engine's later retirement is not what fails it.
#[test]
fn a_replacement_and_its_original_swap_in_one_round() {
    use mdraid::array::machine::Now;
    use mdraid::array::MemberState;
    for version in [MetadataVersion::V1_2, MetadataVersion::V0_90] {
        let slots = common::mem_slots(3, 4 * MIB);
        let opts = CreateOptions {
            name: "swap".into(),
            now: WALL,
            uuid: [4; 16],
            seed: 4,
            ..common::create_options(version, 2)
        };
        let a = Array::create(slots, &opts).unwrap();
        let (mut m, _devs) = a.into_machine(Now::default()).unwrap();
        assert_eq!(m.replace_member(0, None).unwrap(), 2, "{version:?}");
        // Every I/O succeeds (the data copied does not matter here); stop at the swap.
        let mut swapped = false;
        for _ in 0..1_000_000 {
            if m.members()[2].state == MemberState::InSync(0) {
                assert_eq!(
                    m.members()[0].state,
                    MemberState::Faulty,
                    "{version:?}: the original, in the replacement's round"
                );
                swapped = true;
                break;
            }
            if let Some(io) = m.poll_io() {
                m.handle_io_completion(io.id, Ok(())).unwrap();
            } else if m.is_busy() {
                let t = m.poll_timeout().expect("busy without a timer");
                m.handle_timeout(Now {
                    mono_ns: t,
                    wall_secs: WALL,
                });
            } else {
                break;
            }
        }
        assert!(swapped, "{version:?}: the replacement never took the slot");
    }
}

/// For the bitmap write's offset in `start_round` (`off + range.start`; mutant: `-`): a bit
/// past the bitmap's first page reaches that page on disk, and nothing else is overwritten.
/// Only 0.90 (60 KiB of room) has a bitmap of more than one page on a small device: 128 MiB
/// in 4 KiB chunks is about 32,750 chunks, so chunk 32,000's bit is in the second page.
#[test]
fn a_bit_past_the_bitmaps_first_page_reaches_its_page() {
    let dev_bytes = 128 * MIB;
    let slots = common::mem_slots(2, dev_bytes);
    let opts = CreateOptions {
        bitmap: BitmapRequest::Internal {
            chunk_bytes: Some(4096),
        },
        name: "pages".into(),
        now: WALL,
        uuid: [3; 16],
        seed: 3,
        ..common::create_options(MetadataVersion::V0_90, 2)
    };
    let mut a = Array::create(slots, &opts).unwrap();
    let clock = VirtualClock::new(WALL);
    a.set_clock(Box::new(clock.clone()));
    let chunk = 32_000u64;
    let bit_on_disk = |a: &Array<MemDevice>, i: usize| {
        let Superblock::V0(s) = &sb_on_disk(a, i) else {
            unreachable!()
        };
        let off = mdraid::format::bitmap::location_sb0(s, dev_bytes as u64 / 512).expect("a bitmap")
            as usize;
        let bm = mdraid::format::bitmap::Bitmap::parse(&a.devices()[i].as_slice()[off..]).unwrap();
        assert!(bm.header.chunks() > chunk, "{}", bm.header.chunks());
        bm.get(chunk)
    };
    // Creation sets every bit (as mdadm does); the bitmap daemon clears them, page by page.
    a.write(0, &[7; 4096]).unwrap();
    for _ in 0..10 {
        clock.advance(10_000 * MS);
        a.tick().unwrap();
    }
    for i in 0..2 {
        assert!(
            !bit_on_disk(&a, i),
            "member {i}: chunk {chunk}'s bit cleared on disk"
        );
    }
    a.write(chunk * 4096, &[7; 4096]).unwrap();
    for i in 0..2 {
        let sb = sb_on_disk(&a, i);
        assert_eq!(sb.events(), a.events(), "member {i}: superblock intact");
        assert!(
            bit_on_disk(&a, i),
            "member {i}: chunk {chunk}'s bit set on disk"
        );
    }
}

/// A sync action that finishes while an earlier metadata round is in flight (a write's dirty
/// marking, held here) is still running for `Machine::sync_status` until its end is recorded,
/// and a new action is refused meanwhile: a driver that waits for "no sync running" and then
/// reads `last_sync` (the C ABI's `mdraid_array_sync_wait`) finds the report. (Found as an
/// intermittent failure of the C test `concurrent`: the engine's own status ended a round
/// early.)
#[test]
fn a_sync_end_behind_a_held_round_stays_running_until_recorded() {
    use mdraid::array::machine::{IoBuffer, IoKind};
    use mdraid::raid1::{ArrayRequest, BufRef, SyncAction};
    let mut m = machine();
    let mut now = mdraid::array::Now {
        mono_ns: 0,
        wall_secs: WALL,
    };
    m.start_sync(SyncAction::Check).unwrap();
    let mut held = Vec::new();
    let mut wrote = false;
    let mut steps = 0;
    while m.engine().sync_status().is_some() {
        steps += 1;
        assert!(steps < 1_000_000, "the check does not end");
        let done = m.engine().sync_status().map_or(0, |s| s.done_sectors);
        if !wrote && done >= 4096 {
            // Behind the check: a write marks the array dirty, and its round is held.
            m.handle_submit(ArrayRequest::write(0, 8, BufRef(1)))
                .unwrap();
            wrote = true;
        }
        let Some(io) = m.poll_io() else {
            // The speed limit holds the check back: time moves on.
            now.mono_ns += 10 * MS;
            m.handle_timeout(now);
            continue;
        };
        if io.kind == IoKind::Write && matches!(io.buf, IoBuffer::Machine { .. }) {
            held.push(io);
        } else {
            m.handle_io_completion(io.id, Ok(())).unwrap();
        }
    }
    assert!(wrote && !held.is_empty(), "the dirty round is held");
    assert!(m.last_sync().is_none(), "not recorded yet");
    let st = m.sync_status().expect("still running until recorded");
    assert_eq!(st.action, SyncAction::Check);
    assert_eq!(st.done_sectors, st.total_sectors);
    assert!(
        m.start_sync(SyncAction::Check).is_err(),
        "a new action waits for the last one's end"
    );
    for io in held {
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    let mut left = 100_000;
    while let Some(io) = m.poll_io() {
        m.handle_io_completion(io.id, Ok(())).unwrap();
        left -= 1;
        assert!(left > 0);
    }
    while m.poll_completion().is_some() {}
    assert!(m.sync_status().is_none());
    let r = m.last_sync().expect("the check's report");
    assert_eq!(
        (r.action, r.mismatch_cnt, r.interrupted),
        (SyncAction::Check, 0, false)
    );
    m.start_sync(SyncAction::Check).unwrap();
}
