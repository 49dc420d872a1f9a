//! mdraid: Linux md-compatible RAID1 as a library.
//!
//! The crate is `#![no_std]` + `alloc` so that the same code runs in a kernel module; the `std`
//! feature (default) adds file and block devices. Layers, bottom up:
//!
//! - [`format`]: md's on-disk structures (superblocks 1.x and 0.90, write-intent bitmap, bad-block
//!   log), each a plain-data struct that is parsed, validated and serialized byte for byte, plus
//!   mdadm's geometry rules for new arrays.
//! - [`device`]: the [`BlockDevice`](device::BlockDevice) trait and its implementations.
//! - [`registry`]: md's object model (probe / alloc / lookup / refcount / remove) as a value.
//! - [`array`](mod@array): create, assemble, stop and examine arrays of member devices.
//! - [`raid1`]: the sans-IO RAID1 engine (read balancing, mirrored writes, error handling,
//!   metadata ordering hooks) and its deterministic simulator.
//! - [`report`]: `mdadm --examine` / `--detail` compatible text.
#![no_std]
// `unsafe` is allowed only at the OS edges (ioctl, O_DIRECT buffers, io_uring), each block commented.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_debug_implementations)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod array;
pub mod device;
#[cfg(feature = "std")]
pub mod driver;
mod error;
pub mod format;
pub mod raid1;
pub mod registry;
pub mod report;
#[doc(hidden)]
pub mod splitmix;
pub mod time;

pub use error::{Error, Result};

/// Bytes per sector: md counts every on-disk offset and size in 512-byte sectors.
pub const SECTOR_SIZE: u64 = 512;

/// Fixture and pattern helpers for tests (std only; not part of the stable API).
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod testutil;
