//! md's write-intent bitmap: a 256-byte header followed by one bit per chunk.
// TODO(helper): parse/validate/serialize, bit access, geometry.

/// Errors decoding a bitmap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitmapError {
    /// Fewer bytes than needed.
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}
