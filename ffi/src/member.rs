//! `mdraid_member`: a member device, from a path or from the caller's callbacks; and
//! `mdraid_examine`.

use crate::error::*;
use crate::handle::{self, Obj};
use md::device::{BlockDevice, DeviceError, FileDevice, IoOp, Lock, OpenOptions};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// A member device (opaque). Made by `mdraid_member_open_path` or `mdraid_member_new`, freed
/// by `mdraid_member_free`. An array that uses a member takes its own reference: free your
/// handle whenever you like (the device is closed, or `destroy` called, when the last user
/// lets go). One member serves at most one array at a time.
pub struct mdraid_member {
    _private: [u8; 0],
}

/// Identifies one outstanding member I/O handed to an asynchronous callback. Pass it back,
/// unchanged, to `mdraid_member_io_complete` exactly once. Plain data: copy it freely.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mdraid_io_token {
    /// Which array (or blocking waiter) the I/O belongs to.
    pub owner: u64,
    /// Which I/O.
    pub id: u64,
}

/// Open the device read-only.
pub const MDRAID_OPEN_READ_ONLY: u32 = 1;
/// Open with O_DIRECT (bypass the page cache). Array I/O buffers must then be aligned to
/// `mdraid_array_info.buffer_align` (4096) and offsets/lengths to the block size.
pub const MDRAID_OPEN_DIRECT: u32 = 2;
/// Take no lock (to examine a device another program holds). Without it a read-write open
/// takes an exclusive lock (O_EXCL on block devices, flock on files), a read-only one a shared
/// lock.
pub const MDRAID_OPEN_UNLOCKED: u32 = 4;

/// Callbacks are synchronous: each does the I/O and returns 0 or an errno.
pub const MDRAID_CALLBACK_SYNC: u32 = 0;
/// Callbacks are asynchronous: each starts the I/O and returns 0 (or an errno if it could not
/// start it); the I/O is finished later with `mdraid_member_io_complete(token, result)`.
pub const MDRAID_CALLBACK_ASYNC: u32 = 1;

/// Write flag: force unit access: the write must be durable when it completes.
pub const MDRAID_IO_FUA: u32 = 1;
/// Write flag: flush the device's volatile cache before this write (md's preflush).
pub const MDRAID_IO_PREFLUSH: u32 = 2;

/// Read `len` bytes at byte `offset` of the device into `buf`.
pub type mdraid_read_fn = Option<
    extern "C" fn(
        ctx: *mut c_void,
        offset: u64,
        buf: *mut u8,
        len: usize,
        token: mdraid_io_token,
    ) -> c_int,
>;
/// Write `len` bytes from `buf` at byte `offset`; `flags` has `MDRAID_IO_FUA` and/or
/// `MDRAID_IO_PREFLUSH`.
pub type mdraid_write_fn = Option<
    extern "C" fn(
        ctx: *mut c_void,
        offset: u64,
        buf: *const u8,
        len: usize,
        flags: u32,
        token: mdraid_io_token,
    ) -> c_int,
>;
/// Make every completed write durable.
pub type mdraid_flush_fn = Option<extern "C" fn(ctx: *mut c_void, token: mdraid_io_token) -> c_int>;
/// Discard (unmap) `len` bytes at `offset`; may do nothing.
pub type mdraid_discard_fn =
    Option<extern "C" fn(ctx: *mut c_void, offset: u64, len: u64, token: mdraid_io_token) -> c_int>;
/// Called once when the library no longer needs `ctx` (the member handle was freed and no
/// array uses the member any more).
pub type mdraid_destroy_fn = Option<extern "C" fn(ctx: *mut c_void)>;

/// A member device implemented by the caller.
///
/// Every callback gets `ctx` first. Return value: 0 for success, else an errno (positive or
/// negative; `EIO` for a media error). In `MDRAID_CALLBACK_SYNC` mode the callback does the
/// whole I/O before returning and `token` is all zero (ignore it). In `MDRAID_CALLBACK_ASYNC`
/// mode it starts the I/O and returns 0, and the I/O's outcome is reported later, from any
/// thread, with `mdraid_member_io_complete(token, result)`; a non-zero return means "not
/// started" and must not be followed by a completion. `buf` stays valid until the I/O is
/// completed. Callbacks may be called from several threads at once, for any member.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mdraid_member_callbacks {
    /// Passed to every callback.
    pub ctx: *mut c_void,
    /// Device size in bytes (at least 1 MiB for an array member in practice).
    pub size: u64,
    /// Logical block size in bytes: 0 means 512; otherwise a power of two >= 512. Arrays are
    /// created only on members of at most 4096 (md's metadata layout is 4 KiB-aligned:
    /// `mdraid_array_create` refuses larger blocks with `MDRAID_REFUSED`).
    pub logical_block_size: u32,
    /// `MDRAID_CALLBACK_SYNC` or `MDRAID_CALLBACK_ASYNC`.
    pub mode: u32,
    /// Required.
    pub read: mdraid_read_fn,
    /// Required.
    pub write: mdraid_write_fn,
    /// Required.
    pub flush: mdraid_flush_fn,
    /// Optional (NULL: discards succeed without doing anything).
    pub discard: mdraid_discard_fn,
    /// Optional.
    pub destroy: mdraid_destroy_fn,
}

#[derive(Clone, Copy)]
pub(crate) struct Callbacks {
    pub cb: mdraid_member_callbacks,
}

// SAFETY: the C contract (header, mdraid_member_callbacks) says callbacks and their ctx may be
// used from any thread, concurrently; the struct itself is plain data.
unsafe impl Send for Callbacks {}
// SAFETY: as above.
unsafe impl Sync for Callbacks {}

pub(crate) enum DevKind {
    File(Mutex<FileDevice>),
    Sync(Callbacks),
    Async(Callbacks, Arc<Waiter>),
}

/// The device behind a member.
pub struct DevInner {
    pub(crate) name: String,
    pub(crate) kind: DevKind,
    pub(crate) size: u64,
    pub(crate) lbs: u32,
    pub(crate) direct: bool,
    pub(crate) rdev: Option<(u32, u32)>,
}

impl Drop for DevInner {
    fn drop(&mut self) {
        match &self.kind {
            DevKind::Sync(c) | DevKind::Async(c, _) => {
                if let DevKind::Async(_, w) = &self.kind {
                    if let Some(h) = w.handle.get() {
                        let _ = handle::remove(*h);
                    }
                }
                if let Some(d) = c.cb.destroy {
                    d(c.cb.ctx);
                }
            }
            DevKind::File(_) => {}
        }
    }
}

/// The object behind an `mdraid_member` handle.
pub struct MemberObj {
    pub(crate) dev: Arc<DevInner>,
    in_use: AtomicBool,
}

/// Completion target of an async member's I/O issued by a blocking call (create, assemble,
/// add, examine): the calling thread waits here for `mdraid_member_io_complete`.
pub struct Waiter {
    pub(crate) handle: OnceLock<u64>,
    seq: AtomicU64,
    results: Mutex<HashMap<u64, Option<c_int>>>,
    cv: Condvar,
}

impl Waiter {
    pub(crate) fn complete(&self, id: u64, result: c_int) -> FfiResult {
        let mut r = self.results.lock().unwrap_or_else(|e| e.into_inner());
        match r.get_mut(&id) {
            Some(slot @ None) => {
                *slot = Some(result);
                self.cv.notify_all();
                Ok(())
            }
            _ => Err(Fail::new(
                MDRAID_UNKNOWN_TOKEN,
                format!("I/O {id} is not outstanding"),
            )),
        }
    }

    /// Starts an I/O with `start(token)` and waits for its completion.
    fn run(
        &self,
        op: IoOp,
        offset: u64,
        start: impl FnOnce(mdraid_io_token) -> c_int,
    ) -> Result<(), DeviceError> {
        let id = self.seq.fetch_add(1, Ordering::Relaxed);
        let owner = self.handle.get().copied().unwrap_or(0);
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, None);
        let rc = start(mdraid_io_token { owner, id });
        let mut r = self.results.lock().unwrap_or_else(|e| e.into_inner());
        if rc != 0 {
            r.remove(&id);
            return Err(dev_err(op, offset, rc));
        }
        loop {
            match r.get(&id) {
                Some(Some(res)) => {
                    let res = *res;
                    r.remove(&id);
                    return if res == 0 {
                        Ok(())
                    } else {
                        Err(dev_err(op, offset, res))
                    };
                }
                Some(None) => r = self.cv.wait(r).unwrap_or_else(|e| e.into_inner()),
                None => return Err(dev_err(op, offset, 5)),
            }
        }
    }
}

pub(crate) fn dev_err(op: IoOp, offset: u64, rc: c_int) -> DeviceError {
    DeviceError::Io {
        op,
        offset,
        errno: rc.checked_abs().unwrap_or(5).max(1),
    }
}

/// A member as an array holds it: a claim on the member (released when dropped).
pub struct Dev {
    pub(crate) inner: Arc<DevInner>,
    claim: Option<Arc<MemberObj>>,
}

impl Dev {
    /// Claims `m` for an array: `MDRAID_BUSY` if another array holds it.
    pub(crate) fn claim(m: &Arc<MemberObj>) -> FfiResult<Dev> {
        if m.in_use.swap(true, Ordering::AcqRel) {
            return Err(Fail::new(
                MDRAID_BUSY,
                format!("{}: the member is in use by an array", m.dev.name),
            ));
        }
        Ok(Dev {
            inner: m.dev.clone(),
            claim: Some(m.clone()),
        })
    }
    /// Unclaimed access (examine).
    pub(crate) fn view(m: &Arc<MemberObj>) -> Dev {
        Dev {
            inner: m.dev.clone(),
            claim: None,
        }
    }
    pub(crate) fn name(&self) -> &str {
        &self.inner.name
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(m) = &self.claim {
            m.in_use.store(false, Ordering::Release);
        }
    }
}

impl std::fmt::Debug for Dev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dev")
            .field("name", &self.inner.name)
            .finish()
    }
}

const TOKEN0: mdraid_io_token = mdraid_io_token { owner: 0, id: 0 };

fn cb_rc(op: IoOp, offset: u64, rc: c_int) -> Result<(), DeviceError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(dev_err(op, offset, rc))
    }
}

impl DevInner {
    fn check(&self, op: IoOp, offset: u64, len: usize) -> Result<(), DeviceError> {
        md::device::check_range(op, offset, len, self.size)
    }

    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check(IoOp::Read, offset, buf.len())?;
        match &self.kind {
            DevKind::File(f) => f
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .read_at(offset, buf),
            DevKind::Sync(c) => match c.cb.read {
                Some(r) => cb_rc(
                    IoOp::Read,
                    offset,
                    r(c.cb.ctx, offset, buf.as_mut_ptr(), buf.len(), TOKEN0),
                ),
                None => Err(dev_err(IoOp::Read, offset, 95)),
            },
            DevKind::Async(c, w) => match c.cb.read {
                Some(r) => w.run(IoOp::Read, offset, |t| {
                    r(c.cb.ctx, offset, buf.as_mut_ptr(), buf.len(), t)
                }),
                None => Err(dev_err(IoOp::Read, offset, 95)),
            },
        }
    }

    pub(crate) fn write(&self, offset: u64, buf: &[u8], flags: u32) -> Result<(), DeviceError> {
        self.check(IoOp::Write, offset, buf.len())?;
        match &self.kind {
            DevKind::File(f) => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                if flags & MDRAID_IO_PREFLUSH != 0 {
                    f.flush()?;
                }
                if flags & MDRAID_IO_FUA != 0 {
                    f.write_at_fua(offset, buf)
                } else {
                    f.write_at(offset, buf)
                }
            }
            DevKind::Sync(c) => match c.cb.write {
                Some(w) => cb_rc(
                    IoOp::Write,
                    offset,
                    w(c.cb.ctx, offset, buf.as_ptr(), buf.len(), flags, TOKEN0),
                ),
                None => Err(dev_err(IoOp::Write, offset, 95)),
            },
            DevKind::Async(c, wt) => match c.cb.write {
                Some(w) => wt.run(IoOp::Write, offset, |t| {
                    w(c.cb.ctx, offset, buf.as_ptr(), buf.len(), flags, t)
                }),
                None => Err(dev_err(IoOp::Write, offset, 95)),
            },
        }
    }

    pub(crate) fn flush(&self) -> Result<(), DeviceError> {
        match &self.kind {
            DevKind::File(f) => f.lock().unwrap_or_else(|e| e.into_inner()).flush(),
            DevKind::Sync(c) => match c.cb.flush {
                Some(fl) => cb_rc(IoOp::Flush, 0, fl(c.cb.ctx, TOKEN0)),
                None => Err(dev_err(IoOp::Flush, 0, 95)),
            },
            DevKind::Async(c, w) => match c.cb.flush {
                Some(fl) => w.run(IoOp::Flush, 0, |t| fl(c.cb.ctx, t)),
                None => Err(dev_err(IoOp::Flush, 0, 95)),
            },
        }
    }

    pub(crate) fn discard(&self, offset: u64, len: u64) -> Result<(), DeviceError> {
        match &self.kind {
            DevKind::File(_) => Ok(()),
            DevKind::Sync(c) => match c.cb.discard {
                Some(d) => cb_rc(IoOp::Write, offset, d(c.cb.ctx, offset, len, TOKEN0)),
                None => Ok(()),
            },
            DevKind::Async(c, w) => match c.cb.discard {
                Some(d) => w.run(IoOp::Write, offset, |t| d(c.cb.ctx, offset, len, t)),
                None => Ok(()),
            },
        }
    }

    pub(crate) fn is_async(&self) -> bool {
        matches!(self.kind, DevKind::Async(..))
    }

    pub(crate) fn callbacks(&self) -> Option<&mdraid_member_callbacks> {
        match &self.kind {
            DevKind::Async(c, _) | DevKind::Sync(c) => Some(&c.cb),
            DevKind::File(_) => None,
        }
    }
}

impl BlockDevice for Dev {
    fn size(&self) -> u64 {
        self.inner.size
    }
    fn logical_block_size(&self) -> u32 {
        self.inner.lbs
    }
    fn device_number(&self) -> Option<(u32, u32)> {
        self.inner.rdev
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.inner.read(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.inner.write(offset, buf, 0)
    }
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.inner.write(offset, buf, MDRAID_IO_FUA)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.inner.flush()
    }
}

fn new_member(dev: DevInner) -> *mut mdraid_member {
    let obj = Arc::new(MemberObj {
        dev: Arc::new(dev),
        in_use: AtomicBool::new(false),
    });
    handle::insert(Obj::Member(obj)) as *mut mdraid_member
}

/// Opens a file or block device at `path` as a member. `flags`: `MDRAID_OPEN_READ_ONLY`,
/// `MDRAID_OPEN_DIRECT`, `MDRAID_OPEN_UNLOCKED` (or 0). The member's name (in reports and
/// messages) is `path`. I/O on it is blocking (pread/pwrite/fdatasync on the calling thread).
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_ARGUMENT` (unknown flag, non-UTF-8
/// path), `MDRAID_IO_ERROR` (open failed: `mdraid_last_errno()` says why; EBUSY when another
/// holder has it locked). On success `*out` is a new handle for `mdraid_member_free`.
/// Thread-safe.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_member_open_path(
    path: *const c_char,
    flags: u32,
    out: *mut *mut mdraid_member,
) -> mdraid_result {
    ffi_boundary! {
        // SAFETY: the caller's promise for `path`.
        let p = unsafe { c_str(path, "path") }?;
        non_null(out, "out")?;
        if flags & !(MDRAID_OPEN_READ_ONLY | MDRAID_OPEN_DIRECT | MDRAID_OPEN_UNLOCKED) != 0 {
            return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown open flags {flags:#x}")));
        }
        let opts = OpenOptions {
            read_only: flags & MDRAID_OPEN_READ_ONLY != 0,
            direct: flags & MDRAID_OPEN_DIRECT != 0,
            lock: if flags & MDRAID_OPEN_UNLOCKED != 0 { Lock::Unlocked } else { Lock::Auto },
        };
        let f = FileDevice::open_with(p, opts).map_err(|e| Fail::from(md::Error::from(e)).msg_prefix(p))?;
        let dev = DevInner {
            name: p.to_string(),
            size: f.size(),
            lbs: f.logical_block_size(),
            direct: opts.direct,
            rdev: f.device_number(),
            kind: DevKind::File(Mutex::new(f)),
        };
        // SAFETY: `out` is non-NULL and writable (caller's promise).
        unsafe { *out = new_member(dev) };
        Ok(())
    }
}

impl Fail {
    fn msg_prefix(mut self, p: &str) -> Self {
        self.msg = format!("{p}: {}", self.msg);
        self
    }
}

/// Makes a member from the caller's callbacks (copied; `callbacks` need not outlive the call).
/// `name` names it in reports (e.g. the examine header line) and messages; it is copied.
///
/// Errors: `MDRAID_NULL_PARAMETER` (`callbacks`, `name`, `out`, or a required callback),
/// `MDRAID_INVALID_ARGUMENT` (size 0, a bad block size, unknown mode). On success `*out` is a
/// new handle for `mdraid_member_free`; `destroy(ctx)` is called when the library is done
/// with the member. Thread-safe.
///
/// # Safety
/// `callbacks` points at a valid struct; `name` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_member_new(
    callbacks: *const mdraid_member_callbacks,
    name: *const c_char,
    out: *mut *mut mdraid_member,
) -> mdraid_result {
    ffi_boundary! {
        non_null(callbacks, "callbacks")?;
        // SAFETY: the caller's promise for `name`.
        let name = unsafe { c_str(name, "name") }?;
        non_null(out, "out")?;
        // SAFETY: non-NULL and valid (caller's promise); copied.
        let cb = unsafe { *callbacks };
        if cb.read.is_none() || cb.write.is_none() || cb.flush.is_none() {
            return Err(Fail::new(MDRAID_NULL_PARAMETER, "read, write and flush callbacks are required"));
        }
        let lbs = if cb.logical_block_size == 0 { 512 } else { cb.logical_block_size };
        if !lbs.is_power_of_two() || !(512..=65536).contains(&lbs) {
            return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("logical block size {lbs}")));
        }
        if cb.size == 0 {
            return Err(Fail::new(MDRAID_INVALID_ARGUMENT, "device size 0"));
        }
        let kind = match cb.mode {
            MDRAID_CALLBACK_SYNC => DevKind::Sync(Callbacks { cb }),
            MDRAID_CALLBACK_ASYNC => {
                let w = Arc::new(Waiter {
                    handle: OnceLock::new(),
                    seq: AtomicU64::new(1),
                    results: Mutex::new(HashMap::new()),
                    cv: Condvar::new(),
                });
                let h = handle::insert(Obj::Waiter(w.clone()));
                let _ = w.handle.set(h);
                DevKind::Async(Callbacks { cb }, w)
            }
            m => return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown callback mode {m}"))),
        };
        let dev = DevInner { name: name.to_string(), kind, size: cb.size, lbs, direct: false, rdev: None };
        // SAFETY: `out` is non-NULL and writable (caller's promise).
        unsafe { *out = new_member(dev) };
        Ok(())
    }
}

/// Frees a member handle. NULL, an already freed handle and a handle of another type are
/// ignored (freeing twice is safe). An array using the member keeps it until the array lets
/// go of it. Thread-safe, but not concurrently with other calls on the same handle.
#[no_mangle]
pub extern "C" fn mdraid_member_free(member: *mut mdraid_member) {
    boundary_void(|| {
        let o = handle::free_if(member, |o| matches!(o, Obj::Member(_)));
        drop(o);
    })
}

/// Reports the outcome of an asynchronous member I/O: `result` is 0 for success, else an
/// errno (positive or negative). Call it exactly once per token, from any thread, at any
/// time after the callback was called (also from inside the callback). It may run array work
/// and call completion callbacks (of requests it finished) on the calling thread before it
/// returns, and may call member callbacks for the I/O that follows.
///
/// Errors: `MDRAID_UNKNOWN_TOKEN` (not outstanding: completed twice, forged, or its array was
/// freed), `MDRAID_WRONG_THREAD` (its array is bound to another thread: the completion was
/// not taken; deliver it from that thread). Thread-safe; many threads may complete I/Os of
/// one array at once (of a bound array: its thread alone).
#[no_mangle]
pub extern "C" fn mdraid_member_io_complete(
    token: mdraid_io_token,
    result: c_int,
) -> mdraid_result {
    ffi_boundary! {
        if let Some(a) = handle::array_of(token.owner) {
            if a.bound_elsewhere() {
                return Err(crate::array::wrong_thread());
            }
            return a.complete_io(token.id, result);
        }
        match handle::get(token.owner) {
            Some(Obj::Waiter(w)) => w.complete(token.id, result),
            _ => Err(Fail::new(MDRAID_UNKNOWN_TOKEN, "no such outstanding I/O (its array was freed?)")),
        }
    }
}

/// The local host name, as mdadm falls back to it.
pub(crate) fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Reads up to `len` bytes at `offset`, fewer at the end of the device.
fn read_upto(dev: &mut Dev, offset: u64, len: u64) -> Vec<u8> {
    let n = dev.size().saturating_sub(offset).min(len) as usize;
    let mut buf = vec![0u8; n];
    match dev.read_at(offset, &mut buf) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

fn examine_text(
    m: &Arc<MemberObj>,
    label: Option<&str>,
    homehost: Option<&str>,
) -> FfiResult<String> {
    use md::format::bitmap::{location_sb1, offset_sb0};
    use md::format::probe::{probe, Superblock};
    use md::report::{examine_sb0, examine_sb1, ExamineOpts};
    let mut dev = Dev::view(m);
    let label = label.unwrap_or(&m.dev.name).to_string();
    let found = probe(&mut dev, None).map_err(|e| match e {
        md::Error::Format(_) => Fail::new(
            MDRAID_NO_SUPERBLOCK,
            format!("No md superblock detected on {label}."),
        ),
        e => Fail::from(e),
    })?;
    // The bitmap header, as `mdraid examine` reads it (the bitmap space, at most 4 MiB).
    let off = match &found.sb {
        Superblock::V1(s, _) => location_sb1(s),
        Superblock::V0(s) if s.state & md::format::sb0::STATE_BITMAP_PRESENT != 0 => {
            offset_sb0(found.dev_sectors)
        }
        Superblock::V0(_) => None,
    };
    let bitmap = off.map(|o| read_upto(&mut dev, o, 4 << 20));
    let host = homehost.map(str::to_string).unwrap_or_else(local_hostname);
    let opts = ExamineOpts {
        device: Some(&label),
        homehost: Some(&host),
        dev_sectors: found.dev_sectors,
        bitmap_header: bitmap.as_deref(),
        dev_name: None,
    };
    let report = match &found.sb {
        Superblock::V1(s, _) => examine_sb1(s, &opts),
        Superblock::V0(s) => examine_sb0(s, &opts),
    };
    Ok(report.to_text())
}

/// `mdadm --examine` text of a member's superblock (what `mdraid examine` prints), into `buf`
/// as a NUL-terminated string; `*out_len` gets its length without the NUL. With `buf` NULL,
/// only `*out_len` is written (the size to allocate is `*out_len + 1`).
///
/// `label` names the device in the header line (NULL: the member's name); `homehost` decides
/// "(local to host ...)" (NULL: this machine's host name). The member may be in use by an
/// array (examine reads what is on the device). For an async member this call blocks until
/// its reads complete: run your reactor on another thread.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_NO_SUPERBLOCK`,
/// `MDRAID_IO_ERROR`, `MDRAID_BUFFER_TOO_SMALL` (nothing written). Thread-safe.
///
/// # Safety
/// `label` and `homehost` are NULL or NUL-terminated strings; `buf` is NULL or writable for
/// `len` bytes; `out_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_examine(
    member: *const mdraid_member,
    label: *const c_char,
    homehost: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> mdraid_result {
    ffi_boundary! {
        let m = handle::member(member)?;
        // SAFETY: the caller's promise for the strings.
        let label = unsafe { opt_c_str(label, "label") }?;
        // SAFETY: as above.
        let homehost = unsafe { opt_c_str(homehost, "homehost") }?;
        non_null(out_len, "out_len")?;
        let text = examine_text(&m, label, homehost)?;
        // SAFETY: the caller's promise for `buf`/`len`/`out_len`.
        unsafe { write_text(&text, buf, len, out_len) }
    }
}
