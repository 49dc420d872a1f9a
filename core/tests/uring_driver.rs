//! The io_uring driver of the array machine over real files: many requests in flight (the
//! kernel's completion order), real metadata (superblocks, bitmap pages) as ring entries,
//! member errors from the kernel, clean stops.
//!
//! Where the kernel refuses io_uring or O_DIRECT these tests print why and pass, unless
//! `MDRAID_REQUIRE_URING=1` (set by scripts/test.sh) says this machine has both.

#![cfg(target_os = "linux")]

mod common;

use mdraid::array::machine::Notice;
use mdraid::array::{Array, AssembleOptions, CreateOptions, CreateSlot, MemberState};
use mdraid::device::{BlockDevice, FileDevice, OpenOptions};
use mdraid::driver::uring::{BufId, DriverError, UringConfig, UringDriver};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::probe::{probe, Superblock};
use mdraid::format::MetadataVersion;
use mdraid::raid1::ReqId;
use mdraid::testutil::TempDir;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

fn refused(what: &str, e: &dyn std::fmt::Display) {
    if std::env::var("MDRAID_REQUIRE_URING").as_deref() == Ok("1") {
        panic!("{what} refused with MDRAID_REQUIRE_URING=1: {e}");
    }
    println!("{what} unavailable here ({e}): skipping");
}

fn data(seed: u64, bytes: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn files(dir: &TempDir, n: usize, bytes: u64) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.path().join(format!("m{i}.img"));
            std::fs::File::create(&p).unwrap().set_len(bytes).unwrap();
            p
        })
        .collect()
}

/// Creates a clean 1.2 array over `paths` (bitmap with 64 KiB chunks if asked).
fn create(paths: &[PathBuf], bitmap: bool) {
    create_wm(paths, bitmap, false)
}

/// As [`create`], member 0 write-mostly if `wm0` (reads go elsewhere first).
fn create_wm(paths: &[PathBuf], bitmap: bool, wm0: bool) {
    let slots = paths
        .iter()
        .enumerate()
        .map(|(i, p)| CreateSlot::Device {
            name: p.display().to_string(),
            dev: FileDevice::open(p).unwrap(),
            write_mostly: wm0 && i == 0,
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
        name: "uring".into(),
        seed: 7,
        ..common::create_options(MetadataVersion::V1_2, paths.len() as u32)
    };
    let a = Array::create(slots, &opts).unwrap();
    a.stop().unwrap();
}

/// Assembles `devs` (through the page cache) and builds a driver, with O_DIRECT members if
/// `direct`; `None` where io_uring or O_DIRECT is refused.
fn driver_with(
    devs: Vec<(String, FileDevice)>,
    cfg: UringConfig,
    direct: bool,
) -> Option<UringDriver> {
    let (a, _) = Array::assemble(
        devs,
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap();
    let (m, mut devs) = a.into_machine(mdraid::driver::now()).unwrap();
    if direct {
        for d in &mut devs {
            if let Err(e) = d.set_direct(true) {
                refused("O_DIRECT", &e);
                return None;
            }
        }
    }
    match UringDriver::new(m, devs, cfg) {
        Ok(d) => Some(d),
        Err(DriverError::UringUnavailable(e)) => {
            refused("io_uring", &e);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn driver(devs: Vec<(String, FileDevice)>, cfg: UringConfig) -> Option<UringDriver> {
    driver_with(devs, cfg, false)
}

fn open_all(paths: &[PathBuf], direct: bool) -> Option<Vec<(String, FileDevice)>> {
    paths
        .iter()
        .map(|p| {
            let o = OpenOptions {
                direct,
                ..Default::default()
            };
            Some((
                p.display().to_string(),
                FileDevice::open_with(p, o).unwrap(),
            ))
        })
        .collect()
}

fn sb_of(p: &Path) -> Superblock {
    let mut d = FileDevice::open_with(
        p,
        OpenOptions {
            read_only: true,
            lock: mdraid::device::Lock::Unlocked,
            ..Default::default()
        },
    )
    .unwrap();
    probe(&mut d, None).unwrap().sb
}

fn data_offset(p: &Path) -> usize {
    (sb_of(p).data_offset() * 512) as usize
}

/// 2000 random 4 KiB reads and writes (some FUA, some flushes) with 32 in flight against a
/// model; then a clean stop, and the members hold the model and clean superblocks.
fn qd32_against_model(direct: bool, register: bool, bitmap: bool) {
    let dir = TempDir::new("uring-model");
    let paths = files(&dir, 2, 8 * MIB);
    create(&paths, bitmap);
    let devs = open_all(&paths, false).unwrap();
    let mut cfg = UringConfig::new(32, 40, 4096);
    cfg.register_buffers = register;
    let Some(mut drv) = driver_with(devs, cfg, direct) else {
        return;
    };
    if !register {
        assert!(!drv.buffers_registered());
    }
    let events0 = drv.machine().events();
    let sectors = 4096u64; // the first 2 MiB: 512 blocks, so requests overlap often
    let blocks = sectors / 8;
    let mut model = vec![0u8; (sectors * 512) as usize];
    let mut free: Vec<BufId> = (0..drv.buffer_count()).map(BufId).collect();
    let mut pending: HashMap<ReqId, (Option<BufId>, Option<Vec<u8>>)> = HashMap::new();
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut issued, mut reads_checked, mut max_inflight) = (0u64, 0, 0);
    let mut order = Vec::new();
    while issued < 2000 || !pending.is_empty() {
        while pending.len() < 32 && issued < 2000 {
            issued += 1;
            if next() % 97 == 0 {
                // A discard reaches no member (files have none) but orders like a write.
                let id = drv.submit_discard((next() % blocks) * 8, 8).unwrap();
                pending.insert(id, (None, None));
                order.push(id);
                continue;
            }
            if next() % 40 == 0 {
                let id = drv.submit_flush().unwrap();
                pending.insert(id, (None, None));
                order.push(id);
                continue;
            }
            let buf = free.pop().unwrap();
            let sector = (next() % blocks) * 8;
            let range = (sector * 512) as usize..((sector + 8) * 512) as usize;
            let id = if next() % 2 == 0 {
                let d = data(issued, 4096);
                drv.buffer_mut(buf).unwrap().copy_from_slice(&d);
                model[range].copy_from_slice(&d);
                let id = drv.submit_write(sector, 8, buf, issued % 50 == 0).unwrap();
                pending.insert(id, (Some(buf), None));
                id
            } else {
                let id = drv.submit_read(sector, 8, buf).unwrap();
                pending.insert(id, (Some(buf), Some(model[range].to_vec())));
                id
            };
            order.push(id);
            max_inflight = max_inflight.max(pending.len());
        }
        let Some((id, r)) = drv.next_completion().unwrap() else {
            break;
        };
        r.unwrap();
        let (buf, want) = pending.remove(&id).expect("a known request");
        if let (Some(buf), Some(want)) = (buf, want) {
            assert!(drv.buffer(buf).unwrap() == &want[..], "read data");
            reads_checked += 1;
        }
        if let Some(b) = buf {
            assert!(drv.buffer(b).is_some(), "a reaped request's buffer is free");
            free.push(b);
        }
        order.retain(|o| *o != id);
    }
    assert!(pending.is_empty());
    assert_eq!(max_inflight, 32);
    assert!(reads_checked > 500, "{reads_checked} reads checked");
    let dirty = drv.machine().is_dirty();
    assert!(dirty, "writes left the array dirty");
    let c0 = drv.machine().engine().member_counters(0).unwrap();
    let c1 = drv.machine().engine().member_counters(1).unwrap();
    assert!(
        c0.reads > 0 && c1.reads > 0,
        "reads balanced over both mirrors"
    );
    assert_eq!(c0.errors + c1.errors, 0);
    let (m, devs) = drv.stop().unwrap();
    assert!(!m.is_dirty());
    assert!(m.events() > events0, "the superblocks were rewritten");
    drop(devs);
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        let off = data_offset(p);
        assert!(
            bytes[off..off + model.len()] == model[..],
            "{p:?} holds the model"
        );
        let sb = sb_of(p);
        assert_eq!(sb.events(), m.events(), "{p:?}: superblock events on disk");
        match sb {
            Superblock::V1(s, _) => assert_eq!(s.resync_offset, u64::MAX, "{p:?} clean"),
            _ => unreachable!(),
        }
    }
    // And the blocking path reads the same array back.
    let (mut a, _) =
        Array::assemble(open_all(&paths, false).unwrap(), &Default::default()).unwrap();
    assert!(!a.needs_resync());
    let mut back = vec![0u8; model.len()];
    a.read(0, &mut back).unwrap();
    assert!(back == model);
}

#[test]
fn qd32_direct_registered_with_bitmap() {
    qd32_against_model(true, true, true);
}

#[test]
fn qd32_buffered_unregistered_no_bitmap() {
    qd32_against_model(false, false, false);
}

/// Ordering on the members: once a write to a clean chunk completes, the member bytes show the
/// superblock dirty and the chunk's bitmap bit set (both went out before the data); after the
/// stop, clean and the bits cleared.
#[test]
fn metadata_on_disk_before_the_data_it_covers() {
    let dir = TempDir::new("uring-order");
    let paths = files(&dir, 2, 8 * MIB);
    create(&paths, true);
    let devs = open_all(&paths, false).unwrap();
    let Some(mut drv) = driver_with(devs, UringConfig::new(8, 4, 64 << 10), true) else {
        return;
    };
    let bm_off = match sb_of(&paths[0]) {
        Superblock::V1(s, _) => mdraid::format::bitmap::location_sb1(&s).unwrap() as usize,
        _ => unreachable!(),
    };
    let chunk = 64u64 << 10;
    // A write in chunk 5 (array byte 5 * 64 KiB).
    drv.buffer_mut(BufId(0)).unwrap().fill(0xc3);
    let sector = 5 * chunk / 512;
    let id = drv.submit_write(sector, 8, BufId(0), false).unwrap();
    let (got, r) = drv.next_completion().unwrap().unwrap();
    assert_eq!(got, id);
    r.unwrap();
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        match sb_of(p) {
            Superblock::V1(s, _) => assert_eq!(s.resync_offset, 0, "{p:?}: dirty on disk"),
            _ => unreachable!(),
        }
        // Bits start after the 256-byte header: chunk 5 is bit 5 of byte 0.
        assert_eq!(
            bytes[bm_off + 256] & (1 << 5),
            1 << 5,
            "{p:?}: bit set on disk"
        );
        let off = data_offset(p) + (sector * 512) as usize;
        assert!(bytes[off..off + 4096].iter().all(|&b| b == 0xc3));
    }
    let (m, devs) = drv.stop().unwrap();
    drop(devs);
    assert!(!m.is_dirty());
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        match sb_of(p) {
            Superblock::V1(s, _) => assert_eq!(s.resync_offset, u64::MAX, "{p:?}: clean"),
            _ => unreachable!(),
        }
        assert_eq!(
            bytes[bm_off + 256],
            0,
            "{p:?}: bits cleared at a clean stop"
        );
    }
}

/// A member whose file lost its tail: reads there come back short from the kernel, the driver
/// reports EIO, the engine serves the data from the other mirror and rewrites the tail.
#[test]
fn short_member_read_is_eio_and_repaired() {
    let dir = TempDir::new("uring-short");
    let paths = files(&dir, 2, 4 * MIB);
    create_wm(&paths, false, true);
    let devs = open_all(&paths, false).unwrap();
    let Some(mut drv) = driver(devs, UringConfig::new(16, 4, 64 << 10)) else {
        return;
    };
    let size = drv.machine().engine().array_sectors();
    let last = size - 128;
    let good = data(99, 64 << 10);
    drv.buffer_mut(BufId(0)).unwrap().copy_from_slice(&good);
    drv.submit_write(last, 128, BufId(0), true).unwrap();
    drv.next_completion().unwrap().unwrap().1.unwrap();
    // Member 1 loses its last 32 KiB behind the driver's back.
    let len1 = std::fs::metadata(&paths[1]).unwrap().len();
    let tail = data_offset(&paths[1]) as u64 + size * 512;
    assert!(tail <= len1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&paths[1])
        .unwrap()
        .set_len(tail - (32 << 10))
        .unwrap();
    let mut read_ok = 0;
    for _ in 0..4 {
        // Reads are balanced: ask until member 1 was tried.
        drv.buffer_mut(BufId(1)).unwrap().fill(0);
        drv.submit_read(last, 128, BufId(1)).unwrap();
        drv.next_completion().unwrap().unwrap().1.unwrap();
        assert!(drv.buffer(BufId(1)).unwrap() == &good[..]);
        read_ok += 1;
        if drv.machine().engine().member_counters(1).unwrap().errors > 0 {
            break;
        }
    }
    assert!(read_ok > 0);
    let c1 = drv.machine().engine().member_counters(1).unwrap();
    assert!(c1.errors > 0, "member 1 saw EIO: {c1:?}");
    drv.run_until_idle().unwrap();
    let c1 = drv.machine().engine().member_counters(1).unwrap();
    assert!(c1.corrected > 0, "the repair rewrote member 1: {c1:?}");
    assert_eq!(drv.machine().members()[1].state, MemberState::InSync(1));
    let (_, devs) = drv.stop().unwrap();
    drop(devs);
    let b = std::fs::read(&paths[1]).unwrap();
    let off = data_offset(&paths[1]) + (last * 512) as usize;
    assert_eq!(b.len() as u64, tail, "the repair wrote the lost tail back");
    assert!(b[off..] == good[..]);
}

/// Member failures while 32 requests are in flight: one member's descriptor refuses writes
/// (the kernel's EBADF on the first superblock write, in a metadata round), another is failed
/// by command mid-workload; the last mirror keeps every write, the survivor records both.
#[test]
fn member_failures_mid_workload_degrade() {
    let dir = TempDir::new("uring-fail");
    let paths = files(&dir, 3, 4 * MIB);
    create(&paths, true);
    let mut devs = open_all(&paths[..2], false).unwrap();
    let ro = FileDevice::open_with(
        &paths[2],
        OpenOptions {
            read_only: true,
            lock: mdraid::device::Lock::Unlocked,
            ..Default::default()
        },
    )
    .unwrap();
    devs.push((paths[2].display().to_string(), ro));
    let Some(mut drv) = driver(devs, UringConfig::new(32, 32, 4096)) else {
        return;
    };
    let mut model = vec![0u8; 2 * MIB as usize];
    let mut failed = Vec::new();
    let mut free: Vec<BufId> = (0..32).map(BufId).collect();
    let mut pending = HashMap::new();
    let mut max_inflight = 0;
    for i in 0..600u64 {
        if free.is_empty() {
            let (id, r) = drv.next_completion().unwrap().unwrap();
            r.unwrap();
            free.push(pending.remove(&id).unwrap());
        }
        if i == 300 {
            drv.fail_member(1).unwrap();
        }
        let b = free.pop().unwrap();
        let sector = (i * 37 % 512) * 8;
        let d = data(i + 7, 4096);
        drv.buffer_mut(b).unwrap().copy_from_slice(&d);
        model[(sector * 512) as usize..][..4096].copy_from_slice(&d);
        pending.insert(drv.submit_write(sector, 8, b, false).unwrap(), b);
        max_inflight = max_inflight.max(pending.len());
        while let Some(n) = drv.poll_event() {
            if let Notice::MemberFailed { member } = n {
                failed.push(member);
            }
        }
    }
    assert_eq!(max_inflight, 32);
    for (_, r) in drv.run_until_idle().unwrap() {
        r.unwrap();
    }
    while let Some(n) = drv.poll_event() {
        if let Notice::MemberFailed { member } = n {
            failed.push(member);
        }
    }
    failed.sort_unstable();
    assert_eq!(failed, vec![1, 2]);
    let states: Vec<_> = drv.machine().members().iter().map(|m| m.state).collect();
    assert_eq!(
        states,
        vec![
            MemberState::InSync(0),
            MemberState::Faulty,
            MemberState::Faulty
        ]
    );
    let (_, devs) = drv.stop().unwrap();
    drop(devs);
    let a0 = std::fs::read(&paths[0]).unwrap();
    let off = data_offset(&paths[0]);
    assert!(
        a0[off..off + model.len()] == model[..],
        "the survivor holds every write"
    );
    // The survivor's superblock lists both as faulty; the blocking path assembles it degraded.
    let (a, _) = Array::assemble(
        open_all(&paths[..1], false).unwrap(),
        &AssembleOptions {
            run: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.in_sync_count(), 1);
    assert!(!a.needs_resync());
}

/// The driver's monotonic clock: an array left open after a write goes clean by itself after
/// md's safe-mode delay, with no request in flight.
#[test]
fn idle_array_goes_clean_on_the_driver_clock() {
    let dir = TempDir::new("uring-idle");
    let paths = files(&dir, 2, 4 * MIB);
    create(&paths, false);
    let Some(mut drv) = driver(
        open_all(&paths, false).unwrap(),
        UringConfig::new(4, 2, 4096),
    ) else {
        return;
    };
    drv.buffer_mut(BufId(0)).unwrap().fill(1);
    drv.submit_write(0, 8, BufId(0), false).unwrap();
    drv.next_completion().unwrap().unwrap().1.unwrap();
    assert!(drv.machine().is_dirty());
    let mut clean = false;
    // Bounded: md's delay is 200 ms; give up after 10 s.
    for _ in 0..1000 {
        let wait = drv.tick().unwrap();
        while let Some(n) = drv.poll_event() {
            clean |= n == Notice::Clean;
        }
        if clean {
            break;
        }
        std::thread::sleep(
            wait.expect("a timer or I/O")
                .min(std::time::Duration::from_millis(10)),
        );
    }
    assert!(clean, "no clean marking");
    assert!(!drv.machine().is_dirty());
    for p in &paths {
        match sb_of(p) {
            Superblock::V1(s, _) => assert_eq!(s.resync_offset, u64::MAX, "{p:?}: clean on disk"),
            _ => unreachable!(),
        }
    }
    let _ = drv.stop().unwrap();
}

#[test]
fn bad_buffers_refused_and_driver_is_send() {
    fn send<T: Send>() {}
    send::<UringDriver>();
    let dir = TempDir::new("uring-bufs");
    let paths = files(&dir, 2, 4 * MIB);
    create(&paths, false);
    let Some(mut drv) = driver(
        open_all(&paths, false).unwrap(),
        UringConfig::new(8, 4, 8192),
    ) else {
        return;
    };
    drv.buffer_mut(BufId(1)).unwrap().fill(0x5a);
    let id = drv.submit_write(0, 16, BufId(1), false).unwrap();
    assert!(drv.buffer(BufId(1)).is_none(), "held while in flight");
    assert!(matches!(
        drv.submit_read(0, 8, BufId(1)),
        Err(DriverError::InvalidBuffer(_))
    ));
    assert!(matches!(
        drv.submit_read(0, 17, BufId(2)),
        Err(DriverError::InvalidBuffer(_))
    ));
    assert!(matches!(
        drv.submit_read(0, 8, BufId(9)),
        Err(DriverError::InvalidBuffer(_))
    ));
    let size = drv.machine().engine().array_sectors();
    assert!(matches!(
        drv.submit_read(size - 8, 16, BufId(2)),
        Err(DriverError::Submit(_))
    ));
    let done = drv.run_until_idle().unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, id);
    let _ = drv.stop().unwrap();
    assert!(UringConfig::new(0, 1, 4096) != UringConfig::new(1, 1, 4096));
    let _ = FileDevice::open(&paths[0]).unwrap().size();
}
