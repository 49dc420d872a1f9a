//! The bad-block log of a 1.x member: 64-bit LE entries (start<<10 | (len-1)), all-ones ends it.
// TODO(helper): parse/serialize, add/remove ranges.

/// Errors decoding a bad-block log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadBlockError {
    /// Fewer bytes than needed.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}
