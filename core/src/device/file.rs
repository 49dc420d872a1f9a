//! Regular files and block devices as members (std only).
#![allow(unsafe_code)]

use super::{check_range, BlockDevice, DeviceError, IoOp};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::File;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// How to open a [`FileDevice`].
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// Open read-only.
    pub read_only: bool,
    /// Bypass the page cache (O_DIRECT); transfers go through an aligned bounce buffer when the
    /// caller's buffer is not aligned.
    pub direct: bool,
}

/// A member backed by a regular file or a block device.
#[derive(Debug)]
pub struct FileDevice {
    file: File,
    path: PathBuf,
    size: u64,
    lbs: u32,
    direct: bool,
    is_block: bool,
    rdev: Option<(u32, u32)>,
}

// BLKGETSIZE64 = _IOR(0x12, 114, size_t); BLKSSZGET = _IO(0x12, 104).
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
const BLKSSZGET: libc::c_ulong = 0x1268;

fn os_err(op: IoOp, offset: u64, e: &std::io::Error) -> DeviceError {
    DeviceError::Io {
        op,
        offset,
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    }
}

impl FileDevice {
    /// Opens `path` read-write.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DeviceError> {
        Self::open_with(path, OpenOptions::default())
    }

    /// Opens `path` with `opts`.
    pub fn open_with(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Self, DeviceError> {
        let path = path.as_ref();
        let mut oo = std::fs::OpenOptions::new();
        oo.read(true).write(!opts.read_only);
        if opts.direct {
            oo.custom_flags(libc::O_DIRECT);
        }
        let file = oo.open(path).map_err(|e| os_err(IoOp::Open, 0, &e))?;
        let meta = file.metadata().map_err(|e| os_err(IoOp::Open, 0, &e))?;
        let is_block = meta.file_type().is_block_device();
        let (size, lbs) = if is_block {
            let mut size: u64 = 0;
            // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points at `size`,
            // alive for the whole call; the fd is open.
            let r = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut size as *mut u64) };
            if r != 0 {
                return Err(os_err(IoOp::Open, 0, &std::io::Error::last_os_error()));
            }
            let mut lbs: libc::c_int = 512;
            // SAFETY: BLKSSZGET writes one int through the pointer, which points at `lbs`.
            let r =
                unsafe { libc::ioctl(file.as_raw_fd(), BLKSSZGET, &mut lbs as *mut libc::c_int) };
            if r != 0 {
                return Err(os_err(IoOp::Open, 0, &std::io::Error::last_os_error()));
            }
            (size, lbs.max(512) as u32)
        } else {
            (meta.len(), 512)
        };
        let rdev = is_block.then(|| split_dev_t(meta.rdev()));
        Ok(FileDevice {
            file,
            path: path.to_path_buf(),
            size,
            lbs,
            direct: opts.direct,
            is_block,
            rdev,
        })
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a block device (not a regular file).
    pub fn is_block_device(&self) -> bool {
        self.is_block
    }

    fn align(&self) -> u64 {
        if self.direct {
            u64::from(self.lbs.max(4096))
        } else {
            1
        }
    }

    fn check_aligned(&self, op: IoOp, offset: u64, len: usize) -> Result<(), DeviceError> {
        let a = u64::from(self.lbs);
        if self.direct && (offset % a != 0 || len as u64 % a != 0) {
            return Err(DeviceError::Misaligned {
                op,
                offset,
                len: len as u64,
                align: self.lbs,
            });
        }
        Ok(())
    }
}

/// The open descriptor, for drivers that submit I/O themselves (io_uring). The device keeps
/// owning it.
impl std::os::unix::io::AsRawFd for FileDevice {
    fn as_raw_fd(&self) -> std::os::unix::io::RawFd {
        self.file.as_raw_fd()
    }
}

/// (major, minor) of a Linux `dev_t` (glibc's encoding: major in bits 8–19 and 44–63, minor
/// in bits 0–7 and 20–43).
pub fn split_dev_t(r: u64) -> (u32, u32) {
    let major = ((r >> 32) & 0xffff_f000) | ((r >> 8) & 0xfff);
    let minor = ((r >> 12) & 0xffff_ff00) | (r & 0xff);
    (major as u32, minor as u32)
}

/// A heap buffer aligned for O_DIRECT.
struct AlignedBuf {
    ptr: *mut u8,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize, align: usize) -> Option<Self> {
        let layout = Layout::from_size_align(len.max(align), align).ok()?;
        // SAFETY: the layout has non-zero size (at least `align`, a power of two >= 512).
        let ptr = unsafe { alloc_zeroed(layout) };
        (!ptr.is_null()).then_some(AlignedBuf { ptr, layout })
    }
    fn as_mut(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: `ptr` owns `layout.size() >= len` initialised (zeroed) bytes, borrowed mutably
        // through `self` for the slice's lifetime.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with exactly this layout and is freed once.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

impl BlockDevice for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn logical_block_size(&self) -> u32 {
        self.lbs
    }
    fn device_number(&self) -> Option<(u32, u32)> {
        self.rdev
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Read, offset, buf.len(), self.size)?;
        self.check_aligned(IoOp::Read, offset, buf.len())?;
        let align = self.align() as usize;
        if align > 1 && (buf.as_ptr() as usize) % align != 0 {
            let mut b = AlignedBuf::new(buf.len(), align).ok_or(DeviceError::Io {
                op: IoOp::Read,
                offset,
                errno: libc::ENOMEM,
            })?;
            self.file
                .read_exact_at(b.as_mut(buf.len()), offset)
                .map_err(|e| os_err(IoOp::Read, offset, &e))?;
            buf.copy_from_slice(b.as_mut(buf.len()));
            return Ok(());
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| os_err(IoOp::Read, offset, &e))
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_range(IoOp::Write, offset, buf.len(), self.size)?;
        self.check_aligned(IoOp::Write, offset, buf.len())?;
        let align = self.align() as usize;
        if align > 1 && (buf.as_ptr() as usize) % align != 0 {
            let mut b = AlignedBuf::new(buf.len(), align).ok_or(DeviceError::Io {
                op: IoOp::Write,
                offset,
                errno: libc::ENOMEM,
            })?;
            b.as_mut(buf.len()).copy_from_slice(buf);
            return self
                .file
                .write_all_at(b.as_mut(buf.len()), offset)
                .map_err(|e| os_err(IoOp::Write, offset, &e));
        }
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| os_err(IoOp::Write, offset, &e))
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.file
            .sync_data()
            .map_err(|e| os_err(IoOp::Flush, 0, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{format, vec};

    #[test]
    fn file_roundtrip_and_bounds() {
        let dir = std::env::temp_dir().join(format!("mdraid-filedev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.img");
        std::fs::File::create(&p).unwrap().set_len(1 << 20).unwrap();
        let mut d = FileDevice::open(&p).unwrap();
        assert_eq!(d.size(), 1 << 20);
        d.write_at(4096, b"hello").unwrap();
        let mut b = [0u8; 5];
        d.read_at(4096, &mut b).unwrap();
        assert_eq!(&b, b"hello");
        assert!(d.read_at((1 << 20) - 2, &mut b).is_err());
        d.flush().unwrap();
        // O_DIRECT: misaligned requests are refused, aligned ones work from any buffer.
        if let Ok(mut dd) = FileDevice::open_with(
            &p,
            OpenOptions {
                direct: true,
                ..Default::default()
            },
        ) {
            assert!(matches!(
                dd.read_at(1, &mut b),
                Err(DeviceError::Misaligned { .. })
            ));
            let mut sec = vec![0u8; 513];
            dd.read_at(4096, &mut sec[1..]).unwrap();
            assert_eq!(&sec[1..6], b"hello");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
