//! Seeded random workloads against a flat model of the array, and random call orders.
//! (Wrapped in `mod raid1` so that `cargo test -p mdraid raid1` selects these tests.)

mod raid1 {
    use mdraid::raid1::sim::{Fault, FaultOp, Sim};
    use mdraid::raid1::*;

    const SECTOR: usize = 512;

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

    /// One random case: returns a description of the first mismatch, if any.
    fn run_case(seed: u64, st: &mut Stats) -> Result<(), String> {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let slots = 2 + rng.below(2) as usize;
        let size = 256u64;
        let mut cfg = Raid1Config::new(slots, size);
        cfg.max_requests = 1 + rng.below(16) as usize;
        cfg.max_member_ios = 1 + rng.below(12) as usize;
        cfg.fix_buffers = rng.below(3) as usize;
        cfg.fix_buffer_sectors = 1 + rng.below(8);
        if rng.below(2) == 0 {
            cfg.bitmap = Some(BitmapConfig::new(1 + rng.below(64)));
        }
        cfg.start_clean = rng.below(2) == 0;
        for m in cfg.members.iter_mut() {
            m.rotational = rng.below(2) == 0;
        }
        // Faults land on any member; a random one may have a bad-block table.
        let bb_member = rng.below(slots as u64) as usize;
        if rng.below(2) == 0 {
            cfg.members[bb_member].bad_blocks = Some(BadBlockTable {
                ranges: vec![],
                capacity: 1 + rng.below(4) as usize,
            });
        }
        if slots == 3 && rng.below(3) == 0 {
            cfg.members[2].write_mostly = true;
        }
        let mut s = Sim::new(Raid1::new(cfg).map_err(|e| e.to_string())?, size);
        s.seed(seed);
        s.jitter = rng.below(500_000);
        s.meta_latency = rng.below(2_000_000);
        for m in s.members.iter_mut() {
            m.latency = 1 + rng.below(300_000);
        }
        let mut model = vec![0u8; size as usize * SECTOR];
        // (id, buffer, expected) for reads.
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        // Per member, the sector ranges faults were injected on.
        let mut faulted: Vec<Vec<(u64, u64)>> = vec![Vec::new(); slots];
        for _ in 0..40 {
            let op = rng.below(10);
            let sector = rng.below(size);
            let sectors = 1 + rng.below((size - sector).min(24));
            let r = match op {
                0..=3 => {
                    let data = fill(&mut rng, sectors);
                    let b = s.buffer(data.clone());
                    let r = s.submit(ArrayRequest::write(sector, sectors, b));
                    if let Ok(id) = r {
                        let a = sector as usize * SECTOR;
                        model[a..a + data.len()].copy_from_slice(&data);
                        writes.push((id, sector, sectors));
                    }
                    r.map(|_| ())
                }
                4..=7 => {
                    let b = s.buffer(vec![0xa5; sectors as usize * SECTOR]);
                    let r = s.submit(ArrayRequest::read(sector, sectors, b));
                    if let Ok(id) = r {
                        let a = sector as usize * SECTOR;
                        reads.push((
                            id,
                            b,
                            model[a..a + sectors as usize * SECTOR].to_vec(),
                            sector,
                        ));
                    }
                    r.map(|_| ())
                }
                8 => s.submit(ArrayRequest::flush()).map(|_| ()),
                _ => {
                    // Inject a fault on any member.
                    let target = rng.below(slots as u64) as usize;
                    let f = if rng.below(2) == 0 {
                        Fault {
                            remaining: 1 + rng.below(3) as u32,
                            ..Fault::media(sector, sectors)
                        }
                    } else {
                        Fault {
                            op: FaultOp::Write,
                            sector,
                            sectors,
                            remaining: 1,
                            heal_on_write: false,
                        }
                    };
                    faulted[target].push((sector, sectors));
                    s.members[target].faults.push(f);
                    Ok(())
                }
            };
            if let Err(SubmitError::Busy { .. }) = r {
                // Back-pressure: let things finish; the op is dropped (the model skipped it).
            } else if let Err(e) = r {
                return Err(format!("submit: {e}"));
            }
            for _ in 0..rng.below(4) {
                s.step();
            }
        }
        if !s.settle() {
            return Err("did not settle".into());
        }
        let alive: Vec<bool> = (0..slots)
            .map(|m| s.engine.member_state(m) == Some(PositionState::InSync))
            .collect();
        let none_alive = !alive.contains(&true);
        // A member's injected faults and the bad blocks recorded for it (md writes no mirror
        // over a known bad block, and reads none from it).
        for (m, f) in faulted.iter_mut().enumerate() {
            f.extend_from_slice(s.engine.bad_blocks(m).unwrap_or(&[]));
        }
        // Every mirror is gone or had a fault injected over part of sectors [at, at+n).
        let all_hit = |at: u64, n: u64| {
            (0..slots)
                .all(|m| !alive[m] || faulted[m].iter().any(|&(f, l)| f < at + n && at < f + l))
        };
        // Sectors of writes that failed everywhere: they hold the old or the new data.
        let mut unknown = vec![false; size as usize];
        for (id, sector, sectors) in writes {
            match s.result(id) {
                Some(Ok(())) => {}
                // Write refused: no working member (faults failed every mirror).
                Some(Err(_)) if none_alive => st.writes_refused += 1,
                // Failed on every mirror that was left (md: no mirror took it, EIO).
                Some(Err(_)) if all_hit(sector, sectors) => {
                    st.writes_failed += 1;
                    unknown[sector as usize..(sector + sectors) as usize].fill(true);
                }
                other => {
                    return Err(format!(
                        "write {id:?} at {sector}+{sectors}: {other:?}; alive {alive:?}, \
                         faulted {faulted:?}"
                    ))
                }
            }
        }
        for (id, b, want, sector) in reads {
            match s.result(id) {
                Some(Ok(())) => {}
                // Read error to the caller: every mirror failed or has a fault in the range
                // (md hands the last mirror's error back).
                Some(Err(_)) if all_hit(sector, (want.len() / SECTOR) as u64) => {
                    st.reads_failed += 1;
                    continue;
                }
                other => return Err(format!("read at {sector}: {other:?}")),
            }
            let got = &s.bufs[b.0 as usize];
            for (k, (g, w)) in got.chunks(SECTOR).zip(want.chunks(SECTOR)).enumerate() {
                if g != w && !unknown[sector as usize + k] {
                    return Err(format!("read at {sector}: wrong data in sector {k}"));
                }
            }
        }
        // Mirrors agree with the model, except ranges recorded bad on the faulty member.
        for m in 0..slots {
            if s.engine.member_state(m) != Some(PositionState::InSync) {
                continue;
            }
            let bad = s.engine.bad_blocks(m).unwrap_or(&[]).to_vec();
            for sec in 0..size {
                if unknown[sec as usize] || bad.iter().any(|&(b, l)| sec >= b && sec < b + l) {
                    continue;
                }
                let a = sec as usize * SECTOR;
                if s.members[m].data[a..a + SECTOR] != model[a..a + SECTOR] {
                    return Err(format!(
                        "member {m} sector {sec} differs; alive {alive:?}, faulted {faulted:?}"
                    ));
                }
            }
        }
        for m in 0..slots {
            let c = s.engine.member_counters(m).unwrap();
            st.corrected += c.corrected;
            st.member_errors += c.errors;
        }
        for (_, e) in &s.events {
            match e {
                Event::BadBlocks { .. } => st.bad_blocks += 1,
                Event::MemberFailed { .. } => st.failed += 1,
                Event::BitmapSet { .. } => st.bitmap_sets += 1,
                _ => {}
            }
        }
        st.requests_checked += s.completed.len() as u64;
        // Idle long enough, the array is clean and nothing is left pending.
        s.drive();
        if !s.engine.is_clean() || s.engine.metadata_pending() != 0 {
            return Err("not clean after idling".into());
        }
        Ok(())
    }

    #[derive(Debug, Default)]
    struct Stats {
        corrected: u64,
        member_errors: u64,
        bad_blocks: u64,
        failed: u64,
        bitmap_sets: u64,
        requests_checked: u64,
        writes_refused: u64,
        writes_failed: u64,
        reads_failed: u64,
    }

    #[test]
    fn random_workloads_match_the_model() {
        let mut st = Stats::default();
        for seed in 1..=3000u64 {
            if let Err(e) = run_case(seed, &mut st) {
                panic!("seed {seed}: {e}");
            }
        }
        // The workload really went through the error paths.
        assert!(st.corrected > 100 && st.member_errors > 1000, "{st:?}");
        assert!(
            st.bad_blocks > 100 && st.failed > 100 && st.bitmap_sets > 1000,
            "{st:?}"
        );
        assert!(st.requests_checked > 50_000, "{st:?}");
    }

    /// Random inputs in random order (bogus ids, tokens, time going backwards, huge ranges): the
    /// engine answers with errors, never panics, and keeps its pools consistent.
    #[test]
    fn random_call_orders_never_panic() {
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
            let mut cfg = Raid1Config::new(1 + rng.below(4) as usize, 1 + rng.below(1 << 20));
            cfg.max_requests = 1 + rng.below(8) as usize;
            cfg.max_member_ios = 1 + rng.below(8) as usize;
            if rng.below(2) == 0 {
                cfg.bitmap = Some(BitmapConfig::new(1 + rng.below(1 << 16)));
            }
            let mut e = Raid1::new(cfg).unwrap();
            let mut ios = Vec::new();
            let mut tokens = Vec::new();
            for _ in 0..400 {
                match rng.below(9) {
                    0 | 1 => {
                        let kind = [
                            RequestKind::Read,
                            RequestKind::Write,
                            RequestKind::Flush,
                            RequestKind::Discard,
                        ][rng.below(4) as usize];
                        let sector = if rng.below(8) == 0 {
                            rng.next()
                        } else {
                            rng.below(1 << 20)
                        };
                        let req = ArrayRequest {
                            kind,
                            sector,
                            sectors: rng.below(64),
                            fua: rng.below(2) == 0,
                            buf: BufRef(rng.next()),
                            buf_offset: if rng.below(8) == 0 { rng.next() } else { 0 },
                        };
                        let _ = e.handle_submit(req);
                    }
                    2 => {
                        while let Some(io) = e.poll_member_io() {
                            ios.push(io.id);
                        }
                    }
                    3 | 4 => {
                        if !ios.is_empty() {
                            let i = rng.below(ios.len() as u64) as usize;
                            let id = if rng.below(3) == 0 {
                                ios[i]
                            } else {
                                ios.swap_remove(i)
                            };
                            let res = if rng.below(4) == 0 {
                                Err(MemberError::Io(5))
                            } else {
                                Ok(())
                            };
                            let _ = e.handle_member_completion(id, res);
                        }
                    }
                    5 => {
                        while let Some(ev) = e.poll_event() {
                            tokens.push(ev.token());
                        }
                    }
                    6 => {
                        if !tokens.is_empty() {
                            let i = rng.below(tokens.len() as u64) as usize;
                            let _ = e.handle_metadata_done(tokens.swap_remove(i));
                        }
                    }
                    7 => e.handle_timeout(rng.below(1 << 40)),
                    _ => while e.poll_completion().is_some() {},
                }
                assert!(e.member_ios_in_flight() <= 8);
                assert!(e.requests_in_flight() <= 8);
            }
        }
    }
}
