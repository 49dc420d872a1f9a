//! The test devices: fault injection, latency model, volatile cache with power cuts, sparse
//! storage; used alone, stacked, and inside an array.

use mdraid::array::{Array, CreateOptions, CreateSlot, MemberState};
use mdraid::device::*;
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

fn eio(r: Result<(), DeviceError>) -> bool {
    matches!(r, Err(DeviceError::Io { errno: EIO, .. }))
}

fn opts() -> CreateOptions {
    CreateOptions {
        version: MetadataVersion::V1_2,
        raid_disks: 2,
        bitmap: BitmapRequest::None,
        name: "t".into(),
        homehost: None,
        assume_clean: true,
        size_kib: None,
        now: 1_700_000_000,
        uuid: [7; 16],
        seed: 1,
        md_minor: 0,
    }
}

fn slot<D>(name: &str, dev: D) -> CreateSlot<D> {
    CreateSlot::Device {
        name: name.into(),
        dev,
        write_mostly: false,
        failfast: false,
    }
}

// ---------------------------------------------------------------------------------------------
// FaultyDevice

#[test]
fn fault_rules_fire_exactly_where_specified() {
    let (mut d, ctl) = FaultyDevice::new(MemDevice::new(64 * 1024));
    let range = ctl.add(FaultRule::reads().overlapping(8192..12288));
    let nth = ctl.add(FaultRule::writes().nth(2));
    let mut b = [0u8; 4096];
    for off in (0..64 * 1024).step_by(4096) {
        let r = d.read_at(off, &mut b);
        assert_eq!(eio(r), off == 8192, "read at {off}");
    }
    for i in 1..=4 {
        assert_eq!(eio(d.write_at(0, &b)), i == 2, "write {i}");
    }
    assert_eq!((ctl.hits(range), ctl.hits(nth)), (1, 1));
    assert!(ctl.is_active(range) && ctl.is_active(nth));
    let s = ctl.stats();
    assert_eq!((s.reads, s.writes, s.flushes), (16, 4, 0));
    assert_eq!((s.read_faults, s.write_faults, s.faults()), (1, 1, 2));

    // "Every write after op count K": device-wide count (20 seen so far), not reset with stats.
    ctl.reset_stats();
    ctl.clear();
    ctl.add(FaultRule::writes().from_device_op(21));
    assert!(d.write_at(0, &b).is_ok()); // op index 20
    assert!(d.read_at(0, &mut b).is_ok()); // op 21, not a write
    assert!(eio(d.write_at(0, &b)));
    assert!(eio(d.write_at(4096, &b)));
}

#[test]
fn fault_control_reaches_a_device_owned_by_an_array() {
    let (a, ctl_a) = FaultyDevice::new(SparseDevice::new(64 * MIB));
    let (b, ctl_b) = FaultyDevice::new(SparseDevice::new(64 * MIB));
    let mut arr = Array::create(vec![slot("a", a), slot("b", b)], &opts()).unwrap();
    arr.write(0, &[1; 4096]).unwrap();
    assert_eq!(arr.in_sync_count(), 2);

    // The disk dies while the array owns it.
    ctl_b.kill();
    arr.write(4096, &[2; 4096]).unwrap();
    assert_eq!(arr.in_sync_count(), 1);
    assert!(matches!(arr.members()[1].state, MemberState::Faulty));
    assert!(ctl_b.stats().write_faults >= 1);

    // Reads fall over to the surviving member's data; a bad sector on it is then fatal.
    let mut buf = [0u8; 4096];
    arr.read(4096, &mut buf).unwrap();
    assert_eq!(buf, [2; 4096]);
    let data_off = arr.members()[0].data_byte(4096);
    let bad = ctl_a.add(
        FaultRule::reads()
            .overlapping(data_off..data_off + 512)
            .once(),
    );
    assert!(arr.read(4096, &mut buf).is_err());
    assert_eq!(ctl_a.hits(bad), 1);
    arr.read(4096, &mut buf).unwrap(); // one-shot: gone
}

#[test]
fn fault_control_works_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<FaultControl>();
    send_sync::<FaultyDevice<MemDevice>>();
    use std::sync::mpsc;
    let (mut d, ctl) = FaultyDevice::new(MemDevice::new(MIB as usize));
    let (tx, rx) = mpsc::channel::<u64>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        let mut n = 0u64;
        loop {
            go_rx.recv().unwrap();
            let r = d.write_at(n * 512 % MIB, &[n as u8; 512]);
            n += 1;
            tx.send(n).unwrap();
            if r.is_err() {
                return (n, d);
            }
        }
    });
    for i in 1..=5 {
        go_tx.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), i);
    }
    let ctl2 = ctl.clone();
    std::thread::spawn(move || ctl2.kill()).join().unwrap();
    go_tx.send(()).unwrap();
    let (n, d) = worker.join().unwrap();
    assert_eq!(n, 6);
    assert_eq!(ctl.stats().write_faults, 1);
    assert_eq!(
        d.inner().as_slice()[5 * 512],
        0,
        "failed write did not land"
    );
    assert_eq!(d.inner().as_slice()[4 * 512], 4);
}

#[test]
fn faulty_device_boxed_as_dyn() {
    let (d, ctl) = FaultyDevice::new(SparseDevice::new(TIB));
    let mut devs: Vec<Box<dyn BlockDevice>> = vec![Box::new(d)];
    devs[0].write_at(TIB - 512, &[3; 512]).unwrap();
    ctl.add(FaultRule::flushes().once());
    assert!(eio(devs[0].flush()));
    assert!(devs[0].flush().is_ok());
    assert_eq!(devs[0].size(), TIB);
}

// ---------------------------------------------------------------------------------------------
// LatencyDevice / ServiceModel

#[test]
fn sequential_io_is_cheaper_than_random_on_a_rotational_model() {
    let model = ServiceModel::rotational(20_000, 3_000_000, 2_000_000).with_transfer(5_000_000);
    let mut seq = LatencyDevice::new(SparseDevice::new(8 * GIB), model.clone());
    let mut rnd = LatencyDevice::new(SparseDevice::new(8 * GIB), model);
    let buf = [0u8; 4096];
    let mut x = 12345u64;
    for i in 0..256u64 {
        seq.write_at(i * 4096, &buf).unwrap();
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rnd.write_at((x >> 20) % (8 * GIB / 4096) * 4096, &buf)
            .unwrap();
    }
    // Sequential: no seeks at all.
    let per_io = 20_000 + 4096 * 5_000_000 / MIB;
    assert_eq!(seq.now(), 256 * per_io);
    // Random: at least a base seek each time, more with distance.
    assert!(rnd.now() > 256 * (per_io + 3_000_000), "{}", rnd.now());
    assert!(rnd.now() > 10 * seq.now());

    // A fixed model does not care about position.
    let mut a = LatencyDevice::new(SparseDevice::new(GIB), ServiceModel::fixed(1000));
    a.read_at(GIB - 512, &mut [0; 512]).unwrap();
    a.read_at(0, &mut [0; 512]).unwrap();
    assert_eq!(a.now(), 2000);
}

#[test]
fn service_model_queues_one_request_at_a_time() {
    let mut m = ServiceModel::fixed(1000);
    // Four requests arrive together: they complete back to back.
    let done: Vec<u64> = (0..4).map(|i| m.submit(0, i * 4096, 4096)).collect();
    assert_eq!(done, [1000, 2000, 3000, 4000]);
    // One arriving while busy waits; one arriving after idles the disk.
    assert_eq!(m.submit(3500, 0, 512), 5000);
    assert_eq!(m.submit(9000, 0, 512), 10_000);
    assert_eq!(m.busy_ns(), 6000);
    assert_eq!(m.busy_until(), 10_000);

    // Head position follows the end of the last request; flushes do not move it.
    let mut r = ServiceModel::rotational(0, 100, 1000).with_flush(50);
    assert_eq!(r.submit(0, GIB, 512), 100 + 1000);
    assert_eq!(r.head(), GIB + 512);
    assert_eq!(r.submit_flush(0), 1150);
    assert_eq!(r.submit(0, GIB + 512, 512), 1150); // sequential, no per-io cost
    assert_eq!(r.ios(), 3);
}

#[test]
fn latency_device_clock_and_think_time() {
    let mut d = LatencyDevice::new(
        MemDevice::new(4096),
        ServiceModel::fixed(10).with_flush(100),
    );
    d.write_at(0, &[1; 512]).unwrap();
    d.advance(1000);
    d.flush().unwrap();
    assert_eq!(d.now(), 1110);
    // Out-of-range requests are rejected before they reach the disk: free.
    assert!(d.write_at(4096, &[1]).is_err());
    assert_eq!(d.now(), 1110);
    // Injected I/O errors are charged.
    let (f, ctl) = FaultyDevice::new(MemDevice::new(4096));
    let mut d = LatencyDevice::new(f, ServiceModel::fixed(10));
    ctl.kill();
    assert!(eio(d.read_at(0, &mut [0; 512])));
    assert_eq!(d.now(), 10);
}

#[test]
fn latency_device_real_sleep() {
    let mut d = LatencyDevice::new(MemDevice::new(4096), ServiceModel::fixed(2_000_000))
        .with_real_sleep(true);
    let t = std::time::Instant::now();
    for _ in 0..5 {
        d.write_at(0, &[0; 512]).unwrap();
    }
    assert!(t.elapsed() >= std::time::Duration::from_millis(10));
    assert_eq!(d.now(), 10_000_000);
}

// ---------------------------------------------------------------------------------------------
// CrashDevice / SparseDevice

/// The first `len` bytes of an image (without materializing all of it).
fn head(mut img: SparseDevice, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    img.read_at(0, &mut v).unwrap();
    v
}

fn sector(v: &[u8], s: u64) -> &[u8] {
    &v[(s * 512) as usize..(s * 512 + 512) as usize]
}

/// A device with flushed generation-1 data in sectors 0..64 and unflushed generation-2 data
/// written over sectors 0..32 in 4 KiB writes, plus unflushed data in fresh sectors 64..96.
fn scenario() -> CrashDevice {
    let mut d = CrashDevice::new(GIB);
    for s in 0..64u64 {
        d.write_at(s * 512, &[1; 512]).unwrap();
    }
    d.flush().unwrap();
    for w in 0..4u64 {
        d.write_at(w * 4096, &[2; 4096]).unwrap();
    }
    for w in 8..12u64 {
        d.write_at(w * 4096, &[3; 4096]).unwrap();
    }
    d
}

#[test]
fn reads_before_the_cut_see_the_cache() {
    let mut d = scenario();
    let mut b = vec![0u8; 64 * 1024];
    d.read_at(0, &mut b).unwrap();
    assert!(b[..16384].iter().all(|&x| x == 2));
    assert!(b[16384..32768].iter().all(|&x| x == 1));
    assert!(b[32768..49152].iter().all(|&x| x == 3));
    assert!(b[49152..].iter().all(|&x| x == 0));
    // The durable view and the durability map say what a cut could lose.
    d.read_durable(0, &mut b).unwrap();
    assert!(b[..32768].iter().all(|&x| x == 1));
    assert!(!d.is_durable(0, 512));
    assert!(d.is_durable(16384, 16384));
    assert!(!d.is_durable(16384, 16385));
    assert_eq!((d.pending_writes(), d.pending_bytes()), (8, 32768));
    // A 1 GiB device that saw 48 KiB of writes holds about that much.
    assert!(d.durable().allocated_bytes() <= 64 * 1024);
}

#[test]
fn flushed_data_always_survives_and_unflushed_survives_partially() {
    let (mut kept, mut dropped, mut torn) = (0, 0, 0);
    let mut outcomes = std::collections::HashSet::new();
    for seed in 0..200 {
        let mut d = scenario();
        let img = head(d.power_cut(seed), 128 * 512);
        for s in 0..32 {
            let v = sector(&img, s);
            assert!(v == [1; 512] || v == [2; 512], "seed {seed} sector {s}");
        }
        for s in 32..64 {
            assert_eq!(sector(&img, s), [1; 512], "seed {seed}: flushed data lost");
        }
        for s in 64..96 {
            let v = sector(&img, s);
            assert!(v == [0; 512] || v == [3; 512], "seed {seed} sector {s}");
        }
        assert!(img[96 * 512..].iter().all(|&x| x == 0));
        assert!(d.durable().allocated_bytes() <= 64 * 1024);
        let c = d.last_cut();
        assert_eq!(c.kept + c.dropped + c.torn, 8);
        kept += c.kept;
        dropped += c.dropped;
        torn += c.torn;
        outcomes.insert(img[..96 * 512].to_vec());

        // After the cut the device holds the durable image with an empty cache.
        assert_eq!(d.pending_writes(), 0);
        let mut b = vec![0u8; 96 * 512];
        d.read_at(0, &mut b).unwrap();
        assert_eq!(b, img[..96 * 512]);
    }
    assert!(
        kept > 100 && dropped > 100 && torn > 100,
        "{kept} {dropped} {torn}"
    );
    assert!(
        outcomes.len() > 150,
        "only {} distinct outcomes",
        outcomes.len()
    );
}

#[test]
fn same_seed_same_result() {
    for seed in [0, 1, 42, u64::MAX] {
        let a = scenario().power_cut(seed);
        let b = scenario().power_cut(seed);
        assert_eq!(a, b, "seed {seed}");
    }
    assert_ne!(scenario().power_cut(1), scenario().power_cut(2));
}

#[test]
fn torn_writes_tear_at_sector_boundaries() {
    let mut saw_partial = false;
    for seed in 0..100 {
        let mut d = CrashDevice::new(MIB);
        d.write_at(0, &[9; 8 * 512]).unwrap();
        let img = head(d.power_cut(seed), 8 * 512);
        let kept: Vec<bool> = (0..8).map(|s| sector(&img, s) == [9; 512]).collect();
        for s in 0..8 {
            assert!(kept[s as usize] || sector(&img, s) == [0; 512]);
        }
        saw_partial |= kept.iter().any(|&k| k) && kept.iter().any(|&k| !k);
    }
    assert!(saw_partial);
    // With a 4 KiB atomic unit the same write is all or nothing.
    for seed in 0..100 {
        let mut d = CrashDevice::new(MIB).with_atomic_unit(4096);
        d.write_at(0, &[9; 4096]).unwrap();
        let img = head(d.power_cut(seed), 4096);
        assert!(img[..4096].iter().all(|&x| x == 9) || img[..4096].iter().all(|&x| x == 0));
    }
}

#[test]
fn fua_and_lose_all() {
    let mut d = CrashDevice::new(MIB);
    d.write_at(0, &[5; 512]).unwrap();
    d.write_durable(512, &[6; 512]).unwrap();
    let img = head(d.power_cut_lose_all(), 1024);
    assert_eq!(sector(&img, 0), [0; 512]);
    assert_eq!(sector(&img, 1), [6; 512]);
    assert_eq!(d.last_cut().dropped, 1);
}

#[test]
fn crash_device_as_array_member_survives_a_cut_after_flush() {
    let a = CrashDevice::new(64 * MIB);
    let b = CrashDevice::new(64 * MIB);
    let mut arr = Array::create(vec![slot("a", a), slot("b", b)], &opts()).unwrap();
    arr.write(MIB, &[0xab; 8192]).unwrap();
    arr.flush().unwrap();
    arr.write(2 * MIB, &[0xcd; 8192]).unwrap(); // never flushed
    let off = arr.members()[0].data_byte(MIB);
    let mut members: Vec<CrashDevice> = arr.stop().unwrap().into_iter().map(|m| m.dev).collect();
    for (i, m) in members.iter_mut().enumerate() {
        let mut img = m.power_cut(i as u64);
        let mut buf = vec![0u8; 8192];
        img.read_at(off, &mut buf).unwrap();
        assert!(buf.iter().all(|&x| x == 0xab), "member {i}");
    }
}

#[test]
fn sparse_16_tib_device_reads_and_writes_at_the_end() {
    let mut d = SparseDevice::new(16 * TIB);
    assert_eq!(d.size(), 16 * TIB);
    let end = 16 * TIB - 8192;
    let data: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    d.write_at(end, &data).unwrap();
    let mut b = vec![0u8; 8192];
    d.read_at(end, &mut b).unwrap();
    assert_eq!(b, data);
    // Unaligned read straddling written and unwritten pages.
    let mut b = vec![1u8; 100];
    d.read_at(end - 50, &mut b).unwrap();
    assert!(b[..50].iter().all(|&x| x == 0));
    assert_eq!(b[50..], data[..50]);
    d.read_at(8 * TIB, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 0));
    assert_eq!(d.allocated_bytes(), 8192);
    assert!(matches!(
        d.write_at(16 * TIB - 511, &[0; 512]),
        Err(DeviceError::OutOfRange { .. })
    ));
    assert!(matches!(
        d.read_at(u64::MAX, &mut [0; 1]),
        Err(DeviceError::OutOfRange { .. })
    ));
    assert!(SparseDevice::new(4096).to_mem_device().is_some());
}

#[test]
fn sparse_members_make_a_huge_array_cheaply() {
    let a = SparseDevice::new(16 * TIB);
    let b = SparseDevice::new(16 * TIB);
    let mut o = opts();
    o.bitmap = BitmapRequest::Internal { chunk_bytes: None };
    let mut arr = Array::create(vec![slot("a", a), slot("b", b)], &o).unwrap();
    assert!(arr.size() > 15 * TIB);
    let last = arr.size() - 4096;
    arr.write(last, &[0x5a; 4096]).unwrap();
    let mut buf = [0u8; 4096];
    arr.read(last, &mut buf).unwrap();
    assert_eq!(buf, [0x5a; 4096]);
    for d in arr.devices() {
        assert!(d.allocated_bytes() < 4 * MIB, "{}", d.allocated_bytes());
    }
}
