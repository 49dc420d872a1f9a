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
//! [`now`] is the one clock of the std drivers: [`SystemClock`]'s, the same process-wide
//! origin an [`Array`](crate::array::Array) on a system clock uses, so a machine taken over
//! from an array never sees time go back.

use crate::array::machine::Now;
use crate::array::SystemClock;

pub mod bench;
#[cfg(target_os = "linux")]
pub mod uring;

/// The drivers' clock ([`SystemClock::read`]): monotonic ns and seconds since the epoch.
pub fn now() -> Now {
    SystemClock::read()
}
