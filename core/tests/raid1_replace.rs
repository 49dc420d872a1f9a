//! Hot replace (md's want_replacement) on the deterministic simulator: seeded random cases with
//! concurrent writes and reads, the replaced member or another one failing mid-copy.
//! (Wrapped in `mod raid1_replace` so that `cargo test -p mdraid raid1` selects these tests.)

mod raid1_replace {
    use mdraid::raid1::sim::Sim;
    use mdraid::raid1::*;

    const SECTOR: usize = 512;
    const BLK: u64 = SYNC_BLOCK_SECTORS;

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

    fn fill(rng: &mut Rng, sectors: u64) -> Vec<u8> {
        (0..sectors as usize * SECTOR)
            .map(|_| rng.next() as u8)
            .collect()
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Failure {
        None,
        /// The member being replaced fails mid-copy.
        Original,
        /// Another in-sync member fails mid-copy.
        Other,
    }

    /// `slots` in-sync members plus a spare at position `slots`; member `orig` is replaced by
    /// the spare while random writes and reads run; `failure` strikes once the copy is past
    /// `fail_at` sectors. Returns a description of the first wrong thing.
    fn run_case(seed: u64, failure: Failure) -> Result<(), String> {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let slots = 2 + rng.below(2) as usize;
        let size = BLK * (8 + rng.below(8));
        let mut cfg = Raid1Config::new(slots + 1, size);
        cfg.raid_disks = slots;
        cfg.members[slots] = MemberConfig::spare();
        cfg.max_requests = 1 + rng.below(16) as usize;
        cfg.max_member_ios = 2 + rng.below(12) as usize;
        if rng.below(2) == 0 {
            cfg.bitmap = Some(BitmapConfig::new(BLK * (1 + rng.below(4))));
        }
        cfg.start_clean = rng.below(2) == 0;
        let mut s = Sim::new(Raid1::new(cfg).map_err(|e| e.to_string())?, size);
        s.seed(seed);
        s.jitter = rng.below(400_000);
        s.meta_latency = rng.below(2_000_000);
        for m in s.members.iter_mut() {
            m.latency = 1 + rng.below(300_000);
        }
        let mut model = fill(&mut rng, size);
        for m in 0..slots {
            s.members[m].data.copy_from_slice(&model);
        }
        s.members[slots].data = fill(&mut rng, size);
        let orig = rng.below(slots as u64) as usize;
        let other = (orig + 1 + rng.below(slots as u64 - 1) as usize) % slots;
        let repl = slots;

        s.engine
            .replace_member(orig, repl, 0)
            .map_err(|e| format!("replace refused: {e}"))?;
        s.pump();
        if !s.engine.is_replacement(repl) || s.engine.member_slot(repl) != Some(orig) {
            return Err("the spare is not the slot's replacement".into());
        }
        if s.engine.sync_status().map(|st| st.action) != Some(SyncAction::Recovery) {
            return Err("no copy started".into());
        }
        let fail_at = rng.below(size / 2);
        let mut failed = failure == Failure::None;
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        let mut ops = 0;
        let victim = if failure == Failure::Original {
            orig
        } else {
            other
        };
        // Strikes once the copy got past `fail_at` (while it still runs).
        let strike = |s: &mut Sim, failed: &mut bool| -> Result<(), String> {
            if !*failed
                && s.engine
                    .sync_status()
                    .is_some_and(|st| st.done_sectors >= fail_at)
            {
                s.engine
                    .fail_member(victim)
                    .map_err(|e| format!("fail {victim}: {e}"))?;
                *failed = true;
            }
            Ok(())
        };
        while s.engine.sync_status().is_some() || ops < 20 {
            if ops > 20_000 {
                return Err("the copy never ended".into());
            }
            ops += 1;
            strike(&mut s, &mut failed)?;
            let sector = rng.below(size);
            let sectors = 1 + rng.below((size - sector).min(2 * BLK));
            if rng.below(3) > 0 {
                let data = fill(&mut rng, sectors);
                let b = s.buffer(data.clone());
                if let Ok(id) = s.submit(ArrayRequest::write(sector, sectors, b)) {
                    let a = sector as usize * SECTOR;
                    model[a..a + data.len()].copy_from_slice(&data);
                    writes.push(id);
                }
            } else {
                let b = s.buffer(vec![0; sectors as usize * SECTOR]);
                if let Ok(id) = s.submit(ArrayRequest::read(sector, sectors, b)) {
                    let a = sector as usize * SECTOR;
                    reads.push((id, b, model[a..a + sectors as usize * SECTOR].to_vec()));
                }
            }
            for _ in 0..rng.below(6) {
                s.step();
                strike(&mut s, &mut failed)?;
            }
        }
        if !failed {
            return Err("the copy ended before the failure struck".into());
        }
        if !s.run_until(|s| s.engine.sync_status().is_none()) || !s.settle() {
            return Err("did not settle".into());
        }
        for id in writes {
            match s.result(id) {
                Some(Ok(())) => {}
                r => return Err(format!("write {id:?}: {r:?}")),
            }
        }
        for (id, b, want) in reads {
            match s.result(id) {
                Some(Ok(())) if s.bufs[b.0 as usize] == want => {}
                Some(Ok(())) => return Err(format!("read {id:?} returned wrong data")),
                r => return Err(format!("read {id:?}: {r:?}")),
            }
        }
        // The replacement holds the slot, the original is retired (or failed).
        if s.engine.member_state(repl) != Some(PositionState::InSync)
            || s.engine.member_slot(repl) != Some(orig)
        {
            return Err(format!(
                "replacement ends {:?} in slot {:?}",
                s.engine.member_state(repl),
                s.engine.member_slot(repl)
            ));
        }
        if s.engine.member_state(orig) != Some(PositionState::Faulty) {
            return Err("the replaced member is not faulty".into());
        }
        let other_state = if failure == Failure::Other {
            PositionState::Faulty
        } else {
            PositionState::InSync
        };
        if s.engine.member_state(other) != Some(other_state) {
            return Err(format!(
                "other member {other}: {:?}",
                s.engine.member_state(other)
            ));
        }
        // Every in-sync mirror holds exactly the model: no wrong data, mirrors identical.
        let mut in_sync = 0;
        for m in 0..=slots {
            if s.engine.member_state(m) == Some(PositionState::InSync) {
                in_sync += 1;
                if s.members[m].data != model {
                    let a = s.members[m]
                        .data
                        .iter()
                        .zip(&model)
                        .position(|(x, y)| x != y)
                        .unwrap_or(0);
                    return Err(format!("mirror {m} differs at byte {a}"));
                }
            }
        }
        let want = if failure == Failure::Other {
            slots - 1
        } else {
            slots
        };
        if in_sync != want {
            return Err(format!("{in_sync} in-sync mirrors, want {want}"));
        }
        let all = s
            .read_sync(0, size)
            .map_err(|e| format!("final read: {e:?}"))?;
        if all != model {
            return Err("final read differs from the model".into());
        }
        // The engine said so: the replacement in sync in the slot, the original failed.
        let in_sync_ev = s.events.iter().any(|(_, e)| {
            matches!(e, Event::MemberInSync { member, slot, .. } if *member == repl && *slot == orig)
        });
        let failed_ev = s
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberFailed { member, .. } if *member == orig));
        if !in_sync_ev || !failed_ev {
            return Err("missing MemberInSync / MemberFailed events".into());
        }
        Ok(())
    }

    fn sweep(failure: Failure, seeds: u64) {
        let mut bad = Vec::new();
        for seed in 1..=seeds {
            if let Err(e) = run_case(seed, failure) {
                bad.push(format!("seed {seed}: {e}"));
            }
        }
        assert!(bad.is_empty(), "{failure:?}: {}", bad.join("\n"));
    }

    #[test]
    fn replace_under_concurrent_io_ends_with_the_replacement_in_the_slot() {
        sweep(Failure::None, 60);
    }

    #[test]
    fn the_original_failing_mid_copy_turns_into_a_recovery_without_data_loss() {
        sweep(Failure::Original, 60);
    }

    #[test]
    fn another_member_failing_mid_copy_loses_no_data() {
        sweep(Failure::Other, 60);
    }

    #[test]
    fn replace_refusals() {
        let mut cfg = Raid1Config::new(3, 4 * BLK);
        cfg.raid_disks = 2;
        cfg.members[2] = MemberConfig::spare();
        let mut s = Sim::new(Raid1::new(cfg).unwrap(), 4 * BLK);
        // The spare cannot be replaced, nor can a member be replaced by an in-sync one.
        assert!(s.engine.replace_member(2, 0, 0).is_err());
        assert!(s.engine.replace_member(0, 1, 0).is_err());
        s.engine.replace_member(0, 2, 0).unwrap();
        // One replacement per slot; the replacement itself cannot be removed while active.
        assert!(s.engine.replace_member(0, 2, 0).is_err());
        assert!(s.engine.remove_member(2).is_err());
        assert!(s.engine.is_replacement(2));
        assert!(!s.engine.is_replacement(0));
        // Reads below the copied region may use the replacement, above never.
        s.drive();
        assert_eq!(s.engine.member_state(2), Some(PositionState::InSync));
        assert_eq!(s.engine.member_state(0), Some(PositionState::Faulty));
        assert!(!s.engine.is_replacement(2));
        assert_eq!(s.members[1].data, s.members[2].data);
    }
}
