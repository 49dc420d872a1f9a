//! Metadata rounds: engine events (and the machine's own commands) become ordered rounds of
//! superblock, bitmap-page and bad-block-log writes.
//!
//! One job runs at a time, in the order the events came; its in-memory change (dirty, a bit,
//! a role) is made when it starts, so a round always writes the state as of its event. A job
//! is a short list of steps, each one round: the round's writes go to every working member at
//! once, each with preflush + FUA, and the round is over when the last completes. A round in
//! which a member failed (a metadata write error) is followed by a superblock round recording
//! it, repeated until a round sees no new failure (md_update_sb). When the job's last round is
//! over its engine event is acknowledged and its notice goes out.

use super::super::intent;
use super::super::{Member, MemberState, SyncReport};
use super::superblocks::{lay_superblocks, resync_checkpoint, SbState};
use super::{BufIdx, BufSel, Detached, Io, IoBuffer, IoId, IoKind, Machine, Notice, META_BIT};
use crate::raid1::{Event, MemberError, MetaToken, SyncAction};
use crate::SECTOR_SIZE;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A superblock image buffer per member: large enough for 0.90 (4 KiB) and any 1.x.
const SB_BUF_BYTES: usize = 4096;

/// Work waiting for its rounds.
#[derive(Debug)]
enum Job {
    /// An engine event, acknowledged when its rounds are durable.
    Engine(Event),
    /// A superblock round the machine itself needs (after a removal).
    Superblocks,
    /// The clean marking of [`Machine::stop`].
    Stop,
    /// A member added: its superblock and the whole bitmap first, then the engine takes it.
    Add(Pending),
    /// A grown or resized bitmap: the whole bitmap on every working member, then the
    /// superblocks that point at it.
    BitmapThenSuperblocks,
}

/// The engine's side of an added member, carried out once its superblock round is durable
/// (before it, no recovery write may reach the device).
#[derive(Debug)]
pub(super) struct Pending {
    /// Engine position.
    pub pos: usize,
    /// Its engine configuration.
    pub cfg: crate::raid1::MemberConfig,
    /// A comeback to this slot (resumed recovery); `None`: a new spare.
    pub slot: Option<usize>,
}

/// One round of writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Superblocks on every working member, with the bitmap's header page (or the whole
    /// bitmap), events + 1.
    Superblocks { whole_bitmap: bool },
    /// The bitmap pages holding chunks `first..end`.
    BitmapPages { first: u64, end: u64 },
    /// Member `member`'s bad-block log, already encoded, at byte `offset`.
    BadBlockLog { member: usize, offset: u64 },
    /// A cache flush on every working member, before superblocks that vouch for data (clean,
    /// a checkpoint): a cut inside the superblock round could otherwise leave one member's
    /// superblock clean and another's data cache unflushed, and md accepts a member one event
    /// behind.
    FlushAll,
}

#[derive(Debug)]
struct Current {
    token: Option<MetaToken>,
    add: Option<Pending>,
    steps: VecDeque<Step>,
    notice: Option<Notice>,
    stop: bool,
}

#[derive(Clone, Copy, Debug)]
struct Write {
    member: usize,
    offset: u64,
    buf: BufSel,
    start: usize,
    len: usize,
    done: bool,
    flush: bool,
}

/// The metadata state of a [`Machine`].
#[derive(Debug)]
pub(super) struct Metadata {
    queue: VecDeque<Job>,
    current: Option<Current>,
    /// The writes of the round in flight (empty: none).
    writes: Vec<Write>,
    handed: usize,
    outstanding: usize,
    /// A member failed in the round just finished.
    new_failure: bool,
    /// Numbers the rounds, so a completion of an earlier round is refused.
    generation: u64,
    sb_bufs: Vec<Vec<u8>>,
    bb_bufs: Vec<Vec<u8>>,
}

/// The size of a member's bad-block log area (known from its superblock).
// mutants: any size here is equivalent in effect: `Member::add_bad_blocks` resizes the buffer
// to the log area before encoding into it; this only sizes it up front so that the I/O path
// does not allocate (excluded in .cargo/mutants.toml).
fn bb_len(m: &Member<Detached>) -> usize {
    match &m.sb {
        crate::format::probe::Superblock::V1(s, _) => {
            crate::format::badblocks::log_location(s).map_or(0, |(_, len)| len)
        }
        _ => 0,
    }
}

impl Metadata {
    /// Buffers for `members`, sized now (a bad-block log area is known from the superblock).
    pub(super) fn new(members: &[Member<Detached>]) -> Self {
        Metadata {
            queue: VecDeque::with_capacity(64),
            current: None,
            writes: Vec::with_capacity(3 * members.len() + 2),
            handed: 0,
            outstanding: 0,
            new_failure: false,
            generation: 0,
            sb_bufs: members
                .iter()
                .map(|_| alloc::vec![0; SB_BUF_BYTES])
                .collect(),
            bb_bufs: members.iter().map(|m| alloc::vec![0; bb_len(m)]).collect(),
        }
    }

    // mutants: `&&` → `||` before `self.writes` is equivalent: between calls `pump` leaves
    // either nothing queued or current, or a round in flight (writes non-empty), so idle is
    // `writes.is_empty()` either way (a round in flight: metadata_rounds.rs).
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.current.is_none() && self.writes.is_empty()
    }

    /// A sync action's end waiting for its job (action, mismatches, sectors copied,
    /// interrupted): [`Machine::end_sync`] records it when the job starts.
    pub(super) fn sync_end_queued(&self) -> Option<(SyncAction, u64, u64, bool)> {
        self.queue.iter().find_map(|j| match *j {
            Job::Engine(Event::SyncDone {
                action,
                mismatch_cnt,
                sectors_copied,
                interrupted,
                ..
            }) => Some((action, mismatch_cnt, sectors_copied, interrupted)),
            _ => None,
        })
    }

    pub(super) fn queue_event(&mut self, ev: Event) {
        self.queue.push_back(Job::Engine(ev));
    }

    pub(super) fn queue_superblocks(&mut self) {
        self.queue.push_back(Job::Superblocks);
    }

    pub(super) fn queue_bitmap_then_superblocks(&mut self) {
        self.queue.push_back(Job::BitmapThenSuperblocks);
    }

    pub(super) fn queue_add(&mut self, p: Pending) {
        self.queue.push_back(Job::Add(p));
    }

    /// Buffers for a member joining (a command, not the I/O path).
    pub(super) fn add_member(&mut self, m: &Member<Detached>) {
        self.sb_bufs.push(alloc::vec![0; SB_BUF_BYTES]);
        self.bb_bufs.push(alloc::vec![0; bb_len(m)]);
    }

    // mutants: equivalent in effect when the buffers are not removed (body, or `<` → `==`, `>`,
    // `<=`; `i` is always a member's index, below the length): every use rewrites a buffer in
    // full before it is written (superblock: `to_bytes` copied in; bad-block log:
    // `add_bad_blocks` resizes and encodes), so a stale buffer at an index only costs memory.
    pub(super) fn remove_member(&mut self, i: usize) {
        if i < self.sb_bufs.len() {
            self.sb_bufs.remove(i);
            self.bb_bufs.remove(i);
        }
    }

    pub(super) fn buffer(&self, sel: BufSel) -> Option<&[u8]> {
        match sel {
            BufSel::Superblock(i) => self.sb_bufs.get(i).map(|b| &b[..]),
            BufSel::BadBlocks(i) => self.bb_bufs.get(i).map(|b| &b[..]),
            _ => None,
        }
    }

    fn round_active(&self) -> bool {
        !self.writes.is_empty()
    }

    /// No metadata I/O waiting to be handed out.
    #[inline]
    pub(super) fn all_handed(&self) -> bool {
        self.handed >= self.writes.len()
    }

    /// The next write of the round in flight.
    pub(super) fn poll_io(&mut self) -> Option<Io> {
        let w = *self.writes.get(self.handed)?;
        let slot = self.handed as u64;
        self.handed += 1;
        Some(Io {
            // mutants: either `|` → `^` is equivalent: bit 63, bits 32..63 and a slot below
            // 2^32 are disjoint.
            id: IoId(META_BIT | (self.generation & 0x7fff_ffff) << 32 | slot),
            member: w.member,
            kind: if w.flush {
                IoKind::Flush
            } else {
                IoKind::Write
            },
            offset: w.offset,
            len: w.len as u64,
            fua: !w.flush,
            preflush: !w.flush,
            buf: if w.flush {
                IoBuffer::None
            } else {
                IoBuffer::Machine {
                    index: BufIdx(w.buf),
                    offset: w.start,
                }
            },
        })
    }
}

impl Machine {
    /// A metadata write finished; `Some(member)` when it failed that member newly.
    pub(super) fn complete_metadata_io(
        &mut self,
        raw: u64,
        result: Result<(), MemberError>,
    ) -> Result<(), super::MachineError> {
        let meta = &mut self.meta;
        let generation = (raw & !META_BIT) >> 32;
        let slot = (raw & 0xffff_ffff) as usize;
        let known = generation == meta.generation & 0x7fff_ffff
            && slot < meta.handed
            && meta.writes.get(slot).is_some_and(|w| !w.done);
        if !known {
            return Err(super::MachineError::UnknownIo(raw));
        }
        let member = meta.writes[slot].member;
        meta.writes[slot].done = true;
        meta.outstanding -= 1;
        if result.is_err() {
            self.mark_faulty(member);
            self.meta.new_failure = true;
        }
        if self.meta.outstanding == 0 && self.meta.handed == self.meta.writes.len() {
            self.meta.writes.clear();
            self.meta.handed = 0;
        }
        Ok(())
    }

    fn mark_faulty(&mut self, member: usize) {
        if let Some(m) = self.members.get_mut(member) {
            if m.state != MemberState::Faulty {
                m.state = MemberState::Faulty;
                self.notices.push_back(Notice::MemberFailed { member });
            }
        }
        // The engine stops using it too (md_error on a metadata write): no more reads from it,
        // no sync action counting it as a mirror. Refused only for the engine's last in-sync
        // mirror, whose I/O then fails with ENODEV (see `data_io`).
        if let Some(pos) = self.emap.iter().position(|m| *m == Some(member)) {
            use crate::raid1::PositionState as E;
            if !matches!(
                self.engine.member_state(pos),
                None | Some(E::Faulty | E::Missing)
            ) {
                let _ = self.engine.fail_member(pos);
            }
        }
    }

    /// Runs jobs and rounds as far as they go without I/O. Returns whether anything moved.
    pub(super) fn advance_metadata(&mut self) -> bool {
        let mut acted = false;
        loop {
            if self.meta.round_active() {
                return acted;
            }
            if let Some(cur) = self.meta.current.as_mut() {
                let step = if core::mem::take(&mut self.meta.new_failure) {
                    Some(Step::Superblocks {
                        whole_bitmap: false,
                    })
                } else {
                    cur.steps.pop_front()
                };
                acted = true;
                match step {
                    Some(step) => self.start_round(step),
                    None => self.finish_job(),
                }
                continue;
            }
            let job = match self.meta.queue.pop_front() {
                Some(job) => job,
                None if self.stop_ready() => Job::Stop,
                None => return acted,
            };
            acted = true;
            let cur = self.start_job(job);
            self.meta.current = Some(cur);
        }
    }

    fn stop_ready(&self) -> bool {
        self.stopping
            && !self.stopped
            && self.engine.requests_in_flight() == 0
            && self.engine.member_ios_in_flight() == 0
            && self.engine.sync_status().is_none()
    }

    fn finish_job(&mut self) {
        let Some(cur) = self.meta.current.take() else {
            return;
        };
        if let Some(token) = cur.token {
            // The engine knows every token it gave out; a refusal would be an engine bug and
            // must not wedge the machine.
            let _ = self.engine.handle_metadata_done(token);
        }
        if let Some(p) = cur.add {
            let r = match p.slot {
                Some(slot) => self.engine.resume_member(p.pos, p.cfg, slot),
                None => self.engine.add_member(p.pos, p.cfg),
            };
            if r.is_err() {
                // The engine refuses only what the machine checked (a free position, a free
                // slot); should it still, the device stays a spare nobody writes.
                self.emap[p.pos] = None;
            }
        }
        if let Some(n) = cur.notice {
            self.notices.push_back(n);
        }
        if cur.stop {
            self.stopped = true;
            self.notices.push_back(Notice::Stopped);
        }
    }

    /// Makes a job's in-memory change and lists its rounds (md's apply order).
    fn start_job(&mut self, job: Job) -> Current {
        let mut cur = Current {
            token: None,
            add: None,
            steps: VecDeque::new(),
            notice: None,
            stop: false,
        };
        let sb = Step::Superblocks {
            whole_bitmap: false,
        };
        let ev = match job {
            Job::Superblocks => {
                cur.steps.push_back(sb);
                return cur;
            }
            Job::BitmapThenSuperblocks => {
                if let Some(bm) = self.bitmap.as_ref() {
                    cur.steps.push_back(Step::BitmapPages {
                        first: 0,
                        end: bm.bitmap.chunks(),
                    });
                }
                cur.steps.push_back(sb);
                return cur;
            }
            Job::Add(p) => {
                cur.steps
                    .push_back(Step::Superblocks { whole_bitmap: true });
                cur.add = Some(p);
                return cur;
            }
            Job::Stop => {
                cur.stop = true;
                if self.readonly {
                    return cur;
                }
                // Clean, complete and owing nothing: the bits have done their job (superblocks
                // and bitmap go in one round; set bits on a clean array are ignored by md).
                let complete = self
                    .members
                    .iter()
                    .filter(|m| matches!(m.state, MemberState::InSync(_)))
                    .count() as u32
                    == self.raid_disks
                    && !self.needs_resync;
                let clear_bits =
                    complete && self.bitmap.as_ref().is_some_and(|b| b.dirty_chunks() > 0);
                if self.dirty || clear_bits {
                    self.dirty = false;
                    if clear_bits {
                        if let Some(bm) = self.bitmap.as_mut() {
                            bm.clear_all(u64::MAX);
                        }
                    }
                    // Every member's cache first: the clean superblocks vouch for the data.
                    cur.steps.push_back(Step::FlushAll);
                    cur.steps
                        .push_back(Step::Superblocks { whole_bitmap: true });
                    cur.notice = Some(Notice::Clean);
                }
                return cur;
            }
            Job::Engine(ev) => ev,
        };
        cur.token = Some(ev.token());
        if self.readonly {
            // A read-only array writes nothing, metadata included (md's "readonly" state).
            return cur;
        }
        match ev {
            Event::MarkDirty { .. } => {
                self.dirty = true;
                cur.steps.push_back(sb);
                cur.notice = Some(Notice::Dirty);
            }
            Event::MarkClean { .. } => {
                self.dirty = false;
                cur.steps.push_back(Step::FlushAll);
                cur.steps.push_back(sb);
                cur.notice = Some(Notice::Clean);
            }
            Event::BitmapSet {
                first_chunk,
                chunks,
                ..
            }
            | Event::BitmapClear {
                first_chunk,
                chunks,
                ..
            } => {
                let set = matches!(ev, Event::BitmapSet { .. });
                if let Some(bm) = self.bitmap.as_mut() {
                    let end = first_chunk.saturating_add(chunks).min(bm.bitmap.chunks());
                    for c in first_chunk..end {
                        let _ = if set {
                            bm.bitmap.set(c)
                        } else {
                            bm.bitmap.clear(c)
                        };
                    }
                    // mutants: `<` → `<=` is equivalent: with first_chunk == end (no chunk in
                    // range) the step rewrites the page holding chunk `first_chunk` with the
                    // bytes the disk already has (excluded in .cargo/mutants.toml).
                    if first_chunk < end {
                        cur.steps.push_back(Step::BitmapPages {
                            first: first_chunk,
                            end,
                        });
                    }
                }
            }
            Event::BadBlocks {
                member,
                sector,
                sectors,
                ..
            } => {
                if let Some(i) = self.emap.get(member).copied().flatten() {
                    let raw = &mut self.meta.bb_bufs[i];
                    match self.members[i].add_bad_blocks(sector, sectors, raw) {
                        Ok(Some(offset)) => {
                            cur.steps.push_back(Step::BadBlockLog { member: i, offset })
                        }
                        Ok(None) => {}
                        // The log cannot take it: md fails the member (md_error).
                        Err(_) => self.mark_faulty(i),
                    }
                    cur.steps.push_back(sb);
                }
            }
            Event::MemberFailed { member, .. } => {
                if let Some(i) = self.emap.get(member).copied().flatten() {
                    self.mark_faulty(i);
                }
                cur.steps.push_back(sb);
            }
            Event::SyncCheckpoint { action, sector, .. } => {
                self.sync_reached = sector;
                // md persists resync progress as resync_offset, recovery progress as the
                // rebuilt members' recovery_offset.
                if action == SyncAction::Resync && self.needs_resync {
                    self.resync_done = sector;
                    cur.steps.push_back(Step::FlushAll);
                    cur.steps.push_back(sb);
                } else if action == SyncAction::Recovery {
                    self.note_rebuild_progress();
                    cur.steps.push_back(Step::FlushAll);
                    cur.steps.push_back(sb);
                }
                cur.notice = Some(Notice::SyncProgress { action, sector });
            }
            Event::SyncDone {
                action,
                mismatch_cnt,
                sectors_copied,
                interrupted,
                ..
            } => {
                let report = self.end_sync(action, mismatch_cnt, sectors_copied, interrupted);
                cur.steps.push_back(Step::FlushAll);
                cur.steps.push_back(sb);
                cur.notice = Some(Notice::SyncDone(report));
            }
            Event::MemberInSync { member, slot, .. } => {
                if let Some(i) = self.emap.get(member).copied().flatten() {
                    // A replacement took the slot: its original is faulty in the same round
                    // (md's raid1_spare_active before md_update_sb).
                    let orig = (0..self.members.len()).find(|&k| {
                        k != i && self.members[k].state == MemberState::InSync(slot as u32)
                    });
                    // The engine keeps writing it until this round is durable (then it
                    // retires it and says so with MemberFailed).
                    if let Some(k) = orig {
                        self.members[k].state = MemberState::Faulty;
                        self.notices.push_back(Notice::MemberFailed { member: k });
                    }
                    if self.members[i].state == MemberState::Spare {
                        cur.notice = Some(Notice::SpareRebuilt {
                            member: i,
                            slot: slot as u32,
                        });
                    }
                    self.members[i].state = MemberState::InSync(slot as u32);
                    self.members[i].rebuild = None;
                }
                cur.steps.push_back(sb);
            }
        }
        cur
    }

    /// Records the end of a sync action (a completed resync clears the debt) and reports it.
    pub(super) fn end_sync(
        &mut self,
        action: SyncAction,
        mismatch_cnt: u64,
        sectors_copied: u64,
        interrupted: bool,
    ) -> SyncReport {
        if action == SyncAction::Resync && !interrupted {
            self.needs_resync = false;
            self.resync_done = u64::MAX;
        }
        let reached = core::mem::take(&mut self.sync_reached);
        let report = SyncReport {
            action,
            mismatch_cnt,
            sectors_copied,
            sectors_done: if interrupted {
                reached.min(self.component_sectors)
            } else {
                self.component_sectors
            },
            interrupted,
        };
        self.last_sync = Some(report);
        report
    }

    /// Copies the engine's recovery progress into the members being rebuilt.
    fn note_rebuild_progress(&mut self) {
        for (pos, m) in self.emap.iter().enumerate() {
            let Some(i) = *m else { continue };
            if let (Some(crate::raid1::PositionState::Recovering { recovery_offset }), Some(slot)) =
                (self.engine.member_state(pos), self.engine.member_slot(pos))
            {
                if self.members[i].state == MemberState::Spare {
                    self.members[i].rebuild =
                        Some((slot as u32, recovery_offset.min(self.component_sectors)));
                }
            }
        }
    }

    /// Lays out one round's writes (none when no working member is concerned).
    fn start_round(&mut self, step: Step) {
        self.meta.generation = self.meta.generation.wrapping_add(1);
        self.meta.writes.clear();
        self.meta.handed = 0;
        let bitmap_range = match step {
            Step::Superblocks { whole_bitmap } => {
                self.events += 1;
                let st = SbState {
                    events: self.events,
                    dirty: self.dirty,
                    resync_cp: resync_checkpoint(
                        self.dirty,
                        self.needs_resync,
                        self.resync_done,
                        self.component_sectors,
                    ),
                    now: self.now.wall_secs,
                };
                lay_superblocks(&mut self.members, self.raid_disks, &st);
                for (i, m) in self.members.iter().enumerate() {
                    if !m.state.is_working() {
                        continue;
                    }
                    let bytes = m.sb.to_bytes();
                    let buf = &mut self.meta.sb_bufs[i];
                    // mutants: `<` → `==` / `<=` is equivalent: every buffer is made
                    // SB_BUF_BYTES (4 KiB) long and no superblock is longer (1.x: 256 bytes +
                    // 2 × 1920 roles; 0.90: 4 KiB), so this never resizes (excluded).
                    if buf.len() < bytes.len() {
                        buf.resize(bytes.len(), 0);
                    }
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    self.meta.writes.push(Write {
                        member: i,
                        offset: m.sb_sector * SECTOR_SIZE,
                        buf: BufSel::Superblock(i),
                        start: 0,
                        len: bytes.len(),
                        done: false,
                        flush: false,
                    });
                }
                // The bitmap header carries the events too: a bitmap older than its
                // superblock reads as all dirty.
                self.bitmap.as_ref().map(|bm| {
                    if whole_bitmap {
                        0..bm.raw().len()
                    } else {
                        bm.pages_of(0, 1)
                    }
                })
            }
            Step::BitmapPages { first, end } => {
                self.bitmap.as_ref().map(|bm| bm.pages_of(first, end))
            }
            Step::FlushAll => {
                for (i, m) in self.members.iter().enumerate() {
                    if m.state.is_working() {
                        self.meta.writes.push(Write {
                            member: i,
                            offset: 0,
                            buf: BufSel::Bitmap,
                            start: 0,
                            len: 0,
                            done: false,
                            flush: true,
                        });
                    }
                }
                None
            }
            Step::BadBlockLog { member, offset } => {
                if self
                    .members
                    .get(member)
                    .is_some_and(|m| m.state.is_working())
                {
                    let len = self.meta.bb_bufs[member].len();
                    self.meta.writes.push(Write {
                        member,
                        offset,
                        buf: BufSel::BadBlocks(member),
                        start: 0,
                        len,
                        done: false,
                        flush: false,
                    });
                }
                None
            }
        };
        if let (Some(range), Some(bm)) = (bitmap_range, self.bitmap.as_mut()) {
            if bm.encode(self.events).is_err() {
                // Cannot happen (the image was sized from these bits); write no bitmap.
                return self.finish_round_setup();
            }
            for (i, m) in self.members.iter().enumerate() {
                if !m.state.is_working() || range.is_empty() {
                    continue;
                }
                if let Some(off) = intent::location(&m.sb, m.dev_sectors) {
                    self.meta.writes.push(Write {
                        member: i,
                        offset: off + range.start as u64,
                        buf: BufSel::Bitmap,
                        start: range.start,
                        len: range.len(),
                        done: false,
                        flush: false,
                    });
                }
            }
        }
        self.finish_round_setup();
    }

    fn finish_round_setup(&mut self) {
        self.align_writes();
        self.meta.outstanding = self.meta.writes.len();
    }

    /// Widens each write of the round to whole logical blocks of its member, as md rounds
    /// superblock and bitmap writes up to the device's block size: a 4 KiB-sector device (or
    /// O_DIRECT on one) refuses anything smaller. The widened bytes come from the same image
    /// (the superblock buffer's zeros past the superblock, the bitmap's bytes past its bits
    /// as read). A write whose block does not lie within its image is left as it is.
    fn align_writes(&mut self) {
        for i in 0..self.meta.writes.len() {
            let w = self.meta.writes[i];
            // mutants: `||` → `&&` is equivalent: the flushes are exactly the writes of length
            // 0 (no empty superblock, bitmap or bad-block-log write is queued; excluded).
            if w.flush || w.len == 0 {
                continue;
            }
            let Some(unit) = self.members.get(w.member).map(|m| m.dev.block_bytes()) else {
                continue;
            };
            let end = w.offset + w.len as u64;
            let (lo, hi) = (w.offset / unit * unit, end.div_ceil(unit) * unit);
            if (lo, hi) == (w.offset, end) {
                continue;
            }
            let back = (w.offset - lo) as usize;
            let len = (hi - lo) as usize;
            let image_len = self.buffer(BufIdx(w.buf)).map_or(0, |b| b.len());
            if back <= w.start && w.start - back + len <= image_len {
                let w = &mut self.meta.writes[i];
                w.offset = lo;
                w.start -= back;
                w.len = len;
            }
        }
    }
}
