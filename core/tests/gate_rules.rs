//! The engine's metadata gates (engine/gates.rs) at their edges, on the deterministic
//! simulator: the token table and the optional-event budget stay bounded when the owner holds
//! acknowledgements back. Written for the mutants the `gates` group of scripts/mutants.sh
//! missed (TESTING.md, "gates, intent, sb0 (mutants6)").
//! (Wrapped in `mod raid1` so that `cargo test -p mdraid raid1` selects these tests.)

mod raid1 {
    use mdraid::raid1::sim::{Fault, Sim};
    use mdraid::raid1::*;

    const SECTOR: usize = 512;
    const SECOND: u64 = 1_000_000_000;

    fn sim(cfg: Raid1Config) -> Sim {
        let n = cfg.array_sectors;
        Sim::new(Raid1::new(cfg).expect("config"), n)
    }

    fn data(seed: u8, sectors: usize) -> Vec<u8> {
        (0..sectors * SECTOR)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// Acknowledges every event polled since `*seen` that `keep` does not hold back; returns
    /// the ones held back.
    fn ack_new(s: &mut Sim, seen: &mut usize, keep: impl Fn(&Event) -> bool) -> Vec<MetaToken> {
        let mut held = Vec::new();
        while *seen < s.events.len() {
            let ev = s.events[*seen].1.clone();
            *seen += 1;
            if keep(&ev) {
                held.push(ev.token());
            } else {
                s.ack(ev.token()).expect("a fresh token");
            }
        }
        held
    }

    /// Writes `d` at `sector` and runs until it completes, acknowledging every event but clean
    /// marks (added to `held`).
    fn write_acking(
        s: &mut Sim,
        seen: &mut usize,
        held: &mut Vec<MetaToken>,
        sector: u64,
        d: &[u8],
    ) -> Option<Result<(), ArrayIoError>> {
        let id = s.write(sector, d).expect("a free request");
        run_acking(s, seen, held, |s| s.result(id).is_some());
        s.result(id)
    }

    /// Steps until `done` holds or nothing is left to happen, acknowledging every event but
    /// clean marks (added to `held`).
    fn run_acking(
        s: &mut Sim,
        seen: &mut usize,
        held: &mut Vec<MetaToken>,
        done: impl Fn(&Sim) -> bool,
    ) {
        for _ in 0..1000 {
            held.extend(ack_new(s, seen, |e| matches!(e, Event::MarkClean { .. })));
            if done(s) || !s.step() {
                break;
            }
        }
    }

    /// Idle cycles, each leaving one more clean mark held back, until a write waits for its
    /// dirty mark: the token table's share for mandatory events is full. Returns that write.
    fn fill_with_clean_marks(s: &mut Sim, seen: &mut usize, held: &mut Vec<MetaToken>) -> ReqId {
        for i in 0..400u64 {
            let id = s.write(i % 64, &data(i as u8, 1)).expect("a free request");
            run_acking(s, seen, held, |s| s.result(id).is_some());
            if s.result(id).is_none() {
                return id;
            }
            s.now += SECOND;
            s.engine.handle_timeout(s.now);
            s.pump();
            held.extend(ack_new(s, seen, |e| matches!(e, Event::MarkClean { .. })));
        }
        panic!("400 clean marks held back and no write waited: the table never filled");
    }

    /// Acknowledges every token held back, then runs as `run_acking` does.
    fn release_held(
        s: &mut Sim,
        seen: &mut usize,
        held: &mut Vec<MetaToken>,
        done: impl Fn(&Sim) -> bool,
    ) {
        for t in std::mem::take(held) {
            s.ack(t).expect("a held token is still known");
        }
        run_acking(s, seen, held, done);
    }

    /// Two mirrors, no sync pool, `max_requests` requests; reads go to member 1 (member 0 is
    /// write-mostly).
    fn reads_on_member_1(max_requests: usize) -> Raid1Config {
        let mut c = Raid1Config::new(2, 4096);
        c.max_requests = max_requests;
        c.sync_buffers = 0;
        c.members[0].write_mostly = true;
        c
    }

    /// Events polled about member `m`'s failure or bad blocks.
    fn records_of(s: &Sim, m: usize) -> Vec<Event> {
        s.events
            .iter()
            .map(|(_, e)| e.clone())
            .filter(|e| match e {
                Event::BadBlocks { member, .. } | Event::MemberFailed { member, .. } => {
                    *member == m
                }
                _ => false,
            })
            .collect()
    }

    /// An owner that acknowledges every dirty mark but never a clean mark: each idle period
    /// leaves one more MarkClean outstanding. The token table is sized for the engine's
    /// mandatory events plus a fixed optional budget (here (1 request + 0 sync) × 3 + 4 + 8 + 4
    /// = 19 mandatory places and 64 optional ones); once the mandatory share is full the
    /// engine emits no mandatory event more — the next dirty mark waits, and so does the
    /// write behind it — rather than growing the table without bound. The late
    /// acknowledgements free it and the write goes on.
    #[test]
    fn withheld_acknowledgements_never_grow_the_token_table() {
        let mut c = Raid1Config::new(2, 4096);
        c.max_requests = 1;
        c.sync_buffers = 0;
        let mut s = sim(c);
        s.auto_ack = false;
        let mut seen = 0;
        let mut withheld = Vec::new();
        let cycles = 300u64;
        let mut stalled = None;
        for i in 0..cycles {
            let id = s.write(i % 64, &data(i as u8, 1)).expect("a free request");
            run_acking(&mut s, &mut seen, &mut withheld, |s| s.result(id).is_some());
            assert!(
                s.engine.metadata_pending() <= 100,
                "cycle {i}: {} tokens outstanding ({} clean marks held back): the table grew \
                 past its size",
                s.engine.metadata_pending(),
                withheld.len()
            );
            if s.result(id).is_none() {
                stalled = Some(id);
                break;
            }
            assert_eq!(s.result(id), Some(Ok(())), "write {i}");
            // Idle past the safe-mode delay: a MarkClean is emitted (and held back).
            s.now += SECOND;
            s.engine.handle_timeout(s.now);
            s.pump();
            withheld.extend(ack_new(&mut s, &mut seen, |e| {
                matches!(e, Event::MarkClean { .. })
            }));
        }
        let id = stalled.unwrap_or_else(|| {
            panic!(
                "{} clean marks held back over {cycles} cycles and no write ever waited: the \
                 token table has no bound",
                withheld.len()
            )
        });
        assert!(withheld.len() < 100, "{} held back", withheld.len());
        // The late acknowledgements are accepted and free the table: the write goes on.
        for t in std::mem::take(&mut withheld) {
            s.ack(t).expect("a held-back token is still known");
        }
        run_acking(&mut s, &mut seen, &mut withheld, |s| s.result(id).is_some());
        assert_eq!(s.result(id), Some(Ok(())));
        assert_eq!(s.engine.metadata_pending(), 0);
    }

    /// Bitmap clears and repair outcomes (a bad block recorded by a failed rewrite) share one
    /// budget of 64 outstanding events. Here the daemon clears while a repair runs: the repair
    /// holds one place, so only 63 clears go out, and its failed rewrite (which ends it) takes
    /// the 64th; at no time are more than 64 of these events unacknowledged.
    #[test]
    fn clears_and_repair_outcomes_share_the_optional_budget() {
        let mut c = Raid1Config::new(2, 16384);
        c.bitmap = Some(BitmapConfig::new(64));
        c.fix_buffers = 1;
        c.fix_buffer_sectors = 8;
        c.members[0].bad_blocks = Some(BadBlockTable {
            ranges: vec![],
            capacity: 512,
        });
        let mut s = sim(c);
        // 64 separate dirty chunks (every other one): 64 runs for the daemon to clear.
        for k in 0..64u64 {
            assert_eq!(s.write_sync(k * 128, &data(k as u8, 1)), Some(Ok(())));
        }
        assert!(s.settle());
        let base = s.events.len();
        s.auto_ack = false;
        // A read error on member 0 in chunk 201 (clean): the read is served by member 1 and a
        // repair starts; its rewrites of member 0 fail (two pieces of 8 sectors).
        s.members[0].faults.push(Fault::media(201 * 64, 16));
        s.members[0].faults.push(Fault::write(201 * 64, 16));
        let (r, _) = s.read(201 * 64, 16).expect("read");
        assert!(s.run_until(|s| s.engine.repairs_in_flight() > 0));
        // Member 0 is slow from now on: the repair's rewrites outlast two daemon periods.
        s.members[0].latency = 30 * SECOND;
        let optional = |s: &Sim| {
            s.events[base..]
                .iter()
                .filter(|(_, e)| matches!(e, Event::BitmapClear { .. } | Event::BadBlocks { .. }))
                .count()
        };
        let mut max = 0;
        for _ in 0..100_000 {
            max = max.max(optional(&s));
            assert!(
                max <= 64,
                "{max} clears and repair outcomes outstanding: the budget is 64"
            );
            if (s.result(r).is_some() && s.engine.repairs_in_flight() == 0) || !s.step() {
                break;
            }
        }
        assert_eq!(s.result(r), Some(Ok(())));
        assert_eq!(s.engine.repairs_in_flight(), 0, "the repair ended");
        let clears = s.events[base..]
            .iter()
            .filter(|(_, e)| matches!(e, Event::BitmapClear { .. }))
            .count();
        assert_eq!(
            clears, 63,
            "the running repair holds one place of the budget"
        );
        assert_eq!(
            optional(&s),
            64,
            "the first failed rewrite took the last place"
        );
        assert_eq!(s.engine.member_state(0), Some(PositionState::InSync));
    }

    /// A member failed by a read error (no write involved) is recorded by an event nobody
    /// waits on. Until the owner acknowledges it, the superblocks still name that member in
    /// sync: a write that now reaches only the survivor must not complete before the failure is
    /// durable (a cut in between would let assembly trust the member that lacks the write).
    #[test]
    fn a_write_waits_for_an_unrecorded_failure_it_did_not_reach() {
        let mut c = Raid1Config::new(2, 4096);
        c.max_read_errors = 0;
        c.fix_buffers = 0;
        let mut s = sim(c);
        s.auto_ack = false;
        let mut seen = 0;
        let mut held = Vec::new();
        // Dirty first (its mark acknowledged), so only the failure can hold the next write.
        let r = write_acking(&mut s, &mut seen, &mut held, 8, &data(1, 8));
        assert_eq!(r, Some(Ok(())));
        // Member 0's read fails: with no read errors tolerated it fails at once, the read is
        // served by member 1.
        s.members[0].faults.push(Fault::read_forever(100, 1));
        let (rd, _) = s.read(100, 1).expect("read");
        assert!(s.run_until(|s| s.result(rd).is_some()));
        assert_eq!(s.result(rd), Some(Ok(())));
        assert_eq!(s.engine.member_state(0), Some(PositionState::Faulty));
        let failed = |s: &Sim| {
            s.events
                .iter()
                .filter(|(_, e)| matches!(e, Event::MemberFailed { member: 0, .. }))
                .map(|(_, e)| e.token())
                .collect::<Vec<_>>()
        };
        assert_eq!(failed(&s).len(), 1, "the failure is recorded by an event");
        seen = s.events.len();
        // A write now goes to member 1 alone; the failure's record is held back.
        let w = s.write(200, &data(2, 8)).expect("write");
        for _ in 0..1000 {
            held.extend(ack_new(&mut s, &mut seen, |e| {
                matches!(e, Event::MemberFailed { .. })
            }));
            if !s.step() {
                break;
            }
        }
        assert!(
            s.io_log.iter().any(|r| r.io.member == 1
                && r.io.kind == MemberIoKind::Write
                && r.io.sector == 200),
            "the write reached member 1"
        );
        assert_eq!(
            s.result(w),
            None,
            "the write completed while member 0's failure was not yet durable"
        );
        // Any record of the failure will do: acknowledging them lets the write complete.
        for t in failed(&s) {
            s.ack(t).expect("known token");
        }
        assert!(s.run_until(|s| s.result(w).is_some()));
        assert_eq!(s.result(w), Some(Ok(())));
        // Recorded now: later writes neither record it again nor wait for a round.
        let before = failed(&s).len();
        seen = s.events.len();
        let mut more = Vec::new();
        let r = write_acking(&mut s, &mut seen, &mut more, 300, &data(3, 8));
        assert_eq!(r, Some(Ok(())));
        assert_eq!(
            failed(&s).len(),
            before,
            "a failure already recorded is recorded again for a later write"
        );
    }

    /// A write sets the bits of exactly the chunks it touches: one that ends on a chunk
    /// boundary does not reach into the next chunk (md's bitmap_startwrite over
    /// `[sector, sector + sectors)`), and one that starts on a boundary not into the previous.
    #[test]
    fn a_write_sets_exactly_the_chunks_it_touches() {
        let mut c = Raid1Config::new(2, 4096);
        c.bitmap = Some(BitmapConfig::new(64));
        let mut s = sim(c);
        let sets = |s: &Sim, from: usize| {
            s.events[from..]
                .iter()
                .filter_map(|(_, e)| match e {
                    Event::BitmapSet {
                        first_chunk,
                        chunks,
                        ..
                    } => Some((*first_chunk, *chunks)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        // Chunk 1 exactly (sectors 64..128).
        assert_eq!(s.write_sync(64, &data(3, 64)), Some(Ok(())));
        assert_eq!(sets(&s, 0), vec![(1, 1)]);
        assert_eq!(s.engine.bitmap_chunk_set(0), Some(false));
        assert_eq!(s.engine.bitmap_chunk_set(1), Some(true));
        assert_eq!(s.engine.bitmap_chunk_set(2), Some(false));
        // The last sector of chunk 3 and the first of chunk 4: both, nothing else.
        let n = s.events.len();
        assert_eq!(s.write_sync(255, &data(4, 2)), Some(Ok(())));
        assert_eq!(sets(&s, n), vec![(3, 2)]);
        assert_eq!(s.engine.bitmap_chunk_set(2), Some(false));
        assert_eq!(s.engine.bitmap_chunk_set(5), Some(false));
        // The array's last chunk, whole: no chunk past the end.
        let n = s.events.len();
        assert_eq!(s.write_sync(4096 - 64, &data(5, 64)), Some(Ok(())));
        assert_eq!(sets(&s, n), vec![(63, 1)]);
    }

    /// A flush that failed on one member fails that member and completes only once the
    /// failure is durable: until then the superblocks still name it in sync, and what the
    /// caller was told is stable might be only in its volatile cache.
    #[test]
    fn a_failed_flush_completes_after_the_failure_is_recorded() {
        let mut s = sim(Raid1Config::new(2, 4096));
        s.auto_ack = false;
        s.members[1].faults.push(Fault::flush_once());
        let f = s.submit(ArrayRequest::flush()).expect("flush");
        while s.step() {}
        assert_eq!(s.engine.member_state(1), Some(PositionState::Faulty));
        let tokens: Vec<_> = s
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::MemberFailed { member: 1, .. }))
            .map(|(_, e)| e.token())
            .collect();
        assert_eq!(tokens.len(), 1, "{:?}", s.events);
        assert_eq!(
            s.result(f),
            None,
            "the flush completed before member 1's failure was recorded"
        );
        s.ack(tokens[0]).expect("known token");
        assert!(s.run_until(|s| s.result(f).is_some()));
        assert_eq!(s.result(f), Some(Ok(())));
    }

    /// One daemon pass clears every idle run, not one run per pass (md's bitmap_daemon_work
    /// walks the whole bitmap): two separate dirty chunks are cleared at the same instant.
    #[test]
    fn one_daemon_pass_clears_every_idle_run() {
        let mut c = Raid1Config::new(2, 4096);
        c.bitmap = Some(BitmapConfig::new(64));
        let mut s = sim(c);
        for k in [0u64, 2, 5] {
            assert_eq!(s.write_sync(k * 64, &data(k as u8, 8)), Some(Ok(())));
        }
        s.drive();
        let clears: Vec<_> = s
            .events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::BitmapClear {
                    first_chunk,
                    chunks,
                    ..
                } => Some((*t, *first_chunk, *chunks)),
                _ => None,
            })
            .collect();
        let runs: Vec<_> = clears.iter().map(|&(_, f, n)| (f, n)).collect();
        assert_eq!(runs, vec![(0, 1), (2, 1), (5, 1)]);
        assert!(
            clears.iter().all(|&(t, _, _)| t == clears[0].0),
            "one pass clears all three runs: {clears:?}"
        );
        for k in 0..64 {
            assert_eq!(s.engine.bitmap_chunk_set(k), Some(false), "chunk {k}");
        }
    }

    /// A write that failed on a member completes only once that failure's record (a bad
    /// block or the member's failure) is out, even when an owner holding acknowledgements back
    /// has filled the token table: the write waits for room instead of completing unrecorded
    /// (a cut would then leave a member assembly trusts without the write). Here the table is
    /// filled with held clean marks down to one free place, two writes then fail on member 1
    /// and the first one's record takes that place.
    #[test]
    fn a_failed_write_waits_for_room_for_its_record() {
        let mut c = Raid1Config::new(2, 4096);
        c.max_requests = 2;
        c.sync_buffers = 0;
        let mut s = sim(c);
        s.auto_ack = false;
        let mut seen = 0;
        let mut held = Vec::new();
        let id = fill_with_clean_marks(&mut s, &mut seen, &mut held);
        // One place freed: the dirty mark takes it, is acknowledged, and the write goes on.
        s.ack(held.remove(0)).expect("a held token");
        run_acking(&mut s, &mut seen, &mut held, |s| s.result(id).is_some());
        assert_eq!(s.result(id), Some(Ok(())));
        let full = s.engine.metadata_pending();
        // Two writes fail on member 1; records are held back as well as clean marks.
        s.members[1].faults.push(Fault::write(100, 16));
        let a = s.write(100, &data(1, 4)).expect("a free request");
        let b = s.write(108, &data(2, 4)).expect("a free request");
        for _ in 0..1000 {
            ack_new(&mut s, &mut seen, |e| {
                matches!(
                    e,
                    Event::MarkClean { .. } | Event::BadBlocks { .. } | Event::MemberFailed { .. }
                )
            })
            .into_iter()
            .for_each(|t| held.push(t));
            if !s.step() {
                break;
            }
        }
        let records = s
            .events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Event::BadBlocks { member: 1, .. } | Event::MemberFailed { member: 1, .. }
                )
            })
            .count();
        assert!(
            s.engine.metadata_pending() <= full + 1,
            "{} tokens out, {full} before: the table grew",
            s.engine.metadata_pending()
        );
        for (id, name) in [(a, "first"), (b, "second")] {
            assert_eq!(
                s.result(id),
                None,
                "the {name} write completed with {records} record(s) of member 1's failure \
                 out and none acknowledged"
            );
        }
        // Everything held is acknowledged: the records go out and both writes complete.
        release_held(&mut s, &mut seen, &mut held, |s| {
            s.result(a).is_some() && s.result(b).is_some()
        });
        release_held(&mut s, &mut seen, &mut held, |s| {
            s.result(a).is_some() && s.result(b).is_some()
        });
        assert_eq!(s.result(a), Some(Ok(())), "first");
        assert_eq!(s.result(b), Some(Ok(())), "second");
        assert_eq!(s.engine.member_state(1), Some(PositionState::Faulty));
        // The data is on member 0.
        assert_eq!(s.read_sync(100, 4).unwrap(), data(1, 4));
        assert_eq!(s.read_sync(108, 4).unwrap(), data(2, 4));
    }

    /// A read error whose repair cannot rewrite the bad member, while held clean marks fill the
    /// table's mandatory share: the bad range is still recorded (BadBlocks), at once — the
    /// optional budget has places of its own. Before the table was split a full table dropped
    /// the record for good: the engine avoided the range, the on-disk log never had it, and a
    /// cut left a member whose stale copy assembly trusts.
    #[test]
    fn a_failed_rewrite_is_recorded_though_held_marks_fill_the_table() {
        let mut c = reads_on_member_1(2);
        c.members[1].bad_blocks = Some(BadBlockTable {
            ranges: vec![],
            capacity: 512,
        });
        let mut s = sim(c);
        let d = data(7, 8);
        assert_eq!(s.write_sync(200, &d), Some(Ok(())));
        s.auto_ack = false;
        let mut seen = s.events.len();
        let mut held = Vec::new();
        let waiting = fill_with_clean_marks(&mut s, &mut seen, &mut held);
        // Member 1 cannot read the range nor write it back.
        s.members[1].faults.push(Fault::read_forever(200, 8));
        s.members[1].faults.push(Fault::write(200, 8));
        let (id, buf) = s.read(200, 8).expect("a free request");
        run_acking(&mut s, &mut seen, &mut held, |s| {
            s.result(id).is_some() && !records_of(s, 1).is_empty()
        });
        assert_eq!(s.result(id), Some(Ok(())), "the read is served by member 0");
        assert_eq!(s.bufs[buf.0 as usize], d);
        assert!(
            s.io_log
                .iter()
                .any(|r| r.io.member == 1 && r.io.kind == MemberIoKind::Write && !r.ok),
            "the repair never tried to rewrite member 1"
        );
        let records = records_of(&s, 1);
        assert!(
            matches!(
                records.as_slice(),
                [Event::BadBlocks {
                    sector: 200,
                    sectors: 8,
                    ..
                }]
            ),
            "member 1's failed rewrite left {records:?} (one BadBlocks of 200+8 expected) with \
             {} clean marks held",
            held.len()
        );
        assert_eq!(
            s.result(waiting),
            None,
            "the write waiting for its dirty mark moved"
        );
        release_held(&mut s, &mut seen, &mut held, |s| {
            s.result(waiting).is_some()
        });
        assert_eq!(s.result(waiting), Some(Ok(())));
    }

    /// A member failed by a read error (its error limit is 0) while the table is full: its
    /// MemberFailed has no room. The failure is owed, not dropped: a write that reaches only
    /// the survivor does not complete until the failure is out and acknowledged, and the
    /// record goes out as soon as a place frees. Before, the event was lost for good and the
    /// write completed with member 1 still in sync on disk.
    #[test]
    fn a_failure_without_room_is_owed_and_writes_wait_for_it() {
        let mut c = reads_on_member_1(2);
        c.max_read_errors = 0;
        let mut s = sim(c);
        s.auto_ack = false;
        let mut seen = 0;
        let mut held = Vec::new();
        let waiting = fill_with_clean_marks(&mut s, &mut seen, &mut held);
        s.members[1].faults.push(Fault::read_forever(300, 8));
        let (id, _) = s.read(300, 8).expect("a free request");
        run_acking(&mut s, &mut seen, &mut held, |s| s.result(id).is_some());
        assert_eq!(s.result(id), Some(Ok(())), "the read is served by member 0");
        assert_eq!(s.engine.member_state(1), Some(PositionState::Faulty));
        assert!(
            records_of(&s, 1).is_empty(),
            "a record found room in a full table"
        );
        // One place frees: the owed failure takes it (before any dirty mark).
        let before = s.events.len();
        s.ack(held.remove(0)).expect("a held token");
        let fresh: Vec<_> = s.events[before..].iter().map(|(_, e)| e.clone()).collect();
        assert!(
            matches!(fresh.first(), Some(Event::MemberFailed { member: 1, .. })),
            "once a place freed the engine emitted {fresh:?}, not member 1's owed failure"
        );
        // The waiting write now reaches only member 0: it completes only after member 1's
        // failure is acknowledged.
        let failed_tokens: Vec<MetaToken> = fresh
            .iter()
            .filter(|e| matches!(e, Event::MemberFailed { member: 1, .. }))
            .map(|e| e.token())
            .collect();
        seen = s.events.len();
        for t in std::mem::take(&mut held) {
            s.ack(t).expect("a held token");
        }
        for _ in 0..1000 {
            ack_new(&mut s, &mut seen, |e| {
                matches!(e, Event::MarkClean { .. } | Event::MemberFailed { .. })
            })
            .into_iter()
            .for_each(|t| held.push(t));
            if !s.step() {
                break;
            }
        }
        assert_eq!(
            s.result(waiting),
            None,
            "the write completed while member 1's failure was unacknowledged"
        );
        for t in failed_tokens {
            s.ack(t).expect("the owed failure's token");
        }
        release_held(&mut s, &mut seen, &mut held, |s| {
            s.result(waiting).is_some()
        });
        assert_eq!(s.result(waiting), Some(Ok(())));
    }

    /// As above, but the failure comes while the array is dirty and a write needs no gate:
    /// the write issued after member 1 failed reaches only member 0 and must not complete
    /// while the failure is owed (settle_write counts owed failures as unrecorded).
    #[test]
    fn a_write_after_an_owed_failure_waits_for_its_record() {
        let mut c = reads_on_member_1(3);
        c.max_read_errors = 0;
        c.members[0].bad_blocks = Some(BadBlockTable {
            ranges: vec![],
            capacity: 512,
        });
        let mut s = sim(c);
        s.auto_ack = false;
        let mut seen = 0;
        let mut held = Vec::new();
        let first = fill_with_clean_marks(&mut s, &mut seen, &mut held);
        // One place: the dirty mark takes it and is acknowledged, the write completes.
        s.ack(held.remove(0)).expect("a held token");
        run_acking(&mut s, &mut seen, &mut held, |s| s.result(first).is_some());
        assert_eq!(s.result(first), Some(Ok(())));
        // A write failing on member 0 takes the last place with its BadBlocks (held back).
        s.members[0].faults.push(Fault::write(500, 8));
        let bad = s.write(500, &data(5, 8)).expect("a free request");
        for _ in 0..100 {
            held.extend(ack_new(&mut s, &mut seen, |e| {
                matches!(e, Event::MarkClean { .. } | Event::BadBlocks { .. })
            }));
            if !s.step() {
                break;
            }
        }
        assert_eq!(s.result(bad), None, "the failed write completed unrecorded");
        // Member 1 fails by a read error with no place left for its record.
        s.members[1].faults.push(Fault::read_forever(300, 8));
        let (read, _) = s.read(300, 8).expect("a free request");
        run_acking(&mut s, &mut seen, &mut held, |s| s.result(read).is_some());
        assert_eq!(s.result(read), Some(Ok(())));
        assert_eq!(s.engine.member_state(1), Some(PositionState::Faulty));
        assert!(
            records_of(&s, 1).is_empty(),
            "a record found room in a full table"
        );
        // This write reaches member 0 only.
        let after = s.write(600, &data(6, 8)).expect("a free request");
        run_acking(&mut s, &mut seen, &mut held, |s| s.result(after).is_some());
        assert_eq!(
            s.result(after),
            None,
            "a write that missed member 1 completed while its failure was owed"
        );
        assert!(
            !s.io_log
                .iter()
                .any(|r| r.io.member == 1 && r.io.sector == 600),
            "the write reached the failed member"
        );
        release_held(&mut s, &mut seen, &mut held, |s| {
            s.result(after).is_some() && s.result(bad).is_some()
        });
        assert_eq!(s.result(after), Some(Ok(())));
        // Its one good copy was on member 1, and member 0 holds the range bad.
        assert_eq!(
            s.result(bad),
            Some(Err(ArrayIoError::WriteFailed { sector: 500 }))
        );
        assert!(
            records_of(&s, 1)
                .iter()
                .any(|e| matches!(e, Event::MemberFailed { member: 1, .. })),
            "member 1's failure was never recorded"
        );
    }
}
