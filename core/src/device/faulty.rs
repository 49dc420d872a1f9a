//! A device wrapper that injects I/O errors on chosen requests.
//!
//! [`FaultyDevice`] forwards every request to the device it wraps unless a [`FaultRule`] matches,
//! in which case the request fails with [`DeviceError::Io`] (errno 5, EIO, unless the rule says
//! otherwise) and never reaches the inner device: a failed write leaves the old data in place, a
//! failed read leaves the caller's buffer untouched.
//!
//! Rules are added and removed through a [`FaultControl`], a cloneable handle that stays with the
//! test while the device itself is moved into an array. With the `std` feature the handle is
//! `Send + Sync` (an `Arc<Mutex<..>>` inside) so a test can flip faults from another thread;
//! without it the handle is an `Rc<RefCell<..>>` for single-threaded `no_std` tests. The API is
//! the same either way.

use super::{BlockDevice, DeviceError, IoOp};
use alloc::vec::Vec;
use core::ops::Range;

/// The errno of injected faults unless a rule sets another: EIO.
pub const EIO: i32 = 5;

// ---------------------------------------------------------------------------------------------
// Shared state: Arc<Mutex> with std, Rc<RefCell> without.

#[cfg(feature = "std")]
#[derive(Debug)]
struct Shared<T>(std::sync::Arc<std::sync::Mutex<T>>);

#[cfg(feature = "std")]
impl<T> Shared<T> {
    fn new(v: T) -> Self {
        Shared(std::sync::Arc::new(std::sync::Mutex::new(v)))
    }
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // A panic in another holder (a failed assertion in a test thread) must not hide the
        // state from the rest of the test: ignore poisoning.
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

#[cfg(not(feature = "std"))]
#[derive(Debug)]
struct Shared<T>(alloc::rc::Rc<core::cell::RefCell<T>>);

#[cfg(not(feature = "std"))]
impl<T> Shared<T> {
    fn new(v: T) -> Self {
        Shared(alloc::rc::Rc::new(core::cell::RefCell::new(v)))
    }
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // Never re-entered: no callback runs while the state is borrowed.
        f(&mut self.0.borrow_mut())
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        #[cfg(feature = "std")]
        return Shared(std::sync::Arc::clone(&self.0));
        #[cfg(not(feature = "std"))]
        return Shared(alloc::rc::Rc::clone(&self.0));
    }
}

// ---------------------------------------------------------------------------------------------
// Rules.

/// A set of operation kinds a rule applies to. Combine with `|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// Reads.
    pub const READ: Ops = Ops(1);
    /// Writes.
    pub const WRITE: Ops = Ops(2);
    /// Flushes.
    pub const FLUSH: Ops = Ops(4);
    /// Reads and writes.
    pub const RW: Ops = Ops(3);
    /// Every kind.
    pub const ALL: Ops = Ops(7);

    /// Whether `op` is in the set.
    pub fn contains(self, op: IoOp) -> bool {
        let bit = match op {
            IoOp::Read => 1,
            IoOp::Write => 2,
            IoOp::Flush => 4,
            IoOp::Open => 0,
        };
        self.0 & bit != 0
    }
}

impl core::ops::BitOr for Ops {
    type Output = Ops;
    fn bitor(self, rhs: Ops) -> Ops {
        Ops(self.0 | rhs.0)
    }
}

/// When a matching request actually fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// Every matching request.
    Always,
    /// Only the n-th matching request (1-based) since the rule was added.
    Nth(u64),
    /// Every matching request after the first k since the rule was added.
    After(u64),
    /// Every matching request once the device has seen k requests in total (any kind).
    FromDeviceOp(u64),
}

/// Which requests fail: built fluently, then handed to [`FaultControl::add`].
///
/// A request *matches* a rule when its kind is in the rule's [`Ops`] and, if the rule has a
/// byte range, the request overlaps it (flushes carry no range, so ranged rules never match
/// them). Among matching requests the trigger picks the ones that fail; by default every one
/// does, for as long as the rule is installed (*sticky*). [`once`](Self::once) and
/// [`times`](Self::times) make a rule expire after firing.
///
/// ```
/// use mdraid::device::FaultRule;
/// // The third write that touches the first 4 KiB fails, once.
/// let _r = FaultRule::writes().overlapping(0..4096).nth(3);
/// // Every read of sector 8 fails, until removed.
/// let _r = FaultRule::reads().overlapping(8 * 512..9 * 512);
/// // Writes fail from the 11th on, with ENOSPC.
/// let _r = FaultRule::writes().after(10).errno(28);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    ops: Ops,
    range: Option<(u64, u64)>,
    trigger: Trigger,
    limit: Option<u64>,
    errno: i32,
}

impl FaultRule {
    /// A rule for the kinds in `ops`, matching every offset, firing on every match, EIO.
    pub fn on(ops: Ops) -> Self {
        FaultRule {
            ops,
            range: None,
            trigger: Trigger::Always,
            limit: None,
            errno: EIO,
        }
    }
    /// A rule for reads.
    pub fn reads() -> Self {
        Self::on(Ops::READ)
    }
    /// A rule for writes.
    pub fn writes() -> Self {
        Self::on(Ops::WRITE)
    }
    /// A rule for flushes.
    pub fn flushes() -> Self {
        Self::on(Ops::FLUSH)
    }
    /// A rule for every request: installed as is, it makes a dead disk.
    pub fn all_ops() -> Self {
        Self::on(Ops::ALL)
    }
    /// Matches only requests overlapping the byte range `[start, end)`.
    pub fn overlapping(mut self, range: Range<u64>) -> Self {
        self.range = Some((range.start, range.end));
        self
    }
    /// Fails only the `n`-th matching request (1-based) counted from when the rule is added;
    /// `nth(0)` never fires.
    pub fn nth(mut self, n: u64) -> Self {
        self.trigger = Trigger::Nth(n);
        self
    }
    /// Lets the first `k` matching requests through, then fails every later one.
    pub fn after(mut self, k: u64) -> Self {
        self.trigger = Trigger::After(k);
        self
    }
    /// Fails matching requests once the device has seen `k` requests of any kind in total
    /// (counted since the device was made; the request being judged is not counted).
    pub fn from_device_op(mut self, k: u64) -> Self {
        self.trigger = Trigger::FromDeviceOp(k);
        self
    }
    /// The rule expires after it fires once (one-shot).
    pub fn once(self) -> Self {
        self.times(1)
    }
    /// The rule expires after it fires `n` times.
    pub fn times(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
    /// The rule never expires (the default).
    pub fn sticky(mut self) -> Self {
        self.limit = None;
        self
    }
    /// The errno reported (default [`EIO`]).
    pub fn errno(mut self, errno: i32) -> Self {
        self.errno = errno;
        self
    }

    fn matches(&self, op: IoOp, offset: u64, len: u64) -> bool {
        if !self.ops.contains(op) {
            return false;
        }
        match self.range {
            None => true,
            Some((a, b)) => {
                if op == IoOp::Flush || len == 0 {
                    return false;
                }
                let end = offset.saturating_add(len);
                offset < b && a < end
            }
        }
    }
}

/// Names an installed rule, for [`FaultControl::remove`] and [`FaultControl::hits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(u64);

/// Counters of requests seen and faults injected (failed requests are counted as seen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Reads seen.
    pub reads: u64,
    /// Writes seen.
    pub writes: u64,
    /// Flushes seen.
    pub flushes: u64,
    /// Reads failed by a rule.
    pub read_faults: u64,
    /// Writes failed by a rule.
    pub write_faults: u64,
    /// Flushes failed by a rule.
    pub flush_faults: u64,
}

impl FaultStats {
    /// Requests seen, all kinds.
    pub fn ops(&self) -> u64 {
        self.reads + self.writes + self.flushes
    }
    /// Faults injected, all kinds.
    pub fn faults(&self) -> u64 {
        self.read_faults + self.write_faults + self.flush_faults
    }
}

#[derive(Debug)]
struct Installed {
    id: RuleId,
    rule: FaultRule,
    /// Matching requests seen since the rule was added.
    seen: u64,
    /// Times it fired.
    fired: u64,
}

impl Installed {
    fn expired(&self) -> bool {
        self.rule.limit.is_some_and(|l| self.fired >= l)
    }
}

#[derive(Debug, Default)]
struct FaultState {
    rules: Vec<Installed>,
    next_id: u64,
    stats: FaultStats,
    /// Requests seen since the device was made ([`FaultControl::reset_stats`] keeps it).
    total_ops: u64,
}

impl FaultState {
    /// Counts the request and decides whether it fails; returns the errno if so.
    fn judge(&mut self, op: IoOp, offset: u64, len: u64) -> Option<i32> {
        let before = self.total_ops;
        self.total_ops += 1;
        match op {
            IoOp::Read => self.stats.reads += 1,
            IoOp::Write => self.stats.writes += 1,
            IoOp::Flush => self.stats.flushes += 1,
            IoOp::Open => {}
        }
        // Every matching rule counts the request, even if an earlier one already fails it, so
        // that `nth` and `after` count what the device saw rather than what got through.
        let mut errno = None;
        for r in self.rules.iter_mut() {
            if r.expired() || !r.rule.matches(op, offset, len) {
                continue;
            }
            r.seen += 1;
            let fire = match r.rule.trigger {
                Trigger::Always => true,
                Trigger::Nth(n) => r.seen == n,
                Trigger::After(k) => r.seen > k,
                Trigger::FromDeviceOp(k) => before >= k,
            };
            if fire && errno.is_none() {
                r.fired += 1;
                errno = Some(r.rule.errno);
            }
        }
        if errno.is_some() {
            match op {
                IoOp::Read => self.stats.read_faults += 1,
                IoOp::Write => self.stats.write_faults += 1,
                IoOp::Flush => self.stats.flush_faults += 1,
                IoOp::Open => {}
            }
        }
        errno
    }
}

/// A cloneable handle on a [`FaultyDevice`]'s rules and counters.
///
/// Changes take effect on the next request, wherever the device is. `Send + Sync` with the `std`
/// feature.
#[derive(Clone, Debug)]
pub struct FaultControl {
    state: Shared<FaultState>,
}

impl FaultControl {
    /// Installs `rule`; it sees requests from the next one on.
    pub fn add(&self, rule: FaultRule) -> RuleId {
        self.state.with(|s| {
            let id = RuleId(s.next_id);
            s.next_id += 1;
            s.rules.push(Installed {
                id,
                rule,
                seen: 0,
                fired: 0,
            });
            id
        })
    }
    /// Removes a rule; false if it was not installed.
    pub fn remove(&self, id: RuleId) -> bool {
        self.state.with(|s| {
            let n = s.rules.len();
            s.rules.retain(|r| r.id != id);
            s.rules.len() != n
        })
    }
    /// Removes every rule (a dead disk comes back to life). Counters are kept.
    pub fn clear(&self) {
        self.state.with(|s| s.rules.clear())
    }
    /// Makes every later request fail with EIO, until [`clear`](Self::clear)ed or the returned
    /// rule removed.
    pub fn kill(&self) -> RuleId {
        self.add(FaultRule::all_ops())
    }
    /// How many times a rule fired (0 if unknown).
    pub fn hits(&self, id: RuleId) -> u64 {
        self.state
            .with(|s| s.rules.iter().find(|r| r.id == id).map_or(0, |r| r.fired))
    }
    /// Whether a rule is installed and has not expired.
    pub fn is_active(&self, id: RuleId) -> bool {
        self.state
            .with(|s| s.rules.iter().any(|r| r.id == id && !r.expired()))
    }
    /// Installed rules that have not expired.
    pub fn active_rules(&self) -> usize {
        self.state
            .with(|s| s.rules.iter().filter(|r| !r.expired()).count())
    }
    /// A snapshot of the counters.
    pub fn stats(&self) -> FaultStats {
        self.state.with(|s| s.stats)
    }
    /// Zeroes the counters (rules keep their own counts, and
    /// [`FaultRule::from_device_op`] still counts from the device's creation).
    pub fn reset_stats(&self) {
        self.state.with(|s| s.stats = FaultStats::default())
    }
}

/// A device that fails the requests its [`FaultRule`]s pick and passes the rest to `D`.
///
/// ```
/// use mdraid::device::{BlockDevice, DeviceError, FaultRule, FaultyDevice, MemDevice};
///
/// let (mut dev, ctl) = FaultyDevice::new(MemDevice::new(8192));
/// let bad = ctl.add(FaultRule::reads().overlapping(4096..4608));
/// let mut buf = [0u8; 512];
/// assert!(dev.read_at(0, &mut buf).is_ok());
/// assert!(matches!(dev.read_at(4096, &mut buf), Err(DeviceError::Io { errno: 5, .. })));
/// assert_eq!(ctl.hits(bad), 1);
/// ctl.clear();
/// assert!(dev.read_at(4096, &mut buf).is_ok());
/// assert_eq!(ctl.stats().reads, 3);
/// ```
#[derive(Debug)]
pub struct FaultyDevice<D> {
    inner: D,
    state: Shared<FaultState>,
}

impl<D: BlockDevice> FaultyDevice<D> {
    /// Wraps `inner` with no rules; returns the device and a handle on its rules.
    pub fn new(inner: D) -> (Self, FaultControl) {
        let state = Shared::new(FaultState::default());
        let ctl = FaultControl {
            state: state.clone(),
        };
        (FaultyDevice { inner, state }, ctl)
    }
    /// Another handle on the rules.
    pub fn control(&self) -> FaultControl {
        FaultControl {
            state: self.state.clone(),
        }
    }
    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The wrapped device, mutable (requests made through it bypass the rules and counters).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Unwraps the device.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn judge(&self, op: IoOp, offset: u64, len: usize) -> Result<(), DeviceError> {
        match self.state.with(|s| s.judge(op, offset, len as u64)) {
            Some(errno) => Err(DeviceError::Io { op, offset, errno }),
            None => Ok(()),
        }
    }
}

impl<D: BlockDevice> BlockDevice for FaultyDevice<D> {
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
        self.judge(IoOp::Read, offset, buf.len())?;
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.judge(IoOp::Write, offset, buf.len())?;
        self.inner.write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.judge(IoOp::Flush, 0, 0)?;
        self.inner.flush()
    }
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.judge(IoOp::Write, offset, buf.len())?;
        self.inner.write_at_fua(offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    fn is_eio(r: Result<(), DeviceError>) -> bool {
        matches!(r, Err(DeviceError::Io { errno: EIO, .. }))
    }

    #[test]
    fn range_rule_fires_only_on_overlap() {
        let (mut d, ctl) = FaultyDevice::new(MemDevice::new(16384));
        ctl.add(FaultRule::reads().overlapping(4096..8192));
        let mut b = [0u8; 512];
        assert!(d.read_at(3584, &mut b).is_ok()); // ends exactly at 4096
        assert!(is_eio(d.read_at(3586, &mut b[..511])));
        assert!(is_eio(d.read_at(4096, &mut b)));
        assert!(is_eio(d.read_at(7680, &mut b)));
        assert!(d.read_at(8192, &mut b).is_ok());
        assert!(d.write_at(4096, &b).is_ok()); // writes untouched
        assert!(d.flush().is_ok());
        let s = ctl.stats();
        assert_eq!((s.reads, s.read_faults, s.writes, s.flushes), (5, 3, 1, 1));
    }

    #[test]
    fn nth_write_fails_once_and_keeps_old_data() {
        let (mut d, ctl) = FaultyDevice::new(MemDevice::new(4096));
        let id = ctl.add(FaultRule::writes().nth(3));
        for i in 1..=5u8 {
            let r = d.write_at(0, &[i; 512]);
            assert_eq!(is_eio(r), i == 3, "write {i}");
            if i == 3 {
                assert_eq!(d.inner().as_slice()[0], 2, "failed write must not land");
            }
        }
        assert_eq!(ctl.hits(id), 1);
        assert_eq!(ctl.stats().write_faults, 1);
    }

    #[test]
    fn after_and_from_device_op() {
        let (mut d, ctl) = FaultyDevice::new(MemDevice::new(4096));
        ctl.add(FaultRule::writes().after(2));
        let mut b = [0u8; 512];
        assert!(d.write_at(0, &b).is_ok());
        assert!(d.read_at(0, &mut b).is_ok()); // reads do not count for a write rule
        assert!(d.write_at(0, &b).is_ok());
        assert!(is_eio(d.write_at(0, &b)));
        assert!(is_eio(d.write_at(0, &b)));
        ctl.clear();
        // Device has now seen 5 requests; fail everything from the 7th (index 6) on.
        ctl.add(FaultRule::all_ops().from_device_op(6));
        assert!(d.flush().is_ok()); // index 5
        assert!(is_eio(d.read_at(0, &mut b))); // index 6
        assert!(is_eio(d.flush()));
    }

    #[test]
    fn one_shot_times_and_sticky() {
        let (mut d, ctl) = FaultyDevice::new(MemDevice::new(4096));
        let once = ctl.add(FaultRule::flushes().once());
        assert!(is_eio(d.flush()));
        assert!(d.flush().is_ok());
        assert!(!ctl.is_active(once));
        let twice = ctl.add(FaultRule::flushes().times(2).errno(28));
        assert!(matches!(d.flush(), Err(DeviceError::Io { errno: 28, .. })));
        assert!(d.flush().is_err());
        assert!(d.flush().is_ok());
        assert_eq!(ctl.hits(twice), 2);
        assert_eq!(ctl.active_rules(), 0);
        let dead = ctl.kill();
        for _ in 0..10 {
            assert!(is_eio(d.flush()));
        }
        assert!(ctl.remove(dead));
        assert!(!ctl.remove(dead));
        assert!(d.flush().is_ok());
    }

    #[test]
    fn ranged_rules_ignore_flush_and_empty_requests() {
        let (mut d, ctl) = FaultyDevice::new(MemDevice::new(4096));
        ctl.add(FaultRule::on(Ops::ALL).overlapping(0..4096));
        assert!(d.flush().is_ok());
        assert!(d.write_at(512, &[]).is_ok());
        assert!(is_eio(d.write_at(512, &[1])));
        // Out-of-range requests past a huge range do not overflow.
        ctl.clear();
        ctl.add(FaultRule::reads().overlapping(u64::MAX - 1..u64::MAX));
        let mut b = [0u8; 8];
        assert!(is_eio(d.read_at(u64::MAX - 4, &mut b)));
    }
}
