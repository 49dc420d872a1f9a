//! A service-time model for member devices, and a device wrapper that runs it on a virtual clock.
//!
//! Time is in nanoseconds as plain `u64` and only ever enters as an argument: [`ServiceModel`]
//! is a pure queueing model a simulator drives with its own `now`; [`LatencyDevice`] wraps a
//! [`BlockDevice`] and advances a virtual clock of its own by each request's service time (and,
//! with the `std` feature, can also sleep for real).

use super::{BlockDevice, DeviceError};

const GIB: u128 = 1 << 30;
const MIB: u128 = 1 << 20;

/// Seek cost of a rotational disk: `base_ns + per_gib_ns * distance_in_GiB`, paid whenever a
/// request does not start where the previous one ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeekProfile {
    /// Cost of any head movement (settle time plus average rotational delay).
    pub base_ns: u64,
    /// Extra cost per GiB of distance from the last head position.
    pub per_gib_ns: u64,
}

/// A single-server FIFO queue with a per-request service time.
///
/// Service time of a request = `per_io_ns` + transfer (`len * ns_per_mib / MiB`) + seek (only
/// with a [`SeekProfile`], and only if the request does not start at the head position, which
/// is where the previous request ended). A request submitted at `now` starts at
/// `max(now, busy_until)` — one request at a time — and completes after its service time.
///
/// ```
/// use mdraid::device::ServiceModel;
/// let mut m = ServiceModel::rotational(100_000, 4_000_000, 1_000_000);
/// let a = m.submit(0, 0, 4096); // the head starts at 0: no seek
/// assert_eq!(a, 100_000);
/// let b = m.submit(0, 4096, 4096); // queued behind `a`, sequential: no seek
/// assert_eq!(b, 200_000);
/// let c = m.submit(1_000_000, (1 << 30) + 8192, 4096); // idle disk, head 1 GiB away
/// assert_eq!(c, 1_000_000 + 100_000 + 4_000_000 + 1_000_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceModel {
    per_io_ns: u64,
    ns_per_mib: u64,
    flush_ns: u64,
    seek: Option<SeekProfile>,
    busy_until: u64,
    head: u64,
    ios: u64,
    busy_ns: u64,
}

impl ServiceModel {
    /// Every request costs `per_io_ns`, wherever it is (an SSD-like model).
    pub fn fixed(per_io_ns: u64) -> Self {
        ServiceModel {
            per_io_ns,
            ns_per_mib: 0,
            flush_ns: 0,
            seek: None,
            busy_until: 0,
            head: 0,
            ios: 0,
            busy_ns: 0,
        }
    }
    /// `per_io_ns` per request plus a seek of `seek_base_ns + seek_per_gib_ns * GiB moved`
    /// for non-sequential requests (a disk-like model).
    pub fn rotational(per_io_ns: u64, seek_base_ns: u64, seek_per_gib_ns: u64) -> Self {
        let mut m = Self::fixed(per_io_ns);
        m.seek = Some(SeekProfile {
            base_ns: seek_base_ns,
            per_gib_ns: seek_per_gib_ns,
        });
        m
    }
    /// Adds a transfer cost of `ns_per_mib` per MiB moved.
    pub fn with_transfer(mut self, ns_per_mib: u64) -> Self {
        self.ns_per_mib = ns_per_mib;
        self
    }
    /// Sets the service time of a cache flush (default 0).
    pub fn with_flush(mut self, flush_ns: u64) -> Self {
        self.flush_ns = flush_ns;
        self
    }

    /// The service time a request would take if it started now (queueing excluded).
    pub fn service_time(&self, offset: u64, len: u64) -> u64 {
        let transfer = u128::from(len) * u128::from(self.ns_per_mib) / MIB;
        let seek = match self.seek {
            Some(s) if offset != self.head => {
                let dist = u128::from(offset.abs_diff(self.head));
                u128::from(s.base_ns) + u128::from(s.per_gib_ns) * dist / GIB
            }
            _ => 0,
        };
        let t = u128::from(self.per_io_ns) + transfer + seek;
        u64::try_from(t).unwrap_or(u64::MAX)
    }
    /// Queues a request of `len` bytes at `offset` arriving at `now`; returns when it completes.
    #[must_use]
    pub fn submit(&mut self, now: u64, offset: u64, len: u64) -> u64 {
        let cost = self.service_time(offset, len);
        self.head = offset.saturating_add(len);
        self.run(now, cost)
    }
    /// Queues a cache flush arriving at `now`; returns when it completes. The head stays put.
    #[must_use]
    pub fn submit_flush(&mut self, now: u64) -> u64 {
        self.run(now, self.flush_ns)
    }
    fn run(&mut self, now: u64, cost: u64) -> u64 {
        let start = now.max(self.busy_until);
        self.busy_until = start.saturating_add(cost);
        self.ios += 1;
        self.busy_ns = self.busy_ns.saturating_add(cost);
        self.busy_until
    }

    /// When the last queued request completes.
    pub fn busy_until(&self) -> u64 {
        self.busy_until
    }
    /// Where the last request ended.
    pub fn head(&self) -> u64 {
        self.head
    }
    /// Requests (and flushes) submitted.
    pub fn ios(&self) -> u64 {
        self.ios
    }
    /// Total service time given, excluding idle and queueing.
    pub fn busy_ns(&self) -> u64 {
        self.busy_ns
    }
    /// Forgets the queue, head position and counters (the configuration stays).
    pub fn reset(&mut self) {
        self.busy_until = 0;
        self.head = 0;
        self.ios = 0;
        self.busy_ns = 0;
    }
}

/// A device that charges each request its [`ServiceModel`] service time on a virtual clock.
///
/// Calls are synchronous, so each request arrives when the previous one finished and the clock
/// jumps to its completion; [`advance`](Self::advance) models think time between requests.
/// Requests the inner device rejects for range or alignment cost nothing; everything else,
/// I/O errors included, is charged.
///
/// ```
/// use mdraid::device::{BlockDevice, LatencyDevice, MemDevice, ServiceModel};
/// let mut d = LatencyDevice::new(MemDevice::new(1 << 20), ServiceModel::fixed(50_000));
/// d.write_at(0, &[0; 4096]).unwrap();
/// d.flush().unwrap(); // flushes cost 0 by default
/// assert_eq!(d.now(), 50_000);
/// ```
#[derive(Debug)]
pub struct LatencyDevice<D> {
    inner: D,
    model: ServiceModel,
    now: u64,
    #[cfg(feature = "std")]
    real_sleep: bool,
}

impl<D: BlockDevice> LatencyDevice<D> {
    /// Wraps `inner`; the clock starts at 0.
    pub fn new(inner: D, model: ServiceModel) -> Self {
        LatencyDevice {
            inner,
            model,
            now: 0,
            #[cfg(feature = "std")]
            real_sleep: false,
        }
    }
    /// Also sleeps the calling thread for each request's service time (for end-to-end
    /// benchmarks).
    #[cfg(feature = "std")]
    pub fn with_real_sleep(mut self, on: bool) -> Self {
        self.real_sleep = on;
        self
    }
    /// The virtual clock, in nanoseconds.
    pub fn now(&self) -> u64 {
        self.now
    }
    /// Moves the virtual clock forward by `ns` of idle time.
    pub fn advance(&mut self, ns: u64) {
        self.now = self.now.saturating_add(ns);
    }
    /// The model, with its head position and counters.
    pub fn model(&self) -> &ServiceModel {
        &self.model
    }
    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The wrapped device, mutable (requests made through it cost nothing).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Unwraps the device.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn charge(
        &mut self,
        r: &Result<(), DeviceError>,
        done: impl FnOnce(&mut ServiceModel, u64) -> u64,
    ) {
        if matches!(
            r,
            Err(DeviceError::OutOfRange { .. } | DeviceError::Misaligned { .. })
        ) {
            return;
        }
        let end = done(&mut self.model, self.now);
        let waited = end.saturating_sub(self.now);
        self.now = end;
        #[cfg(feature = "std")]
        if self.real_sleep && waited > 0 {
            std::thread::sleep(core::time::Duration::from_nanos(waited));
        }
        let _ = waited;
    }
}

impl<D: BlockDevice> BlockDevice for LatencyDevice<D> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn logical_block_size(&self) -> u32 {
        self.inner.logical_block_size()
    }
    fn device_number(&self) -> Option<(u32, u32)> {
        self.inner.device_number()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let r = self.inner.read_at(offset, buf);
        let len = buf.len() as u64;
        self.charge(&r, |m, now| m.submit(now, offset, len));
        r
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let r = self.inner.write_at(offset, buf);
        let len = buf.len() as u64;
        self.charge(&r, |m, now| m.submit(now, offset, len));
        r
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        let r = self.inner.flush();
        self.charge(&r, |m, now| m.submit_flush(now));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    #[test]
    fn seek_grows_with_distance_and_sequential_is_free() {
        let m = ServiceModel::rotational(10, 1000, 2000);
        assert_eq!(m.service_time(0, 512), 10);
        assert_eq!(m.service_time(1 << 30, 512), 10 + 1000 + 2000);
        assert_eq!(m.service_time(4 << 30, 512), 10 + 1000 + 8000);
        let mut m = m;
        let _ = m.submit(0, 8 << 30, 512);
        // Backwards seeks cost the same as forward ones; the head sits at 8 GiB + 512.
        assert_eq!(m.service_time((6 << 30) + 512, 512), 10 + 1000 + 4000);
        assert_eq!(m.service_time((10 << 30) + 512, 512), 10 + 1000 + 4000);
        assert_eq!(m.service_time((8 << 30) + 512, 512), 10);
    }

    #[test]
    fn queue_serializes_and_idles() {
        let m = ServiceModel::fixed(100).with_transfer(1_000_000);
        assert_eq!(m.service_time(0, 1 << 20), 1_000_100);
        let mut m = ServiceModel::fixed(100);
        assert_eq!(m.submit(0, 0, 512), 100);
        assert_eq!(m.submit(0, 0, 512), 200);
        assert_eq!(m.submit(50, 0, 512), 300);
        assert_eq!(m.submit(1000, 0, 512), 1100);
        assert_eq!((m.ios(), m.busy_ns(), m.busy_until()), (4, 400, 1100));
        m.reset();
        assert_eq!(m.submit(0, 0, 512), 100);
    }

    #[test]
    fn device_charges_valid_requests_only() {
        let mut d = LatencyDevice::new(MemDevice::new(4096), ServiceModel::fixed(7).with_flush(3));
        let mut b = [0u8; 512];
        d.read_at(0, &mut b).unwrap();
        assert!(d.read_at(4096, &mut b).is_err());
        d.flush().unwrap();
        assert_eq!(d.now(), 10);
        d.advance(100);
        d.write_at(0, &b).unwrap();
        assert_eq!(d.now(), 117);
        assert_eq!(d.model().ios(), 3);
    }
}
