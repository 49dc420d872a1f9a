//! The array machine's replace command (mdadm `--replace`): refusals, the superblocks it
//! writes while the copy runs (1.x: the replacement's role is the slot, feature bit 16 and a
//! recovery offset; 0.90: a spare, as md writes it), the swap at the end, and a 1.x array
//! stopped mid-copy assembling with the replace resumed.

mod common;

use mdraid::array::machine::{Machine, Notice};
use mdraid::array::{Array, AssembleOptions, CreateOptions, MemberState};
use mdraid::device::MemDevice;
use mdraid::format::probe::{Role, Superblock};
use mdraid::format::{sb1, MetadataVersion};

const DEV: usize = 4 << 20;

fn create(v: MetadataVersion) -> Array<MemDevice> {
    let slots = common::mem_slots(3, DEV);
    let opts = CreateOptions {
        name: "replace".into(),
        ..common::create_options(v, 2)
    };
    Array::create(slots, &opts).unwrap()
}

/// Carries out every I/O the machine hands out on `devs` until it is idle or `stop` says so.
fn run(m: &mut Machine, devs: &mut [MemDevice], stop: &mut dyn FnMut(&Machine) -> bool) {
    use mdraid::array::machine::{IoBuffer, IoKind};
    use mdraid::device::BlockDevice;
    for _ in 0..1_000_000 {
        if stop(m) {
            return;
        }
        let Some(io) = m.poll_io() else {
            if !m.is_busy() {
                return;
            }
            let t = m.poll_timeout().expect("busy without a timer");
            let now = mdraid::array::machine::Now {
                mono_ns: t,
                wall_secs: 1_800_000_000,
            };
            m.handle_timeout(now);
            continue;
        };
        let dev = &mut devs[io.member];
        let len = io.len as usize;
        let res = match (io.kind, io.buf) {
            (IoKind::Flush, _) => dev.flush(),
            (IoKind::Write, iobuf) => {
                let IoBuffer::Machine { index, offset } = iobuf else {
                    panic!("no caller buffers here")
                };
                let b = m.buffer(index).unwrap()[offset..offset + len].to_vec();
                dev.write_at(io.offset, &b)
            }
            (IoKind::Read, iobuf) => {
                let IoBuffer::Machine { index, offset } = iobuf else {
                    panic!("no caller buffers here")
                };
                let mut b = vec![0u8; len];
                let r = dev.read_at(io.offset, &mut b);
                m.buffer_mut(index).unwrap()[offset..offset + len].copy_from_slice(&b);
                r
            }
            _ => Ok(()),
        };
        m.handle_io_completion(io.id, res.map_err(Into::into))
            .unwrap();
    }
    panic!("never idle");
}

/// Runs member 2's copy as member 0's replacement to its end and asserts the swap: notices,
/// the replacement in sync in slot 0, the original faulty.
fn run_to_swap(m: &mut Machine, devs: &mut [MemDevice], case: &str) {
    run(m, devs, &mut |_| false);
    let mut notices = Vec::new();
    while let Some(n) = m.poll_event() {
        notices.push(n);
    }
    assert!(
        notices.contains(&Notice::SpareRebuilt { member: 2, slot: 0 }),
        "{case}: {notices:?}"
    );
    assert!(
        notices.contains(&Notice::MemberFailed { member: 0 }),
        "{case}: {notices:?}"
    );
    assert_eq!(m.members()[2].state, MemberState::InSync(0), "{case}");
    assert_eq!(m.members()[0].state, MemberState::Faulty, "{case}");
}

fn features(m: &Machine, i: usize) -> u32 {
    match &m.members()[i].sb {
        Superblock::V1(s, _) => s.feature_map,
        Superblock::V0(_) => 0,
    }
}

#[test]
fn replace_command_superblocks_swap_and_refusals() {
    for v in [MetadataVersion::V1_2, MetadataVersion::V0_90] {
        let a = create(v);
        let (mut m, mut devs) = a
            .into_machine(mdraid::array::machine::Now::default())
            .unwrap();
        assert_eq!(m.members()[2].state, MemberState::Spare);
        // Refused: a spare cannot be replaced, an in-sync member is no replacement.
        assert!(m.replace_member(2, None).is_err(), "{v}");
        assert!(m.replace_member(0, Some(1)).is_err(), "{v}");
        let r = m.replace_member(0, None).unwrap();
        assert_eq!(r, 2);
        assert!(m.is_replacement(2));
        // One replacement per member; the active replacement cannot be removed.
        assert!(m.replace_member(0, None).is_err(), "{v}");
        let e = m.remove_member(2).unwrap_err().to_string();
        assert!(e.contains("active replacement"), "{v}: {e}");
        // Run until the first recovery checkpoint is recorded.
        let mut progressed = false;
        run(&mut m, &mut devs, &mut |m| {
            progressed |= m.members()[2].rebuild.is_some_and(|(_, o)| o > 0);
            progressed
        });
        assert!(progressed, "{v}: a checkpoint");
        if v != MetadataVersion::V0_90 {
            // md's super_1_sync: the slot, feature bits 16 + 2, the offset.
            assert_eq!(m.members()[2].sb.role(), Role::Active(0), "{v}");
            let f = features(&m, 2);
            assert_eq!(
                f & (sb1::FEATURE_REPLACEMENT | sb1::FEATURE_RECOVERY_OFFSET),
                sb1::FEATURE_REPLACEMENT | sb1::FEATURE_RECOVERY_OFFSET,
                "{v}: {f:#x}"
            );
            // Both members claim slot 0 in the role tables ('R' in mdadm's Array State).
            let Superblock::V1(s, _) = &m.members()[1].sb else {
                unreachable!()
            };
            assert_eq!(s.dev_roles.iter().filter(|&&r| r == 0).count(), 2, "{v}");
        } else {
            // 0.90 has no replacement on disk: a spare record.
            assert_ne!(m.members()[2].sb.role(), Role::Active(0), "{v}");
        }
        // To the end: the replacement holds slot 0, the original is faulty.
        run_to_swap(&mut m, &mut devs, &v.to_string());
        assert!(!m.is_replacement(2));
        assert_eq!(features(&m, 2) & sb1::FEATURE_REPLACEMENT, 0, "{v}");
        assert_eq!(m.members()[2].sb.role(), Role::Active(0), "{v}");
        if v != MetadataVersion::V0_90 {
            // (0.90 renumbers its records at every update: no stable number to look up.)
            let d0 = m.members()[0].sb.dev_number();
            assert_eq!(m.members()[1].sb.role_of(d0), Some(Role::Faulty), "{v}");
        }
    }
}

/// A 1.x array stopped mid-replace assembles with the replacement paired again with its
/// original and the copy resuming from its recovery offset (md's super_1_validate).
#[test]
fn a_replace_stopped_mid_copy_resumes_at_assembly() {
    let a = create(MetadataVersion::V1_2);
    let (mut m, mut devs) = a
        .into_machine(mdraid::array::machine::Now::default())
        .unwrap();
    m.replace_member(1, Some(2)).unwrap();
    run(&mut m, &mut devs, &mut |m| {
        m.members()[2].rebuild.is_some_and(|(_, o)| o > 0)
    });
    m.stop();
    run(&mut m, &mut devs, &mut |m| m.is_stopped());
    let off = m.members()[2].rebuild.unwrap().1;
    assert!(off > 0);
    let names = devs
        .into_iter()
        .enumerate()
        .map(|(i, d)| (format!("m{i}"), d))
        .collect();
    let (mut b, report) = Array::assemble(names, &AssembleOptions::default()).unwrap();
    assert!(report.kicked.is_empty());
    assert!(b.machine().is_replacement(2), "paired again");
    assert_eq!(b.members()[2].rebuild, Some((1, off)), "from its offset");
    let r = b.replace_member("m1", None, &mut |_, _| {}).unwrap();
    assert!(!r.interrupted);
    // Resumed, not restarted: less than the whole member was copied.
    assert!(r.sectors_copied < b.size() / 512, "{r:?}");
    assert_eq!(b.members()[2].state, MemberState::InSync(1));
    assert_eq!(b.members()[1].state, MemberState::Faulty);
    let check = b
        .run_sync(mdraid::array::SyncAction::Check, &mut |_, _| {})
        .unwrap();
    assert_eq!(check.mismatch_cnt, 0);
}

/// A replace whose copy was stopped (md's `idle` in sync_action) is resumed by the recovery
/// check, as md's remove_and_add_spares counts the replacement (a slot, not in sync): from its
/// recovery offset, to the swap.
#[test]
fn the_recovery_check_resumes_a_stopped_replace() {
    let a = create(MetadataVersion::V1_2);
    let (mut m, mut devs) = a
        .into_machine(mdraid::array::machine::Now::default())
        .unwrap();
    m.replace_member(0, Some(2)).unwrap();
    let whole = m.sync_status().expect("the copy runs").total_sectors;
    run(&mut m, &mut devs, &mut |m| {
        m.members()[2].rebuild.is_some_and(|(_, o)| o > 0)
    });
    m.abort_sync().unwrap();
    run(&mut m, &mut devs, &mut |_| false);
    assert!(m.sync_status().is_none(), "stopped");
    assert!(m.is_replacement(2), "still the replacement");
    let (slot, off) = m.members()[2].rebuild.unwrap();
    assert_eq!(slot, 0);
    assert!(off > 0);
    while m.poll_event().is_some() {}
    assert!(m.check_recovery(), "the stopped replace is not resumed");
    let st = m.sync_status().expect("a recovery runs");
    assert_eq!(
        st.total_sectors,
        whole - off,
        "not from its offset {off}: {st:?}"
    );
    run_to_swap(&mut m, &mut devs, "resumed");
    // Nothing left to recover: the check starts nothing.
    assert!(!m.check_recovery());
}

/// A replaced original is written until the swap is recorded: while the round that records
/// it is out, the machine already lists the original as faulty (its superblocks say so), yet
/// a write still reaches it, so the original stays current should that round never land;
/// once it is done, writes go to the replacement and the other mirror only. (Fails when
/// `Machine::data_io` drops the I/O of every member it lists faulty.)
#[test]
fn writes_reach_the_retiring_original_until_the_swap_is_recorded() {
    for v in [MetadataVersion::V1_2, MetadataVersion::V0_90] {
        let a = create(v);
        let (mut m, mut devs) = a
            .into_machine(mdraid::array::machine::Now::default())
            .unwrap();
        m.replace_member(0, Some(2)).unwrap();
        // A first write marks the array dirty (and it stays so: the clock does not move
        // while the copy runs), so the write in the window needs no superblock round.
        assert_eq!(
            write_through(&mut m, &mut devs),
            vec![0, 1, 2],
            "{v}: before"
        );
        let mut window = false;
        run(&mut m, &mut devs, &mut |m| {
            window = m.members()[0].state == MemberState::Faulty && m.engine().is_retiring(0);
            window
        });
        assert!(
            window,
            "{v}: no window between the swap's plan and its record"
        );
        let during = write_through(&mut m, &mut devs);
        assert_eq!(during, vec![0, 1, 2], "{v}: the original is still written");
        run_to_swap(&mut m, &mut devs, &v.to_string());
        assert!(!m.engine().is_retiring(0), "{v}");
        let after = write_through(&mut m, &mut devs);
        assert_eq!(
            after,
            vec![1, 2],
            "{v}: the retired original is not written"
        );
    }
}

/// Writes 8 sectors at sector 64 and carries the request through: its data writes at once,
/// held metadata (another round, a dirty mark) only when the write cannot finish without
/// it. Returns the members its data went to.
fn write_through(m: &mut Machine, devs: &mut [MemDevice]) -> Vec<usize> {
    use mdraid::array::machine::{IoBuffer, IoKind};
    use mdraid::device::BlockDevice;
    use mdraid::raid1::{ArrayRequest, BufRef};
    let data = [0xa5u8; 4096];
    let id = m
        .handle_submit(ArrayRequest::write(64, 8, BufRef(7)))
        .unwrap();
    let mut held = Vec::new();
    let mut written = Vec::new();
    loop {
        while let Some(io) = m.poll_io() {
            match (io.kind, io.buf) {
                (IoKind::Write, IoBuffer::Caller { token, offset }) => {
                    assert_eq!(token, BufRef(7));
                    let o = offset as usize;
                    devs[io.member]
                        .write_at(io.offset, &data[o..o + io.len as usize])
                        .unwrap();
                    written.push(io.member);
                    m.handle_io_completion(io.id, Ok(())).unwrap();
                }
                _ => held.push(io),
            }
        }
        if let Some((done, r)) = m.poll_completion() {
            assert_eq!(done, id);
            assert!(r.is_ok(), "{r:?}");
            break;
        }
        let Some(io) = (!held.is_empty()).then(|| held.remove(0)) else {
            panic!("the write neither finished nor waits for metadata")
        };
        carry_out(m, devs, io);
    }
    for io in held {
        carry_out(m, devs, io);
    }
    written.sort_unstable();
    written
}

/// Carries out one machine-buffer I/O (metadata, the copy) and reports it.
fn carry_out(m: &mut Machine, devs: &mut [MemDevice], io: mdraid::array::machine::Io) {
    use mdraid::array::machine::{IoBuffer, IoKind};
    use mdraid::device::BlockDevice;
    let len = io.len as usize;
    let dev = &mut devs[io.member];
    let res = match (io.kind, io.buf) {
        (IoKind::Write, IoBuffer::Machine { index, offset }) => {
            let b = m.buffer(index).unwrap()[offset..offset + len].to_vec();
            dev.write_at(io.offset, &b)
        }
        (IoKind::Read, IoBuffer::Machine { index, offset }) => {
            let mut b = vec![0u8; len];
            let r = dev.read_at(io.offset, &mut b);
            m.buffer_mut(index).unwrap()[offset..offset + len].copy_from_slice(&b);
            r
        }
        (IoKind::Flush, _) => dev.flush(),
        _ => Ok(()),
    };
    m.handle_io_completion(io.id, res.map_err(Into::into))
        .unwrap();
}
