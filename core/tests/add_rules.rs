//! How a device joins an array, decided by the machine (`plan_add`, `add_member`): when a
//! device comes back to its old slot and how much is copied (md's re-add and
//! super_1_validate), which refusals hold, and what a new member's fresh superblock carries.
//! The superblocks a device brings are crafted field by field from a real member's, so each
//! rule is met on its own. Written for the mutants the membership group of
//! `scripts/mutants.sh` missed (TESTING.md).

mod common;

use mdraid::array::machine::{Comeback, Detached, IoBuffer, IoKind, Machine, Now, State};
use mdraid::array::{AddOptions, Array, CreateOptions, Member, MemberState};
use mdraid::device::{BlockDevice, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::{sb0, sb1, MetadataVersion};

const DEV_BYTES: usize = 8 << 20;
const NOW: Now = Now {
    mono_ns: 1_000_000_000,
    wall_secs: 1_900_000_000,
};

fn create(v: MetadataVersion, slots: u32, bitmap: bool) -> Array<MemDevice> {
    let devs = common::mem_slots(slots as usize, DEV_BYTES);
    let opts = CreateOptions {
        bitmap: if bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(64 << 10),
            }
        } else {
            BitmapRequest::None
        },
        name: "add".into(),
        now: 1_900_000_000,
        uuid: [5; 16],
        seed: 5,
        ..common::create_options(v, slots)
    };
    Array::create(devs, &opts).unwrap()
}

/// A 2-way array whose member m1 was failed and removed after some writes: the machine
/// (slot 1 empty), the survivor's device, and m1's superblock as m1 still holds it.
fn gone_member(v: MetadataVersion, bitmap: bool) -> (Machine, Vec<MemDevice>, Superblock, u64) {
    let mut a = create(v, 2, bitmap);
    a.write(0, &[7u8; 4096]).unwrap();
    a.fail_member("m1").unwrap();
    a.write(8192, &[9u8; 4096]).unwrap();
    let mut dev = a.remove_member("m1", None).unwrap().expect("m1's device");
    let found = probe(&mut dev, None).unwrap();
    let (m, devs) = a.into_machine(NOW).unwrap();
    let mut d = Driver { m, devs };
    d.settle();
    (d.m, d.devs, found.sb, found.sector)
}

/// Carries out the machine's I/O on memory devices until it is idle.
struct Driver {
    m: Machine,
    devs: Vec<MemDevice>,
}

impl Driver {
    fn settle(&mut self) {
        let mut now = NOW;
        for _ in 0..200_000 {
            let Some(io) = self.m.poll_io() else {
                while self.m.poll_completion().is_some() {}
                while self.m.poll_event().is_some() {}
                if !self.m.is_busy() {
                    return;
                }
                now.mono_ns += 100_000_000;
                self.m.handle_timeout(now);
                continue;
            };
            let dev = &mut self.devs[io.member];
            match (io.kind, io.buf) {
                (IoKind::Read, IoBuffer::Machine { index, offset }) => {
                    let b = self.m.buffer_mut(index).unwrap();
                    dev.read_at(io.offset, &mut b[offset..offset + io.len as usize])
                        .unwrap();
                }
                (IoKind::Write, IoBuffer::Machine { index, offset }) => {
                    let b = self.m.buffer(index).unwrap();
                    dev.write_at(io.offset, &b[offset..offset + io.len as usize])
                        .unwrap();
                }
                (IoKind::Write, IoBuffer::Caller { .. }) => {
                    dev.write_at(io.offset, &vec![0xa5; io.len as usize])
                        .unwrap();
                }
                (IoKind::Read, IoBuffer::Caller { .. }) | (IoKind::Flush | IoKind::Discard, _) => {}
                other => panic!("unexpected I/O {other:?} ({io:?})"),
            }
            self.m.handle_io_completion(io.id, Ok(())).unwrap();
        }
        panic!("the machine never went idle");
    }
}

fn v1(sb: &mut Superblock) -> &mut sb1::Superblock1 {
    match sb {
        Superblock::V1(s, _) => s,
        Superblock::V0(_) => panic!("a 1.x superblock expected"),
    }
}

/// The comeback `plan_add` decides for a device carrying `sb`.
fn comeback(m: &Machine, sb: &Superblock, sector: u64) -> Option<Comeback> {
    m.plan_add(
        Some((sb.clone(), sector)),
        (DEV_BYTES / 512) as u64,
        &AddOptions::default(),
    )
    .unwrap()
    .comeback
}

fn detached(name: &str, sb: Superblock, sb_sector: u64) -> Member<Detached> {
    Member {
        dev: Detached::default(),
        name: name.into(),
        sb,
        sb_sector,
        dev_sectors: (DEV_BYTES / 512) as u64,
        state: MemberState::Spare,
        badblocks: None,
        rebuild: None,
        rebuild_bitmap: false,
    }
}

/// The same machine with its members' superblocks changed by `f` (nothing written).
fn with_lead(m: Machine, f: impl FnOnce(&mut Superblock)) -> Machine {
    let events = m.events();
    let raid_disks = m.raid_disks();
    let component_sectors = m.component_sectors();
    let (mut members, bitmap) = m.into_members();
    f(&mut members[0].sb);
    Machine::new(
        State {
            members,
            raid_disks,
            component_sectors,
            events,
            dirty: false,
            needs_resync: false,
            readonly: false,
            bitmap,
            resync_done: u64::MAX,
        },
        NOW,
    )
    .unwrap()
}

#[test]
fn a_device_comes_back_only_to_a_free_slot_of_its_own_array_not_ahead_of_it() {
    let (m, _devs, sb, sector) = gone_member(MetadataVersion::V1_2, true);
    let events = m.events();
    assert!(sb.events() < events, "the array moved on without m1");
    // The plain re-add: its slot, the bitmap guiding the whole copy.
    assert_eq!(
        comeback(&m, &sb, sector),
        Some(Comeback {
            slot: 1,
            from: 0,
            bitmap_below: u64::MAX
        })
    );
    // Exactly current: still a comeback.
    let mut cur = sb.clone();
    cur.set_events(events);
    assert!(comeback(&m, &cur, sector).is_some(), "current events");
    // Ahead of the array: never.
    let mut ahead = sb.clone();
    ahead.set_events(events + 1);
    assert_eq!(comeback(&m, &ahead, sector), None, "events ahead");
    // Another array's device (the same in every other field) is a new device.
    let mut foreign = sb.clone();
    v1(&mut foreign).set_uuid[0] ^= 0x55;
    let plan = m
        .plan_add(
            Some((foreign, sector)),
            (DEV_BYTES / 512) as u64,
            &AddOptions::default(),
        )
        .unwrap();
    assert_eq!(plan.comeback, None, "a foreign UUID came back");
    assert_eq!(plan.sb.uuid(), m.members()[0].sb.uuid());
    // A slot someone holds: the survivor's slot 0, and a slot beyond the array.
    let dev = sb.dev_number() as usize;
    for role in [0u16, 2] {
        let mut other = sb.clone();
        v1(&mut other).dev_roles[dev] = role;
        assert_eq!(comeback(&m, &other, sector), None, "role {role}");
    }
}

#[test]
fn a_slot_being_rebuilt_is_taken() {
    let (m, devs, sb, sector) = gone_member(MetadataVersion::V1_2, true);
    let mut d = Driver { m, devs };
    d.devs.push(MemDevice::new(DEV_BYTES));
    // m1 comes back and its recovery is under way (recorded before any I/O ran).
    let c = comeback(&d.m, &sb, sector).expect("m1 comes back");
    d.m.add_member(detached("m1", sb.clone(), sector), Some(c))
        .unwrap();
    assert!(d.m.members()[1].rebuild.is_some_and(|r| r.0 == 1));
    // Bitmap-guided (bit 128 goes out with its first superblock).
    assert!(
        d.m.members()[1].rebuild_bitmap,
        "a bitmap re-add not bitmap-based"
    );
    // A second device claiming slot 1 is not a comeback while m1 is rebuilt into it.
    let mut twin = sb.clone();
    v1(&mut twin).dev_number = 7;
    v1(&mut twin).dev_roles[7] = 1;
    v1(&mut twin).device_uuid[0] ^= 1;
    assert_eq!(comeback(&d.m, &twin, sector), None);
    d.settle();
}

/// `plan_add`'s comeback for a device whose recovery stopped at `r` (`bitmap_based`: feature
/// bit 128), with `events`, on `m`.
fn interrupted(
    m: &Machine,
    sb: &Superblock,
    sector: u64,
    r: u64,
    bitmap_based: bool,
    events: u64,
) -> Option<(u64, u64)> {
    let mut s = sb.clone();
    s.set_events(events);
    let x = v1(&mut s);
    x.feature_map |= sb1::FEATURE_RECOVERY_OFFSET;
    if bitmap_based {
        x.feature_map |= sb1::FEATURE_RECOVERY_BITMAP;
    } else {
        x.feature_map &= !sb1::FEATURE_RECOVERY_BITMAP;
    }
    x.recovery_offset = r;
    comeback(m, &s, sector).map(|c| {
        assert_eq!(c.slot, 1);
        (c.from, c.bitmap_below)
    })
}

#[test]
fn an_interrupted_recovery_resumes_as_md_resumes_it() {
    const R: u64 = 2048;
    // With a bitmap that covers the absence (events at or past events_cleared).
    let (m, _d, sb, sector) = gone_member(MetadataVersion::V1_2, true);
    let ev = m.events();
    let cleared = m.bitmap().unwrap().bitmap.header.events_cleared;
    assert!(
        sb.events() >= cleared && sb.events() < ev,
        "covered, not current"
    );
    let old = sb.events();
    // Bitmap-based recovery: current resumes at R; otherwise the bitmap guides all of it.
    assert_eq!(
        interrupted(&m, &sb, sector, R, true, ev),
        Some((R, u64::MAX))
    );
    assert_eq!(
        interrupted(&m, &sb, sector, R, true, old),
        Some((0, u64::MAX))
    );
    // A full recovery: current resumes at R copying everything; otherwise the bitmap guides
    // the part below R and everything from R on is copied.
    assert_eq!(interrupted(&m, &sb, sector, R, false, ev), Some((R, 0)));
    assert_eq!(interrupted(&m, &sb, sector, R, false, old), Some((0, R)));
    // Without a bitmap nothing covers an absence: only a current device resumes, copying all.
    let (m, _d, sb, sector) = gone_member(MetadataVersion::V1_2, false);
    assert!(m.bitmap().is_none());
    let ev = m.events();
    let old = sb.events();
    assert!(old < ev);
    assert_eq!(interrupted(&m, &sb, sector, R, true, ev), Some((R, 0)));
    assert_eq!(interrupted(&m, &sb, sector, R, false, ev), Some((R, 0)));
    assert_eq!(interrupted(&m, &sb, sector, R, true, old), None);
    assert_eq!(interrupted(&m, &sb, sector, R, false, old), None);
}

/// The machine rebuilt over the same members and bitmap, read-only or not.
fn rebuilt(m: Machine, readonly: bool) -> Machine {
    let events = m.events();
    let raid_disks = m.raid_disks();
    let component_sectors = m.component_sectors();
    let (members, bitmap) = m.into_members();
    Machine::new(
        State {
            members,
            raid_disks,
            component_sectors,
            events,
            dirty: false,
            needs_resync: false,
            readonly,
            bitmap,
            resync_done: u64::MAX,
        },
        NOW,
    )
    .unwrap()
}

#[test]
fn add_member_refuses_on_a_read_only_or_stopped_machine_and_larger_blocks() {
    let (m, devs, sb, sector) = gone_member(MetadataVersion::V1_2, true);
    let fresh = m
        .plan_add(None, (DEV_BYTES / 512) as u64, &AddOptions::default())
        .unwrap();
    let new = |name: &str| detached(name, fresh.sb.clone(), fresh.sb_sector);
    let mut ro = rebuilt(m, true);
    assert!(ro.add_member(new("new"), None).is_err(), "read-only");
    assert!(ro.poll_io().is_none(), "a read-only machine wrote");
    assert_eq!(ro.members().len(), 1, "read-only took a member");
    let mut d = Driver {
        m: rebuilt(ro, false),
        devs,
    };
    // A device with larger logical blocks than the array's; equal blocks are fine.
    let mut big = new("big");
    big.dev.block_size = 4096;
    assert!(d.m.add_member(big, None).is_err(), "4 KiB blocks accepted");
    let mut same = new("same");
    same.dev.block_size = 512;
    d.devs.push(MemDevice::new(DEV_BYTES));
    d.m.add_member(same, None).unwrap();
    d.settle();
    assert_eq!(d.m.members().len(), 2);
    // Stopped.
    d.m.stop();
    d.settle();
    assert!(d.m.is_stopped());
    assert!(d.m.add_member(detached("m1", sb, sector), None).is_err());
    assert_eq!(d.m.members().len(), 2, "a stopped machine took a member");
}

#[test]
fn a_fresh_superblock_is_the_arrays_with_a_new_identity() {
    let (m, _devs, _sb, _sector) = gone_member(MetadataVersion::V1_2, true);
    // The lead carries a recovery offset and a bad-block log: a new member has neither.
    let m = with_lead(m, |sb| {
        let s = v1(sb);
        s.feature_map |= sb1::FEATURE_RECOVERY_OFFSET | sb1::FEATURE_BAD_BLOCKS;
        s.device_uuid = [0xff; 16];
    });
    let lead = m.members()[0].sb.clone();
    let lead_fm = match &lead {
        Superblock::V1(s, _) => s.feature_map,
        Superblock::V0(_) => unreachable!(),
    };
    let plan = |m: &Machine, opts: &AddOptions| {
        m.plan_add(None, (DEV_BYTES / 512) as u64, opts).unwrap().sb
    };
    let mut sb = plan(&m, &AddOptions::default());
    let n = v1(&mut sb);
    assert_eq!(
        n.feature_map,
        lead_fm & !(sb1::FEATURE_RECOVERY_OFFSET | sb1::FEATURE_BAD_BLOCKS),
        "feature map {:#x} from the lead's {lead_fm:#x}",
        n.feature_map
    );
    assert_ne!(n.device_uuid, [0xff; 16], "the lead's device UUID reused");
    assert_eq!(n.devflags, 0);
    assert_ne!(n.dev_number, lead.dev_number());
    // An all-zero lead identity: the new one is neither the lead's nor zero.
    let m = with_lead(m, |sb| v1(sb).device_uuid = [0; 16]);
    let mut sb = plan(&m, &AddOptions::default());
    assert_ne!(v1(&mut sb).device_uuid, [0; 16], "a zero device UUID");
    // The caller's identity wins.
    let mut sb = plan(
        &m,
        &AddOptions {
            device_uuid: Some([3; 16]),
            ..Default::default()
        },
    );
    assert_eq!(v1(&mut sb).device_uuid, [3; 16]);
    // Device flags, each alone and both.
    for (wm, ff) in [(true, false), (false, true), (true, true)] {
        let opts = AddOptions {
            write_mostly: wm,
            failfast: ff,
            ..Default::default()
        };
        let mut sb = plan(&m, &opts);
        let want = if wm { sb1::DEVFLAG_WRITE_MOSTLY } else { 0 }
            | if ff { sb1::DEVFLAG_FAILFAST } else { 0 };
        assert_eq!(
            v1(&mut sb).devflags,
            want,
            "write-mostly {wm}, failfast {ff}"
        );
    }
}

#[test]
fn a_new_device_never_takes_a_device_number_in_use() {
    // m0, m1 in sync, a spare m2 (dev number 2, a spare role): a fourth device gets 3.
    let mut a = create(MetadataVersion::V1_2, 2, true);
    a.add_member(
        "m2".into(),
        MemDevice::new(DEV_BYTES),
        &AddOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let (m, _devs) = a.into_machine(NOW).unwrap();
    let used: Vec<u32> = m.members().iter().map(|x| x.sb.dev_number()).collect();
    assert_eq!(used.len(), 3);
    let sb = m
        .plan_add(None, (DEV_BYTES / 512) as u64, &AddOptions::default())
        .unwrap()
        .sb;
    assert!(
        !used.contains(&sb.dev_number()),
        "dev number {} of {used:?}",
        sb.dev_number()
    );
}

#[test]
fn a_fresh_090_record_carries_its_flags() {
    let (m, _devs, _sb, _sector) = gone_member(MetadataVersion::V0_90, false);
    for (wm, ff) in [(false, false), (true, false), (false, true), (true, true)] {
        let opts = AddOptions {
            write_mostly: wm,
            failfast: ff,
            ..Default::default()
        };
        let sb = m
            .plan_add(None, (DEV_BYTES / 512) as u64, &opts)
            .unwrap()
            .sb;
        let Superblock::V0(s) = sb else {
            panic!("a 0.90 superblock expected")
        };
        let want =
            if wm { sb0::DISK_WRITE_MOSTLY } else { 0 } | if ff { sb0::DISK_FAILFAST } else { 0 };
        assert_eq!(s.this_disk.state, want, "write-mostly {wm}, failfast {ff}");
        assert_eq!(s.disks[s.this_disk.number as usize], s.this_disk);
    }
}

#[test]
fn a_comeback_without_the_bitmap_is_not_bitmap_based() {
    let (m, devs, sb, sector) = gone_member(MetadataVersion::V1_2, true);
    let mut d = Driver { m, devs };
    d.devs.push(MemDevice::new(DEV_BYTES));
    let c = Comeback {
        slot: 1,
        from: 0,
        bitmap_below: 0,
    };
    d.m.add_member(detached("m1", sb, sector), Some(c)).unwrap();
    assert!(
        !d.m.members()[1].rebuild_bitmap,
        "a full copy marked bitmap-based"
    );
    d.settle();
}

/// A 2-way array assembled from m0 alone (m1 left out): the lead still lists m1 in slot 1.
fn left_out(readonly: bool) -> Driver {
    let a = create(MetadataVersion::V1_2, 2, true);
    let mut devs: Vec<MemDevice> = a.stop().unwrap().into_iter().map(|m| m.dev).collect();
    devs.truncate(1);
    let opts = mdraid::array::AssembleOptions {
        run: true,
        force: false,
        readonly,
    };
    let (a, _) = Array::assemble(
        devs.into_iter().map(|d| ("m0".to_string(), d)).collect(),
        &opts,
    )
    .unwrap();
    let (m, devs) = a.into_machine(NOW).unwrap();
    let mut d = Driver { m, devs };
    if !readonly {
        d.settle();
    }
    d
}

#[test]
fn forgetting_a_left_out_device_clears_its_role_and_is_refused_read_only() {
    let mut d = left_out(false);
    let role = |d: &Driver| d.m.members()[0].sb.role_of(1);
    assert_eq!(role(&d), Some(mdraid::format::probe::Role::Active(1)));
    d.m.forget_device(1).unwrap();
    d.settle();
    assert_ne!(
        role(&d),
        Some(mdraid::format::probe::Role::Active(1)),
        "still listed"
    );
    // On disk too.
    let found = probe(&mut d.devs[0], None).unwrap();
    assert_ne!(
        found.sb.role_of(1),
        Some(mdraid::format::probe::Role::Active(1))
    );
    // Read-only: refused, nothing written.
    let mut ro = left_out(true);
    assert!(ro.m.is_readonly());
    assert!(
        ro.m.forget_device(1).is_err(),
        "forget on a read-only machine"
    );
    assert!(
        std::iter::from_fn(|| ro.m.poll_io()).all(|io| io.kind == IoKind::Read),
        "a read-only machine wrote"
    );
    // Stopped: refused.
    d.m.stop();
    d.settle();
    assert!(d.m.forget_device(1).is_err(), "forget on a stopped machine");
}

#[test]
fn a_new_090_device_takes_the_first_free_disk_record() {
    use sb0::{Disk0, DISK_ACTIVE, DISK_FAULTY, DISK_REMOVED, DISK_SYNC};
    let (m, _devs, _sb, _sector) = gone_member(MetadataVersion::V0_90, false);
    let mut m = Some(m);
    // (record 1, nr_disks, record 2) -> the number a new device gets. A record is free when no
    // member holds it, it is neither active nor in sync, and it is past raid_disks, removed,
    // or never used (number 0 past nr_disks).
    let rec = |number: u32, state: u32| Disk0 {
        number,
        major: 0,
        minor: 0,
        raid_disk: number,
        state,
    };
    let cases = [
        ("removed", rec(1, DISK_REMOVED), 2, rec(0, 0), 1),
        ("faulty, not removed", rec(1, DISK_FAULTY), 2, rec(0, 0), 2),
        ("never used, past nr_disks", rec(0, 0), 1, rec(0, 0), 1),
        ("zero but within nr_disks", rec(0, 0), 2, rec(0, 0), 2),
        (
            "active past raid_disks",
            rec(1, DISK_FAULTY),
            3,
            rec(2, DISK_ACTIVE | DISK_SYNC),
            3,
        ),
    ];
    for (what, r1, nr, r2, want) in cases {
        let mm = with_lead(m.take().unwrap(), |sb| {
            let Superblock::V0(s) = sb else {
                panic!("a 0.90 superblock expected")
            };
            s.disks[1] = r1;
            s.disks[2] = r2;
            s.nr_disks = nr;
        });
        let sb = mm
            .plan_add(None, (DEV_BYTES / 512) as u64, &AddOptions::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .sb;
        assert_eq!(sb.dev_number(), want, "{what}");
        m = Some(mm);
    }
}

#[test]
fn a_new_090_device_never_takes_a_record_in_use() {
    let mut a = create(MetadataVersion::V0_90, 2, false);
    a.add_member(
        "m2".into(),
        MemDevice::new(DEV_BYTES),
        &AddOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let (m, _devs) = a.into_machine(NOW).unwrap();
    let used: Vec<u32> = m.members().iter().map(|x| x.sb.dev_number()).collect();
    assert_eq!(used, [0, 1, 2]);
    let sb = m
        .plan_add(None, (DEV_BYTES / 512) as u64, &AddOptions::default())
        .unwrap()
        .sb;
    assert_eq!(sb.dev_number(), 3, "used {used:?}");
}

#[test]
fn the_recovery_check_waits_for_a_metadata_round_in_flight() {
    // m0 in sync, the spare m2, slot 1 empty (m1 left out at assembly).
    let mut a = create(MetadataVersion::V1_2, 2, true);
    a.add_member(
        "m2".into(),
        MemDevice::new(DEV_BYTES),
        &AddOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    let mut devs: Vec<MemDevice> = a.stop().unwrap().into_iter().map(|m| m.dev).collect();
    devs.remove(1);
    let opts = mdraid::array::AssembleOptions {
        run: true,
        ..Default::default()
    };
    let names = ["m0", "m2"].map(String::from);
    let (a, _) = Array::assemble(names.into_iter().zip(devs).collect(), &opts).unwrap();
    let (m, devs) = a.into_machine(NOW).unwrap();
    let mut d = Driver { m, devs };
    d.settle();
    assert!(d.m.sync_status().is_none(), "a sync runs already");
    // The first write of a clean array waits for the dirty-superblock round: while that round
    // is in flight the recovery check starts nothing (md writes pending superblocks before
    // it looks for spares); once the machine is idle it starts the recovery onto m2.
    let id =
        d.m.handle_submit(mdraid::raid1::ArrayRequest::write(
            0,
            8,
            mdraid::raid1::BufRef(0),
        ))
        .unwrap();
    assert!(d.m.is_busy());
    assert!(
        !d.m.check_recovery(),
        "recovery started during a metadata round"
    );
    assert!(d.m.sync_status().is_none());
    d.settle();
    let _ = id;
    assert!(d.m.check_recovery(), "no recovery onto the spare once idle");
    d.settle();
    assert_eq!(
        d.m.members()
            .iter()
            .filter(|x| matches!(x.state, MemberState::InSync(_)))
            .count(),
        2
    );
}

/// md's MD_RECOVERY_FROZEN belongs to the array: removing a failed member (which rebuilds the
/// engine) keeps it, and a spare added into the empty slot while frozen waits; `idle` ends the
/// freeze and its recovery runs to the end.
#[test]
fn a_spare_added_while_frozen_waits_for_the_freeze_to_end() {
    let mut a = create(MetadataVersion::V1_2, 2, true);
    a.write(0, &[7u8; 4096]).unwrap();
    a.fail_member("m1").unwrap();
    let (m, devs) = a.into_machine(NOW).unwrap();
    let mut d = Driver { m, devs };
    d.settle();
    d.m.stop_sync(true);
    d.settle();
    assert!(d.m.engine().sync_frozen());
    d.m.remove_member(1).unwrap();
    d.settle();
    assert!(d.m.engine().sync_frozen(), "the remove lost the freeze");
    let fresh =
        d.m.plan_add(None, (DEV_BYTES / 512) as u64, &AddOptions::default())
            .unwrap();
    d.devs.push(MemDevice::new(DEV_BYTES));
    let i =
        d.m.add_member(detached("new", fresh.sb.clone(), fresh.sb_sector), None)
            .unwrap();
    d.settle();
    assert!(
        d.m.engine().sync_status().is_none(),
        "a recovery started while frozen"
    );
    assert_eq!(d.m.members()[i].state, MemberState::Spare);
    d.m.stop_sync(false);
    d.settle();
    assert_eq!(
        d.m.members()[i].state,
        MemberState::InSync(1),
        "idle: the spare was rebuilt"
    );
}
