//! The RAID1 drivers over real devices: the blocking driver over memory and file members (with
//! injected faults), the io_uring driver over O_DIRECT files.
//! (Wrapped in `mod raid1_drivers` so that `cargo test -p mdraid raid1_drivers` selects them.)

mod raid1_drivers {

    use mdraid::device::{
        BlockDevice, FaultRule, FaultyDevice, FileDevice, MemDevice, OpenOptions,
    };
    use mdraid::raid1::driver::{
        BlockingDriver, BufId, DriverError, MetadataSink, NoopSink, RecordingSink, SinkError,
        UringConfig, UringDriver,
    };
    use mdraid::raid1::{BadBlockTable, Event, PositionState, Raid1, Raid1Config};
    use mdraid::testutil::TempDir;

    const SECTOR: usize = 512;
    const MIB: usize = 1 << 20;

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

    /// Two in-memory members, the second with its data area 64 KiB in.
    fn mem_driver<S: MetadataSink<MemDevice>>(
        cfg: Raid1Config,
        sink: S,
    ) -> BlockingDriver<MemDevice, S> {
        let engine = Raid1::new(cfg).unwrap();
        let devs = vec![Some(MemDevice::new(MIB)), Some(MemDevice::new(MIB + 65536))];
        BlockingDriver::new(engine, devs, vec![0, 65536], sink).unwrap()
    }

    fn data_area(d: &MemDevice, offset: usize, sectors: u64) -> &[u8] {
        &d.as_slice()[offset..offset + sectors as usize * SECTOR]
    }

    #[test]
    fn blocking_mem_roundtrip_and_mirrors_identical() {
        let sectors = 2048;
        let mut drv = mem_driver(Raid1Config::new(2, sectors), RecordingSink::default());
        let mut model = vec![0u8; sectors as usize * SECTOR];
        for i in 0..200u64 {
            let sector = (i * 37) % (sectors - 16);
            let len = (1 + i % 16) as usize * SECTOR;
            let buf = data(i, len);
            drv.write(sector, &buf, i % 7 == 0).unwrap();
            model[sector as usize * SECTOR..][..len].copy_from_slice(&buf);
            if i % 10 == 0 {
                drv.flush().unwrap();
            }
        }
        drv.discard(0, 8).unwrap();
        let mut back = vec![0u8; model.len()];
        drv.read(0, &mut back).unwrap();
        assert!(back == model, "array contents differ from the model");
        let devs = drv.devices();
        let (a, b) = (devs[0].as_ref().unwrap(), devs[1].as_ref().unwrap());
        assert!(data_area(a, 0, sectors) == data_area(b, 65536, sectors));
        assert!(data_area(a, 0, sectors) == &model[..]);
        // The first write dirtied the array through the sink.
        assert!(matches!(drv.sink().events[0], Event::MarkDirty { .. }));
        // Both mirrors served reads of a large request? At least every write reached both.
        let c0 = drv.engine().member_counters(0).unwrap();
        let c1 = drv.engine().member_counters(1).unwrap();
        assert_eq!(c0.writes, c1.writes);
        assert_eq!(c0.errors + c1.errors, 0);
    }

    #[test]
    fn blocking_rejects_bad_buffers_and_ranges() {
        let mut drv = mem_driver(Raid1Config::new(2, 1024), NoopSink);
        assert!(matches!(
            drv.write(0, &[0; 100], false),
            Err(DriverError::InvalidBuffer(_))
        ));
        assert!(matches!(
            drv.read(0, &mut []),
            Err(DriverError::InvalidBuffer(_))
        ));
        assert!(matches!(
            drv.read(1020, &mut [0; 4096]),
            Err(DriverError::Submit(_))
        ));
        // Misuse leaves the driver usable.
        drv.write(0, &[1; 512], false).unwrap();
        let engine = Raid1::new(Raid1Config::new(2, 1024)).unwrap();
        let r = BlockingDriver::new(engine, vec![Some(MemDevice::new(MIB))], vec![0], NoopSink);
        assert!(matches!(r, Err(DriverError::InvalidConfig(_))));
    }

    #[test]
    fn blocking_file_members_direct_and_buffered() {
        let dir = TempDir::new("drv-files");
        let sectors = 4096u64;
        for direct in [false, true] {
            let paths: Vec<_> = (0..2)
                .map(|i| {
                    let p = dir.path().join(format!("m{i}-{direct}.img"));
                    std::fs::File::create(&p)
                        .unwrap()
                        .set_len(4 * MIB as u64)
                        .unwrap();
                    p
                })
                .collect();
            let open = |p: &std::path::Path| {
                FileDevice::open_with(
                    p,
                    OpenOptions {
                        direct,
                        ..Default::default()
                    },
                )
            };
            let devs: Vec<_> = match paths.iter().map(|p| open(p)).collect() {
                Ok(d) => d,
                Err(e) if direct => {
                    refused("O_DIRECT", &e);
                    println!("O_DIRECT unavailable here ({e}), skipping the direct pass");
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            let engine = Raid1::new(Raid1Config::new(2, sectors)).unwrap();
            let mut drv = BlockingDriver::new(
                engine,
                devs.into_iter().map(Some).collect(),
                vec![8192, 1 << 20],
                NoopSink,
            )
            .unwrap();
            let mut model = vec![0u8; sectors as usize * SECTOR];
            for i in 0..64u64 {
                let sector = (i * 8 * 13) % (sectors - 64);
                let len = (8 * (1 + i % 8)) as usize * SECTOR;
                let buf = data(i + 1000, len);
                drv.write(sector, &buf, false).unwrap();
                model[sector as usize * SECTOR..][..len].copy_from_slice(&buf);
            }
            drv.flush().unwrap();
            let mut back = vec![0u8; model.len()];
            drv.read(0, &mut back).unwrap();
            assert!(back == model);
            drop(drv);
            let a = std::fs::read(&paths[0]).unwrap();
            let b = std::fs::read(&paths[1]).unwrap();
            let len = model.len();
            assert!(a[8192..][..len] == model[..], "member 0 data area");
            assert!(b[1 << 20..][..len] == model[..], "member 1 data area");
        }
    }

    #[test]
    fn blocking_read_error_recovered_and_rewritten() {
        let mut cfg = Raid1Config::new(2, 2048);
        // Reads prefer member 0; member 1 serves only as the last resort.
        cfg.members[1].write_mostly = true;
        let engine = Raid1::new(cfg).unwrap();
        let (f0, ctl0) = FaultyDevice::new(MemDevice::new(MIB));
        let (f1, _ctl1) = FaultyDevice::new(MemDevice::new(MIB));
        let mut drv = BlockingDriver::new(
            engine,
            vec![Some(f0), Some(f1)],
            vec![0, 0],
            RecordingSink::default(),
        )
        .unwrap();
        let good = data(7, 64 * SECTOR);
        drv.write(100, &good, false).unwrap();
        // Rot sectors 110..112 on member 0 behind the engine's back; the next read of them
        // reports a media error once.
        let d0 = drv.devices_mut()[0].as_mut().unwrap();
        d0.inner_mut().as_mut_slice()[110 * SECTOR..112 * SECTOR].fill(0xee);
        let rule = ctl0.add(FaultRule::reads().overlapping(110 * 512..112 * 512).once());
        let mut back = vec![0u8; good.len()];
        drv.read(100, &mut back).unwrap();
        assert!(back == good, "data served from the other mirror");
        assert_eq!(ctl0.hits(rule), 1);
        assert!(!drv.last_member_failures().is_empty());
        // Repaired: member 0 holds the good bytes again and the engine counted it.
        let d0 = drv.devices()[0].as_ref().unwrap();
        assert!(d0.inner().as_slice()[100 * SECTOR..164 * SECTOR] == good[..]);
        let c0 = drv.engine().member_counters(0).unwrap();
        assert!(c0.corrected > 0, "corrected sectors: {c0:?}");
        assert_eq!(drv.engine().member_state(0), Some(PositionState::InSync));
        assert_eq!(drv.engine().repairs_in_flight(), 0);
    }

    #[test]
    fn blocking_unrecoverable_read_reports_members() {
        let engine = Raid1::new(Raid1Config::new(2, 2048)).unwrap();
        let (f0, ctl0) = FaultyDevice::new(MemDevice::new(MIB));
        let (f1, ctl1) = FaultyDevice::new(MemDevice::new(MIB));
        let mut drv =
            BlockingDriver::new(engine, vec![Some(f0), Some(f1)], vec![0, 0], NoopSink).unwrap();
        ctl0.add(FaultRule::reads().overlapping(0..4096));
        ctl1.add(FaultRule::reads().overlapping(0..4096));
        let mut b = vec![0u8; 4096];
        match drv.read(0, &mut b) {
            Err(DriverError::Array { members, .. }) => {
                let mut who: Vec<_> = members.iter().map(|m| m.member).collect();
                who.sort_unstable();
                who.dedup();
                assert_eq!(who, vec![0, 1]);
            }
            other => panic!("expected an array error, got {other:?}"),
        }
        // The driver keeps working for other ranges.
        drv.read(8, &mut b).unwrap();
    }

    #[test]
    fn blocking_write_error_fails_member_through_sink() {
        let engine = Raid1::new(Raid1Config::new(2, 2048)).unwrap();
        let (f0, _ctl0) = FaultyDevice::new(MemDevice::new(MIB));
        let (f1, ctl1) = FaultyDevice::new(MemDevice::new(MIB));
        let mut drv = BlockingDriver::new(
            engine,
            vec![Some(f0), Some(f1)],
            vec![0, 0],
            RecordingSink::default(),
        )
        .unwrap();
        ctl1.add(FaultRule::writes());
        let buf = data(3, 4096);
        drv.write(16, &buf, false).unwrap();
        assert!(drv
            .sink()
            .events
            .iter()
            .any(|e| matches!(e, Event::MemberFailed { member: 1, .. })));
        assert_eq!(drv.engine().member_state(1), Some(PositionState::Faulty));
        // Degraded but working.
        let mut back = vec![0u8; 4096];
        drv.read(16, &mut back).unwrap();
        assert!(back == buf);
    }

    #[test]
    fn blocking_write_error_records_bad_blocks() {
        let mut cfg = Raid1Config::new(2, 2048);
        cfg.members[1].bad_blocks = Some(BadBlockTable {
            ranges: Vec::new(),
            capacity: 512,
        });
        let engine = Raid1::new(cfg).unwrap();
        let (f0, _ctl0) = FaultyDevice::new(MemDevice::new(MIB));
        let (f1, ctl1) = FaultyDevice::new(MemDevice::new(MIB));
        let mut drv = BlockingDriver::new(
            engine,
            vec![Some(f0), Some(f1)],
            vec![0, 0],
            RecordingSink::default(),
        )
        .unwrap();
        ctl1.add(FaultRule::writes().overlapping(32 * 512..40 * 512).once());
        drv.write(32, &data(4, 8 * SECTOR), false).unwrap();
        assert!(drv.sink().events.iter().any(|e| matches!(
            e,
            Event::BadBlocks {
                member: 1,
                sector: 32,
                sectors: 8,
                ..
            }
        )));
        assert_eq!(drv.engine().member_state(1), Some(PositionState::InSync));
        assert_eq!(drv.engine().bad_blocks(1), Some(&[(32u64, 8u64)][..]));
    }

    #[test]
    fn blocking_idle_marks_clean() {
        let mut drv = mem_driver(Raid1Config::new(2, 1024), RecordingSink::default());
        drv.write(0, &[5; 4096], false).unwrap();
        assert!(!drv.engine().is_clean());
        let deadline = drv.engine().poll_timeout().expect("safe-mode timer armed");
        assert_eq!(drv.idle(deadline - 1).unwrap(), Some(deadline));
        assert!(!drv.engine().is_clean());
        assert_eq!(drv.idle(deadline).unwrap(), None);
        assert!(drv.engine().is_clean());
        let kinds: Vec<_> = drv
            .sink()
            .events
            .iter()
            .map(|e| match e {
                Event::MarkDirty { .. } => "dirty",
                Event::MarkClean { .. } => "clean",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, vec!["dirty", "clean"]);
        // tick() on the real clock: nothing due, no timer armed.
        assert_eq!(drv.tick().unwrap(), None);
    }

    struct FailingSink;
    impl<D> MetadataSink<D> for FailingSink {
        fn apply(&mut self, _e: &Event, _d: &mut [Option<D>]) -> Result<(), SinkError> {
            Err("superblock write failed".into())
        }
    }

    #[test]
    fn blocking_sink_failure_poisons() {
        let mut drv = mem_driver(Raid1Config::new(2, 1024), FailingSink);
        // Reads need no metadata.
        drv.read(0, &mut [0; 512]).unwrap();
        match drv.write(0, &[1; 512], false) {
            Err(DriverError::Sink { event, .. }) => {
                assert!(matches!(event, Event::MarkDirty { .. }))
            }
            other => panic!("expected a sink error, got {other:?}"),
        }
        assert!(drv.is_poisoned());
        assert!(matches!(
            drv.read(0, &mut [0; 512]),
            Err(DriverError::Poisoned)
        ));
        let _ = drv.devices()[0].as_ref().unwrap().size();
    }

    // ------------------------------------------------------------------ io_uring

    fn direct_files(dir: &TempDir, tag: &str, n: usize, bytes: u64) -> Vec<std::path::PathBuf> {
        (0..n)
            .map(|i| {
                let p = dir.path().join(format!("{tag}{i}.img"));
                std::fs::File::create(&p).unwrap().set_len(bytes).unwrap();
                p
            })
            .collect()
    }

    fn open_direct(p: &std::path::Path) -> FileDevice {
        FileDevice::open_with(
            p,
            OpenOptions {
                direct: true,
                ..Default::default()
            },
        )
        .or_else(|e| {
            refused("O_DIRECT", &e);
            FileDevice::open(p)
        })
        .unwrap()
    }

    /// Where the kernel refuses io_uring or O_DIRECT, the tests that need it print and pass,
    /// unless `MDRAID_REQUIRE_URING=1` says this machine supports both: then it is a failure.
    fn refused(what: &str, e: &dyn std::fmt::Display) {
        if std::env::var("MDRAID_REQUIRE_URING").as_deref() == Ok("1") {
            panic!("{what} refused with MDRAID_REQUIRE_URING=1: {e}");
        }
    }

    /// Builds a uring driver, or `None` (printing why) where io_uring is unavailable.
    fn uring<S: MetadataSink<FileDevice>>(
        engine: Raid1,
        devs: Vec<Option<FileDevice>>,
        offsets: Vec<u64>,
        sink: S,
        cfg: UringConfig,
    ) -> Option<UringDriver<S>> {
        match UringDriver::new(engine, devs, offsets, sink, cfg) {
            Ok(d) => Some(d),
            Err(DriverError::UringUnavailable(e)) => {
                refused("io_uring", &e);
                println!("io_uring unavailable, skipping ({e})");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn uring_qd32_random_io_against_model() {
        qd32_against_model(true);
    }

    #[test]
    fn uring_qd32_unregistered_buffers() {
        qd32_against_model(false);
    }

    fn qd32_against_model(register: bool) {
        let dir = TempDir::new(if register {
            "drv-uring"
        } else {
            "drv-uring-nr"
        });
        let sectors: u64 = 2048; // 1 MiB array: 256 blocks, so requests overlap often
        let offsets = vec![4096u64, 1 << 20];
        let paths = direct_files(&dir, "m", 2, 4 << 20);
        let devs = paths.iter().map(|p| Some(open_direct(p))).collect();
        let engine = Raid1::new(Raid1Config::new(2, sectors)).unwrap();
        let mut ucfg = UringConfig::new(32, 40, 4096);
        ucfg.register_buffers = register;
        let Some(mut drv) = uring(
            engine,
            devs,
            offsets.clone(),
            RecordingSink::default(),
            ucfg,
        ) else {
            return;
        };
        // Root or a generous RLIMIT_MEMLOCK lets registration succeed; it may fail elsewhere.
        if !register {
            assert!(!drv.buffers_registered());
        }
        println!("fixed buffers registered: {}", drv.buffers_registered());
        let blocks = sectors / 8;
        let mut model = vec![0u8; sectors as usize * SECTOR];
        let mut free: Vec<BufId> = (0..drv.buffer_count()).map(BufId).collect();
        // ReqId -> (buffer, expected read data)
        let mut pending = std::collections::HashMap::new();
        let mut rng = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut issued, mut reads_checked, mut max_inflight) = (0, 0, 0);
        let check = |done: Vec<(mdraid::raid1::ReqId, Result<(), DriverError>)>,
                     drv: &mut UringDriver<RecordingSink>,
                     pending: &mut std::collections::HashMap<_, (BufId, Option<Vec<u8>>)>,
                     free: &mut Vec<BufId>,
                     reads_checked: &mut usize| {
            for (id, r) in done {
                r.unwrap();
                let (buf, want) = pending.remove(&id).expect("known request");
                if let Some(want) = want {
                    assert!(drv.buffer(buf).unwrap() == &want[..], "read data");
                    *reads_checked += 1;
                }
                free.push(buf);
            }
        };
        while issued < 1000 {
            while pending.len() < 32 && issued < 1000 {
                let buf = free.pop().unwrap();
                let block = next() % blocks;
                let sector = block * 8;
                let range = sector as usize * SECTOR..(sector as usize + 8) * SECTOR;
                if next() % 2 == 0 {
                    let d = data(issued as u64 + 1, 4096);
                    drv.buffer_mut(buf).unwrap().copy_from_slice(&d);
                    model[range].copy_from_slice(&d);
                    pending.insert(
                        drv.submit_write(sector, 8, buf, issued % 50 == 0).unwrap(),
                        (buf, None),
                    );
                } else {
                    let want = model[range].to_vec();
                    pending.insert(drv.submit_read(sector, 8, buf).unwrap(), (buf, Some(want)));
                }
                issued += 1;
                max_inflight = max_inflight.max(drv.in_flight());
            }
            let done = drv.reap(8).unwrap();
            assert!(!done.is_empty());
            check(done, &mut drv, &mut pending, &mut free, &mut reads_checked);
        }
        let done = drv.run_until_idle().unwrap();
        check(done, &mut drv, &mut pending, &mut free, &mut reads_checked);
        assert!(pending.is_empty());
        assert_eq!(max_inflight, 32);
        assert!(reads_checked > 300, "{reads_checked} reads checked");
        let flush = drv.submit_flush().unwrap();
        let done = drv.run_until_idle().unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, flush);
        done.into_iter().for_each(|(_, r)| r.unwrap());
        // Whole-array read back in one request through a larger buffer is not possible with
        // 4 KiB buffers: read it block by block.
        for b in 0..blocks {
            let id = drv.submit_read(b * 8, 8, BufId(0)).unwrap();
            let done = drv.run_until_idle().unwrap();
            assert_eq!(done[0].0, id);
            let at = b as usize * 4096;
            assert!(drv.buffer(BufId(0)).unwrap() == &model[at..at + 4096]);
        }
        assert!(matches!(
            drv.sink().events[0],
            mdraid::raid1::Event::MarkDirty { .. }
        ));
        let c0 = drv.engine().member_counters(0).unwrap();
        let c1 = drv.engine().member_counters(1).unwrap();
        assert!(
            c0.reads > 0 && c1.reads > 0,
            "reads balanced over both mirrors"
        );
        assert_eq!(c0.errors + c1.errors, 0);
        drop(drv);
        let a = std::fs::read(&paths[0]).unwrap();
        let b = std::fs::read(&paths[1]).unwrap();
        let len = model.len();
        assert!(a[4096..][..len] == model[..], "member 0 matches the model");
        assert!(
            b[1 << 20..][..len] == model[..],
            "member 1 matches the model"
        );
    }

    #[test]
    fn uring_short_read_retried_and_repaired() {
        let dir = TempDir::new("drv-uring3");
        let paths = direct_files(&dir, "m", 2, 1 << 20);
        let mut cfg = Raid1Config::new(2, 2048);
        // Reads go to member 1 first; member 0 is the last resort.
        cfg.members[0].write_mostly = true;
        let engine = Raid1::new(cfg).unwrap();
        let devs = paths.iter().map(|p| Some(open_direct(p))).collect();
        let Some(mut drv) = uring(
            engine,
            devs,
            vec![0, 0],
            NoopSink,
            UringConfig::new(16, 4, 64 << 10),
        ) else {
            return;
        };
        let good = data(99, 64 << 10);
        drv.buffer_mut(BufId(0)).unwrap().copy_from_slice(&good);
        drv.submit_write(1920, 128, BufId(0), false).unwrap();
        drv.run_until_idle().unwrap()[0].1.as_ref().unwrap();
        // Member 1 loses its last 32 KiB behind the driver's back: reads there come back short.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&paths[1])
            .unwrap()
            .set_len((1 << 20) - (32 << 10))
            .unwrap();
        drv.buffer_mut(BufId(1)).unwrap().fill(0);
        drv.submit_read(1920, 128, BufId(1)).unwrap();
        let done = drv.run_until_idle().unwrap();
        done[0].1.as_ref().unwrap();
        assert!(drv.buffer(BufId(1)).unwrap() == &good[..]);
        let c1 = drv.engine().member_counters(1).unwrap();
        assert!(c1.errors > 0, "{c1:?}");
        assert!(c1.corrected > 0, "repair rewrote member 1: {c1:?}");
        drop(drv);
        let b = std::fs::read(&paths[1]).unwrap();
        assert_eq!(b.len(), 1 << 20, "the repair wrote the lost tail back");
        assert!(b[1920 * 512..] == good[..]);
    }

    #[test]
    fn drivers_are_send() {
        fn send<T: Send>() {}
        send::<UringDriver<NoopSink>>();
        send::<BlockingDriver<FileDevice, RecordingSink>>();
    }

    #[test]
    fn uring_missing_member_fails_through_sink_and_buffers_guarded() {
        let dir = TempDir::new("drv-uring2");
        let paths = direct_files(&dir, "m", 1, 1 << 20);
        let engine = Raid1::new(Raid1Config::new(2, 1024)).unwrap();
        // Slot 1 has no device although the engine believes it in sync: its I/O fails (ENXIO).
        let Some(mut drv) = uring(
            engine,
            vec![Some(open_direct(&paths[0])), None],
            vec![0, 0],
            RecordingSink::default(),
            UringConfig::new(8, 4, 8192),
        ) else {
            return;
        };
        drv.buffer_mut(BufId(1)).unwrap().fill(0x5a);
        let id = drv.submit_write(0, 16, BufId(1), false).unwrap();
        // Held while in flight.
        assert!(drv.buffer(BufId(1)).is_none());
        assert!(matches!(
            drv.submit_read(0, 8, BufId(1)),
            Err(DriverError::InvalidBuffer(_))
        ));
        assert!(matches!(
            drv.submit_read(0, 17, BufId(2)),
            Err(DriverError::InvalidBuffer(_))
        ));
        let done = drv.run_until_idle().unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, id);
        assert!(done[0].1.is_ok());
        assert!(drv
            .sink()
            .events
            .iter()
            .any(|e| matches!(e, mdraid::raid1::Event::MemberFailed { member: 1, .. })));
        assert_eq!(drv.engine().member_state(1), Some(PositionState::Faulty));
        drv.buffer_mut(BufId(1)).unwrap().fill(0);
        drv.submit_read(0, 16, BufId(1)).unwrap();
        let done = drv.reap(10).unwrap();
        assert!(done[0].1.is_ok());
        assert!(drv.buffer(BufId(1)).unwrap().iter().all(|&b| b == 0x5a));
        // Timers: clean marking once idle.
        let deadline = drv.engine().poll_timeout().unwrap();
        drv.idle(deadline).unwrap();
        assert!(drv.engine().is_clean());
        assert_eq!(drv.reap(1).unwrap().len(), 0, "nothing in flight");
    }

    // ------------------------------------------------------------------ benchmarks

    #[test]
    fn bench_functions_run_and_report() {
        use mdraid::raid1::driver::bench;
        let dir = TempDir::new("drv-bench");
        for (name, r) in bench::all(Some(dir.path())) {
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
                Err(DriverError::UringUnavailable(e)) => {
                    refused("io_uring", &e);
                    println!("io_uring unavailable, skipping {name} ({e})")
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
}
