//! Kill anywhere during a grow: a bitmap added or removed (also on a degraded array), the number of slots changed (a
//! spare rebuilt into a new slot, or an empty slot dropped), the component size grown (the
//! new region resynced, or not with assume-clean) or shrunk — then a few writes — with a power
//! cut after a random number of member I/Os (every I/O after it fails; whatever the members'
//! caches had not made durable is kept, dropped or torn). The members start full of garbage
//! that differs between them, so only what md's ordering makes durable can make them agree.
//! Must hold for every seed:
//! - the members reassemble;
//! - after the follow-up verbs (resync, the grow asked again where it did not land, the
//!   spares' recovery) the array has the shape asked for;
//! - every write flushed before the grow reads back, every later one holds its old or new
//!   value;
//! - `check` finds mismatch_cnt 0 (the bitmap, present from its first write, named every chunk
//!   a cut write touched; a grown region was resynced), unless the grow was assume-clean.
//!
//! The uncut run of every seed also asserts that a bitmap grown on a clean, complete array
//! starts with no dirty bit.
//!
//! `MDRAID_GROW_CASES` sets the number of seeds (default 400), `MDRAID_GROW_FIRST` the first
//! (replay one with `MDRAID_GROW_CASES=1`).

mod common;

use mdraid::array::machine::{BitmapGrow, GrowRequest, GrowSize};
use mdraid::array::{
    AddOptions, Array, AssembleOptions, CreateOptions, CreateSlot, MemberState, SyncAction,
};
use mdraid::device::{BlockDevice, CrashDevice, DeviceError, IoOp, SparseDevice};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;
use mdraid::splitmix::SplitMix64 as Rng;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

const DEV_BYTES: u64 = 3 << 20;
const START_KIB: u64 = 1024;

/// A member that stops at the power cut: the array's I/Os share one budget, and every I/O
/// after it runs out fails without reaching the device.
struct Cut {
    dev: CrashDevice,
    budget: Rc<Cell<u64>>,
    ops: Rc<Cell<u64>>,
}

impl Cut {
    fn take(&self, op: IoOp, offset: u64) -> Result<(), DeviceError> {
        self.ops.set(self.ops.get() + 1);
        match self.budget.get() {
            0 => Err(DeviceError::Io {
                op,
                offset,
                errno: 5,
            }),
            b => {
                self.budget.set(b - 1);
                Ok(())
            }
        }
    }
}

impl BlockDevice for Cut {
    fn size(&self) -> u64 {
        self.dev.size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.take(IoOp::Read, offset)?;
        self.dev.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.take(IoOp::Write, offset)?;
        self.dev.write_at(offset, buf)
    }
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.take(IoOp::Write, offset)?;
        self.dev.write_at_fua(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.take(IoOp::Flush, 0)?;
        self.dev.flush()
    }
}

fn sector_bytes(tag: u32, sector: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    for (i, c) in b.chunks_mut(16).enumerate() {
        c[..4].copy_from_slice(&tag.to_le_bytes());
        c[4..12].copy_from_slice(&sector.to_le_bytes());
        c[12..16].copy_from_slice(&(i as u32).to_le_bytes());
    }
    b
}

fn tag_of(b: &[u8], sector: u64) -> Option<u32> {
    let tag = u32::from_le_bytes(b[..4].try_into().unwrap());
    (b == sector_bytes(tag, sector)).then_some(tag)
}

/// What one seed does.
struct Plan {
    version: MetadataVersion,
    bitmap: bool,
    /// Slots at creation; the last `missing` ones start empty.
    slots: u32,
    missing: u32,
    spares: u32,
    grow: GrowRequest,
    pre_writes: u64,
    post_writes: u64,
}

fn plan(case: u64) -> Plan {
    let mut rng = Rng(case.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x96_0a7e);
    let version = [
        MetadataVersion::V1_2,
        MetadataVersion::V1_1,
        MetadataVersion::V1_0,
        MetadataVersion::V0_90,
    ][rng.below(4) as usize];
    let bitmap = rng.below(2) == 0;
    let (mut slots, mut missing, mut spares) = (2, 0, 0);
    let grow = match rng.below(4) {
        0 => GrowRequest::Bitmap(if bitmap {
            BitmapGrow::None
        } else {
            BitmapGrow::Internal {
                chunk_bytes: [None, Some(64 << 10), Some(4 << 10)][rng.below(3) as usize],
            }
        }),
        1 if rng.below(2) == 0 => {
            spares = 1;
            GrowRequest::RaidDisks { n: 3, force: false }
        }
        1 => {
            slots = 3;
            missing = 1;
            GrowRequest::RaidDisks { n: 2, force: false }
        }
        2 => GrowRequest::Size {
            size: if rng.below(2) == 0 {
                GrowSize::Max
            } else {
                GrowSize::Sectors(2 * (START_KIB + 64 + rng.below(800)))
            },
            assume_clean: rng.below(4) == 0,
        },
        _ => GrowRequest::Size {
            size: GrowSize::Sectors(2 * (START_KIB / 2 + rng.below(START_KIB / 2))),
            assume_clean: false,
        },
    };
    if matches!(grow, GrowRequest::Bitmap(_)) && rng.below(3) == 0 {
        // On a degraded array (every bit of a grown bitmap set).
        slots = 3;
        missing = 1;
    }
    Plan {
        version,
        bitmap,
        slots,
        missing,
        spares,
        grow,
        pre_writes: 1 + rng.below(12),
        post_writes: rng.below(6),
    }
}

/// Runs a seed with a power cut after `budget` member I/Os of the grow and what follows it
/// (`u64::MAX`: no cut). Returns the I/Os the grow and the writes after it took.
fn run(case: u64, budget: u64) -> Result<u64, String> {
    let p = plan(case);
    let what = format!(
        "case {case} (cut after {budget} I/Os): {} bitmap={} slots={}-{} spares={} {:?}",
        p.version, p.bitmap, p.slots, p.missing, p.spares, p.grow
    );
    let mut rng = Rng(case ^ 0x0dd_ba11);
    let budget_cell = Rc::new(Cell::new(u64::MAX));
    let ops = Rc::new(Cell::new(0));
    let devices = (p.slots - p.missing + p.spares) as usize;
    let mut slots = Vec::new();
    for i in 0..devices {
        let mut dev = CrashDevice::new(DEV_BYTES);
        // Garbage, different on every member.
        let mut g = Rng(case ^ ((i as u64 + 1) * 0x1234_5678));
        let junk: Vec<u8> = (0..DEV_BYTES / 8)
            .flat_map(|_| g.next().to_le_bytes())
            .collect();
        dev.write_durable(0, &junk).map_err(|e| e.to_string())?;
        let dev = Cut {
            dev,
            budget: budget_cell.clone(),
            ops: ops.clone(),
        };
        slots.push(CreateSlot::Device {
            name: format!("m{i}"),
            dev,
            write_mostly: false,
            failfast: false,
        });
        if i + 1 == (p.slots - p.missing) as usize {
            for _ in 0..p.missing {
                slots.push(CreateSlot::Missing);
            }
        }
    }
    let opts = CreateOptions {
        bitmap: if p.bitmap {
            BitmapRequest::Internal {
                chunk_bytes: Some(64 << 10),
            }
        } else {
            BitmapRequest::None
        },
        name: "grow".into(),
        assume_clean: false,
        size_kib: Some(START_KIB),
        uuid: [case as u8 | 1; 16],
        seed: case,
        ..common::create_options(p.version, p.slots)
    };
    let mut a: Array<Cut> = Array::create(slots, &opts).map_err(|e| format!("{what}: {e}"))?;
    let clock = mdraid::array::VirtualClock::new(1_800_000_000);
    a.set_clock(Box::new(clock.clone()));
    // The creation resync makes the mirrors agree on the old region.
    a.resync()
        .map_err(|e| format!("{what}: first resync: {e}"))?;
    let old_sectors = a.size() / 512;
    let mut cand: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut tag = 1u32;
    // Every sector of the old region gets a known value first.
    let all: Vec<u8> = (0..old_sectors)
        .flat_map(|s| sector_bytes(tag, s))
        .collect();
    a.write(0, &all)
        .map_err(|e| format!("{what}: write: {e}"))?;
    for s in 0..old_sectors {
        cand.insert(s, vec![tag]);
    }
    tag += 1;
    let mut write = |a: &mut Array<Cut>, rng: &mut Rng, sectors: u64, durable: bool| {
        let len = 1 + rng.below(16);
        let start = rng.below(sectors - len);
        let buf: Vec<u8> = (start..start + len)
            .flat_map(|s| sector_bytes(tag, s))
            .collect();
        let r = a.write(start * 512, &buf);
        for s in start..start + len {
            let c = cand.entry(s).or_default();
            if durable {
                *c = vec![tag];
            } else {
                c.push(tag);
            }
        }
        tag += 1;
        r
    };
    for _ in 0..p.pre_writes {
        clock.advance(300_000_000);
        write(&mut a, &mut rng, old_sectors, true).map_err(|e| format!("{what}: write: {e}"))?;
    }
    a.flush().map_err(|e| format!("{what}: flush: {e}"))?;
    clock.advance(1_000_000_000);
    a.tick().map_err(|e| format!("{what}: tick: {e}"))?;
    let complete = p.missing == 0;

    // The grow and a few writes, cut after `budget` I/Os.
    ops.set(0);
    budget_cell.set(budget);
    let grown = a.grow(p.grow, &mut |_, _| {});
    if budget == u64::MAX {
        grown.map_err(|e| format!("{what}: grow: {e}"))?;
        if let (GrowRequest::Bitmap(BitmapGrow::Internal { .. }), true) = (p.grow, complete) {
            let bm = a.bitmap().ok_or_else(|| format!("{what}: no bitmap"))?;
            if bm.dirty_chunks() != 0 {
                return Err(format!(
                    "{what}: the grown bitmap has {} dirty chunks on a clean array",
                    bm.dirty_chunks()
                ));
            }
        }
    }
    let sectors = a.size() / 512;
    for _ in 0..p.post_writes {
        clock.advance(100_000_000);
        let r = write(&mut a, &mut rng, sectors.min(old_sectors), false);
        if budget == u64::MAX {
            r.map_err(|e| format!("{what}: write after grow: {e}"))?;
        }
    }
    let used = ops.get();
    budget_cell.set(0);

    // Power cut.
    let cut_seed = rng.next();
    let devs: Vec<(String, SparseDevice)> = a
        .abandon()
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let mut d = m.dev.dev;
            (m.name, d.power_cut(cut_seed ^ i as u64))
        })
        .collect();
    let (mut b, report) = Array::assemble(
        devs,
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .map_err(|e| format!("{what}: assemble after the cut: {e}"))?;
    b.resync().map_err(|e| format!("{what}: resync: {e}"))?;
    // A device assembly left out (one that missed more than one round) comes back with add.
    let mut kicked = Vec::new();
    for k in report.kicked {
        kicked.push(format!("{} ({:?})", k.name, k.reason));
        b.add_member(k.name, k.dev, &AddOptions::default(), &mut |_, _| {})
            .map_err(|e| format!("{what}: add back: {e}"))?;
    }
    let what = format!("{what} kicked={kicked:?}");
    if std::env::var_os("GROW_DEBUG").is_some() {
        eprintln!("{what}");
    }
    // The grow again where it did not land.
    let again = match p.grow {
        GrowRequest::Bitmap(BitmapGrow::None) => b.bitmap().is_some(),
        GrowRequest::Bitmap(_) => b.bitmap().is_none(),
        GrowRequest::RaidDisks { n, .. } => b.raid_disks() != n,
        GrowRequest::Size { .. } => true,
    };
    if again {
        b.grow(p.grow, &mut |_, _| {})
            .map_err(|e| format!("{what}: grow again: {e}"))?;
    }
    // md's recovery check comes first in every sync action.
    let r = b
        .run_sync(SyncAction::Check, &mut |_, _| {})
        .map_err(|e| format!("{what}: check: {e}"))?;
    let assume_clean = matches!(
        p.grow,
        GrowRequest::Size {
            assume_clean: true,
            ..
        }
    );
    if r.mismatch_cnt != 0 && !assume_clean {
        return Err(format!("{what}: check found {} mismatches", r.mismatch_cnt));
    }
    // The shape asked for.
    match p.grow {
        GrowRequest::Bitmap(BitmapGrow::None) if b.bitmap().is_some() => {
            return Err(format!("{what}: the bitmap is still there"))
        }
        GrowRequest::Bitmap(BitmapGrow::Internal { .. }) if b.bitmap().is_none() => {
            return Err(format!("{what}: no bitmap"))
        }
        GrowRequest::RaidDisks { n, .. } => {
            let in_sync = b
                .members()
                .iter()
                .filter(|m| matches!(m.state, MemberState::InSync(_)))
                .count() as u32;
            if b.raid_disks() != n || in_sync != n {
                return Err(format!(
                    "{what}: {} slots, {in_sync} in sync, want {n}",
                    b.raid_disks()
                ));
            }
        }
        GrowRequest::Size {
            size: GrowSize::Sectors(s),
            ..
        } if b.size() / 512 != s => {
            return Err(format!("{what}: size {} sectors, want {s}", b.size() / 512))
        }
        _ => {}
    }
    // Every write.
    let now_sectors = b.size() / 512;
    for (&s, c) in cand.iter().filter(|(&s, _)| s < now_sectors) {
        let mut buf = [0u8; 512];
        b.read(s * 512, &mut buf)
            .map_err(|e| format!("{what}: read: {e}"))?;
        match tag_of(&buf, s) {
            Some(t) if c.contains(&t) => {}
            got => return Err(format!("{what}: sector {s} holds {got:?}, possible {c:?}")),
        }
    }
    b.stop().map_err(|e| format!("{what}: stop: {e}"))?;
    Ok(used)
}

#[test]
fn grow_cut_anywhere() {
    let cases: u64 = std::env::var("MDRAID_GROW_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let first: u64 = std::env::var("MDRAID_GROW_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut failures = Vec::new();
    for case in first..first + cases {
        let r = run(case, u64::MAX).and_then(|ios| {
            let mut rng = Rng(case ^ 0xc07);
            run(case, rng.below(ios + 1))
        });
        if let Err(e) = r {
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
    eprintln!("grow_cut_anywhere: {cases} cases from {first} passed");
}
