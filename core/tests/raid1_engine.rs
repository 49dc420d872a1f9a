//! RAID1 engine behaviour, proved on the deterministic simulator.
//! (Wrapped in `mod raid1` so that `cargo test -p mdraid raid1` selects these tests.)

mod raid1 {

    use mdraid::raid1::sim::{Fault, Sim};
    use mdraid::raid1::*;

    const SECTOR: usize = 512;

    fn sim(cfg: Raid1Config) -> Sim {
        let n = cfg.array_sectors;
        Sim::new(Raid1::new(cfg).expect("config"), n)
    }

    fn cfg(slots: usize) -> Raid1Config {
        Raid1Config::new(slots, 4096)
    }

    fn pattern(seed: u64, sectors: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..sectors as usize * SECTOR)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn member_range(s: &Sim, m: usize, sector: u64, sectors: u64) -> &[u8] {
        let a = sector as usize * SECTOR;
        &s.members[m].data[a..a + sectors as usize * SECTOR]
    }

    fn reads_on(s: &Sim, m: usize, lo: u64, hi: u64) -> usize {
        s.io_log
            .iter()
            .filter(|r| {
                r.io.member == m
                    && r.io.kind == MemberIoKind::Read
                    && r.io.sector >= lo
                    && r.io.sector < hi
            })
            .count()
    }

    #[test]
    fn write_reads_back_and_lands_on_every_mirror() {
        let mut s = sim(cfg(3));
        let data = pattern(1, 16);
        assert_eq!(s.write_sync(100, &data), Some(Ok(())));
        for m in 0..3 {
            assert_eq!(member_range(&s, m, 100, 16), &data[..]);
            let c = s.engine.member_counters(m).unwrap();
            assert_eq!((c.writes, c.write_sectors), (1, 16));
        }
        assert_eq!(s.read_sync(100, 16).unwrap(), data);
        // Zero copy: every member write referenced the caller's buffer.
        let bufs: Vec<_> = s
            .io_log
            .iter()
            .filter(|r| r.io.kind == MemberIoKind::Write)
            .map(|r| r.io.buf)
            .collect();
        assert!(bufs
            .iter()
            .all(|b| *b == bufs[0] && matches!(b, IoBuf::Caller { offset: 0, .. })));
    }

    #[test]
    fn two_sequential_streams_stick_to_different_mirrors() {
        let mut s = sim(cfg(2));
        for i in 0..32u64 {
            let a = s.read(i * 8, 8).unwrap().0;
            let b = s.read(2048 + i * 8, 8).unwrap().0;
            s.run_until(|s| s.result(a).is_some() && s.result(b).is_some());
        }
        let (a0, a1) = (reads_on(&s, 0, 0, 2048), reads_on(&s, 1, 0, 2048));
        let (b0, b1) = (reads_on(&s, 0, 2048, 4096), reads_on(&s, 1, 2048, 4096));
        assert_eq!((a0, a1), (32, 0), "stream A stays on mirror 0");
        assert_eq!((b0, b1), (0, 32), "stream B stays on mirror 1");
    }

    #[test]
    fn random_reads_spread_by_pending_count() {
        let mut s = sim(cfg(2));
        let mut x = 12345u64;
        let mut ids = Vec::new();
        for _ in 0..100 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let sector = (x >> 33) % 4000 / 8 * 8 + 3; // never sequential with a previous read
            ids.push(s.read(sector, 1).unwrap().0);
        }
        s.settle();
        let r0 = s.engine.member_counters(0).unwrap().reads;
        let r1 = s.engine.member_counters(1).unwrap().reads;
        assert_eq!(r0 + r1, 100);
        assert!(r0.abs_diff(r1) <= 2, "{r0} vs {r1}");
    }

    #[test]
    fn rotational_mirrors_pick_the_closest_head() {
        let mut c = cfg(2);
        for m in &mut c.members {
            m.rotational = true;
        }
        let mut s = sim(c);
        // Park head 0 near 0 and head 1 near 3000 (writes move heads too).
        s.write_sync(0, &pattern(1, 8));
        s.members[1].latency = 1; // irrelevant to choice; keeps runs short
        let a = s.read(3000, 8).unwrap().0; // idle mirrors: least pending (mirror 0)
        let b = s.read(100, 8).unwrap().0; // busy + all rotational: closest head
        s.run_until(|s| s.result(a).is_some() && s.result(b).is_some());
        assert_eq!(reads_on(&s, 0, 3000, 3008), 1);
        assert_eq!(
            reads_on(&s, 1, 100, 108),
            1,
            "mirror 1's head sits at 8, closer to 100 than 3000"
        );
    }

    #[test]
    fn write_mostly_gets_no_reads_while_another_mirror_is_healthy() {
        let mut c = cfg(2);
        c.members[1].write_mostly = true;
        let mut s = sim(c);
        s.write_sync(0, &pattern(2, 64));
        for i in 0..50u64 {
            let _ = s.read((i * 37) % 64, 1).unwrap();
        }
        s.settle();
        assert_eq!(s.engine.member_counters(1).unwrap().reads, 0);
        assert_eq!(s.engine.member_counters(1).unwrap().writes, 1);
        // Last resort: once mirror 0 fails, mirror 1 serves.
        s.members[0].faults.push(Fault::read_forever(0, 4096));
        assert_eq!(
            s.read_sync(5, 1).unwrap(),
            pattern(2, 64)[5 * SECTOR..6 * SECTOR]
        );
        assert!(s.engine.member_counters(1).unwrap().reads >= 1);
    }

    #[test]
    fn read_error_retried_elsewhere_and_range_rewritten() {
        let mut s = sim(cfg(2));
        let data = pattern(3, 16);
        s.write_sync(40, &data);
        // Damage mirror 0's copy: the media returns errors and garbage until rewritten.
        s.members[0].data[40 * SECTOR..48 * SECTOR].fill(0xee);
        s.members[0].faults.push(Fault::media(40, 8));
        assert_eq!(s.read_sync(40, 16).unwrap(), data);
        s.settle();
        let c0 = s.engine.member_counters(0).unwrap();
        assert_eq!(c0.errors, 1);
        assert_eq!(c0.read_errors, 1);
        assert_eq!(
            c0.corrected, 16,
            "the whole failed piece was rewritten and verified"
        );
        assert_eq!(member_range(&s, 0, 40, 16), &data[..]);
        assert!(s.members[0].faults.is_empty(), "rewrite healed the media");
        assert_eq!(s.engine.member_state(0), Some(PositionState::InSync));
        // Repair used scratch buffers, not the caller's.
        assert!(s.io_log.iter().any(|r| r.io.member == 0
            && r.io.kind == MemberIoKind::Write
            && matches!(r.io.buf, IoBuf::Scratch { .. })));
    }

    #[test]
    fn no_repair_without_scratch_buffers_but_good_data_returned() {
        let mut c = cfg(2);
        c.fix_buffers = 0;
        let mut s = sim(c);
        let data = pattern(4, 8);
        s.write_sync(0, &data);
        s.members[0].faults.push(Fault::media(0, 8));
        assert_eq!(s.read_sync(0, 8).unwrap(), data);
        s.settle();
        assert_eq!(s.engine.member_counters(0).unwrap().corrected, 0);
        assert_eq!(s.members[0].faults.len(), 1);
    }

    #[test]
    fn too_many_read_errors_fail_the_member_and_decay_halves_them() {
        let mut c = cfg(2);
        c.fix_buffers = 0;
        let mut s = sim(c);
        s.members[0].faults.push(Fault::read_forever(0, 4096));
        for i in 0..20u64 {
            // Idle mirrors: mirror 0 is tried first each time (non-sequential sectors).
            s.read_sync(i * 16 + 1, 1).unwrap();
        }
        assert_eq!(s.engine.member_counters(0).unwrap().read_errors, 20);
        assert_eq!(s.engine.member_state(0), Some(PositionState::InSync));
        // One hour later the count halves: 10 more errors stay within the limit.
        let later = s.now + READ_ERROR_DECAY_NS;
        s.engine.handle_timeout(later);
        s.now = later;
        for i in 0..10u64 {
            s.read_sync(i * 16 + 1001, 1).unwrap();
        }
        assert_eq!(s.engine.member_counters(0).unwrap().read_errors, 20);
        assert_eq!(s.engine.member_state(0), Some(PositionState::InSync));
        s.read_sync(2001, 1).unwrap();
        assert_eq!(s.engine.member_state(0), Some(PositionState::Faulty));
        assert!(s
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberFailed { member: 0, .. })));
    }

    #[test]
    fn last_mirror_error_reaches_the_caller() {
        let mut s = sim(cfg(2));
        s.members[0].faults.push(Fault::read_forever(10, 1));
        s.members[1].faults.push(Fault::read_forever(10, 1));
        assert_eq!(
            s.read_sync(8, 4),
            Err(ArrayIoError::ReadFailed { sector: 8 })
        );
        // Single mirror: never failed, its error goes up.
        let mut s = sim(cfg(1));
        s.members[0].faults.push(Fault::read_forever(0, 4096));
        for _ in 0..30 {
            assert!(s.read_sync(0, 1).is_err());
        }
        assert_eq!(s.engine.member_state(0), Some(PositionState::InSync));
    }

    #[test]
    fn write_error_with_room_records_a_bad_block() {
        let mut c = cfg(2);
        c.members[1].bad_blocks = Some(BadBlockTable {
            ranges: vec![],
            capacity: 512,
        });
        let mut s = sim(c);
        s.members[1].faults.push(Fault::write(200, 8));
        let data = pattern(5, 8);
        let id = s.write(200, &data).unwrap();
        s.settle();
        assert_eq!(s.result(id), Some(Ok(())));
        assert_eq!(s.engine.bad_blocks(1), Some(&[(200u64, 8u64)][..]));
        assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
        let (t_ev, tok) = s
            .events
            .iter()
            .find_map(|(t, e)| match e {
                Event::BadBlocks {
                    token,
                    member: 1,
                    sector: 200,
                    sectors: 8,
                } => Some((*t, *token)),
                _ => None,
            })
            .expect("bad-block event");
        let t_ack = s.acks.iter().find(|(_, t)| *t == tok).unwrap().0;
        let t_done = s.completed.iter().find(|(_, i, _)| *i == id).unwrap().0;
        assert!(
            t_ev < t_ack && t_ack <= t_done,
            "write completes after the log is durable"
        );
        // Reads of that range avoid mirror 1.
        for _ in 0..10 {
            assert_eq!(s.read_sync(200, 8).unwrap(), data);
        }
        assert_eq!(reads_on(&s, 1, 200, 208), 0);
        // Later writes skip the bad range on mirror 1.
        let before = s.engine.member_counters(1).unwrap().writes;
        s.write_sync(196, &pattern(6, 16));
        let c1 = s.engine.member_counters(1).unwrap();
        assert_eq!(c1.writes - before, 2, "two pieces around the bad range");
    }

    #[test]
    fn write_error_without_room_fails_the_member_and_still_succeeds() {
        let mut s = sim(cfg(2));
        s.members[1].faults.push(Fault::write(0, 4096));
        let id = s.write(64, &pattern(7, 8)).unwrap();
        s.settle();
        assert_eq!(s.result(id), Some(Ok(())));
        assert_eq!(s.engine.member_state(1), Some(PositionState::Faulty));
        let (_, tok) = s
            .events
            .iter()
            .find_map(|(t, e)| match e {
                Event::MemberFailed { token, member: 1 } => Some((*t, *token)),
                _ => None,
            })
            .expect("member failed event");
        let t_ack = s.acks.iter().find(|(_, t)| *t == tok).unwrap().0;
        let t_done = s.completed.iter().find(|(_, i, _)| *i == id).unwrap().0;
        assert!(t_ack <= t_done);
        // The failed member gets no more I/O; the survivor carries on.
        let n = s.io_log.len();
        s.write_sync(128, &pattern(8, 8));
        assert!(s.io_log[n..].iter().all(|r| r.io.member == 0));
        // Writes fail only when no in-sync mirror takes them; the last one is never failed.
        s.members[0].faults.push(Fault::write(0, 4096));
        assert_eq!(
            s.write_sync(256, &pattern(9, 8)),
            Some(Err(ArrayIoError::WriteFailed { sector: 256 }))
        );
        assert_eq!(s.engine.member_state(0), Some(PositionState::InSync));
    }

    #[test]
    fn flush_goes_to_every_working_member_and_fua_is_carried() {
        let mut c = cfg(3);
        c.members[2] = MemberConfig::missing();
        let mut s = sim(c);
        let b = s.buffer(pattern(10, 8));
        let mut w = ArrayRequest::write(0, 8, b);
        w.fua = true;
        let id = s.submit(w).unwrap();
        let f = s.submit(ArrayRequest::flush()).unwrap();
        s.settle();
        assert_eq!(s.result(id), Some(Ok(())));
        assert_eq!(s.result(f), Some(Ok(())));
        assert_eq!(
            (
                s.members[0].flushes,
                s.members[1].flushes,
                s.members[2].flushes
            ),
            (1, 1, 0)
        );
        assert!(s
            .io_log
            .iter()
            .filter(|r| r.io.kind == MemberIoKind::Write)
            .all(|r| r.io.fua));
        s.members[1].faults.push(Fault::flush_once());
        // As md: the member whose flush failed is failed, and the flush succeeds because an
        // in-sync member made its cache durable.
        let f = s.submit(ArrayRequest::flush()).unwrap();
        s.settle();
        assert_eq!(s.result(f), Some(Ok(())));
        assert_eq!(s.engine.member_state(1), Some(PositionState::Faulty));
        // With no in-sync member left to flush, the error reaches the caller.
        s.members[0].faults.push(Fault::flush_once());
        let f = s.submit(ArrayRequest::flush()).unwrap();
        s.settle();
        assert_eq!(
            s.result(f),
            Some(Err(ArrayIoError::FlushFailed { member: 0 }))
        );
    }

    #[test]
    fn bad_blocks_split_a_read_across_mirrors() {
        let mut c = cfg(2);
        c.members[0].bad_blocks = Some(BadBlockTable {
            ranges: vec![(10, 2)],
            capacity: 512,
        });
        c.members[1].bad_blocks = Some(BadBlockTable {
            ranges: vec![(14, 2)],
            capacity: 512,
        });
        let mut s = sim(c);
        let data = pattern(11, 8);
        // Fill both members with the data directly (their bad ranges hold garbage).
        for m in 0..2 {
            s.members[m].data[8 * SECTOR..16 * SECTOR].copy_from_slice(&data);
        }
        s.members[0].data[10 * SECTOR..12 * SECTOR].fill(0xbb);
        s.members[1].data[14 * SECTOR..16 * SECTOR].fill(0xbb);
        assert_eq!(s.read_sync(8, 8).unwrap(), data);
        let pieces: Vec<_> = s
            .io_log
            .iter()
            .map(|r| (r.io.member, r.io.sector, r.io.sectors))
            .collect();
        assert_eq!(
            pieces,
            vec![(1, 8, 6), (0, 14, 2)],
            "longest good prefix first, rest re-balanced"
        );
    }

    #[test]
    fn unsynced_region_reads_use_the_first_mirror() {
        let mut c = cfg(3);
        c.resync_offset = 1000;
        c.members[0] = MemberConfig::missing();
        let mut s = sim(c);
        for i in 0..10u64 {
            let _ = s.read(2000 + i * 16, 1).unwrap();
            let _ = s.read(i * 16, 1).unwrap();
        }
        s.settle();
        assert_eq!(
            reads_on(&s, 1, 1000, 4096),
            10,
            "all unsynced reads on the first usable mirror"
        );
        assert_eq!(reads_on(&s, 2, 1000, 4096), 0);
        assert!(reads_on(&s, 2, 0, 1000) > 0, "synced reads still balance");
    }

    #[test]
    fn recovering_member_reads_only_below_its_recovery_offset() {
        let mut c = cfg(2);
        c.members[0].in_sync = false;
        c.members[0].recovery_offset = 100;
        let mut s = sim(c);
        for i in 0..20u64 {
            let _ = s.read(i * 10 + 1, 1).unwrap();
        }
        s.settle();
        assert_eq!(reads_on(&s, 0, 100, 4096), 0);
        // Writes go to both (md writes to recovering members too).
        s.write_sync(500, &pattern(12, 8));
        assert_eq!(s.engine.member_counters(0).unwrap().writes, 1);
    }

    #[test]
    fn metadata_events_in_order_dirty_bitmap_clean_clear() {
        let mut c = cfg(2);
        c.bitmap = Some(BitmapConfig::new(128));
        let mut s = sim(c);
        assert!(s.engine.is_clean());
        let id = s.write(130, &pattern(13, 8)).unwrap(); // chunk 1
        s.settle();
        assert_eq!(s.result(id), Some(Ok(())));
        let kinds: Vec<_> = s.events.iter().map(|(_, e)| e.clone()).collect();
        assert!(matches!(kinds[0], Event::MarkDirty { .. }));
        assert!(matches!(
            kinds[1],
            Event::BitmapSet {
                first_chunk: 1,
                chunks: 1,
                ..
            }
        ));
        let ack_of = |s: &Sim, i: usize| {
            let tok = s.events[i].1.token();
            s.acks.iter().find(|(_, t)| *t == tok).unwrap().0
        };
        let first_write = s
            .io_log
            .iter()
            .find(|r| r.io.kind == MemberIoKind::Write)
            .unwrap()
            .issued;
        assert!(
            ack_of(&s, 0) <= s.events[1].0,
            "bitmap set only after the array is dirty"
        );
        assert!(
            ack_of(&s, 1) <= first_write,
            "data only after the bit is durable"
        );
        // Reads are not held by metadata.
        // Second write to the same chunk: no new events.
        s.write_sync(132, &pattern(14, 4));
        assert_eq!(s.events.len(), 2);
        let last_write_done = s.io_log.iter().map(|r| r.done).max().unwrap();
        s.drive();
        let rest: Vec<_> = s.events[2..].iter().collect();
        assert!(matches!(rest[0].1, Event::MarkClean { .. }));
        assert!(rest[0].0 >= last_write_done + DEFAULT_SAFEMODE_DELAY_NS);
        assert!(matches!(
            rest[1].1,
            Event::BitmapClear {
                first_chunk: 1,
                chunks: 1,
                ..
            }
        ));
        // The daemon is periodic (armed by the first write): the second idle pass comes more than one
        // period after the last write.
        assert!(rest[1].0 > last_write_done + DEFAULT_DAEMON_SLEEP_NS);
        assert_eq!(rest[1].0, s.completed[0].0 + 2 * DEFAULT_DAEMON_SLEEP_NS);
        assert!(s.engine.is_clean());
        assert_eq!(s.engine.bitmap_chunk_set(1), Some(false));
        assert_eq!(s.engine.poll_timeout(), None);
        // Dirty again on the next write.
        s.write_sync(0, &pattern(15, 1));
        assert!(matches!(s.events[4].1, Event::MarkDirty { .. }));
    }

    #[test]
    fn writes_wait_for_metadata_acknowledgement() {
        let mut c = cfg(2);
        c.bitmap = Some(BitmapConfig::new(64));
        let mut s = sim(c);
        s.auto_ack = false;
        let id = s.write(0, &pattern(16, 8)).unwrap();
        let r = s.read(512, 8).unwrap().0;
        s.run_until(|s| s.result(r).is_some());
        assert!(
            s.io_log.iter().all(|r| r.io.kind == MemberIoKind::Read),
            "reads are not held"
        );
        let Event::MarkDirty { token } = s.events[0].1 else {
            panic!("{:?}", s.events)
        };
        assert_eq!(s.events.len(), 1, "bitmap waits for the dirty mark");
        s.ack(token).unwrap();
        let Event::BitmapSet {
            token,
            first_chunk: 0,
            chunks: 1,
        } = s.events[1].1
        else {
            panic!()
        };
        assert!(s.io_log.iter().all(|r| r.io.kind == MemberIoKind::Read));
        s.ack(token).unwrap();
        s.settle();
        assert_eq!(s.result(id), Some(Ok(())));
        assert_eq!(
            s.engine.handle_metadata_done(token),
            Err(EngineError::UnknownToken(token.raw()))
        );
    }

    #[test]
    fn degraded_array_keeps_bitmap_bits() {
        let mut c = cfg(2);
        c.members[1] = MemberConfig::missing();
        c.bitmap = Some(BitmapConfig::new(64));
        let mut s = sim(c);
        s.write_sync(0, &pattern(17, 8));
        s.drive();
        assert!(s.engine.is_clean());
        assert_eq!(s.engine.bitmap_chunk_set(0), Some(true));
        assert!(!s
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::BitmapClear { .. })));
    }

    #[test]
    fn overlapping_writes_never_reorder() {
        let mut s = sim(cfg(3));
        s.jitter = 1_000_000;
        s.seed(7);
        let mut ids = Vec::new();
        for i in 0..20u64 {
            ids.push(s.write(i % 5, &pattern(100 + i, 8)).unwrap());
        }
        s.settle();
        // Every member ends with the last writer's data in each sector.
        let mut model = vec![0u8; 16 * SECTOR];
        for i in 0..20u64 {
            let a = (i % 5) as usize * SECTOR;
            model[a..a + 8 * SECTOR].copy_from_slice(&pattern(100 + i, 8));
        }
        for m in 0..3 {
            assert_eq!(member_range(&s, m, 0, 16), &model[..]);
        }
        // On each member, no write was issued before an earlier overlapping write completed.
        let writes: Vec<_> = s
            .io_log
            .iter()
            .filter(|r| r.io.kind == MemberIoKind::Write)
            .collect();
        for (i, a) in writes.iter().enumerate() {
            for b in &writes[i + 1..] {
                if a.io.member == b.io.member {
                    assert!(b.issued >= a.done, "overlapping writes in flight together");
                }
            }
        }
    }

    #[test]
    fn back_pressure_and_misuse_are_errors_not_panics() {
        let mut c = cfg(2);
        c.max_requests = 2;
        let mut s = sim(c);
        let b = s.buffer(vec![0; 512]);
        s.submit(ArrayRequest::read(0, 1, b)).unwrap();
        s.submit(ArrayRequest::read(10, 1, b)).unwrap();
        assert_eq!(
            s.submit(ArrayRequest::read(20, 1, b)),
            Err(SubmitError::Busy { max: 2 })
        );
        assert!(matches!(
            s.submit(ArrayRequest::read(4095, 2, b)),
            Err(SubmitError::OutOfRange { .. })
        ));
        assert!(matches!(
            s.submit(ArrayRequest::write(0, 0, b)),
            Err(SubmitError::Invalid(_))
        ));
        let mut r = ArrayRequest::read(0, 1, b);
        r.buf_offset = u64::MAX;
        assert!(matches!(
            s.engine.handle_submit(r),
            Err(SubmitError::Invalid(_))
        ));
        s.settle();
        let stale = s.io_log[0].io.id;
        assert!(s.engine.handle_member_completion(stale, Ok(())).is_err());
        assert!(Raid1::new(Raid1Config::new(0, 10)).is_err());
        let mut bad = cfg(1);
        bad.members[0].bad_blocks = Some(BadBlockTable {
            ranges: vec![(10, 5), (12, 1)],
            capacity: 8,
        });
        assert!(Raid1::new(bad).is_err());
    }

    #[test]
    fn member_io_pool_exhaustion_only_delays() {
        let mut c = cfg(3);
        c.max_member_ios = 2;
        let mut s = sim(c);
        let w = s.write(0, &pattern(18, 8)).unwrap();
        let r = s.read(100, 4).unwrap().0;
        s.settle();
        assert_eq!(s.result(w), Some(Ok(())));
        assert_eq!(s.result(r), Some(Ok(())));
        for m in 0..3 {
            assert_eq!(member_range(&s, m, 0, 8), &pattern(18, 8)[..]);
        }
    }

    #[test]
    fn discard_reaches_every_member() {
        let mut s = sim(cfg(2));
        let id = s.submit(ArrayRequest::discard(0, 64)).unwrap();
        s.settle();
        assert_eq!(s.result(id), Some(Ok(())));
        assert_eq!(
            s.io_log
                .iter()
                .filter(|r| r.io.kind == MemberIoKind::Discard)
                .count(),
            2
        );
    }
}
