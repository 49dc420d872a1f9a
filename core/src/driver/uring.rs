//! The io_uring driver of the array machine (Linux): many array requests in flight over files
//! and block devices, every machine I/O — data, superblock, bitmap page, bad-block log, flush —
//! a ring entry.
//!
//! The loop (`UringDriver::turn`) is the machine's call order and nothing else: feed the clock,
//! drain `poll_io` into submission entries, enter the ring, reap completions into
//! `handle_io_completion`, drain `poll_completion` and `poll_event`; when nothing is in the ring
//! but a timer is armed, sleep until it. How an [`Io`] becomes entries:
//!
//! - read / write: `Read`/`Write` (the `Fixed` forms when the buffers are registered) at the
//!   I/O's absolute byte offset; FUA is `RWF_DSYNC` on the write, or — once the kernel refused
//!   that flag — an `fdatasync` entry linked after it;
//! - preflush: an `fdatasync` entry linked (`IOSQE_IO_LINK`) before the write, so the write
//!   starts only once the member's cache is flushed;
//! - flush: `fdatasync`; discard: nothing (files and block devices have no portable discard;
//!   md ignores discard errors).
//!
//! Memory: the caller's buffers are a pool the driver owns (aligned for O_DIRECT, sized at
//! build; a buffer's index is its [`BufRef`] token); machine-owned buffers (engine scratch,
//! superblock, bitmap and bad-block-log images) go through aligned bounce buffers sized at
//! build. Nothing is allocated per I/O.
//!
//! All of the crate's io_uring `unsafe` lives here. The invariant every block relies on: memory
//! and descriptors named by a submission entry stay valid until its completion is reaped —
//! buffers are never handed to the caller while an entry uses them and are freed only after
//! [`Drop`] has waited for every entry; descriptors belong to the driver's [`FileDevice`]s,
//! which live as long as the driver.
#![allow(unsafe_code)]

use super::now;
use crate::array::machine::{Io, IoBuffer, IoKind, Machine, MachineError, Notice};
use crate::device::FileDevice;
use crate::raid1::{
    ArrayIoError, ArrayRequest, BufRef, MemberError, ReqId, SubmitError, SyncAction,
};
use core::ptr::NonNull;
use core::time::Duration;
use io_uring::{opcode, squeue, types, IoUring};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::{HashMap, VecDeque};
use std::os::unix::io::{AsRawFd, RawFd};
use std::vec::Vec;

const EIO: i32 = 5;
const EFAULT: i32 = 14;
const ENOBUFS: i32 = 105;
const ECANCELED: i32 = 125;
const EOPNOTSUPP: i32 = 95;

/// How stale the machine's notion of time may get on the I/O path (1 ms): feeding the time
/// costs an engine pass, so the driver feeds it when a timer is due or the clock moved this much.
pub const CLOCK_GRANULARITY_NS: u64 = 1_000_000;

/// What the driver can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// io_uring could not be set up here (old kernel, seccomp, `io_uring_disabled`): use the
    /// blocking [`crate::array::Array`] instead.
    #[error("io_uring unavailable: {0}")]
    UringUnavailable(std::io::Error),
    /// The machine refused the request (back-pressure, range, stopping); nothing was queued.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The machine refused an input or a command.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// The buffer does not fit the request, is unknown or is held by a request in flight.
    #[error("invalid buffer: {0}")]
    InvalidBuffer(&'static str),
    /// The configuration does not fit (queue depth, buffer sizes, device count).
    #[error("invalid driver configuration: {0}")]
    InvalidConfig(&'static str),
    /// Work is outstanding but nothing is in the ring and no timer is armed (a bug).
    #[error("machine stalled with work outstanding")]
    Stalled,
    /// An OS call of the driver itself failed (not a member I/O).
    #[error("driver I/O error: {0}")]
    Os(std::io::Error),
}

/// How to build a [`UringDriver`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UringConfig {
    /// Machine I/Os in the ring at once, 1..=1024 (each takes up to three entries).
    pub queue_depth: u32,
    /// Caller buffers in the pool (each array read or write holds one until it completes).
    pub buffers: usize,
    /// Bytes in each pool buffer (a multiple of 4096): the longest request it serves.
    pub buffer_bytes: usize,
    /// Register pool and bounce buffers with the kernel (fixed-buffer reads and writes); falls
    /// back to plain ones if the kernel refuses.
    pub register_buffers: bool,
}

impl UringConfig {
    /// `queue_depth` I/Os in the ring, `buffers` pool buffers of `buffer_bytes`, registered.
    pub fn new(queue_depth: u32, buffers: usize, buffer_bytes: usize) -> Self {
        UringConfig {
            queue_depth,
            buffers,
            buffer_bytes,
            register_buffers: true,
        }
    }
}

/// A pool buffer of a [`UringDriver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub usize);

/// A finished array request.
pub type Completion = (ReqId, Result<(), ArrayIoError>);

/// Alignment of every driver buffer: enough for O_DIRECT on 4Kn devices.
const ALIGN: usize = 4096;

/// A zeroed heap buffer aligned to [`ALIGN`], owned.
#[derive(Debug)]
struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

// SAFETY: an `AlignedBuf` uniquely owns its allocation (like a `Box<[u8]>`); nothing else holds
// the pointer except ring entries, which the owning driver tracks and drains before dropping it.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn new(len: usize) -> Option<Self> {
        let layout = Layout::from_size_align(len.max(ALIGN), ALIGN).ok()?;
        // SAFETY: the layout has non-zero size (at least ALIGN) and a power-of-two alignment.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw)?;
        Some(AlignedBuf { ptr, len, layout })
    }
    fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` owns `layout.size() >= len` initialised bytes; callers reach this only
        // for buffers no ring entry writes into (checked by the driver's bookkeeping).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, borrowed mutably through `self`; only for buffers no ring
        // entry uses.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
    fn iovec(&self) -> libc::iovec {
        libc::iovec {
            iov_base: self.ptr.as_ptr().cast(),
            iov_len: self.len,
        }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with exactly this layout and is freed once.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Hashing for request ids (already unique integers): one multiply instead of SipHash.
#[derive(Clone, Copy, Debug, Default)]
struct IdHash;

#[derive(Debug, Default)]
struct IdHasher(u64);

impl core::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

impl core::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Which entry of an I/O a completion belongs to (the low two bits of `user_data`).
const PART_MAIN: u64 = 0;
const PART_PREFLUSH: u64 = 1;
const PART_POSTFLUSH: u64 = 2;

/// An I/O in the ring.
#[derive(Debug)]
struct Slot {
    io: Io,
    /// Entries not yet completed.
    parts: u8,
    /// Bytes the main entry must report (0 for a flush).
    expect: u32,
    /// The bounce buffer it uses (machine-owned memory), released when reaped.
    bounce: Option<usize>,
    /// The write carried `RWF_DSYNC`.
    dsync: bool,
    /// First error seen (a link cancelled by an earlier failure reports ECANCELED: kept last).
    err: Option<i32>,
}

/// The array machine driven over files and block devices through io_uring.
///
/// Build it from an assembled array: `Array::into_machine(driver::now())` gives the machine
/// and its devices; [`UringDriver::new`] takes both. Submit requests naming pool buffers
/// ([`Self::buffer_mut`] to fill one, [`Self::buffer`] to read one back once its request is
/// reaped), reap completions, and end with [`Self::stop`], which leaves the superblocks clean.
pub struct UringDriver {
    /// First: dropped (drained) before the devices close their descriptors.
    r: Ring,
    m: Machine,
    devs: Vec<FileDevice>,
    fds: Vec<RawFd>,
    /// The request holding each pool buffer.
    held: Vec<Option<ReqId>>,
    /// Ring entries using each pool buffer.
    pool_io: Vec<u32>,
    req_buf: HashMap<u64, usize, IdHash>,
    bounce_free: Vec<usize>,
    registered: bool,
    queue_depth: usize,
    free_slots: Vec<usize>,
    waiting: VecDeque<Io>,
    done: VecDeque<Completion>,
    notices: VecDeque<Notice>,
    cqes: Vec<(u64, i32)>,
    fed_ns: u64,
    /// The kernel takes `RWF_DSYNC` on ring writes (else FUA is a linked fdatasync).
    dsync_ok: bool,
}

impl core::fmt::Debug for UringDriver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UringDriver")
            .field("devices", &self.devs)
            .field("queue_depth", &self.queue_depth)
            .field("buffers", &self.r.pool.len())
            .field("registered", &self.registered)
            .field("in_ring", &self.r.in_ring)
            .field("waiting", &self.waiting.len())
            .field("dsync_ok", &self.dsync_ok)
            .finish_non_exhaustive()
    }
}

/// Whether this process may use io_uring (a one-entry ring is set up and torn down).
pub fn probe() -> Result<(), DriverError> {
    IoUring::new(1)
        .map(drop)
        .map_err(DriverError::UringUnavailable)
}

impl UringDriver {
    /// A driver over `machine` with its devices (indexed as the machine's members).
    pub fn new(
        machine: Machine,
        devs: Vec<FileDevice>,
        config: UringConfig,
    ) -> Result<Self, DriverError> {
        if devs.len() != machine.members().len() {
            return Err(DriverError::InvalidConfig("one device per machine member"));
        }
        if config.queue_depth == 0 || config.queue_depth > 1024 {
            return Err(DriverError::InvalidConfig("queue depth must be 1..=1024"));
        }
        if config.buffer_bytes == 0
            || config.buffer_bytes % ALIGN != 0
            || u32::try_from(config.buffer_bytes).is_err()
        {
            return Err(DriverError::InvalidConfig(
                "buffer size must be a non-zero multiple of 4096 below 4 GiB",
            ));
        }
        let qd = config.queue_depth as usize;
        let ring = IoUring::new((3 * config.queue_depth).next_power_of_two())
            .map_err(DriverError::UringUnavailable)?;
        let no_mem = || DriverError::Os(std::io::Error::from(std::io::ErrorKind::OutOfMemory));
        let mut pool = Vec::with_capacity(config.buffers);
        for _ in 0..config.buffers {
            pool.push(AlignedBuf::new(config.buffer_bytes).ok_or_else(no_mem)?);
        }
        // Bounce buffers for machine-owned memory: one per engine scratch buffer plus two per
        // member for a metadata round (superblock and bitmap), each as large as the largest.
        let mut scratch = 0;
        let mut largest = 4096;
        while let Some(s) = machine.engine().scratch(scratch) {
            largest = largest.max(s.len());
            scratch += 1;
        }
        if let Some(bm) = machine.bitmap() {
            largest = largest.max(bm.bitmap.header.byte_len() as usize + 4096);
        }
        let n_bounce = scratch + 2 * devs.len() + 2;
        let mut bounce = Vec::with_capacity(n_bounce);
        for _ in 0..n_bounce {
            bounce.push(AlignedBuf::new(largest.div_ceil(ALIGN) * ALIGN).ok_or_else(no_mem)?);
        }
        let fds = devs.iter().map(|d| d.as_raw_fd()).collect();
        let mut drv = UringDriver {
            m: machine,
            devs,
            fds,
            held: std::vec![None; pool.len()],
            pool_io: std::vec![0; pool.len()],
            req_buf: HashMap::with_capacity_and_hasher(pool.len(), IdHash),
            r: Ring {
                ring,
                pool,
                bounce,
                slots: (0..qd).map(|_| None).collect(),
                in_ring: 0,
            },
            bounce_free: (0..n_bounce).rev().collect(),
            registered: false,
            queue_depth: qd,
            free_slots: (0..qd).rev().collect(),
            waiting: VecDeque::with_capacity(4096),
            done: VecDeque::with_capacity(config.buffers + 64),
            notices: VecDeque::with_capacity(64),
            cqes: Vec::with_capacity(3 * qd),
            fed_ns: 0,
            dsync_ok: true,
        };
        let total = drv.r.pool.len() + drv.r.bounce.len();
        if config.register_buffers && total > 0 && total <= usize::from(u16::MAX) {
            let iovecs: Vec<libc::iovec> = drv
                .r
                .pool
                .iter()
                .chain(drv.r.bounce.iter())
                .map(AlignedBuf::iovec)
                .collect();
            // SAFETY: every iovec names a live allocation owned by the driver; the buffers are
            // freed only in `Drop`, after every entry using them has been reaped.
            drv.registered = unsafe { drv.r.ring.submitter().register_buffers(&iovecs) }.is_ok();
        }
        drv.feed_clock(true);
        drv.settle()?;
        Ok(drv)
    }

    // ---------------------------------------------------------------- getters

    /// The machine (members, events, bitmap, engine counters).
    pub fn machine(&self) -> &Machine {
        &self.m
    }
    /// The member devices, indexed as the machine's members.
    pub fn devices(&self) -> &[FileDevice] {
        &self.devs
    }
    /// Whether the buffers are registered with the kernel (fixed-buffer I/O).
    pub fn buffers_registered(&self) -> bool {
        self.registered
    }
    /// Number of pool buffers.
    pub fn buffer_count(&self) -> usize {
        self.r.pool.len()
    }
    /// Bytes in each pool buffer.
    pub fn buffer_bytes(&self) -> usize {
        self.r.pool.first().map_or(0, |b| b.len)
    }
    /// A pool buffer, or `None` while a request holds it (or for an unknown id).
    pub fn buffer(&self, id: BufId) -> Option<&[u8]> {
        self.buffer_free(id.0).then(|| self.r.pool[id.0].as_slice())
    }
    /// A pool buffer to fill, or `None` while a request holds it.
    pub fn buffer_mut(&mut self, id: BufId) -> Option<&mut [u8]> {
        if !self.buffer_free(id.0) {
            return None;
        }
        Some(self.r.pool[id.0].as_mut_slice())
    }
    /// Array requests submitted and not yet reaped.
    pub fn in_flight(&self) -> usize {
        self.m.engine().requests_in_flight() + self.done.len()
    }

    fn buffer_free(&self, i: usize) -> bool {
        self.held.get(i) == Some(&None) && self.pool_io.get(i) == Some(&0)
    }

    // ---------------------------------------------------------------- requests and commands

    /// Submits a read of `sectors` sectors at array sector `sector` into pool buffer `buf`.
    pub fn submit_read(
        &mut self,
        sector: u64,
        sectors: u64,
        buf: BufId,
    ) -> Result<ReqId, DriverError> {
        self.submit_pooled(ArrayRequest::read(sector, sectors, BufRef(0)), buf)
    }

    /// Submits a write of `sectors` sectors at `sector` from pool buffer `buf`.
    pub fn submit_write(
        &mut self,
        sector: u64,
        sectors: u64,
        buf: BufId,
        fua: bool,
    ) -> Result<ReqId, DriverError> {
        let req = ArrayRequest {
            fua,
            ..ArrayRequest::write(sector, sectors, BufRef(0))
        };
        self.submit_pooled(req, buf)
    }

    /// Submits a flush (covers the writes completed before it).
    pub fn submit_flush(&mut self) -> Result<ReqId, DriverError> {
        let id = self.m.handle_submit(ArrayRequest::flush())?;
        self.settle()?;
        Ok(id)
    }

    /// Submits a discard (nothing reaches the members; it orders and dirties like a write).
    pub fn submit_discard(&mut self, sector: u64, sectors: u64) -> Result<ReqId, DriverError> {
        let id = self
            .m
            .handle_submit(ArrayRequest::discard(sector, sectors))?;
        self.settle()?;
        Ok(id)
    }

    fn submit_pooled(&mut self, mut req: ArrayRequest, buf: BufId) -> Result<ReqId, DriverError> {
        if !self.buffer_free(buf.0) {
            return Err(DriverError::InvalidBuffer("unknown or busy pool buffer"));
        }
        let fits = req
            .sectors
            .checked_mul(crate::SECTOR_SIZE)
            .is_some_and(|b| b > 0 && b <= self.buffer_bytes() as u64);
        if !fits {
            return Err(DriverError::InvalidBuffer("request longer than the buffer"));
        }
        req.buf = BufRef(buf.0 as u64);
        self.feed_clock(false);
        let id = self.m.handle_submit(req)?;
        self.held[buf.0] = Some(id);
        self.req_buf.insert(id.raw(), buf.0);
        self.settle()?;
        Ok(id)
    }

    /// Fails member `i` (mdadm --fail); the survivors record it.
    pub fn fail_member(&mut self, i: usize) -> Result<(), DriverError> {
        self.m.fail_member(i)?;
        self.settle()
    }

    /// Starts a hot replace of member `i` by the spare `with` (any spare when `None`; see
    /// [`Machine::replace_member`]); the copy runs as the driver turns. Returns the
    /// replacement's index.
    pub fn replace_member(&mut self, i: usize, with: Option<usize>) -> Result<usize, DriverError> {
        let r = self.m.replace_member(i, with)?;
        self.settle()?;
        Ok(r)
    }

    /// Starts a sync action; it runs as the driver turns ([`Self::run_until_idle`]).
    pub fn start_sync(&mut self, action: SyncAction) -> Result<(), DriverError> {
        self.m.start_sync(action)?;
        self.settle()
    }

    /// The next notification (member failed, clean/dirty, sync progress, stopped).
    pub fn poll_event(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    // ---------------------------------------------------------------- completions

    /// The next finished request, waiting for one while any is in flight; `None` when nothing
    /// is in flight.
    pub fn next_completion(&mut self) -> Result<Option<Completion>, DriverError> {
        while self.done.is_empty() && self.m.engine().requests_in_flight() > 0 {
            self.turn(true)?;
        }
        Ok(self.done.pop_front())
    }

    /// Up to `max` finished requests, waiting for at least one if any is in flight.
    pub fn reap(&mut self, max: usize) -> Result<Vec<Completion>, DriverError> {
        if let Some(c) = self.next_completion()? {
            let n = max.saturating_sub(1).min(self.done.len());
            let mut out = Vec::with_capacity(n + 1);
            out.push(c);
            out.extend(self.done.drain(..n));
            return Ok(out);
        }
        Ok(Vec::new())
    }

    /// Makes progress without waiting: hands every entry built so far to the kernel (entries
    /// from submissions otherwise wait for the next call that waits — call this before
    /// blocking elsewhere) and takes in what completed; returns how many finished requests
    /// are ready.
    pub fn poll(&mut self) -> Result<usize, DriverError> {
        self.turn(false)?;
        Ok(self.done.len())
    }

    /// Runs until no request, I/O or sync action is outstanding; returns every finished
    /// request not yet reaped.
    pub fn run_until_idle(&mut self) -> Result<Vec<Completion>, DriverError> {
        while self.m.is_busy() || self.r.in_ring > 0 || !self.waiting.is_empty() {
            self.turn(true)?;
        }
        Ok(self.done.drain(..).collect())
    }

    /// Runs the machine's due timers on the driver clock and moves I/O along without waiting;
    /// returns how long the owner may wait before the next `tick`: until the next timer, at
    /// most [`CLOCK_GRANULARITY_NS`] while I/O is in the ring (`None`: nothing to wait for).
    pub fn tick(&mut self) -> Result<Option<Duration>, DriverError> {
        self.feed_clock(true);
        self.turn(false)?;
        let at = now().mono_ns;
        let timer = self.m.poll_timeout().map(|t| t.saturating_sub(at));
        let io = (self.r.in_ring > 0 || self.m.is_busy()).then_some(CLOCK_GRANULARITY_NS);
        Ok(match (timer, io) {
            (Some(t), Some(i)) => Some(t.min(i)),
            (t, i) => t.or(i),
        }
        .map(Duration::from_nanos))
    }

    /// Stops the array ([`Machine::stop`]): waits for the requests in flight, writes the
    /// superblocks clean and hands back the machine and its devices. Unreaped completions are
    /// dropped.
    pub fn stop(mut self) -> Result<(Machine, Vec<FileDevice>), DriverError> {
        self.m.stop();
        self.settle()?;
        while !self.m.is_stopped() {
            self.turn(true)?;
        }
        while self.r.in_ring > 0 {
            self.turn(true)?;
        }
        let UringDriver { r, m, devs, .. } = self;
        drop(r);
        Ok((m, devs))
    }

    // ---------------------------------------------------------------- the loop

    fn feed_clock(&mut self, force: bool) {
        let mono = now().mono_ns;
        let due = self.m.poll_timeout().is_some_and(|d| d <= mono);
        if force || due || mono.saturating_sub(self.fed_ns) >= CLOCK_GRANULARITY_NS {
            let t = now();
            self.m.handle_timeout(t);
            self.fed_ns = t.mono_ns;
        }
    }

    /// One turn: time in, I/Os into the ring, one `io_uring_enter`, completions back in.
    fn turn(&mut self, wait: bool) -> Result<(), DriverError> {
        self.feed_clock(false);
        self.settle()?;
        if self.r.in_ring == 0 {
            if wait && self.done.is_empty() && self.m.is_busy() {
                // Nothing in the ring: the machine waits for time (sync throttling, timers).
                let at = now();
                let Some(deadline) = self.m.poll_timeout() else {
                    return Err(DriverError::Stalled);
                };
                std::thread::sleep(Duration::from_nanos(
                    deadline.saturating_sub(at.mono_ns).min(100_000_000),
                ));
                self.feed_clock(true);
                self.settle()?;
            }
            return Ok(());
        }
        let want = usize::from(wait && self.done.is_empty());
        self.enter(want)?;
        self.reap_ring()?;
        self.settle()
    }

    /// Moves machine outputs along until nothing changes: I/Os into the ring (as far as the
    /// queue depth and bounce buffers allow), completions and notices into their queues.
    fn settle(&mut self) -> Result<(), DriverError> {
        loop {
            let mut moved = false;
            while let Some(io) = self.m.poll_io() {
                self.waiting.push_back(io);
                moved = true;
            }
            while self.r.in_ring < self.queue_depth {
                let Some(io) = self.waiting.pop_front() else {
                    break;
                };
                match self.push(io) {
                    Ok(true) => {}
                    // Out of bounce buffers: wait for a completion to free one.
                    Ok(false) => {
                        self.waiting.push_front(io);
                        break;
                    }
                    Err(errno) => {
                        let r = if errno == 0 {
                            Ok(())
                        } else {
                            Err(MemberError::Io(errno))
                        };
                        self.m.handle_io_completion(io.id, r)?;
                    }
                }
                moved = true;
            }
            while let Some((id, r)) = self.m.poll_completion() {
                if let Some(p) = self.req_buf.remove(&id.raw()) {
                    self.held[p] = None;
                }
                self.done.push_back((id, r));
                moved = true;
            }
            while let Some(n) = self.m.poll_event() {
                self.notices.push_back(n);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }

    fn enter(&mut self, want: usize) -> Result<(), DriverError> {
        match self.r.ring.submit_and_wait(want) {
            Ok(_) => Ok(()),
            // Interrupted or the completion queue is full: the next turn enters again.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(DriverError::Os(e)),
        }
    }

    /// Puts an I/O into the ring. `Ok(false)`: no bounce buffer free (try later); `Err(0)`:
    /// done at once (discard); `Err(errno)`: failed before reaching the kernel.
    fn push(&mut self, io: Io) -> Result<bool, i32> {
        if self.free_slots.is_empty() {
            return Ok(false);
        }
        let fd = types::Fd(*self.fds.get(io.member).ok_or(libc::ENXIO)?);
        let len = u32::try_from(io.len).map_err(|_| EFAULT)?;
        let (ptr, buf_index, bounce) = match (io.kind, io.buf) {
            (IoKind::Discard, _) => return Err(0),
            (IoKind::Flush, _) => (core::ptr::null_mut(), None, None),
            (_, IoBuffer::Caller { token, offset }) => {
                let p = usize::try_from(token.0)
                    .ok()
                    .filter(|&p| self.held.get(p).is_some_and(Option::is_some))
                    .ok_or(EFAULT)?;
                let start = usize::try_from(offset).map_err(|_| EFAULT)?;
                if start
                    .checked_add(len as usize)
                    .is_none_or(|e| e > self.r.pool[p].len)
                {
                    return Err(EFAULT);
                }
                self.pool_io[p] += 1;
                // SAFETY: `start + len <= len of the allocation`, checked above.
                let ptr = unsafe { self.r.pool[p].ptr.as_ptr().add(start) };
                (ptr, Some(p), None)
            }
            (kind, IoBuffer::Machine { index, offset }) => {
                let Some(b) = self.bounce_free.pop() else {
                    return Ok(false);
                };
                let l = len as usize;
                let fits = l <= self.r.bounce[b].len
                    && self
                        .m
                        .buffer(index)
                        .is_some_and(|s| offset.checked_add(l).is_some_and(|e| e <= s.len()));
                if !fits {
                    self.bounce_free.push(b);
                    return Err(EFAULT);
                }
                if kind == IoKind::Write {
                    let src = &self.m.buffer(index).unwrap_or_default()[offset..offset + l];
                    self.r.bounce[b].as_mut_slice()[..l].copy_from_slice(src);
                }
                (
                    self.r.bounce[b].ptr.as_ptr(),
                    Some(self.r.pool.len() + b),
                    Some(b),
                )
            }
            (_, IoBuffer::None) => return Err(EFAULT),
        };
        let ix = self.free_slots.pop().unwrap_or_default();
        let ud = (ix as u64) << 2;
        let sync = || {
            opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build()
        };
        let fixed = buf_index
            .and_then(|i| u16::try_from(i).ok())
            .filter(|_| self.registered);
        let dsync = io.kind == IoKind::Write && io.fua && self.dsync_ok;
        let main = match (io.kind, fixed) {
            (IoKind::Flush, _) => sync(),
            (IoKind::Read, Some(i)) => opcode::ReadFixed::new(fd, ptr, len, i)
                .offset(io.offset)
                .build(),
            (IoKind::Read, None) => opcode::Read::new(fd, ptr, len).offset(io.offset).build(),
            (_, Some(i)) => opcode::WriteFixed::new(fd, ptr, len, i)
                .offset(io.offset)
                .rw_flags(if dsync { libc::RWF_DSYNC } else { 0 })
                .build(),
            (_, None) => opcode::Write::new(fd, ptr, len)
                .offset(io.offset)
                .rw_flags(if dsync { libc::RWF_DSYNC } else { 0 })
                .build(),
        };
        let write = io.kind == IoKind::Write;
        let pre = (write && io.preflush).then(|| {
            sync()
                .flags(squeue::Flags::IO_LINK)
                .user_data(ud | PART_PREFLUSH)
        });
        let post = (write && io.fua && !dsync).then(|| sync().user_data(ud | PART_POSTFLUSH));
        let main = main.user_data(ud | PART_MAIN);
        let main = if post.is_some() {
            main.flags(squeue::Flags::IO_LINK)
        } else {
            main
        };
        let mut entries: [Option<squeue::Entry>; 3] = [pre, Some(main), post];
        let n = entries.iter().filter(|e| e.is_some()).count();
        let mut sq = self.r.ring.submission();
        if sq.capacity() - sq.len() < n {
            drop(sq);
            // The submission queue is full of entries not yet entered: enter them first.
            let _ = self.r.ring.submit();
            sq = self.r.ring.submission();
        }
        let mut pushed = true;
        for e in entries.iter_mut().filter_map(Option::take) {
            // SAFETY: the entry names memory checked above (a pool buffer counted busy in
            // `pool_io`, or a bounce buffer taken off `bounce_free`, both until the slot is
            // reaped; `Drop` waits for every entry) and the fd of a device the driver owns.
            pushed &= unsafe { sq.push(&e) }.is_ok();
        }
        drop(sq);
        if !pushed {
            // Cannot happen (the ring has three entries per slot); fail the I/O, not the loop.
            self.free_slots.push(ix);
            self.release(&io, bounce);
            return Err(ENOBUFS);
        }
        self.r.slots[ix] = Some(Slot {
            io,
            parts: n as u8,
            expect: if io.kind == IoKind::Flush { 0 } else { len },
            bounce,
            dsync,
            err: None,
        });
        self.r.in_ring += 1;
        Ok(true)
    }

    fn release(&mut self, io: &Io, bounce: Option<usize>) {
        if let IoBuffer::Caller { token, .. } = io.buf {
            if let Some(n) = usize::try_from(token.0)
                .ok()
                .and_then(|p| self.pool_io.get_mut(p))
            {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(b) = bounce {
            self.bounce_free.push(b);
        }
    }

    /// Takes every completion from the ring and feeds the finished I/Os to the machine.
    fn reap_ring(&mut self) -> Result<(), DriverError> {
        let mut cqes = core::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(
            self.r
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result())),
        );
        let mut r = Ok(());
        for &(ud, res) in &cqes {
            let ix = (ud >> 2) as usize;
            let Some(slot) = self.r.slots.get_mut(ix).and_then(Option::as_mut) else {
                continue;
            };
            let bad = if ud & 3 == PART_MAIN {
                res < 0 || res as u32 != slot.expect
            } else {
                res < 0
            };
            if bad {
                let errno = if res < 0 { -res } else { EIO };
                if slot.err.is_none_or(|e| e == ECANCELED) {
                    slot.err = Some(errno);
                }
            }
            slot.parts -= 1;
            if slot.parts > 0 {
                continue;
            }
            let Some(slot) = self.r.slots[ix].take() else {
                continue;
            };
            self.free_slots.push(ix);
            self.r.in_ring -= 1;
            if slot.dsync && slot.err == Some(EOPNOTSUPP) {
                // The kernel refused RWF_DSYNC: from now on FUA is a linked fdatasync; this
                // I/O goes again first.
                self.dsync_ok = false;
                self.release(&slot.io, slot.bounce);
                self.waiting.push_front(slot.io);
                continue;
            }
            if let (None, Some(b), IoKind::Read, IoBuffer::Machine { index, offset }) =
                (slot.err, slot.bounce, slot.io.kind, slot.io.buf)
            {
                let l = slot.expect as usize;
                if let Some(dst) = self
                    .m
                    .buffer_mut(index)
                    .and_then(|s| s.get_mut(offset..offset + l))
                {
                    dst.copy_from_slice(&self.r.bounce[b].as_slice()[..l]);
                }
            }
            self.release(&slot.io, slot.bounce);
            let result = slot.err.map_or(Ok(()), |e| Err(MemberError::Io(e)));
            if let Err(e) = self.m.handle_io_completion(slot.io.id, result) {
                r = Err(e.into());
            }
        }
        self.cqes = cqes;
        r
    }
}

/// The ring and the memory its entries name; dropping it waits for every entry first.
struct Ring {
    ring: IoUring,
    pool: Vec<AlignedBuf>,
    bounce: Vec<AlignedBuf>,
    slots: Vec<Option<Slot>>,
    /// I/Os in the ring (each one to three entries).
    in_ring: usize,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // The kernel may still write into the buffers: wait for every entry in the ring.
        while self.in_ring > 0 {
            match self.ring.submit_and_wait(1) {
                Err(e) if e.raw_os_error() != Some(libc::EINTR) => break,
                _ => {}
            }
            for c in self.ring.completion() {
                let ix = (c.user_data() >> 2) as usize;
                if let Some(s) = self.slots.get_mut(ix).and_then(Option::as_mut) {
                    s.parts -= 1;
                    if s.parts == 0 {
                        self.slots[ix] = None;
                        self.in_ring -= 1;
                    }
                }
            }
        }
        if self.in_ring > 0 {
            // Could not drain: leak the memory rather than free it under the kernel's feet.
            core::mem::forget(core::mem::take(&mut self.pool));
            core::mem::forget(core::mem::take(&mut self.bounce));
        }
    }
}

/// A bare io_uring loop with no machine: `ops` random `block`-byte reads or writes at queue
/// depth `qd` over the first `span` bytes of `dev` (block aligned), the benchmarks' baseline.
/// Returns the elapsed wall time.
pub(crate) fn raw_random_io(
    dev: &FileDevice,
    write: bool,
    qd: u32,
    block: usize,
    span: u64,
    ops: u64,
    seed: u64,
) -> Result<Duration, DriverError> {
    let len = u32::try_from(block)
        .ok()
        .filter(|&l| l > 0 && l % 512 == 0)
        .ok_or(DriverError::InvalidConfig(
            "block must be a non-zero multiple of 512",
        ))?;
    let qd = qd.clamp(1, 4096);
    let mut ring = IoUring::new(qd).map_err(DriverError::UringUnavailable)?;
    let qd = qd as usize;
    let no_mem = || DriverError::Os(std::io::Error::from(std::io::ErrorKind::OutOfMemory));
    let mut bufs = Vec::with_capacity(qd);
    for i in 0..qd {
        let mut b = AlignedBuf::new(block).ok_or_else(no_mem)?;
        b.as_mut_slice().fill(i as u8 ^ 0x5a);
        bufs.push(b);
    }
    let iovecs: Vec<libc::iovec> = bufs.iter().map(AlignedBuf::iovec).collect();
    // SAFETY: the iovecs name allocations in `bufs`, which outlive the ring (dropped below,
    // after every entry is reaped).
    let registered = unsafe { ring.submitter().register_buffers(&iovecs) }.is_ok();
    let blocks = (span / block as u64).max(1);
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % blocks
    };
    let fd = types::Fd(dev.as_raw_fd());
    let (mut issued, mut done, mut in_ring) = (0u64, 0u64, 0usize);
    let mut free: Vec<usize> = (0..qd).collect();
    let mut failed = None;
    let start = std::time::Instant::now();
    while done < ops {
        while in_ring < qd && issued < ops {
            let Some(i) = free.pop() else { break };
            let off = next() * block as u64;
            let ptr = bufs[i].ptr.as_ptr();
            let e = match (write, registered) {
                (false, true) => opcode::ReadFixed::new(fd, ptr, len, i as u16)
                    .offset(off)
                    .build(),
                (false, false) => opcode::Read::new(fd, ptr, len).offset(off).build(),
                (true, true) => opcode::WriteFixed::new(fd, ptr, len, i as u16)
                    .offset(off)
                    .build(),
                (true, false) => opcode::Write::new(fd, ptr, len).offset(off).build(),
            };
            // SAFETY: buffer `i` is owned by `bufs` (alive until after the ring is dropped) and
            // used by this entry only, until its completion returns it to `free`.
            if unsafe { ring.submission().push(&e.user_data(i as u64)) }.is_err() {
                free.push(i);
                break;
            }
            in_ring += 1;
            issued += 1;
        }
        if let Err(e) = ring.submit_and_wait(1) {
            if e.raw_os_error() != Some(libc::EINTR) {
                failed = Some(DriverError::Os(e));
                break;
            }
        }
        for c in ring.completion() {
            in_ring -= 1;
            done += 1;
            free.push(c.user_data() as usize);
            if c.result() != len as i32 && failed.is_none() {
                failed = Some(DriverError::Os(std::io::Error::from_raw_os_error(
                    if c.result() < 0 { -c.result() } else { EIO },
                )));
            }
        }
    }
    let elapsed = start.elapsed();
    while in_ring > 0 {
        if ring.submit_and_wait(1).is_err() {
            core::mem::forget(bufs);
            return Err(failed.unwrap_or(DriverError::Stalled));
        }
        in_ring -= ring.completion().count();
    }
    drop(ring);
    drop(bufs);
    match failed {
        Some(e) => Err(e),
        None => Ok(elapsed),
    }
}
