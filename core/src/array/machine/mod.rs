//! The array machine: the RAID1 engine plus md's metadata policy, sans-IO.
//!
//! A [`Machine`] owns the [`Raid1`] engine and every member's metadata state (superblock and
//! its sector, device size, state, rebuild progress, bad-block log, the write-intent bitmap,
//! events, dirty, resync owed and its checkpoint, and which member each engine position holds)
//! and **no device** — quinn-proto's `Connection` shape. It hands out data *and* metadata I/Os
//! through one [`Machine::poll_io`]; a driver (blocking loop, io_uring reactor, kernel bios, C
//! callbacks) only moves bytes and never knows whether an I/O carries user data, a superblock
//! or a bitmap page.
//!
//! # The four method families and the call order
//!
//! - **Getters** (`&self`): [`Machine::members`], [`Machine::events`], [`Machine::is_dirty`],
//!   [`Machine::bitmap`], [`Machine::is_stopped`], [`Machine::buffer`], …
//! - **Inputs** (`handle_*`): [`Machine::handle_submit`] (an array request naming a caller
//!   buffer token), [`Machine::handle_io_completion`] (an I/O from `poll_io` finished) and
//!   [`Machine::handle_timeout`] (time passed: a [`Now`] with the monotonic ns that drive the
//!   engine's timers and the wall-clock seconds stamped into superblocks; the core reads no
//!   clock).
//! - **Commands** (return at once; their I/O comes out of `poll_io`):
//!   [`Machine::start_sync`], [`Machine::abort_sync`], [`Machine::set_speed_limits`],
//!   [`Machine::fail_member`], [`Machine::remove_member`], [`Machine::stop`].
//! - **Outputs** (`poll_*`, `#[must_use]`): [`Machine::poll_io`] (issue this I/O),
//!   [`Machine::poll_completion`] (an array request finished), [`Machine::poll_event`]
//!   (notifications only: member failed, sync progress and end, clean/dirty, spare rebuilt,
//!   stopped) and [`Machine::poll_timeout`] (when to call `handle_timeout`).
//!
//! A driver loop: feed an input (or a command), then drain `poll_io` until `None`, issuing each
//! I/O (a `preflush` I/O flushes the member's cache first; `fua` makes the write durable before
//! it completes) and reporting each with `handle_io_completion` — in any order, at any time
//! later — then drain `poll_completion` and `poll_event`, then arm a timer from
//! `poll_timeout`. Repeat while anything is in flight.
//!
//! A read on a healthy array takes md's read fast path (`fast_read`): its one member read is
//! out of `poll_io` as soon as `handle_submit` returns and that read's completion finishes the
//! request; the outputs are the ordinary ones ([`Machine::fast_read_stats`] counts it).
//!
//! # Buffers
//!
//! A data I/O names the caller's buffer token and a byte offset in it ([`IoBuffer::Caller`]);
//! data is never copied. Everything else lives in the machine ([`IoBuffer::Machine`]: engine
//! scratch buffers for sync and read repair, superblock, bitmap and bad-block-log images),
//! reached with [`Machine::buffer`] / [`Machine::buffer_mut`]. They are sized when the machine
//! is built.
//!
//! # The crash contract (md's metadata ordering)
//!
//! The engine holds every write until the metadata it depends on is acknowledged; the machine
//! turns each engine event into *rounds* of metadata writes, one round at a time, each write
//! carrying preflush + FUA (md's `md_super_write`), so a round is durable when its last write
//! completes and only then is the next round handed out or the event acknowledged:
//!
//! - before the first write after a clean period the superblocks are rewritten dirty;
//! - a bitmap chunk's bit is set and only the 4 KiB bitmap page holding it is written on every
//!   working member before the data that dirties it;
//! - a member failure is recorded in the survivors' superblocks before the write that saw it
//!   completes; a metadata write that fails fails its member, and a round that saw a new
//!   failure is followed by another superblock round (md_update_sb's repeat);
//! - a bad-block log is written, then the superblocks, before the write that recorded it
//!   completes;
//! - sync checkpoints, clean marking after the safe-mode delay and bitmap clearing after idle
//!   daemon passes (the engine's timers) become superblock / bitmap-page rounds;
//! - [`Machine::stop`] waits for in-flight requests, then writes the superblocks clean (and the
//!   whole bitmap cleared when every mirror is in sync).
//!
//! Nothing panics on any input or order of inputs: an unknown I/O id is
//! [`MachineError::UnknownIo`].

pub(crate) mod config;
mod fast_read;
pub use fast_read::ReadSubmit;
mod grow;
pub use grow::{BitmapGrow, GrowReport, GrowRequest, GrowSize, SizeChange};
mod membership;
pub use membership::{AddPlan, Comeback};
mod metadata;
pub(crate) mod replace;
pub(crate) mod superblocks;

use super::member::DeviceId;
use super::{IntentBitmap, Member, MemberState, SyncReport};
use crate::raid1::{
    ArrayIoError, ArrayRequest, BufRef, EngineError, IoBuf, MemberError, MemberIo, MemberIoId,
    MemberIoKind, Raid1, ReqId, SubmitError, SyncAction, SyncStatus,
};
use crate::SECTOR_SIZE;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The time a driver passes in: monotonic nanoseconds (the engine's timers) and wall-clock
/// seconds since the epoch (stamped into superblocks as utime).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic clock, ns; never goes back (a smaller value is ignored).
    pub mono_ns: u64,
    /// Wall clock, seconds since the epoch.
    pub wall_secs: u64,
}

/// The device side of a machine member: the machine owns no device, it only remembers the
/// (major, minor) that 0.90 disk records carry and the logical block size its I/Os must be
/// whole multiples of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Detached {
    /// The device's (major, minor), if it had one.
    pub device_number: Option<(u32, u32)>,
    /// Logical block size in bytes (0 or anything below 512 reads as 512).
    pub block_size: u32,
}

impl Detached {
    /// The logical block size in bytes: a power of two, at least 512.
    pub fn block_bytes(&self) -> u64 {
        crate::device::block_bytes(self.block_size)
    }
}

impl DeviceId for Detached {
    fn device_number(&self) -> Option<(u32, u32)> {
        self.device_number
    }
    fn logical_block_size(&self) -> u32 {
        self.block_bytes() as u32
    }
}

/// Handle of an I/O handed out by [`Machine::poll_io`]; opaque.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoId(u64);

impl IoId {
    /// The raw value (for logs and FFI).
    pub fn raw(self) -> u64 {
        self.0
    }
    /// An id from its raw value (FFI); an id the machine never handed out is refused by
    /// [`Machine::handle_io_completion`].
    pub fn from_raw(raw: u64) -> Self {
        IoId(raw)
    }
    /// A direct read's I/O (from [`Machine::submit_read`]): complete it with
    /// [`Machine::complete_direct_read`], not [`Machine::handle_io_completion`].
    #[inline]
    pub fn is_direct_read(self) -> bool {
        self.0 & META_BIT == 0 && self.0 & crate::raid1::DIRECT_BIT != 0
    }
}

/// Metadata I/O ids carry this bit; data I/O ids are the engine's.
const META_BIT: u64 = 1 << 63;

/// What an I/O does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoKind {
    /// Read `len` bytes at `offset` into the buffer.
    Read,
    /// Write `len` bytes from the buffer at `offset`.
    Write,
    /// Flush the member's cache (no range, no buffer).
    Flush,
    /// Discard the range (no buffer; a driver may do nothing).
    Discard,
}

/// A machine-owned buffer; reach it with [`Machine::buffer`] / [`Machine::buffer_mut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufIdx(BufSel);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BufSel {
    /// An engine scratch buffer (sync, read repair).
    Scratch(usize),
    /// Member `i`'s superblock image.
    Superblock(usize),
    /// The encoded write-intent bitmap (the same on every member).
    Bitmap,
    /// Member `i`'s bad-block log image.
    BadBlocks(usize),
}

/// The memory an I/O transfers to or from: `len` bytes from `offset` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBuffer {
    /// No data (flush, discard).
    None,
    /// The caller's buffer named by the array request.
    Caller {
        /// The caller's token.
        token: BufRef,
        /// Byte offset within it.
        offset: u64,
    },
    /// A machine-owned buffer.
    Machine {
        /// Which buffer.
        index: BufIdx,
        /// Byte offset within it.
        offset: usize,
    },
}

/// An I/O to issue on a member device, then report with [`Machine::handle_io_completion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Io {
    /// Handle to report the completion with.
    pub id: IoId,
    /// Index of the member in [`Machine::members`].
    pub member: usize,
    /// What to do.
    pub kind: IoKind,
    /// Absolute byte offset on the member device.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Force unit access: durable when it completes.
    pub fua: bool,
    /// Flush the member's cache before this write.
    pub preflush: bool,
    /// The memory.
    pub buf: IoBuffer,
}

/// A notification; nothing to do for the driver but to pass it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Member `member` failed (recorded in the survivors' superblocks).
    MemberFailed {
        /// Index in [`Machine::members`].
        member: usize,
    },
    /// Sync progress, durable: `action` is done below `sector`.
    SyncProgress {
        /// The running action.
        action: SyncAction,
        /// Done below this sector.
        sector: u64,
    },
    /// A sync action ended.
    SyncDone(SyncReport),
    /// The superblocks say dirty (writes may be in flight).
    Dirty,
    /// The superblocks say clean.
    Clean,
    /// A spare was rebuilt into `slot`.
    SpareRebuilt {
        /// Index in [`Machine::members`].
        member: usize,
        /// Its slot.
        slot: u32,
    },
    /// [`Machine::stop`] finished: the superblocks are clean, nothing is in flight.
    Stopped,
}

/// A machine input or command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MachineError {
    /// A completion for an I/O the machine does not know (stale, forged or completed twice).
    #[error("unknown I/O id {0:#x}")]
    UnknownIo(u64),
    /// No member with this index.
    #[error("no member {0}")]
    NoSuchMember(usize),
    /// The command is not possible now.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The engine refused.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
}

impl MachineError {
    /// The engine's refusal of a data I/O's completion, as the machine reports it.
    fn from_data_io(e: EngineError) -> Self {
        match e {
            EngineError::UnknownMemberIo(raw) => MachineError::UnknownIo(raw),
            e => MachineError::Engine(e),
        }
    }
}

/// The array state machine (see the module documentation).
#[derive(Debug)]
pub struct Machine {
    engine: Raid1,
    members: Vec<Member<Detached>>,
    /// Which member each engine position holds.
    emap: Vec<Option<usize>>,
    raid_disks: u32,
    component_sectors: u64,
    events: u64,
    dirty: bool,
    needs_resync: bool,
    readonly: bool,
    bitmap: Option<IntentBitmap>,
    /// While a resync is owed: sectors below this are known in sync (md's checkpoint).
    resync_done: u64,
    /// The running action's last checkpoint (what an interrupted one reports done).
    sync_reached: u64,
    speed_limits: (u64, u64),
    last_sync: Option<SyncReport>,
    now: Now,
    meta: metadata::Metadata,
    notices: VecDeque<Notice>,
    stopping: bool,
    stopped: bool,
    /// The read fast path is allowed (`fast_read`).
    fast_reads: bool,
    /// Fast-read counters of the engines replaced so far.
    fast_base: crate::raid1::FastReadStats,
}

/// What a machine is built from: the members' metadata and the array-wide state, as
/// create or assemble found it.
#[derive(Debug)]
pub struct State {
    /// The members (device-less).
    pub members: Vec<Member<Detached>>,
    /// Number of slots.
    pub raid_disks: u32,
    /// Sectors of each member used by the array.
    pub component_sectors: u64,
    /// Event count.
    pub events: u64,
    /// The superblocks say dirty.
    pub dirty: bool,
    /// Mirrors may differ until a resync.
    pub needs_resync: bool,
    /// md's read-only: nothing is written, metadata included.
    pub readonly: bool,
    /// The write-intent bitmap, when the array has one.
    pub bitmap: Option<IntentBitmap>,
    /// While a resync is owed: sectors below this are known in sync.
    pub resync_done: u64,
}

impl Machine {
    /// Builds the machine (engine, pools, metadata buffers: everything it will use) at `now`.
    ///
    /// As md's assembly does (analyze_sbs), a member in sync in, or being rebuilt into, a slot
    /// past `raid_disks` is taken as a spare. Refused (`MachineError::Refused`): no slots, or
    /// two members in sync in one slot (md's raid1 setup aborts on that).
    pub fn new(mut state: State, now: Now) -> Result<Machine, MachineError> {
        check_slots(&mut state.members, state.raid_disks)?;
        let mut machine = Machine {
            engine: Raid1::new(crate::raid1::Raid1Config::new(1, 1))?,
            meta: metadata::Metadata::new(&state.members),
            members: state.members,
            emap: Vec::new(),
            raid_disks: state.raid_disks,
            component_sectors: state.component_sectors,
            events: state.events,
            dirty: state.dirty,
            needs_resync: state.needs_resync,
            readonly: state.readonly,
            bitmap: state.bitmap,
            resync_done: state.resync_done,
            sync_reached: 0,
            speed_limits: (
                crate::raid1::DEFAULT_SYNC_SPEED_MIN_KIB,
                crate::raid1::DEFAULT_SYNC_SPEED_MAX_KIB,
            ),
            last_sync: None,
            now,
            notices: VecDeque::with_capacity(16),
            stopping: false,
            stopped: false,
            fast_reads: true,
            fast_base: crate::raid1::FastReadStats::default(),
        };
        let unit = machine.block_size() as usize;
        if let Some(bm) = machine.bitmap.as_mut() {
            bm.pad_to(unit);
        }
        machine.rebuild_engine()?;
        Ok(machine)
    }

    /// The members' metadata and the bitmap, as the machine leaves them (nothing is written).
    pub fn into_members(self) -> (Vec<Member<Detached>>, Option<IntentBitmap>) {
        (self.members, self.bitmap)
    }
}

/// [`Machine::new`]'s slot rules.
fn check_slots<X>(members: &mut [Member<X>], raid_disks: u32) -> Result<(), MachineError> {
    if raid_disks == 0 {
        return Err(MachineError::Refused("an array needs at least one slot"));
    }
    let mut held = alloc::vec![false; raid_disks as usize];
    for m in members {
        if m.rebuild.is_some_and(|(slot, _)| slot >= raid_disks) {
            m.rebuild = None;
            m.rebuild_bitmap = false;
        }
        if let MemberState::InSync(slot) = m.state {
            match held.get_mut(slot as usize) {
                None => m.state = MemberState::Spare,
                Some(true) => {
                    return Err(MachineError::Refused("two members are in sync in one slot"))
                }
                Some(h) => *h = true,
            }
        }
    }
    Ok(())
}

impl Machine {
    // ---- getters ----

    /// The array's logical block size in bytes: the largest of its members' (md's queue
    /// limit). Requests must be whole blocks of it; metadata writes to each member are whole
    /// blocks of that member's.
    pub fn block_size(&self) -> u64 {
        self.members
            .iter()
            .map(|m| m.dev.block_bytes())
            .max()
            .unwrap_or(crate::SECTOR_SIZE)
    }

    /// The members' metadata, indexed as [`Io::member`].
    pub fn members(&self) -> &[Member<Detached>] {
        &self.members
    }
    /// Current event count.
    pub fn events(&self) -> u64 {
        self.events
    }
    /// Number of slots.
    pub fn raid_disks(&self) -> u32 {
        self.raid_disks
    }
    /// Sectors of each member used by the array.
    pub fn component_sectors(&self) -> u64 {
        self.component_sectors
    }
    /// Whether the array is read-only.
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }
    /// The time the machine was last told.
    pub fn now(&self) -> Now {
        self.now
    }
    /// Whether the superblocks are (being) marked dirty.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }
    /// Whether the mirrors may differ until a resync.
    pub fn needs_resync(&self) -> bool {
        self.needs_resync
    }
    /// The write-intent bitmap in use, if any.
    pub fn bitmap(&self) -> Option<&IntentBitmap> {
        self.bitmap.as_ref()
    }
    /// The outcome of the last sync action that ended.
    pub fn last_sync(&self) -> Option<SyncReport> {
        self.last_sync
    }
    /// The running sync action, until its end is recorded: an action whose last block is
    /// done while its end waits behind an earlier metadata round (a write's dirty marking, a
    /// failure) still shows here, at its final figures, so a caller that waits for `None` and
    /// then reads [`Self::last_sync`] finds its report. Drivers report this, not the engine's
    /// own [`Raid1::sync_status`](crate::raid1::Raid1::sync_status), which ends a round earlier.
    pub fn sync_status(&self) -> Option<SyncStatus> {
        self.engine.sync_status().or_else(|| {
            let (action, mismatch_cnt, sectors_copied, interrupted) =
                self.meta.sync_end_queued()?;
            Some(SyncStatus {
                action,
                done_sectors: self.component_sectors,
                total_sectors: self.component_sectors,
                mismatch_cnt,
                sectors_copied,
                rate_kib_s: 0,
                aborting: interrupted,
            })
        })
    }
    /// The engine, for its getters (counters, sync status).
    pub fn engine(&self) -> &Raid1 {
        &self.engine
    }
    /// Array requests and I/Os still in flight, or metadata work pending.
    pub fn is_busy(&self) -> bool {
        self.engine.requests_in_flight() > 0
            || self.engine.member_ios_in_flight() > 0
            || self.engine.sync_status().is_some()
            || !self.meta.is_idle()
    }
    /// The engine's counters for member `member` (index in [`Self::members`]; the engine
    /// itself counts by its own positions).
    pub fn member_counters(&self, member: usize) -> Option<crate::raid1::MemberCounters> {
        self.engine.member_counters(self.engine_pos(member)?)
    }
    /// Whether [`Self::stop`] has finished.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
    /// A machine-owned buffer.
    pub fn buffer(&self, idx: BufIdx) -> Option<&[u8]> {
        match idx.0 {
            BufSel::Scratch(i) => self.engine.scratch(i),
            BufSel::Bitmap => self.bitmap.as_ref().map(|b| b.raw()),
            sel => self.meta.buffer(sel),
        }
    }
    /// A machine-owned buffer a read lands in (only engine scratch buffers are ever read
    /// into; metadata images are write-only and come back `None`).
    pub fn buffer_mut(&mut self, idx: BufIdx) -> Option<&mut [u8]> {
        match idx.0 {
            BufSel::Scratch(i) => self.engine.scratch_mut(i),
            _ => None,
        }
    }

    // ---- inputs ----

    /// Submits an array request; its memory is the caller's token `req.buf`.
    pub fn handle_submit(&mut self, req: ArrayRequest) -> Result<ReqId, SubmitError> {
        if self.stopping {
            return Err(SubmitError::Invalid("the array is stopping"));
        }
        if self.readonly && req.kind != crate::raid1::RequestKind::Read {
            return Err(SubmitError::Invalid("the array is read-only"));
        }
        if !self.whole_blocks(&req) {
            return Err(SubmitError::Invalid(
                "not whole blocks of the array's logical block size",
            ));
        }
        let id = if req.kind == crate::raid1::RequestKind::Read && self.fast_read_allowed() {
            // md's read fast path (`fast_read`): when taken, the engine emitted nothing.
            let s = self.engine.handle_submit_fast(req)?;
            if s.fast {
                return Ok(s.id);
            }
            s.id
        } else {
            self.engine.handle_submit(req)?
        };
        self.pump();
        Ok(id)
    }

    /// Whole logical blocks only, as the block layer guarantees md: a member with 4 KiB
    /// sectors (O_DIRECT, a 4Kn disk) refuses anything smaller (a flush has no range).
    #[inline]
    fn whole_blocks(&self, req: &ArrayRequest) -> bool {
        let unit = self.block_size() / crate::SECTOR_SIZE;
        unit <= 1
            || req.kind == crate::raid1::RequestKind::Flush
            || (req.sector % unit == 0 && req.sectors % unit == 0)
    }

    /// Whether a data I/O's completion leaves metadata work to move: a stop waiting for
    /// the last I/O, a round under way, or an engine event (a read error's failure, say).
    /// Otherwise (a read that moved nothing) there is nothing to pump.
    #[inline]
    fn data_completion_moves_metadata(&self) -> bool {
        self.stopping || !self.meta.is_idle() || self.engine.has_events()
    }

    /// Reports an I/O from [`Self::poll_io`] done.
    pub fn handle_io_completion(
        &mut self,
        id: IoId,
        result: Result<(), MemberError>,
    ) -> Result<(), MachineError> {
        if id.0 & META_BIT != 0 {
            self.complete_metadata_io(id.0, result)?;
        } else {
            self.engine
                .handle_member_completion(MemberIoId(id.0), result)
                .map_err(MachineError::from_data_io)?;
            if !self.data_completion_moves_metadata() {
                return Ok(());
            }
        }
        self.pump();
        Ok(())
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = Now {
            mono_ns: now.mono_ns.max(self.now.mono_ns),
            wall_secs: now.wall_secs,
        };
        self.engine.handle_timeout(self.now.mono_ns);
        self.pump();
    }

    // ---- commands ----

    /// Starts a sync action.
    pub fn start_sync(&mut self, action: SyncAction) -> Result<(), MachineError> {
        if self.readonly || self.stopping {
            return Err(MachineError::Refused("read-only or stopping"));
        }
        if self.meta.sync_end_queued().is_some() {
            // md refuses a new action until the last one is reaped (MD_RECOVERY_RUNNING).
            return Err(MachineError::Refused(
                "the last sync action's end is being recorded",
            ));
        }
        if action == SyncAction::Resync
            && self.needs_resync
            && self.resync_done >= self.component_sectors
            && self.engine.sync_status().is_none()
        {
            // A checkpoint at the very end with the superblocks still owing a resync (a cut
            // between the last checkpoint and the end of the resync): md's resync starts at
            // the checkpoint, has nothing left to do and ends at once, clearing the debt.
            let report = self.end_sync(action, 0, 0, false);
            self.meta.queue_superblocks();
            self.notices.push_back(Notice::SyncDone(report));
            self.pump();
            return Ok(());
        }
        self.engine.start_sync(action, self.now.mono_ns)?;
        self.last_sync = None;
        self.pump();
        Ok(())
    }

    /// Interrupts the running sync action (its end comes as [`Notice::SyncDone`]).
    pub fn abort_sync(&mut self) -> Result<(), MachineError> {
        self.engine.abort_sync()?;
        self.pump();
        Ok(())
    }

    /// md's `sync_action` `idle` (`freeze` false) and `frozen`: stops the running action (its
    /// end comes as [`Notice::SyncDone`]); never refused. Without `freeze` md's recovery
    /// check follows: a recovery, or a resync still owed, starts again from its checkpoint
    /// once the action has drained. With `freeze` nothing starts on its own until the next
    /// [`Self::start_sync`] or a stop without `freeze`. A read-only or stopping array only
    /// stops: md's recovery check leaves a read-only array alone (its engine has no sync
    /// window either), and a stop's abort must not be undone by a restart.
    pub fn stop_sync(&mut self, freeze: bool) {
        if self.readonly || self.stopping {
            let _ = self.engine.abort_sync();
        } else {
            self.engine.stop_sync(freeze);
        }
        self.pump();
    }

    /// md's recovery check without stopping anything (a driver's hot add that paused a
    /// resync, say): once no action runs, a recovery or a resync still owed starts. Nothing
    /// on a frozen, read-only or stopping array.
    pub fn request_sync_check(&mut self) {
        if !(self.readonly || self.stopping) {
            self.engine.request_sync_check();
        }
        self.pump();
    }

    /// md's sync speed limits (KiB/s); only while no request or sync runs.
    pub fn set_speed_limits(&mut self, min_kib: u64, max_kib: u64) -> Result<(), MachineError> {
        if self.is_busy() {
            return Err(MachineError::Refused("speed limits change while idle"));
        }
        self.speed_limits = (min_kib.max(1), max_kib.max(min_kib.max(1)));
        self.rebuild_engine()
    }

    /// Fails member `i` (mdadm --fail); the survivors record it. Never the last in-sync one.
    pub fn fail_member(&mut self, i: usize) -> Result<(), MachineError> {
        if self.readonly {
            // md records nothing on a read-only array: refuse rather than fail unrecorded.
            return Err(MachineError::Refused("the array is read-only"));
        }
        let pos = self.engine_pos(i).ok_or(MachineError::NoSuchMember(i))?;
        self.engine.fail_member(pos)?;
        self.pump();
        Ok(())
    }

    /// Removes a faulty or spare member (mdadm --remove) while the array is idle and hands its
    /// metadata back; the others' role tables forget it. Member indices above `i` shift down.
    pub fn remove_member(&mut self, i: usize) -> Result<Member<Detached>, MachineError> {
        let m = self.members.get(i).ok_or(MachineError::NoSuchMember(i))?;
        if self.readonly {
            return Err(MachineError::Refused("the array is read-only"));
        }
        if matches!(m.state, MemberState::InSync(_)) {
            return Err(MachineError::Refused("the member is active: fail it first"));
        }
        if replace::is_replacement(&self.members, i) {
            return Err(MachineError::Refused(
                "the member is an active replacement: fail it first",
            ));
        }
        if self.is_busy() || self.stopping {
            return Err(MachineError::Refused("remove while idle"));
        }
        let removed = self.members.remove(i);
        self.meta.remove_member(i);
        superblocks::forget_role(&mut self.members, removed.sb.dev_number());
        self.rebuild_engine()?;
        self.meta.queue_superblocks();
        self.pump();
        Ok(removed)
    }

    /// Stops the array: no new requests; once those in flight are done (a running sync is
    /// aborted) the superblocks are written clean. [`Self::is_stopped`] says when it is over
    /// ([`Notice::Stopped`]).
    pub fn stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        if self.engine.sync_status().is_some() {
            let _ = self.engine.abort_sync();
        }
        self.pump();
    }

    // ---- outputs ----

    /// The next I/O to issue.
    #[must_use]
    pub fn poll_io(&mut self) -> Option<Io> {
        if let Some(io) = self.meta.poll_io() {
            return Some(io);
        }
        loop {
            let mio = self.engine.poll_member_io()?;
            match self.data_io(&mio) {
                Some(io) => return Some(io),
                None => {
                    // A member this layer already failed gets no more I/O (ENODEV).
                    let _ = self
                        .engine
                        .handle_member_completion(mio.id, Err(MemberError::Io(19)));
                    self.pump();
                    if let Some(io) = self.meta.poll_io() {
                        return Some(io);
                    }
                }
            }
        }
    }

    /// Whether the machine has nothing to hand out: no I/O for [`Self::poll_io`], no finished
    /// request for [`Self::poll_completion`], no notice for [`Self::poll_event`]. A driver
    /// that took the one output it expected (a fast read's member I/O after its submission,
    /// the read's completion after that I/O's success) and finds this `true` (and
    /// [`Self::poll_timeout`] unchanged) has nothing else to do for that input.
    #[must_use]
    #[inline]
    pub fn is_drained(&self) -> bool {
        self.meta.all_handed() && self.engine.has_no_outputs() && self.notices.is_empty()
    }

    /// The next finished array request.
    #[must_use]
    #[inline]
    pub fn poll_completion(&mut self) -> Option<(ReqId, Result<(), ArrayIoError>)> {
        self.engine.poll_completion()
    }

    /// The next notification.
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next (monotonic ns).
    #[must_use]
    #[inline]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.engine.poll_timeout()
    }

    // ---- internals ----

    fn engine_pos(&self, member: usize) -> Option<usize> {
        self.emap.iter().position(|m| *m == Some(member))
    }

    /// Builds the engine afresh from the metadata state (at construction and after a
    /// membership or limit change, when nothing is in flight).
    fn rebuild_engine(&mut self) -> Result<(), MachineError> {
        let facts = config::ArrayFacts {
            raid_disks: self.raid_disks,
            component_sectors: self.component_sectors,
            readonly: self.readonly,
            dirty: self.dirty,
            needs_resync: self.needs_resync,
            resync_done: self.resync_done,
            speed_limits: self.speed_limits,
            bitmap: self.bitmap.as_ref(),
        };
        let (cfg, emap) = config::engine_config(&self.members, &facts);
        let mut engine = Raid1::new(cfg)?;
        engine.handle_timeout(self.now.mono_ns);
        if self.engine.sync_frozen() {
            // md's MD_RECOVERY_FROZEN is the array's, not the personality's: a remove, a
            // grow or a limit change keeps it (nothing runs here: rebuilt only while idle).
            engine.stop_sync(true);
        }
        self.keep_fast_stats();
        self.engine = engine;
        self.emap = emap;
        self.attach_replacements();
        Ok(())
    }

    /// An engine member I/O as a device I/O; `None` when its member is gone or failed.
    fn data_io(&self, mio: &MemberIo) -> Option<Io> {
        let mi = self.emap.get(mio.member).copied().flatten()?;
        let m = &self.members[mi];
        // (An original recorded faulty whose replacement's swap is not durable yet is still
        // written: the engine retires it once the round is.)
        if m.state == MemberState::Faulty && !self.engine.is_retiring(mio.member) {
            return None;
        }
        let kind = match mio.kind {
            MemberIoKind::Read => IoKind::Read,
            MemberIoKind::Write => IoKind::Write,
            MemberIoKind::Flush => IoKind::Flush,
            MemberIoKind::Discard => IoKind::Discard,
        };
        let (offset, len) = match kind {
            IoKind::Flush => (0, 0),
            _ => (
                m.data_byte(mio.sector.checked_mul(SECTOR_SIZE)?),
                mio.sectors.checked_mul(SECTOR_SIZE)?,
            ),
        };
        let buf = match mio.buf {
            IoBuf::None => IoBuffer::None,
            IoBuf::Caller { buf, offset } => IoBuffer::Caller { token: buf, offset },
            IoBuf::Scratch { index } => IoBuffer::Machine {
                index: BufIdx(BufSel::Scratch(index)),
                offset: 0,
            },
        };
        Some(Io {
            id: IoId(mio.id.raw()),
            member: mi,
            kind,
            offset,
            len,
            fua: mio.fua,
            preflush: false,
            buf,
        })
    }

    /// Moves engine events into the metadata queue and runs the metadata rounds as far as
    /// they go without I/O, until the engine has nothing more to say.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(ev) = self.engine.poll_event() {
                self.meta.queue_event(ev);
                moved = true;
            }
            let acted = self.advance_metadata();
            if !moved && !acted {
                return;
            }
        }
    }
}
