//! The one clock of a blocking [`Array`](super::Array): where its [`Now`] comes from.
//!
//! The core reads no clock. The [`Machine`](super::machine::Machine) is told the time with
//! every `handle_timeout`; the blocking facade asks its [`Clock`] for it before each call and
//! when the machine waits for a timer (a throttled sync, a retry, the safe-mode delay).
//!
//! - [`VirtualClock`] (the default, no_std): time moves only when someone moves it — a test
//!   with [`VirtualClock::advance`], or the array itself when the machine waits for a timer
//!   (it jumps to the deadline instead of sleeping). Deterministic; speed limits shape the
//!   order of work, not wall-clock time.
//! - [`SystemClock`] (std): `Instant` for the monotonic part, the system time for the wall
//!   part; waiting sleeps. Every `SystemClock` counts from the same process-wide origin, so a
//!   driver that takes over an array's machine can keep using one.

use super::machine::Now;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

/// A source of [`Now`] for the blocking array.
pub trait Clock: Send {
    /// The time now.
    fn now(&mut self) -> Now;
    /// Waits until the monotonic clock reaches `deadline_ns` (a virtual clock jumps there)
    /// and returns the time then.
    fn wait_until(&mut self, deadline_ns: u64) -> Now;
}

/// Time that moves only when moved: by [`Self::advance`] from any clone of the handle, or
/// to a deadline the array waits for. Wall seconds follow the monotonic part from `wall_start`.
#[derive(Clone, Debug)]
pub struct VirtualClock {
    mono_ns: Arc<AtomicU64>,
    wall_start: u64,
}

impl VirtualClock {
    /// A clock at monotonic 0 whose wall time starts at `wall_secs` (seconds since the epoch).
    pub fn new(wall_secs: u64) -> Self {
        VirtualClock {
            mono_ns: Arc::new(AtomicU64::new(0)),
            wall_start: wall_secs,
        }
    }

    /// A clock that reads `now` (monotonic and wall) at first, e.g. a machine's last time.
    pub fn at(now: Now) -> Self {
        VirtualClock {
            mono_ns: Arc::new(AtomicU64::new(now.mono_ns)),
            wall_start: now.wall_secs.saturating_sub(now.mono_ns / 1_000_000_000),
        }
    }

    /// Moves time forward by `ns` (every clone sees it).
    pub fn advance(&self, ns: u64) {
        self.mono_ns.fetch_add(ns, Ordering::SeqCst);
    }

    /// The time on this clock.
    pub fn read(&self) -> Now {
        let mono_ns = self.mono_ns.load(Ordering::SeqCst);
        Now {
            mono_ns,
            wall_secs: self.wall_start + mono_ns / 1_000_000_000,
        }
    }
}

impl Clock for VirtualClock {
    fn now(&mut self) -> Now {
        self.read()
    }

    fn wait_until(&mut self, deadline_ns: u64) -> Now {
        self.mono_ns.fetch_max(deadline_ns, Ordering::SeqCst);
        self.read()
    }
}

/// The system's clocks (std): monotonic from a process-wide origin, wall from `SystemTime`.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[cfg(feature = "std")]
impl SystemClock {
    /// The time now (also usable without an instance, e.g. by a driver taking over a machine).
    pub fn read() -> Now {
        use std::sync::OnceLock;
        use std::time::{Instant, SystemTime, UNIX_EPOCH};
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        Now {
            // Starts at 1 s so that "0" never looks like a time the machine has seen.
            mono_ns: 1_000_000_000
                + origin.elapsed().as_nanos().min(u128::from(u64::MAX / 2)) as u64,
            wall_secs: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

#[cfg(feature = "std")]
impl Clock for SystemClock {
    fn now(&mut self) -> Now {
        Self::read()
    }

    fn wait_until(&mut self, deadline_ns: u64) -> Now {
        let now = Self::read();
        if deadline_ns > now.mono_ns {
            // Capped: a far deadline (an idle timer) must not park the caller for long; the
            // loop asks again.
            let ns = (deadline_ns - now.mono_ns).min(1_000_000_000);
            std::thread::sleep(std::time::Duration::from_nanos(ns));
        }
        Self::read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_moves_only_when_moved() {
        let mut c = VirtualClock::new(1000);
        let other = c.clone();
        assert_eq!(
            c.now(),
            Now {
                mono_ns: 0,
                wall_secs: 1000
            }
        );
        other.advance(2_500_000_000);
        assert_eq!(
            c.now(),
            Now {
                mono_ns: 2_500_000_000,
                wall_secs: 1002
            }
        );
        // Waiting for a past deadline does not go back.
        assert_eq!(c.wait_until(1).mono_ns, 2_500_000_000);
        assert_eq!(c.wait_until(3_000_000_000).mono_ns, 3_000_000_000);
    }

    #[cfg(feature = "std")]
    #[test]
    fn system_clock_is_monotonic() {
        let a = SystemClock::read();
        let b = SystemClock.wait_until(a.mono_ns + 1_000_000);
        assert!(b.mono_ns >= a.mono_ns + 1_000_000);
        assert!(b.wall_secs > 1_700_000_000);
    }
}
