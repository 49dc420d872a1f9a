//! A deterministic simulator for the engine (std-free, for tests and fuzzing).
//!
//! [`Sim`] owns a [`Raid1`], N in-memory members with per-member latency (plus seeded jitter),
//! injected faults, caller buffers addressed by [`BufRef`] index, a virtual clock and an owner that
//! acknowledges metadata events after a latency. [`Sim::step`] advances to the next thing that
//! happens (a member I/O finishing, an acknowledgement, an engine timer); [`Sim::drive`] runs to
//! quiescence. Every I/O, event and completion is logged with its virtual time, so tests can check
//! orderings after the fact. Data moves at completion time: a write lands on the member when it
//! completes, a read copies the member's bytes at that moment.

use super::*;
use alloc::vec;
use alloc::vec::Vec;

/// Which member operation a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOp {
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// Flushes (the range is ignored).
    Flush,
}

/// An injected fault on one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What it hits.
    pub op: FaultOp,
    /// First sector of the bad range.
    pub sector: u64,
    /// Length of the bad range.
    pub sectors: u64,
    /// How many more I/Os fail (`u32::MAX`: forever).
    pub remaining: u32,
    /// A successful write over the whole range clears a read fault (a remapped sector).
    pub heal_on_write: bool,
}

impl Fault {
    /// Reads of the range fail until it is rewritten.
    pub fn media(sector: u64, sectors: u64) -> Self {
        Fault {
            op: FaultOp::Read,
            sector,
            sectors,
            remaining: u32::MAX,
            heal_on_write: true,
        }
    }
    /// Every read of the range fails, even after rewriting.
    pub fn read_forever(sector: u64, sectors: u64) -> Self {
        Fault {
            heal_on_write: false,
            ..Self::media(sector, sectors)
        }
    }
    /// Writes of the range fail.
    pub fn write(sector: u64, sectors: u64) -> Self {
        Fault {
            op: FaultOp::Write,
            sector,
            sectors,
            remaining: u32::MAX,
            heal_on_write: false,
        }
    }
    /// The next flush fails (once).
    pub fn flush_once() -> Self {
        Fault {
            op: FaultOp::Flush,
            sector: 0,
            sectors: 0,
            remaining: 1,
            heal_on_write: false,
        }
    }
}

/// One simulated member.
#[derive(Clone, Debug)]
pub struct SimMember {
    /// Its data area.
    pub data: Vec<u8>,
    /// Base latency of every I/O (ns).
    pub latency: u64,
    /// Injected faults.
    pub faults: Vec<Fault>,
    /// Flushes completed.
    pub flushes: u64,
    /// A queueing service model (one I/O at a time, FIFO): when set, an I/O completes when
    /// the model says, instead of after `latency` (+ jitter).
    pub service: Option<crate::device::ServiceModel>,
}

/// A member I/O as the simulator saw it.
#[derive(Clone, Copy, Debug)]
pub struct IoRecord {
    /// The I/O.
    pub io: MemberIo,
    /// When it was issued.
    pub issued: u64,
    /// When it completed (`u64::MAX` while in flight).
    pub done: u64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// The simulator.
#[derive(Debug)]
pub struct Sim {
    /// The engine under test.
    pub engine: Raid1,
    /// Virtual time (ns).
    pub now: u64,
    /// Members, by slot.
    pub members: Vec<SimMember>,
    /// Caller buffers; `BufRef(i)` is `bufs[i]`.
    pub bufs: Vec<Vec<u8>>,
    /// Completions as `(time, id, result)`.
    pub completed: Vec<(u64, ReqId, Result<(), ArrayIoError>)>,
    /// Events as `(time polled, event)`.
    pub events: Vec<(u64, Event)>,
    /// Acknowledgements as `(time, token)`.
    pub acks: Vec<(u64, MetaToken)>,
    /// Every member I/O, in issue order.
    pub io_log: Vec<IoRecord>,
    /// Acknowledge metadata events automatically.
    pub auto_ack: bool,
    /// Owner latency for a metadata write (ns).
    pub meta_latency: u64,
    /// Up to this much random extra latency per member I/O (ns).
    pub jitter: u64,
    rng: u64,
    inflight: Vec<(u64, usize)>,
    meta_inflight: Vec<(u64, MetaToken)>,
}

impl Sim {
    /// A simulator over `engine` with members of `member_sectors` sectors (zero-filled), 100 µs
    /// latency, 1 ms metadata latency, auto-acknowledgement and no jitter.
    pub fn new(engine: Raid1, member_sectors: u64) -> Self {
        let bytes = (member_sectors * crate::SECTOR_SIZE) as usize;
        let members = (0..engine.slots())
            .map(|_| SimMember {
                data: vec![0; bytes],
                latency: 100_000,
                faults: Vec::new(),
                flushes: 0,
                service: None,
            })
            .collect();
        Sim {
            engine,
            now: 0,
            members,
            bufs: Vec::new(),
            completed: Vec::new(),
            events: Vec::new(),
            acks: Vec::new(),
            io_log: Vec::new(),
            auto_ack: true,
            meta_latency: 1_000_000,
            jitter: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            inflight: Vec::new(),
            meta_inflight: Vec::new(),
        }
    }

    /// Seeds the jitter generator.
    pub fn seed(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Adds a caller buffer holding `data`.
    pub fn buffer(&mut self, data: Vec<u8>) -> BufRef {
        self.bufs.push(data);
        BufRef((self.bufs.len() - 1) as u64)
    }

    /// Submits a write of `data` (whole sectors) at `sector`.
    pub fn write(&mut self, sector: u64, data: &[u8]) -> Result<ReqId, SubmitError> {
        let sectors = data.len() as u64 / crate::SECTOR_SIZE;
        let b = self.buffer(data.to_vec());
        let r = self
            .engine
            .handle_submit(ArrayRequest::write(sector, sectors, b));
        self.pump();
        r
    }

    /// Submits a read; the data lands in the returned buffer.
    pub fn read(&mut self, sector: u64, sectors: u64) -> Result<(ReqId, BufRef), SubmitError> {
        let b = self.buffer(vec![0; (sectors * crate::SECTOR_SIZE) as usize]);
        let r = self
            .engine
            .handle_submit(ArrayRequest::read(sector, sectors, b));
        self.pump();
        r.map(|id| (id, b))
    }

    /// Submits any request.
    pub fn submit(&mut self, req: ArrayRequest) -> Result<ReqId, SubmitError> {
        let r = self.engine.handle_submit(req);
        self.pump();
        r
    }

    /// The result of request `id`, once completed.
    pub fn result(&self, id: ReqId) -> Option<Result<(), ArrayIoError>> {
        self.completed
            .iter()
            .find(|(_, i, _)| *i == id)
            .map(|(_, _, r)| *r)
    }

    /// Writes `data` at `sector` and runs until it completes.
    pub fn write_sync(&mut self, sector: u64, data: &[u8]) -> Option<Result<(), ArrayIoError>> {
        let id = self.write(sector, data).ok()?;
        self.run_until(|s| s.result(id).is_some());
        self.result(id)
    }

    /// Reads and runs until the read completes.
    pub fn read_sync(&mut self, sector: u64, sectors: u64) -> Result<Vec<u8>, ArrayIoError> {
        let Ok((id, b)) = self.read(sector, sectors) else {
            return Err(ArrayIoError::NoWorkingMember);
        };
        self.run_until(|s| s.result(id).is_some());
        match self.result(id) {
            Some(Ok(())) => Ok(self.bufs[b.0 as usize].clone()),
            Some(Err(e)) => Err(e),
            None => Err(ArrayIoError::NoWorkingMember),
        }
    }

    /// Drains the engine's outputs: issues member I/Os, records events and completions.
    pub fn pump(&mut self) {
        while let Some(io) = self.engine.poll_member_io() {
            let extra = if self.jitter > 0 {
                self.rand() % (self.jitter + 1)
            } else {
                0
            };
            let lat = self.members.get(io.member).map_or(0, |m| m.latency) + extra;
            let now = self.now;
            let done = match self
                .members
                .get_mut(io.member)
                .and_then(|m| m.service.as_mut())
            {
                Some(s) if io.kind == MemberIoKind::Flush => s.submit_flush(now),
                Some(s) => s.submit(
                    now,
                    io.sector * crate::SECTOR_SIZE,
                    io.sectors * crate::SECTOR_SIZE,
                ),
                None => now.saturating_add(lat),
            };
            self.io_log.push(IoRecord {
                io,
                issued: self.now,
                done: u64::MAX,
                ok: false,
            });
            self.inflight.push((done, self.io_log.len() - 1));
        }
        while let Some(ev) = self.engine.poll_event() {
            if self.auto_ack {
                // In-order durability: never acknowledge before an earlier event.
                let after = self.meta_inflight.last().map_or(0, |&(t, _)| t);
                let t = self.now.saturating_add(self.meta_latency).max(after);
                self.meta_inflight.push((t, ev.token()));
            }
            self.events.push((self.now, ev));
        }
        while let Some((id, r)) = self.engine.poll_completion() {
            self.completed.push((self.now, id, r));
        }
    }

    /// Acknowledges a metadata token by hand (when `auto_ack` is off).
    pub fn ack(&mut self, token: MetaToken) -> Result<(), EngineError> {
        self.acks.push((self.now, token));
        let r = self.engine.handle_metadata_done(token);
        self.pump();
        r
    }

    /// Advances to the next happening and processes everything due then. `false` when nothing
    /// is left to happen.
    pub fn step(&mut self) -> bool {
        self.pump();
        let next_io = self.inflight.iter().map(|&(t, _)| t).min();
        let next_meta = self.meta_inflight.iter().map(|&(t, _)| t).min();
        let next_timer = self.engine.poll_timeout();
        let Some(next) = [next_io, next_meta, next_timer].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(next);
        self.engine.handle_timeout(self.now);
        self.pump();
        // Member I/Os due now, in issue order.
        let mut due: Vec<usize> = self
            .inflight
            .iter()
            .filter(|&&(t, _)| t <= self.now)
            .map(|&(_, i)| i)
            .collect();
        due.sort_unstable();
        self.inflight.retain(|&(t, _)| t > self.now);
        for i in due {
            self.complete_io(i);
            self.pump();
        }
        let mut acks: Vec<(u64, MetaToken)> = Vec::new();
        self.meta_inflight.retain(|&(t, tok)| {
            if t <= self.now {
                acks.push((t, tok));
                false
            } else {
                true
            }
        });
        for (_, tok) in acks {
            self.acks.push((self.now, tok));
            let _ = self.engine.handle_metadata_done(tok);
            self.pump();
        }
        true
    }

    /// Runs to quiescence (including timers: clean marking, bitmap clearing). Returns steps.
    pub fn drive(&mut self) -> usize {
        let mut n = 0;
        while n < 10_000_000 && self.step() {
            n += 1;
        }
        n
    }

    /// Runs until `cond` holds or nothing is left to happen.
    pub fn run_until(&mut self, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        for _ in 0..10_000_000 {
            self.pump();
            if cond(self) {
                return true;
            }
            if !self.step() {
                return cond(self);
            }
        }
        false
    }

    /// Runs until no request, member I/O or metadata write is outstanding (timers may remain).
    pub fn settle(&mut self) -> bool {
        self.run_until(|s| {
            s.engine.requests_in_flight() == 0
                && s.engine.member_ios_in_flight() == 0
                && s.engine.repairs_in_flight() == 0
                && s.meta_inflight.is_empty()
        })
    }

    fn fault_hits(&mut self, member: usize, op: FaultOp, sector: u64, sectors: u64) -> bool {
        let Some(m) = self.members.get_mut(member) else {
            return true;
        };
        let end = sector.saturating_add(sectors);
        for f in m.faults.iter_mut() {
            let overlaps = op == FaultOp::Flush
                || (f.sector < end && sector < f.sector.saturating_add(f.sectors));
            if f.op == op && overlaps && f.remaining > 0 {
                if f.remaining != u32::MAX {
                    f.remaining -= 1;
                }
                return true;
            }
        }
        false
    }

    fn complete_io(&mut self, idx: usize) {
        let Some(rec) = self.io_log.get(idx).copied() else {
            return;
        };
        let io = rec.io;
        let off = (io.sector * crate::SECTOR_SIZE) as usize;
        let len = (io.sectors * crate::SECTOR_SIZE) as usize;
        let ok = match io.kind {
            MemberIoKind::Flush => {
                let failed = self.fault_hits(io.member, FaultOp::Flush, 0, 0);
                if !failed {
                    if let Some(m) = self.members.get_mut(io.member) {
                        m.flushes += 1;
                    }
                }
                !failed
            }
            MemberIoKind::Discard => true,
            MemberIoKind::Read => {
                if self.fault_hits(io.member, FaultOp::Read, io.sector, io.sectors) {
                    false
                } else {
                    let src = self.members[io.member].data[off..off + len].to_vec();
                    self.dst(io.buf, len).copy_from_slice(&src);
                    true
                }
            }
            MemberIoKind::Write => {
                if self.fault_hits(io.member, FaultOp::Write, io.sector, io.sectors) {
                    false
                } else {
                    let src = self.dst(io.buf, len).to_vec();
                    let m = &mut self.members[io.member];
                    m.data[off..off + len].copy_from_slice(&src);
                    let end = io.sector + io.sectors;
                    m.faults.retain(|f| {
                        !(f.op == FaultOp::Read
                            && f.heal_on_write
                            && f.sector >= io.sector
                            && f.sector + f.sectors <= end)
                    });
                    true
                }
            }
        };
        if let Some(r) = self.io_log.get_mut(idx) {
            r.done = self.now;
            r.ok = ok;
        }
        let result = if ok { Ok(()) } else { Err(MemberError::Io(5)) };
        let _ = self.engine.handle_member_completion(io.id, result);
    }

    fn dst(&mut self, buf: IoBuf, len: usize) -> &mut [u8] {
        match buf {
            IoBuf::Caller { buf, offset } => {
                let b = &mut self.bufs[buf.0 as usize];
                &mut b[offset as usize..offset as usize + len]
            }
            IoBuf::Scratch { index } => match self.engine.scratch_mut(index) {
                Some(s) => &mut s[..len],
                None => &mut [],
            },
            IoBuf::None => &mut [],
        }
    }
}
