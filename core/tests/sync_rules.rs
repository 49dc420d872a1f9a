//! Rules of the sync actions outside their checkpoints (`core/src/raid1/engine/sync.rs`), on
//! the deterministic simulator: the tests written for the mutants cargo-mutants found
//! surviving the sync suites (the `sync` group of scripts/mutants.sh, see TESTING.md). Each
//! names the mutant it exists for.

use mdraid::raid1::sim::{Fault, Sim};
use mdraid::raid1::*;

mod common;
use common::sync_done;

const BLK: u64 = SYNC_BLOCK_SECTORS;
const SEC: u64 = 1_000_000_000;

fn sim(cfg: Raid1Config) -> Sim {
    let n = cfg.array_sectors;
    Sim::new(Raid1::new(cfg).expect("config"), n)
}

/// Sectors the sync actions read (their source reads into the engine's scratch buffers)
/// issued at or before `t`.
fn sync_read_sectors(s: &Sim, t: u64) -> u64 {
    s.io_log
        .iter()
        .filter(|r| {
            r.io.kind == MemberIoKind::Read
                && matches!(r.io.buf, IoBuf::Scratch { .. })
                && r.issued <= t
        })
        .map(|r| r.io.sectors)
        .sum()
}

/// md's `sync_speed`: the KiB started in the current measurement window over its elapsed time
/// plus one second. (Mutants in `sync_rate_kib`: its result replaced by 0 or 1, `/ 2` and
/// `/ (el + 1 s)` replaced by `%` or `*`, `* 1e9` by `+` or `/`, `el + 1 s` by `-` or `*`.)
#[test]
fn the_reported_speed_is_the_windows_kib_over_its_time_plus_a_second() {
    let size = 64 * 1024 * 2; // 64 MiB: at 10 MB/s it runs past one 3 s window
    let mut cfg = Raid1Config::new(2, size);
    cfg.resync_offset = 0;
    cfg.start_clean = false;
    cfg.sync_speed_max_kib = 10_000;
    cfg.sync_speed_min_kib = 1_000;
    let mut s = sim(cfg);
    s.engine.start_sync(SyncAction::Resync, 0).unwrap();
    s.pump();
    let mut seen = 0;
    for t in [SEC / 4, SEC / 2, SEC, 2 * SEC, 2 * SEC + SEC / 2] {
        assert!(s.run_until(|s| s.now >= t));
        let st = s.engine.sync_status().expect("the resync runs");
        let el = s.engine.now() as u128;
        let kib = sync_read_sectors(&s, s.engine.now()) as u128 / 2;
        let want = (kib * SEC as u128 / (el + SEC as u128)) as u64;
        assert_eq!(st.rate_kib_s, want, "at {el} ns, {kib} KiB started");
        // The throttle holds the window near 10 MB/s: the speed is about 10_000 × el/(el + 1).
        let ideal = 10_000.0 * el as f64 / (el as f64 + 1e9);
        assert!(
            (st.rate_kib_s as f64 - ideal).abs() < 200.0,
            "{} KiB/s at {el} ns, ideal {ideal}",
            st.rate_kib_s
        );
        assert!(st.rate_kib_s > seen, "the speed rises as the window fills");
        seen = st.rate_kib_s;
    }
    // A new window starts every 3 s: past it the speed counts only the new window's KiB.
    assert!(s.run_until(|s| s.now >= 4 * SEC));
    let st = s.engine.sync_status().expect("the resync runs");
    assert!(
        st.rate_kib_s < 6_000,
        "{} KiB/s one second into the second window",
        st.rate_kib_s
    );
}

fn fill(s: &mut Sim, m: usize, byte: u8) {
    s.members[m].data.fill(byte);
}

/// `mismatch_cnt` is the running check's or repair's count while one runs, and the last one's
/// otherwise, also while a resync runs. (Mutants: the match guard "a check or repair runs"
/// replaced by `true`, which read the resync's 0, or by `false`, which read the last count
/// during a check.)
#[test]
fn mismatch_cnt_is_the_running_checks_count_and_otherwise_the_last_ones() {
    let size = 64 * BLK;
    let mut s = sim(Raid1Config::new(2, size));
    fill(&mut s, 0, 0x11);
    fill(&mut s, 1, 0x22);
    s.engine.start_sync(SyncAction::Check, s.now).unwrap();
    assert!(s.run_until(|s| s
        .engine
        .sync_status()
        .is_some_and(|st| st.done_sectors >= 16 * BLK)));
    let st = s.engine.sync_status().unwrap();
    assert!(
        st.mismatch_cnt >= 16 * BLK && st.mismatch_cnt < size,
        "{st:?}"
    );
    assert_eq!(s.engine.mismatch_cnt(), st.mismatch_cnt, "mid-check");
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    assert_eq!(s.engine.mismatch_cnt(), size, "every sector differs");
    // A resync (nothing to compare) leaves the check's count readable while it runs.
    s.engine.set_resync_offset(0);
    s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
    assert!(s.run_until(|s| s
        .engine
        .sync_status()
        .is_some_and(|st| st.done_sectors >= 8 * BLK)));
    assert_eq!(s.engine.sync_status().unwrap().mismatch_cnt, 0);
    assert_eq!(s.engine.mismatch_cnt(), size, "mid-resync");
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    assert_eq!(s.engine.mismatch_cnt(), size, "after the resync");
}

/// A member lost during a check interrupts it, and nothing restarts by itself: only an
/// interrupted resync is owed again (md restarts a resync from its checkpoint, never a check).
/// Here the array is also known out of sync from sector 0, so a resync started by mistake would
/// show. (Mutant: `action == Resync` → `!=` in member_lost made the check's loss owe a resync.)
#[test]
fn a_check_interrupted_by_a_failure_owes_no_resync() {
    let size = 64 * BLK;
    let mut cfg = Raid1Config::new(3, size);
    cfg.resync_offset = 0;
    let mut s = sim(cfg);
    s.engine.start_sync(SyncAction::Check, s.now).unwrap();
    assert!(s.run_until(|s| s
        .engine
        .sync_status()
        .is_some_and(|st| st.done_sectors >= 8 * BLK)));
    s.engine.fail_member(2).unwrap();
    s.pump();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.drive();
    assert_eq!(sync_done(&s), vec![(SyncAction::Check, true)]);
    assert_eq!(s.engine.resync_offset(), 0);
}

/// A resync interrupted by a failure is owed again, and a start the owner makes while it
/// drains (refused: an action is running) does not cancel that: the resync restarts and the
/// array ends in sync. (Mutant: `r.is_ok() && action == Resync` → `||` in start_sync made the
/// refused start clear the pending restart.)
#[test]
fn a_refused_start_keeps_an_interrupted_resync_owed() {
    let size = 64 * BLK;
    let mut cfg = Raid1Config::new(3, size);
    cfg.resync_offset = 0;
    cfg.start_clean = false;
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x33);
    s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
    assert!(s.run_until(
        |s| s.engine.resync_offset() >= 16 * BLK && s.engine.member_ios_in_flight() > 0
    ));
    s.engine.fail_member(2).unwrap();
    assert!(
        s.engine.sync_status().is_some_and(|st| st.aborting),
        "the interrupted resync drains its blocks"
    );
    for action in [SyncAction::Resync, SyncAction::Check] {
        assert!(
            matches!(
                s.engine.start_sync(action, s.now),
                Err(EngineError::Refused(_))
            ),
            "{action:?} while the interrupted resync drains"
        );
    }
    s.pump();
    assert!(s.run_until(|s| s.engine.resync_offset() == u64::MAX));
    s.settle();
    assert_eq!(s.members[1].data, s.members[0].data);
}

/// A check needs a buffer per in-sync mirror: one fewer is refused, exactly as many runs to
/// its end. (Mutants in start_sync_inner: `sync_buffers < n` → `==` refused a check with
/// exactly enough buffers and started one with too few, `<=` refused exactly enough.)
#[test]
fn a_check_needs_a_sync_buffer_per_in_sync_mirror() {
    let size = 16 * BLK;
    for (buffers, runs) in [(2, false), (3, true), (4, true)] {
        let mut cfg = Raid1Config::new(3, size);
        cfg.sync_buffers = buffers;
        let mut s = sim(cfg);
        fill(&mut s, 2, 0x44);
        let r = s.engine.start_sync(SyncAction::Check, s.now);
        assert_eq!(
            r.is_ok(),
            runs,
            "a check of 3 mirrors with {buffers} buffers: {r:?}"
        );
        if runs {
            assert!(s.run_until(|s| s.engine.sync_status().is_none()));
            assert_eq!(s.engine.mismatch_cnt(), size, "{buffers} buffers");
        }
    }
}

/// The most sync member I/Os in flight at once among those issued in `from..=to` (ns).
fn sync_depth(s: &Sim, from: u64, to: u64) -> usize {
    let sync: Vec<_> = s
        .io_log
        .iter()
        .filter(|r| matches!(r.io.buf, IoBuf::Scratch { .. }))
        .collect();
    sync.iter()
        .filter(|r| (from..=to).contains(&r.issued))
        .map(|r| {
            sync.iter()
                .filter(|q| q.issued <= r.issued && q.done > r.issued)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// User I/O still in flight keeps the array busy for the throttle however long ago it was
/// submitted (md's is_mddev_idle sees the I/O in flight): between the minimum and maximum
/// speed the sync runs one block at a time until the user write completes, then takes its
/// whole window again. (Mutant: `user_live > 0` → `<` in sync_throttle_allows went back to
/// the full window 100 ms after the submit, with the write still in flight.)
#[test]
fn user_io_in_flight_keeps_the_sync_yielding_until_it_completes() {
    let size = 512 * BLK;
    let mut cfg = Raid1Config::new(3, size);
    cfg.members[1] = MemberConfig::recovering(0);
    cfg.sync_speed_min_kib = 100;
    cfg.sync_speed_max_kib = 100_000_000;
    let mut s = sim(cfg);
    s.members[0].latency = 10_000_000;
    s.members[1].latency = 10_000_000;
    // The user write's copy on member 2 (not part of the recovery) takes a second.
    s.members[2].latency = SEC;
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    s.pump();
    assert!(s.run_until(|s| s.now >= SEC / 10));
    assert!(sync_depth(&s, 0, SEC / 10) >= 3, "idle: the whole window");
    let t = s.now;
    let w = s.write(size - 8, &[0x55; 8 * 512]).unwrap();
    assert!(s.run_until(|s| s.now >= t + 9 * SEC / 10));
    assert!(s.result(w).is_none(), "the write is still in flight");
    assert_eq!(
        sync_depth(&s, t + SEC / 5, t + 9 * SEC / 10),
        1,
        "one block at a time while the write is in flight"
    );
    assert!(s.run_until(|s| s.result(w).is_some()));
    let done = s.now;
    assert!(s.run_until(|s| s.now >= done + SEC / 2));
    assert!(s.engine.sync_status().is_some(), "the recovery still runs");
    assert!(
        sync_depth(&s, done + SEC / 5, done + SEC / 2) >= 3,
        "idle again: the whole window"
    );
}

/// Sync reads issued at exactly `t` (ns).
fn sync_reads_at(s: &Sim, t: u64) -> usize {
    s.io_log
        .iter()
        .filter(|r| {
            r.io.kind == MemberIoKind::Read
                && matches!(r.io.buf, IoBuf::Scratch { .. })
                && r.issued == t
        })
        .count()
}

/// A user submit keeps the array busy for the throttle for 100 ms (`SYNC_IDLE_NS`): strictly
/// less. Here every sync block takes exactly 20 ms (a 10 ms read, then a 10 ms write), so a
/// block ends exactly 100 ms after the submit: until then one block runs at a time, from then
/// on the whole window. (Mutant: `now - t < SYNC_IDLE_NS` → `<=` in sync_throttle_allows still
/// counted the submit at exactly 100 ms.)
#[test]
fn a_user_submit_keeps_the_array_busy_for_strictly_less_than_100_ms() {
    let size = 256 * BLK;
    let mut cfg = Raid1Config::new(2, size);
    cfg.members[1] = MemberConfig::recovering(0);
    cfg.sync_speed_min_kib = 1;
    cfg.sync_speed_max_kib = 100_000_000;
    let mut s = sim(cfg);
    s.members[0].latency = 10_000_000;
    s.members[1].latency = 10_000_000;
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    // The first block starts (after the maximum speed's 640 ns for it); the user read is
    // submitted then.
    assert!(s.run_until(|s| sync_reads_at(s, s.now) > 0));
    let t = s.now;
    let (r, _) = s.read(size - 16, 8).unwrap();
    assert!(s.run_until(|s| s.now >= t + 130_000_000));
    assert!(s.result(r).is_some());
    for k in 0..5 {
        let at = t + k * 20_000_000;
        assert_eq!(sync_reads_at(&s, at), 1, "one block at {at} ns");
        assert_eq!(sync_reads_at(&s, at + 10_000_000), 0, "at {at} ns + 10 ms");
    }
    assert_eq!(
        sync_reads_at(&s, t + 100_000_000),
        4,
        "the whole window 100 ms after the submit"
    );
}

/// With bitmap chunks smaller than a sync block, a resync block ends at its chunk's end: only
/// the set chunks are read and written, not the clean sectors after them. (Mutant:
/// `chunk_end - s` → `+` in plan ran each block a whole 64 KiB past its chunk.)
#[test]
fn a_resync_block_ends_at_its_bitmap_chunk() {
    let size = 64 * BLK;
    let chunk = 8;
    let mut cfg = Raid1Config::new(2, size);
    let mut bm = BitmapConfig::new(chunk);
    let dirty = [0u64, 3, 40, 41];
    bm.set_chunks = dirty.iter().map(|&c| (c, 1)).collect();
    cfg.bitmap = Some(bm);
    cfg.resync_offset = 0;
    cfg.start_clean = false;
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x66);
    fill(&mut s, 1, 0x77);
    s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    for c in 0..size / chunk {
        let a = (c * chunk * 512) as usize;
        let want = if dirty.contains(&c) { 0x66 } else { 0x77 };
        assert!(
            s.members[1].data[a..a + chunk as usize * 512]
                .iter()
                .all(|&b| b == want),
            "chunk {c}"
        );
    }
    let c1 = s.engine.member_counters(1).unwrap();
    assert_eq!(c1.write_sectors, dirty.len() as u64 * chunk);
    assert_eq!(
        s.engine.member_counters(0).unwrap().read_sectors,
        dirty.len() as u64 * chunk
    );
}

/// Two members rebuilt from different offsets: the block before the later one's offset ends
/// there, so that member takes part from its very offset. Both end equal to the source.
/// (Mutant: `later - s` → `+` in plan ran the first block (from 32) past the later offset
/// (96), and that member's sectors between its offset and the block's end were never copied.)
#[test]
fn a_recovery_block_ends_where_a_later_target_starts() {
    let size = 8 * BLK;
    let (first, second) = (BLK / 4, BLK / 4 + BLK / 2);
    let mut cfg = Raid1Config::new(3, size);
    cfg.members[1] = MemberConfig::recovering(first);
    cfg.members[2] = MemberConfig::recovering(second);
    let mut s = sim(cfg);
    let src: Vec<u8> = (0..size as usize * 512)
        .map(|i| (i / 512 % 251) as u8)
        .collect();
    s.members[0].data.copy_from_slice(&src);
    // Each target holds the data below its offset already (it was in sync there).
    for (m, off) in [(1, first), (2, second)] {
        let below = off as usize * 512;
        s.members[m].data[..below].copy_from_slice(&src[..below]);
    }
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    for (m, off) in [(1, first), (2, second)] {
        assert_eq!(s.engine.member_state(m), Some(PositionState::InSync));
        let bad = (0..size as usize)
            .find(|&k| s.members[m].data[k * 512..(k + 1) * 512] != src[k * 512..(k + 1) * 512]);
        assert_eq!(bad, None, "member {m}: first sector that differs");
        assert_eq!(
            s.engine.member_counters(m).unwrap().write_sectors,
            size - off,
            "member {m} copied from its offset on"
        );
    }
}

/// A recovery cuts its blocks where a source's known bad range starts and ends (md's
/// raid1_sync_request: sync what is good, stop at the bad): the target records as bad only
/// the sectors no mirror has good, and copies the rest of the block. (Mutants in plan: the
/// Recovery arm of `involved` deleted, and `set | in_sync_mask` → `&`, cut only at the
/// targets' own bad ranges, so the whole 64 KiB block around the source's bad range had no
/// source and went onto the target's bad-block list.)
#[test]
fn a_recovery_cuts_its_blocks_at_a_sources_bad_range() {
    let size = 16 * BLK;
    let s = recover_past_bad_source(size, &[(300, 2)]);
    for k in (0..size as usize).filter(|k| !(300..302).contains(k)) {
        assert!(
            s.members[1].data[k * 512..(k + 1) * 512]
                .iter()
                .all(|&b| b == 0x5a),
            "sector {k} not copied"
        );
    }
}

/// A 2-mirror array of `size` sectors (0x5a everywhere) whose member 0 has the bad ranges
/// `bad`, recovered onto member 1: asserted in sync, with exactly those ranges recorded bad
/// on it (no mirror has them good).
fn recover_past_bad_source(size: u64, bad: &[(u64, u64)]) -> Sim {
    let mut cfg = Raid1Config::new(2, size);
    cfg.members[0].bad_blocks = Some(BadBlockTable {
        ranges: bad.to_vec(),
        capacity: 8,
    });
    cfg.members[1] = MemberConfig::recovering(0);
    cfg.members[1].bad_blocks = Some(BadBlockTable {
        ranges: vec![],
        capacity: 8,
    });
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x5a);
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
    assert_eq!(s.engine.bad_blocks(1), Some(bad));
    s
}

/// The source's reads of a recovery (`(sector, sectors)`, in issue order).
fn source_reads(s: &Sim, member: usize) -> Vec<(u64, u64)> {
    s.io_log
        .iter()
        .filter(|r| {
            r.io.member == member
                && r.io.kind == MemberIoKind::Read
                && matches!(r.io.buf, IoBuf::Scratch { .. })
        })
        .map(|r| (r.io.sector, r.io.sectors))
        .collect()
}

/// Around a source's bad ranges the blocks are cut in whole pieces: one up to where a bad
/// range starts, one over the bad range (no source: recorded bad on the target), then whole
/// 64 KiB blocks again. A bad range at sector 0 and one inside the first block. (Mutants in
/// plan: `bs - s` → `bs / s` cut the pieces before a bad range into ever smaller blocks, and
/// `bs + bl - s` → `/ s` divided by zero at sector 0.)
#[test]
fn a_recovery_cuts_around_a_sources_bad_ranges_in_whole_pieces() {
    let size = 16 * BLK;
    let s = recover_past_bad_source(size, &[(0, 4), (50, 2)]);
    let mut want = vec![(4, 46)];
    let mut at = 52;
    while at < size {
        let n = BLK.min(size - at);
        want.push((at, n));
        at += n;
    }
    assert_eq!(source_reads(&s, 0), want);
}

/// A recovery target's own known-bad range is left alone: the block over it is read but not
/// written there, and the range stays on its list. (Mutant: `excluded |= bit(i)` → `&=` in
/// plan wrote the target's bad sectors like good ones.)
#[test]
fn a_recovery_does_not_write_over_a_targets_bad_range() {
    let size = 16 * BLK;
    let mut cfg = Raid1Config::new(2, size);
    cfg.members[1] = MemberConfig::recovering(0);
    cfg.members[1].bad_blocks = Some(BadBlockTable {
        ranges: vec![(300, 2)],
        capacity: 8,
    });
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x5a);
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
    assert_eq!(s.engine.bad_blocks(1), Some(&[(300, 2)][..]));
    for k in 0..size as usize {
        let want = if (300..302).contains(&k) { 0 } else { 0x5a };
        assert!(
            s.members[1].data[k * 512..(k + 1) * 512]
                .iter()
                .all(|&b| b == want),
            "sector {k}"
        );
    }
    assert_eq!(s.engine.member_counters(1).unwrap().write_sectors, size - 2);
}

/// A check passes over a piece only one mirror has good (the other's known-bad range):
/// nothing to compare there, the check goes on right after it and reads everything else.
/// (Mutants: `next + len` → `-` or `*` in schedule_sync's "fewer than two readable copies"
/// step went back, looping, or jumped past the rest of the array.)
#[test]
fn a_check_steps_over_a_piece_with_one_good_copy() {
    let size = 16 * BLK;
    let mut cfg = Raid1Config::new(2, size);
    cfg.members[1].bad_blocks = Some(BadBlockTable {
        ranges: vec![(300, 2)],
        capacity: 8,
    });
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x5a);
    fill(&mut s, 1, 0x5a);
    s.engine.start_sync(SyncAction::Check, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(s.engine.mismatch_cnt(), 0);
    for m in 0..2 {
        let read: u64 = source_reads(&s, m).iter().map(|r| r.1).sum();
        assert_eq!(read, size - 2, "member {m} read all but the piece");
    }
}

/// A resync or recovery block takes one sync buffer however many mirrors it writes: with a
/// single buffer a three-mirror resync and a recovery run to their end. (Mutant: the
/// Resync/Recovery arm of `need_bufs` deleted, so a resync block wanted a buffer per mirror
/// and never started.)
#[test]
fn a_resync_block_takes_one_buffer_for_every_mirror() {
    let size = 8 * BLK;
    let mut cfg = Raid1Config::new(3, size);
    cfg.resync_offset = 0;
    cfg.start_clean = false;
    cfg.sync_buffers = 1;
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x5a);
    s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(s.engine.resync_offset(), u64::MAX);
    for m in 1..3 {
        assert_eq!(s.members[m].data, s.members[0].data, "member {m}");
    }
}

/// A long clean stretch is scanned in bounded steps: one call plans at most 4096 pieces a
/// round, and the rest waits for an immediate timer. Here 2^21 clean bitmap chunks (8 GiB of
/// 8-sector chunks, no I/O at all): starting the resync scans exactly 256 rounds (the engine's
/// cap on the rounds of one progress call) × 4096 chunks, then arms the timer. (Mutants in schedule_sync: `scan += 1` → `*=` took the whole
/// stretch in one call; `scan > 4096` → `==`, `>=` stopped one chunk early each round.)
#[test]
fn a_long_clean_stretch_is_scanned_4096_chunks_a_round() {
    let chunks = 1u64 << 21;
    let mut cfg = Raid1Config::new(2, chunks * 8);
    cfg.bitmap = Some(BitmapConfig::new(8));
    cfg.resync_offset = 0;
    let mut s = Sim::new(Raid1::new(cfg).unwrap(), 8);
    s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
    let st = s.engine.sync_status().expect("still scanning");
    assert_eq!(st.done_sectors, 256 * 4096 * 8);
    assert_eq!(s.engine.poll_timeout(), Some(s.engine.now()));
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    assert_eq!(s.engine.resync_offset(), u64::MAX);
}

/// A sync write still waiting for a member I/O slot is not issued to a target that failed
/// meanwhile (md writes no failed member). Here one member I/O at a time: the recovery block's
/// write to member 1 holds the only slot, member 2 (the other target) fails, and when the slot
/// frees the block passes over member 2. (Mutant: `working && buf != NO_BUF` → `||` in
/// issue_sync wrote to the failed member.)
#[test]
fn a_sync_write_waiting_for_a_slot_skips_a_target_that_failed() {
    let size = 4 * BLK;
    let mut cfg = Raid1Config::new(3, size);
    cfg.members[1] = MemberConfig::recovering(0);
    cfg.members[2] = MemberConfig::recovering(0);
    cfg.max_member_ios = 1;
    cfg.sync_window = 1;
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x5a);
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    s.pump();
    let writing = |s: &Sim, m: usize| {
        s.io_log
            .iter()
            .any(|r| r.io.member == m && r.io.kind == MemberIoKind::Write && r.done > s.now)
    };
    assert!(s.run_until(|s| writing(s, 1)));
    assert!(!writing(&s, 2), "one member I/O at a time");
    let failed_at = s.now;
    s.engine.fail_member(2).unwrap();
    s.pump();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    let late: Vec<_> = s
        .io_log
        .iter()
        .filter(|r| r.io.member == 2 && r.issued >= failed_at)
        .map(|r| (r.io.kind, r.io.sector))
        .collect();
    assert_eq!(late, vec![], "I/O to member 2 after it failed");
    assert_eq!(s.engine.member_state(2), Some(PositionState::Faulty));
}

/// md's `raid1_sync_request` reads from the first in-sync mirror that is not write-mostly,
/// and from a write-mostly one only when no other can supply the block. Here member 0 is
/// write-mostly: the recovery reads member 1, except for the block member 1 cannot read.
/// (Mutant: `!m.write_mostly` → `m.write_mostly` in pick_source preferred member 0.)
#[test]
fn a_recovery_reads_a_write_mostly_mirror_last() {
    let size = 8 * BLK;
    let mut cfg = Raid1Config::new(3, size);
    cfg.members[0].write_mostly = true;
    cfg.members[2] = MemberConfig::recovering(0);
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x5a);
    fill(&mut s, 1, 0x5a);
    s.members[1]
        .faults
        .push(Fault::read_forever(3 * BLK + 5, 1));
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(s.engine.member_state(2), Some(PositionState::InSync));
    assert_eq!(s.members[2].data, s.members[0].data);
    let ok_reads = |m: usize| -> Vec<u64> {
        s.io_log
            .iter()
            .filter(|r| {
                r.io.member == m
                    && r.ok
                    && r.io.kind == MemberIoKind::Read
                    && matches!(r.io.buf, IoBuf::Scratch { .. })
            })
            .map(|r| r.io.sector)
            .collect()
    };
    let mut want: Vec<u64> = (0..8).map(|b| b * BLK).collect();
    want.retain(|&b| b != 3 * BLK);
    assert_eq!(
        ok_reads(1),
        want,
        "member 1 supplies every block it can read"
    );
    assert_eq!(
        ok_reads(0),
        vec![3 * BLK],
        "member 0 only the one member 1 cannot"
    );
}

/// A recovery block no mirror can read waits for its bad-block record on the target before
/// it is done: the recovery's progress does not pass the block until the owner has
/// acknowledged the BadBlocks event (else a cut before the record would leave the target
/// claiming the lost sectors as rebuilt). (Mutant: `meta_wait += 1` → `*=` in sync_unreadable
/// let the block finish at once.)
#[test]
fn an_unreadable_recovery_block_waits_for_its_bad_block_record() {
    let size = 16 * BLK;
    let mut cfg = Raid1Config::new(2, size);
    cfg.members[1] = MemberConfig::recovering(0);
    cfg.members[1].bad_blocks = Some(BadBlockTable {
        ranges: vec![],
        capacity: 8,
    });
    let mut s = sim(cfg);
    s.meta_latency = 50_000_000;
    fill(&mut s, 0, 0x5a);
    s.members[0]
        .faults
        .push(Fault::read_forever(4 * BLK + 2, 1));
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    let mut passed_unrecorded = None;
    let mut acked_at = None;
    assert!(s.run_until(|s| {
        let token = s.events.iter().find_map(|(_, e)| match *e {
            Event::BadBlocks {
                token, member: 1, ..
            } => Some(token),
            _ => None,
        });
        let acked = token.is_some_and(|t| s.acks.iter().any(|&(_, a)| a == t));
        if acked && acked_at.is_none() {
            acked_at = Some(s.now);
        }
        if let Some(st) = s.engine.sync_status() {
            if !acked && st.done_sectors > 4 * BLK && passed_unrecorded.is_none() {
                passed_unrecorded = Some((s.now, st.done_sectors));
            }
        }
        s.engine.sync_status().is_none()
    }));
    s.settle();
    assert_eq!(
        passed_unrecorded, None,
        "progress past the block before its record"
    );
    assert!(
        acked_at.is_some_and(|t| t >= 50_000_000),
        "the record took the owner's 50 ms"
    );
    assert_eq!(s.engine.bad_blocks(1), Some(&[(4 * BLK, BLK)][..]));
    assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
}

/// md's fix_sync_read_error: a block no mirror can read is recorded bad on the target; when
/// that cannot be recorded (no bad-block log here) the recovery is interrupted, and the target
/// does not come in sync over sectors it never received. (Mutant: `stop && !st.aborting` →
/// `stop && st.aborting` in sync_unreadable went on and finished the recovery.)
#[test]
fn an_unreadable_block_without_a_bad_block_log_interrupts_the_recovery() {
    let size = 16 * BLK;
    let mut cfg = Raid1Config::new(2, size);
    cfg.members[1] = MemberConfig::recovering(0);
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x5a);
    s.members[0]
        .faults
        .push(Fault::read_forever(4 * BLK + 2, 1));
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(sync_done(&s).first(), Some(&(SyncAction::Recovery, true)));
    // (Its recovery offset may pass the lost block, as md's curr_resync does on an
    // interrupted recovery; the member stays out of sync.)
    assert!(
        matches!(
            s.engine.member_state(1),
            Some(PositionState::Recovering { .. })
        ),
        "member 1 is {:?}",
        s.engine.member_state(1)
    );
    assert!(!s
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::MemberInSync { .. })));
}

/// Failed sync reads (count by the io log) on member `m`.
fn failed_sync_reads(s: &Sim, m: usize) -> u32 {
    s.io_log
        .iter()
        .filter(|r| {
            r.io.member == m
                && !r.ok
                && r.io.kind == MemberIoKind::Read
                && matches!(r.io.buf, IoBuf::Scratch { .. })
        })
        .count() as u32
}

/// A sync read that fails counts as a read error of its member (toward `max_read_errors`),
/// for a recovery's source as for a check's reader: the member's count is the number of its
/// failed sync reads. (Mutants: `!stale` → `stale` in sync_io_done, both the resync/recovery
/// and the check/repair arm, stopped counting them.)
#[test]
fn a_failed_sync_read_counts_as_a_read_error() {
    let size = 8 * BLK;
    // Recovery: member 0 fails one read, member 1 supplies that block.
    let mut cfg = Raid1Config::new(3, size);
    cfg.members[2] = MemberConfig::recovering(0);
    let mut s = sim(cfg);
    fill(&mut s, 0, 0x5a);
    fill(&mut s, 1, 0x5a);
    s.members[0].faults.push(Fault::read_forever(2 * BLK, 1));
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(s.engine.member_state(2), Some(PositionState::InSync));
    assert_eq!(s.members[2].data, s.members[1].data);
    assert_eq!(failed_sync_reads(&s, 0), 1);
    assert_eq!(s.engine.member_counters(0).unwrap().read_errors, 1);
    // Check: member 1 fails one read (rewritten from member 0).
    let mut s = sim(Raid1Config::new(2, size));
    s.members[1].faults.push(Fault::media(3 * BLK, 2));
    s.engine.start_sync(SyncAction::Check, s.now).unwrap();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(failed_sync_reads(&s, 1), 1);
    assert_eq!(s.engine.member_counters(1).unwrap().read_errors, 1);
    assert_eq!(s.engine.member_counters(0).unwrap().read_errors, 0);
}
