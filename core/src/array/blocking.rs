//! The blocking driver: [`Array`] carries out the [`Machine`]'s I/Os one at a time on its
//! member devices and returns when the call's work is done.
//!
//! Every call feeds the machine one input (a request, a command, the time), then runs the
//! loop — issue each I/O from `poll_io` synchronously and report it, collect completions and
//! notices — until what the call waits for has happened. When the machine has nothing to do
//! but wait for a timer (a throttled sync, a retry, a metadata delay), the array's [`Clock`]
//! waits (a [`VirtualClock`](super::VirtualClock) jumps). The machine holds all RAID and
//! metadata logic; nothing here knows whether an I/O carries data, a superblock or a bitmap
//! page.

use super::machine::{GrowReport, GrowRequest};
use super::machine::{Io, IoBuffer, IoKind, Notice};
use super::{
    AddOptions, AddOutcome, Array, ArrayError, Member, MemberState, Progress, SyncReport, SyncStop,
};
use crate::device::BlockDevice;
use crate::format::probe::probe;
use crate::raid1::{ArrayIoError, ArrayRequest, BufRef, MemberError, ReqId, SyncAction};
use crate::{Result, SECTOR_SIZE};
use alloc::string::String;
use alloc::vec::Vec;

/// Timer waits in a row without any I/O before the loop gives up (a machine bug must not
/// hang the caller).
const STALL_LIMIT: u32 = 10_000;
/// I/Os between two progress reports of a sync action.
const PROGRESS_EVERY: u32 = 256;

/// The caller's memory for one request.
enum CallerBuf<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
    None,
}

/// What a drive loop waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// This request's completion.
    Request(ReqId),
    /// Nothing in flight, no sync action, no metadata pending.
    Idle,
    /// The machine stopped.
    Stopped,
}

/// What a drive loop saw.
#[derive(Default)]
struct Seen {
    completion: Option<core::result::Result<(), ArrayIoError>>,
    syncs: Vec<SyncReport>,
}

/// Carries out one I/O on `dev`.
fn do_io<D: BlockDevice>(
    dev: &mut D,
    machine: &mut super::Machine,
    io: &Io,
    caller: &mut CallerBuf<'_>,
) -> core::result::Result<(), MemberError> {
    let len = usize::try_from(io.len).map_err(|_| MemberError::Io(22))?;
    match io.kind {
        IoKind::Flush => dev.flush().map_err(MemberError::from),
        // Discard is advisory (md passes it down when the device takes it).
        IoKind::Discard => Ok(()),
        IoKind::Write => {
            if io.preflush {
                dev.flush()?;
            }
            let src = match io.buf {
                IoBuffer::Caller { offset, .. } => {
                    let o = usize::try_from(offset).map_err(|_| MemberError::Io(22))?;
                    match caller {
                        CallerBuf::Write(b) => b.get(o..o + len),
                        CallerBuf::Read(b) => b.get(o..o + len),
                        CallerBuf::None => None,
                    }
                }
                IoBuffer::Machine { index, offset } => machine
                    .buffer(index)
                    .and_then(|b| b.get(offset..offset + len)),
                IoBuffer::None => None,
            }
            .ok_or(MemberError::Io(22))?;
            let r = if io.fua {
                dev.write_at_fua(io.offset, src)
            } else {
                dev.write_at(io.offset, src)
            };
            r.map_err(MemberError::from)
        }
        IoKind::Read => {
            let dst = match io.buf {
                IoBuffer::Caller { offset, .. } => {
                    let o = usize::try_from(offset).map_err(|_| MemberError::Io(22))?;
                    match caller {
                        CallerBuf::Read(b) => b.get_mut(o..o + len),
                        _ => None,
                    }
                }
                IoBuffer::Machine { index, offset } => machine
                    .buffer_mut(index)
                    .and_then(|b| b.get_mut(offset..offset + len)),
                IoBuffer::None => None,
            }
            .ok_or(MemberError::Io(22))?;
            dev.read_at(io.offset, dst).map_err(MemberError::from)
        }
    }
}

impl<D: BlockDevice> Array<D> {
    /// The drive loop (see the module documentation).
    fn drive(
        &mut self,
        buf: &mut CallerBuf<'_>,
        until: Until,
        progress: Progress<'_>,
    ) -> Result<Seen> {
        self.drive_stoppable(buf, until, progress, None)
    }

    /// [`Self::drive`], taking `stop`'s request (md's `idle`/`frozen`) to the machine
    /// between member I/Os.
    fn drive_stoppable(
        &mut self,
        buf: &mut CallerBuf<'_>,
        until: Until,
        progress: Progress<'_>,
        stop: Option<&SyncStop>,
    ) -> Result<Seen> {
        let mut seen = Seen::default();
        let mut stalls = 0u32;
        let mut ios = 0u32;
        loop {
            let mut moved = false;
            loop {
                // A stop is taken before each poll: between member I/Os, and after a wait
                // for a timer.
                if let Some(freeze) = stop.and_then(SyncStop::take) {
                    self.machine.stop_sync(freeze);
                }
                let Some(io) = self.machine.poll_io() else {
                    break;
                };
                moved = true;
                ios = ios.wrapping_add(1);
                let result = match self.devs.get_mut(io.member) {
                    Some(dev) => do_io(dev, &mut self.machine, &io, buf),
                    None => Err(MemberError::Io(19)),
                };
                self.machine
                    .handle_io_completion(io.id, result)
                    .map_err(|e| ArrayError::Invalid(alloc::format!("machine: {e}")))?;
                if ios % PROGRESS_EVERY == 0 {
                    if let Some(st) = self.machine.sync_status() {
                        progress(st.done_sectors, st.total_sectors);
                    }
                }
            }
            while let Some((id, res)) = self.machine.poll_completion() {
                moved = true;
                if until == Until::Request(id) {
                    seen.completion = Some(res);
                }
            }
            while let Some(n) = self.machine.poll_event() {
                moved = true;
                match n {
                    Notice::SpareRebuilt { member, slot } => {
                        let name = self.machine.members()[member].name.clone();
                        self.rebuilt.push((name, slot));
                    }
                    Notice::SyncDone(r) => {
                        progress(r.sectors_done, r.sectors_done);
                        seen.syncs.push(r);
                    }
                    _ => {}
                }
            }
            let done = match until {
                Until::Request(_) => seen.completion.is_some(),
                Until::Idle => !self.machine.is_busy(),
                Until::Stopped => self.machine.is_stopped(),
            };
            if done {
                return Ok(seen);
            }
            if moved {
                stalls = 0;
                continue;
            }
            // Nothing to issue: only a timer can move the machine on.
            stalls += 1;
            let Some(deadline) = self.machine.poll_timeout() else {
                return Err(ArrayError::Invalid("the array made no progress".into()).into());
            };
            if stalls > STALL_LIMIT {
                return Err(ArrayError::Invalid("the array made no progress".into()).into());
            }
            let now = self.clock.wait_until(deadline);
            self.machine.handle_timeout(now);
        }
    }

    /// Tells the machine the time (timers due: clean marking, bitmap clearing, retries).
    fn catch_up(&mut self) {
        let now = self.clock.now();
        self.machine.handle_timeout(now);
    }

    /// Tells the machine the time and finishes whatever that started (commands that need
    /// an idle machine come after it).
    fn settle(&mut self) -> Result<()> {
        self.catch_up();
        self.drive(&mut CallerBuf::None, Until::Idle, &mut |_, _| {})?;
        Ok(())
    }

    /// Runs one array request to completion.
    fn run_request(&mut self, req: ArrayRequest, mut buf: CallerBuf<'_>) -> Result<()> {
        self.catch_up();
        let id = self
            .machine
            .handle_submit(req)
            .map_err(ArrayError::Submit)?;
        let seen = self.drive(&mut buf, Until::Request(id), &mut |_, _| {})?;
        match seen.completion {
            Some(res) => res.map_err(|e| ArrayError::Io(e).into()),
            None => Err(ArrayError::Invalid("request lost by the machine".into()).into()),
        }
    }

    /// Lets time pass for an open array: whatever the machine's timers have come due for is
    /// done (md's safe-mode clean marking ~200 ms after the last write, bitmap bits cleared
    /// after idle daemon passes). A long-lived user calls it from time to time
    /// ([`crate::array::machine::Machine::poll_timeout`] says when).
    pub fn tick(&mut self) -> Result<()> {
        self.settle()
    }

    /// Reads array bytes at `offset`.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_range("read", offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let blk = self.block_size();
        let (first, count, lead) = block_span(offset, buf.len(), blk);
        let req = ArrayRequest::read(first, count, BufRef(0));
        if lead == 0 && buf.len() as u64 % blk == 0 {
            return self.run_request(req, CallerBuf::Read(buf));
        }
        // Not whole blocks: read the covering blocks and copy the part asked for.
        let mut tmp = alloc::vec![0u8; (count * SECTOR_SIZE) as usize];
        self.run_request(req, CallerBuf::Read(&mut tmp))?;
        buf.copy_from_slice(&tmp[lead..lead + buf.len()]);
        Ok(())
    }

    /// Writes `buf` at array `offset`; succeeds while an in-sync mirror took it.
    pub fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.write_with(offset, buf, false)
    }

    /// [`Self::write`] with force unit access: durable on every member that took it when this
    /// returns.
    pub fn write_fua(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.write_with(offset, buf, true)
    }

    fn write_with(&mut self, offset: u64, buf: &[u8], fua: bool) -> Result<()> {
        if self.machine.is_readonly() {
            return Err(ArrayError::ReadOnly.into());
        }
        self.check_range("write", offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let blk = self.block_size();
        let (first, count, lead) = block_span(offset, buf.len(), blk);
        let req = ArrayRequest {
            fua,
            ..ArrayRequest::write(first, count, BufRef(0))
        };
        if lead == 0 && buf.len() as u64 % blk == 0 {
            return self.run_request(req, CallerBuf::Write(buf));
        }
        // Partial blocks: read-modify-write of the covering blocks (the array's block size:
        // a member with 4 KiB sectors takes nothing smaller).
        let mut tmp = alloc::vec![0u8; (count * SECTOR_SIZE) as usize];
        self.run_request(
            ArrayRequest::read(first, count, BufRef(0)),
            CallerBuf::Read(&mut tmp),
        )?;
        tmp[lead..lead + buf.len()].copy_from_slice(buf);
        self.run_request(req, CallerBuf::Write(&tmp))
    }

    /// Makes every completed write durable on every working member.
    pub fn flush(&mut self) -> Result<()> {
        if self.machine.is_readonly() {
            return Ok(());
        }
        self.run_request(ArrayRequest::flush(), CallerBuf::None)
    }

    /// The array's logical block size in bytes (the largest of its members'): reads and
    /// writes must be whole blocks of it.
    pub fn block_size(&self) -> u64 {
        self.machine.block_size()
    }

    /// The engine's counters for member `member` (index in [`Self::members`]): reads,
    /// writes, errors, corrected reads.
    pub fn counters(&self, member: usize) -> Option<crate::raid1::MemberCounters> {
        self.machine.member_counters(member)
    }

    /// The outcome of the last sync action that ended (also one the machine started by
    /// itself, such as a recovery onto a spare after a failure).
    pub fn last_sync(&self) -> Option<SyncReport> {
        self.machine.last_sync()
    }

    /// Sets md's sync speed limits (KiB/s) for later sync actions.
    pub fn set_speed_limits(&mut self, min_kib: u64, max_kib: u64) -> Result<()> {
        self.settle()?;
        self.machine
            .set_speed_limits(min_kib, max_kib)
            .map_err(|e| ArrayError::Invalid(alloc::format!("{e}")).into())
    }

    /// Members rebuilt from spares into empty slots while this array ran: (name, slot), in
    /// the order they came in sync.
    pub fn rebuilt_spares(&self) -> &[(String, u32)] {
        &self.rebuilt
    }

    /// md's recovery check: spares take the empty slots (and are rebuilt) before any
    /// requested action. Returns that recovery's report when one ran.
    fn recover_spares(&mut self, progress: Progress<'_>) -> Result<Option<SyncReport>> {
        self.recover_spares_stoppable(progress, None)
    }

    /// [`Self::recover_spares`] that `stop` can stop.
    fn recover_spares_stoppable(
        &mut self,
        progress: Progress<'_>,
        stop: Option<&SyncStop>,
    ) -> Result<Option<SyncReport>> {
        // Settling may run an action the machine starts on its own (an owed resync): a frozen
        // stop of it ends the call's sync work there.
        self.catch_up();
        let settled =
            self.drive_stoppable(&mut CallerBuf::None, Until::Idle, &mut |_, _| {}, stop)?;
        if stop.is_some() && self.machine.engine().sync_frozen() {
            return Ok(settled.syncs.last().copied());
        }
        if !self.machine.check_recovery() {
            return Ok(None);
        }
        let seen = self.drive_stoppable(&mut CallerBuf::None, Until::Idle, progress, stop)?;
        Ok(seen
            .syncs
            .into_iter()
            .rfind(|r| r.action == SyncAction::Recovery))
    }

    /// Runs `action` to completion; `progress` sees (done, total) sectors. The array's clock
    /// paces it (md's speed limits): a [`VirtualClock`](super::VirtualClock) jumps, a
    /// [`SystemClock`](super::SystemClock) sleeps.
    pub fn run_sync(&mut self, action: SyncAction, progress: Progress<'_>) -> Result<SyncReport> {
        self.run_sync_stoppable(action, progress, &SyncStop::new())
    }

    /// [`Self::run_sync`] that another thread can stop through `stop` (md's `sync_action`
    /// `idle` or `frozen` written while the action runs; see [`SyncStop::request`]). The
    /// report is the action's last: an `idle` stop of a check or repair ends it
    /// (`interrupted`); a resync or recovery stopped by `idle` starts again at once from its
    /// checkpoint (md's recovery check) and is driven to its end here, so only `frozen`
    /// stops those.
    pub fn run_sync_stoppable(
        &mut self,
        action: SyncAction,
        progress: Progress<'_>,
        stop: &SyncStop,
    ) -> Result<SyncReport> {
        if self.machine.is_readonly() {
            return Err(ArrayError::ReadOnly.into());
        }
        if let Some(r) = self.recover_spares_stoppable(progress, Some(stop))? {
            if action == SyncAction::Recovery || self.machine.engine().sync_frozen() {
                // The recovery asked for is the one md's recovery check just ran (or a
                // frozen stop ended it before the action asked for could start).
                return Ok(r);
            }
        }
        if action == SyncAction::Resync && !self.machine.needs_resync() {
            // md: nothing owed, nothing done.
            return Ok(SyncReport {
                action,
                mismatch_cnt: 0,
                sectors_copied: 0,
                sectors_done: 0,
                interrupted: false,
            });
        }
        self.catch_up();
        self.machine
            .start_sync(action)
            .map_err(|e| ArrayError::Invalid(alloc::format!("{} refused: {e}", action.as_str())))?;
        let seen = self.drive_stoppable(&mut CallerBuf::None, Until::Idle, progress, Some(stop))?;
        seen.syncs
            .into_iter()
            .rfind(|r| r.action == action)
            .ok_or_else(|| ArrayError::Invalid("sync action vanished".into()).into())
    }

    /// md's `sync_action` `idle` (`freeze` false) or `frozen` written while no action runs
    /// (between calls nothing runs here). `frozen`: no sync action starts on its own — a spare
    /// stays a spare (an added one too, [`AddOutcome::Spare`]), an owed resync waits — until
    /// `stop_sync(false)` or an explicit [`Self::run_sync`]. `idle` ends a freeze and runs
    /// md's recovery check at once: a recovery onto a waiting spare, or a resync the array
    /// owes, is driven to its end here (`progress` as `run_sync`'s); the last such action's
    /// report is returned. On a read-only array nothing starts either way.
    pub fn stop_sync(
        &mut self,
        freeze: bool,
        progress: Progress<'_>,
    ) -> Result<Option<SyncReport>> {
        self.machine.stop_sync(freeze);
        let mut seen = self.drive(&mut CallerBuf::None, Until::Idle, progress)?;
        Ok(seen.syncs.pop())
    }

    /// Whether sync actions are frozen ([`Self::stop_sync`]; md's `sync_action` reads
    /// `frozen`).
    pub fn sync_frozen(&self) -> bool {
        self.machine.engine().sync_frozen()
    }

    /// A resync if one is owed (after an unclean shutdown or creation without assume-clean).
    pub fn resync(&mut self) -> Result<()> {
        if self.machine.needs_resync() && !self.machine.is_readonly() {
            self.run_sync(SyncAction::Resync, &mut |_, _| {})?;
        }
        Ok(())
    }

    fn member_named(&self, name: &str) -> Result<usize> {
        self.members()
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| {
                ArrayError::Invalid(alloc::format!("{name} is not a member of this array")).into()
            })
    }

    /// Fails a member (mdadm --fail): the survivors record it as faulty. The last in-sync
    /// mirror cannot fail.
    pub fn fail_member(&mut self, name: &str) -> Result<()> {
        let i = self.member_named(name)?;
        if self.members()[i].state == MemberState::Faulty {
            return Ok(());
        }
        // The spares md would have rebuilt when the array started come first.
        self.recover_spares(&mut |_, _| {})?;
        if self.members()[i].state == MemberState::Faulty {
            return Ok(());
        }
        self.machine
            .fail_member(i)
            .map_err(|e| ArrayError::Invalid(alloc::format!("{name}: {e}")))?;
        self.drive(&mut CallerBuf::None, Until::Idle, &mut |_, _| {})?;
        Ok(())
    }

    /// Removes a faulty or spare device (mdadm --remove) and hands it back when it was a
    /// member. A device assembly already left out (the survivors list it as faulty) is named
    /// by `dev`: its entry in their role tables is forgotten.
    pub fn remove_member(&mut self, name: &str, dev: Option<D>) -> Result<Option<D>> {
        self.settle()?;
        if let Ok(i) = self.member_named(name) {
            if matches!(self.members()[i].state, MemberState::InSync(_)) {
                return Err(
                    ArrayError::Invalid(alloc::format!("{name} is active: fail it first")).into(),
                );
            }
            let removed = self
                .machine
                .remove_member(i)
                .map_err(|e| ArrayError::Invalid(alloc::format!("{name}: {e}")))?;
            let dev = self.devs.remove(i);
            if self.members().is_empty() {
                self.retired = removed.sb.clone();
            }
            self.drive(&mut CallerBuf::None, Until::Idle, &mut |_, _| {})?;
            return Ok(Some(dev));
        }
        let Some(mut dev) = dev else {
            return Err(ArrayError::Invalid(alloc::format!(
                "{name} is not a member of this array"
            ))
            .into());
        };
        let found = probe(&mut dev, None)?;
        if found.sb.uuid() != self.lead_superblock().uuid() {
            return Err(ArrayError::Invalid(alloc::format!(
                "{name} is not a member of this array"
            ))
            .into());
        }
        let dev_number = found.sb.dev_number();
        match self.lead_superblock().role_of(dev_number) {
            Some(crate::format::probe::Role::Active(slot))
                if found.sb.events() + 1 >= self.events() =>
            {
                let replacing = matches!(&found.sb, crate::format::probe::Superblock::V1(s, _)
                    if s.feature_map & crate::format::sb1::FEATURE_REPLACEMENT != 0);
                let what = if replacing {
                    alloc::format!(
                        "{name} is the active replacement of slot {slot}: it cannot be removed \
                         while the replace runs (fail it first)"
                    )
                } else {
                    alloc::format!("{name} is active: fail it first")
                };
                Err(ArrayError::Invalid(what).into())
            }
            _ => {
                self.machine
                    .forget_device(dev_number)
                    .map_err(|e| ArrayError::Invalid(alloc::format!("{name}: {e}")))?;
                self.drive(&mut CallerBuf::None, Until::Idle, &mut |_, _| {})?;
                Ok(Some(dev))
            }
        }
    }

    /// Adds a device (mdadm --add): a device that left this array recently and whose data the
    /// bitmap still covers comes back to its slot, copying only what changed (re-add); any
    /// other device gets a fresh superblock and becomes a spare, rebuilt at once when a slot is
    /// empty. `progress` sees the rebuild.
    pub fn add_member(
        &mut self,
        name: String,
        dev: D,
        opts: &AddOptions,
        progress: Progress<'_>,
    ) -> Result<AddOutcome> {
        self.add_member_with(name, dev, opts, progress, None)
    }

    /// [`Self::add_member`] whose rebuild another thread (or a signal handler) can stop
    /// through `stop`, as [`Self::run_sync_stoppable`]'s: a `frozen` stop ends the recovery
    /// at its checkpoint (the outcome's report says `interrupted`; the member keeps its
    /// recovery offset and the next assembly resumes the copy there).
    pub fn add_member_stoppable(
        &mut self,
        name: String,
        dev: D,
        opts: &AddOptions,
        progress: Progress<'_>,
        stop: &SyncStop,
    ) -> Result<AddOutcome> {
        self.add_member_with(name, dev, opts, progress, Some(stop))
    }

    fn add_member_with(
        &mut self,
        name: String,
        mut dev: D,
        opts: &AddOptions,
        progress: Progress<'_>,
        stop: Option<&SyncStop>,
    ) -> Result<AddOutcome> {
        if self.machine.is_readonly() {
            return Err(ArrayError::ReadOnly.into());
        }
        if self.members().iter().any(|m| m.name == name) {
            return Err(ArrayError::Invalid(alloc::format!("{name} is already a member")).into());
        }
        // The spares md would have rebuilt when the array started come first.
        self.recover_spares_stoppable(progress, stop)?;
        let found = probe(&mut dev, None).ok().map(|f| (f.sb, f.sector));
        let dev_sectors = dev.size() / SECTOR_SIZE;
        let plan = self
            .machine
            .plan_add(found, dev_sectors, opts)
            .map_err(|e| prefix(&name, e))?;
        let mut member = Member {
            dev,
            name,
            sb: plan.sb,
            sb_sector: plan.sb_sector,
            dev_sectors,
            state: MemberState::Spare,
            badblocks: None,
            rebuild: None,
            rebuild_bitmap: false,
        };
        // A re-added device brings its own bad-block log (a fresh superblock has none).
        member.badblocks = member.load_badblocks()?;
        let (dev, member) = member.detach();
        let name = member.name.clone();
        self.machine
            .add_member(member, plan.comeback)
            .map_err(|e| ArrayError::Invalid(alloc::format!("{name}: add: {e}")))?;
        self.devs.push(dev);
        let seen = self.drive_stoppable(&mut CallerBuf::None, Until::Idle, progress, stop)?;
        let rebuilt = seen
            .syncs
            .into_iter()
            .find(|r| r.action == SyncAction::Recovery);
        Ok(match (rebuilt, plan.comeback) {
            (Some(r), Some(_)) => AddOutcome::ReAdded(r),
            (Some(r), None) => AddOutcome::Rebuilt(r),
            (None, _) => AddOutcome::Spare,
        })
    }

    /// Hot-replaces the in-sync member `name` (mdadm `--replace`): the spare `with` (any spare
    /// when `None`) is rebuilt as its replacement while `name` keeps serving I/O; when the
    /// copy completes `name` is faulty and the replacement holds its slot. Returns the copy's
    /// report (interrupted when a failure cut it short and nothing could finish it).
    pub fn replace_member(
        &mut self,
        name: &str,
        with: Option<&str>,
        progress: Progress<'_>,
    ) -> Result<SyncReport> {
        self.replace_member_with(name, with, progress, None)
    }

    /// [`Self::replace_member`] whose copy `stop` can stop (see
    /// [`Self::add_member_stoppable`]): a `frozen` stop ends it at its checkpoint, the
    /// report `interrupted`; on 1.x the replacement keeps its role and recovery offset and
    /// the next assembly resumes the copy there (0.90 records no replacement: it restarts).
    pub fn replace_member_stoppable(
        &mut self,
        name: &str,
        with: Option<&str>,
        progress: Progress<'_>,
        stop: &SyncStop,
    ) -> Result<SyncReport> {
        self.replace_member_with(name, with, progress, Some(stop))
    }

    fn replace_member_with(
        &mut self,
        name: &str,
        with: Option<&str>,
        progress: Progress<'_>,
        stop: Option<&SyncStop>,
    ) -> Result<SyncReport> {
        if self.machine.is_readonly() {
            return Err(ArrayError::ReadOnly.into());
        }
        let i = self.member_named(name)?;
        let w = with.map(|w| self.member_named(w)).transpose()?;
        if self.members()[i].state == MemberState::Faulty && !self.rebuilt.is_empty() {
            // The replace this array resumed when it was assembled finished already (a call
            // that waited for the array to be idle ran it).
            if let Some(r) = self.machine.last_sync() {
                if r.action == SyncAction::Recovery {
                    return Ok(r);
                }
            }
        }
        // A replace already under way for this member (assembled from a cut mid-copy, md
        // resuming it) is finished rather than started again.
        let running = match self.members()[i].state {
            MemberState::InSync(slot) => (0..self.members().len()).find(|&r| {
                self.machine.is_replacement(r)
                    && self.members()[r].rebuild.map(|x| x.0) == Some(slot)
            }),
            _ => None,
        };
        match (running, w) {
            (Some(r), Some(w)) if r != w => {
                return Err(ArrayError::Invalid(alloc::format!(
                    "{name} is already being replaced by {}",
                    self.members()[r].name
                ))
                .into())
            }
            (Some(_), _) => {}
            (None, _) => {
                // The spares md would have rebuilt when the array started come first.
                self.recover_spares_stoppable(progress, stop)?;
                self.machine
                    .replace_member(i, w)
                    .map_err(|e| ArrayError::Invalid(alloc::format!("{name}: replace: {e}")))?;
            }
        }
        let seen = self.drive_stoppable(&mut CallerBuf::None, Until::Idle, progress, stop)?;
        seen.syncs
            .into_iter()
            .rfind(|r| r.action == SyncAction::Recovery)
            .ok_or_else(|| ArrayError::Invalid("the replacement copy did not run".into()).into())
    }

    /// Stops the array: in-flight work ends, the superblocks are written clean (every
    /// member's cache flushed first) and the devices are handed back.
    pub fn stop(mut self) -> Result<Vec<Member<D>>> {
        if !self.machine.is_readonly() {
            self.catch_up();
            self.machine.stop();
            self.drive(&mut CallerBuf::None, Until::Stopped, &mut |_, _| {})?;
        }
        Ok(self.abandon())
    }
}

impl<D: BlockDevice> Array<D> {
    /// mdadm --grow: one change (see [`GrowRequest`]), then what md does next on its own:
    /// new slots are filled from spares (recovery), a grown region is resynced. The spares md
    /// would have rebuilt when the array started come first. `progress` sees the syncs.
    pub fn grow(&mut self, req: GrowRequest, progress: Progress<'_>) -> Result<GrowReport> {
        self.grow_with(req, progress, None)
    }

    /// [`Self::grow`] whose sync actions (the recovery into new slots, the resync of a grown
    /// region) `stop` can stop, as [`Self::run_sync_stoppable`]'s: a `frozen` stop ends the
    /// running one at its checkpoint (its report `interrupted`) and starts no other; the
    /// change itself is made and recorded whole before any of them, and the next assembly
    /// resumes what is left. [`Self::sync_frozen`] afterwards says whether that happened.
    pub fn grow_stoppable(
        &mut self,
        req: GrowRequest,
        progress: Progress<'_>,
        stop: &SyncStop,
    ) -> Result<GrowReport> {
        self.grow_with(req, progress, Some(stop))
    }

    fn grow_with(
        &mut self,
        req: GrowRequest,
        progress: Progress<'_>,
        stop: Option<&SyncStop>,
    ) -> Result<GrowReport> {
        if self.machine.is_readonly() {
            return Err(ArrayError::ReadOnly.into());
        }
        self.recover_spares_stoppable(progress, stop)?;
        self.settle()?;
        let refused = |e: super::machine::MachineError| -> crate::Error {
            ArrayError::Invalid(alloc::format!("grow: {e}")).into()
        };
        let mut report = GrowReport::default();
        match req {
            GrowRequest::Bitmap(b) => self.machine.grow_bitmap(b).map_err(refused)?,
            GrowRequest::RaidDisks { n, force } => {
                self.machine.grow_raid_disks(n, force).map_err(refused)?
            }
            GrowRequest::Size { size, assume_clean } => {
                report.size = Some(
                    self.machine
                        .grow_size(size, assume_clean)
                        .map_err(refused)?,
                )
            }
        }
        self.drive_stoppable(&mut CallerBuf::None, Until::Idle, progress, stop)?;
        if let Some(r) = self.recover_spares_stoppable(progress, stop)? {
            report.syncs.push(r);
        }
        if stop.is_some() && self.machine.engine().sync_frozen() {
            // Stopped: what is owed waits for the next assembly (or `run_sync`).
            return Ok(report);
        }
        if self.machine.needs_resync() {
            let r = match stop {
                Some(stop) => self.run_sync_stoppable(SyncAction::Resync, progress, stop)?,
                None => self.run_sync(SyncAction::Resync, progress)?,
            };
            report.syncs.push(r);
        }
        Ok(report)
    }
}

/// An error about device `name`.
fn prefix(name: &str, e: crate::Error) -> crate::Error {
    match e {
        crate::Error::Array(ArrayError::Invalid(m)) => {
            ArrayError::Invalid(alloc::format!("{name}: {m}")).into()
        }
        e => e,
    }
}

/// First sector, sector count and byte offset into the first sector of `[offset, offset+len)`.
/// The whole `blk`-byte blocks covering `len` bytes at `offset`, as (first sector, sectors),
/// and where the bytes start in them.
fn block_span(offset: u64, len: usize, blk: u64) -> (u64, u64, usize) {
    let first = offset / blk;
    let end = (offset + len as u64).div_ceil(blk);
    let spb = blk / SECTOR_SIZE;
    (first * spb, (end - first) * spb, (offset % blk) as usize)
}
