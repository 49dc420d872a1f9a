//! How a running sync moves the in-sync state and how it ends (`Raid1::sync_progress`,
//! `Raid1::sync_maybe_end`), on the deterministic simulator: the tests written for the
//! checkpoint mutants cargo-mutants found surviving the sync suites (see TESTING.md). Each
//! names the mutant it exists for.

use mdraid::raid1::sim::{Fault, Sim};
use mdraid::raid1::*;

mod common;
use common::sync_done;

const BLK: u64 = SYNC_BLOCK_SECTORS;

fn done(s: &Sim) -> u64 {
    s.engine
        .sync_status()
        .map_or(u64::MAX, |st| st.done_sectors)
}

/// The resync's own progress moves `resync_offset` up only: an owner that moved it past the
/// resync (`set_resync_offset`: it learned more is in sync) keeps its value while the resync
/// is still below it. (Mutant: the match guard `resync_offset < c` → `true` lowered it back
/// to the resync's progress.)
#[test]
fn a_resync_never_lowers_an_offset_the_owner_raised() {
    let size = 256 * BLK;
    let mut cfg = Raid1Config::new(2, size);
    cfg.resync_offset = 0;
    cfg.start_clean = false;
    let mut s = Sim::new(Raid1::new(cfg).unwrap(), size);
    s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
    assert!(s.run_until(|s| done(s) >= 8 * BLK));
    let at = done(&s);
    assert!(at < size / 4, "the resync ran too far at once: {at}");
    assert_eq!(
        s.engine.resync_offset(),
        at,
        "the offset follows the resync"
    );
    let raised = size - 16 * BLK;
    s.engine.set_resync_offset(raised);
    assert!(s.run_until(|s| done(s) >= at + 16 * BLK));
    let later = done(&s);
    assert!(later > at && later < raised, "{at} {later}");
    assert_eq!(s.engine.resync_offset(), raised, "progress at {later}");
    // Past the raised offset the resync moves it again, and its end marks the array in sync.
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    assert_eq!(s.engine.resync_offset(), u64::MAX);
}

/// Runs checks on an owner that acknowledges nothing until one cannot end (its end events do
/// not fit in the token space); returns how many ended. Every check that ended queued its
/// `SyncDone`.
fn checks_until_one_waits(s: &mut Sim) -> usize {
    for round in 0..10_000 {
        s.engine.start_sync(SyncAction::Check, s.now).unwrap();
        s.run_until(|s| s.engine.sync_status().is_none());
        let ended = sync_done(s).len();
        if s.engine.sync_status().is_some() {
            assert_eq!(ended, round, "every check that ended said so");
            return round;
        }
        assert_eq!(ended, round + 1, "check {round} ended without its SyncDone");
    }
    panic!("checks never ran out of token space");
}

/// Acknowledges the oldest unacknowledged tokens one at a time until the running action ends;
/// returns how many it took.
fn ack_until_ended(s: &mut Sim, acked: &mut usize) -> usize {
    for k in 1..=100 {
        let token = s.events[*acked].1.token();
        *acked += 1;
        s.ack(token).unwrap();
        s.run_until(|s| s.engine.sync_status().is_none());
        if s.engine.sync_status().is_none() {
            return k;
        }
    }
    panic!("the action did not end after 100 acknowledgements");
}

/// An action ends only when every event of its end fits (md's end is one step: checkpoint,
/// members in sync, done), and as soon as it does: `slots + 3` free tokens. (Mutants in
/// `sync_maybe_end`'s room test: `<` → `==` and the `||` → `&&` ended it without room, so
/// its SyncDone was lost; `<` → `<=` and `slots + 3` → `slots * 3` made it wait longer. And
/// `!interrupted && contiguous >= end` → `||` reported an abort that came once every block
/// was done as a completed action.)
#[test]
fn an_action_ends_exactly_when_its_end_events_fit() {
    let size = 32 * BLK;
    let mut s = Sim::new(Raid1::new(Raid1Config::new(2, size)).unwrap(), size);
    s.auto_ack = false;
    let room = s.engine.slots() + 3;
    let first = checks_until_one_waits(&mut s);
    assert!(first > 0);
    let st = s.engine.sync_status().unwrap();
    assert_eq!(
        st.done_sectors, st.total_sectors,
        "every block done: {st:?}"
    );
    let mut acked = 0;
    let k = ack_until_ended(&mut s, &mut acked);
    assert!((1..=room).contains(&k), "{k} acknowledgements");
    assert_eq!(sync_done(&s).len(), first + 1);
    // The next check fills the token space to the last token (its checkpoints take what is
    // left), so from here the count is exact: it ends on the `room`-th acknowledgement.
    s.engine.start_sync(SyncAction::Check, s.now).unwrap();
    s.run_until(|s| s.engine.sync_status().is_none());
    assert!(
        s.engine.sync_status().is_some(),
        "the second check waits too"
    );
    let full = s.engine.metadata_pending();
    assert_eq!(ack_until_ended(&mut s, &mut acked), room);
    assert_eq!(s.engine.metadata_pending(), full - room + 1, "its SyncDone");
    assert_eq!(sync_done(&s).last(), Some(&(SyncAction::Check, false)));
    // Aborted while waiting at its end: it ends interrupted, though every block was done.
    s.engine.start_sync(SyncAction::Check, s.now).unwrap();
    s.run_until(|s| s.engine.sync_status().is_none());
    let st = s.engine.sync_status().expect("the third check waits");
    assert_eq!(st.done_sectors, st.total_sectors);
    s.engine.abort_sync().unwrap();
    assert_eq!(ack_until_ended(&mut s, &mut acked), room);
    assert_eq!(sync_done(&s).last(), Some(&(SyncAction::Check, true)));
}

/// A recovery that could not copy a block (every source unreadable there: recorded as a bad
/// block on the target) keeps the bitmap bits it found: only a clean recovery makes the
/// chunks it rebuilt clean; with nothing left set it arms no bitmap daemon.
/// (Mutants: `Recovery && clean_ok` → `||` cleared them; `resync_offset < array_sectors` →
/// `<=` kept them when the array was known in sync exactly to its end; in the daemon's
/// re-arm, `state == CHUNK_SET` → `!=` and `left && deadline.is_none()` → `||` armed it with
/// nothing left.)
#[test]
fn a_recovery_that_could_not_copy_a_block_keeps_its_bitmap_bits() {
    let size = 16 * BLK;
    let dirty = vec![(2, 1), (9, 1)];
    for (unreadable, resync_offset, set_chunks) in [
        (false, u64::MAX, dirty.clone()),
        (false, size, dirty.clone()),
        (true, u64::MAX, dirty),
        (false, u64::MAX, vec![]),
    ] {
        let what = format!(
            "unreadable source: {unreadable}, resync_offset {resync_offset}, set {set_chunks:?}"
        );
        let clean_start = set_chunks.is_empty();
        let mut cfg = Raid1Config::new(2, size);
        cfg.resync_offset = resync_offset;
        cfg.members[1] = MemberConfig::recovering(0);
        cfg.members[1].bad_blocks = Some(BadBlockTable {
            ranges: vec![],
            capacity: 8,
        });
        let mut bm = BitmapConfig::new(BLK);
        bm.set_chunks = set_chunks;
        cfg.bitmap = Some(bm);
        let mut s = Sim::new(Raid1::new(cfg).unwrap(), size);
        if unreadable {
            s.members[0]
                .faults
                .push(Fault::read_forever(2 * BLK + 44, 2));
        }
        s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
        assert!(s.run_until(|s| s.engine.sync_status().is_none()), "{what}");
        s.settle();
        assert_eq!(
            s.engine.member_state(1),
            Some(PositionState::InSync),
            "{what}"
        );
        assert_eq!(sync_done(&s), vec![(SyncAction::Recovery, false)], "{what}");
        if unreadable {
            assert_eq!(s.engine.bad_blocks(1), Some(&[(2 * BLK, BLK)][..]));
        }
        if clean_start {
            // Nothing set, nothing left: the end arms no bitmap daemon.
            assert_eq!(s.engine.poll_timeout(), None, "{what}");
        }
        s.drive();
        for c in [2, 9] {
            assert_eq!(
                s.engine.bitmap_chunk_set(c),
                Some(unreadable),
                "chunk {c}, {what}"
            );
        }
    }
}
