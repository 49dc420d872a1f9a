//! End-to-end benchmarks behind `mdraid bench --json`.
//!
//! Each function measures a RAID1 configuration and its baseline in the same run and returns a
//! [`BenchRatio`] (value, baseline, ratio, the ratio it should reach). Two run on virtual time
//! (deterministic: [`sim_read_scaling`], [`seqwrite_vs_limit`]); one on real files through
//! io_uring ([`uring_randread_qd32_vs_single`], a few seconds of wall time, machine dependent).
//!
//! The virtual-time loop drives the real engine over [`LatencyDevice`] members: a member I/O
//! issued at time `t` starts when its member is free (one I/O at a time per member, FIFO) and
//! completes after the member's [`ServiceModel`] service time; the loop jumps to the earliest
//! completion, feeds it to the engine and keeps `qd` array requests outstanding.

use super::{member_span, DriverError};
use crate::device::{BlockDevice, DeviceError, LatencyDevice, ServiceModel, SparseDevice};
use crate::raid1::{
    ArrayRequest, BufRef, IoBuf, MemberError, MemberIo, MemberIoKind, Raid1, Raid1Config,
};
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// One measurement against its baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRatio {
    /// Short name (`sim_read_scaling_2`, …).
    pub name: String,
    /// What was measured, in `unit`.
    pub value: f64,
    /// The baseline, in `unit`.
    pub baseline: f64,
    /// `value / baseline`.
    pub ratio: f64,
    /// The ratio the configuration should reach.
    pub target: f64,
    /// Unit of `value` and `baseline` (`IOPS`, `MiB/s`).
    pub unit: &'static str,
    /// Array requests completed in the measured run(s).
    pub ops: u64,
    /// Time measured: virtual for simulations, wall clock for io_uring (ns).
    pub elapsed_ns: u64,
    /// What the baseline is.
    pub baseline_desc: &'static str,
}

impl BenchRatio {
    fn finish(mut self) -> Self {
        self.ratio = if self.baseline > 0.0 {
            self.value / self.baseline
        } else {
            0.0
        };
        self
    }
    /// Whether the ratio reaches the target.
    pub fn passed(&self) -> bool {
        self.ratio >= self.target
    }
    /// One JSON object (no dependencies: numbers and plain ASCII strings only).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"name\":\"{}\",\"unit\":\"{}\",\"value\":{:.3},\"baseline\":{:.3},\"ratio\":{:.4},\
             \"target\":{},\"passed\":{},\"ops\":{},\"elapsed_ns\":{},\"baseline_desc\":\"{}\"}}",
            self.name,
            self.unit,
            self.value,
            self.baseline,
            self.ratio,
            self.target,
            self.passed(),
            self.ops,
            self.elapsed_ns,
            self.baseline_desc
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Virtual-time loop.

/// A member that stores nothing: writes vanish, reads return zeros (simulated bandwidth only).
#[derive(Clone, Copy, Debug)]
struct NullDevice(u64);

impl BlockDevice for NullDevice {
    fn size(&self) -> u64 {
        self.0
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        crate::device::check_range(crate::device::IoOp::Read, offset, buf.len(), self.0)?;
        buf.fill(0);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        crate::device::check_range(crate::device::IoOp::Write, offset, buf.len(), self.0)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

/// Runs `ops` array requests from `next(i) -> (is_write, sector, sectors)` with `qd`
/// outstanding over `devs` on virtual time; returns the virtual time at the last completion.
fn virtual_run<D: BlockDevice>(
    engine: &mut Raid1,
    devs: &mut [LatencyDevice<D>],
    qd: usize,
    buf_bytes: usize,
    ops: u64,
    mut next: impl FnMut(u64) -> (bool, u64, u64),
) -> Result<u64, DriverError> {
    let mut bufs: Vec<Vec<u8>> = (0..qd).map(|_| vec![0u8; buf_bytes]).collect();
    let mut free: Vec<usize> = (0..qd).rev().collect();
    let mut slot_of = std::collections::HashMap::new();
    let mut inflight: Vec<(u64, MemberIo, Result<(), MemberError>)> = Vec::new();
    let (mut now, mut submitted, mut completed) = (0u64, 0u64, 0u64);
    let mut submit = |engine: &mut Raid1,
                      free: &mut Vec<usize>,
                      slot_of: &mut std::collections::HashMap<_, usize>,
                      submitted: &mut u64| {
        while *submitted < ops {
            let Some(b) = free.pop() else { break };
            let (write, sector, sectors) = next(*submitted);
            let req = if write {
                ArrayRequest::write(sector, sectors, BufRef(b as u64))
            } else {
                ArrayRequest::read(sector, sectors, BufRef(b as u64))
            };
            let id = engine.handle_submit(req)?;
            slot_of.insert(id, b);
            *submitted += 1;
        }
        Ok::<_, DriverError>(())
    };
    submit(engine, &mut free, &mut slot_of, &mut submitted)?;
    while completed < ops {
        let mut moved = false;
        while let Some(io) = engine.poll_member_io() {
            moved = true;
            let dev = devs
                .get_mut(io.member)
                .ok_or(DriverError::InvalidConfig("member out of range"))?;
            if dev.now() < now {
                dev.advance(now - dev.now());
            }
            let r = match (io.kind, io.buf) {
                (MemberIoKind::Read | MemberIoKind::Write, IoBuf::Caller { buf, offset }) => {
                    let (off, len) = member_span(0, io.sector, io.sectors)
                        .ok_or(DriverError::InvalidConfig("span"))?;
                    let b = bufs
                        .get_mut(buf.0 as usize)
                        .and_then(|b| b.get_mut(offset as usize..offset as usize + len))
                        .ok_or(DriverError::InvalidConfig("buffer"))?;
                    if io.kind == MemberIoKind::Read {
                        dev.read_at(off, b)
                    } else {
                        dev.write_at(off, b)
                    }
                }
                (MemberIoKind::Flush, _) => dev.flush(),
                _ => Ok(()),
            };
            inflight.push((dev.now(), io, r.map_err(MemberError::from)));
        }
        while let Some(ev) = engine.poll_event() {
            moved = true;
            engine.handle_metadata_done(ev.token())?;
        }
        while let Some((id, r)) = engine.poll_completion() {
            moved = true;
            r.map_err(|error| DriverError::Array {
                error,
                members: Vec::new(),
            })?;
            completed += 1;
            if let Some(b) = slot_of.remove(&id) {
                free.push(b);
            }
            submit(engine, &mut free, &mut slot_of, &mut submitted)?;
        }
        if moved {
            continue;
        }
        // Jump to the earliest member completion (ties: issue order).
        let Some(i) = (0..inflight.len()).min_by_key(|&i| inflight[i].0) else {
            return Err(DriverError::Stalled);
        };
        let (t, io, r) = inflight.remove(i);
        now = now.max(t);
        engine.handle_timeout(now);
        engine.handle_member_completion(io.id, r)?;
    }
    Ok(now)
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Random 4 KiB read IOPS of `slots` mirrors (fixed service time, virtual clock).
fn sim_randread_iops(
    slots: usize,
    qd: usize,
    ops: u64,
    service_ns: u64,
) -> Result<(f64, u64), DriverError> {
    let member_bytes: u64 = 1 << 30;
    let sectors = member_bytes / crate::SECTOR_SIZE;
    let mut cfg = Raid1Config::new(slots, sectors);
    cfg.max_requests = qd;
    let mut engine = Raid1::new(cfg)?;
    let mut devs: Vec<_> = (0..slots)
        .map(|_| {
            LatencyDevice::new(
                SparseDevice::new(member_bytes),
                ServiceModel::fixed(service_ns),
            )
        })
        .collect();
    let mut rng = xorshift(0x5eed_0001 + slots as u64);
    let blocks = sectors / 8;
    let t = virtual_run(&mut engine, &mut devs, qd, 4096, ops, |_| {
        (false, (rng() % blocks) * 8, 8)
    })?;
    Ok((ops as f64 * 1e9 / t.max(1) as f64, t))
}

/// Read scaling: random 4 KiB reads on `n_mirrors` mirrors against one member, each member a
/// [`LatencyDevice`] with a fixed 100 µs service time serving one I/O at a time, 64 requests
/// outstanding, virtual time. Target: 1.95 for 2 mirrors, 3.8 for 4 (0.95·n in general).
pub fn sim_read_scaling(n_mirrors: usize) -> Result<BenchRatio, DriverError> {
    let n = n_mirrors.clamp(1, crate::raid1::MAX_SLOTS);
    let (qd, ops, service) = (64, 20_000 * n as u64, 100_000);
    let (base, _) = sim_randread_iops(1, qd, ops, service)?;
    let (iops, t) = sim_randread_iops(n, qd, ops, service)?;
    let target = match n {
        1 => 0.99,
        2 => 1.95,
        4 => 3.8,
        _ => 0.95 * n as f64,
    };
    Ok(BenchRatio {
        name: format!("sim_read_scaling_{n}"),
        unit: "IOPS",
        value: iops,
        baseline: base,
        target,
        ops,
        elapsed_ns: t,
        baseline_desc: "one member, same engine and workload",
        ratio: 0.0,
    }
    .finish())
}

/// Sequential 1 MiB writes on two mirrors of different speeds (1 GiB/s and 400 MiB/s
/// transfer, 20 µs per request, virtual time, 8 writes outstanding) against the slower
/// member's own limit for 1 MiB writes. Target 0.9.
pub fn seqwrite_vs_limit() -> Result<BenchRatio, DriverError> {
    let member_bytes: u64 = 1 << 30;
    let sectors = member_bytes / crate::SECTOR_SIZE;
    let (per_io, fast, slow) = (20_000u64, 1_000_000u64, 2_500_000u64);
    let models = [
        ServiceModel::fixed(per_io).with_transfer(fast),
        ServiceModel::fixed(per_io).with_transfer(slow),
    ];
    let limit_ns_per_mib = models[1].service_time(0, 1 << 20);
    let limit = 1e9 / limit_ns_per_mib as f64;
    let mut cfg = Raid1Config::new(2, sectors);
    cfg.max_requests = 8;
    let mut engine = Raid1::new(cfg)?;
    let mut devs: Vec<_> = models
        .iter()
        .map(|m| LatencyDevice::new(NullDevice(member_bytes), m.clone()))
        .collect();
    let ops = 512u64;
    let chunk = 2048u64; // 1 MiB in sectors
    let t = virtual_run(&mut engine, &mut devs, 8, 1 << 20, ops, |i| {
        (true, (i * chunk) % sectors, chunk)
    })?;
    let mibs = ops as f64 * 1e9 / t.max(1) as f64;
    Ok(BenchRatio {
        name: "seqwrite_vs_limit".into(),
        unit: "MiB/s",
        value: mibs,
        baseline: limit,
        target: 0.9,
        ops,
        elapsed_ns: t,
        baseline_desc: "slower member alone: 1 MiB / its service time",
        ratio: 0.0,
    }
    .finish())
}

// ---------------------------------------------------------------------------------------------
// io_uring on real files.

/// Random 4 KiB O_DIRECT reads at queue depth 32: RAID1 over two files through
/// [`UringDriver`](super::UringDriver) against a bare io_uring loop over one file (same depth,
/// same block size, no engine). Files of 64 MiB are written under `dir` (the system temporary
/// folder if `None`) and removed afterwards. Nine rounds alternate baseline and RAID1 runs (in
/// alternating order); `ratio` is the median of the per-round ratios, `value` the baseline's
/// IOPS times that ratio. About 6 s in all. Target 0.95.
#[cfg(target_os = "linux")]
pub fn uring_randread_qd32_vs_single(
    dir: Option<&std::path::Path>,
) -> Result<BenchRatio, DriverError> {
    use super::{NoopSink, UringConfig, UringDriver};
    use crate::device::{FileDevice, OpenOptions};

    let base_dir = dir
        .map(|d| d.to_path_buf())
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("mdraid-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base_dir).map_err(DriverError::Os)?;
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(base_dir.clone());

    const FILE: u64 = 64 << 20;
    const QD: usize = 32;
    let direct = OpenOptions {
        direct: true,
        ..Default::default()
    };
    let mut paths = Vec::new();
    let chunk: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for i in 0..2 {
        let p = base_dir.join(format!("m{i}.img"));
        std::fs::File::create(&p)
            .and_then(|f| f.set_len(FILE))
            .map_err(DriverError::Os)?;
        let mut d = FileDevice::open_with(&p, direct).or_else(|_| FileDevice::open(&p))?;
        let mut off = 0;
        while off < FILE {
            d.write_at(off, &chunk)?;
            off += chunk.len() as u64;
        }
        d.flush()?;
        paths.push(p);
    }
    // The single-device baseline shares m0 with the array below, in this process: unlocked
    // (FileDevice opens are exclusive by default).
    let unlocked = OpenOptions {
        lock: crate::device::Lock::Unlocked,
        ..direct
    };
    let single = FileDevice::open_with(&paths[0], unlocked).or_else(|_| {
        FileDevice::open_with(
            &paths[0],
            OpenOptions {
                direct: false,
                ..unlocked
            },
        )
    })?;
    let sectors = FILE / crate::SECTOR_SIZE;
    let blocks = sectors / 8;
    let mut cfg = Raid1Config::new(2, sectors);
    cfg.max_requests = QD;
    let engine = Raid1::new(cfg)?;
    let devs = paths
        .iter()
        .map(|p| {
            FileDevice::open_with(p, direct)
                .or_else(|_| FileDevice::open(p))
                .map(Some)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut drv = UringDriver::new(
        engine,
        devs,
        vec![0, 0],
        NoopSink,
        UringConfig::new(QD as u32, QD, 4096),
    )?;

    let raid_run = |drv: &mut UringDriver<NoopSink>, ops: u64, seed: u64| {
        let mut rng = xorshift(seed);
        let mut free: Vec<usize> = (0..QD).collect();
        let mut held = std::collections::HashMap::new();
        let (mut issued, mut done) = (0u64, 0u64);
        let start = std::time::Instant::now();
        while done < ops {
            while issued < ops {
                let Some(b) = free.pop() else { break };
                let id = drv.submit_read((rng() % blocks) * 8, 8, super::BufId(b))?;
                held.insert(id, b);
                issued += 1;
            }
            for (id, r) in drv.reap(QD)? {
                r?;
                done += 1;
                if let Some(b) = held.remove(&id) {
                    free.push(b);
                }
            }
        }
        Ok::<_, DriverError>(start.elapsed())
    };

    // Calibrate to about 0.3 s per run, then alternate baseline and RAID1 runs; the ratio is
    // the median of the per-round ratios (robust against other load on the machine).
    let warm = super::uring::raw_random_reads(&single, QD as u32, 4096, FILE, 2000, 1)?;
    raid_run(&mut drv, 2000, 2)?;
    let rate = 2000.0 / warm.as_secs_f64().max(1e-6);
    let ops = ((rate * 0.3) as u64).clamp(2000, 400_000);
    const ROUNDS: u64 = 9;
    let (mut t_single, mut t_raid) = (0f64, 0f64);
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        // Alternate which goes first, so drift on the machine favours neither.
        let single_run = || {
            super::uring::raw_random_reads(&single, QD as u32, 4096, FILE, ops, 10 + round)
                .map(|d| d.as_secs_f64())
        };
        let (a, b) = if round % 2 == 0 {
            let a = single_run()?;
            (a, raid_run(&mut drv, ops, 20 + round)?.as_secs_f64())
        } else {
            let b = raid_run(&mut drv, ops, 20 + round)?.as_secs_f64();
            (single_run()?, b)
        };
        t_single += a;
        t_raid += b;
        ratios.push(a / b.max(1e-9));
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    let median = ratios[ratios.len() / 2];
    let total = ROUNDS * ops;
    let base = total as f64 / t_single.max(1e-9);
    // The RAID1 figure is the baseline scaled by the median ratio (the mean IOPS of both are in
    // `baseline` and `elapsed_ns`).
    let iops = base * median;
    drop(drv);
    Ok(BenchRatio {
        name: "uring_randread_qd32_vs_single".into(),
        unit: "IOPS",
        value: iops,
        baseline: base,
        target: 0.95,
        ops: total,
        elapsed_ns: (t_raid * 1e9) as u64,
        baseline_desc: "bare io_uring loop on one file, QD 32",
        ratio: 0.0,
    }
    .finish())
}

/// Every benchmark in turn (`mdraid bench`): read scaling for 2 and 4 mirrors, sequential
/// writes, io_uring random reads (files under `dir`).
pub fn all(dir: Option<&std::path::Path>) -> Vec<(String, Result<BenchRatio, DriverError>)> {
    let mut out = vec![
        ("sim_read_scaling_2".into(), sim_read_scaling(2)),
        ("sim_read_scaling_4".into(), sim_read_scaling(4)),
        ("seqwrite_vs_limit".into(), seqwrite_vs_limit()),
    ];
    #[cfg(target_os = "linux")]
    out.push((
        "uring_randread_qd32_vs_single".into(),
        uring_randread_qd32_vs_single(dir),
    ));
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_benchmarks_reach_their_targets() {
        let r2 = sim_read_scaling(2).unwrap();
        assert!(r2.passed(), "{r2:?}");
        let r4 = sim_read_scaling(4).unwrap();
        assert!(r4.passed(), "{r4:?}");
        let w = seqwrite_vs_limit().unwrap();
        assert!(w.passed(), "{w:?}");
        assert!(w.to_json().contains("\"name\":\"seqwrite_vs_limit\""));
    }
}
