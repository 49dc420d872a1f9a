//! md's `sync_action` `idle` and `frozen` through the blocking [`Array`]: between calls
//! ([`Array::stop_sync`]) and while an action runs ([`Array::run_sync_stoppable`], asked from
//! the progress callback here as another thread would). The engine's rules are
//! `sync_stop.rs`'s; these hold the driver to them: a frozen array starts nothing on its own
//! in any call, `idle` runs md's recovery check, a stopped check stays stopped, a stopped
//! resync resumes from its checkpoint.

mod common;

use common::{create_options, mem_slots};
use mdraid::array::{
    AddOptions, AddOutcome, Array, CreateOptions, CreateSlot, MemberState, SyncAction, SyncStop,
};
use mdraid::device::MemDevice;
use mdraid::format::MetadataVersion;

const BIG: usize = 64 << 20;

fn state(a: &Array<MemDevice>, name: &str) -> MemberState {
    a.members()
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.state)
        .unwrap()
}

fn in_sync(a: &Array<MemDevice>, name: &str) -> bool {
    matches!(state(a, name), MemberState::InSync(_))
}

#[test]
fn frozen_between_calls_keeps_spares_spare_until_idle_runs_the_recovery_check() {
    let mut a = Array::create(
        mem_slots(2, 8 << 20),
        &create_options(MetadataVersion::V1_2, 2),
    )
    .unwrap();
    let out = a
        .add_member(
            "m2".into(),
            MemDevice::new(8 << 20),
            &AddOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(out, AddOutcome::Spare);
    assert_eq!(a.stop_sync(true, &mut |_, _| {}).unwrap(), None);
    assert!(a.sync_frozen());
    // md's recovery check starts nothing while frozen: the failed slot stays empty.
    a.fail_member("m0").unwrap();
    assert_eq!(state(&a, "m2"), MemberState::Spare, "rebuilt while frozen");
    a.remove_member("m0", None).unwrap();
    let out = a
        .add_member(
            "m3".into(),
            MemDevice::new(8 << 20),
            &AddOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(
        out,
        AddOutcome::Spare,
        "an added device rebuilt while frozen"
    );
    assert!(a.sync_frozen() && a.is_degraded());
    // idle: the freeze ends and the recovery check rebuilds a spare into the empty slot.
    let r = a
        .stop_sync(false, &mut |_, _| {})
        .unwrap()
        .expect("no recovery ran");
    assert_eq!(r.action, SyncAction::Recovery);
    assert!(!r.interrupted);
    assert!(!a.sync_frozen() && !a.is_degraded());
    assert!(in_sync(&a, "m2") || in_sync(&a, "m3"));
}

#[test]
fn a_check_stopped_by_idle_ends_interrupted_and_nothing_restarts_it() {
    let mut a =
        Array::create(mem_slots(2, BIG), &create_options(MetadataVersion::V1_2, 2)).unwrap();
    let total = a.component_sectors();
    let stop = SyncStop::new();
    let mut reports = 0;
    let r = a
        .run_sync_stoppable(
            SyncAction::Check,
            &mut |done, all| {
                reports += 1;
                if done > 0 && done < all {
                    stop.request(false);
                }
            },
            &stop,
        )
        .unwrap();
    assert!(reports > 1, "no progress report before the end");
    assert_eq!(r.action, SyncAction::Check);
    assert!(r.interrupted, "the check ran to its end: {r:?}");
    assert!(r.sectors_done < total, "{r:?}");
    assert!(!a.sync_frozen());
    // The next check runs whole.
    let r = a.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
    assert!(
        !r.interrupted && r.sectors_done == total && r.mismatch_cnt == 0,
        "{r:?}"
    );
}

fn unclean() -> Array<MemDevice> {
    let opts = CreateOptions {
        assume_clean: false,
        ..create_options(MetadataVersion::V1_2, 2)
    };
    // Different contents, so the resync has something to copy and the end result shows it.
    let slots = [0u8, 0x5a]
        .into_iter()
        .enumerate()
        .map(|(i, fill)| CreateSlot::Device {
            name: format!("m{i}"),
            dev: MemDevice::from_vec(vec![fill; BIG]),
            write_mostly: false,
            failfast: false,
        })
        .collect();
    Array::create(slots, &opts).unwrap()
}

#[test]
fn a_resync_frozen_part_way_waits_and_resumes_from_its_checkpoint() {
    let mut a = unclean();
    assert!(a.needs_resync());
    let total = a.component_sectors();
    let stop = SyncStop::new();
    let r = a
        .run_sync_stoppable(
            SyncAction::Resync,
            &mut |done, all| {
                if done > 0 && done < all {
                    stop.request(true);
                }
            },
            &stop,
        )
        .unwrap();
    assert_eq!(r.action, SyncAction::Resync);
    assert!(r.interrupted && r.sectors_done < total, "{r:?}");
    assert!(a.sync_frozen() && a.needs_resync());
    // Frozen: other calls do not restart the resync md still owes.
    a.write(0, &[1u8; 4096]).unwrap();
    a.tick().unwrap();
    assert!(a.needs_resync(), "the resync ran while frozen");
    // An explicit resync ends the freeze and copies only what is left past the checkpoint.
    let r2 = a.run_sync(SyncAction::Resync, &mut |_, _| {}).unwrap();
    assert!(!r2.interrupted && r2.sectors_done == total, "{r2:?}");
    // (The mirrors differed everywhere: a resync copies every block it covers.)
    assert_eq!(
        r2.sectors_copied,
        total - r.sectors_done,
        "not resumed from the checkpoint: {r:?} then {r2:?}"
    );
    assert!(!a.needs_resync() && !a.sync_frozen());
    let r3 = a.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
    assert_eq!(
        r3.mismatch_cnt, 0,
        "mirrors differ after the resumed resync"
    );
}

#[test]
fn a_resync_stopped_by_idle_restarts_at_once_and_the_report_is_the_last() {
    let mut a = unclean();
    let stop = SyncStop::new();
    let mut asked = false;
    let r = a
        .run_sync_stoppable(
            SyncAction::Resync,
            &mut |done, all| {
                if !asked && done > 0 && done < all {
                    asked = true;
                    stop.request(false);
                }
            },
            &stop,
        )
        .unwrap();
    assert!(asked);
    // md restarts an owed resync after idle: the call drives it to its end.
    assert!(!r.interrupted, "{r:?}");
    assert!(!a.needs_resync());
    assert_eq!(
        a.run_sync(SyncAction::Check, &mut |_, _| {})
            .unwrap()
            .mismatch_cnt,
        0
    );
}

/// The recovery of an add and the copy of a replace stop the same way (the CLI's SIGINT):
/// `frozen` mid-copy ends it at its checkpoint with the report saying so, the array stays
/// degraded (add) or the replacement unfinished (replace), and the next assembly resumes the
/// copy from that checkpoint to a clean check.
#[test]
fn an_add_or_a_replace_frozen_mid_copy_resumes_from_its_checkpoint_at_assembly() {
    for replace in [false, true] {
        let case = if replace { "replace" } else { "add" };
        let mut a =
            Array::create(mem_slots(2, BIG), &create_options(MetadataVersion::V1_2, 2)).unwrap();
        a.write(0, &[0x5au8; 1 << 20]).unwrap();
        let stop = SyncStop::new();
        let mut freeze = |done: u64, all: u64| {
            if done > 0 && done < all {
                stop.request(true);
            }
        };
        let r = if replace {
            add_spare(&mut a, "m2");
            a.replace_member_stoppable("m0", Some("m2"), &mut freeze, &stop)
                .unwrap()
        } else {
            a.fail_member("m0").unwrap();
            a.remove_member("m0", None).unwrap();
            match a
                .add_member_stoppable(
                    "m2".into(),
                    MemDevice::new(BIG),
                    &AddOptions::default(),
                    &mut freeze,
                    &stop,
                )
                .unwrap()
            {
                AddOutcome::Rebuilt(r) => r,
                o => panic!("{case}: {o:?}"),
            }
        };
        let total = a.component_sectors();
        assert_eq!(r.action, SyncAction::Recovery, "{case}");
        assert!(r.interrupted && r.sectors_done < total, "{case}: {r:?}");
        assert!(a.sync_frozen(), "{case}");
        if replace {
            assert!(
                in_sync(&a, "m0") && !in_sync(&a, "m2"),
                "{case}: swapped early"
            );
        } else {
            assert!(a.is_degraded(), "{case}");
        }
        // Assembly runs md's recovery check: the copy resumes from the checkpoint.
        let mut b = reassemble(a);
        let r2 = b
            .stop_sync(false, &mut |_, _| {})
            .unwrap()
            .or_else(|| b.last_sync())
            .expect("the copy was not resumed");
        assert!(!r2.interrupted, "{case}: {r2:?}");
        assert!(
            r2.sectors_copied < total,
            "{case}: restarted, not resumed: {r:?} then {r2:?}"
        );
        assert!(in_sync(&b, "m2") && !b.is_degraded(), "{case}");
        let check = b.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
        assert_eq!(check.mismatch_cnt, 0, "{case}");
        let mut buf = vec![0u8; 1 << 20];
        b.read(0, &mut buf).unwrap();
        assert!(buf.iter().all(|&x| x == 0x5a), "{case}: data");
    }
}

/// A grow's recovery into its new slot stops the same way: the change is made and recorded,
/// the copy ends at its checkpoint (frozen, the report `interrupted`), and the next assembly
/// finishes it from there to a clean check.
#[test]
fn a_grow_frozen_mid_recovery_keeps_the_change_and_resumes_at_assembly() {
    use mdraid::array::machine::GrowRequest;
    let mut a =
        Array::create(mem_slots(2, BIG), &create_options(MetadataVersion::V1_2, 2)).unwrap();
    a.write(0, &[0x3cu8; 1 << 20]).unwrap();
    add_spare(&mut a, "m2");
    let stop = SyncStop::new();
    let report = a
        .grow_stoppable(
            GrowRequest::RaidDisks { n: 3, force: false },
            &mut |done, all| {
                if done > 0 && done < all {
                    stop.request(true);
                }
            },
            &stop,
        )
        .unwrap();
    let total = a.component_sectors();
    let r = report.syncs.last().copied().expect("no recovery ran");
    assert_eq!(r.action, SyncAction::Recovery);
    assert!(r.interrupted && r.sectors_done < total, "{r:?}");
    assert!(a.sync_frozen());
    assert_eq!(a.raid_disks(), 3, "the change is made");
    assert!(!in_sync(&a, "m2") && a.is_degraded());
    let mut b = reassemble(a);
    assert_eq!(b.raid_disks(), 3);
    let r2 = b
        .stop_sync(false, &mut |_, _| {})
        .unwrap()
        .or_else(|| b.last_sync())
        .expect("the recovery was not resumed");
    assert!(
        !r2.interrupted && r2.sectors_copied < total,
        "{r:?} then {r2:?}"
    );
    assert!(in_sync(&b, "m2") && !b.is_degraded());
    let check = b.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
    assert_eq!(check.mismatch_cnt, 0);
}

/// Stops `a` and assembles its members again (by their names).
fn reassemble(a: Array<MemDevice>) -> Array<MemDevice> {
    let names: Vec<String> = a.members().iter().map(|m| m.name.clone()).collect();
    let devs: Vec<(String, MemDevice)> = a
        .stop()
        .unwrap()
        .into_iter()
        .zip(names)
        .map(|(m, n)| (n, m.dev))
        .collect();
    Array::assemble(devs, &mdraid::array::AssembleOptions::default())
        .unwrap()
        .0
}

/// Adds a blank device as `name`, which becomes a spare.
fn add_spare(a: &mut Array<MemDevice>, name: &str) {
    let out = a
        .add_member(
            name.into(),
            MemDevice::new(BIG),
            &AddOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(out, AddOutcome::Spare);
}
