//! End-to-end benchmarks behind `mdraid bench --json`.
//!
//! Each function measures a RAID1 configuration and its baseline in the same run and returns a
//! [`BenchRatio`] (value, baseline, ratio, the ratio it should reach). The io_uring ones run the
//! real path: an array created on files by [`Array::create`], assembled, turned into the
//! machine ([`Array::into_machine`]) and driven by [`UringDriver`] over O_DIRECT members, with
//! real superblock and bitmap writes, stopped clean. Rounds alternate the configuration and its
//! baseline (in alternating order) and the ratio is the median of the per-round ratios, so
//! drift on a shared machine favours neither. The virtual-time ones
//! ([`sim_read_scaling`], [`seqwrite_vs_limit`]) run the engine on [`crate::raid1::sim::Sim`]
//! with queueing member models.

use crate::array::{Array, CreateOptions, CreateSlot};
use crate::device::{FileDevice, Lock, OpenOptions, ServiceModel};
use crate::format::geometry::BitmapRequest;
use crate::format::MetadataVersion;
use crate::raid1::sim::Sim;
use crate::raid1::{ArrayRequest, Raid1, Raid1Config};
use std::boxed::Box;
use std::format;
use std::path::{Path, PathBuf};
use std::string::String;
use std::string::ToString;
use std::vec;
use std::vec::Vec;

#[cfg(target_os = "linux")]
use super::uring::{raw_random_io, BufId, DriverError, UringConfig, UringDriver};

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
    /// A result; `ratio` is computed from `value` and `baseline`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        unit: &'static str,
        value: f64,
        baseline: f64,
        target: f64,
        ops: u64,
        elapsed_ns: u64,
        baseline_desc: &'static str,
    ) -> Self {
        BenchRatio {
            name: name.into(),
            value,
            baseline,
            ratio: if baseline > 0.0 {
                value / baseline
            } else {
                0.0
            },
            target,
            unit,
            ops,
            elapsed_ns,
            baseline_desc,
        }
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

/// A benchmark that could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The io_uring driver failed (or io_uring is refused here).
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// Setting up the array or its files failed.
    #[error(transparent)]
    Array(#[from] crate::Error),
    /// A file operation failed.
    #[error("bench files: {0}")]
    Os(#[from] std::io::Error),
    /// An array request failed.
    #[error(transparent)]
    Request(#[from] crate::raid1::ArrayIoError),
    /// The engine refused its configuration or a request.
    #[error("engine: {0}")]
    Engine(String),
}

impl BenchError {
    /// Whether io_uring (or O_DIRECT) was refused here: the benchmark cannot run on this
    /// machine, which is not a failure of mdraid.
    pub fn is_unavailable(&self) -> bool {
        #[cfg(target_os = "linux")]
        if let BenchError::Driver(DriverError::UringUnavailable(_)) = self {
            return true;
        }
        false
    }
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Virtual time: the simulator with queueing members.

/// Runs `ops` requests from `next(i) -> (is_write, sector, sectors)` with `qd` outstanding on
/// the simulator; returns the virtual time at the last completion.
fn sim_run(
    sim: &mut Sim,
    qd: usize,
    ops: u64,
    mut next: impl FnMut(u64) -> (bool, u64, u64),
) -> Result<u64, BenchError> {
    let (mut submitted, mut seen) = (0u64, 0usize);
    let mut free: Vec<u64> = (0..qd as u64).collect();
    let mut slot_of = std::collections::HashMap::new();
    while (seen as u64) < ops {
        while submitted < ops {
            let Some(b) = free.pop() else { break };
            let (write, sector, sectors) = next(submitted);
            let buf = crate::raid1::BufRef(b);
            let req = if write {
                ArrayRequest::write(sector, sectors, buf)
            } else {
                ArrayRequest::read(sector, sectors, buf)
            };
            let id = sim
                .submit(req)
                .map_err(|e| BenchError::Engine(e.to_string()))?;
            slot_of.insert(id, b);
            submitted += 1;
        }
        if !sim.step() {
            return Err(BenchError::Engine("the simulation stalled".into()));
        }
        while seen < sim.completed.len() {
            let (_, id, r) = sim.completed[seen];
            r?;
            seen += 1;
            if let Some(b) = slot_of.remove(&id) {
                free.push(b);
            }
        }
    }
    Ok(sim.now)
}

fn sim_with(engine: Raid1, sectors: u64, qd: usize, buf: usize, model: &[ServiceModel]) -> Sim {
    let mut sim = Sim::new(engine, sectors);
    for _ in 0..qd {
        let _ = sim.buffer(vec![0u8; buf]);
    }
    for (m, s) in sim.members.iter_mut().zip(model.iter().cycle()) {
        m.service = Some(s.clone());
    }
    sim
}

/// Random 4 KiB read IOPS of `slots` mirrors (fixed service time, virtual clock).
fn sim_randread_iops(
    slots: usize,
    qd: usize,
    ops: u64,
    service_ns: u64,
) -> Result<(f64, u64), BenchError> {
    let sectors: u64 = (64 << 20) / crate::SECTOR_SIZE;
    let mut cfg = Raid1Config::new(slots, sectors);
    cfg.max_requests = qd;
    let engine = Raid1::new(cfg).map_err(|e| BenchError::Engine(e.to_string()))?;
    let mut sim = sim_with(
        engine,
        sectors,
        qd,
        4096,
        &[ServiceModel::fixed(service_ns)],
    );
    let mut rng = xorshift(0x5eed_0001 + slots as u64);
    let blocks = sectors / 8;
    let t = sim_run(&mut sim, qd, ops, |_| (false, (rng() % blocks) * 8, 8))?;
    Ok((ops as f64 * 1e9 / t.max(1) as f64, t))
}

/// Read scaling: random 4 KiB reads on `n_mirrors` mirrors against one member, each member
/// serving one I/O at a time with a fixed 100 µs service time, 64 requests outstanding,
/// virtual time. Target: 1.95 for 2 mirrors, 3.8 for 4 (0.95·n in general).
pub fn sim_read_scaling(n_mirrors: usize) -> Result<BenchRatio, BenchError> {
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
    Ok(BenchRatio::new(
        &format!("sim_read_scaling_{n}"),
        "IOPS",
        iops,
        base,
        target,
        ops,
        t,
        "one member, same engine and workload",
    ))
}

/// Sequential 1 MiB writes on two mirrors of different speeds (1 GiB/s and 400 MiB/s
/// transfer, 20 µs per request, one I/O at a time each, virtual time, 8 writes outstanding)
/// against the slower member's own limit for 1 MiB writes. Target 0.9.
pub fn seqwrite_vs_limit() -> Result<BenchRatio, BenchError> {
    let sectors: u64 = (64 << 20) / crate::SECTOR_SIZE;
    let (per_io, fast, slow) = (20_000u64, 1_000_000u64, 2_500_000u64);
    let models = [
        ServiceModel::fixed(per_io).with_transfer(fast),
        ServiceModel::fixed(per_io).with_transfer(slow),
    ];
    let limit = 1e9 / models[1].service_time(0, 1 << 20) as f64;
    let mut cfg = Raid1Config::new(2, sectors);
    cfg.max_requests = 8;
    let engine = Raid1::new(cfg).map_err(|e| BenchError::Engine(e.to_string()))?;
    let mut sim = sim_with(engine, sectors, 8, 1 << 20, &models);
    let (ops, chunk) = (512u64, 2048u64);
    let t = sim_run(&mut sim, 8, ops, |i| (true, (i * chunk) % sectors, chunk))?;
    let mibs = ops as f64 * 1e9 / t.max(1) as f64;
    Ok(BenchRatio::new(
        "seqwrite_vs_limit",
        "MiB/s",
        mibs,
        limit,
        0.9,
        ops,
        t,
        "slower member alone: 1 MiB / its service time",
    ))
}

// ---------------------------------------------------------------------------------------------
// The real path on files.

/// A folder of bench files, removed when dropped.
#[derive(Debug)]
pub struct BenchDir(PathBuf);

impl BenchDir {
    /// `mdraid-bench-<pid>-<tag>` under `dir` (the system temporary folder if `None`).
    pub fn new(dir: Option<&Path>, tag: &str) -> Result<Self, BenchError> {
        let p = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("mdraid-bench-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(BenchDir(p))
    }
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// A file of `bytes` in it, filled with pseudo-random data (so nothing is sparse).
    pub fn file(&self, name: &str, bytes: u64) -> Result<PathBuf, BenchError> {
        use std::io::Write;
        let p = self.0.join(name);
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&p)?);
        let mut rng = xorshift(bytes ^ name.len() as u64);
        let mut chunk = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            for w in chunk.chunks_mut(8) {
                w.copy_from_slice(&rng().to_le_bytes());
            }
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(p)
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a clean two-mirror 1.2 array on `paths` (mdadm's default bitmap chunk if `bitmap`).
fn create_array(paths: &[PathBuf], bitmap: bool) -> Result<(), BenchError> {
    let slots = paths
        .iter()
        .map(|p| {
            Ok(CreateSlot::Device {
                name: p.display().to_string(),
                dev: FileDevice::open(p)?,
                write_mostly: false,
                failfast: false,
            })
        })
        .collect::<Result<Vec<_>, crate::device::DeviceError>>()
        .map_err(crate::Error::from)?;
    let opts = CreateOptions {
        version: MetadataVersion::V1_2,
        raid_disks: paths.len() as u32,
        bitmap: if bitmap {
            BitmapRequest::Internal { chunk_bytes: None }
        } else {
            BitmapRequest::None
        },
        name: "bench".into(),
        homehost: None,
        assume_clean: true,
        size_kib: None,
        now: super::now().wall_secs,
        uuid: [0xbe; 16],
        seed: 1,
        md_minor: 0,
    };
    Array::create(slots, &opts)?.stop()?;
    Ok(())
}

/// Assembles `paths` and hands the machine to an io_uring driver over O_DIRECT members (the
/// page cache where O_DIRECT is refused): `qd` I/Os in the ring, `qd` buffers of `buf` bytes.
#[cfg(target_os = "linux")]
fn open_driver(paths: &[PathBuf], qd: u32, buf: usize) -> Result<UringDriver, BenchError> {
    let devs = paths
        .iter()
        .map(|p| Ok((p.display().to_string(), FileDevice::open(p)?)))
        .collect::<Result<Vec<_>, crate::device::DeviceError>>()
        .map_err(crate::Error::from)?;
    let (a, _) = Array::assemble(devs, &Default::default())?;
    let (m, mut devs) = a.into_machine(super::now())?;
    for d in &mut devs {
        let _ = d.set_direct(true);
    }
    Ok(UringDriver::new(
        m,
        devs,
        UringConfig::new(qd, qd as usize, buf),
    )?)
}

/// Runs `ops` requests `next(i) -> (write, sector, sectors)` with `qd` in flight; the wall
/// time from the first submission to the last completion.
#[cfg(target_os = "linux")]
fn drive(
    drv: &mut UringDriver,
    qd: usize,
    ops: u64,
    mut next: impl FnMut(u64) -> (bool, u64, u64),
) -> Result<f64, BenchError> {
    let mut free: Vec<usize> = (0..qd).collect();
    let mut held = std::collections::HashMap::with_capacity(qd);
    let (mut issued, mut done) = (0u64, 0u64);
    let start = std::time::Instant::now();
    while done < ops {
        while issued < ops {
            let Some(b) = free.pop() else { break };
            let (write, sector, sectors) = next(issued);
            let id = if write {
                drv.submit_write(sector, sectors, BufId(b), false)?
            } else {
                drv.submit_read(sector, sectors, BufId(b))?
            };
            held.insert(id, b);
            issued += 1;
        }
        if let Some((id, r)) = drv.next_completion()? {
            r?;
            done += 1;
            if let Some(b) = held.remove(&id) {
                free.push(b);
            }
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// An unlocked O_DIRECT (else buffered) open of `p`, for the bare-loop baselines.
#[cfg(target_os = "linux")]
fn open_single(p: &Path) -> Result<FileDevice, BenchError> {
    let o = OpenOptions {
        direct: true,
        lock: Lock::Unlocked,
        ..Default::default()
    };
    FileDevice::open_with(p, o)
        .or_else(|_| FileDevice::open_with(p, OpenOptions { direct: false, ..o }))
        .map_err(|e| BenchError::Array(e.into()))
}

/// `rounds` alternating pairs of (configuration, baseline) seconds; the median of the
/// per-round ratios baseline/configuration and both totals.
fn alternate(
    rounds: u32,
    mut run: impl FnMut(u32) -> Result<f64, BenchError>,
    mut base: impl FnMut(u32) -> Result<f64, BenchError>,
) -> Result<(f64, f64, f64), BenchError> {
    let (mut t_run, mut t_base) = (0f64, 0f64);
    let mut ratios = Vec::new();
    for r in 0..rounds {
        let (a, b) = if r % 2 == 0 {
            let b = base(r)?;
            (run(r)?, b)
        } else {
            let a = run(r)?;
            (a, base(r)?)
        };
        t_run += a;
        t_base += b;
        ratios.push(b / a.max(1e-9));
    }
    Ok((median(ratios), t_run, t_base))
}

/// Random 4 KiB O_DIRECT reads at queue depth 32: the machine on the io_uring driver over two
/// 64 MiB files against a bare io_uring loop over one file (same depth and block size, no
/// machine). Nine alternating rounds of about 0.3 s. Target 0.95.
#[cfg(target_os = "linux")]
pub fn uring_randread_qd32_vs_single(dir: Option<&Path>) -> Result<BenchRatio, BenchError> {
    const FILE: u64 = 64 << 20;
    const QD: usize = 32;
    let d = BenchDir::new(dir, "rr")?;
    let paths = vec![d.file("m0.img", FILE)?, d.file("m1.img", FILE)?];
    create_array(&paths, false)?;
    let mut drv = open_driver(&paths, QD as u32, 4096)?;
    let single = open_single(&paths[0])?;
    let blocks = drv.machine().engine().array_sectors() / 8;
    let mut raid = |ops: u64, seed: u64| {
        let mut rng = xorshift(seed);
        drive(&mut drv, QD, ops, |_| (false, (rng() % blocks) * 8, 8))
    };
    let bare = |ops: u64, seed: u64| {
        raw_random_io(&single, false, QD as u32, 4096, FILE, ops, seed)
            .map(|t| t.as_secs_f64())
            .map_err(BenchError::from)
    };
    let warm = bare(2000, 1)?;
    raid(2000, 2)?;
    let ops = ((2000.0 / warm.max(1e-6) * 0.3) as u64).clamp(2000, 400_000);
    let (ratio, t_raid, t_single) = alternate(
        9,
        |r| raid(ops, 20 + u64::from(r)),
        |r| bare(ops, 10 + u64::from(r)),
    )?;
    drv.stop()?;
    let total = 9 * ops;
    let base = total as f64 / t_single.max(1e-9);
    Ok(BenchRatio::new(
        "uring_randread_qd32_vs_single",
        "IOPS",
        base * ratio,
        base,
        0.95,
        total,
        (t_raid * 1e9) as u64,
        "bare io_uring loop on one file, QD 32",
    ))
}

/// Random 4 KiB O_DIRECT writes at queue depth 32 on two mirrors with an internal bitmap
/// (mdadm's default chunk), real superblock and bitmap writes, against the same bare io_uring
/// loop writing one file. Both mirrors share one disk: about 0.5 is the limit. Target 0.45.
#[cfg(target_os = "linux")]
pub fn uring_randwrite_qd32_bitmap_vs_single(dir: Option<&Path>) -> Result<BenchRatio, BenchError> {
    const FILE: u64 = 64 << 20;
    const QD: usize = 32;
    let d = BenchDir::new(dir, "rw")?;
    let paths = vec![d.file("m0.img", FILE)?, d.file("m1.img", FILE)?];
    let one = d.file("one.img", FILE)?;
    create_array(&paths, true)?;
    let single = open_single(&one)?;
    let mut drv = open_driver(&paths, QD as u32, 4096)?;
    let blocks = drv.machine().engine().array_sectors() / 8;
    let span = blocks * 4096;
    let mut raid = |ops: u64, seed: u64| {
        let mut rng = xorshift(seed);
        drive(&mut drv, QD, ops, |_| (true, (rng() % blocks) * 8, 8))
    };
    let bare = |ops: u64, seed: u64| {
        raw_random_io(&single, true, QD as u32, 4096, span, ops, seed)
            .map(|t| t.as_secs_f64())
            .map_err(BenchError::from)
    };
    let warm = bare(2000, 1)?;
    raid(2000, 2)?;
    let ops = ((2000.0 / warm.max(1e-6) * 0.3) as u64).clamp(2000, 200_000);
    let (ratio, t_raid, t_single) = alternate(
        7,
        |r| raid(ops, 20 + u64::from(r)),
        |r| bare(ops, 10 + u64::from(r)),
    )?;
    drv.stop()?;
    let total = 7 * ops;
    let base = total as f64 / t_single.max(1e-9);
    Ok(BenchRatio::new(
        "uring_randwrite_qd32_bitmap_vs_single",
        "IOPS",
        base * ratio,
        base,
        0.45,
        total,
        (t_raid * 1e9) as u64,
        "bare io_uring loop writing one file, QD 32",
    ))
}

/// One round of the bitmap-cost benchmarks: assemble (every bit clear after the last clean
/// stop), run the workload, stop clean. Seconds from assembly to the end of the stop.
#[cfg(target_os = "linux")]
fn assembled_round(
    paths: &[PathBuf],
    qd: usize,
    buf: usize,
    ops: u64,
    next: impl FnMut(u64) -> (bool, u64, u64),
) -> Result<f64, BenchError> {
    let start = std::time::Instant::now();
    let mut drv = open_driver(paths, qd as u32, buf)?;
    drive(&mut drv, qd, ops, next)?;
    drv.stop()?;
    Ok(start.elapsed().as_secs_f64())
}

/// The cost of md's write-intent bitmap on the real path: the same two-mirror array with an
/// internal bitmap (mdadm's default chunk) against one without, each round assembled afresh
/// (so every chunk goes clean → dirty once) and stopped clean. `seq`: 1 MiB sequential
/// writes over the whole 128 MiB array at queue depth 8; else 4 KiB random writes at QD 32.
/// Target 0.8.
#[cfg(target_os = "linux")]
pub fn bitmap_cost(dir: Option<&Path>, seq: bool) -> Result<BenchRatio, BenchError> {
    const FILE: u64 = 128 << 20;
    let tag = if seq { "bs" } else { "br" };
    let d = BenchDir::new(dir, tag)?;
    let with = vec![d.file("b0.img", FILE)?, d.file("b1.img", FILE)?];
    let without = vec![d.file("n0.img", FILE)?, d.file("n1.img", FILE)?];
    create_array(&with, true)?;
    create_array(&without, false)?;
    let sectors = {
        let drv = open_driver(&without, 4, 4096)?;
        let s = drv.machine().engine().array_sectors();
        drv.stop()?;
        s
    };
    let (qd, buf, unit) = if seq {
        (8, 1 << 20, 2048)
    } else {
        (32, 4096, 8)
    };
    let units = sectors / unit;
    let ops = if seq { units } else { 20_000 };
    let round = |paths: &[PathBuf], seed: u64| {
        let mut rng = xorshift(seed);
        assembled_round(paths, qd, buf, ops, |i| {
            let u = if seq { i % units } else { rng() % units };
            (true, u * unit, unit)
        })
    };
    let rounds = 5;
    let (ratio, t_with, t_without) = alternate(
        rounds,
        |r| round(&with, 1 + u64::from(r)),
        |r| round(&without, 1 + u64::from(r)),
    )?;
    let total = u64::from(rounds) * ops;
    let (unit_name, per) = if seq { ("MiB/s", 1.0) } else { ("IOPS", 1.0) };
    let base = total as f64 * per / t_without.max(1e-9);
    let _ = t_with;
    Ok(BenchRatio::new(
        if seq {
            "bitmap_cost_seqwrite"
        } else {
            "bitmap_cost_randwrite"
        },
        unit_name,
        base * ratio,
        base,
        0.8,
        total,
        (t_with * 1e9) as u64,
        "the same array without a bitmap, same run",
    ))
}

/// Every library benchmark whose name `want` accepts, in turn (`mdraid bench`): read scaling
/// for 2 and 4 mirrors, sequential writes on virtual time, then the io_uring ones on files
/// under `dir`.
pub fn all(
    dir: Option<&Path>,
    want: &dyn Fn(&str) -> bool,
) -> Vec<(String, Result<BenchRatio, BenchError>)> {
    type Bench<'a> = (
        &'static str,
        Box<dyn Fn() -> Result<BenchRatio, BenchError> + 'a>,
    );
    let mut list: Vec<Bench> = vec![
        ("sim_read_scaling_2", Box::new(|| sim_read_scaling(2))),
        ("sim_read_scaling_4", Box::new(|| sim_read_scaling(4))),
        ("seqwrite_vs_limit", Box::new(seqwrite_vs_limit)),
    ];
    #[cfg(target_os = "linux")]
    list.extend([
        (
            "uring_randread_qd32_vs_single",
            Box::new(move || uring_randread_qd32_vs_single(dir)) as Box<dyn Fn() -> _>,
        ),
        (
            "uring_randwrite_qd32_bitmap_vs_single",
            Box::new(move || uring_randwrite_qd32_bitmap_vs_single(dir)),
        ),
        (
            "bitmap_cost_randwrite",
            Box::new(move || bitmap_cost(dir, false)),
        ),
        (
            "bitmap_cost_seqwrite",
            Box::new(move || bitmap_cost(dir, true)),
        ),
    ]);
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    list.into_iter()
        .filter(|(n, _)| want(n))
        .map(|(n, f)| (String::from(n), f()))
        .collect()
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
