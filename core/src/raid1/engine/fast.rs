//! md's read fast path: a read on a healthy array is one member read, issued at submission
//! and finished by that read's success, without the scheduler's rounds.
//!
//! md's raid1 read path is `read_balance` plus one bio to the chosen mirror; the resync
//! barrier costs nothing while no sync runs. The engine's general path queues every request
//! for a visit of the progress loop at submission and again at each member completion. A read
//! that may be served directly skips those visits: [`Raid1::handle_submit_fast`] decides with
//! the same read balancing, enlists the request in submission order (so later writes, sync
//! blocks, stop and remove see it in flight exactly like any read) and hands out its one member
//! I/O; the I/O's success finishes the request at once. A member error turns it into an
//! ordinary read (retried on another mirror, counted, repaired and failed by the existing
//! rules in `handle_member_completion` and `repair`): nothing of the error handling is
//! repeated here.
//!
//! The fast path is taken only when all of these hold (O(members) to check, no allocation):
//! no sync action, recovery, repair or pending recovery start; no member failure awaiting its
//! superblock round and no starved event; every slot held by an in-sync member and no member
//! recovering (a replacement counts as recovering); the range below the resync checkpoint;
//! no earlier overlapping write, discard, repair or sync block in flight; a free member-I/O
//! slot; and read balancing choosing one in-sync mirror for the whole range (so no bad block
//! in the range on it; a write-mostly mirror only when it is the only readable one).

use super::balance::{balance_choice, note_choice, Choice};
use super::*;

/// `IoSlot::req` of a direct read: no request slot stands behind it.
pub(super) const DIRECT: usize = usize::MAX;

/// Direct reads' member-I/O ids carry this bit (one of the two `MemberIoId` leaves free).
pub const DIRECT_BIT: u64 = 1 << 62;

/// How a direct read (see [`Raid1::submit_direct_read`]) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectDone {
    /// The read is done: its buffer token and its outcome (an error only when no request
    /// slot was left to retry it in, which the engine's sizing rules out).
    Finished(BufRef, Result<(), ArrayIoError>),
    /// Its member read failed: the read goes on as an ordinary request, retried on another
    /// mirror, counted and repaired by the general path's rules; its completion comes from
    /// [`Raid1::poll_completion`] under this id.
    Continues(ReqId, BufRef),
}

/// The read fast path's switch and counters.
#[derive(Clone, Copy, Debug)]
pub(super) struct FastReads {
    enabled: bool,
    taken: u64,
    fallbacks: u64,
}

impl Default for FastReads {
    fn default() -> Self {
        FastReads {
            enabled: true,
            taken: 0,
            fallbacks: 0,
        }
    }
}

/// How often the read fast path was used (see [`Raid1::fast_read_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastReadStats {
    /// Reads issued on the fast path.
    pub taken: u64,
    /// Of those, reads whose member I/O failed and that went on as ordinary reads.
    pub fallbacks: u64,
}

/// A request taken by [`Raid1::handle_submit_fast`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The request's id.
    pub id: ReqId,
    /// It took the fast path: its one member read is queued and nothing else was emitted
    /// (no event, no other I/O), so the owner has nothing to pump.
    pub fast: bool,
}

impl Raid1 {
    /// [`Raid1::handle_submit`] with md's read fast path: a read that may be served directly
    /// (see the `fast` module) has its one member I/O queued for
    /// [`Raid1::poll_member_io`] at once and completes when that I/O succeeds; anything else
    /// takes the general path. The outputs are those of `handle_submit` in either case.
    pub fn handle_submit_fast(&mut self, req: ArrayRequest) -> Result<Submitted, SubmitError> {
        let fast = self.fast.enabled;
        self.submit(req, fast)
    }

    /// Turns the read fast path on (the default) or off (every read takes the general path).
    pub fn set_fast_reads(&mut self, enabled: bool) {
        self.fast.enabled = enabled;
    }

    /// How many reads took the fast path, and how many of them fell back on a member error.
    pub fn fast_read_stats(&self) -> FastReadStats {
        FastReadStats {
            taken: self.fast.taken,
            fallbacks: self.fast.fallbacks,
        }
    }

    /// Whether nothing array-wide stands in the fast path's way (the per-request checks
    /// follow in [`Raid1::try_fast_read`]).
    fn fast_reads_possible(&self) -> bool {
        self.sync.is_none()
            && !self.want_recovery
            && !self.auto_resync
            && self.live_fixes == 0
            && !self.emit_starved
            && self.unrecorded_failures.is_empty()
            && self.failures_owed == 0
            && !self.free_ios.is_empty()
            && self.healthy()
    }

    /// Every slot held by an in-sync member and no member recovering (one pass; arrays of
    /// more than 64 slots ask [`fully_in_sync`]).
    fn healthy(&self) -> bool {
        let mut held = 0u64;
        for m in &self.mirrors {
            match (m.state, m.slot) {
                (PositionState::Recovering { .. }, _) => return false,
                (PositionState::InSync, Some(s)) if s < 64 => held |= 1 << s,
                _ => {}
            }
        }
        match self.raid_disks {
            0 => false,
            n if n <= 64 => held == u64::MAX >> (64 - n),
            _ => fully_in_sync(&self.mirrors, self.raid_disks),
        }
    }

    /// Events queued for the owner.
    pub(crate) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Nothing queued for the owner: no member I/O, no finished request, no event.
    #[inline]
    pub(crate) fn has_no_outputs(&self) -> bool {
        self.out_ios.is_empty() && self.completions.is_empty() && self.events.is_empty()
    }

    /// The mirror a read of `[sector, sector+sectors)` takes on the fast path (either form),
    /// when it may: nothing array-wide in the way, the range below the resync point, and
    /// read balancing choosing one in-sync mirror for the whole range. Records nothing.
    #[inline]
    fn fast_read_choice(&self, sector: u64, sectors: u64) -> Option<Choice> {
        if !self.fast_reads_possible() || sector.saturating_add(sectors) > self.resync_offset {
            return None;
        }
        let c = balance_choice(&self.mirrors, self.resync_offset, sector, sectors, 0)?;
        if c.sectors < sectors || !self.mirrors.get(c.member).is_some_and(|m| m.is_in_sync()) {
            return None;
        }
        Some(c)
    }

    /// Issues the freshly enlisted read in `slot` on the fast path, if it may be; `false`
    /// leaves it untouched for the general path.
    #[inline(never)]
    pub(super) fn try_fast_read(&mut self, slot: usize) -> bool {
        let (sector, sectors, buf, buf_offset) = {
            let r = &self.reqs[slot];
            (r.sector, r.sectors, r.buf, r.buf_offset)
        };
        if self.writers > 0 && self.blocked_by_earlier(slot) {
            return false;
        }
        let Some(c) = self.fast_read_choice(sector, sectors) else {
            return false;
        };
        note_choice(&mut self.mirrors, sector, c);
        let r = &mut self.reqs[slot];
        r.fast = true;
        r.started = true;
        r.cursor = r.end();
        let issued = self.issue(
            slot,
            c.member,
            MemberIoKind::Read,
            sector,
            sectors,
            IoBuf::Caller {
                buf,
                offset: buf_offset,
            },
            false,
            0,
            0,
            c.failfast,
        );
        if !issued {
            // Unreachable (a free I/O slot was checked): the general path reissues it.
            let r = &mut self.reqs[slot];
            r.fast = false;
            r.cursor = sector;
            return false;
        }
        self.fast.taken += 1;
        true
    }

    /// md's read fast path with the member read handed straight back: when the read may be
    /// served directly (the fast path's conditions, and no earlier overlapping write in
    /// flight), its one member read is returned instead of queued, and the read holds no
    /// request slot and no place in the submission order until it completes. Its completion
    /// goes to [`Raid1::handle_direct_completion`] (its id has [`DIRECT_BIT`]), whose success
    /// finishes it there and then. `None`: submit the read with [`Raid1::handle_submit`]
    /// (which also reports what is wrong with an invalid one).
    ///
    /// A direct read is in flight to everything that asks: it counts in
    /// [`Raid1::requests_in_flight`] and [`Raid1::member_ios_in_flight`] (so a stop or a
    /// member removal waits for it) and in its member's pending count (read balancing), and
    /// no sync block starts while one is out. Writes submitted after it do not wait for it
    /// (md orders neither way: overlapping reads and writes in flight together see either
    /// data); should it fail, its retry orders after them.
    pub fn submit_direct_read(&mut self, req: &ArrayRequest) -> Option<MemberIo> {
        if req.kind != RequestKind::Read || !self.fast.enabled || req.sectors == 0 {
            return None;
        }
        let (sector, sectors) = self.check_request(req, Op::Read).ok()?;
        let end = sector + sectors;
        if self.writers > 0
            && self
                .order
                .iter()
                .any(|o| o.writes && o.sector < end && sector < o.end)
        {
            return None;
        }
        let c = self.fast_read_choice(sector, sectors)?;
        let id = self.claim_io(
            DIRECT,
            c.member,
            MemberIoKind::Read,
            sector,
            sectors,
            0,
            0,
            c.failfast,
        )?;
        if let Some(io) = self.ios.get_mut((id.0 & 0xffff_ffff) as usize) {
            io.buf = req.buf;
            io.buf_offset = req.buf_offset;
        }
        note_choice(&mut self.mirrors, sector, c);
        self.user_live += 1;
        self.direct_live += 1;
        self.last_user_submit = Some(self.now);
        self.fast.taken += 1;
        Some(MemberIo {
            id: MemberIoId(id.0 | DIRECT_BIT),
            member: c.member,
            kind: MemberIoKind::Read,
            sector,
            sectors,
            fua: false,
            buf: IoBuf::Caller {
                buf: req.buf,
                offset: req.buf_offset,
            },
        })
    }

    /// Reports a direct read's member I/O outcome (see [`Raid1::submit_direct_read`]).
    pub fn handle_direct_completion(
        &mut self,
        id: MemberIoId,
        result: Result<(), MemberError>,
    ) -> Result<DirectDone, EngineError> {
        if id.0 & DIRECT_BIT == 0 {
            return Err(EngineError::UnknownMemberIo(id.0));
        }
        let raw = id.0 & !DIRECT_BIT;
        let slot = (raw & 0xffff_ffff) as usize;
        let gen = (raw >> 32) as u32;
        let io = match self.ios.get_mut(slot) {
            Some(io) if io.live && io.gen == gen && io.req == DIRECT => {
                io.live = false;
                *io
            }
            _ => return Err(EngineError::UnknownMemberIo(id.0)),
        };
        self.free_ios.push(slot);
        self.direct_live = self.direct_live.saturating_sub(1);
        let (stale, result) = self.count_member_completion(&io, result);
        // Pool space. (A sync block waiting for the last direct read needs no wake: while an
        // action runs, every progress round looks at the sync.)
        self.wake_list(LIST_POOL);
        if result.is_ok() {
            self.user_live = self.user_live.saturating_sub(1);
            self.progress();
            return Ok(DirectDone::Finished(io.buf, Ok(())));
        }
        self.fast.fallbacks += 1;
        if !stale {
            self.note_read_error(io.member, io.failfast);
        }
        let still = !stale
            && self
                .mirrors
                .get(io.member)
                .is_some_and(|m| m.state.is_working());
        // The read becomes an ordinary one, enlisted now: its retry (on another mirror, the
        // failed one blocked and, while it still works, repaired) orders after the writes
        // submitted meanwhile.
        let Some(r) = self.free_reqs.pop() else {
            self.user_live = self.user_live.saturating_sub(1);
            self.progress();
            return Ok(DirectDone::Finished(
                io.buf,
                Err(ArrayIoError::ReadFailed { sector: io.sector }),
            ));
        };
        let req = &mut self.reqs[r];
        req.reset(
            Op::Read,
            io.sector,
            io.sectors,
            false,
            io.buf,
            io.buf_offset,
        );
        req.cursor = req.end();
        req.retries.push(Piece {
            sector: io.sector,
            sectors: io.sectors,
            blocked: bit(io.member),
            fix_targets: if still { bit(io.member) } else { 0 },
        });
        let rid = self.req_id(r);
        self.enlist(r);
        self.wake(r);
        self.progress();
        Ok(DirectDone::Continues(rid, io.buf))
    }

    /// A fast read's member I/O completed (its outcome already recorded by
    /// `handle_member_completion`). On success the request finishes here: `true`. On failure
    /// it becomes an ordinary read, which the general path retries: `false`.
    #[inline(never)]
    pub(super) fn fast_read_done(&mut self, slot: usize, ok: bool) -> bool {
        let r = &mut self.reqs[slot];
        if !ok || r.inflight != 0 || !r.retries.is_empty() || r.error.is_some() {
            if core::mem::take(&mut r.fast) {
                self.fast.fallbacks += 1;
            }
            return false;
        }
        self.finish(slot);
        // Whatever this completion woke (pool waiters, writes held behind the read) moves on.
        self.progress();
        true
    }
}
