//! Drivers of the array machine ([`crate::array::machine::Machine`]) that need an OS (std
//! only): each carries out the machine's I/Os (data and metadata alike) and feeds it time.
//!
//! - [`uring`] (Linux): many array requests in flight over files and block devices, every
//!   machine I/O a ring entry (a preflush is a flush entry linked before its write, FUA is
//!   `RWF_DSYNC`), O_DIRECT where the device was opened so, driver-owned aligned buffers.
//! - The blocking driver is [`crate::array::Array`] itself; the virtual-time one is
//!   [`crate::raid1::sim`].
//! - [`bench`](mod@bench): end-to-end measurements (`mdraid bench --json`).
//!
//! [`now`] is the one clock every std driver hands the machine: monotonic nanoseconds since
//! the first call in this process, and wall-clock seconds for the superblocks.

use crate::array::machine::Now;
use std::sync::OnceLock;
use std::time::Instant;

pub mod bench;
#[cfg(target_os = "linux")]
pub mod uring;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The drivers' clock: monotonic ns since this process first asked (never 0, never back), and
/// seconds since the Unix epoch.
pub fn now() -> Now {
    let mono_ns = mono_ns();
    let wall_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Now { mono_ns, wall_secs }
}

/// The monotonic part of [`now`] alone (no wall-clock read).
pub fn mono_ns() -> u64 {
    let start = *EPOCH.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}
