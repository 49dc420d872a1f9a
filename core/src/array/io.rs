//! Array I/O through the RAID1 engine: a blocking drive loop.
//!
//! Each call submits one request to the sans-IO engine ([`crate::raid1::Raid1`]) and drives it to
//! completion: member I/Os are carried out one at a time on the member devices, metadata events
//! become superblock / bitmap / bad-block-log writes (flushed before they are acknowledged, so a
//! data write never overtakes the metadata it depends on), and completions are collected.

use super::{Array, ArrayError, MemberState, SyncReport};
use crate::device::BlockDevice;
use crate::raid1::{
    ArrayRequest, BufRef, Event, IoBuf, MemberConfig, MemberError, MemberIo, MemberIoKind, Raid1,
    Raid1Config, SyncAction,
};
use crate::{Result, SECTOR_SIZE};
use alloc::vec::Vec;

/// Rounds of the drive loop without any progress before the loop gives up (an engine bug must
/// not hang the caller).
const STALL_LIMIT: u32 = 1000;
/// Member I/Os per slice of a sync action between progress reports (~8 MiB of 64 KiB blocks
/// on a two-way mirror).
const SYNC_SLICE_IOS: u32 = 256;

/// The caller's memory for one request.
pub(crate) enum CallerBuf<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
    None,
}

impl<D: BlockDevice> Array<D> {
    /// What the engine needs to know about member `i`.
    pub(crate) fn member_config(&self, i: usize) -> MemberConfig {
        super::machine::config::member_config(&self.members[i])
    }

    /// The array-wide facts the engine configuration depends on.
    pub(crate) fn facts(&self) -> super::machine::config::ArrayFacts<'_> {
        super::machine::config::ArrayFacts {
            raid_disks: self.raid_disks,
            component_sectors: self.component_sectors,
            readonly: self.readonly,
            dirty: self.dirty,
            needs_resync: self.needs_resync,
            resync_done: self.resync_done,
            speed_limits: self.speed_limits,
            bitmap: self.bitmap.as_ref(),
        }
    }

    /// The engine configuration for the array as it stands, and which member each engine
    /// position holds.
    pub(crate) fn engine_config(&self) -> (Raid1Config, Vec<Option<usize>>) {
        super::machine::config::engine_config(&self.members, &self.facts())
    }

    /// The member holding `slot`, if any.
    pub(crate) fn slot_member(&self, slot: u32) -> Option<usize> {
        super::machine::config::slot_member(&self.members, slot)
    }

    pub(crate) fn engine_mut(&mut self) -> Result<&mut Raid1> {
        if self.engine.is_none() {
            let (cfg, emap) = self.engine_config();
            self.emap = emap;
            let e =
                Raid1::new(cfg).map_err(|e| ArrayError::Invalid(alloc::format!("engine: {e}")))?;
            self.engine = Some(e);
        }
        // Just built or already there.
        self.engine
            .as_mut()
            .ok_or_else(|| ArrayError::Invalid("engine missing".into()).into())
    }

    /// Runs one array request to completion.
    fn run_request(&mut self, req: ArrayRequest, mut buf: CallerBuf<'_>, now: u64) -> Result<()> {
        self.clock_ns = self.clock_ns.max(now.saturating_mul(1_000_000_000));
        let clock = self.clock_ns;
        let engine = self.engine_mut()?;
        engine.handle_timeout(clock);
        let id = engine
            .handle_submit(req)
            .map_err(|e| ArrayError::Invalid(alloc::format!("{e}")))?;
        let mut done = None;
        self.drive(&mut buf, now, &mut |_| None, false, &mut |rid, res| {
            if rid == id {
                done = Some(res);
            }
            done.is_some()
        })?;
        match done {
            Some(res) => res.map_err(|e| ArrayError::Io(alloc::format!("{e}")).into()),
            None => Err(ArrayError::Invalid("request lost by the engine".into()).into()),
        }
    }

    /// Runs the engine until `finished` says so (it sees every completion), until a sync
    /// action has ended or a slice of it is done when `until_sync_done`, or else until nothing is left to do. When only a timer is pending, `wait`
    /// is asked to wait until that deadline (ns) and returns the new time; `None` from it
    /// advances the engine's virtual clock instead.
    pub(crate) fn drive(
        &mut self,
        buf: &mut CallerBuf<'_>,
        now: u64,
        wait: &mut dyn FnMut(u64) -> Option<u64>,
        until_sync_done: bool,
        finished: &mut dyn FnMut(
            crate::raid1::ReqId,
            core::result::Result<(), crate::raid1::ArrayIoError>,
        ) -> bool,
    ) -> Result<()> {
        let mut stalls = 0;
        let mut ios = 0u32;
        loop {
            let mut progressed = false;
            while let Some(io) = self.engine_mut()?.poll_member_io() {
                progressed = true;
                ios += 1;
                let result = self.do_member_io(&io, buf);
                self.engine_mut()?
                    .handle_member_completion(io.id, result)
                    .map_err(|e| ArrayError::Invalid(alloc::format!("engine: {e}")))?;
            }
            while let Some(ev) = self.engine_mut()?.poll_event() {
                progressed = true;
                self.apply_event(&ev, now)?;
                self.engine_mut()?
                    .handle_metadata_done(ev.token())
                    .map_err(|e| ArrayError::Invalid(alloc::format!("engine: {e}")))?;
                self.fail_in_engine();
            }
            while let Some((rid, res)) = self.engine_mut()?.poll_completion() {
                progressed = true;
                if finished(rid, res) {
                    return Ok(());
                }
            }
            // A sync hands back after a slice of member I/Os too, so its caller can report
            // progress while it runs (the engine keeps its place).
            if until_sync_done && (self.last_sync.is_some() || ios >= SYNC_SLICE_IOS) {
                return Ok(());
            }
            if progressed {
                stalls = 0;
                continue;
            }
            let engine = self.engine_mut()?;
            let busy = engine.requests_in_flight() > 0 || engine.sync_status().is_some();
            if !busy {
                return Ok(());
            }
            stalls += 1;
            if stalls > STALL_LIMIT {
                return Err(ArrayError::Invalid("engine made no progress".into()).into());
            }
            // Nothing to do but wait for the engine's timer (a throttled sync, a retry).
            let next = engine
                .poll_timeout()
                .unwrap_or(self.clock_ns + 1_000_000)
                .max(self.clock_ns);
            self.clock_ns = wait(next).unwrap_or(next).max(self.clock_ns);
            let c = self.clock_ns;
            self.engine_mut()?.handle_timeout(c);
        }
    }

    /// Members this layer failed on a metadata error (md_error from a superblock, bitmap or
    /// bad-block-log write or flush) are failed in the engine too, so it stops sending them
    /// I/O (and recording bad blocks for them) as md stops using a Faulty rdev.
    fn fail_in_engine(&mut self) {
        use crate::raid1::MemberState as E;
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        for (pos, m) in self.emap.iter().enumerate() {
            let Some(i) = *m else { continue };
            if self.members[i].state == MemberState::Faulty
                && !matches!(
                    engine.member_state(pos),
                    None | Some(E::Faulty | E::Missing)
                )
            {
                // Refused only for the engine's last in-sync mirror, when every superblock
                // write failed: that round already returned NoWorkingMember.
                let _ = engine.fail_member(pos);
            }
        }
    }

    /// Carries out one member I/O on the member's device.
    fn do_member_io(
        &mut self,
        io: &MemberIo,
        buf: &mut CallerBuf<'_>,
    ) -> core::result::Result<(), MemberError> {
        // The engine position's device; a member this layer already failed gets no more I/O.
        let Some(mi) = self.emap.get(io.member).copied().flatten() else {
            return Err(MemberError::Io(19));
        };
        if self.members[mi].state == MemberState::Faulty {
            return Err(MemberError::Io(19));
        }
        let len = usize::try_from(io.sectors * SECTOR_SIZE).map_err(|_| MemberError::Io(22))?;
        let at = self.members[mi].data_byte(io.sector * SECTOR_SIZE);
        match (io.kind, io.buf) {
            (MemberIoKind::Flush, _) => self.members[mi].dev.flush().map_err(MemberError::from),
            (MemberIoKind::Discard, _) => Ok(()),
            (MemberIoKind::Read, IoBuf::Caller { offset, .. }) => {
                let CallerBuf::Read(b) = buf else {
                    return Err(MemberError::Io(22));
                };
                let o = usize::try_from(offset).map_err(|_| MemberError::Io(22))?;
                let dst = b.get_mut(o..o + len).ok_or(MemberError::Io(22))?;
                self.members[mi]
                    .dev
                    .read_at(at, dst)
                    .map_err(MemberError::from)
            }
            (MemberIoKind::Write, IoBuf::Caller { offset, .. }) => {
                let o = usize::try_from(offset).map_err(|_| MemberError::Io(22))?;
                let src = match buf {
                    CallerBuf::Write(b) => b.get(o..o + len),
                    CallerBuf::Read(b) => b.get(o..o + len),
                    CallerBuf::None => None,
                }
                .ok_or(MemberError::Io(22))?;
                let dev = &mut self.members[mi].dev;
                let r = if io.fua {
                    dev.write_at_fua(at, src)
                } else {
                    dev.write_at(at, src)
                };
                r.map_err(MemberError::from)
            }
            (MemberIoKind::Read, IoBuf::Scratch { index }) => {
                let mut tmp = alloc::vec![0u8; len];
                self.members[mi]
                    .dev
                    .read_at(at, &mut tmp)
                    .map_err(MemberError::from)?;
                let engine = self.engine.as_mut().ok_or(MemberError::Io(22))?;
                let s = engine
                    .scratch_mut(index)
                    .and_then(|s| s.get_mut(..len))
                    .ok_or(MemberError::Io(22))?;
                s.copy_from_slice(&tmp);
                Ok(())
            }
            (MemberIoKind::Write, IoBuf::Scratch { index }) => {
                let engine = self.engine.as_ref().ok_or(MemberError::Io(22))?;
                let tmp = engine
                    .scratch(index)
                    .and_then(|s| s.get(..len))
                    .ok_or(MemberError::Io(22))?
                    .to_vec();
                self.members[mi]
                    .dev
                    .write_at(at, &tmp)
                    .map_err(MemberError::from)
            }
            _ => Err(MemberError::Io(22)),
        }
    }

    /// Makes one metadata event durable.
    fn apply_event(&mut self, ev: &Event, now: u64) -> Result<()> {
        if self.readonly {
            // A read-only array writes nothing, metadata included (md's "readonly" state).
            return Ok(());
        }
        match *ev {
            Event::MarkDirty { .. } => {
                self.dirty = true;
                self.write_superblocks(now)
            }
            Event::MarkClean { .. } => {
                self.dirty = false;
                self.write_superblocks(now)
            }
            Event::BitmapSet {
                first_chunk,
                chunks,
                ..
            } => self.update_bitmap(first_chunk, chunks, true, now),
            Event::BitmapClear {
                first_chunk,
                chunks,
                ..
            } => self.update_bitmap(first_chunk, chunks, false, now),
            Event::BadBlocks {
                member,
                sector,
                sectors,
                ..
            } => match self.emap.get(member).copied().flatten() {
                Some(i) => self.record_bad_blocks(i, sector, sectors, now),
                None => Ok(()),
            },
            Event::MemberFailed { member, .. } => {
                if let Some(i) = self.emap.get(member).copied().flatten() {
                    self.members[i].state = MemberState::Faulty;
                }
                self.write_superblocks(now)
            }
            Event::SyncCheckpoint { action, sector, .. } => {
                // md persists resync progress as resync_offset; recovery progress is not
                // persisted here (an interrupted rebuild starts over, which is safe).
                if action == SyncAction::Resync && self.needs_resync {
                    self.resync_done = sector;
                    self.write_superblocks(now)?;
                } else if action == SyncAction::Recovery {
                    self.note_rebuild_progress();
                    self.write_superblocks(now)?;
                }
                Ok(())
            }
            Event::SyncDone {
                action,
                mismatch_cnt,
                sectors_copied,
                interrupted,
                ..
            } => {
                if action == SyncAction::Resync && !interrupted {
                    self.needs_resync = false;
                    self.resync_done = u64::MAX;
                }
                self.last_sync = Some(SyncReport {
                    action,
                    mismatch_cnt,
                    sectors_copied,
                    sectors_done: self.component_sectors,
                    interrupted,
                });
                self.write_superblocks(now)
            }
            Event::MemberInSync { member, slot, .. } => {
                if let Some(i) = self.emap.get(member).copied().flatten() {
                    if self.members[i].state == MemberState::Spare {
                        let name = self.members[i].name.clone();
                        self.rebuilt.push((name, slot as u32));
                    }
                    self.members[i].state = MemberState::InSync(slot as u32);
                    self.members[i].rebuild = None;
                }
                self.write_superblocks(now)
            }
        }
    }

    /// Copies the engine's recovery progress into the members being rebuilt.
    fn note_rebuild_progress(&mut self) {
        let Some(engine) = self.engine.as_ref() else {
            return;
        };
        for (pos, m) in self.emap.iter().enumerate() {
            let Some(i) = *m else { continue };
            if let (Some(crate::raid1::MemberState::Recovering { recovery_offset }), Some(slot)) =
                (engine.member_state(pos), engine.member_slot(pos))
            {
                if self.members[i].state == MemberState::Spare {
                    self.members[i].rebuild =
                        Some((slot as u32, recovery_offset.min(self.component_sectors)));
                }
            }
        }
    }

    /// Sets or clears a run of bitmap bits and writes the bitmap to every working member; a
    /// member that fails meanwhile is recorded in the survivors' superblocks (md_update_sb).
    fn update_bitmap(&mut self, first: u64, chunks: u64, set: bool, now: u64) -> Result<()> {
        let failed = self.faulty_count();
        let events = self.events;
        let Some(bm) = self.bitmap.as_mut() else {
            return Ok(());
        };
        for c in first..first.saturating_add(chunks).min(bm.bitmap.chunks()) {
            let _ = if set {
                bm.bitmap.set(c)
            } else {
                bm.bitmap.clear(c)
            };
        }
        if bm.write_all(&mut self.members, events)? == 0 {
            return Err(ArrayError::NoWorkingMember.into());
        }
        if self.faulty_count() != failed {
            self.write_superblocks(now)?;
        }
        Ok(())
    }

    /// Adds a range to a member's bad-block log and writes log and superblock.
    fn record_bad_blocks(&mut self, i: usize, sector: u64, sectors: u64, now: u64) -> Result<()> {
        let m = &mut self.members[i];
        if !m.state.is_working() {
            // md writes nothing to a Faulty rdev, its log included.
            return Ok(());
        }
        let mut raw = Vec::new();
        let Some(off) = m.add_bad_blocks(sector, sectors, &mut raw)? else {
            // 0.90 has no log: the engine fails the member instead (no table was configured).
            return Ok(());
        };
        if m.dev
            .write_at(off, &raw)
            .and_then(|_| m.dev.flush())
            .is_err()
        {
            // The log cannot be written either: md fails the member (md_error), which the
            // survivors' superblocks record.
            m.state = MemberState::Faulty;
        } else {
            m.sync_badblocks_feature();
        }
        self.write_superblocks(now)
    }

    /// Reads array bytes at `offset` through the engine.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_range("read", offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let (first, count, lead) = sector_span(offset, buf.len());
        if lead == 0 && buf.len() as u64 % SECTOR_SIZE == 0 {
            return self.run_request(
                ArrayRequest::read(first, count, BufRef(0)),
                CallerBuf::Read(buf),
                self.last_now,
            );
        }
        // Not sector aligned: read the covering sectors and copy the part asked for.
        let mut tmp = alloc::vec![0u8; (count * SECTOR_SIZE) as usize];
        self.run_request(
            ArrayRequest::read(first, count, BufRef(0)),
            CallerBuf::Read(&mut tmp),
            self.last_now,
        )?;
        buf.copy_from_slice(&tmp[lead..lead + buf.len()]);
        Ok(())
    }

    /// Writes `buf` at array `offset` through the engine; succeeds while one mirror took it.
    /// `now` (seconds since the epoch) stamps the superblocks.
    pub fn write(&mut self, offset: u64, buf: &[u8], now: u64) -> Result<()> {
        self.write_with(offset, buf, now, false)
    }

    /// [`Self::write`] with force unit access: durable on every member that took it when this
    /// returns.
    pub fn write_fua(&mut self, offset: u64, buf: &[u8], now: u64) -> Result<()> {
        self.write_with(offset, buf, now, true)
    }

    fn write_with(&mut self, offset: u64, buf: &[u8], now: u64, fua: bool) -> Result<()> {
        if self.readonly {
            return Err(ArrayError::ReadOnly.into());
        }
        self.check_range("write", offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        self.last_now = now;
        let (first, count, lead) = sector_span(offset, buf.len());
        let req = ArrayRequest {
            fua,
            ..ArrayRequest::write(first, count, BufRef(0))
        };
        if lead == 0 && buf.len() as u64 % SECTOR_SIZE == 0 {
            return self.run_request(req, CallerBuf::Write(buf), now);
        }
        // Partial sectors: read-modify-write of the covering sectors.
        let mut tmp = alloc::vec![0u8; (count * SECTOR_SIZE) as usize];
        self.run_request(
            ArrayRequest::read(first, count, BufRef(0)),
            CallerBuf::Read(&mut tmp),
            now,
        )?;
        tmp[lead..lead + buf.len()].copy_from_slice(buf);
        self.run_request(req, CallerBuf::Write(&tmp), now)
    }

    /// Makes every completed write durable on every working member.
    pub fn flush(&mut self) -> Result<()> {
        if self.engine.is_none() {
            return Ok(());
        }
        self.run_request(ArrayRequest::flush(), CallerBuf::None, self.last_now)
    }

    /// Per-member counters of the engine, by slot (reads, writes, errors, corrected, ...).
    pub fn counters(&self, slot: usize) -> Option<crate::raid1::MemberCounters> {
        self.engine.as_ref().and_then(|e| e.member_counters(slot))
    }
}

/// First sector, sector count and byte offset into the first sector of `[offset, offset+len)`.
fn sector_span(offset: u64, len: usize) -> (u64, u64, usize) {
    let first = offset / SECTOR_SIZE;
    let end = (offset + len as u64).div_ceil(SECTOR_SIZE);
    (first, end - first, (offset % SECTOR_SIZE) as usize)
}
