//! The fault matrix through the whole stack (Array → engine → devices): EIO on reads and on
//! writes of each member at varied points, with 2 and 3 mirrors and every metadata version.
//! No wrong data is ever returned, no acknowledged write is lost while one mirror lives, and
//! the superblocks end up as md would leave them (bad blocks recorded where the log has room,
//! the member marked faulty where it has not, the failure recorded in the survivors).

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
        version: v,
        raid_disks: n as u32,
        bitmap: if v == MetadataVersion::V0_90 {
            BitmapRequest::None
        } else {
            BitmapRequest::Internal {
                chunk_bytes: Some(64 << 10),
            }
        },
        name: "faults".into(),
        homehost: None,
        assume_clean: true,
        size_kib: None,
        now: 1_800_000_000,
        uuid: [3; 16],
        seed: 9,
        md_minor: 0,
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
    let mut now = 1_800_000_000;
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
        now += 1;
        let len = 512 * (1 + rng.below(64) as usize);
        let off = (rng.below(((size - len) / 512) as u64) * 512) as usize;
        if rng.below(3) == 0 {
            let data: Vec<u8> = (0..len)
                .map(|i| (rng.next() as u8).wrapping_add(i as u8))
                .collect();
            a.write(off as u64, &data, now)
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
            // No bad-block log: md fails the member (when a write actually hit the range).
        }
        Inject::Writes => assert_eq!(
            working, n,
            "{what}: a write error with log room records a bad block"
        ),
    }
    ctls.iter().for_each(FaultControl::clear);
    let members = a.stop(now + 1).unwrap();
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
