//! Runtime membership changes: fail, remove, add, re-add and resume members, and the slot
//! bookkeeping they share with sync actions.
//!
//! Adding or resuming a member installs it (a new epoch, so stale member I/Os are ignored) and
//! asks for a recovery; `assign_spares` gives spares the empty slots when a recovery starts.
//! Kept apart from [`super::sync`]'s actions because these are owner commands that change the
//! member set, not block-by-block sync work (how a running action reacts to a lost member,
//! `member_lost`, stays with the sync actions).

use super::*;

impl Raid1 {
    // ------------------------------------------------------------ public: membership

    /// Number of slots (md `raid_disks`).
    pub fn raid_disks(&self) -> usize {
        self.raid_disks
    }

    /// The slot member `member` fills (`None`: spare, faulty, missing or out of range).
    pub fn member_slot(&self, member: usize) -> Option<usize> {
        self.mirrors.get(member).and_then(|m| m.slot)
    }

    /// Fails `member` (mdadm `--fail`): emits [`Event::MemberFailed`]; a spare becomes faulty
    /// too. Refused for the last in-sync mirror (md keeps it) and for empty positions; failing
    /// a faulty member is a no-op. A running sync action is interrupted (md sets
    /// `MD_RECOVERY_INTR`); recovery onto a spare starts when one can fill the freed slot.
    pub fn fail_member(&mut self, member: usize) -> Result<(), EngineError> {
        let state = self
            .member_state(member)
            .ok_or(EngineError::Refused("no such member"))?;
        match state {
            PositionState::Missing => return Err(EngineError::Refused("no device at that index")),
            PositionState::Faulty => return Ok(()),
            PositionState::InSync if self.in_sync_count() <= 1 => {
                return Err(EngineError::Refused("the last in-sync mirror cannot fail"))
            }
            PositionState::Spare => {
                if let Some(m) = self.mirrors.get_mut(member) {
                    m.state = PositionState::Faulty;
                }
                // A spare holds nothing writes depend on: not tracked as unrecorded.
                let _ = self.emit_member_failed(member, Waiter::Nothing, false);
            }
            _ => {
                if self
                    .fail_member_inner(member, Waiter::Nothing, false)
                    .is_none()
                    && self.member_state(member) != Some(PositionState::Faulty)
                {
                    return Err(EngineError::Refused("member cannot fail"));
                }
            }
        }
        self.full_next = true;
        self.progress();
        Ok(())
    }

    /// Removes a faulty or spare member (mdadm `--remove`); its index becomes free. I/Os still
    /// in flight to it complete harmlessly (their outcome is ignored).
    pub fn remove_member(&mut self, member: usize) -> Result<(), EngineError> {
        let m = self
            .mirrors
            .get_mut(member)
            .ok_or(EngineError::Refused("no such member"))?;
        if !matches!(m.state, PositionState::Faulty | PositionState::Spare) {
            return Err(EngineError::Refused(
                "only faulty or spare members can be removed",
            ));
        }
        m.state = PositionState::Missing;
        m.slot = None;
        m.epoch = m.epoch.wrapping_add(1);
        m.bb = None;
        m.bitmap_below = 0;
        m.counters.pending = 0;
        self.full_next = true;
        Ok(())
    }

    /// Adds a device at the free index `member` as a spare (mdadm `--add`; `config.in_sync`
    /// and `recovery_offset` are ignored: a new device is rebuilt in full). When a slot is
    /// empty and no sync action runs, recovery onto it starts at once.
    pub fn add_member(&mut self, member: usize, config: MemberConfig) -> Result<(), EngineError> {
        self.install_member(member, &config, PositionState::Spare, None)?;
        self.want_recovery = true;
        self.full_next = true;
        self.progress();
        Ok(())
    }

    /// Re-adds a device that left `slot` (mdadm `--re-add` with a write-intent bitmap): it
    /// returns to `slot` as recovering from `config.recovery_offset`, and recovery copies only
    /// the chunks whose bitmap bit is set. The owner checks that the device's events lie within
    /// the bitmap's `events_cleared` window; otherwise use [`Raid1::add_member`]. Recovery
    /// starts at once when no sync action runs.
    pub fn re_add_member(
        &mut self,
        member: usize,
        config: MemberConfig,
        slot: usize,
    ) -> Result<(), EngineError> {
        if self.bitmap.is_none() {
            return Err(EngineError::Refused("re-add needs a write-intent bitmap"));
        }
        let config = MemberConfig {
            bitmap_recovery_below: u64::MAX,
            ..config
        };
        self.resume_member(member, config, slot)
    }

    /// Puts a device back into `slot` as recovering from `config.recovery_offset` (md resuming
    /// an interrupted recovery): below `config.bitmap_recovery_below` only chunks whose bitmap
    /// bit is set are copied, from it on every block. Refused when the bitmap is needed but
    /// absent. Recovery starts at once when no sync action runs.
    pub fn resume_member(
        &mut self,
        member: usize,
        config: MemberConfig,
        slot: usize,
    ) -> Result<(), EngineError> {
        let from = config.recovery_offset.min(self.array_sectors);
        let bitmap_below = config.bitmap_recovery_below.max(from);
        if bitmap_below > from && self.bitmap.is_none() {
            return Err(EngineError::Refused(
                "a bitmap-based recovery needs a write-intent bitmap",
            ));
        }
        if slot >= self.raid_disks || !self.slot_free(slot) {
            return Err(EngineError::Refused("slot out of range or occupied"));
        }
        let state = PositionState::Recovering {
            recovery_offset: from,
        };
        self.install_member(member, &config, state, Some(slot))?;
        if let Some(m) = self.mirrors.get_mut(member) {
            m.bitmap_below = bitmap_below;
        }
        self.want_recovery = true;
        self.full_next = true;
        self.progress();
        Ok(())
    }

    fn install_member(
        &mut self,
        member: usize,
        config: &MemberConfig,
        state: PositionState,
        slot: Option<usize>,
    ) -> Result<(), EngineError> {
        match self.mirrors.get(member) {
            None => return Err(EngineError::Refused("no such member index")),
            Some(m) if m.state != PositionState::Missing => {
                return Err(EngineError::Refused("member index in use"))
            }
            _ => {}
        }
        if !config.present {
            return Err(EngineError::Refused("config describes no device"));
        }
        let bb = match &config.bad_blocks {
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
        let Some(m) = self.mirrors.get_mut(member) else {
            return Err(EngineError::Refused("no such member index"));
        };
        m.state = state;
        m.write_mostly = config.write_mostly;
        m.failfast = config.failfast;
        m.rotational = config.rotational;
        m.bb = bb;
        m.head_position = 0;
        m.next_seq_sect = u64::MAX;
        m.seq_start = u64::MAX;
        m.counters = MemberCounters::default();
        m.last_read_error = None;
        m.slot = slot;
        m.epoch = m.epoch.wrapping_add(1);
        m.bitmap_below = 0;
        Ok(())
    }

    // ------------------------------------------------------------ internals

    fn slot_free(&self, slot: usize) -> bool {
        !self
            .mirrors
            .iter()
            .any(|m| m.slot == Some(slot) && m.state.is_working())
    }

    /// Every slot has a working member (a write reaching all of them is not degraded).
    pub(super) fn all_slots_working(&self) -> bool {
        (0..self.raid_disks).all(|s| !self.slot_free(s))
    }

    /// Gives spares the empty slots (md's `remove_and_add_spares`). Returns how many.
    pub(super) fn assign_spares(&mut self) -> usize {
        let mut n = 0;
        for s in 0..self.raid_disks {
            if !self.slot_free(s) {
                continue;
            }
            let Some(i) = self
                .mirrors
                .iter()
                .position(|m| m.state == PositionState::Spare)
            else {
                break;
            };
            let m = &mut self.mirrors[i];
            m.state = PositionState::Recovering { recovery_offset: 0 };
            m.slot = Some(s);
            m.bitmap_below = 0;
            n += 1;
        }
        n
    }
}
