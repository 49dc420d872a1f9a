//! The 0.90 disk table every superblock update rebuilds (array/sb0_sync.rs), against md's
//! super_90_sync (drivers/md/md.c): record 0 preset removed; an in-sync member's record at its
//! slot (active | sync); every other member, in member order, the next record from
//! raid_disks up (a faulty one marked faulty, the rest counted spare and working); a slot
//! left without a member marked removed | faulty and counted failed; the write-mostly and
//! failfast bits carried from the member's own record; this_disk the member's own record.
//! The machines are built from crafted member lists (`Machine::new`), so each rule is met on
//! its own; a clean stop runs the superblock round. Written for what the sb0 group of
//! `scripts/mutants.sh` missed (TESTING.md).

mod common;

use mdraid::array::machine::{Detached, Machine, Now, State};
use mdraid::array::{Array, CreateOptions, IntentBitmap, Member, MemberState};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::Superblock;
use mdraid::format::sb0::{
    Disk0, Superblock0, DISK_ACTIVE, DISK_FAILFAST, DISK_FAULTY, DISK_REMOVED, DISK_SYNC,
    DISK_WRITE_MOSTLY,
};
use mdraid::format::MetadataVersion;

const NOW: Now = Now {
    mono_ns: 1_000_000_000,
    wall_secs: 1_900_000_000,
};

/// A member of a 0.90 array made here (its superblock as md left it), to be dressed up.
fn template() -> Member<Detached> {
    with_bitmap(false).0.remove(0)
}

/// The members of a clean 2-way 0.90 array made here, and its bitmap if asked for one.
fn with_bitmap(bitmap: bool) -> (Vec<Member<Detached>>, Option<IntentBitmap>) {
    let slots = common::mem_slots(2, 8 << 20);
    let opts = CreateOptions {
        bitmap: if bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(64 << 10),
            }
        } else {
            BitmapRequest::None
        },
        name: String::new(),
        uuid: [4; 16],
        seed: 4,
        ..common::create_options(MetadataVersion::V0_90, 2)
    };
    let a = Array::create(slots, &opts).unwrap();
    let (m, _) = a.into_machine(NOW).unwrap();
    m.into_members()
}

fn v0(sb: &mut Superblock) -> &mut Superblock0 {
    match sb {
        Superblock::V0(s) => s,
        Superblock::V1(..) => panic!("a 0.90 superblock expected"),
    }
}

/// A member in `state` whose device is (8, minor) (or has no number: `None`) and whose own
/// record, as its superblock holds it, is `own`.
fn member(state: MemberState, minor: Option<u32>, own: Disk0) -> Member<Detached> {
    let mut m = template();
    m.name = format!("dev{}", minor.unwrap_or(0));
    m.state = state;
    m.dev.device_number = minor.map(|n| (8, n));
    v0(&mut m.sb).this_disk = own;
    m
}

fn rec(number: u32, major: u32, minor: u32, raid_disk: u32, state: u32) -> Disk0 {
    Disk0 {
        number,
        major,
        minor,
        raid_disk,
        state,
    }
}

/// A machine over `members` with `raid_disks` slots, stopped: the clean stop writes every
/// working member's superblock.
fn stopped(members: Vec<Member<Detached>>, raid_disks: u32) -> Machine {
    stopped_with(members, raid_disks, None, None)
}

/// [`stopped`] with the bitmap `bitmap` and, with `owed`, a resync owed from that sector.
fn stopped_with(
    members: Vec<Member<Detached>>,
    raid_disks: u32,
    bitmap: Option<IntentBitmap>,
    owed: Option<u64>,
) -> Machine {
    let Superblock::V0(s) = &members[0].sb else {
        panic!("a 0.90 superblock expected")
    };
    // 0.90 records the size in KiB.
    let component_sectors = u64::from(s.size) * 2;
    let events = members[0].sb.events();
    let mut m = Machine::new(
        State {
            members,
            raid_disks,
            component_sectors,
            events,
            dirty: true,
            needs_resync: owed.is_some(),
            readonly: false,
            bitmap,
            resync_done: owed.unwrap_or(u64::MAX),
        },
        NOW,
    )
    .unwrap();
    m.stop();
    let mut ios = 0;
    while let Some(io) = m.poll_io() {
        ios += 1;
        m.handle_io_completion(io.id, Ok(())).unwrap();
    }
    assert!(ios > 0, "the clean stop writes the superblocks");
    assert!(m.is_stopped());
    m
}

/// (nr_disks, active, working, failed, spare) and the records of a written superblock.
fn table(sb: &Superblock) -> ((u32, u32, u32, u32, u32), Vec<Disk0>) {
    let Superblock::V0(s) = sb else {
        panic!("a 0.90 superblock expected")
    };
    (
        (
            s.nr_disks,
            s.active_disks,
            s.working_disks,
            s.failed_disks,
            s.spare_disks,
        ),
        s.disks.to_vec(),
    )
}

// Catches sb0_sync.rs 50:46 (guard → true), 50:51 (`<` → `<=`), 63:24 (`nr_disks *=`), 74:17
// (the Faulty arm deleted), 75:22 (guard → true), 77:30, 78:31, 81:29, 82:31 (the counters'
// `+=` → `*=`, `-=`), and the own-record flags (86) and empty-slot marks (89, 95, 97).
#[test]
fn the_090_disk_table_is_md_s_super_90_sync() {
    let none = Disk0::default();
    // Own records as the devices' old superblocks hold them: bits beyond write-mostly and
    // failfast (an old active | sync, an old faulty) must not carry over.
    let wm = rec(1, 8, 1, 1, DISK_ACTIVE | DISK_SYNC | DISK_WRITE_MOSTLY);
    let ff = rec(0, 8, 2, 0, DISK_ACTIVE | DISK_SYNC | DISK_FAILFAST);
    let old_faulty = rec(4, 9, 9, 4, DISK_FAULTY | DISK_WRITE_MOSTLY);
    let numbered = rec(7, 3, 33, 7, DISK_REMOVED);
    let members = vec![
        member(MemberState::InSync(2), Some(16), wm),
        member(MemberState::Spare, Some(32), ff),
        member(MemberState::Faulty, Some(48), old_faulty),
        member(MemberState::InSync(0), Some(64), none),
        // No device number of its own: the one its record holds.
        member(MemberState::Spare, None, numbered),
        // A slot past raid_disks (no member can hold one): a record of its own after the
        // slots, never one a spare's record shares.
        member(MemberState::InSync(3), Some(80), none),
    ];
    let m = stopped(members, 3);
    let mut want = vec![none; 27];
    // In-sync members at their slots; the others from raid_disks (3) up, in member order.
    want[2] = rec(2, 8, 16, 2, DISK_ACTIVE | DISK_SYNC | DISK_WRITE_MOSTLY);
    want[3] = rec(3, 8, 32, 3, DISK_FAILFAST);
    want[4] = rec(4, 8, 48, 4, DISK_FAULTY | DISK_WRITE_MOSTLY);
    want[0] = rec(0, 8, 64, 0, DISK_ACTIVE | DISK_SYNC);
    want[5] = rec(5, 3, 33, 5, 0);
    want[6] = rec(6, 8, 80, 6, 0);
    // Slot 1 has no member.
    want[1] = rec(1, 0, 0, 1, DISK_REMOVED | DISK_FAULTY);
    // nr_disks 6; active 2 (slots 0, 2); working 5 (all but the faulty); failed 1 (slot 1);
    // spare 3 (the two spares and the one past the slots).
    let counts = (6, 2, 5, 1, 3);
    let own = [2, 3, 4, 0, 5, 6];
    for (i, mem) in m.members().iter().enumerate() {
        if !mem.state.is_working() {
            continue;
        }
        let (c, disks) = table(&mem.sb);
        assert_eq!(c, counts, "member {i}: nr, active, working, failed, spare");
        for (r, (got, want)) in disks.iter().zip(&want).enumerate() {
            assert_eq!(got, want, "member {i}: record {r}");
        }
        let Superblock::V0(s) = &mem.sb else {
            unreachable!()
        };
        assert_eq!(s.this_disk, want[own[i]], "member {i}: this_disk");
    }
}

// Catches what the first test does not meet: an empty slot 0 keeps only md's preset removed
// bit and is not counted failed (89:41 `number == 0` → `!=` marks no empty slot at all; the
// `&&` → `||` of 89:29 overwrites an occupied record 0).
#[test]
fn an_empty_slot_0_keeps_md_s_preset_and_an_empty_later_slot_is_failed() {
    let none = Disk0::default();
    let members = vec![
        member(MemberState::InSync(1), Some(16), none),
        member(MemberState::InSync(3), Some(32), none),
    ];
    let m = stopped(members, 4);
    let mut want = vec![none; 27];
    want[0] = rec(0, 0, 0, 0, DISK_REMOVED);
    want[1] = rec(1, 8, 16, 1, DISK_ACTIVE | DISK_SYNC);
    want[2] = rec(2, 0, 0, 2, DISK_REMOVED | DISK_FAULTY);
    want[3] = rec(3, 8, 32, 3, DISK_ACTIVE | DISK_SYNC);
    for (i, mem) in m.members().iter().enumerate() {
        let (c, disks) = table(&mem.sb);
        assert_eq!(
            c,
            (2, 2, 2, 1, 0),
            "member {i}: nr, active, working, failed, spare"
        );
        assert_eq!(disks, want, "member {i}");
    }
    // Record 0 occupied: it is the member's, not a removed one.
    let members = vec![
        member(MemberState::InSync(0), Some(16), none),
        member(MemberState::InSync(1), Some(32), none),
    ];
    let m = stopped(members, 2);
    let (c, disks) = table(&m.members()[0].sb);
    assert_eq!(c, (2, 2, 2, 0, 0));
    assert_eq!(disks[0], rec(0, 8, 16, 0, DISK_ACTIVE | DISK_SYNC));
    assert_eq!(disks[1], rec(1, 8, 32, 1, DISK_ACTIVE | DISK_SYNC));
    assert!(disks[2..].iter().all(|d| *d == none));
}

// Catches sb0_sync.rs 135:24 (`&&` → `||`), 135:17 (`!` deleted), 135:37 (`==` → `!=`) and
// 136:10 (`&` → `|`): md's state word is rebuilt from nothing (super_90_sync: `sb->state = 0`),
// clean only when no write is in flight and no resync is owed (in_sync and recovery_cp ==
// MaxSector), and the bitmap-present bit set while the array has its bitmap.
#[test]
fn the_090_state_word_is_clean_only_with_nothing_owed_and_keeps_only_the_bitmap_bit() {
    const CLEAN: u32 = 1;
    const ERRORS: u32 = 1 << 1;
    const BITMAP_PRESENT: u32 = 1 << 8;
    for bitmap in [false, true] {
        for owed in [None, Some(1024)] {
            let (mut members, bm) = with_bitmap(bitmap);
            for mem in &mut members {
                // A stale bit of an old state word (MD_SB_ERRORS) does not survive.
                v0(&mut mem.sb).state |= ERRORS;
            }
            let m = stopped_with(members, 2, bm, owed);
            let want =
                if bitmap { BITMAP_PRESENT } else { 0 } | if owed.is_none() { CLEAN } else { 0 };
            for (i, mem) in m.members().iter().enumerate() {
                let Superblock::V0(s) = &mem.sb else {
                    unreachable!()
                };
                assert_eq!(
                    s.state, want,
                    "bitmap {bitmap}, resync owed {owed:?}: member {i}'s state word"
                );
                // The checkpoint: all ones when clean, else where the resync stands.
                if owed.is_none() {
                    assert_eq!(s.recovery_cp, u32::MAX);
                } else {
                    assert!(s.recovery_cp < (8 << 20) / 512, "{}", s.recovery_cp);
                }
            }
        }
    }
}
