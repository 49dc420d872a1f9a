//! md's `sync_action` `idle` and `frozen` ([`Raid1::stop_sync`]) on the deterministic simulator.
//! Both stop the running action. `idle` then lets md's recovery check run: a resync the array
//! still owes, or a recovery, starts again from its checkpoint; a check does not. `frozen`
//! keeps every action from starting on its own (a spare stays a spare) until a start or an
//! `idle`. The guest's `sync_ctl` scenario holds the same sequence against the kernel's md.

mod common;

use common::sync_done;
use mdraid::array::machine::{Machine, Notice};
use mdraid::array::setup;
use mdraid::array::{CreateOptions, Now};
use mdraid::format::MetadataVersion;
use mdraid::raid1::sim::Sim;
use mdraid::raid1::*;

const SECTOR: usize = 512;
const BLK: u64 = SYNC_BLOCK_SECTORS;
const SIZE: u64 = 64 * BLK;

fn pattern(seed: u8, sectors: u64) -> Vec<u8> {
    (0..sectors as usize * SECTOR)
        .map(|i| (i as u8).wrapping_mul(13) ^ seed)
        .collect()
}

fn sim(cfg: Raid1Config) -> Sim {
    let n = cfg.array_sectors;
    Sim::new(Raid1::new(cfg).expect("config"), n)
}

/// Runs `steps` simulator steps; the action must still be running then.
fn part_way(s: &mut Sim, steps: usize) {
    for _ in 0..steps {
        s.step();
    }
    assert!(s.engine.sync_status().is_some(), "the action ended early");
}

/// `idle` on the running action, then runs until the action it restarts has ended too.
fn idle_through_the_restart(s: &mut Sim) {
    s.engine.stop_sync(false);
    s.pump();
    assert!(s.run_until(|s| sync_done(s).len() == 2 && s.engine.sync_status().is_none()));
    s.settle();
}

/// Lets `secs` seconds pass, a timeout and a settle each.
fn idle_for(s: &mut Sim, secs: u32) {
    for _ in 0..secs {
        s.now += 1_000_000_000;
        s.engine.handle_timeout(s.now);
        s.settle();
    }
}

/// The checkpoint of the first interrupted action: the last SyncCheckpoint before its SyncDone.
fn first_stop_checkpoint(s: &Sim) -> u64 {
    let mut cp = 0;
    for (_, e) in &s.events {
        match *e {
            Event::SyncCheckpoint { sector, .. } => cp = sector,
            Event::SyncDone { .. } => return cp,
            _ => {}
        }
    }
    panic!("no action ended");
}

/// (action, sectors copied) of every SyncDone.
fn copied(s: &Sim) -> Vec<(SyncAction, u64)> {
    s.events
        .iter()
        .filter_map(|(_, e)| match *e {
            Event::SyncDone {
                action,
                sectors_copied,
                ..
            } => Some((action, sectors_copied)),
            _ => None,
        })
        .collect()
}

/// A 2-mirror array owing a whole resync, mirrors different, the resync started.
fn resyncing() -> Sim {
    let mut cfg = Raid1Config::new(2, SIZE);
    cfg.resync_offset = 0;
    cfg.start_clean = false;
    let mut s = sim(cfg);
    s.members[0].data.copy_from_slice(&pattern(1, SIZE));
    s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
    s.pump();
    s
}

#[test]
fn idle_restarts_a_stopped_resync_from_its_checkpoint() {
    let mut s = resyncing();
    part_way(&mut s, 12);
    idle_through_the_restart(&mut s);
    assert_eq!(
        sync_done(&s),
        vec![(SyncAction::Resync, true), (SyncAction::Resync, false)],
        "idle did not restart the resync"
    );
    let cp = first_stop_checkpoint(&s);
    assert!(cp > 0 && cp < SIZE, "the stop's checkpoint {cp}");
    // The second run went on from the checkpoint: it copied exactly the rest.
    assert_eq!(copied(&s)[1], (SyncAction::Resync, SIZE - cp));
    assert_eq!(s.engine.resync_offset(), u64::MAX);
    assert_eq!(s.members[0].data, s.members[1].data, "mirrors differ");
    assert!(!s.engine.sync_frozen());
}

#[test]
fn frozen_keeps_a_stopped_resync_stopped_until_a_start() {
    let mut s = resyncing();
    part_way(&mut s, 12);
    s.engine.stop_sync(true);
    s.pump();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    idle_for(&mut s, 20);
    assert_eq!(sync_done(&s), vec![(SyncAction::Resync, true)]);
    assert!(
        s.engine.sync_status().is_none(),
        "a frozen array resumed its resync"
    );
    assert!(s.engine.sync_frozen());
    let cp = first_stop_checkpoint(&s);
    assert_eq!(s.engine.resync_offset(), cp);
    // A start unfreezes (md's `resync` clears MD_RECOVERY_FROZEN).
    s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
    assert!(!s.engine.sync_frozen());
    s.pump();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    s.settle();
    assert_eq!(copied(&s)[1], (SyncAction::Resync, SIZE - cp));
    assert_eq!(s.members[0].data, s.members[1].data, "mirrors differ");
}

#[test]
fn idle_does_not_restart_a_check() {
    let mut s = sim(Raid1Config::new(2, SIZE));
    s.engine.start_sync(SyncAction::Check, s.now).unwrap();
    s.pump();
    part_way(&mut s, 12);
    s.engine.stop_sync(false);
    s.pump();
    assert!(s.run_until(|s| s.engine.sync_status().is_none()));
    idle_for(&mut s, 5);
    assert_eq!(sync_done(&s), vec![(SyncAction::Check, true)]);
    assert!(s.engine.sync_status().is_none(), "idle restarted the check");
}

#[test]
fn idle_resumes_a_stopped_recovery() {
    let mut cfg = Raid1Config::new(2, SIZE);
    cfg.members[1] = MemberConfig::recovering(0);
    let mut s = sim(cfg);
    s.members[0].data.copy_from_slice(&pattern(2, SIZE));
    s.engine.start_sync(SyncAction::Recovery, s.now).unwrap();
    s.pump();
    part_way(&mut s, 12);
    idle_through_the_restart(&mut s);
    assert_eq!(
        sync_done(&s),
        vec![(SyncAction::Recovery, true), (SyncAction::Recovery, false)]
    );
    let cp = first_stop_checkpoint(&s);
    assert!(cp > 0 && cp < SIZE, "the stop's checkpoint {cp}");
    assert_eq!(copied(&s)[1], (SyncAction::Recovery, SIZE - cp));
    assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
    assert_eq!(s.members[0].data, s.members[1].data, "mirrors differ");
}

/// Frozen, a member fails with a spare at hand: md would rebuild onto the spare, a frozen
/// array does not until `idle`.
#[test]
fn frozen_holds_a_spare_back_until_idle() {
    let mut cfg = Raid1Config::new(2, SIZE);
    cfg.members.push(MemberConfig::spare());
    let mut s = sim(cfg);
    let d = pattern(3, SIZE);
    s.members[0].data.copy_from_slice(&d);
    s.members[1].data.copy_from_slice(&d);
    s.engine.stop_sync(true);
    assert!(s.engine.sync_frozen());
    s.engine.fail_member(1).unwrap();
    s.settle();
    idle_for(&mut s, 5);
    assert_eq!(s.engine.member_state(2), Some(PositionState::Spare));
    assert!(
        s.engine.sync_status().is_none(),
        "a frozen array started a recovery"
    );
    s.engine.stop_sync(false);
    s.pump();
    assert!(s.run_until(|s| s.engine.sync_status().is_none() && !sync_done(s).is_empty()));
    s.settle();
    assert_eq!(sync_done(&s), vec![(SyncAction::Recovery, false)]);
    assert_eq!(s.engine.member_state(2), Some(PositionState::InSync));
    assert_eq!(s.members[2].data, d, "the spare was not rebuilt");
}

/// A machine made by `setup::create` over two 16 MiB devices that owe a resync, the resync
/// started.
fn resyncing_machine() -> (Machine, Now) {
    let opts = CreateOptions {
        assume_clean: false,
        now: 1_900_000_000,
        ..common::create_options(MetadataVersion::V1_2, 2)
    };
    let now = Now {
        mono_ns: 0,
        wall_secs: 1_900_000_000,
    };
    let mut m = setup::create(common::info_slots(2, 16 << 20), &opts, now)
        .unwrap()
        .0;
    m.start_sync(SyncAction::Resync).unwrap();
    (m, now)
}

/// Completes `ios` of the machine's I/Os (every one succeeds: contents do not matter here),
/// or all of them until it is idle; time moves when nothing is out. The notices seen.
fn run_machine(m: &mut Machine, now: &mut Now, ios: usize) -> Vec<Notice> {
    let mut notices = Vec::new();
    let mut done = 0;
    for _ in 0..200_000 {
        while let Some(n) = m.poll_event() {
            notices.push(n);
        }
        if done >= ios {
            break;
        }
        match m.poll_io() {
            Some(io) => {
                m.handle_io_completion(io.id, Ok(())).unwrap();
                done += 1;
            }
            None if m.is_busy() => {
                now.mono_ns += 100_000_000;
                m.handle_timeout(*now);
            }
            None => break,
        }
    }
    notices
}

/// The ends of sync actions among `notices`: whether each was interrupted.
fn ends(notices: &[Notice]) -> Vec<bool> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::SyncDone(r) => Some(r.interrupted),
            _ => None,
        })
        .collect()
}

/// The machine: `idle` on a stopping array only stops (the stop's own abort must not turn
/// into md's recovery check restarting the resync it is ending).
#[test]
fn idle_on_a_stopping_machine_restarts_nothing() {
    let (mut m, mut now) = resyncing_machine();
    run_machine(&mut m, &mut now, 20);
    assert!(m.engine().sync_status().is_some(), "the resync ended early");
    m.stop();
    m.stop_sync(false);
    m.request_sync_check();
    let notices = run_machine(&mut m, &mut now, usize::MAX);
    assert_eq!(
        ends(&notices),
        vec![true],
        "the stop's resync end, and nothing restarted after it"
    );
    assert!(m.engine().sync_status().is_none());
    assert!(m.is_stopped(), "the stop did not finish");
}

/// The machine: after a plain abort, a recovery check resumes the resync to its end.
#[test]
fn a_machine_sync_check_resumes_an_aborted_resync() {
    let (mut m, mut now) = resyncing_machine();
    run_machine(&mut m, &mut now, 20);
    m.abort_sync().unwrap();
    let notices = run_machine(&mut m, &mut now, usize::MAX);
    assert_eq!(ends(&notices), vec![true]);
    m.request_sync_check();
    let notices = run_machine(&mut m, &mut now, usize::MAX);
    assert_eq!(
        ends(&notices),
        vec![false],
        "the check did not resume the resync"
    );
    assert!(!m.needs_resync());
}

/// The machine's own calls: `frozen` stops the resync and a recovery check starts nothing;
/// `idle` then resumes it to its end, and the array owes no resync.
#[test]
fn the_machine_freezes_and_resumes_a_resync() {
    let (mut m, mut now) = resyncing_machine();
    run_machine(&mut m, &mut now, 20);
    m.stop_sync(true);
    let notices = run_machine(&mut m, &mut now, usize::MAX);
    assert_eq!(ends(&notices), vec![true], "frozen: the resync stops");
    assert!(m.engine().sync_frozen());
    m.request_sync_check();
    let notices = run_machine(&mut m, &mut now, usize::MAX);
    assert!(
        ends(&notices).is_empty(),
        "a frozen machine resumed its resync"
    );
    assert!(m.needs_resync());
    m.stop_sync(false);
    let notices = run_machine(&mut m, &mut now, usize::MAX);
    assert_eq!(
        ends(&notices),
        vec![false],
        "idle: the resync resumes to its end"
    );
    assert!(!m.needs_resync(), "the resync's debt is still owed");
}

/// A driver that paused a resync with a plain abort (the kernel shim's hot add) asks for md's
/// recovery check afterwards: the resync goes on from its checkpoint; a frozen array stays
/// stopped.
#[test]
fn a_sync_check_resumes_an_aborted_resync_unless_frozen() {
    for frozen in [false, true] {
        let mut s = resyncing();
        part_way(&mut s, 12);
        if frozen {
            s.engine.stop_sync(true);
        } else {
            s.engine.abort_sync().unwrap();
        }
        s.pump();
        assert!(s.run_until(|s| s.engine.sync_status().is_none()));
        s.settle();
        assert_eq!(
            sync_done(&s),
            vec![(SyncAction::Resync, true)],
            "frozen {frozen}"
        );
        s.engine.request_sync_check();
        s.pump();
        assert!(s.run_until(|s| s.engine.sync_status().is_none()));
        s.settle();
        let cp = first_stop_checkpoint(&s);
        if frozen {
            assert_eq!(sync_done(&s).len(), 1, "a frozen array resumed its resync");
            assert_eq!(s.engine.resync_offset(), cp);
        } else {
            assert_eq!(
                sync_done(&s),
                vec![(SyncAction::Resync, true), (SyncAction::Resync, false)]
            );
            assert_eq!(copied(&s)[1], (SyncAction::Resync, SIZE - cp));
            assert_eq!(s.members[0].data, s.members[1].data, "mirrors differ");
        }
    }
}
