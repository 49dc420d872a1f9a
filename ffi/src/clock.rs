//! The one clock of the C front: monotonic ns (the machine's timers) plus wall seconds
//! (stamped into superblocks). The core reads no clock; this is where `Now` is made.

use md::array::machine::Now;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static BASE: OnceLock<Instant> = OnceLock::new();

/// Now, from the process's monotonic clock (ns since the library first looked, plus 1 s so it
/// is never 0) and the wall clock.
pub fn now() -> Now {
    let base = *BASE.get_or_init(Instant::now);
    let mono_ns = u64::try_from(base.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .saturating_add(1_000_000_000);
    Now {
        mono_ns,
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
