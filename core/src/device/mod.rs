//! Member devices: the [`BlockDevice`] trait and its implementations.
//!
//! The trait is consumer-side and small (the vm-memory habit): byte-offset reads and writes, a
//! flush, a size. Everything md stores is addressed in 512-byte sectors; devices whose logical
//! block size is larger still take byte offsets, and callers keep to that alignment.

mod errno;
mod mem;
pub use errno::errno_text;
use errno::ErrnoText;
pub use mem::MemDevice;

// Test doubles: fault injection, service-time model, volatile cache and sparse storage.
mod crash;
mod faulty;
mod latency;
pub use crash::{CrashDevice, CutStats, SparseDevice};
pub use faulty::{FaultControl, FaultRule, FaultStats, FaultyDevice, Ops, RuleId, EIO};
pub use latency::{LatencyDevice, SeekProfile, ServiceModel};

#[cfg(feature = "std")]
mod file;
#[cfg(feature = "std")]
pub use file::{split_dev_t, DeviceIdentity, FileDevice, Lock, OpenOptions};

/// The operation that failed, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// A read.
    Read,
    /// A write.
    Write,
    /// A cache flush.
    Flush,
    /// Opening or sizing the device.
    Open,
}

impl core::fmt::Display for IoOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Flush => "flush",
            IoOp::Open => "open",
        })
    }
}

/// A member device failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The device reported an I/O error (`errno` as the OS gave it; 5 = EIO for injected faults).
    /// It displays as the OS's text (`No such file or directory`); the number stays in `errno`.
    #[error("{}", IoText { op: *op, offset: *offset, errno: *errno })]
    Io {
        /// What was being done.
        op: IoOp,
        /// Byte offset of the request.
        offset: u64,
        /// The OS error number.
        errno: i32,
    },
    /// The request runs past the end of the device.
    #[error("{op} of {len} bytes at byte {offset} is beyond the device's {size} bytes")]
    OutOfRange {
        /// What was being done.
        op: IoOp,
        /// Byte offset of the request.
        offset: u64,
        /// Request length in bytes.
        len: u64,
        /// Device size in bytes.
        size: u64,
    },
    /// The request is not aligned to the device's logical block size.
    #[error("{op} of {len} bytes at byte {offset} is not aligned to {align} bytes")]
    Misaligned {
        /// What was being done.
        op: IoOp,
        /// Byte offset of the request.
        offset: u64,
        /// Request length in bytes.
        len: u64,
        /// Required alignment.
        align: u32,
    },
}

impl DeviceError {
    /// The OS error number, for an [`DeviceError::Io`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            DeviceError::Io { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// An I/O error's text: an open failure is just the OS's reason (there is no offset yet).
struct IoText {
    op: IoOp,
    offset: u64,
    errno: i32,
}

impl core::fmt::Display for IoText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.op {
            IoOp::Open => write!(f, "{}", ErrnoText(self.errno)),
            op => write!(
                f,
                "{op} error at byte {}: {}",
                self.offset,
                ErrnoText(self.errno)
            ),
        }
    }
}

/// A device that stores bytes: a member of an array.
///
/// Implementations must either do the whole transfer or return an error; short transfers are
/// not part of the contract.
pub trait BlockDevice {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Logical block size in bytes (512 unless the device says otherwise).
    fn logical_block_size(&self) -> u32 {
        512
    }
    /// The (major, minor) device number of a block device, if it has one (for reports).
    fn device_number(&self) -> Option<(u32, u32)> {
        None
    }
    /// Reads `buf.len()` bytes at byte `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError>;
    /// Writes `buf` at byte `offset`.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError>;
    /// Makes completed writes durable.
    fn flush(&mut self) -> Result<(), DeviceError>;
    /// Writes `buf` at byte `offset` durably before returning (force unit access). The default
    /// writes, then flushes the whole cache; devices with a real FUA path override it.
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.write_at(offset, buf)?;
        self.flush()
    }
}

/// Borrowed devices work too: a caller can assemble an array over devices it keeps owning.
impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn logical_block_size(&self) -> u32 {
        (**self).logical_block_size()
    }
    fn device_number(&self) -> Option<(u32, u32)> {
        (**self).device_number()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        (**self).write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        (**self).flush()
    }
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        (**self).write_at_fua(offset, buf)
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for alloc::boxed::Box<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn logical_block_size(&self) -> u32 {
        (**self).logical_block_size()
    }
    fn device_number(&self) -> Option<(u32, u32)> {
        (**self).device_number()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        (**self).write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        (**self).flush()
    }
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        (**self).write_at_fua(offset, buf)
    }
}

/// A reported logical block size as the unit I/O is aligned to: a power of two from 512 bytes
/// to 64 KiB (the kernel's range); anything else (0: unknown) reads as 512.
pub fn block_bytes(logical_block_size: u32) -> u64 {
    match logical_block_size {
        s @ 512..=65536 if s.is_power_of_two() => u64::from(s),
        _ => 512,
    }
}

/// Checks that `[offset, offset+len)` lies within `size`; shared by every implementation.
pub fn check_range(op: IoOp, offset: u64, len: usize, size: u64) -> Result<(), DeviceError> {
    let len = len as u64;
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(DeviceError::OutOfRange {
            op,
            offset,
            len,
            size,
        }),
    }
}
