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

pub mod bench;
#[cfg(target_os = "linux")]
pub mod uring;

/// The drivers' clock (the array's [`SystemClock`](crate::array::SystemClock)): monotonic ns
/// from a process-wide origin (never 0, never back), and seconds since the Unix epoch.
pub fn now() -> Now {
    crate::array::SystemClock::read()
}

/// The monotonic part of [`now`].
pub fn mono_ns() -> u64 {
    crate::array::SystemClock::read().mono_ns
}
