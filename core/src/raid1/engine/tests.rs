//! Incremental progress against the reference: every round visiting every request.
//!
//! Two engines get the same random inputs (submissions that overlap, member completions in
//! random order with errors, metadata acknowledgements in random order, timers, membership
//! changes, sync actions); one visits only the requests an input can move, the other every
//! request in every round. Their outputs must match exactly, call by call.

extern crate std;

use super::*;
use std::format;
use std::string::String;
use std::vec;

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

type Outputs = (
    Vec<MemberIo>,
    Vec<Event>,
    Vec<(ReqId, Result<(), ArrayIoError>)>,
);

fn drain(e: &mut Raid1) -> Outputs {
    let ios = core::iter::from_fn(|| e.poll_member_io()).collect();
    let evs = core::iter::from_fn(|| e.poll_event()).collect();
    let done = core::iter::from_fn(|| e.poll_completion()).collect();
    (ios, evs, done)
}

/// A member completion, routed as a driver routes it (direct reads by their id's bit).
fn complete(e: &mut Raid1, id: MemberIoId, res: Result<(), MemberError>) -> String {
    if id.raw() & DIRECT_BIT != 0 {
        format!("{:?}", e.handle_direct_completion(id, res))
    } else {
        format!("{:?}", e.handle_member_completion(id, res))
    }
}

fn config(rng: &mut Rng) -> Raid1Config {
    let slots = 2 + rng.below(2) as usize;
    let size = 512;
    let mut cfg = Raid1Config::new(slots, size);
    cfg.max_requests = 1 + rng.below(24) as usize;
    cfg.max_member_ios = 1 + rng.below(16) as usize;
    cfg.fix_buffers = rng.below(3) as usize;
    cfg.fix_buffer_sectors = 1 + rng.below(8);
    if rng.below(2) == 0 {
        cfg.bitmap = Some(BitmapConfig::new(1 + rng.below(64)));
    }
    cfg.start_clean = rng.below(2) == 0;
    if rng.below(3) == 0 {
        cfg.resync_offset = rng.below(size);
    }
    for m in cfg.members.iter_mut() {
        m.rotational = rng.below(2) == 0;
        if rng.below(3) == 0 {
            m.bad_blocks = Some(BadBlockTable {
                ranges: vec![],
                capacity: 1 + rng.below(4) as usize,
            });
        }
    }
    if slots == 3 && rng.below(3) == 0 {
        cfg.members[2].write_mostly = true;
    }
    cfg.sync_buffers = rng.below(9) as usize;
    cfg.sync_window = 1 + rng.below(4) as usize;
    cfg.sync_speed_min_kib = 1_000_000;
    cfg.sync_speed_max_kib = 10_000_000;
    cfg
}

/// One random case; `timers` false keeps time still (no full pass from timeouts).
fn run_case(seed: u64, timers: bool) -> Result<FastReadStats, String> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let cfg = config(&mut rng);
    let size = cfg.array_sectors;
    let slots = cfg.members.len();
    let mut a = Raid1::new(cfg.clone()).map_err(|e| format!("{e}"))?;
    let mut b = Raid1::new(cfg).map_err(|e| format!("{e}"))?;
    b.always_full = true;
    let mut ios: Vec<MemberIo> = Vec::new();
    let mut tokens: Vec<MetaToken> = Vec::new();
    let mut now = 0u64;
    let steps = 300 + rng.below(300);
    let err_rate = rng.below(4); // percent-ish: 0..3 in 40
    let check = |a: &mut Raid1,
                 b: &mut Raid1,
                 what: &str,
                 ios: &mut Vec<MemberIo>,
                 tokens: &mut Vec<MetaToken>| {
        let oa = drain(a);
        let ob = drain(b);
        if oa != ob {
            return Err(format!(
                "seed {seed}: outputs differ after {what}:\n{oa:?}\n{ob:?}"
            ));
        }
        if a.poll_timeout() != b.poll_timeout()
            || a.requests_in_flight() != b.requests_in_flight()
            || a.member_ios_in_flight() != b.member_ios_in_flight()
            || a.resync_offset() != b.resync_offset()
            || a.sync_status() != b.sync_status()
        {
            return Err(format!("seed {seed}: state differs after {what}"));
        }
        ios.extend(oa.0);
        tokens.extend(oa.1.iter().map(|e| e.token()));
        Ok(())
    };
    for step in 0..steps {
        let what = match rng.below(100) {
            0..=34 => {
                let sector = rng.below(size);
                let len = 1 + rng.below(24.min(size - sector));
                let req = match rng.below(10) {
                    0..=3 => ArrayRequest::read(sector, len, BufRef(step)),
                    4..=7 => ArrayRequest::write(sector, len, BufRef(step)),
                    8 => ArrayRequest::flush(),
                    _ => ArrayRequest::discard(sector, len),
                };
                // A third of the reads try the direct path (the C driver's).
                if req.kind == RequestKind::Read && rng.below(3) == 0 {
                    let da = a.submit_direct_read(&req);
                    let db = b.submit_direct_read(&req);
                    if da != db {
                        return Err(format!("seed {seed}: direct differs {da:?} {db:?}"));
                    }
                    if let Some(io) = da {
                        ios.push(io);
                        check(&mut a, &mut b, "direct", &mut ios, &mut tokens)?;
                        continue;
                    }
                }
                let ra = a.handle_submit(req);
                let rb = b.handle_submit(req);
                if ra != rb {
                    return Err(format!("seed {seed}: submit differs {ra:?} {rb:?}"));
                }
                "submit"
            }
            35..=69 if !ios.is_empty() => {
                let io = ios.swap_remove(rng.below(ios.len() as u64) as usize);
                let res = if rng.below(40) < err_rate {
                    Err(MemberError::Io(5))
                } else {
                    Ok(())
                };
                let ra = complete(&mut a, io.id, res);
                let rb = complete(&mut b, io.id, res);
                if ra != rb {
                    return Err(format!("seed {seed}: completion differs {ra:?} {rb:?}"));
                }
                "completion"
            }
            70..=84 if !tokens.is_empty() => {
                let t = tokens.swap_remove(rng.below(tokens.len() as u64) as usize);
                let ra = a.handle_metadata_done(t);
                let rb = b.handle_metadata_done(t);
                if ra != rb {
                    return Err(format!("seed {seed}: ack differs {ra:?} {rb:?}"));
                }
                "ack"
            }
            85..=92 if timers => {
                now += rng.below(300_000_000);
                a.handle_timeout(now);
                b.handle_timeout(now);
                "timeout"
            }
            93 => {
                let m = rng.below(slots as u64) as usize;
                let ra = a.fail_member(m);
                let rb = b.fail_member(m);
                if ra != rb {
                    return Err(format!("seed {seed}: fail differs"));
                }
                "fail"
            }
            94 => {
                let m = rng.below(slots as u64) as usize;
                let ra = a.remove_member(m);
                let rb = b.remove_member(m);
                if ra != rb {
                    return Err(format!("seed {seed}: remove differs"));
                }
                if ra.is_ok() {
                    let ra = a.add_member(m, MemberConfig::in_sync());
                    let rb = b.add_member(m, MemberConfig::in_sync());
                    if ra != rb {
                        return Err(format!("seed {seed}: add differs"));
                    }
                }
                "remove/add"
            }
            95 | 96 => {
                let action = [
                    SyncAction::Resync,
                    SyncAction::Recovery,
                    SyncAction::Check,
                    SyncAction::Repair,
                ][rng.below(4) as usize];
                let ra = a.start_sync(action, now);
                let rb = b.start_sync(action, now);
                if ra != rb {
                    return Err(format!("seed {seed}: start_sync differs"));
                }
                "start_sync"
            }
            97 => {
                let ra = a.abort_sync();
                let rb = b.abort_sync();
                if ra != rb {
                    return Err(format!("seed {seed}: abort differs"));
                }
                "abort"
            }
            98 => {
                let s = if rng.below(2) == 0 {
                    u64::MAX
                } else {
                    rng.below(size)
                };
                a.set_resync_offset(s);
                b.set_resync_offset(s);
                "resync offset"
            }
            _ => continue,
        };
        check(&mut a, &mut b, what, &mut ios, &mut tokens)?;
    }
    // Drain: everything must finish in both, the same way.
    for _ in 0..100_000 {
        if !ios.is_empty() {
            let io = ios.remove(0);
            let ra = complete(&mut a, io.id, Ok(()));
            let rb = complete(&mut b, io.id, Ok(()));
            if ra != rb {
                return Err(format!("seed {seed}: drain completion differs"));
            }
        } else if !tokens.is_empty() {
            let t = tokens.remove(0);
            let ra = a.handle_metadata_done(t);
            let rb = b.handle_metadata_done(t);
            if ra != rb {
                return Err(format!("seed {seed}: drain ack differs"));
            }
        } else if a.requests_in_flight() > 0 || a.sync_status().is_some() {
            now += 1_000_000_000;
            a.handle_timeout(now);
            b.handle_timeout(now);
        } else {
            break;
        }
        check(&mut a, &mut b, "drain", &mut ios, &mut tokens)?;
    }
    if a.requests_in_flight() != 0 || a.member_ios_in_flight() != 0 {
        return Err(format!("seed {seed}: requests left after draining"));
    }
    Ok(a.fast_read_stats())
}

#[test]
fn incremental_progress_matches_full_passes() {
    let mut failures: Vec<String> = Vec::new();
    let (mut direct, mut fallbacks) = (0, 0);
    for seed in 0..1500u64 {
        match run_case(seed, seed % 3 != 0) {
            Ok(s) => {
                direct += s.taken;
                fallbacks += s.fallbacks;
            }
            Err(e) => failures.push(e),
        }
    }
    // The cases reach the direct path and its fallback to the general one.
    assert!(
        direct > 500 && fallbacks > 10,
        "{direct} direct, {fallbacks} fell back"
    );
    assert!(
        failures.is_empty(),
        "{} cases differ; first: {}",
        failures.len(),
        failures[0]
    );
}

/// A pool slot reused past 2^31 times (hours of small I/O on a busy array: the pool is a
/// stack, so one slot takes most of them) must not hand out an id with either top bit set:
/// the array machine routes ids with bit 63 to its metadata I/O.
#[test]
fn member_io_ids_keep_their_top_bits_free_when_generations_wrap() {
    let mut cfg = Raid1Config::new(2, 64);
    cfg.start_clean = true;
    let mut e = Raid1::new(cfg).unwrap();
    for io in e.ios.iter_mut() {
        io.gen = 0x7fff_fff0;
    }
    for n in 0..64u64 {
        let req = if n % 2 == 0 {
            ArrayRequest::read(n % 60, 4, BufRef(n))
        } else {
            ArrayRequest::write(n % 60, 4, BufRef(n))
        };
        e.handle_submit(req).unwrap();
        loop {
            while let Some(ev) = e.poll_event() {
                e.handle_metadata_done(ev.token()).unwrap();
            }
            let Some(io) = e.poll_member_io() else { break };
            assert_eq!(io.id.raw() >> 62, 0, "id {:#x} uses a top bit", io.id.raw());
            e.handle_member_completion(io.id, Ok(())).unwrap();
        }
        while let Some((_, r)) = e.poll_completion() {
            assert_eq!(r, Ok(()));
        }
    }
    assert_eq!(e.requests_in_flight(), 0);
}
