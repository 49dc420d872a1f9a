//! What the machine tells the engine about each member (array/machine/config.rs), seen from
//! outside: a write-mostly member (md's `WriteMostly` device flag) serves no read another
//! mirror can, a failfast member (`FailFast`) is failed at its first read error while another
//! mirror can serve the read (md's raid1 failfast rule). Written for the mutants the `config`
//! group of scripts/mutants.sh missed (TESTING.md).

mod common;

use mdraid::array::machine::{Detached, IoBuffer, IoKind, Machine, Now};
use mdraid::array::{Array, AssembleOptions, CreateSlot, Member};
use mdraid::device::{BlockDevice, MemDevice};
use mdraid::format::MetadataVersion;
use mdraid::raid1::{ArrayRequest, BufRef, MemberError, PositionState};

const DEV_BYTES: usize = 8 << 20;
const NOW: Now = Now {
    mono_ns: 1_000_000_000,
    wall_secs: 1_900_000_000,
};

/// A clean 2-way 1.2 array whose member 0 has the flags given, stopped and assembled again
/// (the flags come back from the superblocks), as a machine and its devices.
fn assembled(write_mostly: bool, failfast: bool) -> (Machine, Vec<MemDevice>) {
    let slots = (0..2)
        .map(|i| CreateSlot::Device {
            name: format!("m{i}"),
            dev: MemDevice::new(DEV_BYTES),
            write_mostly: i == 0 && write_mostly,
            failfast: i == 0 && failfast,
        })
        .collect();
    let a = Array::create(slots, &common::create_options(MetadataVersion::V1_2, 2)).unwrap();
    let devs = a.stop().unwrap().into_iter().map(|m| m.dev).collect();
    let opts = AssembleOptions {
        run: false,
        force: false,
        readonly: false,
    };
    let (a, _) = Array::assemble(common::named(devs), &opts).unwrap();
    a.into_machine(NOW).unwrap()
}

/// Reads 8 sectors at each of `n` places from sector 4096 on (away from both heads, so read
/// balancing weighs both mirrors), carrying out every I/O (member 0's reads fail when
/// `fail0`); the members each read I/O went to.
fn read_members(m: &mut Machine, devs: &mut [MemDevice], n: u64, fail0: bool) -> Vec<usize> {
    let mut readers = Vec::new();
    for k in 0..n {
        let id = m
            .handle_submit(ArrayRequest::read(4096 + k * 64, 8, BufRef(0)))
            .unwrap();
        let mut buf = vec![0u8; 8 * 512];
        for _ in 0..1000 {
            let Some(io) = m.poll_io() else {
                break;
            };
            let res = match io.kind {
                IoKind::Read => {
                    readers.push(io.member);
                    if fail0 && io.member == 0 {
                        Err(MemberError::Io(5))
                    } else {
                        let mut data = vec![0u8; io.len as usize];
                        devs[io.member].read_at(io.offset, &mut data).unwrap();
                        match io.buf {
                            IoBuffer::Caller { offset, .. } => {
                                let o = offset as usize;
                                buf[o..o + data.len()].copy_from_slice(&data);
                            }
                            IoBuffer::Machine { index, offset } => {
                                let b = m.buffer_mut(index).unwrap();
                                b[offset..offset + data.len()].copy_from_slice(&data);
                            }
                            IoBuffer::None => {}
                        }
                        Ok(())
                    }
                }
                _ => Ok(()),
            };
            m.handle_io_completion(io.id, res).unwrap();
        }
        let (done, res) = m.poll_completion().expect("the read completes");
        assert_eq!(done, id);
        res.expect("the read is served");
    }
    readers
}

#[test]
fn a_write_mostly_member_serves_no_read_the_other_can() {
    for wm in [false, true] {
        let (mut m, mut devs) = assembled(wm, false);
        let readers = read_members(&mut m, &mut devs, 16, false);
        let on0 = readers.iter().filter(|&&r| r == 0).count();
        if wm {
            assert_eq!(on0, 0, "the write-mostly member 0 served {on0} of 16 reads");
        } else {
            assert!(
                on0 > 0,
                "member 0 served no read though it is not write-mostly"
            );
        }
    }
}

#[test]
fn a_failfast_member_fails_at_its_first_read_error() {
    for ff in [false, true] {
        let (mut m, mut devs) = assembled(false, ff);
        // Reads until member 0 has been asked once (and failed it).
        let mut asked = false;
        for _ in 0..16 {
            if read_members(&mut m, &mut devs[..], 1, true).contains(&0) {
                asked = true;
                break;
            }
        }
        assert!(asked, "member 0 was never asked for a read");
        let state = m.engine().member_state(0);
        assert_eq!(
            state == Some(PositionState::Faulty),
            ff,
            "failfast {ff}: member 0 after one read error is {state:?} ({:?})",
            m.members()[0].state
        );
    }
}

/// The members of a new clean 2-way 1.2 array over `devices` (a third one is a spare), taken
/// out of their machine, and its component size.
fn created_members(devices: usize) -> (Vec<Member<Detached>>, u64) {
    let slots = common::mem_slots(devices, DEV_BYTES);
    let a = Array::create(slots, &common::create_options(MetadataVersion::V1_2, 2)).unwrap();
    let component_sectors = a.component_sectors();
    let (m, _) = a.into_machine(NOW).unwrap();
    (m.into_members().0, component_sectors)
}

/// A machine over `members` (a clean 2-way array owing nothing, no bitmap).
fn clean_machine(
    members: Vec<Member<Detached>>,
    component_sectors: u64,
) -> Result<Machine, mdraid::array::machine::MachineError> {
    let events = members[0].sb.events();
    Machine::new(
        mdraid::array::machine::State {
            members,
            raid_disks: 2,
            component_sectors,
            events,
            dirty: false,
            needs_resync: false,
            readonly: false,
            bitmap: None,
            resync_done: u64::MAX,
        },
        NOW,
    )
}

/// A member's bad-block log (device sectors) reaches the engine in array sectors: an entry
/// ending at or before the data area is dropped, one straddling its start is clipped to it,
/// the others move down by data_offset. (Mutants: the filter's `+` → `-` / `*` and `>` →
/// `>=`, the mapping's `-` / `+` in member_config.) A member whose superblock has no log area
/// gets no table: a write error fails it instead of recording a bad block.
#[test]
fn a_members_bad_block_log_reaches_the_engine_in_array_sectors() {
    use mdraid::format::badblocks::{BadBlock, BadBlockLog};
    use mdraid::format::probe::Superblock;
    let (mut members, component_sectors) = created_members(2);
    let Superblock::V1(s, _) = &members[1].sb else {
        panic!("1.2 expected")
    };
    let d = s.data_offset;
    assert!(
        s.bblog_size > 0 && s.bblog_offset != 0,
        "mdadm's layout has a log"
    );
    let bb = |start: u64, len: u32| BadBlock {
        start_sector: start,
        len_sectors: len,
    };
    members[1].badblocks = Some(BadBlockLog {
        shift: 0,
        entries: vec![
            bb(d - 16, 16), // ends at the data area's start: dropped
            bb(d - 4, 12),  // straddles it: 8 sectors from array sector 0
            bb(d + 100, 5), // array sectors 100..105
        ],
    });
    // Member 0's superblock loses its log area: no table.
    if let Superblock::V1(s, _) = &mut members[0].sb {
        s.bblog_size = 0;
    }
    let m = clean_machine(members, component_sectors).unwrap();
    assert_eq!(m.engine().bad_blocks(1), Some(&[(0, 8), (100, 5)][..]));
    assert_eq!(
        m.engine().bad_blocks(0),
        None,
        "a member without a log area has a table"
    );
}

/// A member whose superblock says it was being rebuilt into slot 1 while slot 1 is held by an
/// in-sync member is that member's replacement (md's replace: both in one slot): it goes
/// after the slots as a spare and the machine attaches it as the replacement, resuming from
/// its offset. (Mutant: engine_config's `state == Spare` → `!=`, which left it a rebuilding
/// member past raid_disks: the engine refuses such a configuration.)
#[test]
fn a_rebuild_into_a_held_slot_resumes_as_its_replacement() {
    use mdraid::array::MemberState;
    let (mut members, component_sectors) = created_members(3);
    assert_eq!(members[2].state, MemberState::Spare);
    members[2].rebuild = Some((1, 1000));
    let m = clean_machine(members, component_sectors)
        .expect("a rebuild into a held slot is a replacement");
    assert_eq!(
        m.engine().member_state(2),
        Some(PositionState::Recovering {
            recovery_offset: 1000
        })
    );
    assert_eq!(m.engine().member_state(1), Some(PositionState::InSync));
}

/// The bitmap's dirty chunks reach the engine exactly: chunks written before a cut (runs of
/// one and of two) are set, every other chunk clear. (Mutants: dirty_runs's guard → `true`,
/// and `==` → `!=`, which merge chunks that are not contiguous. Equivalent, excluded: the
/// guard → `false` and `+` → `*`, which only split runs into single chunks: the same set.)
#[test]
fn the_bitmaps_dirty_chunks_reach_the_engine() {
    use mdraid::format::geometry::BitmapRequest;
    const CHUNK: u64 = 64 << 10;
    let opts = mdraid::array::CreateOptions {
        bitmap: BitmapRequest::Internal {
            chunk_bytes: Some(CHUNK),
        },
        ..common::create_options(MetadataVersion::V1_2, 2)
    };
    // A new bitmap has every bit set: stopped clean and assembled, it has none.
    let a = Array::create(common::mem_slots(2, DEV_BYTES), &opts).unwrap();
    let devs: Vec<MemDevice> = a.stop().unwrap().into_iter().map(|m| m.dev).collect();
    let ao = AssembleOptions {
        run: false,
        force: false,
        readonly: false,
    };
    let (mut a, _) = Array::assemble(common::named(devs), &ao).unwrap();
    assert_eq!(a.bitmap().map(|b| b.dirty_chunks()), Some(0));
    let dirty = [2u64, 3, 7, 9, 10];
    for c in dirty {
        a.write(c * CHUNK, &[0xa5; 4096]).unwrap();
    }
    // Cut: the bits stay set on the members.
    let devs: Vec<MemDevice> = a.abandon().into_iter().map(|m| m.dev).collect();
    let (a, _) = Array::assemble(common::named(devs), &ao).unwrap();
    let (m, _) = a.into_machine(NOW).unwrap();
    for c in 0..16u64 {
        assert_eq!(
            m.engine().bitmap_chunk_set(c),
            Some(dirty.contains(&c)),
            "chunk {c}"
        );
    }
}

/// md's assembly (analyze_sbs) takes a member whose role is past raid_disks as a spare, and
/// raid1's setup refuses two members in one slot: so does `Machine::new`. The demoted member
/// is a spare the engine rebuilds onto when a mirror fails.
#[test]
fn a_slot_past_raid_disks_is_a_spare_and_a_slot_held_twice_is_refused() {
    use mdraid::array::MemberState;
    let (mut members, component_sectors) = created_members(3);
    assert_eq!(members[2].state, MemberState::Spare);
    members[2].state = MemberState::InSync(2);
    let mut m = clean_machine(members, component_sectors).unwrap();
    assert_eq!(m.members()[2].state, MemberState::Spare, "taken as a spare");
    m.fail_member(0).unwrap();
    let mut rebuilt = false;
    for _ in 0..100_000 {
        let Some(io) = m.poll_io() else {
            if !m.is_busy() {
                break;
            }
            m.handle_timeout(Now {
                mono_ns: NOW.mono_ns + 1_000_000_000,
                wall_secs: NOW.wall_secs + 1,
            });
            continue;
        };
        rebuilt |= io.member == 2 && io.kind == IoKind::Write && io.offset >= 1 << 20;
        m.handle_io_completion(io.id, Ok(())).unwrap();
        while m.poll_completion().is_some() {}
        while m.poll_event().is_some() {}
    }
    assert!(rebuilt, "the spare received the rebuild's data writes");
    assert_eq!(m.members()[2].state, MemberState::InSync(0));

    let (mut members, component_sectors) = created_members(2);
    members[1].state = MemberState::InSync(0);
    match clean_machine(members, component_sectors) {
        Ok(_) => panic!("a slot held twice was accepted"),
        Err(e) => assert!(e.to_string().contains("one slot"), "{e}"),
    }
}
