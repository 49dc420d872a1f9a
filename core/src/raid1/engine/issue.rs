//! Member-I/O issuing: turning a started request into [`MemberIo`]s from the member-I/O pool.
//!
//! `issue` takes a pool slot and queues the I/O; `issue_read` splits a read by read balancing
//! (and re-issues failed pieces on other mirrors), `issue_write` fans a write or discard out to
//! every working member around known bad ranges, `issue_flush` flushes every working member.
//! Kept apart because it is the only place requests become member I/O.

use super::*;

impl Raid1 {
    /// Hands out a member I/O; `false` when the pool is empty.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn issue(
        &mut self,
        req: usize,
        member: usize,
        kind: MemberIoKind,
        sector: u64,
        sectors: u64,
        buf: IoBuf,
        fua: bool,
        blocked: u64,
        fix_targets: u64,
        failfast: bool,
    ) -> bool {
        let Some(id) = self.claim_io(
            req,
            member,
            kind,
            sector,
            sectors,
            blocked,
            fix_targets,
            failfast,
        ) else {
            return false;
        };
        self.out_ios.push_back(MemberIo {
            id,
            member,
            kind,
            sector,
            sectors,
            fua,
            buf,
        });
        true
    }

    /// Takes a pool slot for a member I/O of request slot `req` (counted on the member and
    /// the request); `None` when the pool is empty.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn claim_io(
        &mut self,
        req: usize,
        member: usize,
        kind: MemberIoKind,
        sector: u64,
        sectors: u64,
        blocked: u64,
        fix_targets: u64,
        failfast: bool,
    ) -> Option<MemberIoId> {
        let slot = self.free_ios.pop()?;
        let io = self.ios.get_mut(slot)?;
        io.live = true;
        // The generation wraps below bit 30, keeping the id's two top bits free (see
        // `MemberIoId`): a slot reused 2^31 times must not hand out an id with bit 63.
        io.gen = io.gen.wrapping_add(1) & IO_GEN_MASK;
        io.req = req;
        io.member = member;
        io.kind = kind;
        io.sector = sector;
        io.sectors = sectors;
        io.blocked = blocked;
        io.fix_targets = fix_targets;
        io.failfast = failfast;
        io.epoch = self.mirrors.get(member).map_or(0, |m| m.epoch);
        let id = MemberIoId(((io.gen as u64) << 32) | slot as u64);
        if let Some(m) = self.mirrors.get_mut(member) {
            let c = &mut m.counters;
            c.pending = c.pending.saturating_add(1);
            match kind {
                MemberIoKind::Read => {
                    c.reads += 1;
                    c.read_sectors += sectors;
                }
                MemberIoKind::Write => {
                    c.writes += 1;
                    c.write_sectors += sectors;
                }
                _ => {}
            }
        }
        if let Some(r) = self.reqs.get_mut(req) {
            r.inflight += 1;
        }
        Some(id)
    }

    pub(super) fn issue_read(&mut self, slot: usize) {
        while !self.free_ios.is_empty() {
            let r = &mut self.reqs[slot];
            let end = r.end();
            let (piece, from_cursor) = if let Some(p) = r.retries.pop() {
                (p, false)
            } else if r.cursor < end {
                (
                    Piece {
                        sector: r.cursor,
                        sectors: end - r.cursor,
                        blocked: 0,
                        fix_targets: 0,
                    },
                    true,
                )
            } else {
                return;
            };
            let (req_sector, buf, buf_offset) = (r.sector, r.buf, r.buf_offset);
            let choice = read_balance(
                &mut self.mirrors,
                self.resync_offset,
                piece.sector,
                piece.sectors,
                piece.blocked,
            );
            let Some(c) = choice else {
                let r = &mut self.reqs[slot];
                r.error.get_or_insert(ArrayIoError::ReadFailed {
                    sector: piece.sector,
                });
                if from_cursor {
                    r.cursor = end;
                }
                continue;
            };
            let n = c.sectors.min(piece.sectors).max(1);
            let offset = buf_offset + (piece.sector - req_sector) * crate::SECTOR_SIZE;
            self.issue(
                slot,
                c.member,
                MemberIoKind::Read,
                piece.sector,
                n,
                IoBuf::Caller { buf, offset },
                false,
                piece.blocked,
                piece.fix_targets,
                c.failfast,
            );
            let r = &mut self.reqs[slot];
            if from_cursor {
                r.cursor = piece.sector + n;
            } else if n < piece.sectors {
                // md re-balances the rest of a split read from scratch.
                r.retries.push(Piece {
                    sector: piece.sector + n,
                    sectors: piece.sectors - n,
                    blocked: 0,
                    fix_targets: 0,
                });
            }
        }
    }

    pub(super) fn issue_write(&mut self, slot: usize) {
        let slots = self.mirrors.len();
        loop {
            let r = &self.reqs[slot];
            let m = r.cur_member;
            if m >= slots {
                return;
            }
            let (end, cursor) = (r.end(), r.cursor);
            let mirror = &self.mirrors[m];
            let seg = if mirror.state.is_working() {
                mirror.next_good_segment(cursor, end)
            } else {
                None
            };
            let Some((a, l)) = seg else {
                let r = &mut self.reqs[slot];
                r.cur_member += 1;
                r.cursor = r.sector;
                continue;
            };
            if a != cursor || a + l != end {
                // Skipping a known bad range: that member misses part of the write.
                self.reqs[slot].degraded = true;
            }
            let r = &self.reqs[slot];
            let (kind, buf) = if r.op == Op::Discard {
                (MemberIoKind::Discard, IoBuf::None)
            } else {
                (
                    MemberIoKind::Write,
                    IoBuf::Caller {
                        buf: r.buf,
                        offset: r.buf_offset + (a - r.sector) * crate::SECTOR_SIZE,
                    },
                )
            };
            let fua = r.fua;
            if !self.issue(slot, m, kind, a, l, buf, fua, 0, 0, false) {
                return;
            }
            self.reqs[slot].cursor = a + l;
        }
    }

    pub(super) fn issue_flush(&mut self, slot: usize) {
        let slots = self.mirrors.len();
        if self.reqs[slot].cur_member == 0 && !self.mirrors.iter().any(|m| m.state.is_working()) {
            let r = &mut self.reqs[slot];
            r.error = Some(ArrayIoError::NoWorkingMember);
            r.cur_member = slots;
            return;
        }
        while self.reqs[slot].cur_member < slots {
            let m = self.reqs[slot].cur_member;
            if self.mirrors[m].state.is_working()
                && !self.issue(
                    slot,
                    m,
                    MemberIoKind::Flush,
                    0,
                    0,
                    IoBuf::None,
                    false,
                    0,
                    0,
                    false,
                )
            {
                return;
            }
            self.reqs[slot].cur_member += 1;
        }
    }
}
