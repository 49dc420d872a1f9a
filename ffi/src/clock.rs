//! The one clock of the C front: monotonic ns (the machine's timers) plus wall seconds
//! (stamped into superblocks). The core reads no clock; this is where `Now` is made.

use md::array::machine::Now;
use std::time::{SystemTime, UNIX_EPOCH};

/// CLOCK_MONOTONIC in ns (never 0).
pub fn mono_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// CLOCK_MONOTONIC_COARSE in ns: a few ms of resolution for a few ns of cost, enough to
/// decide whether one of md's timers (200 ms and more) is due on every pass of the driver.
pub fn coarse_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC_COARSE)
}

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through the pointer, which points at `ts`,
    // alive for the call.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    if r != 0 {
        return 1;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
        .max(1)
}

/// Now: the monotonic clock (the machine's timers) and the wall clock (superblock times).
pub fn now() -> Now {
    Now {
        mono_ns: mono_ns(),
        wall_secs: wall_secs(),
    }
}

/// Seconds since the epoch.
pub fn wall_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
