//! Sync actions (resync, recovery, check, repair) and runtime membership, proved on the
//! deterministic simulator.
//! (Wrapped in `mod raid1_sync` so that `cargo test -p mdraid raid1` selects these tests.)

mod raid1_sync {
    use mdraid::raid1::sim::{Fault, Sim};
    use mdraid::raid1::*;

    const SECTOR: usize = 512;
    const BLK: u64 = SYNC_BLOCK_SECTORS;

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

    fn sim(cfg: Raid1Config) -> Sim {
        let n = cfg.array_sectors;
        Sim::new(Raid1::new(cfg).expect("config"), n)
    }

    fn range(s: &Sim, m: usize, sector: u64, sectors: u64) -> &[u8] {
        let a = sector as usize * SECTOR;
        &s.members[m].data[a..a + sectors as usize * SECTOR]
    }

    fn set_range(s: &mut Sim, m: usize, sector: u64, data: &[u8]) {
        let a = sector as usize * SECTOR;
        s.members[m].data[a..a + data.len()].copy_from_slice(data);
    }

    /// Starts `action` and runs until it ends and the engine is quiet.
    fn run_sync(s: &mut Sim, action: SyncAction) {
        s.engine.start_sync(action, s.now).expect("start_sync");
        s.pump();
        finish_sync(s);
    }

    fn finish_sync(s: &mut Sim) {
        assert!(s.run_until(|s| s.engine.sync_status().is_none()));
        s.settle();
    }

    fn done_events(s: &Sim) -> Vec<(SyncAction, u64, u64, bool)> {
        s.events
            .iter()
            .filter_map(|(_, e)| match *e {
                Event::SyncDone {
                    action,
                    mismatch_cnt,
                    sectors_copied,
                    interrupted,
                    ..
                } => Some((action, mismatch_cnt, sectors_copied, interrupted)),
                _ => None,
            })
            .collect()
    }

    fn checkpoints(s: &Sim) -> Vec<(SyncAction, u64)> {
        s.events
            .iter()
            .filter_map(|(_, e)| match *e {
                Event::SyncCheckpoint { action, sector, .. } => Some((action, sector)),
                _ => None,
            })
            .collect()
    }

    fn counters(s: &Sim, m: usize) -> MemberCounters {
        s.engine.member_counters(m).unwrap()
    }

    #[test]
    fn resync_with_bitmap_copies_exactly_the_dirty_chunks() {
        let size = 256 * BLK; // 16 MiB, 256 chunks of 64 KiB
        let mut cfg = Raid1Config::new(2, size);
        let mut bm = BitmapConfig::new(BLK);
        let dirty: Vec<u64> = (0..16).map(|i| i * 16 + (i % 7)).collect();
        bm.set_chunks = dirty.iter().map(|&c| (c, 1)).collect();
        cfg.bitmap = Some(bm);
        cfg.resync_offset = 0;
        cfg.start_clean = false;
        let mut s = sim(cfg);
        let base = pattern(1, size);
        s.members[0].data.copy_from_slice(&base);
        s.members[1].data.copy_from_slice(&base);
        for &c in &dirty {
            set_range(&mut s, 1, c * BLK, &pattern(100 + c, BLK));
        }
        run_sync(&mut s, SyncAction::Resync);

        assert_eq!(s.members[0].data, s.members[1].data, "mirrors identical");
        let (c0, c1) = (counters(&s, 0), counters(&s, 1));
        assert_eq!((c0.read_sectors, c0.write_sectors), (16 * BLK, 0));
        assert_eq!((c1.read_sectors, c1.write_sectors), (0, 16 * BLK));
        assert_eq!(
            done_events(&s),
            vec![(SyncAction::Resync, 0, 16 * BLK, false)]
        );
        assert_eq!(s.engine.resync_offset(), u64::MAX);
        assert_eq!(
            checkpoints(&s).last(),
            Some(&(SyncAction::Resync, u64::MAX))
        );
        // The synced chunks' bits were cleared.
        let cleared: Vec<u64> = s
            .events
            .iter()
            .filter_map(|(_, e)| match *e {
                Event::BitmapClear {
                    first_chunk,
                    chunks,
                    ..
                } => Some((first_chunk..first_chunk + chunks).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(cleared, dirty);
        for c in 0..256 {
            assert_eq!(s.engine.bitmap_chunk_set(c), Some(false));
        }
        // Every sync member I/O used an engine buffer.
        assert!(s
            .io_log
            .iter()
            .all(|r| matches!(r.io.buf, IoBuf::Scratch { .. })));
    }

    #[test]
    fn a_long_clean_stretch_is_skipped_in_bounded_steps() {
        // 8192 small chunks, only the last one dirty: the scan runs over several timer wake-ups.
        let size = 8192 * 8;
        let mut cfg = Raid1Config::new(2, size);
        let mut bm = BitmapConfig::new(8);
        bm.set_chunks = vec![(8191, 1)];
        cfg.bitmap = Some(bm);
        cfg.resync_offset = 0;
        let mut s = sim(cfg);
        s.members[0].data = pattern(2, size);
        run_sync(&mut s, SyncAction::Resync);
        assert_eq!(counters(&s, 1).write_sectors, 8);
        assert_eq!(range(&s, 1, size - 8, 8), range(&s, 0, size - 8, 8));
        assert!(s.drive() < 100, "timers run out");
        assert_eq!(s.engine.poll_timeout(), None);
    }

    #[test]
    fn full_resync_without_bitmap_starts_at_resync_offset() {
        let size = 64 * BLK;
        let mut cfg = Raid1Config::new(3, size);
        cfg.resync_offset = 1000;
        let mut s = sim(cfg);
        for m in 0..3 {
            s.members[m].data = pattern(m as u64 + 1, size);
        }
        run_sync(&mut s, SyncAction::Resync);
        let tail = size - 1000;
        assert_eq!(range(&s, 1, 1000, tail), range(&s, 0, 1000, tail));
        assert_eq!(range(&s, 2, 1000, tail), range(&s, 0, 1000, tail));
        assert_ne!(
            range(&s, 1, 0, 1000),
            range(&s, 0, 0, 1000),
            "below untouched"
        );
        assert_eq!(counters(&s, 0).read_sectors, tail);
        assert_eq!(counters(&s, 0).write_sectors, 0);
        assert_eq!(counters(&s, 1).write_sectors, tail);
        assert_eq!(counters(&s, 2).write_sectors, tail);
        assert_eq!(
            done_events(&s),
            vec![(SyncAction::Resync, 0, 2 * tail, false)]
        );
        // Checkpoints: increasing, at least 1/16 of the array apart, the last one "done".
        let cps = checkpoints(&s);
        assert!(cps.len() >= 2);
        for w in cps.windows(2) {
            assert!(w[1].1 >= w[0].1 + size / 16, "{cps:?}");
        }
        assert_eq!(cps.last().unwrap().1, u64::MAX);
        assert_eq!(s.engine.resync_offset(), u64::MAX);
        // Refused once in sync.
        assert!(matches!(
            s.engine.start_sync(SyncAction::Resync, s.now),
            Err(EngineError::Refused(_))
        ));
    }

    #[test]
    fn recovery_onto_a_spare_rebuilds_it_with_checkpoints() {
        let size = 256 * BLK;
        let mut cfg = Raid1Config::new(2, size);
        cfg.members.push(MemberConfig::spare());
        let mut s = sim(cfg);
        let data = pattern(7, size);
        s.members[0].data.copy_from_slice(&data);
        s.members[1].data.copy_from_slice(&data);
        assert_eq!(s.engine.member_state(2), Some(PositionState::Spare));
        assert_eq!(s.engine.member_slot(2), None);
        // Failing member 1 frees slot 1; the spare takes it and recovery starts on its own.
        s.engine.fail_member(1).unwrap();
        s.pump();
        assert_eq!(s.engine.member_slot(2), Some(1));
        assert_eq!(
            s.engine.sync_status().map(|st| st.action),
            Some(SyncAction::Recovery)
        );
        finish_sync(&mut s);
        assert_eq!(s.members[2].data, data);
        assert_eq!(s.engine.member_state(2), Some(PositionState::InSync));
        assert!(s.events.iter().any(|(_, e)| matches!(
            e,
            Event::MemberInSync {
                member: 2,
                slot: 1,
                ..
            }
        )));
        let cps: Vec<u64> = checkpoints(&s).into_iter().map(|c| c.1).collect();
        let step = size / 16;
        let expect: Vec<u64> = (1..16).map(|k| k * step).chain([u64::MAX]).collect();
        assert_eq!(cps, expect);
        assert_eq!(
            done_events(&s),
            vec![(SyncAction::Recovery, 0, size, false)]
        );
        assert_eq!(counters(&s, 2).write_sectors, size);
        // The failed member can now be removed; its index can take a new device.
        s.engine.remove_member(1).unwrap();
        assert_eq!(s.engine.member_state(1), Some(PositionState::Missing));
    }

    #[test]
    fn fail_remove_add_rebuilds_the_slot() {
        let size = 32 * BLK;
        let mut s = sim(Raid1Config::new(2, size));
        let data = pattern(3, size);
        s.write_sync(0, &data).unwrap().unwrap();
        s.engine.fail_member(1).unwrap();
        s.pump();
        assert!(
            s.engine.sync_status().is_none(),
            "no spare: nothing to recover"
        );
        s.engine.remove_member(1).unwrap();
        s.members[1].data.fill(0); // a blank new disk
        s.engine.add_member(1, MemberConfig::spare()).unwrap();
        s.pump();
        assert_eq!(
            s.engine.member_state(1),
            Some(PositionState::Recovering { recovery_offset: 0 })
        );
        finish_sync(&mut s);
        assert_eq!(s.members[1].data, data);
        assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
        assert_eq!(s.engine.member_slot(1), Some(1));
    }

    #[test]
    fn re_add_with_bitmap_copies_only_dirty_chunks() {
        let size = 128 * BLK;
        let mut cfg = Raid1Config::new(2, size);
        cfg.bitmap = Some(BitmapConfig::new(BLK));
        let mut s = sim(cfg);
        let base = pattern(5, size);
        s.write_sync(0, &base).unwrap().unwrap();
        s.drive(); // bits clear after idle daemon passes
        assert_eq!(s.engine.bitmap_chunk_set(0), Some(false));
        s.engine.fail_member(1).unwrap();
        s.pump();
        let dirty: Vec<u64> = (0..16).map(|i| i * 8 + 1).collect();
        for &c in &dirty {
            s.write_sync(c * BLK, &pattern(50 + c, BLK))
                .unwrap()
                .unwrap();
        }
        s.settle();
        s.engine.remove_member(1).unwrap();
        let before = counters(&s, 0);
        s.engine
            .re_add_member(1, MemberConfig::recovering(0), 1)
            .unwrap();
        s.pump();
        assert_eq!(s.engine.member_slot(1), Some(1));
        finish_sync(&mut s);
        assert_eq!(s.members[0].data, s.members[1].data);
        assert_eq!(counters(&s, 1).write_sectors, 16 * BLK);
        assert_eq!(counters(&s, 0).read_sectors - before.read_sectors, 16 * BLK);
        assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
        assert_eq!(
            done_events(&s).last(),
            Some(&(SyncAction::Recovery, 0, 16 * BLK, false))
        );
        for c in dirty {
            assert_eq!(s.engine.bitmap_chunk_set(c), Some(false), "chunk {c}");
        }
    }

    /// A member whose recovery was interrupted at `r` and which left while chunks were
    /// written: `blank_from` is where its data stops being current.
    fn interrupted_at(r: u64, bitmap: bool) -> (Sim, Vec<u64>) {
        let size = 128 * BLK;
        let mut cfg = Raid1Config::new(2, size);
        if bitmap {
            cfg.bitmap = Some(BitmapConfig::new(BLK));
        }
        let mut s = sim(cfg);
        s.write_sync(0, &pattern(7, size)).unwrap().unwrap();
        s.drive();
        s.engine.fail_member(1).unwrap();
        s.pump();
        // Dirty chunks below and above the resume point.
        let dirty: Vec<u64> = vec![2, 9, 70, 100];
        for &c in &dirty {
            s.write_sync(c * BLK, &pattern(90 + c, BLK))
                .unwrap()
                .unwrap();
        }
        s.settle();
        s.engine.remove_member(1).unwrap();
        // The device was rebuilt (in full) up to r, and holds nothing after it.
        let a = r as usize * SECTOR;
        let good = s.members[0].data.clone();
        s.members[1].data[..a].copy_from_slice(&good[..a]);
        s.members[1].data[a..].fill(0);
        (s, dirty)
    }

    #[test]
    fn resume_full_copies_exactly_from_the_recovery_offset() {
        let r = 40 * BLK;
        let (mut s, _) = interrupted_at(r, true);
        let mut cfg = MemberConfig::recovering(r);
        cfg.bitmap_recovery_below = 0;
        s.engine.resume_member(1, cfg, 1).unwrap();
        s.pump();
        finish_sync(&mut s);
        assert_eq!(s.members[0].data, s.members[1].data);
        assert_eq!(counters(&s, 1).write_sectors, 128 * BLK - r);
        assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
    }

    #[test]
    fn resume_with_the_bitmap_below_the_offset_copies_dirty_chunks_then_everything() {
        // md's bitmap may only shorten the part that was already in sync: dirty chunks below
        // the offset, then every block from it.
        let r = 40 * BLK;
        let (mut s, _) = interrupted_at(r, true);
        // The part below r is stale where written meanwhile (chunks 2 and 9).
        for c in [2u64, 9] {
            set_range(&mut s, 1, c * BLK, &pattern(1, BLK));
        }
        let mut cfg = MemberConfig::recovering(0);
        cfg.bitmap_recovery_below = r;
        s.engine.resume_member(1, cfg, 1).unwrap();
        s.pump();
        finish_sync(&mut s);
        assert_eq!(s.members[0].data, s.members[1].data);
        assert_eq!(counters(&s, 1).write_sectors, 2 * BLK + (128 * BLK - r));
    }

    #[test]
    fn resume_bitmap_guided_copies_only_dirty_chunks_from_the_offset() {
        let r = 40 * BLK;
        let (mut s, dirty) = interrupted_at(r, true);
        // A bitmap-based re-add interrupted at r: its old data is current except dirty chunks.
        let good = s.members[0].data.clone();
        s.members[1].data.copy_from_slice(&good);
        for &c in dirty.iter().filter(|&&c| c * BLK >= r) {
            set_range(&mut s, 1, c * BLK, &pattern(1, BLK));
        }
        let mut cfg = MemberConfig::recovering(r);
        cfg.bitmap_recovery_below = u64::MAX;
        s.engine.resume_member(1, cfg, 1).unwrap();
        s.pump();
        finish_sync(&mut s);
        assert_eq!(s.members[0].data, s.members[1].data);
        assert_eq!(counters(&s, 1).write_sectors, 2 * BLK);
    }

    #[test]
    fn a_bitmap_based_resume_without_a_bitmap_is_refused() {
        let (mut s, _) = interrupted_at(8 * BLK, false);
        let mut cfg = MemberConfig::recovering(0);
        cfg.bitmap_recovery_below = 8 * BLK;
        assert!(matches!(
            s.engine.resume_member(1, cfg.clone(), 1),
            Err(EngineError::Refused(_))
        ));
        cfg.bitmap_recovery_below = 0;
        s.engine.resume_member(1, cfg, 1).unwrap();
        s.pump();
        finish_sync(&mut s);
        assert_eq!(s.members[0].data, s.members[1].data);
        assert_eq!(counters(&s, 1).write_sectors, 128 * BLK);
    }

    #[test]
    fn check_counts_mismatched_sectors_and_writes_nothing_repair_fixes() {
        let size = 64 * BLK;
        let mut s = sim(Raid1Config::new(2, size));
        let data = pattern(9, size);
        s.members[0].data.copy_from_slice(&data);
        s.members[1].data.copy_from_slice(&data);
        // Three blocks differ: one sector in block 0, two in block 10, one at the very end.
        s.members[1].data[5 * SECTOR] ^= 1;
        s.members[1].data[(10 * BLK as usize + 3) * SECTOR] ^= 1;
        s.members[1].data[(10 * BLK as usize + 90) * SECTOR] ^= 1;
        s.members[1].data[size as usize * SECTOR - 1] ^= 1;
        let snapshot: Vec<Vec<u8>> = s.members.iter().map(|m| m.data.clone()).collect();

        run_sync(&mut s, SyncAction::Check);
        assert_eq!(
            done_events(&s),
            vec![(SyncAction::Check, 3 * BLK, 0, false)]
        );
        assert_eq!(s.engine.mismatch_cnt(), 3 * BLK);
        for (m, snap) in snapshot.iter().enumerate() {
            assert_eq!(counters(&s, m).write_sectors, 0);
            assert_eq!(counters(&s, m).read_sectors, size);
            assert_eq!(&s.members[m].data, snap, "check wrote nothing");
        }

        run_sync(&mut s, SyncAction::Repair);
        assert_eq!(
            done_events(&s)[1],
            (SyncAction::Repair, 3 * BLK, 3 * BLK, false)
        );
        assert_eq!(s.members[1].data, data, "the first mirror wins");
        run_sync(&mut s, SyncAction::Check);
        assert_eq!(done_events(&s)[2], (SyncAction::Check, 0, 0, false));
        assert_eq!(s.engine.mismatch_cnt(), 0);
    }

    #[test]
    fn check_rewrites_a_mirror_that_fails_to_read_like_md() {
        let size = 16 * BLK;
        let mut s = sim(Raid1Config::new(2, size));
        s.members[1].faults.push(Fault::media(200, 4));
        run_sync(&mut s, SyncAction::Check);
        assert_eq!(done_events(&s), vec![(SyncAction::Check, BLK, BLK, false)]);
        assert!(s.members[1].faults.is_empty(), "rewrite healed the sectors");
    }

    #[test]
    fn user_io_during_a_long_resync_is_correct_and_not_starved() {
        let size = 1024 * BLK; // 64 MiB
        let mut cfg = Raid1Config::new(2, size);
        cfg.resync_offset = 0;
        cfg.start_clean = false;
        let mut s = sim(cfg);
        let base = pattern(11, size);
        s.members[0].data.copy_from_slice(&base);
        s.members[1].data = pattern(12, size);
        let mut model = base.clone();
        s.engine.start_sync(SyncAction::Resync, s.now).unwrap();
        s.pump();
        let mut max_steps = 0;
        for i in 0..40u64 {
            // Run a little sync, then do user I/O in the middle of the action.
            for _ in 0..7 {
                s.step();
            }
            let sector = (i * 7919 * 13) % (size - 16);
            let data = pattern(1000 + i, 16);
            let w = s.write(sector, &data).unwrap();
            model[sector as usize * SECTOR..(sector + 16) as usize * SECTOR].copy_from_slice(&data);
            let rsector = (i * 104_729) % (size - 8);
            let (r, b) = s.read(rsector, 8).unwrap();
            let mut steps = 0;
            while s.result(r).is_none() || s.result(w).is_none() {
                assert!(s.step());
                steps += 1;
            }
            max_steps = max_steps.max(steps);
            assert_eq!(s.result(r), Some(Ok(())));
            assert_eq!(s.result(w), Some(Ok(())));
            let got = &s.bufs[b.0 as usize];
            let a = rsector as usize * SECTOR;
            assert_eq!(&got[..], &model[a..a + 8 * SECTOR], "read at {rsector}");
            assert!(s.engine.sync_status().is_some(), "sync still running");
        }
        assert!(max_steps <= 40, "user I/O waited {max_steps} steps");
        finish_sync(&mut s);
        assert_eq!(s.members[0].data, model);
        assert_eq!(s.members[1].data, model);
    }

    #[test]
    fn max_speed_limit_holds_on_the_virtual_clock() {
        let size = 8192; // 4 MiB
        let mut cfg = Raid1Config::new(2, size);
        cfg.resync_offset = 0;
        cfg.sync_speed_max_kib = 10_000;
        cfg.sync_speed_min_kib = 1_000;
        let mut s = sim(cfg);
        let t0 = s.now;
        run_sync(&mut s, SyncAction::Resync);
        let secs = (s.now - t0) as f64 / 1e9;
        let mib = 4.0 * 1024.0;
        assert!(secs >= mib / 10_000.0, "took {secs} s");
        assert!(secs < 1.5 * mib / 10_000.0, "throttled too hard: {secs} s");
        // At no point did the work issued run ahead of the limit.
        let mut issued = 0u64;
        for r in s.io_log.iter().filter(|r| r.io.kind == MemberIoKind::Read) {
            issued += r.io.sectors;
            let allowed = (r.issued - t0) as f64 / 1e9 * 10_000.0 * 2.0;
            assert!(issued as f64 <= allowed + 0.5, "{issued} > {allowed}");
        }
        // Unlimited default: the same resync is far faster.
        let mut cfg = Raid1Config::new(2, size);
        cfg.resync_offset = 0;
        let mut s = sim(cfg);
        run_sync(&mut s, SyncAction::Resync);
        assert!((s.now as f64 / 1e9) < secs / 5.0);
    }

    #[test]
    fn sync_yields_to_user_io_between_min_and_max() {
        let size = 4096 * BLK;
        // Average sync member I/Os in flight over 20 ms of virtual time, with or without a
        // steady user read stream, for a given minimum speed.
        let run = |busy: bool, min_kib: u64| {
            let mut cfg = Raid1Config::new(2, size);
            cfg.resync_offset = 0;
            cfg.sync_speed_min_kib = min_kib;
            cfg.sync_speed_max_kib = 100_000_000; // the simulated disks beat md's max
            let mut s = sim(cfg);
            s.engine.start_sync(SyncAction::Resync, 0).unwrap();
            s.pump();
            let (mut i, mut samples, mut total) = (0u64, 0u64, 0u64);
            while s.now < 20_000_000 {
                if busy && s.engine.requests_in_flight() == 0 {
                    // Far from the sync front: never a range conflict.
                    let _ = s.read(size / 2 + (i * 8) % (size / 2 - 8), 8);
                    i += 1;
                }
                s.step();
                if s.now > 2_000_000 {
                    samples += 1;
                    total += s
                        .io_log
                        .iter()
                        .rev()
                        .take(64)
                        .filter(|r| matches!(r.io.buf, IoBuf::Scratch { .. }) && r.done == u64::MAX)
                        .count() as u64;
                }
            }
            let done = s.engine.sync_status().unwrap().done_sectors;
            (total as f64 / samples as f64, done)
        };
        let (idle_depth, idle_done) = run(false, 1_000);
        let (busy_depth, busy_done) = run(true, 1_000);
        assert!(idle_depth > 3.0, "idle: the whole window ({idle_depth})");
        assert!(
            busy_depth < idle_depth / 2.0,
            "{busy_depth} vs {idle_depth}"
        );
        assert!(busy_done < idle_done);
        // Below the minimum speed the sync does not yield.
        let (floor_depth, _) = run(true, 100_000_000);
        assert!(floor_depth > 3.0, "below min: {floor_depth}");
    }

    #[test]
    fn refusals_and_abort() {
        let size = 64 * BLK;
        let mut cfg = Raid1Config::new(2, size);
        cfg.members.push(MemberConfig::missing());
        let mut s = sim(cfg);
        let refused = |r: Result<(), EngineError>| matches!(r, Err(EngineError::Refused(_)));
        assert!(
            refused(s.engine.start_sync(SyncAction::Resync, 0)),
            "in sync"
        );
        assert!(refused(s.engine.start_sync(SyncAction::Recovery, 0)));
        assert!(refused(s.engine.abort_sync()));
        assert!(refused(s.engine.remove_member(0)), "in-sync member");
        assert!(refused(s.engine.add_member(0, MemberConfig::spare())));
        assert!(refused(s.engine.add_member(9, MemberConfig::spare())));
        assert!(refused(s.engine.fail_member(2)), "empty index");
        assert!(
            refused(s.engine.re_add_member(2, MemberConfig::recovering(0), 1)),
            "no bitmap"
        );
        // A check runs; a second start is refused; abort stops it with a checkpoint.
        s.engine.start_sync(SyncAction::Check, 0).unwrap();
        assert!(refused(s.engine.start_sync(SyncAction::Repair, 0)));
        for _ in 0..10 {
            s.step();
        }
        s.engine.abort_sync().unwrap();
        s.pump();
        finish_sync(&mut s);
        let d = done_events(&s);
        assert_eq!(d.len(), 1);
        assert!(d[0].3, "interrupted");
        let cp = checkpoints(&s);
        assert!(cp.last().unwrap().1 > 0 && cp.last().unwrap().1 < size);
        // The last in-sync mirror cannot fail.
        s.engine.fail_member(0).unwrap();
        assert!(refused(s.engine.fail_member(1)));
        assert!(refused(s.engine.start_sync(SyncAction::Check, s.now)));
        s.pump();
        assert!(s
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberFailed { member: 0, .. })));
        s.engine.fail_member(0).unwrap(); // already faulty: a no-op
                                          // A spare added to a free index fills the empty slot 0 and recovers.
        s.engine.add_member(2, MemberConfig::spare()).unwrap();
        s.pump();
        assert_eq!(s.engine.member_slot(2), Some(0));
        finish_sync(&mut s);
        assert_eq!(s.engine.member_state(2), Some(PositionState::InSync));
        // Failing a spare makes it faulty.
        s.engine.remove_member(0).unwrap();
        s.engine.add_member(0, MemberConfig::spare()).unwrap();
        // Both slots are full now: it stays a spare.
        s.pump();
        assert_eq!(s.engine.member_state(0), Some(PositionState::Spare));
        s.engine.fail_member(0).unwrap();
        assert_eq!(s.engine.member_state(0), Some(PositionState::Faulty));
    }

    #[test]
    fn io_in_flight_to_a_removed_member_is_harmless() {
        let size = 64 * BLK;
        let mut s = sim(Raid1Config::new(2, size));
        let data = pattern(4, size);
        s.write_sync(0, &data).unwrap().unwrap();
        s.members[1].latency = 50_000_000;
        // Reads spread over both mirrors; those on member 1 are slow.
        let ids: Vec<_> = (0..8).map(|i| s.read(i * 100 + 3, 8).unwrap()).collect();
        assert!(s.engine.member_counters(1).unwrap().pending > 0);
        s.engine.fail_member(1).unwrap();
        s.engine.remove_member(1).unwrap();
        s.members[1].data.fill(0xee);
        s.engine.add_member(1, MemberConfig::spare()).unwrap();
        s.pump();
        finish_sync(&mut s);
        for (i, (id, b)) in ids.into_iter().enumerate() {
            assert_eq!(s.result(id), Some(Ok(())));
            let a = (i * 100 + 3) * SECTOR;
            assert_eq!(&s.bufs[b.0 as usize][..], &data[a..a + 8 * SECTOR]);
        }
        assert_eq!(s.members[1].data, data);
    }

    #[test]
    fn recovery_with_an_unreadable_source_records_bad_blocks_on_the_target() {
        let size = 16 * BLK;
        let mut cfg = Raid1Config::new(2, size);
        cfg.members[1] = MemberConfig::recovering(0);
        cfg.members[1].bad_blocks = Some(BadBlockTable {
            ranges: vec![],
            capacity: 8,
        });
        let mut s = sim(cfg);
        s.members[0].data = pattern(8, size);
        s.members[0].faults.push(Fault::read_forever(300, 2));
        run_sync(&mut s, SyncAction::Recovery);
        assert_eq!(s.engine.member_state(1), Some(PositionState::InSync));
        assert_eq!(s.engine.bad_blocks(1), Some(&[(256, 128)][..]));
        assert_eq!(range(&s, 1, 0, 256), range(&s, 0, 0, 256));
        assert_eq!(range(&s, 1, 384, size - 384), range(&s, 0, 384, size - 384));
    }

    #[test]
    fn a_target_write_error_fails_the_target_and_interrupts_recovery() {
        let size = 32 * BLK;
        let mut cfg = Raid1Config::new(2, size);
        cfg.members[1] = MemberConfig::recovering(0);
        let mut s = sim(cfg);
        s.members[0].data = pattern(6, size);
        s.members[1].faults.push(Fault::write(10 * BLK, 1));
        run_sync(&mut s, SyncAction::Recovery);
        assert_eq!(s.engine.member_state(1), Some(PositionState::Faulty));
        assert!(s
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberFailed { member: 1, .. })));
        let d = done_events(&s);
        assert_eq!(d.len(), 1);
        assert!(d[0].3, "interrupted");
        assert!(!s
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberInSync { .. })));
    }

    #[test]
    fn a_resync_interrupted_by_a_failure_restarts_from_its_checkpoint() {
        let size = 256 * BLK;
        let mut cfg = Raid1Config::new(3, size);
        cfg.resync_offset = 0;
        let mut s = sim(cfg);
        for m in 0..3 {
            s.members[m].data = pattern(20 + m as u64, size);
        }
        s.engine.start_sync(SyncAction::Resync, 0).unwrap();
        s.pump();
        assert!(s.run_until(|s| s.engine.resync_offset() > size / 2));
        s.engine.fail_member(2).unwrap();
        s.pump();
        assert!(s.run_until(
            |s| s.engine.sync_status().is_none() && s.engine.resync_offset() == u64::MAX
        ));
        s.settle();
        let d = done_events(&s);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].3 && !d[1].3);
        assert_eq!(s.members[1].data, s.members[0].data);
        // The restart began at the checkpoint, not at 0: well under two full passes read.
        assert!(counters(&s, 0).read_sectors < size + size / 2);
    }

    // ---------------------------------------------------------------- property test

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn run_case(seed: u64, st: &mut [u64; 8]) -> Result<(), String> {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let slots = 2 + rng.below(2) as usize;
        let size = 64 * BLK / (1 + rng.below(4));
        let mut cfg = Raid1Config::new(slots, size);
        cfg.max_requests = 1 + rng.below(16) as usize;
        cfg.max_member_ios = 2 + rng.below(16) as usize;
        cfg.sync_window = 1 + rng.below(4) as usize;
        cfg.sync_buffers = slots + rng.below(6) as usize;
        let bitmap = rng.below(2) == 0;
        if bitmap {
            cfg.bitmap = Some(BitmapConfig::new([8, 64, 128, 512][rng.below(4) as usize]));
        }
        cfg.start_clean = false;
        cfg.resync_offset = 0; // after an unclean shutdown: the mirrors may differ anywhere
        if bitmap {
            cfg.bitmap.as_mut().unwrap().set_chunks = vec![(0, u64::MAX / 2)];
        }
        cfg.members.push(MemberConfig::spare());
        let mut s = Sim::new(Raid1::new(cfg).map_err(|e| e.to_string())?, size);
        s.seed(seed);
        s.jitter = rng.below(300_000);
        // Mirrors start different; the first is the model (resync copies it).
        for m in 0..s.members.len() {
            s.members[m].data = pattern(seed * 10 + m as u64, size);
        }
        let mut model = s.members[0].data.clone();
        s.engine
            .start_sync(SyncAction::Resync, 0)
            .map_err(|e| e.to_string())?;
        s.pump();
        let ops = 20 + rng.below(40);
        let mut pending = Vec::new();
        for _ in 0..ops {
            match rng.below(10) {
                0..=4 => {
                    let n = 1 + rng.below(32);
                    let sector = rng.below(size - n);
                    let data = pattern(rng.next(), n);
                    if let Ok(id) = s.write(sector, &data) {
                        let a = sector as usize * SECTOR;
                        model[a..a + data.len()].copy_from_slice(&data);
                        // Writes are serialized by waiting (the model has one order).
                        s.run_until(|s| s.result(id).is_some());
                        if s.result(id) != Some(Ok(())) {
                            return Err(format!("write failed: {:?}", s.result(id)));
                        }
                    }
                }
                5 | 6 => {
                    let n = 1 + rng.below(32);
                    let sector = rng.below(size - n);
                    if let Ok((id, b)) = s.read(sector, n) {
                        let a = sector as usize * SECTOR;
                        let want = model[a..a + n as usize * SECTOR].to_vec();
                        pending.push((id, b, sector, want));
                    }
                }
                7 => {
                    let act = [
                        SyncAction::Resync,
                        SyncAction::Recovery,
                        SyncAction::Check,
                        SyncAction::Repair,
                    ][rng.below(4) as usize];
                    let _ = s.engine.start_sync(act, s.now);
                    s.pump();
                }
                8 => {
                    // Above resync_offset the mirrors still differ: member 0's copy is the
                    // model's there, so it may fail only once the resync is complete.
                    let m = rng.below(slots as u64 + 1) as usize;
                    if m == 0 && s.engine.resync_offset() < size {
                        continue;
                    }
                    let _ = s.engine.fail_member(m);
                    s.pump();
                }
                _ => {
                    // Replace a faulty member with a blank spare.
                    for m in 0..s.members.len() {
                        if s.engine.member_state(m) == Some(PositionState::Faulty) {
                            s.engine.remove_member(m).map_err(|e| e.to_string())?;
                            s.members[m].data.fill(0xa5);
                            s.engine
                                .add_member(m, MemberConfig::spare())
                                .map_err(|e| e.to_string())?;
                            s.pump();
                            break;
                        }
                    }
                }
            }
            for _ in 0..rng.below(20) {
                s.step();
            }
        }
        // Finish: whatever sync is pending, then a resync if one is owed, then a recovery.
        s.run_until(|s| s.engine.sync_status().is_none());
        s.settle();
        if s.engine.resync_offset() < size {
            s.engine
                .start_sync(SyncAction::Resync, s.now)
                .map_err(|e| format!("resync: {e}"))?;
            s.pump();
            s.run_until(|s| s.engine.sync_status().is_none());
            s.settle();
        }
        for (id, b, sector, want) in pending {
            if s.result(id) != Some(Ok(())) {
                return Err(format!("read {sector}: {:?}", s.result(id)));
            }
            if s.bufs[b.0 as usize] != want {
                return Err(format!("read at {sector} returned stale data"));
            }
        }
        for m in 0..s.members.len() {
            let st = s.engine.member_state(m).unwrap();
            if st == PositionState::InSync && s.members[m].data != model {
                let first = s.members[m]
                    .data
                    .iter()
                    .zip(&model)
                    .position(|(a, b)| a != b)
                    .unwrap()
                    / SECTOR;
                return Err(format!(
                    "member {m} differs from the model at sector {first}"
                ));
            }
            if matches!(st, PositionState::Recovering { .. }) {
                return Err(format!("member {m} left recovering"));
            }
        }
        for (_, e) in &s.events {
            match *e {
                Event::SyncDone {
                    action,
                    interrupted,
                    ..
                } => {
                    let i = match action {
                        SyncAction::Resync => 0,
                        SyncAction::Recovery => 1,
                        SyncAction::Check => 2,
                        SyncAction::Repair => 3,
                    };
                    st[i] += 1;
                    st[4] += interrupted as u64;
                }
                Event::MemberInSync { .. } => st[5] += 1,
                Event::MemberFailed { .. } => st[6] += 1,
                _ => {}
            }
        }
        st[7] += s.completed.iter().filter(|(t, _, _)| *t > 0).count() as u64;
        let all = s.read_sync(0, size).map_err(|e| e.to_string())?;
        if all != model {
            return Err("array read differs from the model".into());
        }
        Ok(())
    }

    #[test]
    fn random_writes_syncs_and_failures_converge() {
        let mut failures = Vec::new();
        let mut st = [0u64; 8];
        for seed in 1..=300u64 {
            if let Err(e) = run_case(seed, &mut st) {
                failures.push((seed, e));
            }
        }
        eprintln!(
            "sync done: resync {} recovery {} check {} repair {}, interrupted {}, \
             members in sync {}, failed {}, user requests {}",
            st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7]
        );
        // The workload reaches every action and transition.
        assert!(st.iter().all(|&n| n >= 10), "{st:?}");
        assert!(
            failures.is_empty(),
            "{} failures: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
}
