//! Finding a superblock on a device: try 1.1 (sector 0), 1.2 (sector 8), 1.0 (end), 0.90 (end).
// TODO

/// No usable superblock on the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// No md superblock at any location.
    #[error("no md superblock detected")]
    NoSuperblock,
}
