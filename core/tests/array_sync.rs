//! Sync actions on the fixtures, end to end (Array → engine → image files): md's own unclean
//! and stale arrays brought back in sync with the least copying md would do.

mod common;

use mdraid::array::{AddOptions, AddOutcome, Array, AssembleOptions, SyncAction};
use mdraid::device::{BlockDevice, MemDevice};
use mdraid::format::probe::Superblock;
use mdraid::testutil::*;

fn load(fx: &str, devs: &[&str]) -> Vec<(String, MemDevice)> {
    devs.iter()
        .map(|d| {
            (
                d.to_string(),
                MemDevice::from_vec(std::fs::read(fixture_image(fx, d)).unwrap()),
            )
        })
        .collect()
}

fn data_area(m: &mdraid::array::Member<MemDevice>, sectors: u64) -> Vec<u8> {
    let mut v = vec![0u8; (sectors * 512) as usize];
    let mut d = m.dev.clone();
    d.read_at(m.data_byte(0), &mut v).unwrap();
    v
}

#[test]
fn unclean_fixture_resyncs_only_its_16_dirty_chunks() {
    let (mut a, rep) = Array::assemble(
        load("r1-unclean", &["vda", "vdb"]),
        &AssembleOptions::default(),
    )
    .unwrap();
    assert!(rep.unclean && a.needs_resync());
    let before = a.events();
    assert_eq!(a.bitmap().unwrap().dirty_chunks(), 16);
    let r = a.run_sync(SyncAction::Resync, &mut |_, _| {}).unwrap();
    // 16 chunks of 64 KiB = 2048 sectors, read from the first mirror, written to the second.
    assert_eq!(r.sectors_copied, 16 * 128);
    let (c0, c1) = (a.counters(0).unwrap(), a.counters(1).unwrap());
    assert_eq!((c0.read_sectors, c0.write_sectors), (16 * 128, 0));
    assert_eq!((c1.read_sectors, c1.write_sectors), (0, 16 * 128));
    assert!(!a.needs_resync());
    let sectors = a.component_sectors();
    let members = a.stop().unwrap();
    assert!(
        data_area(&members[0], sectors) == data_area(&members[1], sectors),
        "mirrors differ"
    );
    for m in &members {
        let Superblock::V1(s, _) = &m.sb else {
            panic!()
        };
        assert!(
            s.is_clean() && s.checksum_ok(),
            "superblock clean after resync"
        );
        assert!(s.events > before, "events moved");
    }
    // The bitmap's bits are spent too.
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (b, rep) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    assert!(!rep.unclean);
    assert_eq!(b.bitmap().unwrap().dirty_chunks(), 0);
}

#[test]
fn stale_member_re_added_copies_only_dirty_chunks() {
    let fx = "r1-degraded-stale";
    let opts = AssembleOptions {
        run: true,
        ..Default::default()
    };
    let (mut a, _) = Array::assemble(load(fx, &["vda"]), &opts).unwrap();
    let bm = a.bitmap().unwrap();
    let chunk = bm.bitmap.header.chunk_sectors().unwrap();
    let dirty = bm.dirty_chunks();
    assert!(dirty >= 1);
    let vdb = MemDevice::from_vec(std::fs::read(fixture_image(fx, "vdb")).unwrap());
    let out = a
        .add_member("vdb".into(), vdb, &AddOptions::default(), &mut |_, _| {})
        .unwrap();
    let AddOutcome::ReAdded(r) = out else {
        panic!("expected a re-add, got {out:?}")
    };
    let sectors = a.component_sectors();
    assert_eq!(
        r.sectors_copied,
        (dirty * chunk).min(sectors),
        "only the dirty chunks are copied"
    );
    assert_eq!(a.in_sync_count(), 2);
    // vdb now holds gen 2 too.
    let members = a.stop().unwrap();
    assert!(data_area(&members[0], sectors) == data_area(&members[1], sectors));
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (mut b, rep) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    assert!(!rep.degraded && rep.kicked.is_empty());
    let mut s = vec![0u8; 512];
    b.read(4 << 20, &mut s).unwrap();
    assert_eq!(s[..], pattern_sector(fx, 2, 0)[..]);
}

#[test]
fn check_counts_mismatches_and_repair_fixes_them() {
    let (mut a, _) = Array::assemble(
        load("r1-v1.2-bitmap", &["vda", "vdb"]),
        &AssembleOptions::default(),
    )
    .unwrap();
    let r = a.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
    assert_eq!((r.mismatch_cnt, r.sectors_copied), (0, 0));
    // Corrupt 3 sectors of one mirror behind the array's back.
    let members = a.stop().unwrap();
    let mut devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let off = 2048 * 512 + 1000 * 512;
    devs[1].1.as_mut_slice()[off..off + 1536].fill(0xEE);
    let (mut a, _) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
    let r = a.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
    // md counts the whole 64 KiB block that differs.
    assert_eq!((r.mismatch_cnt, r.sectors_copied), (128, 0));
    let r = a.run_sync(SyncAction::Repair, &mut |_, _| {}).unwrap();
    assert_eq!(r.mismatch_cnt, 128);
    assert_eq!(r.sectors_copied, 128);
    let r = a.run_sync(SyncAction::Check, &mut |_, _| {}).unwrap();
    assert_eq!(r.mismatch_cnt, 0);
}

#[test]
fn fail_remove_add_rebuilds_a_spare() {
    let (mut a, _) = Array::assemble(
        load("r1-3way-spare", &["vda", "vdb", "vdc", "vdd"]),
        &AssembleOptions::default(),
    )
    .unwrap();
    a.fail_member("vdb").unwrap();
    // As md does, recovery onto the spare starts at once and runs to the end.
    let sectors = a.component_sectors();
    let r = a.last_sync().expect("recovery ran");
    assert_eq!(
        (r.action, r.sectors_copied, r.interrupted),
        (SyncAction::Recovery, sectors, false)
    );
    // Nothing is left to recover.
    assert!(a.run_sync(SyncAction::Recovery, &mut |_, _| {}).is_err());
    assert_eq!(a.in_sync_count(), 3);
    // Remove the failed member, add it back: its slot is taken, so it becomes the new spare.
    let vdb = a
        .remove_member("vdb", None)
        .unwrap()
        .expect("vdb handed back");
    assert!(
        a.remove_member("vda", None).is_err(),
        "an active member cannot be removed"
    );
    let out = a
        .add_member("vdb".into(), vdb, &AddOptions::default(), &mut |_, _| {})
        .unwrap();
    assert_eq!(out, AddOutcome::Spare);
    let members = a.stop().unwrap();
    assert_eq!(
        members
            .iter()
            .filter(|m| m.state == mdraid::array::MemberState::Spare)
            .count(),
        1
    );
    let in_sync: Vec<_> = members
        .iter()
        .filter(|m| matches!(m.state, mdraid::array::MemberState::InSync(_)))
        .collect();
    assert_eq!(in_sync.len(), 3);
    let first = data_area(in_sync[0], sectors);
    for m in &in_sync[1..] {
        assert!(data_area(m, sectors) == first, "{} differs", m.name);
    }
}

/// A device that keeps a copy of every superblock written to it (sector 8, metadata 1.2).
#[derive(Clone)]
struct Recording {
    inner: MemDevice,
    superblocks: std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>>,
}

impl BlockDevice for Recording {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), mdraid::device::DeviceError> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), mdraid::device::DeviceError> {
        if offset == 8 * 512 {
            self.superblocks.borrow_mut().push(buf.to_vec());
        }
        self.inner.write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), mdraid::device::DeviceError> {
        self.inner.flush()
    }
}

#[test]
fn recovery_checkpoints_reach_the_rebuilt_members_superblock() {
    use mdraid::format::sb1::{Superblock1, FEATURE_RECOVERY_OFFSET};
    let fx = "r1-v1.2-bitmap";
    let wrap = |d: &str| Recording {
        inner: MemDevice::from_vec(std::fs::read(fixture_image(fx, d)).unwrap()),
        superblocks: Default::default(),
    };
    let devs = vec![("vda".to_string(), wrap("vda"))];
    let (mut a, _) = Array::assemble(
        devs,
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap();
    // A blank device of the same size is added: a full rebuild into slot 1.
    let spare = Recording {
        inner: MemDevice::new(32 << 20),
        superblocks: Default::default(),
    };
    let log = spare.superblocks.clone();
    let add = AddOptions {
        device_uuid: Some([9; 16]),
        ..Default::default()
    };
    let out = a
        .add_member("new".into(), spare, &add, &mut |_, _| {})
        .unwrap();
    assert!(matches!(out, AddOutcome::Rebuilt(_)), "{out:?}");
    let size = a.component_sectors();
    let sbs: Vec<Superblock1> = log
        .borrow()
        .iter()
        .map(|b| Superblock1::parse(b).unwrap())
        .collect();
    // md's way: while rebuilding, role = the slot, feature bit 2, recovery_offset moving up.
    let offsets: Vec<u64> = sbs
        .iter()
        .filter(|s| s.feature_map & FEATURE_RECOVERY_OFFSET != 0 && s.role() == Some(1))
        .map(|s| s.recovery_offset)
        .collect();
    assert!(offsets.len() >= 8, "checkpoints persisted: {offsets:?}");
    assert!(
        offsets.windows(2).all(|w| w[0] <= w[1]) && offsets.iter().all(|&o| o > 0 && o < size),
        "{offsets:?}"
    );
    // At the end the member is in sync: bit 2 cleared.
    let last = sbs.last().unwrap();
    assert_eq!(
        (last.feature_map & FEATURE_RECOVERY_OFFSET, last.role()),
        (0, Some(1))
    );
    assert!(last.checksum_ok());
}

/// md's super_90_sync: after a rebuild every member's disk table shows the rebuilt member
/// active and in sync in its slot, with the counters to match, and the array assembles whole.
#[test]
fn a_0_90_spare_rebuilt_into_an_empty_slot_is_recorded_active_sync() {
    let opts = AssembleOptions {
        run: true,
        ..Default::default()
    };
    let (mut a, _) = Array::assemble(load("r1-v0.90", &["vda"]), &opts).unwrap();
    let size = a.devices()[0].size();
    let out = a
        .add_member(
            "new".into(),
            MemDevice::new(size as usize),
            &AddOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
    assert!(matches!(out, AddOutcome::Rebuilt(_)), "{out:?}");
    let members = a.stop().unwrap();
    for (i, m) in members.iter().enumerate() {
        let Superblock::V0(s) = &m.sb else { panic!() };
        assert!(s.checksum_ok());
        for slot in 0..2u32 {
            let d = s.disks[slot as usize];
            assert_eq!(
                (d.number, d.raid_disk, d.state),
                (slot, slot, 0b110),
                "member {i}, record {slot}: active sync"
            );
        }
        assert_eq!(s.this_disk.number, i as u32);
        assert_eq!(s.this_disk.state, 0b110);
        assert_eq!(
            (
                s.nr_disks,
                s.active_disks,
                s.working_disks,
                s.failed_disks,
                s.spare_disks
            ),
            (2, 2, 2, 0, 0),
            "member {i} counters"
        );
    }
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (b, rep) = Array::assemble(devs, &AssembleOptions::default())
        .map_err(|e| e.to_string())
        .unwrap();
    assert_eq!(b.in_sync_count(), 2);
    assert!(!rep.degraded);
}

/// After a failure with a spare present, md rebuilds the spare into the freed slot; the failed
/// member stays listed as faulty past the slots and its slot is not marked removed.
#[test]
fn a_0_90_fail_with_a_spare_records_the_spare_in_the_slot_and_the_failed_member_faulty() {
    let (mut a, _) = Array::assemble(
        load("r1-v0.90", &["vda", "vdb"]),
        &AssembleOptions::default(),
    )
    .unwrap();
    let size = a.devices()[0].size();
    let out = a
        .add_member(
            "spare".into(),
            MemDevice::new(size as usize),
            &AddOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
    assert_eq!(out, AddOutcome::Spare);
    a.fail_member("vdb").unwrap();
    let members = a.stop().unwrap();
    let Superblock::V0(s) = &members[0].sb else {
        panic!()
    };
    // vda in slot 0, the spare rebuilt into slot 1, vdb faulty at record 2.
    let rec = |i: usize| (s.disks[i].number, s.disks[i].raid_disk, s.disks[i].state);
    assert_eq!(rec(0), (0, 0, 0b110));
    assert_eq!(rec(1), (1, 1, 0b110));
    assert_eq!(rec(2), (2, 2, 0b001));
    assert_eq!(
        (
            s.nr_disks,
            s.active_disks,
            s.working_disks,
            s.failed_disks,
            s.spare_disks
        ),
        (3, 2, 2, 0, 0)
    );
    let Superblock::V0(sp) = &members[2].sb else {
        panic!()
    };
    assert_eq!(sp.this_disk, s.disks[1], "the spare's own record is slot 1");
}

/// md_check_recovery: spares present when the array runs go into the empty slots and are
/// rebuilt before the requested action (here a check, which then sees three mirrors).
#[test]
fn spares_present_at_assembly_are_rebuilt_into_empty_slots_before_the_action() {
    use mdraid::array::{CreateOptions, CreateSlot, MemberState};
    use mdraid::format::geometry::BitmapRequest;
    use mdraid::format::MetadataVersion;
    for (v, bitmap) in [
        (MetadataVersion::V0_90, BitmapRequest::None),
        (
            MetadataVersion::V1_2,
            BitmapRequest::Internal { chunk_bytes: None },
        ),
    ] {
        let dev = |n: &str| CreateSlot::Device {
            name: n.into(),
            dev: MemDevice::new(8 << 20),
            write_mostly: false,
            failfast: false,
        };
        let slots = vec![
            dev("d0"),
            CreateSlot::Missing,
            CreateSlot::Missing,
            dev("d1"),
            dev("d2"),
        ];
        let opts = CreateOptions {
            bitmap,
            name: "spares".into(),
            uuid: [9; 16],
            seed: 3,
            ..common::create_options(v, 3)
        };
        let a = Array::create(slots, &opts).unwrap();
        let devs: Vec<_> = a
            .stop()
            .unwrap()
            .into_iter()
            .map(|m| (m.name, m.dev))
            .collect();
        let (mut a, _) = Array::assemble(devs, &AssembleOptions::default())
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(a.in_sync_count(), 1, "{v}");
        let r = a
            .run_sync(SyncAction::Check, &mut |_, _| {})
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!((r.action, r.mismatch_cnt), (SyncAction::Check, 0), "{v}");
        assert_eq!(
            a.rebuilt_spares(),
            &[("d1".to_string(), 1), ("d2".to_string(), 2)],
            "{v}"
        );
        let members = a.stop().unwrap();
        let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
        let (b, rep) = Array::assemble(devs, &AssembleOptions::default()).unwrap();
        assert!(!rep.degraded, "{v}");
        assert!(
            b.members()
                .iter()
                .all(|m| matches!(m.state, MemberState::InSync(_))),
            "{v}"
        );
    }
}
