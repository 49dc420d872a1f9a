//! An in-memory device for tests and simulations.

use super::{check_range, BlockDevice, DeviceError, IoOp};
use alloc::vec::Vec;

/// A device backed by a `Vec<u8>`. Writes are durable at once (no cache).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemDevice {
    data: Vec<u8>,
}

impl MemDevice {
    /// A zero-filled device of `size` bytes.
    pub fn new(size: usize) -> Self {
        MemDevice {
            data: alloc::vec![0; size],
        }
    }
    /// A device holding `data`.
    pub fn from_vec(data: Vec<u8>) -> Self {
        MemDevice { data }
    }
    /// The device's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }
    /// The device's bytes, mutable (for corrupting metadata in tests).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.data
    }
    /// Takes the bytes back.
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }
}

impl BlockDevice for MemDevice {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Read, offset, buf.len(), self.size())?;
        let o = offset as usize;
        buf.copy_from_slice(&self.data[o..o + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Write, offset, buf.len(), self.size())?;
        let o = offset as usize;
        self.data[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let mut d = MemDevice::new(1024);
        d.write_at(512, &[7; 512]).unwrap();
        let mut b = [0u8; 4];
        d.read_at(1020, &mut b).unwrap();
        assert_eq!(b, [7; 4]);
        assert!(matches!(
            d.read_at(1021, &mut b),
            Err(DeviceError::OutOfRange { .. })
        ));
        assert!(matches!(
            d.write_at(u64::MAX, &b),
            Err(DeviceError::OutOfRange { .. })
        ));
    }
}
