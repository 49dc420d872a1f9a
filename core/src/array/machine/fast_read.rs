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

use super::Machine;
use crate::raid1::FastReadStats;

impl Machine {
    /// Whether the machine lets a read take the engine's fast path now.
    pub(super) fn fast_read_allowed(&self) -> bool {
        self.fast_reads && !self.stopping && self.meta.is_idle()
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
