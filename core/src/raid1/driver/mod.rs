//! Drivers: loops that carry out what the sans-IO [`Raid1`](super::Raid1) engine asks for (std only).
//!
//! - [`BlockingDriver`]: one array request per call over any [`BlockDevice`]s, member I/O done
//!   synchronously, one at a time. Simple and portable; the Array layer's default.
//! - [`UringDriver`] (Linux): many array requests in flight over files or block devices, member
//!   I/O through io_uring (O_DIRECT friendly, driver-owned aligned buffers).
//! - [`bench`](mod@bench): end-to-end measurements (`mdraid bench --json`).
//!
//! Both drivers follow the engine's call order (see [`crate::raid1`]): feed an input, drain
//! `poll_member_io`, `poll_event` and `poll_completion`, repeat. They own the only clock
//! ([`Clock`], `std::time::Instant` based) and hand the engine plain nanoseconds.
//!
//! # Metadata
//!
//! Engine [`Event`]s (mark dirty/clean, bitmap bits, bad blocks, failed members) go to the
//! owner's [`MetadataSink`] in the order polled; once `apply` returns `Ok` the driver
//! acknowledges the event with [`Raid1::handle_metadata_done`](super::Raid1::handle_metadata_done).
//! A sink error is fatal to the driver: the engine holds writes until events are acknowledged, so
//! the driver refuses further requests ([`DriverError::Poisoned`]) rather than stall or lie.
//!
//! # Data-area mapping
//!
//! The engine addresses members in sectors relative to their data area. A driver is given each
//! member's data offset in bytes (`data_offset_bytes`, md's `data_offset * 512`) and issues member
//! sector `s` at byte `data_offset_bytes[member] + s * 512`.

use super::{ArrayIoError, EngineError, Event, MemberError, MemberIoKind, SubmitError};
use crate::device::{BlockDevice, DeviceError};
use std::boxed::Box;
use std::time::Instant;
use std::vec::Vec;

pub mod bench;
mod blocking;
#[cfg(target_os = "linux")]
mod uring;

pub use blocking::BlockingDriver;
#[cfg(target_os = "linux")]
pub use uring::{BufId, Completion, UringConfig, UringDriver};

/// A boxed error from a [`MetadataSink`].
pub type SinkError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One member I/O that failed during an array request (the engine may have covered it from
/// another mirror; these are reported with [`DriverError::Array`] when it could not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberFailure {
    /// Member slot.
    pub member: usize,
    /// What was being done.
    pub op: MemberIoKind,
    /// First sector, relative to the member's data area.
    pub sector: u64,
    /// How it failed.
    pub error: MemberError,
}

/// What a driver call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The engine refused the request (back-pressure or misuse); nothing was queued.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The engine refused an input (a driver bug or misuse).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The array request failed: no mirror could serve it. `members` lists the member I/Os
    /// that failed while the request ran.
    #[error("{error}")]
    Array {
        /// The engine's verdict.
        error: ArrayIoError,
        /// Member I/Os that failed during the request (oldest first).
        members: Vec<MemberFailure>,
    },
    /// The owner's metadata sink failed to make an event durable; the driver is poisoned.
    #[error("metadata sink failed on {event:?}: {source}")]
    Sink {
        /// The event that could not be applied.
        event: Event,
        /// The sink's error.
        source: SinkError,
    },
    /// An earlier sink failure or stall left the engine waiting: no further requests.
    #[error("driver poisoned by an earlier metadata or engine failure")]
    Poisoned,
    /// The caller's buffer does not fit the request (not a non-zero multiple of 512 bytes, too
    /// large, unknown buffer id, or busy).
    #[error("invalid buffer: {0}")]
    InvalidBuffer(&'static str),
    /// The driver's configuration is inconsistent with the engine (slot count, offsets).
    #[error("invalid driver configuration: {0}")]
    InvalidConfig(&'static str),
    /// The engine made no progress although a request is outstanding (a bug).
    #[error("engine stalled with requests outstanding")]
    Stalled,
    /// io_uring could not be set up here (old kernel, seccomp, `io_uring_disabled`): use the
    /// blocking driver instead.
    #[error("io_uring unavailable: {0}")]
    UringUnavailable(std::io::Error),
    /// An OS call of the driver itself failed (not a member I/O).
    #[error("driver I/O error: {0}")]
    Os(std::io::Error),
    /// A device error outside the engine (benchmark set-up, sink helpers).
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// The owner's side of the metadata contract: makes an engine [`Event`] durable.
///
/// The Array layer implements it (superblocks, write-intent bitmap, bad-block log); it is given
/// the member devices so it can write metadata through the same handles. `apply` must return only
/// once the event is durable (written and flushed); the driver then acknowledges it.
pub trait MetadataSink<D> {
    /// Makes `event` durable on `devices`.
    fn apply(&mut self, event: &Event, devices: &mut [Option<D>]) -> Result<(), SinkError>;
}

/// A sink that acknowledges every event without writing anything (tests, benchmarks).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopSink;

impl<D> MetadataSink<D> for NoopSink {
    fn apply(&mut self, _event: &Event, _devices: &mut [Option<D>]) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A sink that records every event it is given (tests), then acknowledges it.
#[derive(Clone, Debug, Default)]
pub struct RecordingSink {
    /// Events applied, in order.
    pub events: Vec<Event>,
}

impl<D> MetadataSink<D> for RecordingSink {
    fn apply(&mut self, event: &Event, _devices: &mut [Option<D>]) -> Result<(), SinkError> {
        self.events.push(event.clone());
        Ok(())
    }
}

/// Forwarding so a caller can keep its sink and lend it to a driver.
impl<D, S: MetadataSink<D> + ?Sized> MetadataSink<D> for &mut S {
    fn apply(&mut self, event: &Event, devices: &mut [Option<D>]) -> Result<(), SinkError> {
        (**self).apply(event, devices)
    }
}

/// How stale the engine's notion of time may get on the I/O path (1 ms): feeding the time costs
/// an engine pass, so drivers feed it only when a timer is due or the clock moved this much.
pub const CLOCK_GRANULARITY_NS: u64 = 1_000_000;

/// The drivers' clock: nanoseconds since the driver was built (the engine's epoch).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    fed: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
            fed: 0,
        }
    }
    /// Nanoseconds since the clock started (saturating at `u64::MAX`, ~584 years).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
    /// Gives `engine` the current time if one of its timers is due or the time it knows is
    /// [`CLOCK_GRANULARITY_NS`] old.
    pub fn feed(&mut self, engine: &mut super::Raid1) {
        let now = self.now_ns();
        if engine.poll_timeout().is_some_and(|t| t <= now)
            || now.saturating_sub(self.fed) >= CLOCK_GRANULARITY_NS
        {
            engine.handle_timeout(now);
            self.fed = now;
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Byte offset of member sector `sector` (+ `sectors`) on a device whose data area starts at
/// `data_offset` bytes; `None` on overflow.
pub(crate) fn member_span(data_offset: u64, sector: u64, sectors: u64) -> Option<(u64, usize)> {
    let off = sector
        .checked_mul(crate::SECTOR_SIZE)
        .and_then(|b| b.checked_add(data_offset))?;
    let len = sectors
        .checked_mul(crate::SECTOR_SIZE)
        .and_then(|l| usize::try_from(l).ok())?;
    off.checked_add(len as u64)?;
    Some((off, len))
}

/// Checks a caller buffer: a non-zero whole number of sectors. Returns the sector count.
pub(crate) fn buffer_sectors(len: usize) -> Result<u64, DriverError> {
    if len == 0 || len as u64 % crate::SECTOR_SIZE != 0 {
        return Err(DriverError::InvalidBuffer(
            "length must be a non-zero multiple of 512 bytes",
        ));
    }
    Ok(len as u64 / crate::SECTOR_SIZE)
}

/// Checks that the driver's per-member tables match the engine's slots.
pub(crate) fn check_slots<D>(
    slots: usize,
    devices: &[Option<D>],
    data_offset_bytes: &[u64],
) -> Result<(), DriverError>
where
    D: BlockDevice,
{
    if devices.len() != slots || data_offset_bytes.len() != slots {
        return Err(DriverError::InvalidConfig(
            "one device entry and one data offset per engine slot",
        ));
    }
    if data_offset_bytes
        .iter()
        .any(|o| o % crate::SECTOR_SIZE != 0)
    {
        return Err(DriverError::InvalidConfig(
            "data offsets must be multiples of 512 bytes",
        ));
    }
    Ok(())
}

/// errno for an I/O the driver could not map (missing device, bad buffer): ENXIO / EFAULT.
pub(crate) const ENXIO: i32 = 6;
pub(crate) const EFAULT: i32 = 14;
