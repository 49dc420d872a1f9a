//! Interrupted recoveries never end up "in sync" with wrong data. Each case: a 2-mirror array
//! (metadata 1.2/1.1/1.0/0.90, with or without a bitmap) takes writes, loses its second
//! member, takes writes degraded, then a blank device is added (or, with a bitmap, the old
//! one re-added) and the process dies at its k-th member write or flush (every device stops
//! at once, as with kill -9). Then, at random: add, re-add, assemble + recovery, or resync,
//! maybe after more degraded writes, and the verbs needed to finish. After every step:
//! - every member assembly takes as in sync holds exactly the data written (the model);
//! - the array reads back the model;
//! - 1.x: the device ends in sync.
//!
//! `MDRAID_INTERRUPT_CASES` sets the number of cases (default 1,000, seeded by index);
//! `MDRAID_INTERRUPT_FIRST` starts elsewhere (replay a failing case by its number).

mod common;

use mdraid::array::SyncAction;
use mdraid::array::{
    AddOptions, Array, AssembleOptions, CreateOptions, CreateSlot, MemberState, VirtualClock,
};
use mdraid::device::{BlockDevice, DeviceError, IoOp, MemDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;
use mdraid::splitmix::SplitMix64 as Rng;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

const DEV_BYTES: usize = 3 << 19;

/// A device over shared storage that stops for good once the shared budget of writes and
/// flushes is spent (a process killed: nothing after the cut reaches any device).
#[derive(Clone, Debug)]
struct Cut {
    data: Rc<RefCell<MemDevice>>,
    budget: Rc<Cell<u64>>,
}

impl Cut {
    fn spend(&self, op: IoOp, offset: u64) -> Result<(), DeviceError> {
        match self.budget.get() {
            0 => Err(DeviceError::Io {
                op,
                offset,
                errno: 5,
            }),
            n => {
                self.budget.set(n - 1);
                Ok(())
            }
        }
    }
}

impl BlockDevice for Cut {
    fn size(&self) -> u64 {
        self.data.borrow().size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        if self.budget.get() == 0 {
            return Err(DeviceError::Io {
                op: IoOp::Read,
                offset,
                errno: 5,
            });
        }
        self.data.borrow_mut().read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.spend(IoOp::Write, offset)?;
        self.data.borrow_mut().write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.spend(IoOp::Flush, 0)?;
        self.data.borrow_mut().flush()
    }
}

struct World {
    devs: Vec<Cut>,
    model: Vec<u8>,
    what: String,
}

impl World {
    fn dev(&self, i: usize) -> (String, Cut) {
        (format!("m{i}"), self.devs[i].clone())
    }
    fn run_opts() -> AssembleOptions {
        AssembleOptions {
            run: true,
            ..Default::default()
        }
    }
    fn write(&mut self, a: &mut Array<Cut>, rng: &mut Rng) -> Result<(), String> {
        let sectors = self.model.len() as u64 / 512;
        let len = 1 + rng.below(64.min(sectors - 1));
        let start = rng.below(sectors - len);
        let buf: Vec<u8> = (0..len * 512)
            .map(|i| (rng.next() as u8) ^ (i as u8))
            .collect();
        a.write(start * 512, &buf)
            .map_err(|e| format!("{}: write: {e}", self.what))?;
        let at = (start * 512) as usize;
        self.model[at..at + buf.len()].copy_from_slice(&buf);
        Ok(())
    }
    /// Assembles what the devices say (read-only, writes nothing) and checks that every
    /// in-sync member holds the model and the array reads it back. Returns whether `target`
    /// is in sync.
    fn check(&self, target: usize, step: &str) -> Result<bool, String> {
        let mut devs = vec![self.dev(0)];
        let mut t = self.dev(target);
        if mdraid::format::probe::probe(&mut t.1, None).is_ok() {
            devs.push(t);
        }
        let opts = AssembleOptions {
            run: true,
            readonly: true,
            ..Default::default()
        };
        let (mut a, _) = Array::assemble(devs, &opts)
            .map_err(|e| format!("{} after {step}: assemble: {e}", self.what))?;
        let mut target_in_sync = false;
        let names: Vec<(String, MemberState, u64)> = a
            .members()
            .iter()
            .map(|m| (m.name.clone(), m.state, m.sb.data_offset()))
            .collect();
        for (name, state, data_offset) in names {
            if !matches!(state, MemberState::InSync(_)) {
                continue;
            }
            let i: usize = name[1..].parse().unwrap();
            let mut got = vec![0u8; self.model.len()];
            self.devs[i]
                .data
                .borrow_mut()
                .read_at(data_offset * 512, &mut got)
                .unwrap();
            if got != self.model {
                let first = got.iter().zip(&self.model).position(|(x, y)| x != y);
                return Err(format!(
                    "{} after {step}: {name} is in sync but differs from the data written \
                     (first byte {first:?})",
                    self.what
                ));
            }
            target_in_sync |= i == target;
        }
        let mut got = vec![0u8; self.model.len()];
        a.read(0, &mut got)
            .map_err(|e| format!("{} after {step}: read: {e}", self.what))?;
        if got != self.model {
            return Err(format!(
                "{} after {step}: the array reads wrong data",
                self.what
            ));
        }
        Ok(target_in_sync)
    }
}

fn run_case(case: u64) -> Result<(), String> {
    let mut rng = Rng(case.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1e57);
    let versions = [
        MetadataVersion::V1_2,
        MetadataVersion::V1_1,
        MetadataVersion::V1_0,
        MetadataVersion::V0_90,
    ];
    let v = versions[rng.below(4) as usize];
    let bitmap = v != MetadataVersion::V0_90 && rng.below(3) != 0;
    let budget = Rc::new(Cell::new(u64::MAX));
    let devs: Vec<Cut> = (0..3)
        .map(|_| Cut {
            data: Rc::new(RefCell::new(MemDevice::new(DEV_BYTES))),
            budget: budget.clone(),
        })
        .collect();
    let re_add = bitmap && rng.below(2) == 0;
    let target = if re_add { 1 } else { 2 };
    let k = 1 + rng.below(160);
    let verb = rng.below(4);
    let what = format!("case {case}: {v} bitmap={bitmap} re_add={re_add} cut at {k} verb {verb}");
    let slots = (0..2)
        .map(|i| CreateSlot::Device {
            name: format!("m{i}"),
            dev: devs[i].clone(),
            write_mostly: false,
            failfast: false,
        })
        .collect();
    let opts = CreateOptions {
        bitmap: if bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(64 << 10),
            }
        } else {
            BitmapRequest::None
        },
        name: "intr".into(),
        uuid: [case as u8 | 1; 16],
        seed: case,
        ..common::create_options(v, 2)
    };
    let mut a: Array<Cut> =
        Array::create(slots, &opts).map_err(|e| format!("{what}: create: {e}"))?;
    let mut w = World {
        model: vec![0u8; a.size() as usize],
        devs,
        what,
    };
    // Time passes between writes (a second each): the safe-mode delay expires, so the
    // superblocks go clean and dirty again around them, and those rounds can be cut too.
    let clock = VirtualClock::new(1_800_000_000);
    a.set_clock(Box::new(clock.clone()));
    for _ in 0..1 + rng.below(4) {
        clock.advance(1_000_000_000);
        w.write(&mut a, &mut rng)?;
    }
    let e = |s: &str, w: &World| format!("{}: {s}", w.what);
    a.fail_member("m1")
        .map_err(|x| e(&format!("fail: {x}"), &w))?;
    a.remove_member("m1", None)
        .map_err(|x| e(&format!("remove: {x}"), &w))?;
    for _ in 0..rng.below(3) {
        clock.advance(1_000_000_000);
        w.write(&mut a, &mut rng)?;
    }
    // The rebuild, killed at the k-th member write or flush.
    budget.set(k);
    let (name, dev) = w.dev(target);
    let _ = a.add_member(name, dev, &AddOptions::default(), &mut |_, _| {});
    let _ = a.stop();
    budget.set(u64::MAX);
    w.check(target, "the cut")?;

    // The next command(s).
    clock.advance(10_000_000_000);
    if rng.below(3) == 0 {
        let (mut d, _) = Array::assemble(vec![w.dev(0)], &World::run_opts())
            .map_err(|x| e(&format!("degraded assemble: {x}"), &w))?;
        d.set_clock(Box::new(clock.clone()));
        for _ in 0..1 + rng.below(3) {
            clock.advance(1_000_000_000);
            w.write(&mut d, &mut rng)?;
        }
        d.stop().map_err(|x| e(&format!("stop: {x}"), &w))?;
        w.check(target, "degraded writes")?;
    }
    let add = |w: &World, re_add_only: bool| -> Result<(), String> {
        let (mut d, _) = Array::assemble(vec![w.dev(0)], &World::run_opts())
            .map_err(|x| e(&format!("assemble for add: {x}"), w))?;
        d.set_clock(Box::new(clock.clone()));
        let (name, dev) = w.dev(target);
        let opts = AddOptions {
            re_add_only,
            ..Default::default()
        };
        if let Err(x) = d.add_member(name, dev, &opts, &mut |_, _| {}) {
            if !re_add_only {
                return Err(e(&format!("add: {x}"), w));
            }
        }
        d.stop().map_err(|x| e(&format!("stop: {x}"), w))?;
        Ok(())
    };
    let both = |w: &World| {
        let mut devs = vec![w.dev(0)];
        let mut t = w.dev(target);
        if mdraid::format::probe::probe(&mut t.1, None).is_ok() {
            devs.push(t);
        }
        devs
    };
    match verb {
        0 => add(&w, false)?,
        1 => add(&w, true)?,
        _ => {
            let (mut d, _) = Array::assemble(both(&w), &World::run_opts())
                .map_err(|x| e(&format!("assemble: {x}"), &w))?;
            d.set_clock(Box::new(clock.clone()));
            let kind = if verb == 2 {
                SyncAction::Recovery
            } else {
                SyncAction::Resync
            };
            let _ = d.run_sync(kind, &mut |_, _| {});
            d.stop().map_err(|x| e(&format!("stop: {x}"), &w))?;
        }
    }
    let mut in_sync = w.check(target, "the verb")?;
    // Whatever else it takes: recovery of an assembled member, else add it again.
    for round in 0..3 {
        if in_sync {
            break;
        }
        clock.advance(1_000_000_000);
        let (mut d, _) = Array::assemble(both(&w), &World::run_opts())
            .map_err(|x| e(&format!("assemble: {x}"), &w))?;
        d.set_clock(Box::new(clock.clone()));
        let present = d.members().iter().any(|m| m.name == format!("m{target}"));
        if present {
            let _ = d.run_sync(SyncAction::Recovery, &mut |_, _| {});
            d.stop().map_err(|x| e(&format!("stop: {x}"), &w))?;
        } else {
            d.stop().map_err(|x| e(&format!("stop: {x}"), &w))?;
            add(&w, false)?;
        }
        in_sync = w.check(target, &format!("finishing round {round}"))?;
    }
    if !in_sync && v != MetadataVersion::V0_90 {
        return Err(e("the device never got in sync", &w));
    }
    Ok(())
}

#[test]
fn interrupted_recoveries_never_end_in_sync_with_wrong_data() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let n = env("MDRAID_INTERRUPT_CASES", 1000);
    let first = env("MDRAID_INTERRUPT_FIRST", 0);
    let mut failures = Vec::new();
    for case in first..first + n {
        if let Err(m) = run_case(case) {
            failures.push(m);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed (replay: MDRAID_INTERRUPT_FIRST=<case> MDRAID_INTERRUPT_CASES=1):\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}

fn array_of_two(budget: &Rc<Cell<u64>>, bitmap: bool) -> (Array<Cut>, Vec<Cut>) {
    let devs: Vec<Cut> = (0..3)
        .map(|_| Cut {
            data: Rc::new(RefCell::new(MemDevice::new(DEV_BYTES))),
            budget: budget.clone(),
        })
        .collect();
    let slots = (0..2)
        .map(|i| CreateSlot::Device {
            name: format!("m{i}"),
            dev: devs[i].clone(),
            write_mostly: false,
            failfast: false,
        })
        .collect();
    let opts = CreateOptions {
        bitmap: if bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(64 << 10),
            }
        } else {
            BitmapRequest::None
        },
        name: "t".into(),
        uuid: [3; 16],
        seed: 3,
        ..common::create_options(MetadataVersion::V1_2, 2)
    };
    (Array::create(slots, &opts).unwrap(), devs)
}

#[test]
fn assembly_resumes_an_interrupted_recovery_from_its_offset() {
    let budget = Rc::new(Cell::new(u64::MAX));
    let (mut a, devs) = array_of_two(&budget, false);
    let data: Vec<u8> = (0..a.size()).map(|i| (i / 512) as u8 ^ 0x5a).collect();
    a.write(0, &data).unwrap();
    a.fail_member("m1").unwrap();
    a.remove_member("m1", None).unwrap();
    a.add_member(
        "m2".into(),
        devs[2].clone(),
        &AddOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    a.stop().unwrap();
    // The rebuild of m2 stopped at r: its superblock says so and nothing is past it.
    let sectors = data.len() as u64 / 512;
    let r = sectors / 3 + 1;
    {
        let mut d = devs[2].data.borrow_mut();
        let mut found = mdraid::format::probe::probe(&mut *d, None).unwrap();
        let mdraid::format::probe::Superblock::V1(s, _) = &mut found.sb else {
            panic!("1.2")
        };
        s.feature_map |= mdraid::format::sb1::FEATURE_RECOVERY_OFFSET;
        s.recovery_offset = r;
        let from = (s.data_offset + r) * 512;
        found.sb.update_checksum();
        d.write_at(found.sector * 512, &found.sb.to_bytes())
            .unwrap();
        let tail = vec![0u8; (d.size() - from) as usize];
        d.write_at(from, &tail).unwrap();
    }
    let devs2 = vec![
        ("m0".to_string(), devs[0].clone()),
        ("m2".to_string(), devs[2].clone()),
    ];
    let (mut b, _) = Array::assemble(devs2, &AssembleOptions::default()).unwrap();
    assert_eq!(
        b.in_sync_count(),
        1,
        "m2 is not in sync before recovery ends"
    );
    assert_eq!(b.members()[1].rebuild, Some((1, r)));
    let rep = b.run_sync(SyncAction::Recovery, &mut |_, _| {}).unwrap();
    assert_eq!(rep.sectors_copied, sectors - r, "only from the offset on");
    assert_eq!(b.in_sync_count(), 2);
    b.stop().unwrap();
    let mut got = vec![0u8; data.len()];
    devs[2]
        .data
        .borrow_mut()
        .read_at(2048 * 512, &mut got)
        .unwrap();
    assert!(got == data, "m2 holds the data");
}

#[test]
fn an_array_whose_members_were_all_removed_answers_without_panicking() {
    let budget = Rc::new(Cell::new(u64::MAX));
    let (mut a, devs) = array_of_two(&budget, true);
    let version = a.version();
    let uuid = a.lead_superblock().uuid();
    // Every device dies under a write: both members fail.
    budget.set(0);
    assert!(a.write(0, &[1u8; 4096]).is_err());
    budget.set(u64::MAX);
    assert!(a.members().iter().all(|m| m.state == MemberState::Faulty));
    a.remove_member("m0", None).ok();
    a.remove_member("m1", None).ok();
    assert!(a.members().is_empty());
    assert_eq!(a.version(), version);
    assert_eq!(a.lead_superblock().uuid(), uuid);
    let _ = a.detail_info("/dev/md0", None);
    assert_eq!(a.in_sync_count(), 0);
    assert!(a.is_degraded());
    let _ = (
        a.raid_disks(),
        a.size(),
        a.events(),
        a.is_dirty(),
        a.needs_resync(),
    );
    let _ = (a.bitmap().is_some(), a.last_sync(), a.counters(0));
    let mut buf = [0u8; 512];
    assert!(a.read(0, &mut buf).is_err());
    assert!(a.write(0, &buf).is_err());
    let _ = a.flush();
    for kind in [
        SyncAction::Resync,
        SyncAction::Recovery,
        SyncAction::Check,
        SyncAction::Repair,
    ] {
        assert!(a.run_sync(kind, &mut |_, _| {}).is_err() || kind == SyncAction::Resync);
    }
    assert!(a.fail_member("m0").is_err());
    assert!(a.remove_member("m9", None).is_err());
    let _ = a.add_member(
        "m2".into(),
        devs[2].clone(),
        &AddOptions::default(),
        &mut |_, _| {},
    );
    let _ = a.stop();
}
