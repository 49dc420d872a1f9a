//! Crash consistency, the property md's metadata ordering exists for: random workloads
//! (writes, FUA writes, flushes, member failures, check/repair/resync) over crash-simulating members, a power cut at
//! a random point (unflushed writes kept, dropped or torn per sector, in any order), then
//! reassembly and resync. Must hold for every case:
//! - assembly succeeds;
//! - every sector reads back a value it could hold: the last value written before the last
//!   completed flush (or FUA write), or one written after it;
//! - after the resync every in-sync mirror holds the same data.
//!
//! `MDRAID_CRASH_CASES` sets the number of cases (default 10,000, each seeded by its index and
//! reproducible: `MDRAID_CRASH_FIRST` starts elsewhere); `MDRAID_CRASH_LONG=1` runs 200,000.

mod common;

use mdraid::array::{Array, AssembleOptions, CreateOptions, CreateSlot, MemberState, SyncAction};
use mdraid::device::{BlockDevice, CrashDevice, FaultControl, FaultyDevice, SparseDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;

const DEV_BYTES: u64 = 3 << 20;

use mdraid::splitmix::SplitMix64 as Rng;

/// A sector's content names its value: tag (0 = never written, i.e. zeros) and sector.
fn sector_bytes(tag: u32, sector: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    if tag != 0 {
        for (i, chunk) in b.chunks_mut(16).enumerate() {
            chunk[..4].copy_from_slice(&tag.to_le_bytes());
            chunk[4..12].copy_from_slice(&sector.to_le_bytes());
            chunk[12..16].copy_from_slice(&(i as u32).to_le_bytes());
        }
    }
    b
}

fn tag_of(b: &[u8], sector: u64) -> Option<u32> {
    if b.iter().all(|&x| x == 0) {
        return Some(0);
    }
    let tag = u32::from_le_bytes(b[..4].try_into().unwrap());
    (b == sector_bytes(tag, sector)).then_some(tag)
}

type Member = FaultyDevice<CrashDevice>;

fn run_case(case: u64) -> Result<(), String> {
    let mut rng = Rng(case.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed);
    let versions = [
        MetadataVersion::V1_2,
        MetadataVersion::V1_1,
        MetadataVersion::V1_0,
        MetadataVersion::V0_90,
    ];
    let v = versions[rng.below(4) as usize];
    let n = 2 + rng.below(2) as usize;
    let bitmap = match v {
        MetadataVersion::V0_90 => BitmapRequest::None,
        _ if rng.below(3) == 0 => BitmapRequest::None,
        _ => BitmapRequest::Internal {
            chunk_bytes: Some(64 << 10),
        },
    };
    let mut ctls: Vec<FaultControl> = Vec::new();
    let slots = (0..n)
        .map(|i| {
            let (dev, ctl) = FaultyDevice::new(CrashDevice::new(DEV_BYTES));
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
        bitmap,
        name: "crash".into(),
        uuid: [case as u8; 16],
        seed: case,
        ..common::create_options(v, n as u32)
    };
    let what = format!("case {case}: {v} n={n} {bitmap:?}");
    let mut a: Array<Member> =
        Array::create(slots, &opts).map_err(|e| format!("{what}: create: {e}"))?;
    let sectors = a.size() / 512;
    // Candidate values per written sector: index 0 is the durable one.
    let mut cand: std::collections::BTreeMap<u64, Vec<u32>> = Default::default();
    let mut next_tag = 1u32;
    let mut alive = n;
    let ops = 1 + rng.below(24);
    // A second passes per operation: the safe-mode delay expires between them, so the
    // superblocks go clean and dirty again around every write (md's metadata rounds).
    let clock = mdraid::array::VirtualClock::new(1_800_000_000);
    a.set_clock(Box::new(clock.clone()));
    for _ in 0..ops {
        clock.advance(1_000_000_000);
        match rng.below(10) {
            0..=5 => {
                let len = 1 + rng.below(16);
                let start = rng.below(sectors - len);
                let fua = rng.below(4) == 0;
                let mut buf = Vec::with_capacity((len * 512) as usize);
                for s in start..start + len {
                    buf.extend_from_slice(&sector_bytes(next_tag, s));
                }
                let r = if fua {
                    a.write_fua(start * 512, &buf)
                } else {
                    a.write(start * 512, &buf)
                };
                r.map_err(|e| format!("{what}: write failed with a mirror alive: {e}"))?;
                for s in start..start + len {
                    let c = cand.entry(s).or_insert_with(|| vec![0]);
                    if fua {
                        *c = vec![next_tag];
                    } else {
                        c.push(next_tag);
                    }
                }
                next_tag += 1;
            }
            6..=7 => {
                a.flush().map_err(|e| format!("{what}: flush: {e}"))?;
                for c in cand.values_mut() {
                    let last = *c.last().unwrap();
                    *c = vec![last];
                }
            }
            8 if alive > 1 => {
                // A member dies (every later I/O to it fails).
                let victim = rng.below(n as u64) as usize;
                if !ctls[victim].stats().faults() == 0 || ctls[victim].active_rules() == 0 {
                    ctls[victim].kill();
                    alive -= 1;
                }
            }
            9 => {
                // A sync action mid-workload (refused when impossible, e.g. check on one mirror).
                let action = [SyncAction::Check, SyncAction::Repair, SyncAction::Resync]
                    [rng.below(3) as usize];
                let in_sync = a.in_sync_count();
                match a.run_sync(action, &mut |_, _| {}) {
                    // Every write reached every live mirror and nothing was cut yet: a check
                    // or repair finds no mismatch, a resync is never owed (assume-clean).
                    Ok(r) if action == SyncAction::Resync && r.sectors_copied != 0 => {
                        return Err(format!("{what}: resync copied on a clean array: {r:?}"))
                    }
                    // md's process_checks counts a mirror whose read failed as mismatched:
                    // only a member dying during the action explains a mismatch.
                    Ok(r) if r.mismatch_cnt != 0 && a.in_sync_count() == in_sync => {
                        return Err(format!("{what}: {action:?} found mismatches: {r:?}"))
                    }
                    Ok(_) => {}
                    // Refused: check and repair with one in-sync mirror left.
                    Err(e)
                        if action != SyncAction::Resync
                            && a.in_sync_count() < 2
                            && e.to_string().contains("need two in-sync mirrors") => {}
                    Err(e) => {
                        return Err(format!(
                            "{what}: {action:?} with {in_sync} in-sync mirrors failed: {e}"
                        ))
                    }
                }
            }
            _ => {
                let s = rng.below(sectors);
                let mut b = [0u8; 512];
                a.read(s * 512, &mut b)
                    .map_err(|e| format!("{what}: read: {e}"))?;
                let want = cand.get(&s).map(|c| *c.last().unwrap()).unwrap_or(0);
                if tag_of(&b, s) != Some(want) {
                    return Err(format!(
                        "{what}: live read of sector {s} gave {:?}, want {want}",
                        tag_of(&b, s)
                    ));
                }
            }
        }
    }
    // Power cut: every member loses what its cache had not made durable.
    let cut_seed = rng.next();
    let devs: Vec<(String, SparseDevice)> = a
        .abandon()
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m.name, m.dev.into_inner().power_cut(cut_seed ^ i as u64)))
        .collect();
    let (mut b, _rep) = Array::assemble(
        devs,
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .map_err(|e| format!("{what}: assemble after the cut: {e}"))?;
    b.resync().map_err(|e| format!("{what}: resync: {e}"))?;
    for (&s, c) in &cand {
        let mut buf = [0u8; 512];
        b.read(s * 512, &mut buf)
            .map_err(|e| format!("{what}: read after the cut: {e}"))?;
        match tag_of(&buf, s) {
            Some(t) if c.contains(&t) => {}
            got => {
                return Err(format!(
                    "{what}: sector {s} holds {got:?} after the cut, possible {c:?}"
                ))
            }
        }
    }
    // Mirrors identical after the resync.
    let in_sync: Vec<usize> = b
        .members()
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m.state, MemberState::InSync(_)))
        .map(|(i, _)| i)
        .collect();
    let members = b.stop().map_err(|e| format!("{what}: stop: {e}"))?;
    let bytes = (sectors * 512) as usize;
    let mut first: Option<Vec<u8>> = None;
    for i in in_sync {
        let m = &members[i];
        let mut data = vec![0u8; bytes];
        let mut dev = m.dev.clone();
        dev.read_at(m.data_byte(0), &mut data)
            .map_err(|e| e.to_string())?;
        match &first {
            None => first = Some(data),
            Some(f) if *f != data => {
                return Err(format!("{what}: mirror {} differs after resync", m.name))
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn crash_consistency() {
    let long = std::env::var("MDRAID_CRASH_LONG").as_deref() == Ok("1");
    let cases: u64 = std::env::var("MDRAID_CRASH_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if long { 200_000 } else { 10_000 });
    let first: u64 = std::env::var("MDRAID_CRASH_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut failures = Vec::new();
    for case in first..first + cases {
        if let Err(e) = run_case(case) {
            failures.push(e);
            if failures.len() >= 5 {
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases, e.g.:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("crash_consistency: {cases} cases from {first} passed");
}
