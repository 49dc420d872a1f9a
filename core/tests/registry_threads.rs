//! The registry shared across threads: lookups racing removal never hand out a removed array,
//! references all come back, and the registry ends consistent.
#![cfg(feature = "std")]

use mdraid::registry::{
    ArrayState, BusyReason, Hold, Holder, Registry, RegistryError, SharedRegistry,
};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

/// Payloads alive right now, to catch leaks and double drops.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Per-array payload: stamped with the generation of the array it belongs to by its first holder.
#[derive(Debug)]
struct Arr {
    stamp: u64,
}

impl Default for Arr {
    fn default() -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Arr { stamp: 0 }
    }
}

impl Drop for Arr {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tiny deterministic PRNG (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Checks, under the lock, that `h` still reaches the array it was issued for: same generation,
/// and the payload belongs to that array. Stamps the payload on first use.
fn check_holder(h: &Holder<Arr>) {
    let (info, stamp) = h
        .with(|r, a| {
            let info = r.info_of(a)?;
            let p = r.payload_mut(a)?;
            if p.stamp == 0 {
                p.stamp = a.generation();
            }
            Ok((info, p.stamp))
        })
        .unwrap_or_else(|e| panic!("holder of md{} lost its array: {e}", h.unit()));
    assert_eq!(info.generation, h.generation());
    assert_eq!(stamp, h.generation(), "payload of another array");
    assert!(info.holders >= 1);
}

/// Errors a racing thread may legitimately see; anything else (StaleHandle above all) fails.
fn expected(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::NotFound
            | RegistryError::Deleted { .. }
            | RegistryError::Busy { .. }
            | RegistryError::NoMembers { .. }
            | RegistryError::NoDevice { .. }
            | RegistryError::Exists { .. }
            | RegistryError::NameExists { .. }
    )
}

/// Lookups refused because the array was deleted, across all tests (for the report).
static REFUSED: AtomicUsize = AtomicUsize::new(0);

fn ok_or_expected<T>(what: &str, r: Result<T, RegistryError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(RegistryError::Deleted { .. }) => {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            None
        }
        Err(e) if expected(&e) => None,
        Err(e) => panic!("{what}: unexpected {e:?}"),
    }
}

/// What the registry may hold once nobody holds anything: no references, no deleted arrays, and
/// nothing that the last put should have removed.
fn assert_quiescent(s: &SharedRegistry<Arr>) {
    let reg = s.lock();
    for i in reg.iter() {
        assert_eq!(i.holders, 0, "md{} still referenced: {i:?}", i.unit);
        assert!(
            !i.deleted,
            "deleted md{} outlived its holders: {i:?}",
            i.unit
        );
        assert!(
            i.state != ArrayState::Clear || i.members > 0 || i.hold != Hold::None,
            "md{} should have gone on its last put: {i:?}",
            i.unit
        );
        if i.state == ArrayState::Active {
            assert!(i.members > 0, "{i:?}");
        }
    }
    assert_eq!(
        LIVE.load(Ordering::SeqCst),
        reg.len() as isize,
        "one payload per array"
    );
}

/// Stops and removes everything left, through the public API.
fn drain(s: &SharedRegistry<Arr>) {
    for i in s.snapshot() {
        let h = s.get(i.unit).unwrap();
        h.set_inactive().unwrap();
        h.stop().unwrap();
        let payload = h
            .release()
            .unwrap()
            .expect("last put removes a stopped array");
        assert!(payload.stamp == 0 || payload.stamp == i.generation);
    }
    assert!(s.lock().is_empty());
}

/// Many threads probing, looking up, duplicating, reconfiguring, stopping, removing and putting on
/// a handful of shared units.
fn chaos(threads: usize, iterations: usize, units: u32) {
    let s: SharedRegistry<Arr> = SharedRegistry::new(Registry::new());
    let removed = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let s = s.clone();
            let removed = Arc::clone(&removed);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut rng = Rng::new(t as u64 + 1);
                let mut held: Vec<Holder<Arr>> = Vec::new();
                start.wait();
                for _ in 0..iterations {
                    let unit = rng.below(u64::from(units)) as u32;
                    match rng.below(16) {
                        0..=2 => {
                            if let Some(h) = ok_or_expected("probe", s.probe(unit)) {
                                check_holder(&h);
                                held.push(h);
                            }
                        }
                        3 | 4 => {
                            if let Some(h) = ok_or_expected("get", s.get(unit)) {
                                check_holder(&h);
                                held.push(h);
                            }
                        }
                        5 => {
                            let name = format!("md{unit}");
                            if let Some(h) = ok_or_expected("lookup", s.lookup_name(&name)) {
                                assert_eq!(h.unit(), unit);
                                check_holder(&h);
                                held.push(h);
                            }
                        }
                        6 | 7 => {
                            if !held.is_empty() {
                                let i = rng.below(held.len() as u64) as usize;
                                let h = held.swap_remove(i);
                                check_holder(&h);
                                if let Some(p) = h.release().unwrap() {
                                    removed.fetch_add(1, Ordering::Relaxed);
                                    drop(p);
                                }
                            }
                        }
                        8 => {
                            if let Some(h) = held.last() {
                                if let Some(d) = ok_or_expected("dup", h.dup()) {
                                    assert_eq!(d.generation(), h.generation());
                                    held.push(d);
                                }
                            }
                        }
                        9 => {
                            if ok_or_expected("remove", s.remove(unit)).is_some() {
                                removed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        10 => {
                            // Created with no reference, kept by its UNTIL_IOCTL hold.
                            let _ = ok_or_expected("new_array", s.new_array(&format!("md{unit}")));
                        }
                        _ => {
                            if held.is_empty() {
                                continue;
                            }
                            let i = rng.below(held.len() as u64) as usize;
                            let h = &held[i];
                            let r = match rng.below(7) {
                                0 => h.note_ioctl(),
                                1 => h.add_member().map(drop),
                                2 => h.remove_member().map(drop),
                                3 => h.configure(),
                                4 => h.set_running(),
                                5 => h.set_inactive(),
                                _ => h.stop(),
                            };
                            let _ = ok_or_expected("reconfigure", r);
                            check_holder(h);
                        }
                    }
                    if held.len() >= 64 {
                        held.clear();
                    }
                    if rng.below(4) == 0 {
                        thread::yield_now();
                    }
                }
                for h in held.drain(..) {
                    check_holder(&h);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let removed = removed.load(Ordering::Relaxed);
    eprintln!(
        "chaos({threads}, {iterations}, {units}): {removed} removals, {} deleted refusals so far",
        REFUSED.load(Ordering::Relaxed)
    );
    assert!(removed > 0, "the race never removed anything");
    assert_quiescent(&s);
    drain(&s);
    assert_eq!(LIVE.load(Ordering::SeqCst), 0);
}

/// One thread keeps creating and stopping an array while others race to look it up: a lookup
/// either fails cleanly or yields the live array, never one that is going away.
fn lookup_vs_removal(readers: usize, iterations: usize) {
    const UNIT: u32 = 7;
    let s: SharedRegistry<Arr> = SharedRegistry::default();
    let start = Arc::new(Barrier::new(readers + 1));
    let found = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    {
        let s = s.clone();
        let start = Arc::clone(&start);
        workers.push(thread::spawn(move || {
            start.wait();
            let mut cycles = 0;
            while cycles < iterations {
                let Some(h) = ok_or_expected("probe", s.probe(UNIT)) else {
                    continue;
                };
                check_holder(&h);
                h.note_ioctl().unwrap();
                h.add_member().unwrap();
                h.configure().unwrap();
                h.set_running().unwrap();
                // Stay live for a moment, so readers find it running.
                thread::yield_now();
                let mut stopped = false;
                if cycles % 2 == 1 {
                    // md refuses to stop a running array that others hold: retry a little.
                    for _ in 0..4 {
                        match h.stop() {
                            Ok(()) => {
                                stopped = true;
                                break;
                            }
                            Err(RegistryError::Busy {
                                reason: BusyReason::Holders,
                                ..
                            }) => thread::yield_now(),
                            Err(e) => panic!("stop: {e:?}"),
                        }
                    }
                }
                if !stopped {
                    // Inactive first; then the stop succeeds whoever else holds it, and the
                    // array stays, deleted, until they let go.
                    h.set_inactive().unwrap();
                    h.stop().unwrap();
                }
                assert!(h.info().unwrap().deleted);
                // Linger while deleted, so readers meet the refusal window.
                thread::yield_now();
                drop(h);
                cycles += 1;
            }
        }));
    }
    for t in 0..readers {
        let s = s.clone();
        let start = Arc::clone(&start);
        let found = Arc::clone(&found);
        let refused = Arc::clone(&refused);
        workers.push(thread::spawn(move || {
            let mut rng = Rng::new(100 + t as u64);
            start.wait();
            for _ in 0..iterations {
                let got = match rng.below(4) {
                    0 => s.get(UNIT),
                    1 => s.lookup_name("md7"),
                    2 => s.probe(UNIT),
                    _ => {
                        // Lookup and inspection under one lock: a handle is only ever issued
                        // for a live, not deleted array.
                        let mut r = s.lock();
                        match r.get(UNIT) {
                            Ok(h) => {
                                let info = r.info_of(&h).unwrap();
                                assert!(!info.deleted, "{info:?}");
                                assert!(
                                    r.put(h).unwrap().is_none(),
                                    "the writer or a hold keeps it"
                                );
                            }
                            Err(RegistryError::Deleted { .. }) => {
                                let info = r.info(UNIT).unwrap();
                                assert!(info.deleted && info.holders > 0, "{info:?}");
                            }
                            Err(RegistryError::NotFound) => assert!(r.info(UNIT).is_none()),
                            Err(e) => panic!("get: {e:?}"),
                        }
                        continue;
                    }
                };
                if matches!(got, Err(RegistryError::Deleted { .. })) {
                    refused.fetch_add(1, Ordering::Relaxed);
                    // Back off like an opener retrying, so the writer gets to finish the put.
                    thread::yield_now();
                }
                if let Some(h) = ok_or_expected("lookup", got) {
                    let info = h.info().unwrap();
                    // A fresh lookup never yields an array that was already deleted: refused.
                    // (It may be deleted by now, while held; that is allowed.)
                    assert_eq!(info.generation, h.generation());
                    check_holder(&h);
                    thread::yield_now();
                    check_holder(&h);
                    found.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        found.load(Ordering::Relaxed) > 0,
        "never found the array live"
    );
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "never met the deleted window"
    );
    eprintln!(
        "lookup_vs_removal: {} lookups found the array, {} were refused as deleted",
        found.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    assert_quiescent(&s);
    drain(&s);
}

/// Threads racing to create the same names: exactly one wins each name, units never collide.
fn named_races(threads: usize, names: usize) {
    let s: SharedRegistry<Arr> = SharedRegistry::default();
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let s = s.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let mut won = Vec::new();
                for n in 0..names {
                    match s.new_array(&format!("md_n{n}")) {
                        Ok(unit) => won.push((n, unit)),
                        Err(RegistryError::NameExists { .. }) => {}
                        Err(e) => panic!("new_array: {e:?}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut all: Vec<(usize, u32)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all.len(), names, "each name created exactly once");
    for (i, (n, unit)) in all.iter().enumerate() {
        assert_eq!(*n, i);
        assert_eq!(s.lock().find_name(&format!("md_n{n}")), Some(*unit));
    }
    let mut units: Vec<u32> = all.iter().map(|&(_, u)| u).collect();
    units.sort();
    let expected: Vec<u32> = (512..512 + names as u32).collect();
    assert_eq!(units, expected, "units 512.. with no gaps or repeats");
    drain(&s);
}

// One test function so that the LIVE payload counter is not shared by concurrent tests.
#[test]
fn registry_under_threads() {
    chaos(8, 5000, 3);
    chaos(4, 5000, 16);
    lookup_vs_removal(6, 3000);
    named_races(6, 300);
    assert_eq!(LIVE.load(Ordering::SeqCst), 0);
}
