//! The io_uring driver: many array requests in flight over files and block devices (Linux).
//!
//! All of the crate's io_uring `unsafe` lives here. The invariant every block relies on: memory
//! and descriptors named by a submission-queue entry stay valid until its completion is reaped.
//! Buffers are owned by the driver (a fixed pool plus one bounce buffer per engine scratch
//! buffer), never handed out while an I/O uses them, and freed only after [`Drop`] has waited
//! for every I/O in the ring; descriptors belong to the driver's [`FileDevice`]s and pending
//! entries are submitted before the metadata sink (which may close a device) runs.
#![allow(unsafe_code)]

use super::{
    check_slots, member_span, Clock, DriverError, MemberFailure, MetadataSink, NoopSink, EFAULT,
    ENXIO,
};
use crate::device::FileDevice;
use crate::raid1::{
    ArrayRequest, BufRef, IoBuf, MemberError, MemberIo, MemberIoKind, Raid1, ReqId,
};
use core::ptr::NonNull;
use core::time::Duration;
use io_uring::{opcode, squeue, types, IoUring};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::{HashMap, VecDeque};
use std::os::unix::io::{AsRawFd, RawFd};
use std::vec::Vec;

/// errno for a driver-side conflict on a bounce buffer (an engine invariant broke): EBUSY.
const EBUSY: i32 = 16;
/// errno for a transfer the kernel cut short: EIO.
const EIO: i32 = 5;

/// How to build a [`UringDriver`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UringConfig {
    /// Member I/Os in the ring at once (submission-queue entries), 1..=4096.
    pub queue_depth: u32,
    /// Caller buffers in the pool (each array read or write uses one until it completes).
    pub buffers: usize,
    /// Size of each pool buffer in bytes (a multiple of 4096); the longest request it serves.
    pub buffer_bytes: usize,
    /// Register the pool with the kernel (`IORING_REGISTER_BUFFERS`, fixed-buffer reads and
    /// writes); silently falls back to plain ones if the kernel refuses.
    pub register_buffers: bool,
}

impl Default for UringConfig {
    /// Queue depth 64, 64 buffers of 128 KiB, registered.
    fn default() -> Self {
        UringConfig {
            queue_depth: 64,
            buffers: 64,
            buffer_bytes: 128 << 10,
            register_buffers: true,
        }
    }
}

impl UringConfig {
    /// `queue_depth` member I/Os in flight, `buffers` pool buffers of `buffer_bytes`.
    pub fn new(queue_depth: u32, buffers: usize, buffer_bytes: usize) -> Self {
        UringConfig {
            queue_depth,
            buffers,
            buffer_bytes,
            register_buffers: true,
        }
    }
}

/// A finished array request: its id and outcome.
pub type Completion = (ReqId, Result<(), DriverError>);

/// A pool buffer of a [`UringDriver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub usize);

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
        // SAFETY: `ptr` owns `layout.size() >= len` initialised bytes; the shared borrow of
        // `self` keeps the driver from starting I/O on them (that needs `&mut` of the driver).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, borrowed mutably through `self`; callers only reach this for
        // buffers no ring entry uses.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with exactly this layout and is freed once.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Hashing for engine ids (already unique integers): one multiply instead of SipHash.
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

/// A member I/O in the ring.
#[derive(Debug)]
struct Slot {
    io: MemberIo,
    /// Bytes the kernel must report (0 for fsync).
    expect: u32,
    /// Pool buffer or bounce buffer it uses (released when reaped).
    pool: Option<usize>,
    bounce: Option<usize>,
}

/// What the driver keeps per array request.
#[derive(Debug)]
struct ReqInfo {
    pool: Option<usize>,
    failures: Vec<MemberFailure>,
}

/// A RAID1 array over files or block devices, member I/O through io_uring.
///
/// Requests are submitted without waiting ([`submit_read`](Self::submit_read),
/// [`submit_write`](Self::submit_write), [`submit_flush`](Self::submit_flush),
/// [`submit_discard`](Self::submit_discard)) and their outcomes collected with
/// [`reap`](Self::reap) or [`run_until_idle`](Self::run_until_idle). Data moves through a pool of
/// driver-owned, 4 KiB-aligned buffers (O_DIRECT safe, optionally registered with the kernel):
/// fill one with [`buffer_mut`](Self::buffer_mut), submit a write naming it, and it is yours
/// again once the request is reaped; a read's data is in its buffer when the read is reaped.
/// Member I/Os from the engine become ring entries (read/write at
/// `data_offset + sector * 512`, `fdatasync` for flushes, `RWF_DSYNC` for FUA writes); at most
/// `queue_depth` are in the ring, the rest wait in order.
///
/// Building the driver fails with [`DriverError::UringUnavailable`] where the kernel refuses
/// io_uring; callers fall back to [`BlockingDriver`](super::BlockingDriver).
pub struct UringDriver<S: MetadataSink<FileDevice> = NoopSink> {
    ring: IoUring,
    engine: Raid1,
    devices: Vec<Option<FileDevice>>,
    fds: Vec<Option<RawFd>>,
    data_offset_bytes: Vec<u64>,
    sink: S,
    clock: Clock,
    queue_depth: usize,
    pool: Vec<AlignedBuf>,
    /// Held by a request (from submission until reaped).
    held: Vec<bool>,
    /// Ring entries using each pool buffer.
    pool_io: Vec<u32>,
    bounce: Vec<AlignedBuf>,
    bounce_busy: Vec<bool>,
    registered: bool,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    /// Entries pushed to the ring and not yet reaped.
    in_ring: usize,
    /// Entries pushed to the submission queue and not yet passed to the kernel.
    unsubmitted: bool,
    waiting: VecDeque<MemberIo>,
    /// The request holding each pool buffer (the buffer's index is its engine token).
    pool_req: Vec<Option<ReqId>>,
    reqs: HashMap<ReqId, ReqInfo, IdHash>,
    done: VecDeque<Completion>,
    cqes: Vec<(u64, i32)>,
    poisoned: bool,
}

impl<S: MetadataSink<FileDevice>> UringDriver<S> {
    /// A driver over `engine` with one device entry (`None` for an empty slot) and one data
    /// offset (bytes, a multiple of 512) per engine slot.
    pub fn new(
        engine: Raid1,
        devices: Vec<Option<FileDevice>>,
        data_offset_bytes: Vec<u64>,
        sink: S,
        config: UringConfig,
    ) -> Result<Self, DriverError> {
        check_slots(engine.slots(), &devices, &data_offset_bytes)?;
        if config.queue_depth == 0 || config.queue_depth > 4096 {
            return Err(DriverError::InvalidConfig("queue depth must be 1..=4096"));
        }
        if config.buffer_bytes == 0
            || config.buffer_bytes % ALIGN != 0
            || u32::try_from(config.buffer_bytes).is_err()
        {
            return Err(DriverError::InvalidConfig(
                "buffer size must be a non-zero multiple of 4096 below 4 GiB",
            ));
        }
        let ring = IoUring::new(config.queue_depth).map_err(DriverError::UringUnavailable)?;
        let no_mem = || DriverError::Os(std::io::Error::from(std::io::ErrorKind::OutOfMemory));
        let mut pool = Vec::with_capacity(config.buffers);
        for _ in 0..config.buffers {
            pool.push(AlignedBuf::new(config.buffer_bytes).ok_or_else(no_mem)?);
        }
        let mut bounce = Vec::new();
        let mut i = 0;
        while let Some(s) = engine.scratch(i) {
            bounce.push(AlignedBuf::new(s.len().max(1)).ok_or_else(no_mem)?);
            i += 1;
        }
        let fds = devices
            .iter()
            .map(|d| d.as_ref().map(|d| d.as_raw_fd()))
            .collect();
        let qd = config.queue_depth as usize;
        let mut drv = UringDriver {
            ring,
            engine,
            devices,
            fds,
            data_offset_bytes,
            sink,
            clock: Clock::new(),
            queue_depth: qd,
            held: std::vec![false; pool.len()],
            pool_io: std::vec![0; pool.len()],
            bounce_busy: std::vec![false; bounce.len()],
            pool,
            bounce,
            registered: false,
            slots: (0..qd).map(|_| None).collect(),
            free_slots: (0..qd).rev().collect(),
            in_ring: 0,
            unsubmitted: false,
            waiting: VecDeque::new(),
            pool_req: std::vec![None; config.buffers],
            reqs: HashMap::with_capacity_and_hasher(qd, IdHash),
            done: VecDeque::new(),
            cqes: Vec::with_capacity(qd),
            poisoned: false,
        };
        let total = drv.pool.len() + drv.bounce.len();
        if config.register_buffers && total > 0 && total <= usize::from(u16::MAX) {
            let iovecs: Vec<libc::iovec> = drv
                .pool
                .iter()
                .chain(drv.bounce.iter())
                .map(|b| libc::iovec {
                    iov_base: b.ptr.as_ptr().cast(),
                    iov_len: b.len,
                })
                .collect();
            // SAFETY: every iovec names a live allocation owned by the driver; the buffers are
            // freed only in `Drop`, after the ring (and with it the registration) is torn down
            // or every I/O has been reaped.
            drv.registered = unsafe { drv.ring.submitter().register_buffers(&iovecs) }.is_ok();
        }
        Ok(drv)
    }

    // ------------------------------------------------------------------ accessors

    /// The engine (states, counters, bad blocks).
    pub fn engine(&self) -> &Raid1 {
        &self.engine
    }
    /// The member devices by slot.
    pub fn devices(&self) -> &[Option<FileDevice>] {
        &self.devices
    }
    /// The metadata sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }
    /// The metadata sink, mutable.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }
    /// Whether the pool is registered with the kernel (fixed-buffer I/O).
    pub fn buffers_registered(&self) -> bool {
        self.registered
    }
    /// Number of pool buffers.
    pub fn buffer_count(&self) -> usize {
        self.pool.len()
    }
    /// Size of each pool buffer in bytes.
    pub fn buffer_bytes(&self) -> usize {
        self.pool.first().map_or(0, |b| b.len)
    }
    /// A pool buffer's bytes, or `None` while a request holds it (or for an unknown id).
    pub fn buffer(&self, id: BufId) -> Option<&[u8]> {
        self.pool
            .get(id.0)
            .filter(|_| self.buffer_free(id.0))
            .map(|b| b.as_slice())
    }
    /// A pool buffer's bytes, mutable, or `None` while a request holds it.
    pub fn buffer_mut(&mut self, id: BufId) -> Option<&mut [u8]> {
        if !self.buffer_free(id.0) {
            return None;
        }
        self.pool.get_mut(id.0).map(|b| b.as_mut_slice())
    }
    /// Array requests submitted and not yet reaped.
    pub fn in_flight(&self) -> usize {
        self.reqs.len()
    }
    /// Whether an earlier failure stopped the driver.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
    /// The driver clock: nanoseconds since the driver was built.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn buffer_free(&self, i: usize) -> bool {
        !self.held.get(i).copied().unwrap_or(true) && self.pool_io.get(i).copied() == Some(0)
    }

    // ------------------------------------------------------------------ requests

    /// Submits a read of `sectors` sectors at `sector` into pool buffer `buf`.
    pub fn submit_read(
        &mut self,
        sector: u64,
        sectors: u64,
        buf: BufId,
    ) -> Result<ReqId, DriverError> {
        self.submit_buffered(ArrayRequest::read(sector, sectors, BufRef(0)), buf)
    }

    /// Submits a write of `sectors` sectors at `sector` from pool buffer `buf`.
    pub fn submit_write(
        &mut self,
        sector: u64,
        sectors: u64,
        buf: BufId,
        fua: bool,
    ) -> Result<ReqId, DriverError> {
        let mut req = ArrayRequest::write(sector, sectors, BufRef(0));
        req.fua = fua;
        self.submit_buffered(req, buf)
    }

    /// Submits a flush (covers the writes completed before it).
    pub fn submit_flush(&mut self) -> Result<ReqId, DriverError> {
        self.submit_req(ArrayRequest::flush(), None)
    }

    /// Submits a discard (a no-op on the members; it orders and dirties like a write).
    pub fn submit_discard(&mut self, sector: u64, sectors: u64) -> Result<ReqId, DriverError> {
        self.submit_req(ArrayRequest::discard(sector, sectors), None)
    }

    fn submit_buffered(&mut self, mut req: ArrayRequest, buf: BufId) -> Result<ReqId, DriverError> {
        if !self.buffer_free(buf.0) {
            return Err(DriverError::InvalidBuffer("unknown or busy pool buffer"));
        }
        let fits = req
            .sectors
            .checked_mul(crate::SECTOR_SIZE)
            .is_some_and(|b| b <= self.buffer_bytes() as u64);
        if !fits {
            return Err(DriverError::InvalidBuffer("request longer than the buffer"));
        }
        req.buf = BufRef(buf.0 as u64);
        self.submit_req(req, Some(buf.0))
    }

    fn submit_req(&mut self, req: ArrayRequest, pool: Option<usize>) -> Result<ReqId, DriverError> {
        if self.poisoned {
            return Err(DriverError::Poisoned);
        }
        self.clock.feed(&mut self.engine);
        let id = self.engine.handle_submit(req)?;
        if let Some(p) = pool {
            self.held[p] = true;
            self.pool_req[p] = Some(id);
        }
        self.reqs.insert(
            id,
            ReqInfo {
                pool,
                failures: Vec::new(),
            },
        );
        self.settle()?;
        Ok(id)
    }

    // ------------------------------------------------------------------ completions

    /// Returns up to `max` finished requests, waiting for at least one if any is in flight
    /// (an empty vector means nothing was in flight).
    pub fn reap(&mut self, max: usize) -> Result<Vec<Completion>, DriverError> {
        while self.done.is_empty() && self.busy() {
            self.turn(true)?;
        }
        let n = max.min(self.done.len());
        Ok(self.done.drain(..n).collect())
    }

    /// Makes progress without waiting; returns how many finished requests are ready to reap.
    pub fn poll(&mut self) -> Result<usize, DriverError> {
        self.turn(false)?;
        Ok(self.done.len())
    }

    /// Runs until no request or member I/O is outstanding; returns every finished request.
    pub fn run_until_idle(&mut self) -> Result<Vec<Completion>, DriverError> {
        while self.busy() {
            self.turn(true)?;
        }
        Ok(self.done.drain(..).collect())
    }

    /// Runs the engine's timers as of driver time `now_ns` and carries out what they produce;
    /// returns the next deadline (see [`BlockingDriver::idle`](super::BlockingDriver::idle)).
    pub fn idle(&mut self, now_ns: u64) -> Result<Option<u64>, DriverError> {
        if self.poisoned {
            return Err(DriverError::Poisoned);
        }
        self.engine.handle_timeout(now_ns);
        self.turn(false)?;
        Ok(self.engine.poll_timeout())
    }

    /// Runs due timers on the driver clock; returns how long the owner may wait before the
    /// next `tick`.
    pub fn tick(&mut self) -> Result<Option<Duration>, DriverError> {
        let now = self.clock.now_ns();
        let next = self.idle(now)?;
        Ok(next.map(|t| Duration::from_nanos(t.saturating_sub(now))))
    }

    // ------------------------------------------------------------------ the loop

    fn busy(&self) -> bool {
        !self.reqs.is_empty()
            || self.in_ring > 0
            || !self.waiting.is_empty()
            || self.engine.member_ios_in_flight() > 0
    }

    /// One round: timers, outputs into the ring, one `io_uring_enter`, completions back in.
    fn turn(&mut self, wait: bool) -> Result<(), DriverError> {
        if self.poisoned {
            return Err(DriverError::Poisoned);
        }
        self.clock.feed(&mut self.engine);
        self.settle()?;
        if self.in_ring == 0 {
            if wait && self.busy() && self.done.is_empty() {
                // Outstanding work with nothing in the ring and nothing the engine will do.
                self.poisoned = true;
                return Err(DriverError::Stalled);
            }
            return Ok(());
        }
        let want = usize::from(wait && self.done.is_empty());
        self.enter(want)?;
        self.reap_ring()?;
        self.settle()
    }

    fn enter(&mut self, want: usize) -> Result<(), DriverError> {
        match self.ring.submit_and_wait(want) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
                ) => {}
            Err(e) => return Err(DriverError::Os(e)),
        }
        self.unsubmitted = false;
        Ok(())
    }

    /// Moves engine outputs along until nothing changes: events to the sink, completions to
    /// the done queue, member I/Os into the ring (as far as the queue depth allows).
    fn settle(&mut self) -> Result<(), DriverError> {
        loop {
            let mut moved = false;
            while let Some(event) = self.engine.poll_event() {
                moved = true;
                if self.unsubmitted {
                    // The sink may close a device: hand the kernel every entry naming its fd.
                    self.enter(0)?;
                }
                if let Err(source) = self.sink.apply(&event, &mut self.devices) {
                    self.poisoned = true;
                    return Err(DriverError::Sink { event, source });
                }
                self.refresh_fds();
                if let Err(e) = self.engine.handle_metadata_done(event.token()) {
                    self.poisoned = true;
                    return Err(e.into());
                }
            }
            while let Some((id, r)) = self.engine.poll_completion() {
                moved = true;
                let (pool, failures) = match self.reqs.remove(&id) {
                    Some(i) => (i.pool, i.failures),
                    None => (None, Vec::new()),
                };
                if let Some(p) = pool {
                    if let Some(h) = self.held.get_mut(p) {
                        *h = false;
                    }
                    if let Some(r) = self.pool_req.get_mut(p) {
                        *r = None;
                    }
                }
                let r = r.map_err(|error| DriverError::Array {
                    error,
                    members: failures,
                });
                self.done.push_back((id, r));
            }
            while let Some(io) = self.engine.poll_member_io() {
                moved = true;
                self.waiting.push_back(io);
            }
            while self.in_ring < self.queue_depth {
                let Some(io) = self.waiting.pop_front() else {
                    break;
                };
                moved = true;
                match self.prepare(&io) {
                    Ok(Some((entry, slot))) => {
                        let Some(ix) = self.free_slots.pop() else {
                            self.release(&slot);
                            self.waiting.push_front(io);
                            break;
                        };
                        let entry = entry.user_data(ix as u64);
                        // SAFETY: the entry names memory from `prepare` (a pool or bounce buffer
                        // owned by the driver, counted busy in `slot` until the completion is
                        // reaped; `Drop` waits for it) and an fd of a device the driver owns.
                        let pushed = unsafe { self.ring.submission().push(&entry) }.is_ok();
                        if !pushed {
                            self.free_slots.push(ix);
                            self.release(&slot);
                            self.waiting.push_front(io);
                            break;
                        }
                        self.slots[ix] = Some(slot);
                        self.in_ring += 1;
                        self.unsubmitted = true;
                    }
                    Ok(None) => self.complete(&io, Ok(()))?,
                    Err(e) => self.complete(&io, Err(e))?,
                }
            }
            if !moved {
                return Ok(());
            }
        }
    }

    fn refresh_fds(&mut self) {
        for (fd, d) in self.fds.iter_mut().zip(&self.devices) {
            *fd = d.as_ref().map(|d| d.as_raw_fd());
        }
    }

    /// Builds the ring entry for a member I/O (`None`: complete at once, e.g. a discard), and
    /// marks the memory it uses busy.
    fn prepare(&mut self, io: &MemberIo) -> Result<Option<(squeue::Entry, Slot)>, MemberError> {
        let fd = self
            .fds
            .get(io.member)
            .copied()
            .flatten()
            .ok_or(MemberError::Io(ENXIO))?;
        let fd = types::Fd(fd);
        let write = match io.kind {
            // Files and block devices have no portable discard here; md ignores discard errors.
            MemberIoKind::Discard => return Ok(None),
            MemberIoKind::Flush => {
                let e = opcode::Fsync::new(fd)
                    .flags(types::FsyncFlags::DATASYNC)
                    .build();
                let slot = Slot {
                    io: *io,
                    expect: 0,
                    pool: None,
                    bounce: None,
                };
                return Ok(Some((e, slot)));
            }
            MemberIoKind::Read => false,
            MemberIoKind::Write => true,
        };
        let base = self.data_offset_bytes.get(io.member).copied().unwrap_or(0);
        let (off, len) = member_span(base, io.sector, io.sectors).ok_or(MemberError::Io(EFAULT))?;
        let len32 = u32::try_from(len).map_err(|_| MemberError::Io(EFAULT))?;
        let (ptr, index, pool, bounce) = match io.buf {
            IoBuf::Caller { buf, offset } => {
                // The token is the pool index; only a held buffer may be named.
                let p = usize::try_from(buf.0)
                    .ok()
                    .filter(|&p| self.held.get(p) == Some(&true))
                    .ok_or(MemberError::Io(EFAULT))?;
                let b = &self.pool[p];
                let start = usize::try_from(offset).map_err(|_| MemberError::Io(EFAULT))?;
                if start.checked_add(len).is_none_or(|end| end > b.len) {
                    return Err(MemberError::Io(EFAULT));
                }
                // SAFETY: `start + len <= b.len`, inside the allocation.
                let ptr = unsafe { b.ptr.as_ptr().add(start) };
                (ptr, p, Some(p), None)
            }
            IoBuf::Scratch { index } => {
                let busy = self.bounce_busy.get(index).copied();
                if busy != Some(false) {
                    return Err(MemberError::Io(if busy.is_some() { EBUSY } else { EFAULT }));
                }
                let b = &mut self.bounce[index];
                if len > b.len {
                    return Err(MemberError::Io(EFAULT));
                }
                if write {
                    let src = self.engine.scratch(index).ok_or(MemberError::Io(EFAULT))?;
                    let src = src.get(..len).ok_or(MemberError::Io(EFAULT))?;
                    b.as_mut_slice()[..len].copy_from_slice(src);
                }
                (b.ptr.as_ptr(), self.pool.len() + index, None, Some(index))
            }
            IoBuf::None => return Err(MemberError::Io(EFAULT)),
        };
        let buf_index = u16::try_from(index).ok().filter(|_| self.registered);
        let entry = match (write, buf_index) {
            (false, Some(i)) => opcode::ReadFixed::new(fd, ptr, len32, i)
                .offset(off)
                .build(),
            (false, None) => opcode::Read::new(fd, ptr, len32).offset(off).build(),
            (true, Some(i)) => opcode::WriteFixed::new(fd, ptr, len32, i)
                .offset(off)
                .rw_flags(if io.fua { libc::RWF_DSYNC } else { 0 })
                .build(),
            (true, None) => opcode::Write::new(fd, ptr, len32)
                .offset(off)
                .rw_flags(if io.fua { libc::RWF_DSYNC } else { 0 })
                .build(),
        };
        let slot = Slot {
            io: *io,
            expect: len32,
            pool,
            bounce,
        };
        if let Some(p) = pool {
            self.pool_io[p] += 1;
        }
        if let Some(b) = bounce {
            self.bounce_busy[b] = true;
        }
        Ok(Some((entry, slot)))
    }

    fn release(&mut self, slot: &Slot) {
        if let Some(p) = slot.pool {
            self.pool_io[p] = self.pool_io[p].saturating_sub(1);
        }
        if let Some(b) = slot.bounce {
            self.bounce_busy[b] = false;
        }
    }

    /// Takes every completion from the ring and feeds it to the engine.
    fn reap_ring(&mut self) -> Result<(), DriverError> {
        let mut cqes = core::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        let mut r = Ok(());
        for &(ud, res) in &cqes {
            let Some(slot) = usize::try_from(ud)
                .ok()
                .and_then(|ix| self.slots.get_mut(ix))
                .and_then(|s| s.take())
            else {
                continue;
            };
            self.free_slots.push(ud as usize);
            self.in_ring = self.in_ring.saturating_sub(1);
            self.release(&slot);
            let result = if res < 0 {
                Err(MemberError::Io(-res))
            } else if res as u32 != slot.expect {
                Err(MemberError::Io(EIO))
            } else {
                Ok(())
            };
            if let (Ok(()), Some(b), MemberIoKind::Read) = (result, slot.bounce, slot.io.kind) {
                let len = slot.expect as usize;
                if let Some(dst) = self.engine.scratch_mut(b).and_then(|s| s.get_mut(..len)) {
                    dst.copy_from_slice(&self.bounce[b].as_slice()[..len]);
                }
            }
            if let Err(e) = self.complete(&slot.io, result) {
                r = Err(e);
                break;
            }
        }
        self.cqes = cqes;
        r
    }

    fn complete(
        &mut self,
        io: &MemberIo,
        result: Result<(), MemberError>,
    ) -> Result<(), DriverError> {
        if let (Err(error), IoBuf::Caller { buf, .. }) = (result, io.buf) {
            let id = usize::try_from(buf.0)
                .ok()
                .and_then(|p| self.pool_req.get(p).copied().flatten());
            if let Some(info) = id.and_then(|id| self.reqs.get_mut(&id)) {
                info.failures.push(MemberFailure {
                    member: io.member,
                    op: io.kind,
                    sector: io.sector,
                    error,
                });
            }
        }
        self.engine
            .handle_member_completion(io.id, result)
            .map_err(|e| {
                self.poisoned = true;
                DriverError::from(e)
            })
    }
}

impl<S: MetadataSink<FileDevice> + core::fmt::Debug> core::fmt::Debug for UringDriver<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UringDriver")
            .field("engine", &self.engine)
            .field("devices", &self.devices)
            .field("sink", &self.sink)
            .field("queue_depth", &self.queue_depth)
            .field("buffers", &self.pool.len())
            .field("registered", &self.registered)
            .field("in_ring", &self.in_ring)
            .field("waiting", &self.waiting.len())
            .field("in_flight", &self.reqs.len())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl<S: MetadataSink<FileDevice>> Drop for UringDriver<S> {
    fn drop(&mut self) {
        // The kernel may still write into the buffers: wait for every entry in the ring.
        while self.in_ring > 0 {
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.raw_os_error() != Some(libc::EINTR) {
                    break;
                }
            }
            let n = self.ring.completion().count();
            self.in_ring = self.in_ring.saturating_sub(n);
        }
        if self.in_ring > 0 {
            // Could not drain: leak the memory rather than free it under the kernel's feet.
            core::mem::forget(core::mem::take(&mut self.pool));
            core::mem::forget(core::mem::take(&mut self.bounce));
        }
    }
}

/// A bare io_uring loop with no engine: `ops` random `block`-byte reads at queue depth `qd` over
/// the first `span` bytes of `dev` (block aligned), for benchmark baselines. Returns the
/// elapsed wall time.
pub(crate) fn raw_random_reads(
    dev: &FileDevice,
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
    for _ in 0..qd {
        bufs.push(AlignedBuf::new(block).ok_or_else(no_mem)?);
    }
    let iovecs: Vec<libc::iovec> = bufs
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.ptr.as_ptr().cast(),
            iov_len: b.len,
        })
        .collect();
    // SAFETY: the iovecs name allocations in `bufs`, which outlive the ring (declared after
    // the ring's drop below via the explicit `drop(ring)` before `bufs` goes out of scope).
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
    let mut issued = 0u64;
    let mut done = 0u64;
    let mut in_ring = 0usize;
    let mut free: Vec<usize> = (0..qd).collect();
    let mut failed = None;
    let start = std::time::Instant::now();
    while done < ops {
        while in_ring < qd && issued < ops {
            let Some(i) = free.pop() else { break };
            let off = next() * block as u64;
            let ptr = bufs[i].ptr.as_ptr();
            let e = if registered {
                opcode::ReadFixed::new(fd, ptr, len, i as u16)
                    .offset(off)
                    .build()
            } else {
                opcode::Read::new(fd, ptr, len).offset(off).build()
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
    // Drain before freeing the buffers.
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
