//! md's read fast path at the machine: a read on a healthy array with no metadata work
//! pending is handed to the engine's fast path (see [`crate::raid1::Raid1::handle_submit_fast`]):
//! [`Machine::handle_submit`] queues its one member read on the caller's buffer for
//! [`Machine::poll_io`], and that read's success completes the request (the next
//! [`Machine::poll_completion`]), without visits of the engine's scheduler. Every driver
//! (blocking, io_uring, C callbacks, Python, kernel) takes it without knowing: the outputs
//! are the ordinary ones.
//!
//! The machine adds its own conditions to the engine's: no metadata job or round queued or
//! running (a failure being recorded, a bitmap or superblock round) and the array not
//! stopping. A fast read is an ordinary in-flight request to everything else: `stop` waits
//! for it, `remove_member` refuses while it runs, a sync action's blocks order after it, and
//! a member error on it is handled by the engine's read-error rules (retry on another mirror,
//! count, repair, fail past md's limit).
//!
//! A driver that runs its own completion loop can go one step further with
//! [`Machine::submit_read`]: a *direct* read's member I/O is returned by the call itself and
//! its completion, reported with [`Machine::complete_direct_read`], says whether the read is
//! done, with no pass over `poll_io`/`poll_completion` (the C driver's reads). The read holds
//! no request slot and no place in the submission order: stop, remove and a sync start wait
//! for it as for any read in flight, while a later overlapping write does not (md orders
//! neither way); a member error turns it into an ordinary read, enlisted then.

use super::{Io, IoId, Machine, MachineError};
use crate::raid1::{
    ArrayRequest, DirectDone, FastReadStats, MemberError, MemberIoId, ReqId, RequestKind,
    SubmitError,
};

/// What [`Machine::submit_read`] did with a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadSubmit {
    /// A direct read: its one member I/O, to carry out and then report with
    /// [`Machine::complete_direct_read`] (which says when the read is done); nothing else
    /// was queued.
    Direct(Io),
    /// Submitted as by [`Machine::handle_submit`]: drive the machine as usual.
    Queued(ReqId),
}

impl Machine {
    /// Whether the machine lets a read take the engine's fast path now.
    pub(super) fn fast_read_allowed(&self) -> bool {
        self.fast_reads && !self.stopping && self.meta.is_idle()
    }

    /// Submits a read, handing its member I/O straight back when it may be served directly
    /// (the engine's [`crate::raid1::Raid1::submit_direct_read`] under the fast path's
    /// conditions here): a driver that owns its completion loop (the C driver) then skips
    /// the queues of `poll_io` and `poll_completion` for it. Anything else is
    /// [`Machine::handle_submit`].
    pub fn submit_read(&mut self, req: ArrayRequest) -> Result<ReadSubmit, SubmitError> {
        if req.kind == RequestKind::Read && self.whole_blocks(&req) && self.fast_read_allowed() {
            if let Some(mio) = self.engine.submit_direct_read(&req) {
                if let Some(io) = self.data_io(&mio) {
                    return Ok(ReadSubmit::Direct(io));
                }
                // A member this layer already failed gets no I/O (ENODEV): the read goes on
                // as an ordinary one at once.
                return match self
                    .engine
                    .handle_direct_completion(mio.id, Err(MemberError::Io(19)))
                {
                    Ok(DirectDone::Continues(id, _)) => {
                        self.pump();
                        Ok(ReadSubmit::Queued(id))
                    }
                    _ => Err(SubmitError::Busy {
                        max: self.engine.requests_in_flight(),
                    }),
                };
            }
        }
        self.handle_submit(req).map(ReadSubmit::Queued)
    }

    /// Reports a direct read's I/O outcome: `Finished` hands its buffer token back with the
    /// read's result; `Continues` means its member read failed and the read goes on as an
    /// ordinary request (retried on another mirror), whose completion comes from
    /// [`Machine::poll_completion`] under the id given.
    pub fn complete_direct_read(
        &mut self,
        id: IoId,
        result: Result<(), MemberError>,
    ) -> Result<DirectDone, MachineError> {
        let done = self
            .engine
            .handle_direct_completion(MemberIoId(id.0), result)
            .map_err(MachineError::from_data_io)?;
        if self.data_completion_moves_metadata() {
            self.pump();
        }
        Ok(done)
    }

    /// Turns the read fast path on (the default) or off (every read takes the engine's
    /// general path; for comparisons and tests).
    pub fn set_fast_reads(&mut self, enabled: bool) {
        self.fast_reads = enabled;
    }

    /// Reads that took the fast path since the machine was built, and how many of them fell
    /// back to the general path on a member error.
    pub fn fast_read_stats(&self) -> FastReadStats {
        let now = self.engine.fast_read_stats();
        FastReadStats {
            taken: self.fast_base.taken + now.taken,
            fallbacks: self.fast_base.fallbacks + now.fallbacks,
        }
    }

    /// Keeps the counters of an engine about to be replaced (`rebuild_engine`).
    pub(super) fn keep_fast_stats(&mut self) {
        self.fast_base = self.fast_read_stats();
    }
}
