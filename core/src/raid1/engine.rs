//! The [`Raid1`] state machine. See the module documentation of [`crate::raid1`].
//!
//! This file holds the engine's types and its public API (getters, `handle_*`, `poll_*`) with
//! request completion; the rest lives in one submodule per concept: `build` (construction),
//! `schedule` (ordered-request scheduling), `issue` (member-I/O issuing), `gates` (metadata
//! events and write gates), `repair` (read-error repair), `membership` (member changes) and
//! `sync` (sync actions).

use super::balance::{check_table, read_balance, Mirror};
use super::*;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::vec::Vec;
use core::cmp::Reverse;

mod build;
mod fast;
pub use fast::{DirectDone, FastReadStats, Submitted, DIRECT_BIT};
mod gates;
mod issue;
mod membership;
mod repair;
mod replace;
mod schedule;
mod sync;
#[cfg(test)]
mod tests;
use sync::{SyncBlock, SyncState};

/// Events beyond the per-request reserve: bitmap clears and repair outcomes share this budget.
const OPTIONAL_EVENTS: usize = 64;
/// Tokens reserved for sync events (checkpoints, the end of an action, members in sync).
const SYNC_EVENTS: usize = 8;
/// Bounded re-runs of the progress loop per input (each run must make progress to repeat).
const MAX_PROGRESS_ROUNDS: usize = 256;

const CHUNK_CLEAR: u8 = 0;
const CHUNK_SETTING: u8 = 1;
const CHUNK_SET: u8 = 2;

/// Member-I/O generations wrap within these bits (the id's two top bits stay free).
const IO_GEN_MASK: u32 = 0x3fff_ffff;

/// Waiter lists a request can sit on (bits of [`Req::listed`]).
const LIST_CONFLICT: u8 = 1;
const LIST_GATE: u8 = 2;
const LIST_POOL: u8 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Discard,
    Flush,
    Fix,
    Sync,
}

impl Op {
    fn writes(self) -> bool {
        // A sync block counts as a write: user I/O and sync blocks over the same range exclude
        // each other (md's barrier, reduced to range conflicts).
        matches!(self, Op::Write | Op::Discard | Op::Fix | Op::Sync)
    }
    fn user_write(self) -> bool {
        matches!(self, Op::Write | Op::Discard)
    }
}

/// A piece of a read still to be (re)issued.
#[derive(Clone, Copy, Debug)]
struct Piece {
    sector: u64,
    sectors: u64,
    blocked: u64,
    fix_targets: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FixStage {
    ReadSource,
    WriteTarget,
    Verify,
}

#[derive(Clone, Copy, Debug)]
struct Fix {
    target: usize,
    source: usize,
    scratch: usize,
    stage: FixStage,
    io_out: bool,
}

#[derive(Debug)]
struct Req {
    live: bool,
    gen: u32,
    op: Op,
    sector: u64,
    sectors: u64,
    fua: bool,
    buf: BufRef,
    buf_offset: u64,
    started: bool,
    cur_member: usize,
    cursor: u64,
    inflight: u32,
    retries: Vec<Piece>,
    error: Option<ArrayIoError>,
    ok_in_sync: bool,
    /// Members whose part of a write succeeded while they were in sync.
    ok_mask: u64,
    failed_mask: u64,
    degraded: bool,
    meta_wait: u32,
    settled: bool,
    bitmap_held: bool,
    fix: Option<Fix>,
    sync: Option<SyncBlock>,
    /// Position in submission order: `order` is sorted by it (unique, never reused).
    seq: u64,
    /// The progress round this request is queued for in `work` (0: none).
    queued_for: u64,
    /// The waiter lists it is on (`LIST_*` bits).
    listed: u8,
    /// Issued by the read fast path (`fast`): its one member I/O's success finishes it.
    fast: bool,
}

impl Req {
    /// Takes a free slot into use for a new request (the generation moves on, so stale
    /// completions for the slot's previous request are told apart).
    fn reset(
        &mut self,
        op: Op,
        sector: u64,
        sectors: u64,
        fua: bool,
        buf: BufRef,
        buf_offset: u64,
    ) {
        self.live = true;
        self.gen = self.gen.wrapping_add(1);
        self.op = op;
        self.sector = sector;
        self.sectors = sectors;
        self.fua = fua;
        self.buf = buf;
        self.buf_offset = buf_offset;
        self.started = false;
        self.cur_member = 0;
        self.cursor = sector;
        self.inflight = 0;
        self.retries.clear();
        self.error = None;
        self.ok_in_sync = false;
        self.ok_mask = 0;
        self.failed_mask = 0;
        self.degraded = false;
        self.meta_wait = 0;
        self.settled = false;
        self.bitmap_held = false;
        self.fix = None;
        self.sync = None;
        self.fast = false;
    }

    fn empty() -> Self {
        Req {
            live: false,
            gen: 0,
            op: Op::Read,
            sector: 0,
            sectors: 0,
            fua: false,
            buf: BufRef(0),
            buf_offset: 0,
            started: false,
            cur_member: 0,
            cursor: 0,
            inflight: 0,
            retries: Vec::new(),
            error: None,
            ok_in_sync: false,
            ok_mask: 0,
            failed_mask: 0,
            degraded: false,
            meta_wait: 0,
            settled: false,
            bitmap_held: false,
            fix: None,
            sync: None,
            seq: 0,
            queued_for: 0,
            listed: 0,
            fast: false,
        }
    }
    fn end(&self) -> u64 {
        self.sector.saturating_add(self.sectors)
    }
    fn all_issued(&self, slots: usize) -> bool {
        match self.op {
            Op::Read => self.cursor >= self.end() && self.retries.is_empty(),
            Op::Write | Op::Discard | Op::Flush => self.cur_member >= slots,
            Op::Fix => self.cursor >= self.end() && self.fix.is_none_or(|f| !f.io_out),
            Op::Sync => self.sync.is_none_or(|b| b.all_issued()),
        }
    }
}

/// A request's place in `order`: its range and conflict class kept inline, so the conflict
/// check and the lookups by `seq` scan a compact array instead of the request slots.
#[derive(Clone, Copy, Debug)]
struct OrderEntry {
    seq: u64,
    slot: usize,
    sector: u64,
    end: u64,
    /// Never conflicts (flush).
    flush: bool,
    /// Counts as a write for conflicts.
    writes: bool,
}

#[derive(Clone, Copy, Debug)]
struct IoSlot {
    live: bool,
    gen: u32,
    req: usize,
    member: usize,
    kind: MemberIoKind,
    sector: u64,
    sectors: u64,
    blocked: u64,
    fix_targets: u64,
    failfast: bool,
    epoch: u32,
    /// A direct read's buffer (`fast`; `req` is [`fast::DIRECT`]).
    buf: BufRef,
    buf_offset: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DirtyState {
    Clean,
    Dirtying(u64),
    Dirty,
    Cleaning(u64),
}

#[derive(Clone, Copy, Debug)]
enum Waiter {
    Dirty,
    Clean,
    BitmapSet {
        first: u64,
        count: u64,
    },
    Nothing,
    Req {
        slot: usize,
        gen: u32,
    },
    /// A replacement's `MemberInSync`: once recorded, its original `member` in `slot` retires.
    Retire {
        member: usize,
        slot: usize,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Chunk {
    state: u8,
    pending: u32,
    passes: u8,
    needed: bool,
}

#[derive(Debug)]
struct Bitmap {
    chunk_sectors: u64,
    daemon_sleep: u64,
    chunks: Vec<Chunk>,
}

/// The RAID1 engine. See the [module documentation](crate::raid1) for the call order.
#[derive(Debug)]
pub struct Raid1 {
    mirrors: Vec<Mirror>,
    array_sectors: u64,
    resync_offset: u64,
    max_requests: usize,
    max_read_errors: u32,
    safemode_delay: u64,
    fix_sectors: u64,
    reqs: Vec<Req>,
    free_reqs: Vec<usize>,
    /// Live requests in submission order (sorted by `seq`), with what the conflict check needs.
    order: VecDeque<OrderEntry>,
    user_live: usize,
    live_fixes: usize,
    ios: Vec<IoSlot>,
    free_ios: Vec<usize>,
    out_ios: VecDeque<MemberIo>,
    completions: VecDeque<(ReqId, Result<(), ArrayIoError>)>,
    events: VecDeque<Event>,
    pending_meta: Vec<(u64, Waiter, bool)>,
    /// Member failures not yet recorded: (`MemberFailed` token, member). Writes settling
    /// meanwhile wait for a round recording them (md holds write completions while a
    /// superblock change is pending).
    unrecorded_failures: Vec<(u64, usize)>,
    /// Members failed whose `MemberFailed` found no room in the token table (an owner holding
    /// acknowledgements back can fill it): emitted by the first progress call with room, and
    /// until then counted as unrecorded by settling writes.
    failures_owed: u64,
    meta_cap: usize,
    optional_pending: usize,
    next_token: u64,
    dirty: DirtyState,
    now: u64,
    safemode_deadline: Option<u64>,
    daemon_deadline: Option<u64>,
    bitmap: Option<Bitmap>,
    scratch: Vec<Vec<u8>>,
    scratch_busy: Vec<bool>,
    raid_disks: usize,
    /// Free sync buffers (indices into `scratch`, after the repair buffers).
    sync_free: Vec<usize>,
    sync_buffers: usize,
    sync_window: usize,
    sync_speed_min: u64,
    sync_speed_max: u64,
    /// Sync blocks in flight, in issue order: `(start, end, done)`.
    sync_blocks: VecDeque<(u64, u64, bool)>,
    sync: Option<SyncState>,
    /// A membership change may let a recovery start (md_check_recovery's spare scan).
    want_recovery: bool,
    /// A resync was interrupted by a member failure (or stopped by `stop_sync` without a
    /// freeze): restart it when possible.
    auto_resync: bool,
    /// md's MD_RECOVERY_FROZEN (`sync_action` `frozen`): no action starts on its own.
    frozen: bool,
    /// `mismatch_cnt` of the last check/repair.
    last_mismatch: u64,
    /// When the last user request was accepted (sync's idleness test).
    last_user_submit: Option<u64>,
    // Incremental progress (see `progress`).
    /// Next request sequence number.
    next_seq: u64,
    /// Requests in `order` whose op writes (user writes, discards, repairs, sync blocks).
    writers: usize,
    /// User writes and discards in `order`.
    user_writes: usize,
    /// Requests to visit: `(round, seq, slot)`, smallest first.
    work: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// The current (or last) progress round.
    round: u64,
    /// A round is running: wakes of requests after `cursor` join it.
    in_round: bool,
    /// Sequence number of the request visited last in this round (0: none yet).
    cursor: u64,
    /// The running round visits every request.
    full_now: bool,
    /// A global condition changed: the rest of this round and the next one visit everything.
    full_next: bool,
    /// An event could not be emitted: the next input rechecks every request.
    emit_starved: bool,
    /// Not started: an earlier conflicting request is active.
    conflict_waiters: Vec<usize>,
    /// Not started: a write waiting for the dirty or bitmap gate.
    gate_waiters: Vec<usize>,
    /// Started with member I/Os still to hand out (the pool ran dry).
    pool_waiters: Vec<usize>,
    /// The read fast path's switch and counters (`fast`).
    fast: fast::FastReads,
    /// Direct reads in flight (`fast`): counted in `user_live`, not in `order`.
    direct_live: usize,
    /// Tests: every round visits every request (the reference behaviour).
    #[cfg(test)]
    always_full: bool,
}

fn reserve<T>(v: &mut Vec<T>, n: usize) -> Result<(), EngineError> {
    v.try_reserve_exact(n).map_err(|_| EngineError::NoMemory)
}

/// Every slot holds an in-sync member.
fn fully_in_sync(mirrors: &[Mirror], raid_disks: usize) -> bool {
    (0..raid_disks).all(|s| mirrors.iter().any(|m| m.slot == Some(s) && m.is_in_sync()))
}

fn bit(i: usize) -> u64 {
    if i < 64 {
        1u64 << i
    } else {
        0
    }
}

impl Raid1 {
    // ---------------------------------------------------------------- getters

    /// Number of member slots.
    pub fn slots(&self) -> usize {
        self.mirrors.len()
    }

    /// Array size in sectors.
    pub fn array_sectors(&self) -> u64 {
        self.array_sectors
    }

    /// A member's state (`None` for a slot out of range).
    pub fn member_state(&self, member: usize) -> Option<PositionState> {
        self.mirrors.get(member).map(|m| m.state)
    }

    /// A member's counters.
    pub fn member_counters(&self, member: usize) -> Option<MemberCounters> {
        self.mirrors.get(member).map(|m| m.counters)
    }

    /// A member's bad ranges as the engine knows them (sorted, merged).
    pub fn bad_blocks(&self, member: usize) -> Option<&[(u64, u64)]> {
        self.mirrors
            .get(member)
            .and_then(|m| m.bb.as_ref())
            .map(|(r, _)| r.as_slice())
    }

    /// User requests submitted and not yet completed.
    pub fn requests_in_flight(&self) -> usize {
        self.user_live
    }

    /// Member I/Os handed out (or queued) and not completed.
    pub fn member_ios_in_flight(&self) -> usize {
        self.ios.len() - self.free_ios.len()
    }

    /// Read-error repairs running.
    pub fn repairs_in_flight(&self) -> usize {
        self.live_fixes
    }

    /// Metadata events emitted and not yet acknowledged.
    pub fn metadata_pending(&self) -> usize {
        self.pending_meta.len()
    }

    /// The array is marked clean (no `MarkDirty` needed before the next write).
    pub fn is_clean(&self) -> bool {
        self.dirty == DirtyState::Clean
    }

    /// Sectors below this are known in sync.
    pub fn resync_offset(&self) -> u64 {
        self.resync_offset
    }

    /// Whether bitmap chunk `chunk` is set (in memory, or being set).
    pub fn bitmap_chunk_set(&self, chunk: u64) -> Option<bool> {
        let b = self.bitmap.as_ref()?;
        let c = b.chunks.get(usize::try_from(chunk).ok()?)?;
        Some(c.state != CHUNK_CLEAR)
    }

    /// Scratch buffer `index` (the data of an [`IoBuf::Scratch`] write).
    pub fn scratch(&self, index: usize) -> Option<&[u8]> {
        self.scratch.get(index).map(|b| b.as_slice())
    }

    /// Scratch buffer `index`, for the driver to fill on an [`IoBuf::Scratch`] read.
    pub fn scratch_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        self.scratch.get_mut(index).map(|b| b.as_mut_slice())
    }

    /// The engine's current time (the latest `now` given to [`Raid1::handle_timeout`]).
    pub fn now(&self) -> u64 {
        self.now
    }

    // ---------------------------------------------------------------- commands

    /// Moves the known-in-sync boundary (the owner's resync progressed or restarted).
    pub fn set_resync_offset(&mut self, sector: u64) {
        self.resync_offset = sector;
        self.full_next = true;
    }

    // ---------------------------------------------------------------- inputs

    /// Submits an array request. On success the request is queued; its completion comes from
    /// [`Raid1::poll_completion`].
    pub fn handle_submit(&mut self, req: ArrayRequest) -> Result<ReqId, SubmitError> {
        self.submit(req, false).map(|s| s.id)
    }

    #[inline(always)]
    fn submit(&mut self, req: ArrayRequest, fast: bool) -> Result<Submitted, SubmitError> {
        let op = match req.kind {
            RequestKind::Read => Op::Read,
            RequestKind::Write => Op::Write,
            RequestKind::Flush => Op::Flush,
            RequestKind::Discard => Op::Discard,
        };
        let (sector, sectors) = self.check_request(&req, op)?;
        let Some(slot) = self.free_reqs.pop() else {
            return Err(SubmitError::Busy {
                max: self.max_requests,
            });
        };
        let Some(r) = self.reqs.get_mut(slot) else {
            return Err(SubmitError::Busy {
                max: self.max_requests,
            });
        };
        r.reset(op, sector, sectors, req.fua, req.buf, req.buf_offset);
        let id = self.req_id(slot);
        self.enlist(slot);
        self.user_live += 1;
        self.last_user_submit = Some(self.now);
        if fast && op == Op::Read && self.try_fast_read(slot) {
            return Ok(Submitted { id, fast: true });
        }
        self.wake(slot);
        self.progress();
        Ok(Submitted { id, fast: false })
    }

    /// A user request's range, checked: not empty (but a flush), within the array, its
    /// buffer offset not overflowing, and room under the request limit (finished requests
    /// not yet polled count).
    #[inline]
    fn check_request(&self, req: &ArrayRequest, op: Op) -> Result<(u64, u64), SubmitError> {
        let (sector, sectors) = if op == Op::Flush {
            (0, 0)
        } else {
            if req.sectors == 0 {
                return Err(SubmitError::Invalid("zero-length request"));
            }
            match req.sector.checked_add(req.sectors) {
                Some(end) if end <= self.array_sectors => {}
                _ => {
                    return Err(SubmitError::OutOfRange {
                        sector: req.sector,
                        sectors: req.sectors,
                        array_sectors: self.array_sectors,
                    })
                }
            }
            (req.sector, req.sectors)
        };
        if matches!(op, Op::Read | Op::Write)
            && sectors
                .checked_mul(crate::SECTOR_SIZE)
                .and_then(|b| b.checked_add(req.buf_offset))
                .is_none()
        {
            return Err(SubmitError::Invalid("buffer offset overflows"));
        }
        if self.user_live + self.completions.len() >= self.max_requests {
            return Err(SubmitError::Busy {
                max: self.max_requests,
            });
        }
        Ok((sector, sectors))
    }

    /// The id of the request in `slot` (its current generation).
    #[inline]
    fn req_id(&self, slot: usize) -> ReqId {
        ReqId(((self.reqs[slot].gen as u64) << 32) | slot as u64)
    }

    /// Reports a member I/O's outcome.
    pub fn handle_member_completion(
        &mut self,
        id: MemberIoId,
        result: Result<(), MemberError>,
    ) -> Result<(), EngineError> {
        let slot = (id.0 & 0xffff_ffff) as usize;
        let gen = (id.0 >> 32) as u32;
        let io = match self.ios.get_mut(slot) {
            Some(io) if io.live && io.gen == gen => {
                io.live = false;
                *io
            }
            _ => return Err(EngineError::UnknownMemberIo(id.0)),
        };
        // The I/O may still sit in the output queue if the driver completes without polling;
        // that is misuse but must not corrupt state.
        if !self.out_ios.is_empty() {
            self.out_ios.retain(|m| m.id != id);
        }
        self.free_ios.push(slot);
        // Pool space: requests that ran out of member I/Os may continue.
        self.wake_list(LIST_POOL);
        let (stale, result) = self.count_member_completion(&io, result);
        let Some(req) = self.reqs.get_mut(io.req) else {
            return Err(EngineError::Unreachable("member I/O without request"));
        };
        if !req.live {
            return Err(EngineError::Unreachable("member I/O of a finished request"));
        }
        req.inflight = req.inflight.saturating_sub(1);
        let op = req.op;
        // User requests are woken below, once this completion is recorded.
        let user = matches!(op, Op::Read | Op::Write | Op::Discard | Op::Flush);
        if !user {
            self.wake(io.req);
        }
        match op {
            Op::Read => match result {
                Ok(()) => {
                    let targets = io.fix_targets;
                    if targets != 0 {
                        for t in 0..self.mirrors.len() {
                            if targets & bit(t) != 0 {
                                self.spawn_fix(t, io.member, io.sector, io.sectors);
                            }
                        }
                    }
                }
                Err(_) => {
                    if !stale {
                        self.note_read_error(io.member, io.failfast);
                    }
                    let still = self
                        .mirrors
                        .get(io.member)
                        .is_some_and(|m| m.state.is_working());
                    let piece = Piece {
                        sector: io.sector,
                        sectors: io.sectors,
                        blocked: io.blocked | bit(io.member),
                        fix_targets: io.fix_targets
                            | if still && !stale { bit(io.member) } else { 0 },
                    };
                    let req = &mut self.reqs[io.req];
                    if req.retries.try_reserve(1).is_ok() {
                        req.retries.push(piece);
                    } else {
                        req.error
                            .get_or_insert(ArrayIoError::ReadFailed { sector: io.sector });
                    }
                }
            },
            Op::Write | Op::Discard => match result {
                Ok(()) => {
                    if op == Op::Discard {
                        self.reqs[io.req].ok_in_sync = true;
                    } else if self.mirrors.get(io.member).is_some_and(|m| m.is_in_sync()) {
                        let r = &mut self.reqs[io.req];
                        r.ok_in_sync = true;
                        r.ok_mask |= bit(io.member);
                    } else if !stale
                        && self
                            .mirrors
                            .get(io.member)
                            .is_some_and(|m| m.state.is_working())
                    {
                        // A recovering member (a replacement) that took the write holds it:
                        // should it come in sync before the write finishes (its original
                        // retired meanwhile), the write is done on it.
                        self.reqs[io.req].ok_mask |= bit(io.member);
                    }
                }
                Err(_) => {
                    if op == Op::Discard {
                        // md ignores discard errors.
                        self.reqs[io.req].ok_in_sync = true;
                    } else if !stale {
                        self.reqs[io.req].failed_mask |= bit(io.member);
                    }
                }
            },
            // md treats a failed flush like a failed write: the member is failed, and the flush
            // succeeds while an in-sync member made its cache durable.
            Op::Flush => match result {
                Ok(()) => {
                    if self.mirrors.get(io.member).is_some_and(|m| m.is_in_sync()) {
                        self.reqs[io.req].ok_in_sync = true;
                    }
                }
                // A flush to a member removed since: ignored.
                Err(_) if stale => {}
                Err(_) => {
                    let r = &mut self.reqs[io.req];
                    r.failed_mask |= bit(io.member);
                    r.error
                        .get_or_insert(ArrayIoError::FlushFailed { member: io.member });
                }
            },
            Op::Fix if stale => {
                // The member left: drop the rest of the repair.
                let r = &mut self.reqs[io.req];
                r.cursor = r.end();
                if let Some(f) = r.fix.as_mut() {
                    f.io_out = false;
                }
            }
            Op::Fix => self.fix_step_done(io.req, result.is_ok()),
            Op::Sync => self.sync_io_done(io.req, io.member, io.kind, result.is_ok(), stale),
        }
        if self.reqs[io.req].fast && self.fast_read_done(io.req, result.is_ok()) {
            return Ok(());
        }
        if user {
            // A user request with everything handed out and other member I/Os still out has
            // nothing to do until the last one completes: a visit would change nothing.
            let slots = self.mirrors.len();
            let r = &self.reqs[io.req];
            if r.inflight == 0 || !r.all_issued(slots) {
                self.wake(io.req);
            }
        }
        self.progress();
        Ok(())
    }

    /// Acknowledges a metadata event: the owner made it durable.
    pub fn handle_metadata_done(&mut self, token: MetaToken) -> Result<(), EngineError> {
        let Some(pos) = self.pending_meta.iter().position(|&(t, _, _)| t == token.0) else {
            return Err(EngineError::UnknownToken(token.0));
        };
        let (_, waiter, optional) = self.pending_meta.swap_remove(pos);
        self.unrecorded_failures.retain(|&(t, _)| t != token.0);
        if optional {
            self.optional_pending = self.optional_pending.saturating_sub(1);
        }
        match waiter {
            Waiter::Dirty => {
                if self.dirty == DirtyState::Dirtying(token.0) {
                    self.dirty = DirtyState::Dirty;
                }
            }
            Waiter::Clean => {
                if self.dirty == DirtyState::Cleaning(token.0) {
                    self.dirty = DirtyState::Clean;
                }
            }
            Waiter::BitmapSet { first, count } => {
                if let Some(b) = self.bitmap.as_mut() {
                    for c in first..first.saturating_add(count) {
                        if let Some(ch) = b.chunks.get_mut(c as usize) {
                            if ch.state == CHUNK_SETTING {
                                ch.state = CHUNK_SET;
                            }
                        }
                    }
                }
            }
            Waiter::Nothing => {}
            Waiter::Retire { member, slot } => self.retire(member, slot),
            Waiter::Req { slot, gen } => {
                if let Some(r) = self.reqs.get_mut(slot) {
                    if r.live && r.gen == gen {
                        r.meta_wait = r.meta_wait.saturating_sub(1);
                        self.wake(slot);
                    }
                }
            }
        }
        // Writes held at the dirty or bitmap gate look again (any acknowledgement may be the
        // one they wait for, and it frees token space).
        self.wake_list(LIST_GATE);
        self.progress();
        Ok(())
    }

    /// Time has advanced to `now` (ns, any epoch, monotonic). Runs due timers.
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = self.now.max(now);
        if self.safemode_deadline.is_some_and(|d| d <= self.now) {
            self.safemode_deadline = None;
            if self.dirty == DirtyState::Dirty && !self.any_user_write() {
                if let Some(t) = self.emit(|token| Event::MarkClean { token }, Waiter::Clean, false)
                {
                    self.dirty = DirtyState::Cleaning(t);
                }
            }
        }
        if self.daemon_deadline.is_some_and(|d| d <= self.now) {
            self.daemon_deadline = None;
            self.daemon_pass();
        }
        // Timers are rare (drivers feed the clock at a coarse granularity): look at everything.
        self.full_next = true;
        self.progress();
    }

    // ---------------------------------------------------------------- outputs

    /// The next member I/O to issue.
    #[must_use]
    #[inline]
    pub fn poll_member_io(&mut self) -> Option<MemberIo> {
        self.out_ios.pop_front()
    }

    /// The next finished array request.
    #[must_use]
    #[inline]
    pub fn poll_completion(&mut self) -> Option<(ReqId, Result<(), ArrayIoError>)> {
        self.completions.pop_front()
    }

    /// The next metadata event for the owner.
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Raid1::handle_timeout`] next (absolute ns), if a timer is armed.
    #[must_use]
    #[inline]
    pub fn poll_timeout(&self) -> Option<u64> {
        // (Asked on every pass of a driver: no iterator chain.)
        #[inline(always)]
        fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, None) => a,
                (None, b) => b,
            }
        }
        let sync = self.sync.as_ref().and_then(|s| s.wake);
        min(min(self.safemode_deadline, self.daemon_deadline), sync)
    }

    // ---------------------------------------------------------------- internals

    fn any_user_write(&self) -> bool {
        self.user_writes > 0
    }

    fn in_sync_count(&self) -> usize {
        self.mirrors.iter().filter(|m| m.is_in_sync()).count()
    }

    /// Counts a member I/O's completion on its member: no longer pending, the head moved by
    /// a read or write that succeeded, an error counted. An I/O to a member removed (and
    /// maybe replaced) since it was issued is stale: accepted, its data and outcome ignored
    /// (reported as an error, counted nowhere). Returns (stale, the outcome to act on).
    fn count_member_completion(
        &mut self,
        io: &IoSlot,
        result: Result<(), MemberError>,
    ) -> (bool, Result<(), MemberError>) {
        let stale = self
            .mirrors
            .get(io.member)
            .is_none_or(|m| m.epoch != io.epoch);
        let result = if stale {
            Err(MemberError::Io(5))
        } else {
            result
        };
        if let Some(m) = self.mirrors.get_mut(io.member).filter(|_| !stale) {
            m.counters.pending = m.counters.pending.saturating_sub(1);
            if result.is_ok() && matches!(io.kind, MemberIoKind::Read | MemberIoKind::Write) {
                m.head_position = io.sector.saturating_add(io.sectors);
            }
            if result.is_err() {
                m.counters.errors += 1;
            }
        }
        (stale, result)
    }

    fn finish(&mut self, slot: usize) {
        // A write is done only while a mirror that took it is still in sync: one that failed
        // after taking it (by another I/O) no longer holds the array's data, and a survivor
        // whose own write failed but could be neither recorded bad nor failed (the last
        // mirror) does not have it.
        let in_sync_mask = |mirrors: &[Mirror]| {
            mirrors
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_in_sync())
                .fold(0u64, |acc, (i, _)| acc | bit(i))
        };
        let (op, result, degraded, held, sector, end) = {
            let r = &mut self.reqs[slot];
            r.live = false;
            let result = match r.op {
                Op::Write if r.ok_mask & in_sync_mask(&self.mirrors) == 0 => {
                    Err(ArrayIoError::WriteFailed { sector: r.sector })
                }
                Op::Flush if r.ok_in_sync => Ok(()),
                _ => r.error.map_or(Ok(()), Err),
            };
            (r.op, result, r.degraded, r.bitmap_held, r.sector, r.end())
        };
        let seq = self.reqs[slot].seq;
        // Requests mostly finish oldest first: try the front before searching.
        if self.order.front().is_some_and(|e| e.seq == seq) {
            self.order.pop_front();
        } else if let Ok(idx) = self.order.binary_search_by_key(&seq, |e| e.seq) {
            self.order.remove(idx);
        }
        self.unlisten(slot);
        if op.writes() {
            self.writers = self.writers.saturating_sub(1);
        }
        if op.user_write() {
            self.user_writes = self.user_writes.saturating_sub(1);
        }
        // Later requests held back by this one may start.
        if op != Op::Flush && !self.conflict_waiters.is_empty() {
            let mut i = 0;
            while let Some(&w) = self.conflict_waiters.get(i) {
                let r = &self.reqs[w];
                if r.seq > seq
                    && (op.writes() || r.op.writes())
                    && r.sector < end
                    && sector < r.end()
                {
                    self.conflict_waiters.swap_remove(i);
                    self.reqs[w].listed &= !LIST_CONFLICT;
                    self.wake(w);
                } else {
                    i += 1;
                }
            }
        }
        self.free_reqs.push(slot);
        if op == Op::Sync {
            self.sync_block_finished(slot);
            return;
        }
        if op == Op::Fix {
            if let Some(f) = self.reqs[slot].fix.take() {
                if let Some(b) = self.scratch_busy.get_mut(f.scratch) {
                    *b = false;
                }
            }
            self.live_fixes = self.live_fixes.saturating_sub(1);
            return;
        }
        self.user_live = self.user_live.saturating_sub(1);
        self.completions.push_back((self.req_id(slot), result));
        if !op.user_write() {
            return;
        }
        if held {
            if let Some(b) = self.bitmap.as_mut() {
                let (c0, c1) = (sector / b.chunk_sectors, (end - 1) / b.chunk_sectors);
                for c in c0..=c1 {
                    if let Some(ch) = b.chunks.get_mut(c as usize) {
                        ch.pending = ch.pending.saturating_sub(1);
                        ch.passes = 0;
                        if degraded {
                            ch.needed = true;
                        }
                    }
                }
                if self.daemon_deadline.is_none() {
                    self.daemon_deadline = Some(self.now.saturating_add(b.daemon_sleep));
                }
            }
        }
        if !self.any_user_write() {
            self.safemode_deadline = Some(self.now.saturating_add(self.safemode_delay));
        }
    }
}
