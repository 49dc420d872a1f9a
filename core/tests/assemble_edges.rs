//! Edges of `Array::assemble` that the assembly group of `scripts/mutants.sh` found untested
//! (TESTING.md): each test names the rule it holds.

mod common;
use common::{edit_sb1, named, new_array, utime_secs, CREATED};
use mdraid::array::{Array, AssembleOptions};
use mdraid::device::MemDevice;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::sb1;
use mdraid::format::MetadataVersion;

#[test]
fn the_clock_of_an_assembled_array_starts_at_the_leaders_last_update() {
    for v in [MetadataVersion::V0_90, MetadataVersion::V1_2] {
        let devs = new_array(2, v);
        let (mut a, _) = Array::assemble(named(devs), &AssembleOptions::default()).unwrap();
        a.write(0, &[1u8; 4096]).unwrap();
        let mut devs: Vec<MemDevice> = a.stop().unwrap().into_iter().map(|m| m.dev).collect();
        let sb = probe(&mut devs[0], None).unwrap().sb;
        let t = utime_secs(&sb);
        assert!(
            (CREATED..CREATED + 3600).contains(&t),
            "{v:?}: utime {t}, created at {CREATED}"
        );
    }
}

#[test]
fn a_slot_count_outside_what_the_engine_holds_is_refused_by_name() {
    let max = mdraid::raid1::MAX_SLOTS as u32;
    for raid_disks in [0, max + 1, 1 << 20, u32::MAX] {
        let mut devs = new_array(1, MetadataVersion::V1_2);
        edit_sb1(&mut devs[0], |s| s.raid_disks = raid_disks);
        let opts = AssembleOptions {
            run: true,
            force: true,
            ..Default::default()
        };
        let e = Array::assemble(named(devs), &opts)
            .err()
            .unwrap_or_else(|| panic!("raid_disks {raid_disks} assembled"))
            .to_string();
        assert!(
            e.contains(&format!("raid_disks {raid_disks} is outside 1..={max}")),
            "raid_disks {raid_disks}: {e}"
        );
    }
}

#[test]
fn between_equally_fresh_superblocks_a_fully_synced_member_leads() {
    // m0 was being rebuilt (recovery offset short of the end) and lists the array dirty; m1,
    // in sync, lists it clean; both carry the same events. m0 comes first: the synced m1
    // must speak for the array all the same (and m0 rejoins as a spare to be rebuilt).
    let mut devs = new_array(2, MetadataVersion::V1_2);
    edit_sb1(&mut devs[0], |s| {
        s.feature_map |= sb1::FEATURE_RECOVERY_OFFSET;
        s.recovery_offset = 1024;
        s.resync_offset = 0;
    });
    let (a, rep) = Array::assemble(
        named(devs),
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!rep.unclean, "the rebuilding member's dirty state led");
    assert!(!a.needs_resync());
}

#[test]
fn the_largest_slot_count_the_engine_holds_assembles() {
    let max = mdraid::raid1::MAX_SLOTS as u32;
    for (raid_disks, ok) in [(max, true), (max + 1, false)] {
        let mut devs = new_array(1, MetadataVersion::V1_2);
        edit_sb1(&mut devs[0], |s| s.raid_disks = raid_disks);
        let opts = AssembleOptions {
            run: true,
            ..Default::default()
        };
        let r = Array::assemble(named(devs), &opts);
        assert_eq!(
            r.is_ok(),
            ok,
            "raid_disks {raid_disks}: {:?}",
            r.as_ref().err().map(|e| e.to_string())
        );
    }
}

#[test]
fn a_device_the_leader_places_beyond_the_slots_is_left_out() {
    // m0 leads (equal events, first); its role table puts m1 in slot 5 of a 2-slot array.
    let mut devs = new_array(2, MetadataVersion::V1_2);
    let m1 = probe(&mut devs[1], None).unwrap().sb.dev_number() as usize;
    edit_sb1(&mut devs[0], |s| s.dev_roles[m1] = 5);
    let opts = AssembleOptions {
        run: true,
        ..Default::default()
    };
    let (a, rep) = Array::assemble(named(devs), &opts).unwrap();
    assert_eq!(rep.kicked.len(), 1);
    assert_eq!(rep.kicked[0].name, "m1");
    assert_eq!(rep.kicked[0].reason, mdraid::array::KickReason::BadSlot(5));
    assert_eq!(a.members().len(), 1);
}

/// Kicked devices (name, reason) and members (name, state) of an assembly.
type Outcome = (
    Vec<(String, mdraid::array::KickReason)>,
    Vec<(String, mdraid::array::MemberState)>,
);

/// Assembles `devs` (run) and returns who was kicked and who joined.
fn outcome(devs: Vec<(String, MemDevice)>) -> Outcome {
    let opts = AssembleOptions {
        run: true,
        ..Default::default()
    };
    let (a, rep) = Array::assemble(devs, &opts).unwrap();
    let kicked = rep.kicked.into_iter().map(|k| (k.name, k.reason)).collect();
    let members = a
        .members()
        .iter()
        .map(|m| (m.name.clone(), m.state))
        .collect();
    (kicked, members)
}

#[test]
fn two_devices_the_leader_places_in_one_slot_the_fresher_wins_in_either_order() {
    use mdraid::array::KickReason::SlotTaken;
    use mdraid::array::MemberState::InSync;
    // m0 leads (freshest, or first among the freshest); its table puts m2 in m1's slot 1.
    // Whichever of m1 and m2 is fresher keeps the slot, whatever their order.
    for (ev1, ev2, loser, winner) in [(1, 0, "m2", "m1"), (0, 1, "m1", "m2")] {
        let mut devs = new_array(3, MetadataVersion::V1_2);
        let m2 = probe(&mut devs[2], None).unwrap().sb.dev_number() as usize;
        edit_sb1(&mut devs[0], |s| {
            s.events += 1;
            s.dev_roles[m2] = 1;
        });
        edit_sb1(&mut devs[1], |s| s.events += ev1);
        edit_sb1(&mut devs[2], |s| s.events += ev2);
        let (kicked, members) = outcome(named(devs));
        assert_eq!(
            kicked,
            [(loser.to_string(), SlotTaken(1))],
            "ev {ev1} {ev2}"
        );
        assert!(
            members.contains(&(winner.to_string(), InSync(1))),
            "{members:?}"
        );
    }
    // The leader listed after a device its table puts in the leader's own slot 0: the leader
    // keeps it.
    let mut devs = new_array(2, MetadataVersion::V1_2);
    let m1 = probe(&mut devs[1], None).unwrap().sb.dev_number() as usize;
    edit_sb1(&mut devs[0], |s| {
        s.events += 1;
        s.dev_roles[m1] = 0;
    });
    let devs = vec![
        ("m1".to_string(), devs.pop().unwrap()),
        ("m0".to_string(), devs.pop().unwrap()),
    ];
    let (kicked, members) = outcome(devs);
    assert_eq!(kicked, [("m1".to_string(), SlotTaken(0))]);
    assert_eq!(members, [("m0".to_string(), InSync(0))]);
}

/// Marks a 1.x member's superblock as being rebuilt, stopped at `offset`.
fn rebuilding(dev: &mut MemDevice, offset: u64) {
    edit_sb1(dev, |s| {
        s.feature_map |= sb1::FEATURE_RECOVERY_OFFSET;
        s.recovery_offset = offset;
    });
}

#[test]
fn interrupted_rebuilds_resume_into_their_free_slots_only() {
    // m1 and m2 were being rebuilt into slots 1 and 2: both resume, each into its own.
    let mut devs = new_array(3, MetadataVersion::V1_2);
    rebuilding(&mut devs[1], 1024);
    rebuilding(&mut devs[2], 2048);
    let (a, _) = Array::assemble(named(devs), &AssembleOptions::default()).unwrap();
    let rebuild: Vec<_> = a.members().iter().map(|m| m.rebuild).collect();
    assert_eq!(rebuild, [None, Some((1, 1024)), Some((2, 2048))]);
    // m2 was being rebuilt into slot 1, which the in-sync m1 holds (m2 is no replacement): it
    // joins as a plain spare, not as a second copy of slot 1.
    let mut devs = new_array(3, MetadataVersion::V1_2);
    let m2 = probe(&mut devs[2], None).unwrap().sb.dev_number() as usize;
    for d in devs.iter_mut() {
        edit_sb1(d, |s| s.dev_roles[m2] = 1);
    }
    rebuilding(&mut devs[2], 1024);
    let opts = AssembleOptions {
        run: true,
        ..Default::default()
    };
    let (a, _) = Array::assemble(named(devs), &opts).unwrap();
    let m = &a.members()[2];
    assert_eq!(m.name, "m2");
    assert_eq!(m.rebuild, None, "resumed into a held slot");
}

/// A device md was rebuilding, alone: md's raid1 runs with no in-sync mirror under no flag
/// ("no operational mirrors"), so neither does assembly. Without --run it is mdadm's start
/// rule that refuses, even when the superblock counts the rebuilding device as the array's one
/// working member (its mirror failed before the last update).
#[test]
fn a_device_being_rebuilt_alone_is_not_started_even_forced() {
    for mirror_failed in [false, true] {
        for (run, force) in [(false, false), (true, false), (true, true)] {
            let mut devs = new_array(2, MetadataVersion::V1_2);
            if mirror_failed {
                let m0 = probe(&mut devs[0], None).unwrap().sb.dev_number() as usize;
                edit_sb1(&mut devs[1], |s| s.dev_roles[m0] = 0xfffe);
            }
            rebuilding(&mut devs[1], 1024);
            let m1 = devs.pop().unwrap();
            let opts = AssembleOptions {
                run,
                force,
                ..Default::default()
            };
            let case = format!("mirror failed {mirror_failed}, run {run}, force {force}");
            let e = Array::assemble(vec![("m1".to_string(), m1)], &opts)
                .err()
                .unwrap_or_else(|| panic!("{case}: started with no in-sync mirror"))
                .to_string();
            let want = if run || force {
                "no in-sync member"
            } else {
                "not started"
            };
            assert!(e.contains(want), "{case}: {e}");
        }
    }
}

/// Rewrites a 0.90 member's superblock through `f` (checksum fixed).
fn edit_sb0(dev: &mut MemDevice, f: impl FnOnce(&mut mdraid::format::sb0::Superblock0)) {
    let found = probe(dev, None).unwrap();
    let Superblock::V0(mut s) = found.sb else {
        panic!("not 0.90")
    };
    f(&mut s);
    s.update_checksum();
    let b = s.to_bytes();
    let at = found.sector as usize * 512;
    dev.as_mut_slice()[at..at + b.len()].copy_from_slice(&b);
}

#[test]
fn a_role_at_raid_disks_is_not_counted_as_working() {
    // A complete 2-slot array whose tables also list a device in slot 2 (= raid_disks, as a
    // shrink leaves it): mdadm counts only slots below raid_disks, so it starts without run.
    let mut devs = new_array(2, MetadataVersion::V1_2);
    for d in devs.iter_mut() {
        edit_sb1(d, |s| s.dev_roles[5] = 2);
    }
    let r = Array::assemble(named(devs), &AssembleOptions::default());
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
    // 0.90: an active, in-sync record in raid disk 2.
    let mut devs = new_array(2, MetadataVersion::V0_90);
    for d in devs.iter_mut() {
        edit_sb0(d, |s| {
            use mdraid::format::sb0::{DISK_ACTIVE, DISK_SYNC};
            s.disks[2].number = 2;
            s.disks[2].raid_disk = 2;
            s.disks[2].state = DISK_ACTIVE | DISK_SYNC;
        });
    }
    let r = Array::assemble(named(devs), &AssembleOptions::default());
    assert!(r.is_ok(), "0.90: {:?}", r.err().map(|e| e.to_string()));
}

#[test]
fn a_recovery_offset_at_the_end_is_a_finished_rebuild() {
    // m1's superblock still carries the recovery-offset feature with the offset at the end of
    // the data: it is in sync, not a spare to rebuild.
    let mut devs = new_array(2, MetadataVersion::V1_2);
    edit_sb1(&mut devs[1], |s| {
        s.feature_map |= sb1::FEATURE_RECOVERY_OFFSET;
        s.recovery_offset = s.size;
    });
    let (a, rep) = Array::assemble(named(devs), &AssembleOptions::default()).unwrap();
    assert!(!rep.degraded);
    assert_eq!(a.members()[1].state, mdraid::array::MemberState::InSync(1));
}
