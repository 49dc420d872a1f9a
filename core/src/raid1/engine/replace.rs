//! Hot replace (md's `want_replacement`): a spare is rebuilt as the replacement of an in-sync
//! member while that member keeps serving reads and writes.
//!
//! The replacement holds the same slot as the member it replaces, as a recovering member:
//! writes reach both (every working member is written), reads reach the replacement only
//! below its recovery offset (the read balancer's rule for recovering members), and the
//! recovery copies onto it from the in-sync mirrors. When the copy completes the replacement
//! is in sync and the original becomes faulty (md's `raid1_spare_active`). When the original
//! fails first, the slot simply has one recovering member: an ordinary recovery, continuing
//! from where the copy got. A replacement is never stored as a flag: it is a recovering member
//! whose slot another in-sync member still holds.

use super::*;

impl Raid1 {
    /// Starts rebuilding the spare `replacement` as the replacement of the in-sync member
    /// `original` (mdadm `--replace … --with`), from `recovery_offset` (0 for a new copy; a
    /// checkpoint when resuming one). The copy runs as a recovery, now when no sync action
    /// runs, else after the running one. Refused unless `original` is in sync in a slot that
    /// has no replacement yet and `replacement` is a spare.
    pub fn replace_member(
        &mut self,
        original: usize,
        replacement: usize,
        recovery_offset: u64,
    ) -> Result<(), EngineError> {
        let orig = self
            .mirrors
            .get(original)
            .ok_or(EngineError::Refused("no such member"))?;
        let slot = match (orig.state, orig.slot) {
            (PositionState::InSync, Some(s)) => s,
            _ => {
                return Err(EngineError::Refused(
                    "only an in-sync member can be replaced",
                ))
            }
        };
        if self.replacement_of(slot).is_some() {
            return Err(EngineError::Refused("that slot already has a replacement"));
        }
        let repl = self
            .mirrors
            .get_mut(replacement)
            .ok_or(EngineError::Refused("no such member"))?;
        if repl.state != PositionState::Spare {
            return Err(EngineError::Refused("the replacement must be a spare"));
        }
        repl.state = PositionState::Recovering {
            recovery_offset: recovery_offset.min(self.array_sectors),
        };
        repl.slot = Some(slot);
        repl.bitmap_below = 0;
        self.want_recovery = true;
        self.full_next = true;
        self.progress();
        Ok(())
    }

    /// The member being rebuilt as the replacement of `slot`'s in-sync member, if any.
    pub fn replacement_of(&self, slot: usize) -> Option<usize> {
        let held = self
            .mirrors
            .iter()
            .any(|m| m.slot == Some(slot) && m.state == PositionState::InSync);
        if !held {
            return None;
        }
        self.mirrors.iter().position(|m| {
            m.slot == Some(slot) && matches!(m.state, PositionState::Recovering { .. })
        })
    }

    /// Whether member `member` is a replacement being rebuilt (its slot's original is still
    /// in sync).
    pub fn is_replacement(&self, member: usize) -> bool {
        self.mirrors
            .get(member)
            .and_then(|m| m.slot)
            .is_some_and(|s| self.replacement_of(s) == Some(member))
    }

    /// The in-sync member other than `member` holding `slot` (the original of a replacement
    /// that just came in sync).
    pub(super) fn original_of(&self, member: usize, slot: usize) -> Option<usize> {
        self.mirrors.iter().enumerate().position(|(j, m)| {
            j != member && m.slot == Some(slot) && m.state == PositionState::InSync
        })
    }

    /// Whether member `member` is an original whose replacement is in sync, waiting for that to
    /// be recorded before it retires (it is still written and read meanwhile).
    pub fn is_retiring(&self, member: usize) -> bool {
        self.mirrors
            .get(member)
            .filter(|m| m.state == PositionState::InSync)
            .and_then(|m| m.slot)
            .is_some_and(|s| self.original_of(member, s).is_some())
    }

    /// The replacement's `MemberInSync` is recorded: its original `member` becomes faulty
    /// (md's `raid1_spare_active`) and [`Event::MemberFailed`] says so. Kept when it is the
    /// last in-sync mirror (the replacement failed meanwhile).
    pub(super) fn retire(&mut self, member: usize, slot: usize) {
        let Some(m) = self.mirrors.get(member) else {
            return;
        };
        if m.state != PositionState::InSync || m.slot != Some(slot) || self.in_sync_count() <= 1 {
            return;
        }
        let Some(m) = self.mirrors.get_mut(member) else {
            return;
        };
        m.state = PositionState::Faulty;
        m.slot = None;
        self.full_next = true;
        // Not tracked as unrecorded: the round that recorded the replacement in sync
        // recorded its original faulty too (md's raid1_spare_active).
        let _ = self.emit_member_failed(member, Waiter::Nothing, false);
    }
}
