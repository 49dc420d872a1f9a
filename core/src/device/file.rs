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
    /// Whom else the device is shared with while it is open (md holds members exclusively).
    pub lock: Lock,
}

/// How a [`FileDevice`] keeps others out while it is open. The lock lasts as long as the
/// device value; a refusal is [`DeviceError::Io`] at open with `errno` EBUSY.
///
/// Block devices are claimed as md claims its members: `O_EXCL`, which the kernel refuses while
/// the device is mounted or opened with `O_EXCL` elsewhere (there is no shared form, so
/// [`Lock::Shared`] does not lock them). Regular files take a non-blocking `flock`, which only
/// keeps out others that lock too (every mdraid open does, except [`Lock::Unlocked`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lock {
    /// [`Lock::Exclusive`] for read-write opens, [`Lock::Shared`] for read-only ones: writers
    /// never overlap anyone, readers overlap only readers.
    #[default]
    Auto,
    /// Nobody else may hold the device (O_EXCL / `LOCK_EX`).
    Exclusive,
    /// Other shared holders are fine, an exclusive one is not (`LOCK_SH` on files).
    Shared,
    /// No lock: to look at a device another program is using (mdadm --examine works on a
    /// busy device).
    Unlocked,
}

/// What makes two paths the same device: the device number of a block device (any node that
/// names it), or the filesystem and inode of a regular file (symlinks and hard links included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceIdentity {
    /// A block device: its `st_rdev`.
    Block {
        /// The device number.
        rdev: u64,
    },
    /// Anything else: `(st_dev, st_ino)`.
    File {
        /// The filesystem's device number.
        dev: u64,
        /// The inode number.
        ino: u64,
    },
}

impl DeviceIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        if meta.file_type().is_block_device() {
            DeviceIdentity::Block { rdev: meta.rdev() }
        } else {
            DeviceIdentity::File {
                dev: meta.dev(),
                ino: meta.ino(),
            }
        }
    }

    /// The identity of what `path` names (following symlinks), without opening it.
    pub fn of_path(path: impl AsRef<Path>) -> Result<Self, DeviceError> {
        std::fs::metadata(path)
            .map(|m| Self::of(&m))
            .map_err(|e| os_err(IoOp::Open, 0, &e))
    }
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
    identity: DeviceIdentity,
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
        let lock = match opts.lock {
            Lock::Auto if opts.read_only => Lock::Shared,
            Lock::Auto => Lock::Exclusive,
            l => l,
        };
        let mut oo = std::fs::OpenOptions::new();
        oo.read(true).write(!opts.read_only);
        let mut flags = 0;
        if opts.direct {
            flags |= libc::O_DIRECT;
        }
        // O_EXCL without O_CREAT means "claim" only for block devices; look before opening.
        let block_path = std::fs::metadata(path)
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        if block_path && lock == Lock::Exclusive {
            flags |= libc::O_EXCL;
        }
        oo.custom_flags(flags);
        let file = oo.open(path).map_err(|e| os_err(IoOp::Open, 0, &e))?;
        let meta = file.metadata().map_err(|e| os_err(IoOp::Open, 0, &e))?;
        let is_block = meta.file_type().is_block_device();
        if is_block && !block_path && lock == Lock::Exclusive {
            // The path turned into a block device between the look and the open: no claim
            // was made, so refuse rather than share it silently.
            return Err(DeviceError::Io {
                op: IoOp::Open,
                offset: 0,
                errno: libc::EBUSY,
            });
        }
        if !is_block {
            flock_file(&file, lock)?;
        }
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
            identity: DeviceIdentity::of(&meta),
        })
    }

    /// What makes it the same device as another open (see [`DeviceIdentity`]).
    pub fn identity(&self) -> DeviceIdentity {
        self.identity
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a block device (not a regular file).
    pub fn is_block_device(&self) -> bool {
        self.is_block
    }

    /// Whether transfers bypass the page cache (O_DIRECT).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Turns O_DIRECT on or off on the open descriptor (`fcntl(F_SETFL)`), keeping the lock:
    /// assemble through the page cache (small unaligned metadata reads), then move data
    /// directly. Refused (EINVAL) where the file system has no O_DIRECT.
    pub fn set_direct(&mut self, direct: bool) -> Result<(), DeviceError> {
        let fd = self.file.as_raw_fd();
        // SAFETY: F_GETFL takes no argument and touches no memory; the fd is open.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        let flags = if flags < 0 {
            -1
        } else if direct {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        // SAFETY: F_SETFL takes an int argument and touches no memory; the fd is open.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
            return Err(os_err(IoOp::Open, 0, &std::io::Error::last_os_error()));
        }
        self.direct = direct;
        Ok(())
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

/// Takes the non-blocking `flock` that `lock` asks for on a regular file; a holder elsewhere
/// makes it EBUSY.
fn flock_file(file: &File, lock: Lock) -> Result<(), DeviceError> {
    let op = match lock {
        Lock::Exclusive | Lock::Auto => libc::LOCK_EX,
        Lock::Shared => libc::LOCK_SH,
        Lock::Unlocked => return Ok(()),
    };
    // SAFETY: flock takes an open descriptor (owned by `file`, alive for the call) and flags;
    // it touches no memory of ours.
    let r = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    let errno = match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => libc::EBUSY,
        Some(n) => n,
        None => libc::EIO,
    };
    Err(DeviceError::Io {
        op: IoOp::Open,
        offset: 0,
        errno,
    })
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

    #[test]
    fn locks_keep_writers_apart() {
        let dir = std::env::temp_dir().join(format!("mdraid-filelock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.img");
        std::fs::File::create(&p).unwrap().set_len(1 << 20).unwrap();
        let ro = OpenOptions {
            read_only: true,
            ..Default::default()
        };
        let busy = |r: Result<FileDevice, DeviceError>| {
            matches!(
                r,
                Err(DeviceError::Io {
                    op: IoOp::Open,
                    errno: libc::EBUSY,
                    ..
                })
            )
        };
        let w = FileDevice::open(&p).unwrap();
        assert!(busy(FileDevice::open(&p)), "a second writer");
        assert!(
            busy(FileDevice::open_with(&p, ro)),
            "a reader while a writer holds it"
        );
        let unlocked = OpenOptions {
            read_only: true,
            lock: Lock::Unlocked,
            ..Default::default()
        };
        let mut peek = FileDevice::open_with(&p, unlocked).unwrap();
        let mut b = [0u8; 1];
        peek.read_at(0, &mut b).unwrap();
        assert_eq!(peek.identity(), w.identity());
        drop(w);
        // Readers share; a writer waits for all of them.
        let r1 = FileDevice::open_with(&p, ro).unwrap();
        let _r2 = FileDevice::open_with(&p, ro).unwrap();
        assert!(busy(FileDevice::open(&p)));
        drop((r1, _r2));
        let w = FileDevice::open(&p).unwrap();
        // The same file through a hard link is the same identity.
        let l = dir.join("link.img");
        std::fs::hard_link(&p, &l).unwrap();
        assert_eq!(DeviceIdentity::of_path(&l).unwrap(), w.identity());
        drop(w);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
