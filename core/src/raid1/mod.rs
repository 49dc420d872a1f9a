//! The sans-IO RAID1 engine.
//!
//! [`Raid1`] is a state machine in the quinn-proto mould: it never performs I/O, never reads a
//! clock, never blocks, spawns nothing and never panics, whatever the inputs or their order. A
//! driver (blocking loop, io_uring reactor, kernel shim, C event loop, the [`sim`] simulator)
//! feeds it inputs and carries out the outputs it asks for. All memory is sized when the engine is
//! built ([`Raid1Config`] bounds every pool); when a pool is exhausted the engine answers with
//! back-pressure ([`SubmitError::Busy`]) or postpones work, it never allocates on the I/O path.
//!
//! # The four method families and the call order
//!
//! - **Getters** (`&self`): [`Raid1::member_state`], [`Raid1::member_counters`],
//!   [`Raid1::requests_in_flight`], [`Raid1::member_ios_in_flight`], [`Raid1::is_clean`], …
//! - **Inputs** (`handle_*`): [`Raid1::handle_submit`] (an array request from the user),
//!   [`Raid1::handle_member_completion`] (a member I/O the driver finished),
//!   [`Raid1::handle_metadata_done`] (the owner made a metadata [`Event`] durable) and
//!   [`Raid1::handle_timeout`] (time has passed).
//! - **Outputs** (`poll_*`, all `#[must_use]`): [`Raid1::poll_member_io`] (issue this member
//!   I/O), [`Raid1::poll_event`] (metadata work for the owner), [`Raid1::poll_completion`] (an
//!   array request is finished) and [`Raid1::poll_timeout`] (when to call `handle_timeout`).
//!
//! A driver loop is:
//!
//! 1. `handle_timeout(now)` whenever its clock moved (at the latest when the deadline from
//!    `poll_timeout` passes). The engine's notion of time is the latest `now` it was given; it uses
//!    it for the idle (safe-mode) timer, the bitmap daemon and read-error decay.
//! 2. Feed inputs: submissions, member completions, metadata acknowledgements.
//! 3. Drain `poll_member_io` until `None` and issue each I/O; drain `poll_event` until `None` and
//!    start each metadata write (they must be made durable **in the order polled**, then
//!    acknowledged with `handle_metadata_done(token)`); drain `poll_completion` until `None`.
//! 4. Arm a timer from `poll_timeout`.
//!
//! # Buffers (zero copy)
//!
//! Array requests name the caller's memory with an opaque [`BufRef`] token plus a byte offset.
//! Member I/Os for user data reference that same token ([`IoBuf::Caller`]) with the byte offset of
//! their piece, so the driver maps tokens to memory and data is never copied. Only read-error
//! repair uses engine-owned scratch buffers ([`IoBuf::Scratch`], reached with
//! [`Raid1::scratch`]/[`Raid1::scratch_mut`]); their number is fixed by the configuration.
//!
//! # Request state machine
//!
//! Every request (user request or internal repair) passes through:
//!
//! ```text
//!   queued --(no earlier overlapping conflicting request)--> gated
//!   gated  --(writes: array dirty + bitmap bits set, acks received)--> issuing
//!   issuing --(member I/Os handed out, as the member-I/O pool allows)--> in flight
//!   in flight --(all member I/Os done; read errors retried on other mirrors)--> settling
//!   settling --(writes: bad-block / member-failed events acknowledged)--> completed
//! ```
//!
//! Ordering: two requests conflict when their ranges overlap and at least one writes (a repair
//! counts as a write). A request starts only when no earlier conflicting request is still active,
//! so overlapping writes reach the members in submission order and a read never sees half of a
//! write. Flushes do not wait: like a block device, a flush covers the writes completed before it
//! was submitted.
//!
//! # Reads (md 6.9+ `read_balance`)
//!
//! A read touching sectors at or above `resync_offset` goes to the first usable mirror (in sync, or
//! recovered past the range). Otherwise, among mirrors that are working, not write-mostly, recovered
//! past the range and free of bad blocks in it: the mirror whose last read ended at this sector
//! (sequential affinity) wins; else the one with the least pending I/O if any mirror is
//! non-rotational or one is idle; else the one whose head is closest. Failing that, the mirror with
//! the longest good prefix before a bad block serves that prefix and the rest is balanced again
//! (the request completes when every piece has). Write-mostly mirrors are the last resort.
//!
//! A failed read is retried on another mirror; when the retry succeeds and a scratch buffer is
//! free, a repair copies the good data back over the failed range on the failing mirror and reads
//! it again to verify (md's `fix_read_error`); verified sectors are counted in
//! [`MemberCounters::corrected`]. More than `max_read_errors` read errors (the count halves for
//! every hour of engine time since the previous error) fail the member, unless it is the last
//! working mirror. When no mirror can serve a piece the error reaches the caller.
//!
//! # Writes and the metadata contract
//!
//! A write goes to every working member (in sync or recovering), skipping ranges recorded as bad on
//! that member; it succeeds when at least one in-sync member took it. A member whose write failed
//! gets the range recorded as a bad block when its table has room ([`Event::BadBlocks`]), else is
//! failed ([`Event::MemberFailed`], never the last in-sync member); the write completes only after
//! those events are acknowledged. Before the first write after a clean period the engine emits
//! [`Event::MarkDirty`] and holds writes until it is acknowledged; before a write touches a bitmap
//! chunk whose bit is clear it emits [`Event::BitmapSet`] and holds that write. After
//! `safemode_delay_ns` without writes it emits [`Event::MarkClean`]; bitmap bits of chunks idle for
//! two daemon passes are cleared ([`Event::BitmapClear`]) when every mirror is in sync and the chunk
//! saw no degraded write.
//!
//! Outstanding tokens are bounded, sized for an owner that acknowledges roughly in order: all
//! but 64 places for the mandatory events above, 64 for the optional ones (clears and a read
//! repair's record). An owner that holds acknowledgements back until the mandatory share is
//! full stalls writes (they wait for room, never complete without their records); a member
//! failure that finds no room is owed and emitted once a place frees, and writes that did not
//! reach that member wait for it.
//!
//! # Sync actions ([`Raid1::start_sync`])
//!
//! [`SyncAction::Resync`] copies the first in-sync mirror over the others from `resync_offset`
//! to the end (with a bitmap, only chunks whose bit is set; clean chunks are skipped);
//! [`SyncAction::Recovery`] rebuilds recovering members from their `recovery_offset` (a member
//! re-added with [`Raid1::re_add_member`] gets only the dirty chunks); [`SyncAction::Check`]
//! reads every in-sync mirror and adds the block's sectors to `mismatch_cnt` for each mirror
//! that differs from the first one read (md's `process_checks`; a mirror whose read failed counts
//! too and is rewritten, as md does even in check); [`SyncAction::Repair`] also overwrites the
//! differing mirrors. Work goes in blocks of [`SYNC_BLOCK_SECTORS`] (never across a bitmap
//! chunk or a bad range), at most `sync_window` in flight, each with engine buffers from the
//! sync pool ([`IoBuf::Scratch`]). A sync block is an ordinary entry of the ordered request
//! list that counts as a write: user requests submitted after it wait for it, it waits for user
//! writes submitted before it (md's barrier as range conflicts), so user I/O is never starved.
//!
//! Speed (md's `speed_limit_min/max`, per array): above `sync_speed_max_kib` over the current
//! 3 s window the next block waits (the engine arms [`Raid1::poll_timeout`]); above
//! `sync_speed_min_kib` and with user I/O in flight or submitted in the last 100 ms, one block
//! at a time (md waits for `recovery_active` to drain when the array is busy); below the minimum
//! the whole window runs.
//!
//! Progress moves `resync_offset` or the targets' `recovery_offset` in memory as blocks
//! complete, and [`Event::SyncCheckpoint`] reports it every 1/16 of the array (md checkpoints
//! every `max_sectors >> 4`); the owner persists it. At the end: a resync sets `resync_offset`
//! to `u64::MAX` (checkpoint `u64::MAX`) and releases the synced bitmap chunks
//! ([`Event::BitmapClear`]); a recovery turns its targets in sync ([`Event::MemberInSync`]);
//! every action ends with [`Event::SyncDone`] (`sectors_copied` = sectors written to members).
//! [`Raid1::abort_sync`] lets the blocks in flight finish, then emits a checkpoint and an
//! interrupted `SyncDone`.
//!
//! # Membership
//!
//! Entries `0..raid_disks` of the configuration are the slots; a member's slot is
//! [`Raid1::member_slot`]. [`Raid1::fail_member`] (never the last in-sync mirror) frees the slot
//! and interrupts a running sync (md's `MD_RECOVERY_INTR`; an interrupted resync restarts from
//! its checkpoint); [`Raid1::remove_member`] takes out a faulty or spare member (I/Os still in
//! flight to it complete as stale and are ignored); [`Raid1::add_member`] adds a spare at a free
//! index. Whenever a slot is empty and a spare exists (after an add or a failure) and no sync
//! runs, the spare takes the slot and recovery starts on its own, as md's `md_check_recovery`
//! does.

mod balance;
mod engine;
pub mod sim;

pub use engine::{DirectDone, FastReadStats, Raid1, Submitted, DIRECT_BIT};

use alloc::vec::Vec;

/// Default idle time before the array is marked clean again (md's safe-mode delay, 200 ms).
pub const DEFAULT_SAFEMODE_DELAY_NS: u64 = 200_000_000;
/// Default bitmap daemon period (md's `daemon_sleep`, 5 s).
pub const DEFAULT_DAEMON_SLEEP_NS: u64 = 5_000_000_000;
/// md's default limit of read errors before a member is failed.
pub const DEFAULT_MAX_READ_ERRORS: u32 = 20;
/// Most mirror slots the engine handles.
pub const MAX_SLOTS: usize = 64;
/// Longest range one bad-block log entry covers (sectors, with a shift of 0).
pub const BB_ENTRY_MAX_SECTORS: u64 = 512;
/// One hour of engine time, the read-error decay period.
pub const READ_ERROR_DECAY_NS: u64 = 3_600_000_000_000;
/// Sectors per sync block (md's `RESYNC_BLOCK_SIZE`, 64 KiB).
pub const SYNC_BLOCK_SECTORS: u64 = 128;
/// md's default minimum sync speed (`speed_limit_min`, KiB/s).
pub const DEFAULT_SYNC_SPEED_MIN_KIB: u64 = 1_000;
/// md's default maximum sync speed (`speed_limit_max`, KiB/s).
pub const DEFAULT_SYNC_SPEED_MAX_KIB: u64 = 200_000;
/// Length of one sync-speed measurement window (md's `SYNC_MARK_STEP`, 3 s).
pub const SYNC_MARK_STEP_NS: u64 = 3_000_000_000;
/// Checkpoints per sync action (md persists progress every 1/16 of the range).
pub const SYNC_CHECKPOINTS: u64 = 16;

/// An opaque caller buffer token: the driver maps it to memory. The engine never looks inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufRef(pub u64);

/// Handle of a submitted array request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReqId(pub(crate) u64);

/// Handle of a member I/O handed out by [`Raid1::poll_member_io`]. Its two top bits are
/// never set: an owner may tag ids with them (the array machine marks its metadata I/Os with
/// bit 63).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberIoId(pub(crate) u64);

/// Handle of a metadata event; acknowledge it with [`Raid1::handle_metadata_done`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetaToken(pub(crate) u64);

impl ReqId {
    /// The raw value (for logs and FFI); opaque.
    pub fn raw(self) -> u64 {
        self.0
    }
    /// A small index, below the engine's request limit and unique among the requests in
    /// flight (a slot is reused once its request completed): a driver may keep its per-request
    /// state in a vector indexed by it instead of a map (and compare [`ReqId::raw`] to tell a
    /// reuse apart).
    pub fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
}

impl MemberIoId {
    /// The raw value (for logs and FFI); opaque.
    pub fn raw(self) -> u64 {
        self.0
    }
    /// An id from its raw value (FFI); one the engine did not hand out is refused by the
    /// completion calls.
    pub fn from_raw(raw: u64) -> Self {
        MemberIoId(raw)
    }
}

impl MetaToken {
    /// The raw value (for logs and FFI); opaque.
    pub fn raw(self) -> u64 {
        self.0
    }
}

/// What an array request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// Read `sectors` sectors into the buffer.
    Read,
    /// Write `sectors` sectors from the buffer.
    Write,
    /// Make completed writes durable on every working member.
    Flush,
    /// Discard a range (no buffer).
    Discard,
}

/// An array request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayRequest {
    /// What to do.
    pub kind: RequestKind,
    /// First array sector (ignored for flushes).
    pub sector: u64,
    /// Length in sectors (0 only for flushes).
    pub sectors: u64,
    /// Force unit access: member writes carry FUA.
    pub fua: bool,
    /// The caller's buffer.
    pub buf: BufRef,
    /// Byte offset of the request's data within `buf`.
    pub buf_offset: u64,
}

impl ArrayRequest {
    /// A read of `sectors` sectors at `sector` into `buf` (offset 0).
    pub fn read(sector: u64, sectors: u64, buf: BufRef) -> Self {
        Self {
            kind: RequestKind::Read,
            sector,
            sectors,
            fua: false,
            buf,
            buf_offset: 0,
        }
    }
    /// A write of `sectors` sectors at `sector` from `buf` (offset 0).
    pub fn write(sector: u64, sectors: u64, buf: BufRef) -> Self {
        Self {
            kind: RequestKind::Write,
            sector,
            sectors,
            fua: false,
            buf,
            buf_offset: 0,
        }
    }
    /// A flush.
    pub fn flush() -> Self {
        Self {
            kind: RequestKind::Flush,
            sector: 0,
            sectors: 0,
            fua: false,
            buf: BufRef(0),
            buf_offset: 0,
        }
    }
    /// A discard.
    pub fn discard(sector: u64, sectors: u64) -> Self {
        Self {
            kind: RequestKind::Discard,
            sector,
            sectors,
            fua: false,
            buf: BufRef(0),
            buf_offset: 0,
        }
    }
}

/// What a member I/O does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberIoKind {
    /// Read into the buffer.
    Read,
    /// Write from the buffer.
    Write,
    /// Cache flush (no range, no buffer).
    Flush,
    /// Discard the range (no buffer).
    Discard,
}

/// The memory a member I/O transfers to or from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBuf {
    /// No data (flush, discard).
    None,
    /// The caller's buffer `buf`, starting `offset` bytes in.
    Caller {
        /// The caller's token from the array request.
        buf: BufRef,
        /// Byte offset within that buffer.
        offset: u64,
    },
    /// Engine scratch buffer `index` (see [`Raid1::scratch_mut`]), from its start.
    Scratch {
        /// Which scratch buffer.
        index: usize,
    },
}

/// A member I/O the driver must issue, then report with [`Raid1::handle_member_completion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct MemberIo {
    /// Handle to report the completion with.
    pub id: MemberIoId,
    /// Member slot.
    pub member: usize,
    /// What to do.
    pub kind: MemberIoKind,
    /// First sector, relative to the member's data area.
    pub sector: u64,
    /// Length in sectors.
    pub sectors: u64,
    /// Force unit access (writes only).
    pub fua: bool,
    /// The memory: `sectors * 512` bytes.
    pub buf: IoBuf,
}

/// How a member I/O failed (reported by the driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemberError {
    /// The device reported an I/O error (errno as given; 5 = EIO).
    #[error("member I/O error (errno {0})")]
    Io(i32),
    /// The device did not answer in time (the driver's own timeout).
    #[error("member I/O timed out")]
    Timeout,
}

impl From<crate::device::DeviceError> for MemberError {
    fn from(e: crate::device::DeviceError) -> Self {
        match e {
            crate::device::DeviceError::Io { errno, .. } => MemberError::Io(errno),
            _ => MemberError::Io(5),
        }
    }
}

/// Why an array request failed (member faults that no mirror could cover).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArrayIoError {
    /// No working mirror could read this sector.
    #[error("read failed at array sector {sector}: no working mirror has the data")]
    ReadFailed {
        /// First sector of the piece that could not be read.
        sector: u64,
    },
    /// No in-sync mirror took the write.
    #[error("write failed at array sector {sector}: no in-sync mirror took it")]
    WriteFailed {
        /// First sector of the write.
        sector: u64,
    },
    /// A member flush failed.
    #[error("flush failed on member {member}")]
    FlushFailed {
        /// The first member whose flush failed.
        member: usize,
    },
    /// The array has no working member.
    #[error("no working member")]
    NoWorkingMember,
}

/// Why a submission was refused. Nothing was queued; the caller may retry later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Back-pressure: the request pool (or the completion queue) is full. Drain completions and
    /// retry.
    #[error("request pool full ({max} requests in flight)")]
    Busy {
        /// The pool size.
        max: usize,
    },
    /// The range runs past the end of the array (API misuse).
    #[error(
        "request at sector {sector} (+{sectors}) runs past the array's {array_sectors} sectors"
    )]
    OutOfRange {
        /// First sector.
        sector: u64,
        /// Length.
        sectors: u64,
        /// Array size.
        array_sectors: u64,
    },
    /// A read, write or discard of zero sectors, or a buffer offset that overflows (API misuse).
    #[error("invalid request: {0}")]
    Invalid(&'static str),
}

/// Errors building the engine or from call-order misuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration is inconsistent (API misuse).
    #[error("invalid RAID1 configuration: {0}")]
    InvalidConfig(&'static str),
    /// Allocating the engine's pools failed.
    #[error("out of memory sizing the RAID1 engine's pools")]
    NoMemory,
    /// A completion for a member I/O the engine does not know (stale or forged id).
    #[error("unknown member I/O id {0}")]
    UnknownMemberIo(u64),
    /// An acknowledgement for a metadata token the engine does not know.
    #[error("unknown metadata token {0}")]
    UnknownToken(u64),
    /// An engine invariant broke (a bug; the engine refuses the input instead of panicking).
    #[error("internal error: {0}")]
    Unreachable(&'static str),
    /// A command (sync action, membership change) is not possible in the current state.
    #[error("refused: {0}")]
    Refused(&'static str),
}

/// Metadata work for the owner (the Array layer), in the order it must become durable.
///
/// Every event carries a [`MetaToken`]; once the superblocks / bitmap are written and flushed the
/// owner calls [`Raid1::handle_metadata_done`] with it. Writes that depend on the event wait.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Event {
    /// Write the superblocks dirty (md: `resync_offset = 0`, events + 1) before any data write.
    MarkDirty {
        /// Acknowledge with this token.
        token: MetaToken,
    },
    /// The array has been idle: write the superblocks clean.
    MarkClean {
        /// Acknowledge with this token.
        token: MetaToken,
    },
    /// Set bitmap bits `first_chunk .. first_chunk + chunks`, write and flush the bitmap.
    BitmapSet {
        /// Acknowledge with this token.
        token: MetaToken,
        /// First chunk.
        first_chunk: u64,
        /// Number of chunks.
        chunks: u64,
    },
    /// Clear bitmap bits `first_chunk .. first_chunk + chunks` (lazily; no write waits on it).
    BitmapClear {
        /// Acknowledge with this token.
        token: MetaToken,
        /// First chunk.
        first_chunk: u64,
        /// Number of chunks.
        chunks: u64,
    },
    /// Record `sector .. sector + sectors` (data-area sectors) as bad in `member`'s log.
    BadBlocks {
        /// Acknowledge with this token.
        token: MetaToken,
        /// Member slot.
        member: usize,
        /// First bad sector (relative to the data area).
        sector: u64,
        /// Length.
        sectors: u64,
    },
    /// `member` failed: record its role as faulty in the survivors' superblocks.
    MemberFailed {
        /// Acknowledge with this token.
        token: MetaToken,
        /// Member slot.
        member: usize,
    },
    /// Sync progress: every sector below `sector` is done for `action`. For a resync the owner
    /// persists it as `resync_offset` (md's `recovery_cp`: written into the superblock while
    /// the array is clean; a dirty superblock says 0 — [`Raid1::resync_offset`] always has the
    /// current value), for a recovery as the `recovery_offset` of every member still
    /// [`PositionState::Recovering`] (read it with [`Raid1::member_state`] and its role with
    /// [`Raid1::member_slot`]); `u64::MAX` means the range is complete. Check and repair
    /// report progress the same way (md's `sync_completed`); nothing needs persisting. The
    /// members must be flushed before a checkpoint is made durable (md's superblock writes
    /// carry a preflush).
    SyncCheckpoint {
        /// Acknowledge with this token.
        token: MetaToken,
        /// The running action.
        action: SyncAction,
        /// Done below this sector.
        sector: u64,
    },
    /// A sync action ended (finished, or interrupted by [`Raid1::abort_sync`] or a fault).
    SyncDone {
        /// Acknowledge with this token.
        token: MetaToken,
        /// The action.
        action: SyncAction,
        /// Mismatched sectors found (md `mismatch_cnt`; check and repair only).
        mismatch_cnt: u64,
        /// Sectors written to members by the action (summed over members).
        sectors_copied: u64,
        /// The action stopped before the end of its range.
        interrupted: bool,
    },
    /// Recovery finished on `member`: it is in sync in `slot` (the owner records the role).
    MemberInSync {
        /// Acknowledge with this token.
        token: MetaToken,
        /// Member index.
        member: usize,
        /// Its slot (role).
        slot: usize,
    },
}

impl Event {
    /// The token to acknowledge.
    pub fn token(&self) -> MetaToken {
        match *self {
            Event::MarkDirty { token }
            | Event::MarkClean { token }
            | Event::BitmapSet { token, .. }
            | Event::BitmapClear { token, .. }
            | Event::BadBlocks { token, .. }
            | Event::MemberFailed { token, .. }
            | Event::SyncCheckpoint { token, .. }
            | Event::SyncDone { token, .. }
            | Event::MemberInSync { token, .. } => token,
        }
    }
}

/// The state of an engine position (a slot or spare position; the array's members have
/// [`crate::array::MemberState`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PositionState {
    /// The slot is empty.
    Missing,
    /// Holds current data.
    InSync,
    /// Being recovered: sectors below `recovery_offset` are current.
    Recovering {
        /// First sector not yet recovered.
        recovery_offset: u64,
    },
    /// Failed: receives no I/O.
    Faulty,
    /// A present spare without a slot: receives no I/O until recovery gives it a slot.
    Spare,
}

impl PositionState {
    /// Receives writes and flushes.
    pub fn is_working(self) -> bool {
        matches!(
            self,
            PositionState::InSync | PositionState::Recovering { .. }
        )
    }
}

/// A member's bad-block table as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BadBlockTable {
    /// Sorted, non-overlapping `(start, len)` ranges in data-area sectors.
    pub ranges: Vec<(u64, u64)>,
    /// How many log entries fit (md: 512); a range counts one entry per 512 sectors.
    pub capacity: usize,
}

/// Static description of one member slot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberConfig {
    /// A device fills the slot.
    pub present: bool,
    /// Its data is current everywhere.
    pub in_sync: bool,
    /// When not in sync: sectors below this are current.
    pub recovery_offset: u64,
    /// Read only as a last resort (md `WriteMostly`).
    pub write_mostly: bool,
    /// Fail the member on its first read error when another mirror can serve (md `FailFast`).
    pub failfast: bool,
    /// Spinning disk: reads prefer the closest head position.
    pub rotational: bool,
    /// Its bad-block table, if the format has one.
    pub bad_blocks: Option<BadBlockTable>,
    /// A present spare (no slot; `in_sync` and `recovery_offset` are ignored).
    pub spare: bool,
    /// When not in sync: below this sector recovery copies only the chunks whose bitmap bit
    /// is set (md's bitmap-based recovery of a re-added member); from it on, every block.
    /// 0 (the default) is a full copy from `recovery_offset`.
    pub bitmap_recovery_below: u64,
}

impl MemberConfig {
    /// A present, in-sync, non-rotational member without a bad-block table.
    pub fn in_sync() -> Self {
        Self {
            present: true,
            in_sync: true,
            recovery_offset: u64::MAX,
            write_mostly: false,
            failfast: false,
            rotational: false,
            bad_blocks: None,
            spare: false,
            bitmap_recovery_below: 0,
        }
    }
    /// A present spare (md role 0xffff): recovery may give it an empty slot.
    pub fn spare() -> Self {
        Self {
            in_sync: false,
            recovery_offset: 0,
            spare: true,
            ..Self::in_sync()
        }
    }
    /// A present member that is not in sync: current below `recovery_offset`.
    pub fn recovering(recovery_offset: u64) -> Self {
        Self {
            in_sync: false,
            recovery_offset,
            ..Self::in_sync()
        }
    }
    /// An empty slot.
    pub fn missing() -> Self {
        Self {
            present: false,
            in_sync: false,
            recovery_offset: 0,
            ..Self::in_sync()
        }
    }
}

/// Write-intent bitmap geometry (chunk arithmetic only; the owner knows the format).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BitmapConfig {
    /// Sectors per bitmap chunk (> 0).
    pub chunk_sectors: u64,
    /// Daemon period in ns.
    pub daemon_sleep_ns: u64,
    /// Chunks whose bit is set on disk at start, as sorted `(first, count)` ranges.
    pub set_chunks: Vec<(u64, u64)>,
}

impl BitmapConfig {
    /// A bitmap with `chunk_sectors` per chunk, md's 5 s daemon and no bit set.
    pub fn new(chunk_sectors: u64) -> Self {
        Self {
            chunk_sectors,
            daemon_sleep_ns: DEFAULT_DAEMON_SLEEP_NS,
            set_chunks: Vec::new(),
        }
    }
}

/// Everything the engine needs; every pool is sized from here.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Raid1Config {
    /// One entry per slot (1..=[`MAX_SLOTS`]).
    pub members: Vec<MemberConfig>,
    /// Array size in sectors.
    pub array_sectors: u64,
    /// Array requests in flight (submitted, not yet polled as completed).
    pub max_requests: usize,
    /// Member I/Os in flight (handed out or queued, not yet completed).
    pub max_member_ios: usize,
    /// Sectors below this are known in sync; reads at or above it use the first usable mirror.
    pub resync_offset: u64,
    /// The array starts clean (the first write emits [`Event::MarkDirty`]).
    pub start_clean: bool,
    /// Idle time before [`Event::MarkClean`].
    pub safemode_delay_ns: u64,
    /// The write-intent bitmap, if any.
    pub bitmap: Option<BitmapConfig>,
    /// Scratch buffers for read-error repair (0 disables repair).
    pub fix_buffers: usize,
    /// Size of each scratch buffer in sectors (a repair goes in pieces of this size).
    pub fix_buffer_sectors: u64,
    /// Read errors tolerated before a member is failed.
    pub max_read_errors: u32,
    /// Number of mirror slots (md `raid_disks`). Entry `i < raid_disks` of `members` fills slot
    /// `i` (unless it is missing or a spare); entries from `raid_disks` on are spares or free
    /// member positions for [`Raid1::add_member`].
    pub raid_disks: usize,
    /// Engine-owned 64 KiB buffers for sync actions (a resync/recovery block takes one, a
    /// check/repair block one per mirror read). 0 disables sync actions.
    pub sync_buffers: usize,
    /// Sync blocks in flight at most (the window that keeps user I/O from starving).
    pub sync_window: usize,
    /// Minimum sync speed, KiB/s: below it sync proceeds even when user I/O is active.
    pub sync_speed_min_kib: u64,
    /// Maximum sync speed, KiB/s: above it sync waits.
    pub sync_speed_max_kib: u64,
}

impl Raid1Config {
    /// `slots` in-sync members, `array_sectors` long, with md's defaults: 128 requests, 1024
    /// member I/Os, fully synced, clean, 200 ms safe mode, no bitmap, 4 repair buffers of 8
    /// sectors (md repairs a page at a time), 20 read errors, `slots` raid disks, 8 sync
    /// buffers (512 KiB), a window of 4 sync blocks and md's sync speed limits.
    pub fn new(slots: usize, array_sectors: u64) -> Self {
        let mut members = Vec::new();
        for _ in 0..slots {
            members.push(MemberConfig::in_sync());
        }
        Self {
            members,
            array_sectors,
            max_requests: 128,
            max_member_ios: 1024,
            resync_offset: u64::MAX,
            start_clean: true,
            safemode_delay_ns: DEFAULT_SAFEMODE_DELAY_NS,
            bitmap: None,
            fix_buffers: 4,
            fix_buffer_sectors: 8,
            max_read_errors: DEFAULT_MAX_READ_ERRORS,
            raid_disks: slots,
            sync_buffers: 8,
            sync_window: 4,
            sync_speed_min_kib: DEFAULT_SYNC_SPEED_MIN_KIB,
            sync_speed_max_kib: DEFAULT_SYNC_SPEED_MAX_KIB,
        }
    }
}

/// A background sync action (md's `sync_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncAction {
    /// After an unclean shutdown: copy the first in-sync mirror over the others from
    /// `resync_offset` on (with a bitmap, only chunks whose bit is set).
    Resync,
    /// Rebuild recovering members from their `recovery_offset` on (a bitmap re-add copies only
    /// dirty chunks).
    Recovery,
    /// Read every in-sync mirror and count mismatched sectors; write nothing.
    Check,
    /// Like check, and copy the first readable mirror over the mismatching ones.
    Repair,
}

impl SyncAction {
    /// md's word for it (`sync_action` in sysfs).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncAction::Resync => "resync",
            SyncAction::Recovery => "recover",
            SyncAction::Check => "check",
            SyncAction::Repair => "repair",
        }
    }
}

/// Progress of the running sync action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncStatus {
    /// The action.
    pub action: SyncAction,
    /// Sectors of the range done (including clean chunks skipped).
    pub done_sectors: u64,
    /// Sectors in the range.
    pub total_sectors: u64,
    /// Mismatched sectors so far (md `mismatch_cnt`).
    pub mismatch_cnt: u64,
    /// Sectors written to members so far (summed over members).
    pub sectors_copied: u64,
    /// Current speed over the measurement window (KiB/s, md's `sync_speed`).
    pub rate_kib_s: u64,
    /// An abort was requested; the blocks in flight are draining.
    pub aborting: bool,
}

/// Per-member counters (the evidence for the balancing policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberCounters {
    /// Member reads issued.
    pub reads: u64,
    /// Member writes issued (including repairs).
    pub writes: u64,
    /// Sectors read.
    pub read_sectors: u64,
    /// Sectors written.
    pub write_sectors: u64,
    /// Member I/Os handed out and not completed.
    pub pending: u32,
    /// Member I/Os that failed.
    pub errors: u64,
    /// Sectors repaired after read errors (md `cnt_corrected_read`).
    pub corrected: u64,
    /// Current (decayed) read-error count.
    pub read_errors: u32,
}
