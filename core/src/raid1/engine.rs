//! The [`Raid1`] state machine. See the module documentation of [`crate::raid1`].

use super::balance::{check_table, read_balance, Mirror};
use super::*;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::vec::Vec;
use core::cmp::Reverse;

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
        self.failed_mask = 0;
        self.degraded = false;
        self.meta_wait = 0;
        self.settled = false;
        self.bitmap_held = false;
        self.fix = None;
        self.sync = None;
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
    BitmapSet { first: u64, count: u64 },
    Nothing,
    Req { slot: usize, gen: u32 },
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
    /// A resync was interrupted by a member failure: restart it when possible.
    auto_resync: bool,
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
    /// Builds an engine, sizing every pool from `config`.
    pub fn new(config: Raid1Config) -> Result<Raid1, EngineError> {
        let slots = config.members.len();
        if slots == 0 || slots > MAX_SLOTS {
            return Err(EngineError::InvalidConfig("slots must be 1..=64"));
        }
        if config.raid_disks == 0 || config.raid_disks > slots {
            return Err(EngineError::InvalidConfig(
                "raid_disks must be 1..=members.len()",
            ));
        }
        if config.sync_buffers > 4096 || config.sync_window > 4096 {
            return Err(EngineError::InvalidConfig("sync pool too large"));
        }
        if config.sync_buffers > 0 && config.sync_window == 0 {
            return Err(EngineError::InvalidConfig("sync window of zero blocks"));
        }
        if config.sync_speed_max_kib == 0 || config.sync_speed_min_kib > config.sync_speed_max_kib {
            return Err(EngineError::InvalidConfig("sync speed limits inconsistent"));
        }
        if config.array_sectors == 0 {
            return Err(EngineError::InvalidConfig("array size is zero"));
        }
        if config.max_requests == 0 || config.max_member_ios == 0 {
            return Err(EngineError::InvalidConfig("pool sizes must be non-zero"));
        }
        if config.max_requests > u32::MAX as usize / 2
            || config.max_member_ios > u32::MAX as usize / 2
            || config.fix_buffers > 4096
        {
            return Err(EngineError::InvalidConfig("pool size too large"));
        }
        let fix_bytes = config
            .fix_buffer_sectors
            .checked_mul(crate::SECTOR_SIZE)
            .and_then(|b| usize::try_from(b).ok())
            .filter(|&b| b <= 16 << 20)
            .ok_or(EngineError::InvalidConfig("fix buffer too large"))?;
        if config.fix_buffers > 0 && fix_bytes == 0 {
            return Err(EngineError::InvalidConfig("fix buffers of zero sectors"));
        }

        let mut mirrors = Vec::new();
        reserve(&mut mirrors, slots)?;
        for (i, m) in config.members.iter().enumerate() {
            if m.present && !m.spare && i >= config.raid_disks {
                return Err(EngineError::InvalidConfig(
                    "members past raid_disks must be spares or missing",
                ));
            }
            let state = if !m.present {
                MemberState::Missing
            } else if m.spare {
                MemberState::Spare
            } else if m.in_sync {
                MemberState::InSync
            } else {
                MemberState::Recovering {
                    recovery_offset: m.recovery_offset,
                }
            };
            let bb = match &m.bad_blocks {
                None => None,
                Some(t) => {
                    if !check_table(t) {
                        return Err(EngineError::InvalidConfig(
                            "bad-block list unsorted, overlapping or over capacity",
                        ));
                    }
                    let mut r = Vec::new();
                    reserve(&mut r, t.capacity.saturating_add(1).max(t.ranges.len()))?;
                    r.extend_from_slice(&t.ranges);
                    Some((r, t.capacity))
                }
            };
            mirrors.push(Mirror {
                state,
                write_mostly: m.write_mostly,
                failfast: m.failfast,
                rotational: m.rotational,
                bb,
                head_position: 0,
                next_seq_sect: u64::MAX,
                seq_start: u64::MAX,
                counters: MemberCounters::default(),
                last_read_error: None,
                slot: if state.is_working() { Some(i) } else { None },
                epoch: 0,
                bitmap_below: if state.is_working() && !m.in_sync {
                    m.bitmap_recovery_below
                } else {
                    0
                },
            });
        }

        let sync_window = if config.sync_buffers == 0 {
            0
        } else {
            config.sync_window
        };
        let total_reqs = config.max_requests + config.fix_buffers + sync_window;
        let mut reqs = Vec::new();
        reserve(&mut reqs, total_reqs)?;
        for _ in 0..total_reqs {
            let mut r = Req::empty();
            reserve(&mut r.retries, 4)?;
            reqs.push(r);
        }
        let mut free_reqs = Vec::new();
        reserve(&mut free_reqs, total_reqs)?;
        free_reqs.extend((0..total_reqs).rev());
        let mut order = VecDeque::new();
        order
            .try_reserve_exact(total_reqs)
            .map_err(|_| EngineError::NoMemory)?;
        let mut work = BinaryHeap::new();
        work.try_reserve_exact(2 * total_reqs + 2)
            .map_err(|_| EngineError::NoMemory)?;
        let mut conflict_waiters = Vec::new();
        reserve(&mut conflict_waiters, total_reqs)?;
        let mut gate_waiters = Vec::new();
        reserve(&mut gate_waiters, total_reqs)?;
        let mut pool_waiters = Vec::new();
        reserve(&mut pool_waiters, total_reqs)?;

        let mut ios = Vec::new();
        reserve(&mut ios, config.max_member_ios)?;
        for _ in 0..config.max_member_ios {
            ios.push(IoSlot {
                live: false,
                gen: 0,
                req: 0,
                member: 0,
                kind: MemberIoKind::Read,
                sector: 0,
                sectors: 0,
                blocked: 0,
                fix_targets: 0,
                failfast: false,
                epoch: 0,
            });
        }
        let mut free_ios = Vec::new();
        reserve(&mut free_ios, config.max_member_ios)?;
        free_ios.extend((0..config.max_member_ios).rev());
        let mut out_ios = VecDeque::new();
        out_ios
            .try_reserve_exact(config.max_member_ios)
            .map_err(|_| EngineError::NoMemory)?;
        let mut completions = VecDeque::new();
        completions
            .try_reserve_exact(config.max_requests)
            .map_err(|_| EngineError::NoMemory)?;

        // Mandatory tokens: dirty + clean, one bitmap set and one event per slot per request,
        // one member failure per slot; plus the optional budget.
        // Sync blocks reserve one event per slot each, like requests, plus the sync events.
        let meta_cap = (config.max_requests + sync_window)
            .saturating_mul(slots + 1)
            .saturating_add(slots + 2 + OPTIONAL_EVENTS)
            .saturating_add(SYNC_EVENTS + 2 * slots);
        let mut events = VecDeque::new();
        events
            .try_reserve_exact(meta_cap)
            .map_err(|_| EngineError::NoMemory)?;
        let mut pending_meta = Vec::new();
        reserve(&mut pending_meta, meta_cap)?;

        let mut scratch = Vec::new();
        reserve(&mut scratch, config.fix_buffers + config.sync_buffers)?;
        for _ in 0..config.fix_buffers {
            let mut b = Vec::new();
            reserve(&mut b, fix_bytes)?;
            b.resize(fix_bytes, 0);
            scratch.push(b);
        }
        let sync_bytes = (SYNC_BLOCK_SECTORS * crate::SECTOR_SIZE) as usize;
        let mut sync_free = Vec::new();
        reserve(&mut sync_free, config.sync_buffers)?;
        for i in 0..config.sync_buffers {
            let mut b = Vec::new();
            reserve(&mut b, sync_bytes)?;
            b.resize(sync_bytes, 0);
            scratch.push(b);
            sync_free.push(config.fix_buffers + config.sync_buffers - 1 - i);
        }
        let mut sync_blocks = VecDeque::new();
        sync_blocks
            .try_reserve_exact(sync_window)
            .map_err(|_| EngineError::NoMemory)?;
        let mut scratch_busy = Vec::new();
        reserve(&mut scratch_busy, config.fix_buffers)?;
        scratch_busy.resize(config.fix_buffers, false);

        let all_in_sync = fully_in_sync(&mirrors, config.raid_disks);
        let bitmap = match &config.bitmap {
            None => None,
            Some(b) => {
                if b.chunk_sectors == 0 || b.daemon_sleep_ns == 0 {
                    return Err(EngineError::InvalidConfig(
                        "bitmap chunk or daemon period zero",
                    ));
                }
                let n = config.array_sectors.div_ceil(b.chunk_sectors);
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= 1 << 28)
                    .ok_or(EngineError::InvalidConfig("too many bitmap chunks"))?;
                let mut chunks = Vec::new();
                reserve(&mut chunks, n)?;
                chunks.resize(n, Chunk::default());
                for &(first, count) in &b.set_chunks {
                    let end = first.saturating_add(count).min(n as u64);
                    for c in first..end {
                        if let Some(ch) = chunks.get_mut(c as usize) {
                            ch.state = CHUNK_SET;
                            ch.needed = !all_in_sync;
                        }
                    }
                }
                Some(Bitmap {
                    chunk_sectors: b.chunk_sectors,
                    daemon_sleep: b.daemon_sleep_ns,
                    chunks,
                })
            }
        };

        let mut e = Raid1 {
            mirrors,
            array_sectors: config.array_sectors,
            resync_offset: config.resync_offset,
            max_requests: config.max_requests,
            max_read_errors: config.max_read_errors,
            safemode_delay: config.safemode_delay_ns,
            fix_sectors: config.fix_buffer_sectors,
            reqs,
            free_reqs,
            order,
            user_live: 0,
            live_fixes: 0,
            ios,
            free_ios,
            out_ios,
            completions,
            events,
            pending_meta,
            meta_cap,
            optional_pending: 0,
            next_token: 1,
            dirty: if config.start_clean {
                DirtyState::Clean
            } else {
                DirtyState::Dirty
            },
            now: 0,
            safemode_deadline: None,
            daemon_deadline: None,
            bitmap,
            scratch,
            scratch_busy,
            raid_disks: config.raid_disks,
            sync_free,
            sync_buffers: config.sync_buffers,
            sync_window,
            sync_speed_min: config.sync_speed_min_kib,
            sync_speed_max: config.sync_speed_max_kib,
            sync_blocks,
            sync: None,
            want_recovery: false,
            auto_resync: false,
            last_mismatch: 0,
            last_user_submit: None,
            next_seq: 1,
            writers: 0,
            user_writes: 0,
            work,
            round: 0,
            in_round: false,
            cursor: 0,
            full_now: false,
            full_next: false,
            emit_starved: false,
            conflict_waiters,
            gate_waiters,
            pool_waiters,
            #[cfg(test)]
            always_full: false,
        };
        if !config.start_clean {
            e.safemode_deadline = Some(e.safemode_delay);
        }
        if let Some(b) = &e.bitmap {
            if b.chunks.iter().any(|c| c.state == CHUNK_SET) {
                e.daemon_deadline = Some(b.daemon_sleep);
            }
        }
        Ok(e)
    }

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
    pub fn member_state(&self, member: usize) -> Option<MemberState> {
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
        let op = match req.kind {
            RequestKind::Read => Op::Read,
            RequestKind::Write => Op::Write,
            RequestKind::Flush => Op::Flush,
            RequestKind::Discard => Op::Discard,
        };
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
        let id = ReqId(((r.gen as u64) << 32) | slot as u64);
        self.push_order(slot);
        self.user_live += 1;
        self.last_user_submit = Some(self.now);
        self.progress();
        Ok(id)
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
        // An I/O to a member that was removed (and maybe replaced) since it was issued: the
        // completion is accepted, its data and outcome are ignored.
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
                    if op == Op::Discard
                        || self.mirrors.get(io.member).is_some_and(|m| m.is_in_sync())
                    {
                        self.reqs[io.req].ok_in_sync = true;
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
    pub fn poll_member_io(&mut self) -> Option<MemberIo> {
        self.out_ios.pop_front()
    }

    /// The next finished array request.
    #[must_use]
    pub fn poll_completion(&mut self) -> Option<(ReqId, Result<(), ArrayIoError>)> {
        self.completions.pop_front()
    }

    /// The next metadata event for the owner.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Raid1::handle_timeout`] next (absolute ns), if a timer is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        [
            self.safemode_deadline,
            self.daemon_deadline,
            self.sync.as_ref().and_then(|s| s.wake),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---------------------------------------------------------------- internals

    fn any_user_write(&self) -> bool {
        self.user_writes > 0
    }

    fn in_sync_count(&self) -> usize {
        self.mirrors.iter().filter(|m| m.is_in_sync()).count()
    }

    /// Queues an event; `None` when the token table is full (or the optional budget spent).
    fn emit(
        &mut self,
        make: impl FnOnce(MetaToken) -> Event,
        waiter: Waiter,
        optional: bool,
    ) -> Option<u64> {
        if self.pending_meta.len() >= self.meta_cap
            || (optional && self.optional_pending >= OPTIONAL_EVENTS)
            || self.events.len() >= self.events.capacity()
        {
            // Whoever wanted this event retries when space frees: recheck everything then.
            self.emit_starved = true;
            return None;
        }
        let t = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        self.pending_meta.push((t, waiter, optional));
        self.events.push_back(make(MetaToken(t)));
        if optional {
            self.optional_pending += 1;
        }
        Some(t)
    }

    /// Fails `m` unless it is the last in-sync member. Emits `MemberFailed` and returns its token.
    fn fail_member_inner(&mut self, m: usize, waiter: Waiter, optional: bool) -> Option<u64> {
        let in_sync = self.in_sync_count();
        let mirror = self.mirrors.get_mut(m)?;
        if !mirror.state.is_working() || (mirror.is_in_sync() && in_sync <= 1) {
            return None;
        }
        mirror.state = MemberState::Faulty;
        mirror.slot = None;
        self.full_next = true;
        self.member_lost();
        self.emit(
            |token| Event::MemberFailed { token, member: m },
            waiter,
            optional,
        )
    }

    fn note_read_error(&mut self, member: usize, failfast_ok: bool) {
        let now = self.now;
        let max = self.max_read_errors;
        let Some(m) = self.mirrors.get_mut(member) else {
            return;
        };
        if let Some(last) = m.last_read_error {
            let hours = now.saturating_sub(last) / READ_ERROR_DECAY_NS;
            m.counters.read_errors = if hours >= 32 {
                0
            } else {
                m.counters.read_errors >> hours
            };
        }
        m.last_read_error = Some(now);
        m.counters.read_errors = m.counters.read_errors.saturating_add(1);
        if m.counters.read_errors > max || (failfast_ok && m.failfast) {
            let _ = self.fail_member_inner(member, Waiter::Nothing, false);
        }
    }

    /// Hands out a member I/O; `false` when the pool is empty.
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &mut self,
        req: usize,
        member: usize,
        kind: MemberIoKind,
        sector: u64,
        sectors: u64,
        buf: IoBuf,
        fua: bool,
        blocked: u64,
        fix_targets: u64,
        failfast: bool,
    ) -> bool {
        let Some(slot) = self.free_ios.pop() else {
            return false;
        };
        let Some(io) = self.ios.get_mut(slot) else {
            return false;
        };
        io.live = true;
        io.gen = io.gen.wrapping_add(1);
        io.req = req;
        io.member = member;
        io.kind = kind;
        io.sector = sector;
        io.sectors = sectors;
        io.blocked = blocked;
        io.fix_targets = fix_targets;
        io.failfast = failfast;
        io.epoch = self.mirrors.get(member).map_or(0, |m| m.epoch);
        let id = MemberIoId(((io.gen as u64) << 32) | slot as u64);
        if let Some(m) = self.mirrors.get_mut(member) {
            let c = &mut m.counters;
            c.pending = c.pending.saturating_add(1);
            match kind {
                MemberIoKind::Read => {
                    c.reads += 1;
                    c.read_sectors += sectors;
                }
                MemberIoKind::Write => {
                    c.writes += 1;
                    c.write_sectors += sectors;
                }
                _ => {}
            }
        }
        if let Some(r) = self.reqs.get_mut(req) {
            r.inflight += 1;
        }
        self.out_ios.push_back(MemberIo {
            id,
            member,
            kind,
            sector,
            sectors,
            fua,
            buf,
        });
        true
    }

    /// Moves every request that can move, in submission order, in rounds until a round changes
    /// nothing (each round first runs the sync scheduler).
    ///
    /// The rounds are those of a full pass over `order`, but a round only visits the requests
    /// whose state this input (or an earlier visit) may have changed: every other request would
    /// do nothing. A request not visited waits for exactly one of: an earlier conflicting
    /// request to finish (`conflict_waiters`), a dirty/bitmap acknowledgement
    /// (`gate_waiters`), member-I/O pool space (`pool_waiters`), its own member I/Os or its own
    /// metadata tokens; the inputs that end those waits queue it in `work`. Rare global changes
    /// (timers, membership and bad-block changes, exhausted event space, sync actions and
    /// repairs running) fall back to visiting everything.
    fn progress(&mut self) {
        #[cfg(test)]
        let reference = self.always_full;
        #[cfg(not(test))]
        let reference = false;
        // Nothing queued and nothing global to look at: a round would visit nobody and the
        // sync scheduler would not start (e.g. a member completion with more I/Os to come).
        if !self.emit_starved && !reference && self.next_round_idle() {
            return;
        }
        if core::mem::take(&mut self.emit_starved) {
            self.full_next = true;
        }
        for _ in 0..MAX_PROGRESS_ROUNDS {
            self.round += 1;
            self.in_round = true;
            self.cursor = 0;
            self.full_now = false;
            let mut changed = self.sync_tick();
            self.full_now =
                core::mem::take(&mut self.full_next) || self.sync.is_some() || self.live_fixes > 0;
            #[cfg(test)]
            {
                self.full_now |= self.always_full;
            }
            if !self.full_now {
                changed |= self.sparse_round();
            }
            if self.full_now {
                changed |= self.full_round();
            }
            self.end_round();
            if !changed || self.next_round_idle() {
                break;
            }
        }
    }

    /// The next round would change nothing: nothing queued, no global change, and the sync
    /// scheduler has nothing to start or run.
    fn next_round_idle(&self) -> bool {
        self.work.is_empty()
            && !self.full_next
            && self.sync.is_none()
            && !self.want_recovery
            && !self.auto_resync
            && self.live_fixes == 0
    }

    /// Visits the queued requests of this round in order; stops early (with `full_now` set)
    /// when a visit changed a global condition.
    fn sparse_round(&mut self) -> bool {
        let mut changed = false;
        while let Some(&Reverse((round, seq, slot))) = self.work.peek() {
            if self.full_next {
                self.full_now = true;
                break;
            }
            if round > self.round {
                break;
            }
            if self.work.len() == 1 {
                // The peeked entry is the only one: dropping it needs no sift.
                self.work.clear();
            } else {
                self.work.pop();
            }
            let due = self
                .reqs
                .get(slot)
                .is_some_and(|r| r.live && r.seq == seq && r.queued_for == round);
            if !due {
                continue;
            }
            self.reqs[slot].queued_for = 0;
            self.cursor = seq;
            changed |= self.advance(slot).0;
        }
        if self.full_next {
            self.full_now = true;
        }
        changed
    }

    /// Visits every request after `cursor`, in order.
    fn full_round(&mut self) -> bool {
        let mut changed = false;
        let cursor = self.cursor;
        let mut idx = self.order.partition_point(|e| e.seq <= cursor);
        while let Some(&OrderEntry { slot, seq, .. }) = self.order.get(idx) {
            self.cursor = seq;
            let (c, removed) = self.advance(slot);
            changed |= c;
            if !removed {
                idx += 1;
            }
        }
        changed
    }

    /// Drops what is left queued for the round just run (a full round visited it).
    fn end_round(&mut self) {
        while let Some(&Reverse((round, seq, slot))) = self.work.peek() {
            if round > self.round {
                break;
            }
            self.work.pop();
            if let Some(r) = self.reqs.get_mut(slot) {
                if r.seq == seq && r.queued_for == round {
                    r.queued_for = 0;
                }
            }
        }
        self.in_round = false;
    }

    /// Queues `slot` for a visit: in the running round when it comes after the request being
    /// visited, else in the next round (the first of the next `progress` outside one).
    fn wake(&mut self, slot: usize) {
        let Some(r) = self.reqs.get_mut(slot) else {
            return;
        };
        if !r.live {
            return;
        }
        let round = if self.in_round && r.seq > self.cursor {
            if self.full_now {
                // The full pass reaches it.
                return;
            }
            self.round
        } else {
            self.round + 1
        };
        if r.queued_for == round {
            return;
        }
        r.queued_for = round;
        self.work.push(Reverse((round, r.seq, slot)));
    }

    /// Wakes every request on waiter list `list`.
    #[inline]
    fn wake_list(&mut self, list: u8) {
        let empty = match list {
            LIST_CONFLICT => self.conflict_waiters.is_empty(),
            LIST_GATE => self.gate_waiters.is_empty(),
            _ => self.pool_waiters.is_empty(),
        };
        if !empty {
            self.wake_list_nonempty(list);
        }
    }

    /// [`Raid1::wake_list`] once the list is known non-empty (kept out of the fast path).
    #[inline(never)]
    fn wake_list_nonempty(&mut self, list: u8) {
        let mut v = core::mem::take(match list {
            LIST_CONFLICT => &mut self.conflict_waiters,
            LIST_GATE => &mut self.gate_waiters,
            _ => &mut self.pool_waiters,
        });
        for &slot in &v {
            if let Some(r) = self.reqs.get_mut(slot) {
                r.listed &= !list;
            }
            self.wake(slot);
        }
        v.clear();
        // Hand the (reserved) storage back.
        match list {
            LIST_CONFLICT => self.conflict_waiters = v,
            LIST_GATE => self.gate_waiters = v,
            _ => self.pool_waiters = v,
        }
    }

    /// Puts `slot` on waiter list `list` (once).
    fn listen(&mut self, slot: usize, list: u8) {
        let Some(r) = self.reqs.get_mut(slot) else {
            return;
        };
        if r.listed & list != 0 {
            return;
        }
        r.listed |= list;
        match list {
            LIST_CONFLICT => self.conflict_waiters.push(slot),
            LIST_GATE => self.gate_waiters.push(slot),
            _ => self.pool_waiters.push(slot),
        }
    }

    /// Takes a finishing request off the waiter lists it is on.
    fn unlisten(&mut self, slot: usize) {
        let listed = core::mem::take(&mut self.reqs[slot].listed);
        if listed == 0 {
            return;
        }
        for (bit, v) in [
            (LIST_CONFLICT, &mut self.conflict_waiters),
            (LIST_GATE, &mut self.gate_waiters),
            (LIST_POOL, &mut self.pool_waiters),
        ] {
            if listed & bit != 0 {
                if let Some(i) = v.iter().position(|&s| s == slot) {
                    v.swap_remove(i);
                }
            }
        }
    }

    /// Appends a freshly filled request slot to `order` and queues it.
    fn push_order(&mut self, slot: usize) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let r = &mut self.reqs[slot];
        r.seq = seq;
        r.queued_for = 0;
        r.listed = 0;
        if r.op.writes() {
            self.writers += 1;
        }
        if r.op.user_write() {
            self.user_writes += 1;
        }
        self.order.push_back(OrderEntry {
            seq,
            slot,
            sector: r.sector,
            end: r.end(),
            flush: r.op == Op::Flush,
            writes: r.op.writes(),
        });
        self.wake(slot);
    }

    /// Whether an earlier active request conflicts with `slot`.
    fn blocked_by_earlier(&self, slot: usize) -> bool {
        let me = &self.reqs[slot];
        if me.op == Op::Flush {
            return false;
        }
        // Reads only conflict with writers.
        if !me.op.writes() && self.writers == 0 {
            return false;
        }
        let (seq, sector, end, writes) = (me.seq, me.sector, me.end(), me.op.writes());
        self.order
            .iter()
            .take_while(|o| o.seq < seq)
            .any(|o| !o.flush && (writes || o.writes) && o.sector < end && sector < o.end)
    }

    /// Opens the dirty and bitmap gates for a write; `true` once both are open.
    fn write_gates(&mut self, slot: usize) -> bool {
        match self.dirty {
            DirtyState::Dirty => {}
            DirtyState::Dirtying(_) => return false,
            DirtyState::Clean | DirtyState::Cleaning(_) => {
                if let Some(t) = self.emit(|token| Event::MarkDirty { token }, Waiter::Dirty, false)
                {
                    self.dirty = DirtyState::Dirtying(t);
                }
                return false;
            }
        }
        let (sector, end) = (self.reqs[slot].sector, self.reqs[slot].end());
        let Some(b) = self.bitmap.as_mut() else {
            return true;
        };
        let c0 = sector / b.chunk_sectors;
        let c1 = (end - 1) / b.chunk_sectors;
        let mut first_clear = None;
        let mut last_clear = 0;
        let mut all_set = true;
        for c in c0..=c1 {
            let st = b.chunks.get(c as usize).map_or(CHUNK_SET, |ch| ch.state);
            if st != CHUNK_SET {
                all_set = false;
            }
            if st == CHUNK_CLEAR {
                first_clear.get_or_insert(c);
                last_clear = c;
            }
        }
        if all_set {
            for c in c0..=c1 {
                if let Some(ch) = b.chunks.get_mut(c as usize) {
                    ch.pending = ch.pending.saturating_add(1);
                    ch.passes = 0;
                }
            }
            self.reqs[slot].bitmap_held = true;
            return true;
        }
        if let Some(first) = first_clear {
            let count = last_clear - first + 1;
            let ok = self
                .emit(
                    |token| Event::BitmapSet {
                        token,
                        first_chunk: first,
                        chunks: count,
                    },
                    Waiter::BitmapSet { first, count },
                    false,
                )
                .is_some();
            if ok {
                if let Some(b) = self.bitmap.as_mut() {
                    for c in first..=last_clear {
                        if let Some(ch) = b.chunks.get_mut(c as usize) {
                            if ch.state == CHUNK_CLEAR {
                                ch.state = CHUNK_SETTING;
                            }
                        }
                    }
                }
            }
        }
        false
    }

    /// Moves one request forward. Returns (changed, removed from `order`).
    fn advance(&mut self, slot: usize) -> (bool, bool) {
        let mut changed = false;
        let (started, op) = {
            let r = &self.reqs[slot];
            (r.started, r.op)
        };
        if !started {
            if self.blocked_by_earlier(slot) {
                self.listen(slot, LIST_CONFLICT);
                return (false, false);
            }
            if op.user_write() && !self.write_gates(slot) {
                self.listen(slot, LIST_GATE);
                return (false, false);
            }
            // md's R1BIO_Degraded: some slot has no working member to take the write.
            let degraded = op.user_write() && !self.all_slots_working();
            let r = &mut self.reqs[slot];
            if degraded {
                r.degraded = true;
            }
            r.started = true;
            changed = true;
        }
        let before = self.free_ios.len();
        match op {
            Op::Read => self.issue_read(slot),
            Op::Write | Op::Discard => self.issue_write(slot),
            Op::Flush => self.issue_flush(slot),
            Op::Fix => self.issue_fix(slot),
            Op::Sync => self.issue_sync(slot),
        }
        changed |= self.free_ios.len() != before;
        let slots = self.mirrors.len();
        let r = &self.reqs[slot];
        if !r.all_issued(slots) {
            // Out of member I/Os (or, for a repair or sync block, waiting on its own I/O).
            self.listen(slot, LIST_POOL);
            return (changed, false);
        }
        if r.inflight != 0 {
            return (changed, false);
        }
        if matches!(op, Op::Write | Op::Sync | Op::Flush) && !r.settled {
            if op == Op::Flush {
                self.settle_flush(slot);
            } else {
                self.settle_write(slot);
            }
            changed = true;
            if self.reqs[slot].meta_wait > 0 {
                return (changed, false);
            }
        } else if r.meta_wait > 0 {
            return (changed, false);
        }
        self.finish(slot);
        (true, true)
    }

    fn issue_read(&mut self, slot: usize) {
        while !self.free_ios.is_empty() {
            let r = &mut self.reqs[slot];
            let end = r.end();
            let (piece, from_cursor) = if let Some(p) = r.retries.pop() {
                (p, false)
            } else if r.cursor < end {
                (
                    Piece {
                        sector: r.cursor,
                        sectors: end - r.cursor,
                        blocked: 0,
                        fix_targets: 0,
                    },
                    true,
                )
            } else {
                return;
            };
            let (req_sector, buf, buf_offset) = (r.sector, r.buf, r.buf_offset);
            let choice = read_balance(
                &mut self.mirrors,
                self.resync_offset,
                piece.sector,
                piece.sectors,
                piece.blocked,
            );
            let Some(c) = choice else {
                let r = &mut self.reqs[slot];
                r.error.get_or_insert(ArrayIoError::ReadFailed {
                    sector: piece.sector,
                });
                if from_cursor {
                    r.cursor = end;
                }
                continue;
            };
            let n = c.sectors.min(piece.sectors).max(1);
            let offset = buf_offset + (piece.sector - req_sector) * crate::SECTOR_SIZE;
            self.issue(
                slot,
                c.member,
                MemberIoKind::Read,
                piece.sector,
                n,
                IoBuf::Caller { buf, offset },
                false,
                piece.blocked,
                piece.fix_targets,
                c.failfast,
            );
            let r = &mut self.reqs[slot];
            if from_cursor {
                r.cursor = piece.sector + n;
            } else if n < piece.sectors {
                // md re-balances the rest of a split read from scratch.
                r.retries.push(Piece {
                    sector: piece.sector + n,
                    sectors: piece.sectors - n,
                    blocked: 0,
                    fix_targets: 0,
                });
            }
        }
    }

    fn issue_write(&mut self, slot: usize) {
        let slots = self.mirrors.len();
        loop {
            let r = &self.reqs[slot];
            let m = r.cur_member;
            if m >= slots {
                return;
            }
            let (end, cursor) = (r.end(), r.cursor);
            let mirror = &self.mirrors[m];
            let seg = if mirror.state.is_working() {
                mirror.next_good_segment(cursor, end)
            } else {
                None
            };
            let Some((a, l)) = seg else {
                let r = &mut self.reqs[slot];
                r.cur_member += 1;
                r.cursor = r.sector;
                continue;
            };
            if a != cursor || a + l != end {
                // Skipping a known bad range: that member misses part of the write.
                self.reqs[slot].degraded = true;
            }
            let r = &self.reqs[slot];
            let (kind, buf) = if r.op == Op::Discard {
                (MemberIoKind::Discard, IoBuf::None)
            } else {
                (
                    MemberIoKind::Write,
                    IoBuf::Caller {
                        buf: r.buf,
                        offset: r.buf_offset + (a - r.sector) * crate::SECTOR_SIZE,
                    },
                )
            };
            let fua = r.fua;
            if !self.issue(slot, m, kind, a, l, buf, fua, 0, 0, false) {
                return;
            }
            self.reqs[slot].cursor = a + l;
        }
    }

    fn issue_flush(&mut self, slot: usize) {
        let slots = self.mirrors.len();
        if self.reqs[slot].cur_member == 0 && !self.mirrors.iter().any(|m| m.state.is_working()) {
            let r = &mut self.reqs[slot];
            r.error = Some(ArrayIoError::NoWorkingMember);
            r.cur_member = slots;
            return;
        }
        while self.reqs[slot].cur_member < slots {
            let m = self.reqs[slot].cur_member;
            if self.mirrors[m].state.is_working()
                && !self.issue(
                    slot,
                    m,
                    MemberIoKind::Flush,
                    0,
                    0,
                    IoBuf::None,
                    false,
                    0,
                    0,
                    false,
                )
            {
                return;
            }
            self.reqs[slot].cur_member += 1;
        }
    }

    /// Records failed member writes: a bad block when the log has room, else a failed member.
    fn settle_write(&mut self, slot: usize) {
        let (sector, sectors, mask, gen) = {
            let r = &mut self.reqs[slot];
            r.settled = true;
            (r.sector, r.sectors, r.failed_mask, r.gen)
        };
        if mask == 0 {
            return;
        }
        self.reqs[slot].degraded = true;
        let waiter = Waiter::Req { slot, gen };
        for m in 0..self.mirrors.len() {
            if mask & bit(m) == 0 || !self.mirrors[m].state.is_working() {
                continue;
            }
            self.full_next = true;
            let token = if self.mirrors[m].add_bad(sector, sectors) {
                self.emit(
                    |token| Event::BadBlocks {
                        token,
                        member: m,
                        sector,
                        sectors,
                    },
                    waiter,
                    false,
                )
            } else {
                self.fail_member_inner(m, waiter, false)
            };
            if token.is_some() {
                self.reqs[slot].meta_wait += 1;
            }
        }
    }

    /// Fails every member whose flush failed (never the last in-sync one); the flush completes
    /// once the failures are recorded.
    fn settle_flush(&mut self, slot: usize) {
        let (mask, gen) = {
            let r = &mut self.reqs[slot];
            r.settled = true;
            (r.failed_mask, r.gen)
        };
        let waiter = Waiter::Req { slot, gen };
        for m in 0..self.mirrors.len() {
            if mask & bit(m) != 0 && self.fail_member_inner(m, waiter, false).is_some() {
                self.reqs[slot].meta_wait += 1;
            }
        }
    }

    fn finish(&mut self, slot: usize) {
        let (op, gen, result, degraded, held, sector, end) = {
            let r = &mut self.reqs[slot];
            r.live = false;
            let result = match r.op {
                Op::Write if !r.ok_in_sync => Err(ArrayIoError::WriteFailed { sector: r.sector }),
                Op::Flush if r.ok_in_sync => Ok(()),
                _ => r.error.map_or(Ok(()), Err),
            };
            (
                r.op,
                r.gen,
                result,
                r.degraded,
                r.bitmap_held,
                r.sector,
                r.end(),
            )
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
        self.completions
            .push_back((ReqId(((gen as u64) << 32) | slot as u64), result));
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

    fn daemon_pass(&mut self) {
        let all_in_sync = fully_in_sync(&self.mirrors, self.raid_disks)
            && self.resync_offset >= self.array_sectors;
        if !all_in_sync {
            return;
        }
        let idle = |ch: &Chunk| ch.state == CHUNK_SET && ch.pending == 0 && !ch.needed;
        let Some(b) = self.bitmap.as_mut() else {
            return;
        };
        let sleep = b.daemon_sleep;
        let n = b.chunks.len();
        for ch in b.chunks.iter_mut().filter(|ch| idle(ch)) {
            ch.passes = ch.passes.saturating_add(1);
        }
        self.emit_clear_runs(n, |ch| idle(ch) && ch.passes >= 2);
        let more = self
            .bitmap
            .as_ref()
            .is_some_and(|b| b.chunks.iter().any(idle));
        if more {
            self.daemon_deadline = Some(self.now.saturating_add(sleep));
        }
    }

    /// Emits a clear for a run of idle chunks and clears them in memory; `false` when the
    /// optional budget is spent (the chunks stay set for a later pass).
    /// Emits one `BitmapClear` per run of consecutive chunks (of the first `n`) that `ready`
    /// accepts, stopping when the optional-event budget is spent.
    fn emit_clear_runs(&mut self, n: usize, ready: impl Fn(&Chunk) -> bool) {
        let ok = |s: &Self, c: usize| {
            s.bitmap
                .as_ref()
                .and_then(|b| b.chunks.get(c))
                .is_some_and(&ready)
        };
        let mut c = 0;
        while c < n {
            if !ok(self, c) {
                c += 1;
                continue;
            }
            let first = c;
            while c < n && ok(self, c) {
                c += 1;
            }
            if !self.emit_clear(first as u64, (c - first) as u64) {
                break;
            }
        }
    }

    fn emit_clear(&mut self, first: u64, count: u64) -> bool {
        if self.optional_pending + self.live_fixes >= OPTIONAL_EVENTS {
            return false;
        }
        let ok = self
            .emit(
                |token| Event::BitmapClear {
                    token,
                    first_chunk: first,
                    chunks: count,
                },
                Waiter::Nothing,
                true,
            )
            .is_some();
        if ok {
            if let Some(b) = self.bitmap.as_mut() {
                for c in first..first + count {
                    if let Some(ch) = b.chunks.get_mut(c as usize) {
                        ch.state = CHUNK_CLEAR;
                        ch.passes = 0;
                    }
                }
            }
        }
        ok
    }

    /// Starts a repair of `[sector, sector+sectors)` on `target` from `source`, if a scratch
    /// buffer and event budget are free; otherwise the repair is skipped.
    fn spawn_fix(&mut self, target: usize, source: usize, sector: u64, sectors: u64) {
        if self.optional_pending + self.live_fixes >= OPTIONAL_EVENTS
            || !self
                .mirrors
                .get(target)
                .is_some_and(|m| m.state.is_working())
        {
            return;
        }
        let Some(scratch) = self.scratch_busy.iter().position(|b| !b) else {
            return;
        };
        let Some(slot) = self.free_reqs.pop() else {
            return;
        };
        self.scratch_busy[scratch] = true;
        self.live_fixes += 1;
        let r = &mut self.reqs[slot];
        r.reset(Op::Fix, sector, sectors, false, BufRef(0), 0);
        r.fix = Some(Fix {
            target,
            source,
            scratch,
            stage: FixStage::ReadSource,
            io_out: false,
        });
        self.push_order(slot);
    }

    fn issue_fix(&mut self, slot: usize) {
        let r = &self.reqs[slot];
        let Some(f) = r.fix else {
            return;
        };
        if f.io_out || r.cursor >= r.end() {
            return;
        }
        let n = self.fix_sectors.min(r.end() - r.cursor);
        let cursor = r.cursor;
        let (member, kind) = match f.stage {
            FixStage::ReadSource => (f.source, MemberIoKind::Read),
            FixStage::WriteTarget => (f.target, MemberIoKind::Write),
            FixStage::Verify => (f.target, MemberIoKind::Read),
        };
        let usable = self.mirrors.get(member).is_some_and(|m| {
            m.state.is_working()
                && (kind == MemberIoKind::Write
                    || f.stage == FixStage::Verify
                    || m.current_below(cursor + n))
        });
        if !usable {
            self.reqs[slot].cursor = self.reqs[slot].end();
            return;
        }
        let buf = IoBuf::Scratch { index: f.scratch };
        if self.issue(slot, member, kind, cursor, n, buf, false, 0, 0, false) {
            if let Some(f) = self.reqs[slot].fix.as_mut() {
                f.io_out = true;
            }
        }
    }

    fn fix_step_done(&mut self, slot: usize, ok: bool) {
        let fix_sectors = self.fix_sectors;
        let r = &mut self.reqs[slot];
        let end = r.end();
        let cursor = r.cursor;
        let Some(f) = r.fix.as_mut() else {
            return;
        };
        f.io_out = false;
        let n = fix_sectors.min(end.saturating_sub(cursor));
        let target = f.target;
        let stage = f.stage;
        match (stage, ok) {
            (FixStage::ReadSource, true) => f.stage = FixStage::WriteTarget,
            (FixStage::WriteTarget, true) => f.stage = FixStage::Verify,
            (FixStage::Verify, true) => {
                f.stage = FixStage::ReadSource;
                r.cursor = cursor + n;
                if let Some(m) = self.mirrors.get_mut(target) {
                    m.counters.corrected += n;
                }
            }
            (FixStage::ReadSource, false) => r.cursor = end,
            (FixStage::WriteTarget | FixStage::Verify, false) => {
                r.cursor = end;
                // The rewrite did not stick: record the range bad, or fail the member.
                self.full_next = true;
                let recorded = self
                    .mirrors
                    .get_mut(target)
                    .is_some_and(|m| m.add_bad(cursor, n));
                if recorded {
                    let _ = self.emit(
                        |token| Event::BadBlocks {
                            token,
                            member: target,
                            sector: cursor,
                            sectors: n,
                        },
                        Waiter::Nothing,
                        true,
                    );
                } else {
                    let _ = self.fail_member_inner(target, Waiter::Nothing, true);
                }
            }
        }
    }
}
