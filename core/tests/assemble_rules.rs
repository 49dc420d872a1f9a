//! md's assembly rules on arrays made here: freshness by events, the leader's faulty list,
//! one device per slot, degraded starts.

mod common;
use common::{edit_sb1, named, new_array};
use mdraid::array::{Array, AssembleOptions, CreateSlot, KickReason, MemberState};
use mdraid::device::MemDevice;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::sb1;
use mdraid::format::MetadataVersion;

#[test]
fn one_event_behind_is_kept_two_behind_is_kicked() {
    let mut devs = new_array(3, MetadataVersion::V1_2);
    edit_sb1(&mut devs[0], |s| s.events += 2);
    edit_sb1(&mut devs[1], |s| s.events += 1);
    let (a, rep) = Array::assemble(
        named(devs),
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.in_sync_count(), 2);
    assert_eq!(rep.kicked.len(), 1);
    assert_eq!(rep.kicked[0].name, "m2");
    assert!(matches!(rep.kicked[0].reason, KickReason::NonFresh { .. }));
}

#[test]
fn a_device_the_freshest_lists_as_faulty_is_refused() {
    let mut devs = new_array(2, MetadataVersion::V1_2);
    // m0 recorded m1 as faulty one event ago; m1 never learned (it is only one event behind).
    edit_sb1(&mut devs[0], |s| {
        s.events += 1;
        s.dev_roles[1] = sb1::ROLE_FAULTY;
    });
    // m0's table records one working disk (itself), so mdadm starts it without --run
    // (okcnt 1 >= req_cnt 1); m1 is still refused.
    let (a, rep) = Array::assemble(named(devs), &AssembleOptions::default())
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(a.in_sync_count(), 1);
    assert_eq!(rep.kicked[0].reason, KickReason::ListedFaulty);
}

#[test]
fn two_devices_claiming_one_slot_the_fresher_wins() {
    let mut devs = new_array(2, MetadataVersion::V1_1);
    // m1 also claims slot 0 (as if a stale copy of m0 were given), one event behind.
    let mut copy = devs[0].clone();
    edit_sb1(&mut copy, |s| s.dev_number = 0);
    edit_sb1(&mut devs[0], |s| s.events += 1);
    edit_sb1(&mut devs[1], |s| s.events += 1);
    let mut all = named(devs);
    all.push(("copy".into(), copy));
    let (a, rep) = Array::assemble(all, &AssembleOptions::default()).unwrap();
    assert_eq!(a.in_sync_count(), 2);
    assert_eq!(rep.kicked.len(), 1);
    assert_eq!(rep.kicked[0].name, "copy");
    assert_eq!(rep.kicked[0].reason, KickReason::SlotTaken(0));
}

#[test]
fn every_version_assembles() {
    for v in [
        MetadataVersion::V0_90,
        MetadataVersion::V1_0,
        MetadataVersion::V1_1,
        MetadataVersion::V1_2,
    ] {
        let devs = new_array(3, v);
        let (a, rep) = Array::assemble(named(devs), &AssembleOptions::default()).unwrap();
        assert_eq!(a.in_sync_count(), 3, "{v}");
        assert!(
            !rep.degraded && !rep.unclean && rep.kicked.is_empty(),
            "{v}"
        );
        assert!(a
            .members()
            .iter()
            .all(|m| matches!(m.state, MemberState::InSync(_))));
        assert_eq!(a.version(), v);
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

/// A 2-slot array created with `missing` in slot 1: its superblock records one working disk.
fn created_with_missing(version: MetadataVersion) -> Vec<MemDevice> {
    let slots = vec![
        CreateSlot::Device {
            name: "m0".into(),
            dev: MemDevice::new(8 << 20),
            write_mostly: false,
            failfast: false,
        },
        CreateSlot::Missing,
    ];
    let opts = common::create_options(version, 2);
    let a = Array::create(slots, &opts).unwrap();
    a.stop().unwrap().into_iter().map(|m| m.dev).collect()
}

#[test]
fn a_degraded_array_starts_when_all_recorded_working_members_are_there() {
    // mdadm: okcnt (1) >= req_cnt (1, the freshest superblock's working count): started
    // without --run, for 1.x (role table) and 0.90 (disk records) alike.
    for v in [MetadataVersion::V1_2, MetadataVersion::V0_90] {
        let devs = created_with_missing(v);
        let (a, rep) = Array::assemble(named(devs), &AssembleOptions::default())
            .unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(a.in_sync_count(), 1, "{v}");
        assert!(rep.degraded, "{v}");
    }
}

#[test]
fn the_0_90_working_count_comes_from_the_disk_records_not_the_counter_word() {
    // mdadm 4.2's getinfo_super0 recomputes working_disks from the records (active, sync,
    // not faulty, slot < raid_disks): a stale counter word does not change the outcome.
    let mut devs = new_array(2, MetadataVersion::V0_90);
    edit_sb0(&mut devs[0], |s| s.working_disks = 1);
    let one: Vec<_> = named(devs).into_iter().take(1).collect();
    let err = Array::assemble(one, &AssembleOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not started"), "{err}");
}

#[test]
fn a_member_the_freshest_recorded_as_failed_is_not_needed_to_start() {
    // m0 and m1 recorded m2 faulty (it failed): they were the working disks at the last
    // update, so mdadm starts them without --run; m2 is refused as listed faulty.
    let mut devs = new_array(3, MetadataVersion::V1_2);
    for d in &mut devs[..2] {
        edit_sb1(d, |s| {
            s.events += 1;
            s.dev_roles[2] = sb1::ROLE_FAULTY;
        });
    }
    let (a, rep) = Array::assemble(named(devs), &AssembleOptions::default()).unwrap();
    assert_eq!(a.in_sync_count(), 2);
    assert_eq!(rep.kicked[0].reason, KickReason::ListedFaulty);
}

#[test]
fn a_refused_start_names_each_left_out_device_with_its_reason() {
    // m1 missed two events but m0 never recorded it failing (both still "AA"): req_cnt 2,
    // okcnt 1, refused; the error says why m1 was left out.
    let mut devs = new_array(2, MetadataVersion::V1_2);
    edit_sb1(&mut devs[0], |s| s.events += 2);
    let err = Array::assemble(named(devs), &AssembleOptions::default()).unwrap_err();
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("not started"), "{text}");
    assert_eq!(
        lines[1],
        "m1 left out: non-fresh (events 0, freshest has 2)"
    );
}

#[test]
fn missing_members_need_run() {
    let devs = new_array(3, MetadataVersion::V1_2);
    let two: Vec<_> = named(devs).into_iter().take(2).collect();
    let err = Array::assemble(two.clone(), &AssembleOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "assembled from 2 drives (out of 3), but not started: use --run to start it degraded"
    );
    let (_, rep) = Array::assemble(
        two,
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(rep.degraded);
}

#[test]
fn a_member_md_was_still_rebuilding_does_not_serve_reads() {
    let mut devs = new_array(2, MetadataVersion::V1_2);
    // m1 was being rebuilt: recovery_offset valid (feature bit 2) and short of the end.
    edit_sb1(&mut devs[1], |s| {
        s.feature_map |= sb1::FEATURE_RECOVERY_OFFSET;
        s.recovery_offset = 8;
    });
    let (a, rep) = Array::assemble(named(devs), &AssembleOptions::default()).unwrap();
    assert!(rep.degraded, "the rebuilding member is not in sync");
    assert_eq!(a.in_sync_count(), 1);
    assert_eq!(a.members()[1].state, MemberState::Spare);
}
