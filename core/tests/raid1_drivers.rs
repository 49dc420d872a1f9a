//! The drivers of the array machine over real devices: the blocking one (`Array`) over memory
//! members with injected faults, and the benchmarks' functions. (The io_uring driver over
//! files has its own file, `uring_driver.rs`.) Wrapped in `mod raid1_drivers` so that
//! `cargo test -p mdraid raid1_drivers` selects them.
//!
//! These were the tests of the engine-only `BlockingDriver` + `MetadataSink`; each check now
//! runs where that behaviour lives: the machine's metadata on real member bytes.

mod common;

mod raid1_drivers {

    use mdraid::array::{Array, AssembleOptions, CreateOptions, CreateSlot, MemberState};
    use mdraid::device::{FaultRule, FaultyDevice, MemDevice};
    use mdraid::format::probe::{probe, Superblock};
    use mdraid::format::MetadataVersion;

    const SECTOR: usize = 512;
    const MIB: u64 = 1 << 20;
    const NOW: u64 = 1_800_000_000;

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

    type Dev = FaultyDevice<MemDevice>;

    /// A clean 1.2 array (no bitmap) over two 4 MiB memory members with fault injection,
    /// member 0 write-mostly if `wm0`; the fault controls come back too.
    fn array(wm0: bool) -> (Array<Dev>, Vec<mdraid::device::FaultControl>) {
        let mut ctls = Vec::new();
        let slots = (0..2)
            .map(|i| {
                let (d, c) = FaultyDevice::new(MemDevice::new(4 * MIB as usize));
                ctls.push(c);
                CreateSlot::Device {
                    name: format!("m{i}"),
                    dev: d,
                    write_mostly: wm0 && i == 0,
                    failfast: false,
                }
            })
            .collect();
        let opts = CreateOptions {
            name: "drv".into(),
            now: NOW,
            uuid: [3; 16],
            seed: 3,
            ..crate::common::create_options(MetadataVersion::V1_2, 2)
        };
        (Array::create(slots, &opts).unwrap(), ctls)
    }

    fn member_bytes(a: &Array<Dev>, i: usize, at: u64, len: usize) -> Vec<u8> {
        let m = &a.members()[i];
        let off = m.data_byte(at) as usize;
        a.devices()[i].inner().as_slice()[off..off + len].to_vec()
    }

    fn sb(dev: &mut MemDevice) -> Superblock {
        probe(dev, None).unwrap().sb
    }

    #[test]
    fn blocking_mem_roundtrip_and_mirrors_identical() {
        let (mut a, _) = array(false);
        let len = 1 << 20;
        let mut model = vec![0u8; len];
        for i in 0..200u64 {
            let at = (i * 37 % 2000) * 512;
            let n = (1 + i % 16) as usize * SECTOR;
            let buf = data(i, n);
            if i % 7 == 0 {
                a.write_fua(at, &buf).unwrap();
            } else {
                a.write(at, &buf).unwrap();
            }
            model[at as usize..][..n].copy_from_slice(&buf);
            if i % 10 == 0 {
                a.flush().unwrap();
            }
        }
        // Unaligned bytes too (read-modify-write of the covering sectors).
        a.write(1000, b"hello").unwrap();
        model[1000..1005].copy_from_slice(b"hello");
        let mut back = vec![0u8; len];
        a.read(0, &mut back).unwrap();
        assert!(back == model, "array contents differ from the model");
        assert!(member_bytes(&a, 0, 0, len) == model);
        assert!(member_bytes(&a, 1, 0, len) == model);
        // The first write dirtied the array on disk.
        assert!(a.is_dirty());
        let c0 = a.counters(0).unwrap();
        let c1 = a.counters(1).unwrap();
        assert_eq!(c0.writes, c1.writes, "every write reached both mirrors");
        assert_eq!(c0.errors + c1.errors, 0);
        let mut members = a.stop().unwrap();
        let s = sb(members[0].dev.inner_mut());
        assert!(matches!(s, Superblock::V1(ref v, _) if v.resync_offset == u64::MAX));
    }

    #[test]
    fn blocking_rejects_bad_ranges() {
        let (mut a, _) = array(false);
        let size = a.size();
        assert!(a.read(size - 512, &mut [0; 4096]).is_err());
        assert!(a.write(size, &[1; 512]).is_err());
        // Misuse leaves the array usable.
        a.write(0, &[1; 512]).unwrap();
        let mut b = [0u8; 512];
        a.read(0, &mut b).unwrap();
        assert_eq!(b, [1; 512]);
    }

    #[test]
    fn blocking_read_error_recovered_and_rewritten() {
        // Reads prefer member 1; member 0 (write-mostly) serves only as the last resort.
        let (mut a, ctls) = array(true);
        let good = data(7, 64 * SECTOR);
        a.write(100 * 512, &good).unwrap();
        // Rot sectors 110..112 on member 1 behind the array's back; the next read of them
        // reports a media error once.
        let off = a.members()[1].data_byte(110 * 512);
        let rule = ctls[1].add(FaultRule::reads().overlapping(off..off + 1024).once());
        let mut back = vec![0u8; good.len()];
        a.read(100 * 512, &mut back).unwrap();
        assert!(back == good, "data served from the other mirror");
        assert_eq!(ctls[1].hits(rule), 1);
        // Repaired: member 1 holds the good bytes and the engine counted it.
        assert!(member_bytes(&a, 1, 100 * 512, good.len()) == good);
        let c1 = a.counters(1).unwrap();
        assert!(c1.corrected > 0, "corrected sectors: {c1:?}");
        assert_eq!(a.members()[1].state, MemberState::InSync(1));
    }

    #[test]
    fn blocking_unrecoverable_read_fails_and_array_goes_on() {
        let (mut a, ctls) = array(false);
        for (i, c) in ctls.iter().enumerate() {
            let off = a.members()[i].data_byte(0);
            c.add(FaultRule::reads().overlapping(off..off + 4096));
        }
        let mut b = vec![0u8; 4096];
        assert!(a.read(0, &mut b).is_err(), "no mirror has the data");
        // Other ranges still work.
        a.read(8 * 512, &mut b).unwrap();
        assert!(a.counters(0).unwrap().errors + a.counters(1).unwrap().errors >= 2);
    }

    #[test]
    fn blocking_write_error_fails_member_recorded_on_survivor() {
        let (mut a, ctls) = array(false);
        ctls[1].add(FaultRule::writes());
        let buf = data(3, 4096);
        a.write(16 * 512, &buf).unwrap();
        assert_eq!(a.members()[1].state, MemberState::Faulty);
        // Degraded but working.
        let mut back = vec![0u8; 4096];
        a.read(16 * 512, &mut back).unwrap();
        assert!(back == buf);
        let mut members = a.stop().unwrap();
        // The survivor's superblock records member 1 as faulty (role 0xfffe).
        let Superblock::V1(s, _) = sb(members[0].dev.inner_mut()) else {
            panic!("1.2")
        };
        let Superblock::V1(s1, _) = sb(members[1].dev.inner_mut()) else {
            panic!("1.2")
        };
        assert_eq!(s.dev_roles[s1.dev_number as usize], 0xfffe);
        assert!(s.events > s1.events, "the failed member is stale");
        let (b, _) = Array::assemble(
            members.into_iter().map(|m| (m.name, m.dev)).collect(),
            &AssembleOptions {
                run: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(b.in_sync_count(), 1);
    }

    #[test]
    fn blocking_write_error_records_bad_blocks() {
        let (mut a, ctls) = array(false);
        assert!(a.members()[1].sb.to_bytes().len() >= 256);
        let off = a.members()[1].data_byte(32 * 512);
        ctls[1].add(FaultRule::writes().overlapping(off..off + 4096).once());
        a.write(32 * 512, &data(4, 8 * SECTOR)).unwrap();
        assert_eq!(a.members()[1].state, MemberState::InSync(1));
        let log = a.members()[1].badblocks.clone().expect("a bad-block log");
        let ranges: Vec<(u64, u64)> = log
            .entries
            .iter()
            .map(|e| (e.start_sector, u64::from(e.len_sectors)))
            .collect();
        let first = a.members()[1].sb.data_offset() + 32;
        assert_eq!(ranges, vec![(first, 8)], "{log:?}");
    }

    #[test]
    fn blocking_metadata_write_failure_fails_that_member() {
        let (mut a, ctls) = array(false);
        // Reads need no metadata.
        a.read(0, &mut [0; 512]).unwrap();
        // Member 1 refuses every write: its dirty superblock fails it; member 0 carries on.
        ctls[1].add(FaultRule::writes());
        a.write(0, &[1; 512]).unwrap();
        assert_eq!(a.members()[1].state, MemberState::Faulty);
        // Both refuse: nothing can take a write, and the array says so.
        ctls[0].add(FaultRule::writes());
        assert!(a.write(4096, &[2; 512]).is_err());
    }

    #[test]
    fn bench_functions_run_and_report() {
        use mdraid::driver::bench;
        let dir = mdraid::testutil::TempDir::new("drv-bench");
        let want =
            |n: &str| n.starts_with("sim_") || n.starts_with("seqwrite") || n.contains("randread");
        let results = bench::all(Some(dir.path()), &want);
        assert_eq!(results.len(), if cfg!(target_os = "linux") { 4 } else { 3 });
        for (name, r) in results {
            match r {
                Ok(r) => {
                    println!("{}", r.to_json());
                    assert!(r.value.is_finite() && r.baseline > 0.0, "{name}: {r:?}");
                    // Virtual-time results are deterministic; wall-clock ones depend on the
                    // machine and are only reported.
                    if name.starts_with("sim_") || name.starts_with("seqwrite") {
                        assert!(r.passed(), "{name}: {r:?}");
                    }
                }
                Err(e) if e.is_unavailable() => {
                    assert!(
                        std::env::var("MDRAID_REQUIRE_URING").as_deref() != Ok("1"),
                        "{name}: io_uring refused with MDRAID_REQUIRE_URING=1: {e}"
                    );
                    println!("io_uring unavailable, skipping {name} ({e})")
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
}
