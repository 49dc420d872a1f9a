//! The fault matrix through the whole stack (Array → engine → devices): EIO on reads and on
//! writes of each member at varied points, with 2 and 3 mirrors and every metadata version.
//! No wrong data is ever returned, no acknowledged write is lost while one mirror lives, and
//! the superblocks end up as md would leave them (bad blocks recorded where the log has room,
//! the member marked faulty where it has not, the failure recorded in the survivors).

mod common;

use mdraid::array::{Array, AssembleOptions, CreateOptions, CreateSlot, MemberState};
use mdraid::device::{FaultControl, FaultRule, FaultyDevice, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::{Role, Superblock};
use mdraid::format::MetadataVersion;

const MIB: usize = 1 << 20;

use mdraid::splitmix::SplitMix64 as Rng;

fn make(n: usize, v: MetadataVersion) -> (Array<FaultyDevice<MemDevice>>, Vec<FaultControl>) {
    let mut ctls = Vec::new();
    let slots = (0..n)
        .map(|i| {
            let (dev, ctl) = FaultyDevice::new(MemDevice::new(8 * MIB));
            ctls.push(ctl);
            CreateSlot::Device {
                name: format!("m{i}"),
                dev,
                write_mostly: false,
                failfast: false,
            }
        })
        .collect();
    let opts = CreateOptions {
        bitmap: if v == MetadataVersion::V0_90 {
            BitmapRequest::None
        } else {
            BitmapRequest::Internal {
                chunk_bytes: Some(64 << 10),
            }
        },
        name: "faults".into(),
        uuid: [3; 16],
        seed: 9,
        ..common::create_options(v, n as u32)
    };
    (Array::create(slots, &opts).unwrap(), ctls)
}

#[derive(Clone, Copy, Debug)]
enum Inject {
    /// One read error, healed by md's rewrite (a transient media error).
    Read,
    /// Every read fails: the verify read after the rewrite fails too, so md fails the member.
    ReadsForever,
    Writes,
    Dead,
}

#[test]
fn fault_matrix() {
    let mut runs = 0;
    for v in [
        MetadataVersion::V1_2,
        MetadataVersion::V1_0,
        MetadataVersion::V0_90,
    ] {
        for n in [2usize, 3] {
            for target in 0..n {
                for inject in [
                    Inject::Read,
                    Inject::ReadsForever,
                    Inject::Writes,
                    Inject::Dead,
                ] {
                    for start_after in [0u64, 7, 40] {
                        run_case(v, n, target, inject, start_after, runs as u64);
                        runs += 1;
                    }
                }
            }
        }
    }
    assert_eq!(runs, 3 * (2 + 3) * 4 * 3);
}

fn run_case(
    v: MetadataVersion,
    n: usize,
    target: usize,
    inject: Inject,
    start_after: u64,
    seed: u64,
) {
    let what = format!("{v} n={n} target={target} {inject:?} after={start_after}");
    let (mut a, ctls) = make(n, v);
    let size = a.size() as usize;
    let mut model = vec![0u8; size];
    let mut rng = Rng(seed * 7919 + 1);
    // A second passes per operation: the safe-mode delay expires between them, so the
    // superblocks go clean and dirty again around every write (md's metadata rounds).
    let clock = mdraid::array::VirtualClock::new(1_800_000_000);
    a.set_clock(Box::new(clock.clone()));
    // A data range, far from metadata, where faults are injected.
    let fault_range = (MIB as u64)..(3 * MIB as u64);
    for op in 0..120u64 {
        if op == start_after {
            let ctl = &ctls[target];
            // Member byte offsets: data starts at the data offset, so cover the whole device.
            match inject {
                Inject::Read => drop(ctl.add(FaultRule::reads().overlapping(0..u64::MAX).once())),
                Inject::ReadsForever => drop(ctl.add(FaultRule::reads().overlapping(0..u64::MAX))),
                Inject::Writes => drop(
                    ctl.add(
                        FaultRule::writes()
                            .overlapping(fault_range.clone())
                            .times(2),
                    ),
                ),
                Inject::Dead => drop(ctl.kill()),
            }
        }
        clock.advance(1_000_000_000);
        let len = 512 * (1 + rng.below(64) as usize);
        let off = (rng.below(((size - len) / 512) as u64) * 512) as usize;
        if rng.below(3) == 0 {
            let data: Vec<u8> = (0..len)
                .map(|i| (rng.next() as u8).wrapping_add(i as u8))
                .collect();
            a.write(off as u64, &data)
                .unwrap_or_else(|e| panic!("{what}: write failed with a mirror alive: {e}"));
            model[off..off + len].copy_from_slice(&data);
        } else {
            let mut got = vec![0u8; len];
            a.read(off as u64, &mut got)
                .unwrap_or_else(|e| panic!("{what}: read failed with a mirror alive: {e}"));
            assert!(
                got == model[off..off + len],
                "{what}: wrong data at {off}+{len}"
            );
        }
    }
    // Everything acknowledged reads back.
    let mut all = vec![0u8; size];
    a.read(0, &mut all).unwrap();
    assert!(all == model, "{what}: final read differs");
    let working = a
        .members()
        .iter()
        .filter(|m| matches!(m.state, MemberState::InSync(_)))
        .count();
    match inject {
        Inject::Dead => assert_eq!(working, n - 1, "{what}: dead member still in sync"),
        Inject::ReadsForever => {
            // Failed once a read reached it (the balancer may never have picked it).
            let reads_hit = ctls[target].stats().faults() > 0;
            assert_eq!(working, if reads_hit { n - 1 } else { n }, "{what}");
        }
        Inject::Read => {
            assert_eq!(
                working, n,
                "{what}: a healed read error must not fail a member"
            );
            if ctls[target].stats().faults() > 0 {
                let corrected: u64 = (0..n)
                    .filter_map(|s| a.counters(s))
                    .map(|c| c.corrected)
                    .sum();
                assert!(corrected > 0, "{what}: the bad range was not rewritten");
            }
        }
        Inject::Writes if v == MetadataVersion::V0_90 => {
            // No bad-block log: md fails the member when a write actually hit the range
            // (md_error from raid1_end_write_request), and only that member.
            let hit = ctls[target].stats().write_faults > 0;
            assert_eq!(working, if hit { n - 1 } else { n }, "{what}");
            assert_eq!(
                a.members()[target].state == MemberState::Faulty,
                hit,
                "{what}: the member a write failed on"
            );
        }
        Inject::Writes => assert_eq!(
            working, n,
            "{what}: a write error with log room records a bad block"
        ),
    }
    ctls.iter().for_each(FaultControl::clear);
    let members = a.stop().unwrap();
    // Superblocks as md would have them: survivors agree on events and on the failed member.
    let survivors: Vec<_> = members
        .iter()
        .filter(|m| matches!(m.state, MemberState::InSync(_)))
        .collect();
    let events = survivors[0].sb.events();
    for m in &survivors {
        assert_eq!(m.sb.events(), events, "{what}");
        assert!(m.sb.checksum_ok() && m.sb.is_clean(), "{what}");
    }
    if let Some(failed) = members.iter().find(|m| m.state == MemberState::Faulty) {
        match &survivors[0].sb {
            // md's super_90_sync lists a failed member past the slots (record raid_disks and
            // up, state faulty) and leaves its old slot without an active record.
            mdraid::format::probe::Superblock::V0(s) => {
                let faulty = s.disks.iter().filter(|d| d.state == 1).count();
                assert_eq!(
                    faulty, 1,
                    "{what}: survivors must list the failed member as faulty"
                );
                let Role::Active(slot) = failed.sb.role() else {
                    panic!("{what}: the failed member's own record is not active")
                };
                assert_ne!(
                    survivors[0].sb.role_of(slot),
                    Some(Role::Active(slot)),
                    "{what}: the failed member's slot is still active"
                );
            }
            _ => assert_eq!(
                survivors[0].sb.role_of(failed.sb.dev_number()),
                Some(Role::Faulty),
                "{what}: survivors must list the failed member as faulty"
            ),
        }
    }
    if let (Inject::Writes, true) = (inject, v != MetadataVersion::V0_90) {
        let m = &members[target];
        if let Superblock::V1(s, _) = &m.sb {
            let hit = ctls[target].stats().faults() > 0;
            assert_eq!(
                s.feature_map & 8 != 0,
                hit,
                "{what}: bad-block log feature bit"
            );
        }
    }
    // Reassembled from the surviving devices (the failed one refused), the data is intact.
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (mut b, rep) = Array::assemble(
        devs,
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        b.in_sync_count() as usize,
        working,
        "{what}: {:?}",
        rep.kicked.iter().map(|k| &k.reason).collect::<Vec<_>>()
    );
    let mut again = vec![0u8; size];
    b.read(0, &mut again).unwrap();
    assert!(again == model, "{what}: data after reassembly differs");
}

/// Faults outside the data path: what md does when metadata I/O fails on a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meta {
    /// Every flush of the member fails (the superblock's flush, md's REQ_PREFLUSH|FUA).
    Flush,
    /// Writes of the member's superblock sector fail.
    SbWrite,
    /// Writes of the member's bitmap header fail (1.x with the internal bitmap).
    BitmapWrite,
    /// A data write fails (a bad block to record) and so does every write of the log (1.x).
    BblogWrite,
    /// Two of three members die, one after the other.
    TwoDie,
}

#[test]
fn metadata_fault_matrix() {
    let mut runs = 0;
    for v in [
        MetadataVersion::V1_2,
        MetadataVersion::V1_0,
        MetadataVersion::V1_1,
        MetadataVersion::V0_90,
    ] {
        for n in [2usize, 3] {
            for target in 0..n {
                for meta in [
                    Meta::Flush,
                    Meta::SbWrite,
                    Meta::BitmapWrite,
                    Meta::BblogWrite,
                    Meta::TwoDie,
                ] {
                    let v090 = v == MetadataVersion::V0_90;
                    if (v090 && matches!(meta, Meta::BitmapWrite | Meta::BblogWrite))
                        || (meta == Meta::TwoDie && n != 3)
                    {
                        continue;
                    }
                    for start_after in [0u64, 30] {
                        run_meta_case(v, n, target, meta, start_after, runs);
                        runs += 1;
                    }
                }
            }
        }
    }
    assert_eq!(runs, 3 * (2 * 4 + 3 * 5) * 2 + (2 * 2 + 3 * 3) * 2);
}

fn run_meta_case(
    v: MetadataVersion,
    n: usize,
    target: usize,
    meta: Meta,
    start_after: u64,
    seed: u64,
) {
    let what = format!("{v} n={n} target={target} {meta:?} after={start_after}");
    let (mut a, ctls) = make(n, v);
    let size = a.size() as usize;
    let mut model = vec![0u8; size];
    let mut rng = Rng(seed * 104_729 + 5);
    // A second passes per operation: the safe-mode delay expires between them, so the
    // superblocks go clean and dirty again around every write (md's metadata rounds).
    let clock = mdraid::array::VirtualClock::new(1_800_000_000);
    a.set_clock(Box::new(clock.clone()));
    let second = (target + 1) % n;
    // The member's metadata areas, from its superblock.
    let m = &a.members()[target];
    let sb_byte = m.sb_sector * 512;
    let (bitmap_byte, bblog) = match &m.sb {
        Superblock::V1(s, _) => (
            mdraid::format::bitmap::location_sb1(s),
            mdraid::format::badblocks::log_location(s),
        ),
        Superblock::V0(_) => (None, None),
    };
    let data_rule = std::cell::Cell::new(None);
    let meta_rule = std::cell::Cell::new(None);
    // Writes the target had seen when it was failed: md writes nothing more to it.
    let mut writes_at_failure: Vec<Option<u64>> = vec![None; n];
    for op in 0..120u64 {
        if op == start_after {
            let ctl = &ctls[target];
            match meta {
                Meta::Flush => meta_rule.set(Some(ctl.add(FaultRule::flushes()))),
                Meta::SbWrite => meta_rule.set(Some(
                    ctl.add(FaultRule::writes().overlapping(sb_byte..sb_byte + 512)),
                )),
                Meta::BitmapWrite => {
                    let b = bitmap_byte.expect("a 1.x member with a bitmap");
                    meta_rule.set(Some(ctl.add(FaultRule::writes().overlapping(b..b + 512))));
                }
                Meta::BblogWrite => {
                    let (off, len) = bblog.expect("a 1.x member with a bad-block log");
                    meta_rule.set(Some(
                        ctl.add(FaultRule::writes().overlapping(off..off + len as u64)),
                    ));
                    let d = a.members()[target].data_byte(MIB as u64);
                    data_rule.set(Some(
                        ctl.add(
                            FaultRule::writes()
                                .overlapping(d..d + 2 * MIB as u64)
                                .once(),
                        ),
                    ));
                }
                Meta::TwoDie => drop(ctl.kill()),
            }
        }
        if meta == Meta::TwoDie && op == start_after + 20 {
            ctls[second].kill();
        }
        clock.advance(1_000_000_000);
        let len = 512 * (1 + rng.below(64) as usize);
        let off = (rng.below(((size - len) / 512) as u64) * 512) as usize;
        if rng.below(3) == 0 {
            let data: Vec<u8> = (0..len)
                .map(|i| (rng.next() as u8).wrapping_add(i as u8))
                .collect();
            a.write(off as u64, &data)
                .unwrap_or_else(|e| panic!("{what}: write failed with a mirror alive: {e}"));
            model[off..off + len].copy_from_slice(&data);
        } else {
            let mut got = vec![0u8; len];
            a.read(off as u64, &mut got)
                .unwrap_or_else(|e| panic!("{what}: read failed with a mirror alive: {e}"));
            assert!(
                got == model[off..off + len],
                "{what}: wrong data at {off}+{len}"
            );
        }
        for (i, m) in a.members().iter().enumerate() {
            if m.state == MemberState::Faulty && writes_at_failure[i].is_none() {
                writes_at_failure[i] = Some(ctls[i].stats().writes);
            }
        }
    }
    let mut all = vec![0u8; size];
    a.read(0, &mut all).unwrap();
    assert!(all == model, "{what}: final read differs");
    // md_error for a metadata write or flush error: the member fails, the others stay.
    let meta_hit = meta_rule.get().is_some_and(|r| ctls[target].hits(r) > 0);
    let expect_failed: Vec<usize> = match meta {
        Meta::TwoDie => vec![target, second],
        Meta::BblogWrite => {
            let data_hit = data_rule.get().is_some_and(|r| ctls[target].hits(r) > 0);
            // A data write error becomes a bad block whose log write fails.
            assert_eq!(meta_hit, data_hit, "{what}: the log was (not) written");
            if data_hit {
                vec![target]
            } else {
                vec![]
            }
        }
        _ => {
            assert!(meta_hit, "{what}: no metadata I/O reached the fault");
            vec![target]
        }
    };
    for (i, m) in a.members().iter().enumerate() {
        let failed = expect_failed.contains(&i);
        assert_eq!(
            m.state == MemberState::Faulty,
            failed,
            "{what}: member {i} is {:?}",
            m.state
        );
    }
    ctls.iter().for_each(FaultControl::clear);
    let members = a.stop().unwrap();
    for &i in &expect_failed {
        assert_eq!(
            Some(ctls[i].stats().writes),
            writes_at_failure[i],
            "{what}: member {i} was written after it failed"
        );
    }
    // Survivors' superblocks agree: checksums, clean, events, roles; the failed are faulty.
    let survivors: Vec<_> = members
        .iter()
        .filter(|m| matches!(m.state, MemberState::InSync(_)))
        .collect();
    assert_eq!(survivors.len(), n - expect_failed.len(), "{what}");
    let first = &survivors[0].sb;
    for m in &survivors {
        assert!(m.sb.checksum_ok() && m.sb.is_clean(), "{what}: {}", m.name);
        assert_eq!(m.sb.events(), first.events(), "{what}: {}", m.name);
        match (&m.sb, first) {
            (Superblock::V1(s, _), Superblock::V1(f, _)) => {
                assert_eq!(s.dev_roles, f.dev_roles, "{what}: {}", m.name)
            }
            (Superblock::V0(s), Superblock::V0(f)) => {
                assert_eq!(s.disks, f.disks, "{what}: {}", m.name);
                assert_eq!(
                    (s.active_disks, s.working_disks, s.failed_disks),
                    (f.active_disks, f.working_disks, f.failed_disks),
                    "{what}: {}",
                    m.name
                );
            }
            _ => panic!("{what}: mixed superblock versions"),
        }
    }
    for &i in &expect_failed {
        let failed = &members[i];
        match first {
            Superblock::V0(s) => {
                // super_90_sync: failed members listed faulty past the slots.
                let faulty = s.disks.iter().filter(|d| d.state == 1).count();
                assert_eq!(faulty, expect_failed.len(), "{what}: faulty records");
                let Role::Active(slot) = failed.sb.role() else {
                    panic!("{what}: the failed member's own record is not active")
                };
                // Its emptied slot is marked removed and faulty and counted failed, except
                // slot 0, which md presets to removed and then leaves alone (not counted).
                let emptied = expect_failed
                    .iter()
                    .filter(|&&j| members[j].sb.role() != Role::Active(0))
                    .count();
                assert_eq!(s.failed_disks as usize, emptied, "{what}: failed_disks");
                let want = if slot == 0 { 8 } else { 9 };
                assert_eq!(
                    s.disks[slot as usize].state, want,
                    "{what}: slot {slot} record"
                );
                assert_ne!(first.role_of(slot), Some(Role::Active(slot)), "{what}");
            }
            _ => assert_eq!(
                first.role_of(failed.sb.dev_number()),
                Some(Role::Faulty),
                "{what}: survivors must list member {i} as faulty"
            ),
        }
        assert!(
            failed.sb.events() < first.events(),
            "{what}: the failed member's superblock is not behind"
        );
    }
    // Reassembly from every device: the failed ones are left out, the data is intact.
    let devs: Vec<_> = members.into_iter().map(|m| (m.name, m.dev)).collect();
    let (mut b, rep) = Array::assemble(
        devs,
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{what}: reassembly: {e}"));
    assert_eq!(
        b.in_sync_count() as usize,
        n - expect_failed.len(),
        "{what}: {:?}",
        rep.kicked.iter().map(|k| &k.reason).collect::<Vec<_>>()
    );
    let mut again = vec![0u8; size];
    b.read(0, &mut again).unwrap();
    assert!(again == model, "{what}: data after reassembly differs");
}
