//! Metadata gates: the events a write must wait for before it is issued and before it completes.
//!
//! `emit` queues an [`Event`] under the token budget. Before a write: `MarkDirty` after a clean
//! period and `BitmapSet` for clear chunks (`write_gates`). After it: failed members' writes
//! recorded as `BadBlocks` or `MemberFailed` (`settle_write`, `settle_flush`,
//! `fail_member_inner`). The bitmap daemon clears idle chunks again (`BitmapClear`). Kept apart
//! because these are the engine's persistent-state obligations, not I/O scheduling.

use super::*;

impl Raid1 {
    /// Queues an event; `None` when the token table is full (or the optional budget spent).
    ///
    /// The table is split: mandatory events (dirty marks, bitmap sets, the records a write or
    /// a sync owes, failures) use all but `OPTIONAL_EVENTS` places, optional ones (clears,
    /// a repair's record) the rest. So an owner that holds mandatory acknowledgements back
    /// cannot starve the optional records a repair must make once its rewrite failed.
    pub(super) fn emit(
        &mut self,
        make: impl FnOnce(MetaToken) -> Event,
        waiter: Waiter,
        optional: bool,
    ) -> Option<u64> {
        // An optional emit within its budget always has a place (mandatory entries are
        // capped at `meta_cap - OPTIONAL_EVENTS`); the queue's own bound is checked for
        // both, as an owner may acknowledge a token before polling its event.
        // mutants: the optional `||` → `&&` is equivalent: its budget term is never true.
        // Clears and repair spawns both need `optional_pending + live_fixes <
        // OPTIONAL_EVENTS` (emit_clear, spawn_fix), and a repair emits its one optional event
        // (BadBlocks or MemberFailed) when its rewrite fails, which also ends it; so
        // `optional_pending` plus the repairs yet to emit never exceeds the budget.
        let refused = if optional {
            self.optional_pending >= OPTIONAL_EVENTS || self.events.len() >= self.events.capacity()
        } else {
            self.mandatory_room() == 0
        };
        if refused {
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

    /// Places free for mandatory events: the token table's share outside the optional
    /// budget, and the event queue.
    pub(super) fn mandatory_room(&self) -> usize {
        let mandatory = self
            .pending_meta
            .len()
            .saturating_sub(self.optional_pending);
        let table = self
            .meta_cap
            .saturating_sub(OPTIONAL_EVENTS)
            .saturating_sub(mandatory);
        table.min(self.events.capacity().saturating_sub(self.events.len()))
    }

    /// Emits `MemberFailed` for `m`, a member already faulty in memory. Without room the
    /// failure is owed, never dropped: `emit_owed_failures` records it once space frees.
    pub(super) fn emit_member_failed(
        &mut self,
        m: usize,
        waiter: Waiter,
        optional: bool,
    ) -> Option<u64> {
        let t = self.emit(
            |token| Event::MemberFailed { token, member: m },
            waiter,
            optional,
        );
        if t.is_none() {
            self.failures_owed |= bit(m);
        }
        t
    }

    /// Emits the failures owed for want of room (called when space may have freed), and
    /// tracks each as unrecorded until its acknowledgement.
    pub(super) fn emit_owed_failures(&mut self) {
        for m in 0..self.mirrors.len() {
            if self.failures_owed & bit(m) == 0 {
                continue;
            }
            // Still no room: it stays owed (emit_member_failed keeps its bit).
            let Some(t) = self.emit_member_failed(m, Waiter::Nothing, false) else {
                return;
            };
            self.failures_owed &= !bit(m);
            self.track_unrecorded(t, m);
        }
    }

    fn track_unrecorded(&mut self, t: u64, m: usize) {
        // mutants: `<` → `<=` is equivalent: the table never fills. A position fails only
        // while working or a spare, so once per engine until it is removed, and never as the
        // last in-sync one: at most `positions - 1` entries are outstanding against the one
        // place per position reserved. (A removed position comes back only through
        // `Machine::remove_member`, which runs idle — every failure recorded — and rebuilds
        // the engine.) `<=` would differ only by growing past the reservation.
        if self.unrecorded_failures.len() < self.unrecorded_failures.capacity() {
            self.unrecorded_failures.push((t, m));
        }
    }

    /// Fails `m` unless it is the last in-sync member. Emits `MemberFailed` and returns its token.
    pub(super) fn fail_member_inner(
        &mut self,
        m: usize,
        waiter: Waiter,
        optional: bool,
    ) -> Option<u64> {
        let in_sync = self.in_sync_count();
        let mirror = self.mirrors.get_mut(m)?;
        if !mirror.state.is_working() || (mirror.is_in_sync() && in_sync <= 1) {
            return None;
        }
        mirror.state = PositionState::Faulty;
        mirror.slot = None;
        self.full_next = true;
        self.member_lost();
        let t = self.emit_member_failed(m, waiter, optional);
        if let Some(t) = t {
            self.track_unrecorded(t, m);
        }
        t
    }

    /// Opens the dirty and bitmap gates for a write; `true` once both are open.
    pub(super) fn write_gates(&mut self, slot: usize) -> bool {
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

    /// Whether `n` more events fit in the token table and the event queue; when not, as for a
    /// refused [`Self::emit`], whoever asked retries once space frees.
    fn reserve_events(&mut self, n: usize) -> bool {
        let fits = n <= self.mandatory_room();
        if !fits {
            self.emit_starved = true;
        }
        fits
    }

    /// Records failed member writes: a bad block when the log has room, else a failed member.
    /// `false` (nothing done, the request stays unsettled and is visited again when event
    /// space frees) when its records do not all fit: a write never completes without them.
    pub(super) fn settle_write(&mut self, slot: usize) -> bool {
        let (sector, sectors, mask, gen) = {
            let r = &self.reqs[slot];
            (r.sector, r.sectors, r.failed_mask, r.gen)
        };
        let waiter = Waiter::Req { slot, gen };
        // Members failed but not yet recorded (by another I/O, a metadata write error): this
        // write did not reach them, so it completes only after a round records them; a cut
        // before that round would leave a member without the write that assembly still trusts.
        let mut unrecorded = self.failures_owed;
        for &(_, m) in &self.unrecorded_failures {
            unrecorded |= bit(m);
        }
        // Who owes a record: those failed unrecorded (Faulty), and the working members this
        // write failed on (a bad block, or their failure). One event each, disjoint sets.
        let mut record_failure = 0u64;
        let mut record_write = 0u64;
        for (m, mirror) in self.mirrors.iter().enumerate() {
            if unrecorded & bit(m) != 0 && mirror.state == PositionState::Faulty {
                record_failure |= bit(m);
            }
            if mask & bit(m) != 0 && mirror.state.is_working() {
                record_write |= bit(m);
            }
        }
        // The table is sized for these with an owner that acknowledges in order; one that
        // holds acknowledgements back can fill it, and then the write waits rather than
        // completing unrecorded.
        // mutants: `|` → `^` is equivalent: the two masks are disjoint (a Faulty member is not
        // working), so they count the same (excluded in .cargo/mutants.toml).
        if !self.reserve_events((record_failure | record_write).count_ones() as usize) {
            return false;
        }
        self.reqs[slot].settled = true;
        if mask != 0 {
            self.reqs[slot].degraded = true;
        }
        // The unrecorded failures first, then this write's own records.
        for m in 0..self.mirrors.len() {
            if record_failure & bit(m) == 0 {
                continue;
            }
            self.full_next = true;
            let token = self.emit(
                |token| Event::MemberFailed { token, member: m },
                waiter,
                false,
            );
            if token.is_some() {
                self.reqs[slot].meta_wait += 1;
            }
        }
        for m in 0..self.mirrors.len() {
            if record_write & bit(m) == 0 {
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
        true
    }

    /// Fails every member whose flush failed (never the last in-sync one); the flush completes
    /// once the failures are recorded. `false` as for [`Self::settle_write`].
    pub(super) fn settle_flush(&mut self, slot: usize) -> bool {
        let (mask, gen) = {
            let r = &self.reqs[slot];
            (r.failed_mask, r.gen)
        };
        if !self.reserve_events(mask.count_ones() as usize) {
            return false;
        }
        self.reqs[slot].settled = true;
        let waiter = Waiter::Req { slot, gen };
        for m in 0..self.mirrors.len() {
            if mask & bit(m) != 0 && self.fail_member_inner(m, waiter, false).is_some() {
                self.reqs[slot].meta_wait += 1;
            }
        }
        true
    }

    pub(super) fn daemon_pass(&mut self) {
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
    pub(super) fn emit_clear_runs(&mut self, n: usize, ready: impl Fn(&Chunk) -> bool) {
        let ok = |s: &Self, c: usize| {
            s.bitmap
                .as_ref()
                .and_then(|b| b.chunks.get(c))
                .is_some_and(&ready)
        };
        // mutants: `c < n` → `c <= n` (both loops) is equivalent: both callers pass the
        // chunk count as `n`, and `ok` is false for a chunk past the end (`get` → None).
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
}
