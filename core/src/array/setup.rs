//! Creating and assembling without a device: the caller reads and writes.
//!
//! A kernel module or a C reactor has its own way of reading a member (a bio, an async
//! callback) and cannot lend the core a blocking [`BlockDevice`]. These two entry points run
//! md's rules over bytes the caller supplies:
//!
//! - [`Assembly`]: describe the devices (name, size); [`Assembly::poll_read`] names the next
//!   range the rules need (superblock candidates, then the bitmap and bad-block log the
//!   superblocks point at), [`Assembly::handle_read`] takes its bytes; when nothing more is
//!   needed, [`Assembly::finish`] returns the [`Machine`] and what assembly decided.
//! - [`create`]: returns the machine plus the metadata writes (superblocks, bitmap, zeroed
//!   bad-block log) the caller must make durable on each member before using it.
//!
//! Both are the same rules [`Array::create`] and [`Array::assemble`] apply (they run over an
//! in-memory image of what the caller read), so the blocking and the caller-driven paths
//! cannot diverge.

use super::{Array, AssembleOptions, AssembleReport, CreateOptions, CreateSlot, Machine, Now};
use crate::device::{BlockDevice, DeviceError, IoOp};
use crate::Result;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;

/// A member device as the caller describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// A name for messages and reports.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Its (major, minor), if it has one (0.90 disk records carry it).
    pub device_number: Option<(u32, u32)>,
    /// Its logical block size in bytes (0: 512). Metadata writes the machine hands out, and
    /// those [`create`] returns, are whole blocks of it.
    pub block_size: u32,
}

/// A range to read from member `member` (index in the list given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    /// Index of the device.
    pub member: usize,
    /// Byte offset.
    pub offset: u64,
    /// Length in bytes.
    pub len: usize,
}

/// A metadata write creation asks for: `data` at byte `offset` of device `member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataWrite {
    /// Index of the device (in the slot list, missing slots not counted).
    pub member: usize,
    /// Byte offset.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A device made of what the caller read (and what creation wrote). A read of a range nobody
/// supplied fails and is remembered, so the caller can be asked for it.
#[derive(Clone, Debug)]
struct Image {
    size: u64,
    device_number: Option<(u32, u32)>,
    block_size: u32,
    /// Known ranges, later ones over earlier ones.
    chunks: Rc<Vec<(u64, Vec<u8>)>>,
    /// The first read nobody supplied (shared: the assembly consumes the device).
    missing: Rc<Cell<Option<(u64, usize)>>>,
}

/// The errno an unread range fails with (EAGAIN: ask again once it is supplied).
const NOT_READ: i32 = 11;

impl Image {
    fn new(d: &DeviceInfo) -> Self {
        Image {
            size: d.size,
            device_number: d.device_number,
            block_size: d.block_size,
            chunks: Rc::new(Vec::new()),
            missing: Rc::new(Cell::new(None)),
        }
    }

    /// A copy for one attempt, with its own missing-read cell.
    fn attempt_copy(&self) -> Self {
        Image {
            size: self.size,
            device_number: self.device_number,
            block_size: self.block_size,
            chunks: self.chunks.clone(),
            missing: Rc::new(Cell::new(None)),
        }
    }
}

impl BlockDevice for Image {
    fn size(&self) -> u64 {
        self.size
    }
    fn device_number(&self) -> Option<(u32, u32)> {
        self.device_number
    }
    fn logical_block_size(&self) -> u32 {
        self.block_size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> core::result::Result<(), DeviceError> {
        crate::device::check_range(IoOp::Read, offset, buf.len(), self.size)?;
        let mut covered = alloc::vec![false; buf.len()];
        let end = offset + buf.len() as u64;
        for (at, data) in self.chunks.iter() {
            let (lo, hi) = ((*at).max(offset), (at + data.len() as u64).min(end));
            if lo >= hi {
                continue;
            }
            let (b, d) = ((lo - offset) as usize, (lo - at) as usize);
            let n = (hi - lo) as usize;
            buf[b..b + n].copy_from_slice(&data[d..d + n]);
            covered[b..b + n].iter_mut().for_each(|c| *c = true);
        }
        if covered.iter().all(|&c| c) {
            return Ok(());
        }
        if self.missing.get().is_none() {
            self.missing.set(Some((offset, buf.len())));
        }
        Err(DeviceError::Io {
            op: IoOp::Read,
            offset,
            errno: NOT_READ,
        })
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> core::result::Result<(), DeviceError> {
        crate::device::check_range(IoOp::Write, offset, buf.len(), self.size)?;
        Rc::make_mut(&mut self.chunks).push((offset, buf.to_vec()));
        Ok(())
    }
    fn flush(&mut self) -> core::result::Result<(), DeviceError> {
        Ok(())
    }
}

/// Assembly over bytes the caller reads (see the module documentation).
#[derive(Debug)]
pub struct Assembly {
    names: Vec<String>,
    images: Vec<Image>,
    opts: AssembleOptions,
}

type Attempt = Result<(Array<Image>, AssembleReport<Image>)>;

impl Assembly {
    /// An assembly of `devices` by md's rules, with `opts` (run, force, read-only).
    pub fn new(devices: Vec<DeviceInfo>, opts: AssembleOptions) -> Self {
        Assembly {
            images: devices.iter().map(Image::new).collect(),
            names: devices.into_iter().map(|d| d.name).collect(),
            opts,
        }
    }

    /// Runs the rules over what has been read so far; the first read they missed.
    fn attempt(&self) -> (Attempt, Option<Read>) {
        let copies: Vec<Image> = self.images.iter().map(Image::attempt_copy).collect();
        let cells: Vec<_> = copies.iter().map(|im| im.missing.clone()).collect();
        let r = Array::assemble(self.names.iter().cloned().zip(copies).collect(), &self.opts);
        let missing = cells.iter().enumerate().find_map(|(member, c)| {
            c.get().map(|(offset, len)| Read {
                member,
                offset,
                len,
            })
        });
        (r, missing)
    }

    /// The next range the rules need, or `None` when [`Self::finish`] can decide.
    pub fn poll_read(&mut self) -> Option<Read> {
        self.attempt().1
    }

    /// The bytes of a range (any range within the device is taken).
    pub fn handle_read(&mut self, read: Read, data: &[u8]) -> Result<()> {
        let im = self.images.get_mut(read.member).ok_or_else(|| {
            super::ArrayError::Invalid(alloc::format!("no device {}", read.member))
        })?;
        if data.len() != read.len {
            return Err(super::ArrayError::Invalid(alloc::format!(
                "{} bytes for a read of {}",
                data.len(),
                read.len
            ))
            .into());
        }
        crate::device::check_range(IoOp::Read, read.offset, data.len(), im.size)?;
        Rc::make_mut(&mut im.chunks).push((read.offset, data.to_vec()));
        Ok(())
    }

    /// Decides: the machine (built at `now`) and what assembly did, kicked devices named by
    /// their index in the list given. Fails while a range [`Self::poll_read`] would name is
    /// missing.
    pub fn finish(self, now: Now) -> Result<(Machine, AssembleReport<usize>)> {
        let (r, missing) = self.attempt();
        if let Some(r) = missing {
            return Err(super::ArrayError::Invalid(alloc::format!(
                "assembly needs {} bytes at {} of device {} first",
                r.len,
                r.offset,
                r.member
            ))
            .into());
        }
        let (array, report) = r?;
        let (machine, _) = array.into_machine(now)?;
        let index = |name: &str| self.names.iter().position(|n| n == name).unwrap_or(0);
        let report = AssembleReport {
            kicked: report
                .kicked
                .into_iter()
                .map(|k| super::Kicked {
                    dev: index(&k.name),
                    name: k.name,
                    reason: k.reason,
                })
                .collect(),
            degraded: report.degraded,
            unclean: report.unclean,
        };
        Ok((machine, report))
    }
}

/// Creates an array over devices the caller owns (a [`CreateSlot`] naming each device by its
/// [`DeviceInfo`], or `Missing`): the machine, built at `now`, and the metadata writes to make
/// durable on each device (in order, then a flush) before any I/O the machine hands out.
/// `member` in a write is the device's index among the slots that name a device.
pub fn create(
    slots: Vec<CreateSlot<DeviceInfo>>,
    opts: &CreateOptions,
    now: Now,
) -> Result<(Machine, Vec<MetadataWrite>)> {
    let slots = slots
        .into_iter()
        .map(|s| match s {
            CreateSlot::Device {
                name,
                dev,
                write_mostly,
                failfast,
            } => CreateSlot::Device {
                name,
                dev: Image::new(&dev),
                write_mostly,
                failfast,
            },
            CreateSlot::Missing => CreateSlot::Missing,
        })
        .collect();
    let array = Array::create(slots, opts)?;
    let mut writes = Vec::new();
    // (Whole blocks already: creation refuses blocks larger than the 4 KiB its layouts are
    // aligned to, and pads each write's length to the device's block.)
    for (member, im) in array.devices().iter().enumerate() {
        for (offset, data) in im.chunks.iter() {
            writes.push(MetadataWrite {
                member,
                offset: *offset,
                data: data.clone(),
            });
        }
    }
    let (machine, _) = array.into_machine(now)?;
    Ok((machine, writes))
}
