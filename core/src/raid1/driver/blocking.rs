//! The blocking driver: one array request per call, member I/O done synchronously.

use super::{
    buffer_sectors, check_slots, member_span, Clock, DriverError, MemberFailure, MetadataSink,
    NoopSink, EFAULT, ENXIO,
};
use crate::device::BlockDevice;
use crate::raid1::{
    ArrayIoError, ArrayRequest, BufRef, IoBuf, MemberError, MemberIo, MemberIoKind, Raid1, ReqId,
};
use core::time::Duration;
use std::vec::Vec;

/// The caller memory of the call in progress.
enum CallerBuf<'a> {
    /// No caller memory (flush, discard, idle timers).
    None,
    /// A read's destination.
    Read(&'a mut [u8]),
    /// A write's source.
    Write(&'a [u8]),
}

/// A RAID1 array driven synchronously over owned member devices.
///
/// Each of [`read`](Self::read), [`write`](Self::write), [`flush`](Self::flush) and
/// [`discard`](Self::discard) submits one array request and runs the engine until it completes:
/// member I/Os are carried out one at a time through [`BlockDevice`], metadata events go to the
/// [`MetadataSink`] and are acknowledged, and internal work the request started (read-error
/// repair) is finished before the call returns. The caller's slice is the only memory the engine
/// can name during the call (a fresh [`BufRef`] token per call), so no data is copied except
/// through the engine's repair scratch buffers.
///
/// Timers (safe-mode clean marking, bitmap clearing) run when the owner calls
/// [`tick`](Self::tick) (real clock) or [`idle`](Self::idle) (explicit time), typically after
/// sleeping for the duration `tick` returns.
///
/// ```
/// use mdraid::device::MemDevice;
/// use mdraid::raid1::driver::{BlockingDriver, NoopSink};
/// use mdraid::raid1::{Raid1, Raid1Config};
///
/// let engine = Raid1::new(Raid1Config::new(2, 2048)).unwrap();
/// let devs = vec![Some(MemDevice::new(1 << 20)), Some(MemDevice::new(1 << 20))];
/// let mut drv = BlockingDriver::new(engine, devs, vec![0, 0], NoopSink).unwrap();
/// drv.write(8, &[0xab; 4096], false).unwrap();
/// let mut back = [0u8; 4096];
/// drv.read(8, &mut back).unwrap();
/// assert_eq!(back, [0xab; 4096]);
/// ```
#[derive(Debug)]
pub struct BlockingDriver<D: BlockDevice, S: MetadataSink<D> = NoopSink> {
    engine: Raid1,
    devices: Vec<Option<D>>,
    data_offset_bytes: Vec<u64>,
    sink: S,
    clock: Clock,
    next_token: u64,
    failures: Vec<MemberFailure>,
    poisoned: bool,
}

impl<D: BlockDevice, S: MetadataSink<D>> BlockingDriver<D, S> {
    /// A driver over `engine` with one device entry (`None` for an empty slot) and one data
    /// offset (bytes, a multiple of 512) per engine slot.
    pub fn new(
        engine: Raid1,
        devices: Vec<Option<D>>,
        data_offset_bytes: Vec<u64>,
        sink: S,
    ) -> Result<Self, DriverError> {
        check_slots(engine.slots(), &devices, &data_offset_bytes)?;
        Ok(BlockingDriver {
            engine,
            devices,
            data_offset_bytes,
            sink,
            clock: Clock::new(),
            next_token: 1,
            failures: Vec::new(),
            poisoned: false,
        })
    }

    // ------------------------------------------------------------------ accessors

    /// The engine (states, counters, bad blocks).
    pub fn engine(&self) -> &Raid1 {
        &self.engine
    }
    /// The engine, mutable (commands such as `set_resync_offset`).
    pub fn engine_mut(&mut self) -> &mut Raid1 {
        &mut self.engine
    }
    /// The member devices by slot.
    pub fn devices(&self) -> &[Option<D>] {
        &self.devices
    }
    /// The member devices by slot, mutable (I/O through them bypasses the engine).
    pub fn devices_mut(&mut self) -> &mut [Option<D>] {
        &mut self.devices
    }
    /// Each member's data offset in bytes.
    pub fn data_offset_bytes(&self) -> &[u64] {
        &self.data_offset_bytes
    }
    /// The metadata sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }
    /// The metadata sink, mutable.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }
    /// Whether an earlier failure stopped the driver.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
    /// The driver clock: nanoseconds since the driver was built.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
    /// Member I/Os that failed during the last call (covered by other mirrors or not).
    pub fn last_member_failures(&self) -> &[MemberFailure] {
        &self.failures
    }
    /// Takes the driver apart.
    pub fn into_parts(self) -> (Raid1, Vec<Option<D>>, S) {
        (self.engine, self.devices, self.sink)
    }

    // ------------------------------------------------------------------ requests

    /// Reads `buf.len()` bytes (a non-zero multiple of 512) at array sector `sector`.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DriverError> {
        let sectors = buffer_sectors(buf.len())?;
        let token = self.token();
        self.run(
            ArrayRequest::read(sector, sectors, token),
            CallerBuf::Read(buf),
        )
    }

    /// Writes `buf` (a non-zero multiple of 512 bytes) at array sector `sector`; with `fua` every
    /// member write is made durable before the call returns.
    pub fn write(&mut self, sector: u64, buf: &[u8], fua: bool) -> Result<(), DriverError> {
        let sectors = buffer_sectors(buf.len())?;
        let token = self.token();
        let mut req = ArrayRequest::write(sector, sectors, token);
        req.fua = fua;
        self.run(req, CallerBuf::Write(buf))
    }

    /// Makes completed writes durable on every working member.
    pub fn flush(&mut self) -> Result<(), DriverError> {
        self.run(ArrayRequest::flush(), CallerBuf::None)
    }

    /// Discards `sectors` sectors at `sector`. [`BlockDevice`] has no discard, so members keep
    /// their data; the request still orders against overlapping writes and dirties the array.
    pub fn discard(&mut self, sector: u64, sectors: u64) -> Result<(), DriverError> {
        self.run(ArrayRequest::discard(sector, sectors), CallerBuf::None)
    }

    // ------------------------------------------------------------------ timers

    /// Runs the engine's timers as of driver time `now_ns` (for tests and owners with their own
    /// clock; the engine keeps the latest time it was given, so a `now_ns` ahead of the driver
    /// clock holds later real-clock calls back until the clock catches up). Carries out whatever
    /// the timers produced (clean marking, bitmap clearing) and returns the engine's next
    /// deadline, absolute, in the same time base.
    pub fn idle(&mut self, now_ns: u64) -> Result<Option<u64>, DriverError> {
        if self.poisoned {
            return Err(DriverError::Poisoned);
        }
        self.engine.handle_timeout(now_ns);
        self.pump(BufRef(0), &mut CallerBuf::None, None)?;
        Ok(self.engine.poll_timeout())
    }

    /// Runs due timers on the driver clock; returns how long the owner may sleep before calling
    /// `tick` again (`None`: no timer armed).
    pub fn tick(&mut self) -> Result<Option<Duration>, DriverError> {
        let now = self.clock.now_ns();
        let next = self.idle(now)?;
        Ok(next.map(|t| Duration::from_nanos(t.saturating_sub(now))))
    }

    // ------------------------------------------------------------------ internals

    fn token(&mut self) -> BufRef {
        let t = BufRef(self.next_token);
        self.next_token = self.next_token.wrapping_add(1).max(1);
        t
    }

    fn run(&mut self, req: ArrayRequest, mut buf: CallerBuf<'_>) -> Result<(), DriverError> {
        if self.poisoned {
            return Err(DriverError::Poisoned);
        }
        self.failures.clear();
        self.clock.feed(&mut self.engine);
        let id = self.engine.handle_submit(req)?;
        match self.pump(req.buf, &mut buf, Some(id))? {
            Some(Ok(())) => Ok(()),
            Some(Err(error)) => Err(DriverError::Array {
                error,
                members: self.failures.clone(),
            }),
            None => {
                self.poisoned = true;
                Err(DriverError::Stalled)
            }
        }
    }

    /// Drains the engine until nothing moves; returns the outcome of `want` if it completed.
    fn pump(
        &mut self,
        token: BufRef,
        buf: &mut CallerBuf<'_>,
        want: Option<ReqId>,
    ) -> Result<Option<Result<(), ArrayIoError>>, DriverError> {
        let mut outcome = None;
        loop {
            let mut moved = false;
            while let Some(io) = self.engine.poll_member_io() {
                moved = true;
                let r = perform(
                    &mut self.engine,
                    &mut self.devices,
                    &self.data_offset_bytes,
                    &io,
                    token,
                    buf,
                );
                if let Err(error) = r {
                    self.failures.push(MemberFailure {
                        member: io.member,
                        op: io.kind,
                        sector: io.sector,
                        error,
                    });
                }
                if let Err(e) = self.engine.handle_member_completion(io.id, r) {
                    self.poisoned = true;
                    return Err(e.into());
                }
            }
            while let Some(event) = self.engine.poll_event() {
                moved = true;
                if let Err(source) = self.sink.apply(&event, &mut self.devices) {
                    self.poisoned = true;
                    return Err(DriverError::Sink { event, source });
                }
                if let Err(e) = self.engine.handle_metadata_done(event.token()) {
                    self.poisoned = true;
                    return Err(e.into());
                }
            }
            while let Some((id, r)) = self.engine.poll_completion() {
                moved = true;
                // Only the call's own request can complete: each call waits for its request.
                if Some(id) == want {
                    outcome = Some(r);
                }
            }
            if !moved {
                return Ok(outcome);
            }
        }
    }
}

/// Carries out one member I/O synchronously.
fn perform<D: BlockDevice>(
    engine: &mut Raid1,
    devices: &mut [Option<D>],
    data_offset_bytes: &[u64],
    io: &MemberIo,
    token: BufRef,
    buf: &mut CallerBuf<'_>,
) -> Result<(), MemberError> {
    let Some(Some(dev)) = devices.get_mut(io.member) else {
        return Err(MemberError::Io(ENXIO));
    };
    let base = data_offset_bytes.get(io.member).copied().unwrap_or(0);
    let span = || member_span(base, io.sector, io.sectors).ok_or(MemberError::Io(EFAULT));
    match io.kind {
        MemberIoKind::Flush => dev.flush().map_err(MemberError::from),
        // BlockDevice has no discard; md ignores discard errors, so nothing is lost by skipping.
        MemberIoKind::Discard => Ok(()),
        MemberIoKind::Read => {
            let (off, len) = span()?;
            let dst: &mut [u8] = match io.buf {
                IoBuf::Caller { buf: b, offset } if b == token => match buf {
                    CallerBuf::Read(s) => slice_mut(s, offset, len)?,
                    _ => return Err(MemberError::Io(EFAULT)),
                },
                IoBuf::Scratch { index } => {
                    let s = engine.scratch_mut(index).ok_or(MemberError::Io(EFAULT))?;
                    slice_mut(s, 0, len)?
                }
                _ => return Err(MemberError::Io(EFAULT)),
            };
            dev.read_at(off, dst).map_err(MemberError::from)
        }
        MemberIoKind::Write => {
            let (off, len) = span()?;
            let src: &[u8] = match io.buf {
                IoBuf::Caller { buf: b, offset } if b == token => match buf {
                    CallerBuf::Write(s) => slice(s, offset, len)?,
                    _ => return Err(MemberError::Io(EFAULT)),
                },
                IoBuf::Scratch { index } => {
                    let s = engine.scratch(index).ok_or(MemberError::Io(EFAULT))?;
                    slice(s, 0, len)?
                }
                _ => return Err(MemberError::Io(EFAULT)),
            };
            dev.write_at(off, src).map_err(MemberError::from)?;
            if io.fua {
                dev.flush().map_err(MemberError::from)?;
            }
            Ok(())
        }
    }
}

fn range(offset: u64, len: usize, have: usize) -> Result<core::ops::Range<usize>, MemberError> {
    let start = usize::try_from(offset).map_err(|_| MemberError::Io(EFAULT))?;
    match start.checked_add(len) {
        Some(end) if end <= have => Ok(start..end),
        _ => Err(MemberError::Io(EFAULT)),
    }
}

fn slice(s: &[u8], offset: u64, len: usize) -> Result<&[u8], MemberError> {
    let r = range(offset, len, s.len())?;
    Ok(&s[r])
}

fn slice_mut(s: &mut [u8], offset: u64, len: usize) -> Result<&mut [u8], MemberError> {
    let r = range(offset, len, s.len())?;
    Ok(&mut s[r])
}
