//! The crate's top-level error: one variant per lower layer, each carrying that layer's own error.

use crate::{array::ArrayError, device::DeviceError, format::FormatError, registry::RegistryError};

/// Everything that can go wrong in mdraid, grouped by the layer that found it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A member device failed or was used out of its bounds.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// On-disk metadata is malformed, unsupported or inconsistent.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Registry (object model) misuse: duplicates, busy arrays, deleted arrays.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An array operation was refused (assembly rules, create parameters).
    #[error(transparent)]
    Array(#[from] ArrayError),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
