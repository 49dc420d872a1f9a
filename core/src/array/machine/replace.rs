//! Hot replace in the [`Machine`] (mdadm `--replace D [--with S]`, md's `want_replacement`).
//!
//! A replacement is a spare being rebuilt into a slot that its in-sync original still holds:
//! a member in [`MemberState::Spare`] whose `rebuild` names that slot. Nothing else marks it,
//! so the policy needs no extra state and survives every path a rebuild takes:
//!
//! - **1.x superblocks** (md's `super_1_sync`): the replacement's role in every role table is
//!   the slot (so the slot appears twice and mdadm's Array State shows `R`), its own
//!   superblock carries feature bit [`FEATURE_REPLACEMENT`](crate::format::sb1::FEATURE_REPLACEMENT)
//!   and, while not in sync, its `recovery_offset` (feature bit 2), moved at every checkpoint.
//! - **0.90** has no replacement on disk: md's `super_90_sync` writes every member that is not
//!   in sync as a spare record, so a replacement reads as a spare until it takes the slot, and
//!   a cut mid-copy leaves a spare (md does not resume the replace; neither do we).
//! - **Completion**: the engine turns the replacement in sync and retires the original; one
//!   superblock round records both (the original's role faulty, the replacement active without
//!   the feature bit), as md's `raid1_spare_active` + `md_update_sb` do.
//! - **Assembly** of a 1.x array cut mid-replace resumes it from the replacement's
//!   `recovery_offset` (md's `super_1_validate` sets `Replacement` from the feature bit and
//!   raid1 pairs it with the slot's original); without the original it is an ordinary
//!   recovering member.

use super::super::{Member, MemberState};
use super::{config, Machine, MachineError};

/// Whether member `i` of `members` is a replacement: a spare rebuilding into a slot another
/// member holds in sync.
pub(crate) fn is_replacement<X>(members: &[Member<X>], i: usize) -> bool {
    let Some(m) = members.get(i) else {
        return false;
    };
    match (m.state, m.rebuild) {
        (MemberState::Spare, Some((slot, _))) => config::slot_member(members, slot).is_some(),
        _ => false,
    }
}

impl Machine {
    /// Starts a hot replace of the in-sync member `original` (mdadm `--replace`): the spare
    /// `with` (any spare not being rebuilt when `None`) is rebuilt as its replacement while
    /// `original` keeps serving reads and writes; when the copy completes `original` becomes
    /// faulty and the replacement takes its slot ([`super::Notice::SpareRebuilt`] then
    /// [`super::Notice::MemberFailed`]). Returns the replacement's index. Refused on a
    /// read-only or stopping array, for a member not in sync, for a slot that already has a
    /// replacement and without a spare to use.
    pub fn replace_member(
        &mut self,
        original: usize,
        with: Option<usize>,
    ) -> Result<usize, MachineError> {
        if self.readonly || self.stopping {
            return Err(MachineError::Refused("read-only or stopping"));
        }
        let m = self
            .members
            .get(original)
            .ok_or(MachineError::NoSuchMember(original))?;
        let MemberState::InSync(slot) = m.state else {
            return Err(MachineError::Refused(
                "only an active in-sync member can be replaced",
            ));
        };
        if (0..self.members.len()).any(|i| {
            is_replacement(&self.members, i) && self.members[i].rebuild.map(|r| r.0) == Some(slot)
        }) {
            return Err(MachineError::Refused(
                "that member is already being replaced",
            ));
        }
        let free_spare = |i: usize| {
            self.members
                .get(i)
                .is_some_and(|m| m.state == MemberState::Spare && m.rebuild.is_none())
        };
        let r =
            match with {
                Some(i) if free_spare(i) => i,
                Some(i) if i >= self.members.len() => return Err(MachineError::NoSuchMember(i)),
                Some(_) => {
                    return Err(MachineError::Refused(
                        "the replacement must be a spare of this array",
                    ))
                }
                None => (0..self.members.len()).find(|&i| free_spare(i)).ok_or(
                    MachineError::Refused("no spare to replace with: add one first"),
                )?,
            };
        let (po, pr) = match (self.engine_pos(original), self.engine_pos(r)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(MachineError::Refused("member not in the engine")),
        };
        self.engine.replace_member(po, pr, 0)?;
        // Recorded at once (role = slot, feature bit 16, recovery_offset 0), as md writes the
        // superblocks when the replacement joins.
        self.members[r].rebuild = Some((slot, 0));
        self.members[r].rebuild_bitmap = false;
        self.last_sync = None;
        self.meta.queue_superblocks();
        self.pump();
        Ok(r)
    }

    /// Whether member `i` is a replacement being rebuilt.
    pub fn is_replacement(&self, i: usize) -> bool {
        is_replacement(&self.members, i)
    }

    /// After the engine was (re)built: every replacement the metadata holds (assembled from a
    /// cut mid-replace, or kept across an engine rebuild) is paired again with its slot's
    /// original and its copy resumes from its recovery offset.
    pub(super) fn attach_replacements(&mut self) {
        for i in 0..self.members.len() {
            if !is_replacement(&self.members, i) {
                continue;
            }
            let Some((slot, from)) = self.members[i].rebuild else {
                continue;
            };
            let Some(o) = config::slot_member(&self.members, slot) else {
                continue;
            };
            if let (Some(po), Some(pr)) = (self.engine_pos(o), self.engine_pos(i)) {
                if self.engine.replace_member(po, pr, from).is_err() {
                    // Nothing to pair with (the engine sees no in-sync original): the device
                    // stays a spare, rebuilt from scratch should it get a slot.
                    self.members[i].rebuild = None;
                }
            }
        }
    }
}
