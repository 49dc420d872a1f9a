//! Engine CPU cost per request, no I/O: `cargo bench -p mdraid --bench engine`.
//!
//! Each iteration runs one array request through the sans-IO engine in steady state (requests
//! and member I/Os recycled from its pools): submit, complete every member I/O it hands out,
//! poll the completion. The array starts dirty so writes need no metadata round trip.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mdraid::raid1::{ArrayRequest, BufRef, Raid1, Raid1Config};

const ARRAY_SECTORS: u64 = 1 << 24; // 8 GiB
const BLOCKS: u64 = ARRAY_SECTORS / 8;

fn engine(slots: usize) -> Raid1 {
    let mut cfg = Raid1Config::new(slots, ARRAY_SECTORS);
    cfg.start_clean = false;
    Raid1::new(cfg).expect("engine")
}

/// Next 4 KiB block: a large odd stride, so consecutive requests are never sequential.
fn step(block: &mut u64) -> u64 {
    *block = (*block + 104_729) % BLOCKS;
    *block * 8
}

fn read_4k(c: &mut Criterion) {
    // The general path, and md's read fast path (`Raid1::handle_submit_fast`: the array
    // machine's default for reads on a healthy array).
    for (name, fast) in [("read", false), ("fast_read", true)] {
        read_4k_with(c, name, fast);
    }
}

fn read_4k_with(c: &mut Criterion, name: &str, fast: bool) {
    for slots in [1usize, 2, 4] {
        let mut e = engine(slots);
        let mut block = 0;
        c.bench_function(&format!("engine_{name}_4k_{slots}_mirrors"), |b| {
            b.iter(|| {
                let sector = step(&mut block);
                let req = ArrayRequest::read(sector, 8, BufRef(1));
                let id = if fast {
                    e.handle_submit_fast(req).map(|s| s.id)
                } else {
                    e.handle_submit(req)
                }
                .expect("submit");
                let io = e.poll_member_io().expect("one member read");
                e.handle_member_completion(io.id, Ok(()))
                    .expect("completion");
                let (done, r) = e.poll_completion().expect("request done");
                debug_assert_eq!(done, id);
                black_box(r).expect("read ok");
            })
        });
        assert_eq!(e.requests_in_flight(), 0);
        assert!(e.poll_event().is_none());
        assert_eq!(e.fast_read_stats().taken > 0, fast, "{name}: fast path use");
    }
}

fn write_4k(c: &mut Criterion) {
    let mut e = engine(2);
    let mut block = 0;
    c.bench_function("engine_write_4k_2_mirrors", |b| {
        b.iter(|| {
            let sector = step(&mut block);
            let id = e
                .handle_submit(ArrayRequest::write(sector, 8, BufRef(1)))
                .expect("submit");
            let a = e.poll_member_io().expect("first mirror");
            let b = e.poll_member_io().expect("second mirror");
            e.handle_member_completion(a.id, Ok(()))
                .expect("completion");
            e.handle_member_completion(b.id, Ok(()))
                .expect("completion");
            let (done, r) = e.poll_completion().expect("request done");
            debug_assert_eq!(done, id);
            black_box(r).expect("write ok");
        })
    });
    assert_eq!(e.requests_in_flight(), 0);
    assert!(e.poll_event().is_none());
}

/// Reads with `depth` requests outstanding: each iteration completes the oldest member I/O and
/// submits a new read (the engine's per-input work grows with the requests it tracks).
fn read_4k_queued(c: &mut Criterion) {
    for depth in [8usize, 32, 128] {
        let mut e = engine(2);
        let mut block = 0;
        let mut fifo = std::collections::VecDeque::new();
        for _ in 0..depth {
            let sector = step(&mut block);
            e.handle_submit(ArrayRequest::read(sector, 8, BufRef(1)))
                .expect("submit");
            fifo.extend(std::iter::from_fn(|| e.poll_member_io()));
        }
        c.bench_function(&format!("engine_read_4k_2_mirrors_qd{depth}"), |b| {
            b.iter(|| {
                let io = fifo.pop_front().expect("outstanding read");
                e.handle_member_completion(io.id, Ok(()))
                    .expect("completion");
                let (_, r) = e.poll_completion().expect("request done");
                black_box(r).expect("read ok");
                let sector = step(&mut block);
                e.handle_submit(ArrayRequest::read(sector, 8, BufRef(1)))
                    .expect("submit");
                fifo.extend(std::iter::from_fn(|| e.poll_member_io()));
            })
        });
    }
}

/// Writes with `depth` requests outstanding (each one's two member writes in flight): each
/// iteration completes the oldest request's member writes and submits a new write.
fn write_4k_queued(c: &mut Criterion) {
    for depth in [8usize, 32, 128] {
        let mut e = engine(2);
        let mut block = 0;
        let mut fifo = std::collections::VecDeque::new();
        for _ in 0..depth {
            let sector = step(&mut block);
            e.handle_submit(ArrayRequest::write(sector, 8, BufRef(1)))
                .expect("submit");
            fifo.extend(std::iter::from_fn(|| e.poll_member_io()));
        }
        c.bench_function(&format!("engine_write_4k_2_mirrors_qd{depth}"), |b| {
            b.iter(|| {
                for _ in 0..2 {
                    let io = fifo.pop_front().expect("outstanding write");
                    e.handle_member_completion(io.id, Ok(()))
                        .expect("completion");
                }
                let (_, r) = e.poll_completion().expect("request done");
                black_box(r).expect("write ok");
                let sector = step(&mut block);
                e.handle_submit(ArrayRequest::write(sector, 8, BufRef(1)))
                    .expect("submit");
                fifo.extend(std::iter::from_fn(|| e.poll_member_io()));
            })
        });
    }
}

criterion_group!(benches, read_4k, write_4k, read_4k_queued, write_4k_queued);
criterion_main!(benches);
