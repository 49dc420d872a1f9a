//! Sync actions (resync, recovery, check, repair). Membership changes are in
//! [`super::membership`].
//!
//! A sync action walks its range in blocks of at most [`SYNC_BLOCK_SECTORS`] (md's 64 KiB
//! `RESYNC_BLOCK_SIZE`). Each block is an internal request in the engine's ordered request list,
//! so it conflicts with overlapping user I/O exactly like a write: user requests submitted after
//! it wait for it, and it waits for user writes submitted before it. At most `sync_window`
//! blocks are in flight, each holding engine buffers from the sync pool. Progress is the lowest
//! sector not yet done ("contiguous"); it moves `resync_offset` / the targets' `recovery_offset`
//! in memory and is reported every 1/16 of the array (md checkpoints `max_sectors >> 4`).

use super::*;

/// No buffer.
const NO_BUF: u16 = u16::MAX;
/// User I/O this recent makes the array "not idle" for the sync throttle.
const SYNC_IDLE_NS: u64 = 100_000_000;

/// Where a sync block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SyncStage {
    /// Reading: the source (resync, recovery) or every reader (check, repair).
    Read,
    /// Writing the targets from the block's source buffer.
    Write,
    /// Nothing more to issue.
    Done,
}

/// One sync block (the engine's r1bio for sync).
#[derive(Clone, Copy, Debug)]
pub(super) struct SyncBlock {
    stage: SyncStage,
    action: SyncAction,
    /// Resync/recovery: the member read from; check/repair: the primary after comparing.
    source: usize,
    /// Resync/recovery: a source read is in flight.
    reading: bool,
    /// Check/repair: members to read. Resync: members that take part (not all bad here).
    readers: u64,
    /// Check/repair: reads handed out.
    read_issued: u64,
    read_ok: u64,
    read_err: u64,
    /// Sources that failed to read.
    tried: u64,
    /// Members to write.
    targets: u64,
    /// Writes handed out.
    written: u64,
    /// Resync/recovery buffer.
    main_buf: u16,
    /// Check/repair: each reader's buffer.
    bufs: [u16; MAX_SLOTS],
}

impl SyncBlock {
    pub(super) fn all_issued(&self) -> bool {
        match self.stage {
            SyncStage::Read => false,
            SyncStage::Write => self.written & self.targets == self.targets,
            SyncStage::Done => true,
        }
    }

    fn buf_for_write(&self) -> u16 {
        match self.action {
            SyncAction::Resync | SyncAction::Recovery => self.main_buf,
            SyncAction::Check | SyncAction::Repair => {
                self.bufs.get(self.source).copied().unwrap_or(NO_BUF)
            }
        }
    }
}

/// The running sync action.
#[derive(Debug)]
pub(super) struct SyncState {
    action: SyncAction,
    start: u64,
    end: u64,
    /// Next sector to plan.
    next: u64,
    /// Every sector below this is done.
    contiguous: u64,
    step: u64,
    next_checkpoint: u64,
    mismatch: u64,
    copied: u64,
    /// Recovery: the members being rebuilt.
    targets: u64,
    aborting: bool,
    interrupted: bool,
    /// No member failed and no block failed: bitmap bits may be released at the end.
    clean_ok: bool,
    mark_time: u64,
    mark_sectors: u64,
    /// The throttle's next wake-up.
    pub(super) wake: Option<u64>,
}

impl SyncState {
    /// md's MD_RECOVERY_INTR: no new blocks start, the ones in flight finish, then the action
    /// ends interrupted.
    fn interrupt(&mut self) {
        self.aborting = true;
        self.interrupted = true;
        self.wake = None;
    }
}

/// A planned piece of the range.
enum Plan {
    /// Nothing to do up to this sector.
    Skip(u64),
    /// A block of `len` sectors; `set` = recovery targets or check readers; `excluded` =
    /// members whose copy of the block is entirely bad.
    Block { len: u64, set: u64, excluded: u64 },
}

fn bits(mask: u64) -> impl Iterator<Item = usize> {
    (0..MAX_SLOTS).filter(move |&i| mask & bit(i) != 0)
}

impl Raid1 {
    // ------------------------------------------------------------ public: sync

    /// Starts a sync action at time `now`. Refused while one is running, when there is nothing
    /// to do (resync of an array in sync, recovery without a recovering member or spare for an
    /// empty slot) or when it is impossible (no in-sync source; check/repair with fewer than two
    /// in-sync mirrors; too few sync buffers). A recovery first gives spares the empty slots.
    pub fn start_sync(&mut self, action: SyncAction, now: u64) -> Result<(), EngineError> {
        self.now = self.now.max(now);
        let r = self.start_sync_inner(action);
        // mutants: `action == Resync` → `!=` is equivalent: a start succeeds only with no
        // action running, and then `auto_resync` is already false (it is set only while a
        // resync runs, and maybe_auto_sync clears it in the progress round after that action,
        // or the recovery started before it, ends; progress loops while it is set), so
        // clearing it after the other actions, or not after a resync, changes nothing
        // (excluded in .cargo/mutants.toml).
        if r.is_ok() && action == SyncAction::Resync {
            self.auto_resync = false;
        }
        if r.is_ok() {
            // md: resync, recover, check and repair clear MD_RECOVERY_FROZEN.
            self.frozen = false;
        }
        self.full_next = true;
        self.progress();
        r
    }

    /// Stops the running action: no new blocks start, the ones in flight finish, then a
    /// [`Event::SyncCheckpoint`] and an interrupted [`Event::SyncDone`] are emitted.
    pub fn abort_sync(&mut self) -> Result<(), EngineError> {
        let Some(st) = self.sync.as_mut() else {
            return Err(EngineError::Refused("no sync action running"));
        };
        st.interrupt();
        self.auto_resync = false;
        self.full_next = true;
        self.progress();
        Ok(())
    }

    /// md's `sync_action` `idle` (`freeze` false) and `frozen`. Both interrupt the running
    /// action as [`Self::abort_sync`] does (a no-op when none runs). Without `freeze`, md's
    /// recovery check follows once nothing runs: a recovery (a position still recovering, a
    /// spare for an empty slot) or a resync the array still owes starts again from its
    /// checkpoint; a check or repair does not. With `freeze`, no action starts on its own
    /// (not even after a member failure) until the next successful [`Self::start_sync`] or a
    /// stop without `freeze`.
    pub fn stop_sync(&mut self, freeze: bool) {
        if let Some(st) = self.sync.as_mut().filter(|st| !st.aborting) {
            st.interrupt();
        }
        self.frozen = freeze;
        self.auto_resync = false;
        self.request_sync_check();
    }

    /// md's recovery check (MD_RECOVERY_NEEDED) without stopping anything: once no action
    /// runs, a recovery (a position still recovering, a spare for an empty slot) or a resync
    /// the array still owes starts, from its checkpoint. Nothing while frozen.
    pub fn request_sync_check(&mut self) {
        // mutants: `<` → `<=` is equivalent in outcome: at `resync_offset == array_sectors`
        // the flag only makes maybe_auto_sync ask for a resync that start_sync_inner refuses
        // ("in sync") with nothing changed, in the next round (excluded in .cargo/mutants.toml).
        if !self.frozen {
            self.want_recovery = true;
            self.auto_resync |= self.resync_offset < self.array_sectors;
        }
        self.full_next = true;
        self.progress();
    }

    /// Whether [`Self::stop_sync`] froze sync actions (md's `sync_action` reads `frozen`).
    pub fn sync_frozen(&self) -> bool {
        self.frozen
    }

    /// Progress of the running action (also while an abort drains).
    pub fn sync_status(&self) -> Option<SyncStatus> {
        let st = self.sync.as_ref()?;
        Some(SyncStatus {
            action: st.action,
            done_sectors: st.contiguous.saturating_sub(st.start),
            total_sectors: st.end.saturating_sub(st.start),
            mismatch_cnt: st.mismatch,
            sectors_copied: st.copied,
            rate_kib_s: self.sync_rate_kib(st),
            aborting: st.aborting,
        })
    }

    /// md's `mismatch_cnt`: mismatched sectors of the running or last check/repair.
    pub fn mismatch_cnt(&self) -> u64 {
        match &self.sync {
            Some(st) if matches!(st.action, SyncAction::Check | SyncAction::Repair) => st.mismatch,
            _ => self.last_mismatch,
        }
    }

    // ------------------------------------------------------------ internals

    /// A member failed: interrupt the running action (md's `MD_RECOVERY_INTR`) and look for a
    /// spare; an interrupted resync restarts from its checkpoint later.
    pub(super) fn member_lost(&mut self) {
        self.want_recovery = true;
        self.full_next = true;
        if let Some(st) = self.sync.as_mut() {
            st.clean_ok = false;
            if !st.aborting {
                st.interrupt();
                if st.action == SyncAction::Resync {
                    self.auto_resync = true;
                }
            }
        }
    }

    fn start_sync_inner(&mut self, action: SyncAction) -> Result<(), EngineError> {
        if self.sync.is_some() {
            return Err(EngineError::Refused("a sync action is running"));
        }
        // mutants: `||` → `&&` is equivalent: Raid1::new refuses a window of zero with buffers
        // and makes the window zero without them, so the two are zero together (excluded in
        // .cargo/mutants.toml).
        if self.sync_buffers == 0 || self.sync_window == 0 {
            return Err(EngineError::Refused("no sync buffers configured"));
        }
        if self.in_sync_count() == 0 {
            return Err(EngineError::Refused("no in-sync mirror to sync from"));
        }
        let end = self.array_sectors;
        let mut targets = 0u64;
        let start = match action {
            SyncAction::Resync => {
                if self.resync_offset >= end {
                    return Err(EngineError::Refused("the array is in sync"));
                }
                self.resync_offset
            }
            SyncAction::Recovery => {
                self.assign_spares();
                let mut start = u64::MAX;
                for (i, m) in self.mirrors.iter().enumerate() {
                    if let PositionState::Recovering { recovery_offset } = m.state {
                        targets |= bit(i);
                        start = start.min(recovery_offset);
                    }
                }
                if targets == 0 {
                    return Err(EngineError::Refused("nothing to recover"));
                }
                start.min(end)
            }
            SyncAction::Check | SyncAction::Repair => {
                let n = self.in_sync_count();
                if n < 2 {
                    return Err(EngineError::Refused(
                        "check and repair need two in-sync mirrors",
                    ));
                }
                if self.sync_buffers < n {
                    return Err(EngineError::Refused("too few sync buffers for check"));
                }
                0
            }
        };
        let step = (end / SYNC_CHECKPOINTS).max(1);
        self.sync = Some(SyncState {
            action,
            start,
            end,
            next: start,
            contiguous: start,
            step,
            next_checkpoint: start.saturating_add(step),
            mismatch: 0,
            copied: 0,
            targets,
            aborting: false,
            interrupted: false,
            clean_ok: true,
            mark_time: self.now,
            mark_sectors: 0,
            wake: None,
        });
        Ok(())
    }

    /// Starts a recovery or a resync the engine owes (md_check_recovery).
    // mutants (excluded in .cargo/mutants.toml), equivalent in outcome: the first test's `||`
    // → `&&`: sync_tick calls this only with no action running, and with a window of zero
    // start_sync_inner refuses every action (the mutant only clears `want_recovery`, which
    // then no longer keeps the progress rounds full); `assign_spares() > 0` → `==`, `<`,
    // `>=`: a spare it assigns is Recovering, so `can` is the `any` alone, and when that is
    // false start_sync_inner refuses the recovery ("nothing to recover") with nothing changed
    // (its own assign_spares finds nothing the first did not).
    fn maybe_auto_sync(&mut self) -> bool {
        if self.sync.is_some() || self.sync_window == 0 || self.frozen {
            return false;
        }
        if self.want_recovery {
            self.want_recovery = false;
            let can = self.assign_spares() > 0
                || self
                    .mirrors
                    .iter()
                    .any(|m| matches!(m.state, PositionState::Recovering { .. }));
            if can && self.start_sync_inner(SyncAction::Recovery).is_ok() {
                return true;
            }
        }
        if self.auto_resync {
            self.auto_resync = false;
            if self.start_sync_inner(SyncAction::Resync).is_ok() {
                return true;
            }
        }
        false
    }

    /// The sync part of a progress round. `true` when something changed.
    pub(super) fn sync_tick(&mut self) -> bool {
        if self.sync.is_none() {
            return self.maybe_auto_sync();
        }
        let mut changed = self.sync_checkpoint();
        // mutants: `|=` → `&=` is equivalent in outcome: schedule_sync still runs, only its
        // "changed" is lost when no checkpoint was emitted. A block it started is visited by
        // this round's full pass (every round is full while an action runs): issued there,
        // or waiting for a request it overlaps, whose completion is an input. Otherwise it
        // only skipped clean sectors and stopped where an input is bound to come (a block in
        // flight, a user request holding the last request slot, the throttle's or the scan
        // budget's timer, or the end, which sync_maybe_end takes in this same call). At worst
        // a checkpoint the skip passed is emitted on that input instead of in a further
        // round (excluded in .cargo/mutants.toml).
        changed |= self.schedule_sync();
        self.sync_maybe_end() || changed
    }

    /// Current speed in KiB/s over the measurement window (md adds a second to the elapsed
    /// time, so a fresh window reads slow).
    fn sync_rate_kib(&self, st: &SyncState) -> u64 {
        let el = self.now.saturating_sub(st.mark_time) as u128;
        let kib = st.mark_sectors as u128 / 2;
        (kib * 1_000_000_000 / (el + 1_000_000_000)) as u64
    }

    /// Whether a block of `n` sectors may start now (speed limits and yielding to user I/O).
    fn sync_throttle_allows(&mut self, n: u64) -> bool {
        let now = self.now;
        let in_flight = !self.sync_blocks.is_empty();
        // md's is_mddev_idle: user I/O in flight or submitted recently.
        let user_active = self.user_live > 0
            || self
                .last_user_submit
                .is_some_and(|t| now.saturating_sub(t) < SYNC_IDLE_NS);
        let (min, max) = (self.sync_speed_min, self.sync_speed_max);
        let rate = match self.sync.as_ref() {
            Some(st) => self.sync_rate_kib(st),
            None => return false,
        };
        let Some(st) = self.sync.as_mut() else {
            return false;
        };
        if now.saturating_sub(st.mark_time) >= SYNC_MARK_STEP_NS {
            st.mark_time = now;
            st.mark_sectors = 0;
        }
        // Above the maximum: wait until the window's average allows this block.
        let bytes = (st.mark_sectors.saturating_add(n) as u128) * crate::SECTOR_SIZE as u128;
        let rate_bytes = (max as u128) * 1024;
        let need_ns = (bytes * 1_000_000_000).div_ceil(rate_bytes.max(1));
        let at = (st.mark_time as u128).saturating_add(need_ns);
        if at > now as u128 {
            st.wake = Some(u64::try_from(at).unwrap_or(u64::MAX));
            return false;
        }
        st.wake = None;
        // Between min and max: while user I/O is active, one block at a time (md waits for
        // `recovery_active` to drain when the array is not idle). Below min: go regardless.
        if user_active && in_flight && rate >= min {
            return false;
        }
        true
    }

    /// Plans the piece of the range at `s`.
    fn plan(&self, s: u64) -> Plan {
        let Some(st) = self.sync.as_ref() else {
            return Plan::Skip(u64::MAX);
        };
        let end = st.end;
        let mut len = SYNC_BLOCK_SECTORS.min(end - s);
        let mut chunk_end = end;
        let mut chunk_set = true;
        if let Some(b) = self.bitmap.as_ref() {
            let c = s / b.chunk_sectors;
            chunk_end = c.saturating_add(1).saturating_mul(b.chunk_sectors).min(end);
            len = len.min(chunk_end - s);
            chunk_set = b
                .chunks
                .get(c as usize)
                .is_none_or(|ch| ch.state != CHUNK_CLEAR);
        }
        let set = match st.action {
            SyncAction::Resync => {
                if !chunk_set {
                    return Plan::Skip(chunk_end);
                }
                let working = self.working_mask();
                if working.count_ones() < 2 {
                    return Plan::Skip(end);
                }
                working
            }
            SyncAction::Recovery => {
                let mut t = 0u64;
                let mut later = end;
                for i in bits(st.targets) {
                    let Some(m) = self.mirrors.get(i) else {
                        continue;
                    };
                    let PositionState::Recovering { recovery_offset } = m.state else {
                        continue;
                    };
                    if recovery_offset > s {
                        // Not due yet; the block must not run past its offset.
                        later = later.min(recovery_offset);
                        continue;
                    }
                    if s < m.bitmap_below && !chunk_set {
                        // Clean in the bitmap: nothing to copy here, but a full copy may
                        // start before the chunk ends.
                        later = later.min(m.bitmap_below);
                        continue;
                    }
                    t |= bit(i);
                }
                if t == 0 {
                    let to = if chunk_set {
                        later
                    } else {
                        later.min(chunk_end)
                    };
                    // mutants: `s + 1` → `s * 1` is equivalent: `later` is an offset past `s`
                    // or a `bitmap_below` past `s` (or `end`), and `chunk_end > s`, so
                    // `to > s` already; schedule_sync guards `next + 1` too (excluded in
                    // .cargo/mutants.toml).
                    return Plan::Skip(to.max(s + 1));
                }
                len = len.min(later - s);
                t
            }
            SyncAction::Check | SyncAction::Repair => {
                let r = self.in_sync_mask();
                if r.count_ones() < 2 {
                    return Plan::Skip(end);
                }
                r
            }
        };
        // Cut the block where any involved member's bad range starts or ends, so that each
        // member is either wholly good or wholly bad over it.
        // mutants: `|` → `^` is equivalent: the targets are Recovering, never in sync, so
        // the two masks are disjoint (excluded in .cargo/mutants.toml).
        let involved = match st.action {
            SyncAction::Recovery => set | self.in_sync_mask(),
            _ => set,
        };
        let mut excluded = 0u64;
        for i in bits(involved) {
            if let Some((bs, bl)) = self.mirrors.get(i).and_then(|m| m.first_bad(s, len)) {
                if bs > s {
                    len = bs - s;
                } else {
                    len = len.min(bs.saturating_add(bl) - s).max(1);
                    excluded |= bit(i);
                }
            }
        }
        Plan::Block { len, set, excluded }
    }

    // mutants: `|` → `^` in this fold and in_sync_mask's is equivalent: each index is folded
    // in once, so the bits are distinct (excluded in .cargo/mutants.toml).
    fn working_mask(&self) -> u64 {
        self.mirrors
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state.is_working())
            .fold(0, |a, (i, _)| a | bit(i))
    }

    fn in_sync_mask(&self) -> u64 {
        self.mirrors
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_in_sync())
            .fold(0, |a, (i, _)| a | bit(i))
    }

    /// Starts new sync blocks as the window, buffers and speed limits allow.
    fn schedule_sync(&mut self) -> bool {
        let mut changed = false;
        let mut scan = 0u32;
        // The throttle and the scan budget re-arm the timer when they need it.
        if let Some(st) = self.sync.as_mut() {
            st.wake = None;
        }
        loop {
            let (action, next, end, aborting) = match self.sync.as_ref() {
                Some(st) => (st.action, st.next, st.end, st.aborting),
                None => return changed,
            };
            if aborting || next >= end || self.sync_blocks.len() >= self.sync_window {
                return changed;
            }
            scan += 1;
            if scan > 4096 {
                // A long clean stretch: continue on an immediate timer.
                if let Some(st) = self.sync.as_mut() {
                    st.wake = Some(self.now);
                }
                return changed;
            }
            let (len, set, excluded) = match self.plan(next) {
                Plan::Skip(to) => {
                    // mutants: `next + 1` → `next * 1` is equivalent: plan's Skip is always
                    // past `next` (excluded in .cargo/mutants.toml).
                    if let Some(st) = self.sync.as_mut() {
                        st.next = to.min(end).max(next + 1);
                    }
                    self.sync_progress();
                    changed = true;
                    continue;
                }
                Plan::Block { len, set, excluded } => (len, set, excluded),
            };
            let readers = set & !excluded;
            if matches!(action, SyncAction::Check | SyncAction::Repair) && readers.count_ones() < 2
            {
                // Fewer than two readable copies here: nothing to compare.
                if let Some(st) = self.sync.as_mut() {
                    st.next = next + len;
                }
                self.sync_progress();
                changed = true;
                continue;
            }
            let need_bufs = match action {
                SyncAction::Resync | SyncAction::Recovery => 1,
                _ => readers.count_ones() as usize,
            };
            if self.sync_free.len() < need_bufs || self.free_reqs.is_empty() {
                return changed;
            }
            if !self.sync_throttle_allows(len) {
                return changed;
            }
            // A sync block orders after the reads in flight over it (md's barrier waits for
            // them); direct reads are not in `order`, so blocks wait for all of them (none
            // start while a sync action runs: the last one out lets the blocks go).
            if self.direct_live > 0 {
                return changed;
            }
            let Some(slot) = self.free_reqs.pop() else {
                return changed;
            };
            let mut blk = SyncBlock {
                stage: SyncStage::Read,
                action,
                source: 0,
                reading: false,
                readers: 0,
                read_issued: 0,
                read_ok: 0,
                read_err: 0,
                tried: 0,
                targets: 0,
                written: 0,
                main_buf: NO_BUF,
                bufs: [NO_BUF; MAX_SLOTS],
            };
            match action {
                SyncAction::Resync => {
                    blk.readers = readers;
                    blk.main_buf = self.sync_free.pop().map_or(NO_BUF, |b| b as u16);
                }
                SyncAction::Recovery => {
                    blk.targets = readers;
                    blk.main_buf = self.sync_free.pop().map_or(NO_BUF, |b| b as u16);
                }
                SyncAction::Check | SyncAction::Repair => {
                    blk.readers = readers;
                    for i in bits(readers) {
                        blk.bufs[i] = self.sync_free.pop().map_or(NO_BUF, |b| b as u16);
                    }
                }
            }
            let r = &mut self.reqs[slot];
            r.reset(Op::Sync, next, len, false, BufRef(0), 0);
            r.sync = Some(blk);
            self.push_order(slot);
            // mutants: `next + len` → `next * len` is equivalent: nothing reads an entry's end
            // (sync_block_finished finds blocks by their start; excluded in
            // .cargo/mutants.toml).
            self.sync_blocks.push_back((next, next + len, false));
            if let Some(st) = self.sync.as_mut() {
                st.next = next + len;
                st.mark_sectors = st.mark_sectors.saturating_add(len);
            }
            changed = true;
        }
    }

    /// Hands out the member I/Os of sync block `slot`.
    pub(super) fn issue_sync(&mut self, slot: usize) {
        let Some(mut b) = self.reqs[slot].sync else {
            return;
        };
        let (s, n) = (self.reqs[slot].sector, self.reqs[slot].sectors);
        match b.stage {
            SyncStage::Read => match b.action {
                SyncAction::Resync | SyncAction::Recovery => {
                    if !b.reading {
                        match self.pick_source(&b, s, n) {
                            Some(src) => {
                                let buf = IoBuf::Scratch {
                                    index: b.main_buf as usize,
                                };
                                if self.issue(
                                    slot,
                                    src,
                                    MemberIoKind::Read,
                                    s,
                                    n,
                                    buf,
                                    false,
                                    0,
                                    0,
                                    false,
                                ) {
                                    b.source = src;
                                    b.reading = true;
                                }
                            }
                            None => self.sync_unreadable(slot, &mut b),
                        }
                    }
                }
                SyncAction::Check | SyncAction::Repair => {
                    for i in bits(b.readers & !b.read_issued) {
                        let buf = IoBuf::Scratch {
                            index: b.bufs[i] as usize,
                        };
                        if !self.issue(slot, i, MemberIoKind::Read, s, n, buf, false, 0, 0, false) {
                            break;
                        }
                        b.read_issued |= bit(i);
                    }
                }
            },
            SyncStage::Write => {
                let buf = b.buf_for_write();
                for i in bits(b.targets & !b.written) {
                    let working = self.mirrors.get(i).is_some_and(|m| m.state.is_working());
                    if working && buf != NO_BUF {
                        let io_buf = IoBuf::Scratch {
                            index: buf as usize,
                        };
                        if !self.issue(
                            slot,
                            i,
                            MemberIoKind::Write,
                            s,
                            n,
                            io_buf,
                            false,
                            0,
                            0,
                            false,
                        ) {
                            break;
                        }
                    }
                    b.written |= bit(i);
                }
            }
            SyncStage::Done => {}
        }
        self.reqs[slot].sync = Some(b);
    }

    /// The member to copy from: in sync, not yet tried, not a target, no bad block here;
    /// write-mostly members last (md's `raid1_sync_request` read disk choice).
    fn pick_source(&self, b: &SyncBlock, s: u64, n: u64) -> Option<usize> {
        let ok = |i: usize, m: &Mirror| {
            m.is_in_sync()
                && b.tried & bit(i) == 0
                && b.targets & bit(i) == 0
                && m.first_bad(s, n).is_none()
        };
        let mut wm = None;
        for (i, m) in self.mirrors.iter().enumerate() {
            if !ok(i, m) {
                continue;
            }
            if !m.write_mostly {
                return Some(i);
            }
            wm.get_or_insert(i);
        }
        wm
    }

    /// No mirror could supply the block: recovery records it bad on the targets (or stops),
    /// resync leaves it.
    fn sync_unreadable(&mut self, slot: usize, b: &mut SyncBlock) {
        b.stage = SyncStage::Done;
        let (s, n, gen) = (
            self.reqs[slot].sector,
            self.reqs[slot].sectors,
            self.reqs[slot].gen,
        );
        let mut stop = false;
        self.full_next = true;
        if b.action == SyncAction::Recovery {
            for t in bits(b.targets) {
                let recorded = self
                    .mirrors
                    .get_mut(t)
                    .is_some_and(|m| m.state.is_working() && m.add_bad(s, n));
                if recorded {
                    let token = self.emit(
                        |token| Event::BadBlocks {
                            token,
                            member: t,
                            sector: s,
                            sectors: n,
                        },
                        Waiter::Req { slot, gen },
                        false,
                    );
                    if token.is_some() {
                        self.reqs[slot].meta_wait += 1;
                    }
                } else {
                    stop = true;
                }
            }
        }
        if let Some(st) = self.sync.as_mut() {
            st.clean_ok = false;
            if stop && !st.aborting {
                // md: "unrecoverable I/O read error", the recovery is interrupted.
                st.interrupt();
            }
        }
    }

    /// A sync member I/O finished.
    pub(super) fn sync_io_done(
        &mut self,
        slot: usize,
        member: usize,
        kind: MemberIoKind,
        ok: bool,
        stale: bool,
    ) {
        let Some(mut b) = self.reqs[slot].sync else {
            return;
        };
        let n = self.reqs[slot].sectors;
        let ok = ok
            && self
                .mirrors
                .get(member)
                .is_some_and(|m| m.state.is_working());
        match (b.stage, kind) {
            (SyncStage::Read, MemberIoKind::Read) => match b.action {
                SyncAction::Resync | SyncAction::Recovery => {
                    b.reading = false;
                    if ok {
                        b.targets = match b.action {
                            SyncAction::Resync => b.readers & self.working_mask() & !bit(member),
                            _ => b.targets & self.working_mask(),
                        };
                        b.stage = if b.targets == 0 {
                            SyncStage::Done
                        } else {
                            SyncStage::Write
                        };
                    } else {
                        b.tried |= bit(member);
                        if !stale {
                            self.note_read_error(member, false);
                        }
                    }
                }
                SyncAction::Check | SyncAction::Repair => {
                    if ok {
                        b.read_ok |= bit(member);
                    } else {
                        b.read_err |= bit(member);
                        if !stale {
                            self.note_read_error(member, false);
                        }
                    }
                    // mutants: `read_ok | read_err` → `^` is equivalent: each reader's read
                    // is handed out once a block (read_issued) and sets one of the two masks
                    // when it completes, so they are disjoint (excluded in .cargo/mutants.toml).
                    if (b.read_ok | b.read_err) & b.readers == b.readers {
                        self.sync_compare(&mut b, n);
                    }
                }
            },
            (SyncStage::Write, MemberIoKind::Write) => {
                if ok {
                    if let Some(st) = self.sync.as_mut() {
                        st.copied = st.copied.saturating_add(n);
                    }
                } else if !stale {
                    self.reqs[slot].failed_mask |= bit(member);
                    if let Some(st) = self.sync.as_mut() {
                        st.clean_ok = false;
                    }
                }
            }
            _ => {}
        }
        self.reqs[slot].sync = Some(b);
    }

    /// md's `process_checks`: the first mirror that read is the primary; every other mirror
    /// whose read failed or whose data differs adds the block's sectors to `mismatch_cnt` and,
    /// for repair (or after a read error, even in check), is overwritten from the primary.
    fn sync_compare(&mut self, b: &mut SyncBlock, n: u64) {
        let Some(primary) = bits(b.read_ok).next() else {
            b.stage = SyncStage::Done;
            if let Some(st) = self.sync.as_mut() {
                st.clean_ok = false;
            }
            return;
        };
        b.source = primary;
        let len = (n * crate::SECTOR_SIZE) as usize;
        let pbuf = b.bufs[primary] as usize;
        let mut mismatch = 0u64;
        let mut targets = 0u64;
        for i in bits(b.readers) {
            if i == primary {
                continue;
            }
            let differs = if b.read_err & bit(i) != 0 {
                true
            } else {
                let a = self.scratch.get(pbuf).and_then(|v| v.get(..len));
                let c = self
                    .scratch
                    .get(b.bufs[i] as usize)
                    .and_then(|v| v.get(..len));
                a != c
            };
            if differs {
                mismatch += n;
                if b.action == SyncAction::Repair || b.read_err & bit(i) != 0 {
                    targets |= bit(i);
                }
            }
        }
        b.targets = targets & self.working_mask();
        b.stage = if b.targets == 0 {
            SyncStage::Done
        } else {
            SyncStage::Write
        };
        if let Some(st) = self.sync.as_mut() {
            st.mismatch = st.mismatch.saturating_add(mismatch);
        }
    }

    /// Sync block `slot` is finished (called from `finish`).
    pub(super) fn sync_block_finished(&mut self, slot: usize) {
        let start = self.reqs[slot].sector;
        if let Some(b) = self.reqs[slot].sync.take() {
            let mut free = |i: u16| {
                if i != NO_BUF {
                    self.sync_free.push(i as usize);
                }
            };
            free(b.main_buf);
            for &i in b.bufs.iter() {
                free(i);
            }
        }
        if let Some(e) = self.sync_blocks.iter_mut().find(|e| e.0 == start && !e.2) {
            e.2 = true;
        }
        while self.sync_blocks.front().is_some_and(|e| e.2) {
            self.sync_blocks.pop_front();
        }
        self.sync_progress();
    }

    /// Moves the done point and the in-memory offsets.
    fn sync_progress(&mut self) {
        let front = self.sync_blocks.front().map(|e| e.0);
        let Some(st) = self.sync.as_mut() else {
            return;
        };
        let c = front.unwrap_or(st.next).min(st.end);
        if c <= st.contiguous {
            return;
        }
        st.contiguous = c;
        let (action, targets) = (st.action, st.targets);
        // mutants: `<` → `<=` (both tests here) is equivalent: at equality the assignment
        // stores the value already there (excluded in .cargo/mutants.toml).
        match action {
            SyncAction::Resync if self.resync_offset < c => self.resync_offset = c,
            SyncAction::Recovery => {
                for i in bits(targets) {
                    if let Some(m) = self.mirrors.get_mut(i) {
                        if let PositionState::Recovering { recovery_offset } = m.state {
                            if recovery_offset < c {
                                m.state = PositionState::Recovering { recovery_offset: c };
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Emits a progress checkpoint every 1/16 of the array.
    fn sync_checkpoint(&mut self) -> bool {
        let Some(st) = self.sync.as_ref() else {
            return false;
        };
        if st.aborting || st.contiguous < st.next_checkpoint || st.contiguous >= st.end {
            return false;
        }
        let (action, sector, step) = (st.action, st.contiguous, st.step);
        let ok = self
            .emit(
                |token| Event::SyncCheckpoint {
                    token,
                    action,
                    sector,
                },
                Waiter::Nothing,
                false,
            )
            .is_some();
        if ok {
            if let Some(st) = self.sync.as_mut() {
                st.next_checkpoint = sector.saturating_add(step);
            }
        }
        ok
    }

    /// Ends the action once its range is planned (or it is aborting) and no block is in flight.
    fn sync_maybe_end(&mut self) -> bool {
        let Some(st) = self.sync.as_ref() else {
            return false;
        };
        if !(st.aborting || st.next >= st.end) || !self.sync_blocks.is_empty() {
            return false;
        }
        let room = self.mirrors.len() + 3;
        if self.mandatory_room() < room {
            return false;
        }
        let Some(st) = self.sync.take() else {
            return false;
        };
        self.full_next = true;
        let complete = !st.interrupted && st.contiguous >= st.end;
        let action = st.action;
        let ev = |s: &mut Self, make: &dyn Fn(MetaToken) -> Event| {
            let _ = s.emit(make, Waiter::Nothing, false);
        };
        if complete {
            match action {
                SyncAction::Resync => {
                    self.resync_offset = u64::MAX;
                    ev(self, &|token| Event::SyncCheckpoint {
                        token,
                        action,
                        sector: u64::MAX,
                    });
                }
                SyncAction::Recovery => {
                    for i in bits(st.targets) {
                        let Some(m) = self.mirrors.get_mut(i) else {
                            continue;
                        };
                        if !matches!(m.state, PositionState::Recovering { .. }) {
                            continue;
                        }
                        m.state = PositionState::InSync;
                        m.bitmap_below = 0;
                        let slot = m.slot.unwrap_or(i);
                        // A replacement took the slot: its original retires once that is
                        // recorded (until then both are written, so a cut loses nothing).
                        let waiter = match self.original_of(i, slot) {
                            Some(member) => Waiter::Retire { member, slot },
                            None => Waiter::Nothing,
                        };
                        let _ = self.emit(
                            |token| Event::MemberInSync {
                                token,
                                member: i,
                                slot,
                            },
                            waiter,
                            false,
                        );
                    }
                    ev(self, &|token| Event::SyncCheckpoint {
                        token,
                        action,
                        sector: u64::MAX,
                    });
                }
                _ => {}
            }
            if matches!(action, SyncAction::Resync | SyncAction::Recovery) {
                self.release_synced_chunks(action == SyncAction::Recovery && st.clean_ok);
            }
        } else {
            let sector = st.contiguous;
            ev(self, &|token| Event::SyncCheckpoint {
                token,
                action,
                sector,
            });
        }
        if matches!(action, SyncAction::Check | SyncAction::Repair) {
            self.last_mismatch = st.mismatch;
        }
        let (mismatch_cnt, sectors_copied, interrupted) = (st.mismatch, st.copied, !complete);
        ev(self, &|token| Event::SyncDone {
            token,
            action,
            mismatch_cnt,
            sectors_copied,
            interrupted,
        });
        true
    }

    /// After a completed resync/recovery: chunks synced with every slot in sync no longer need
    /// their bit; idle ones are cleared now, the rest by the daemon.
    fn release_synced_chunks(&mut self, recovered: bool) {
        if !fully_in_sync(&self.mirrors, self.raid_disks) || self.resync_offset < self.array_sectors
        {
            return;
        }
        let Some(b) = self.bitmap.as_mut() else {
            return;
        };
        if recovered {
            for ch in b.chunks.iter_mut() {
                ch.needed = false;
            }
        }
        let sleep = b.daemon_sleep;
        let n = b.chunks.len();
        self.emit_clear_runs(n, |ch| {
            ch.state == CHUNK_SET && ch.pending == 0 && !ch.needed
        });
        let left = self
            .bitmap
            .as_ref()
            .is_some_and(|b| b.chunks.iter().any(|ch| ch.state == CHUNK_SET));
        if left && self.daemon_deadline.is_none() {
            self.daemon_deadline = Some(self.now.saturating_add(sleep));
        }
    }
}
