//! md's on-disk formats.
//!
//! Each structure is an all-public plain-data struct, treated as untrusted: `parse` decodes bytes
//! read from a device (checking only what is needed to decode), `validate` applies the kernel's
//! load checks, and `to_bytes` writes it back byte for byte (unknown and padding bytes are kept,
//! so `to_bytes(parse(x)) == x`). Each module has its own error type; [`FormatError`] gathers them.

pub mod badblocks;
pub mod bitmap;
mod bytes;
pub mod geometry;
pub mod probe;
pub mod sb0;
pub mod sb1;
pub(crate) mod sha1;
pub mod uuid;

pub use badblocks::BadBlockError;
pub use bitmap::BitmapError;
pub use geometry::GeometryError;
pub use probe::ProbeError;
pub use sb0::Sb0Error;
pub use sb1::Sb1Error;

/// The md superblock magic, shared by 0.90 and 1.x.
pub const MD_MAGIC: u32 = 0xa92b_4efc;

/// Any on-disk format error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Superblock 1.x.
    #[error("superblock 1.x: {0}")]
    Sb1(#[from] Sb1Error),
    /// Superblock 0.90.
    #[error("superblock 0.90: {0}")]
    Sb0(#[from] Sb0Error),
    /// Write-intent bitmap.
    #[error("bitmap: {0}")]
    Bitmap(#[from] BitmapError),
    /// Bad-block log.
    #[error("bad-block log: {0}")]
    BadBlocks(#[from] BadBlockError),
    /// Finding a superblock on a device.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// Laying out a new array.
    #[error("geometry: {0}")]
    Geometry(#[from] GeometryError),
}

/// md's metadata versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetadataVersion {
    /// 0.90: 4 KiB superblock near the end, host-endian.
    V0_90,
    /// 1.0: superblock near the end, data from sector 0.
    V1_0,
    /// 1.1: superblock at sector 0.
    V1_1,
    /// 1.2: superblock at sector 8 (4 KiB).
    V1_2,
}

impl MetadataVersion {
    /// mdadm's spelling: "0.90", "1.0", "1.1", "1.2".
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataVersion::V0_90 => "0.90",
            MetadataVersion::V1_0 => "1.0",
            MetadataVersion::V1_1 => "1.1",
            MetadataVersion::V1_2 => "1.2",
        }
    }

    /// Parses mdadm's `--metadata` values ("0.90", "0", "1.0", "1", "1.1", "1.2", "default").
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "0.90" | "0.9" | "0" | "00.90" => MetadataVersion::V0_90,
            "1.0" | "1.00" => MetadataVersion::V1_0,
            "1.1" | "1.01" => MetadataVersion::V1_1,
            "1.2" | "1.02" | "1" | "default" => MetadataVersion::V1_2,
            _ => return None,
        })
    }
}

impl core::fmt::Display for MetadataVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}
