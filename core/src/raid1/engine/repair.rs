//! Read-error repair: error counting with decay, and fix_read_error-style rewrites.
//!
//! `note_read_error` counts a member's read errors (halved per hour since the last, md's
//! `max_read_errors` rule) and fails the member past the limit or on a failfast error. A read
//! that succeeded on another mirror spawns an internal `Fix` request (`spawn_fix`) that reads the
//! good copy into a scratch buffer, rewrites the bad member and reads it back to verify
//! (`issue_fix`, `fix_step_done`); a rewrite that does not stick records a bad block or fails the
//! member. Kept apart because repair is a self-contained internal request type.

use super::*;

impl Raid1 {
    pub(super) fn note_read_error(&mut self, member: usize, failfast_ok: bool) {
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

    /// Starts a repair of `[sector, sector+sectors)` on `target` from `source`, if a scratch
    /// buffer and event budget are free; otherwise the repair is skipped.
    pub(super) fn spawn_fix(&mut self, target: usize, source: usize, sector: u64, sectors: u64) {
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

    pub(super) fn issue_fix(&mut self, slot: usize) {
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
        // The source must hold current data for the range: recovered past it and no bad block
        // in it (a write that failed there left old data, which must not be copied over the
        // target's good copy; md's fix_read_error skips such a source too).
        let usable = self.mirrors.get(member).is_some_and(|m| {
            m.state.is_working()
                && (kind == MemberIoKind::Write
                    || f.stage == FixStage::Verify
                    || (m.current_below(cursor + n) && m.first_bad(cursor, n).is_none()))
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

    pub(super) fn fix_step_done(&mut self, slot: usize, ok: bool) {
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
