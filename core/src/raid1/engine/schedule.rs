//! Ordered-request scheduling: the submission-order list, conflict checks, waiter lists and the
//! incremental progress loop.
//!
//! Every request sits in `order` by sequence number; [`Raid1::progress`] runs rounds that visit
//! only the requests an input may have moved (the `work` heap, fed by `wake` and the waiter
//! lists), falling back to visiting everything on global changes. `advance` moves one request
//! through queued → gated → issuing → settling → finished. Kept apart because it decides *when* a
//! request moves, independent of what its member I/Os or metadata are.

use super::*;

impl Raid1 {
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
    pub(super) fn progress(&mut self) {
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
            // Failures owed for want of room first: writes settling meanwhile wait for them.
            self.emit_owed_failures();
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
    pub(super) fn wake(&mut self, slot: usize) {
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
    pub(super) fn wake_list(&mut self, list: u8) {
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
    pub(super) fn unlisten(&mut self, slot: usize) {
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
    pub(super) fn push_order(&mut self, slot: usize) {
        self.enlist(slot);
        self.wake(slot);
    }

    /// Appends a freshly filled request slot to `order` without queueing it for a visit (the
    /// read fast path issues it at once).
    #[inline]
    pub(super) fn enlist(&mut self, slot: usize) {
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
    }

    /// Whether an earlier active request conflicts with `slot`.
    pub(super) fn blocked_by_earlier(&self, slot: usize) -> bool {
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
            let settled = if op == Op::Flush {
                self.settle_flush(slot)
            } else {
                self.settle_write(slot)
            };
            if !settled {
                // Its records do not fit yet: visited again when event space frees.
                return (changed, false);
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
}
