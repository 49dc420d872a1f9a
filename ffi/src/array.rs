//! `mdraid_array`: a RAID1 array over members.
//!
//! The array has two forms. Right after create/assemble it *rests* as the blocking
//! [`Array`] facade (setup, `detail`, `add` run there; over async members the facade's I/O
//! waits for the callbacks' completions). The first call that needs the I/O path (read,
//! write, flush, discard, submit, tick, sync actions, fail, remove) turns it into the
//! [`Machine`] (`Array::into_machine`), driven by [`crate::driver`]. A call that needs the
//! facade again (add, detail) quiesces the machine (in-flight work drains, a running sync
//! action is interrupted) and hands it back to the facade (`Array::from_machine`).

use crate::binding::StGuard;
use crate::clock;
use crate::driver::{mdraid_complete_fn, pump, timers_to_check, Bounce, IoCall, Work};
use crate::error::*;
use crate::handle::{self, Obj};
use crate::member::{mdraid_member, Dev, MDRAID_IO_FUA};
use md::array::machine::{Machine, ReadSubmit};
use md::array::{
    AddOptions, AddOutcome, Array, AssembleOptions, CreateOptions, CreateSlot, MemberState,
};
use md::format::geometry::BitmapRequest;
use md::format::probe::Superblock;
use md::format::MetadataVersion;
use md::raid1::{ArrayRequest, BufRef, RequestKind, SubmitError, SyncAction};
use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// A running (or stopped) array (opaque). Made by `mdraid_array_create` or
/// `mdraid_array_assemble`, freed by `mdraid_array_free`.
pub struct mdraid_array {
    _private: [u8; 0],
}

pub(crate) enum Form {
    Resting(Box<Array<Dev>>),
    Running {
        m: Box<Machine>,
        devs: Vec<Dev>,
    },
    Stopped,
    /// The mutex's placeholder while the array is bound to a thread (its state is in the
    /// lease): what every other thread finds.
    Bound,
}

/// An array request as the caller made it: `op` (`MDRAID_OP_*`) of `len` bytes at `offset`
/// with the caller's memory at `ptr`; a blocking call's (`waiter`) or one whose completion
/// calls `cb(user)`.
#[derive(Clone, Copy)]
pub(crate) struct NewRequest {
    op: u32,
    offset: u64,
    ptr: usize,
    len: usize,
    flags: u32,
    waiter: bool,
    cb: mdraid_complete_fn,
    user: usize,
}

/// What [`ArrayObj::submit_locked`] did with a request (by its slot in `St::reqs`).
pub(crate) enum Submitted {
    /// A direct read: its one member I/O, to carry out.
    Direct(usize, IoCall),
    /// In the machine, for a pump pass; with a completion to call when it already ended.
    Queued(usize, Option<(mdraid_complete_fn, usize, mdraid_result)>),
}

pub(crate) struct Req {
    pub ptr: usize,
    pub len: usize,
    pub waiter: bool,
    pub done: Option<mdraid_result>,
    pub cb: mdraid_complete_fn,
    pub user: usize,
}

/// Hashes the machine's ids (unique integers, not attacker-chosen) with one multiply.
#[derive(Clone, Copy, Default)]
pub(crate) struct IdHash(u64);

impl std::hash::Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(crate) type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHash>>;

pub(crate) struct St {
    pub form: Form,
    pub reqs: Vec<Option<Req>>,
    pub free: Vec<usize>,
    /// Requests in the machine, by `ReqId::index`: (`ReqId::raw`, slot in `reqs`).
    pub by_id: Vec<Option<(u64, usize)>>,
    pub bounces: IdMap<Bounce>,
    pub pool: Vec<Vec<u8>>,
    pub failures: u64,
    /// The coarse clock reading at which the timers were last looked at.
    pub timer_checked: u64,
    /// A quiesce or stop is under way: new work is refused (`MDRAID_BUSY`).
    pub(crate) changing: bool,
    /// Threads waiting on the condition variable.
    pub(crate) waiters: usize,
    /// Buffer address alignment (O_DIRECT members) and offset/length granularity.
    align: usize,
    block: u64,
    readonly: bool,
}

/// The object behind an `mdraid_array` handle.
pub struct ArrayObj {
    handle: OnceLock<u64>,
    /// The state; while the array is bound to a thread, a placeholder ([`Form::Bound`]).
    pub(crate) st: Mutex<St>,
    cv: Condvar,
    /// While the array is bound to a thread ([`crate::binding`]): the state, which only that
    /// thread touches.
    pub(crate) lease: std::cell::UnsafeCell<Option<Box<St>>>,
    /// The bound thread (`binding::this_thread`), 0 when unbound.
    pub(crate) bound: AtomicUsize,
    /// The bound thread holds the lease (a guard is out).
    pub(crate) leased: AtomicBool,
}

// SAFETY: everything but `lease` is Sync; `lease` is read and written only by the thread the
// array is bound to (`crate::binding` checks `bound` against the calling thread first, and
// moves the state in and out under the mutex on that thread).
unsafe impl Sync for ArrayObj {}

impl St {
    fn new(form: Form, align: usize, block: u64, readonly: bool) -> St {
        St {
            form,
            reqs: Vec::new(),
            free: Vec::new(),
            by_id: Vec::new(),
            bounces: IdMap::default(),
            pool: Vec::new(),
            failures: 0,
            timer_checked: 0,
            changing: false,
            waiters: 0,
            align,
            block,
            readonly,
        }
    }

    /// What the mutex holds while the array is bound to a thread.
    pub(crate) fn placeholder() -> St {
        St::new(Form::Bound, 1, 512, false)
    }
}

impl ArrayObj {
    pub(crate) fn owner(&self) -> u64 {
        self.handle.get().copied().unwrap_or(0)
    }
    pub(crate) fn notify(&self, st: &St, any: bool) {
        if any && st.waiters > 0 {
            self.cv.notify_all();
        }
    }
    /// Waits (lock released) for news or `timeout`; then drives the machine's timers. On the
    /// thread an array is bound to, nothing else can bring news: it sleeps, unless a member
    /// is an async-callback one (its completions could only come from this thread, which
    /// would be waiting: `MDRAID_BUSY`).
    fn wait<'a>(&'a self, st: StGuard<'a>, timeout: Duration) -> FfiResult<StGuard<'a>> {
        let (mut st, timed_out) = match st.into_locked() {
            Ok(mut g) => {
                g.waiters += 1;
                let (mut g, to) = self
                    .cv
                    .wait_timeout(g, timeout)
                    .unwrap_or_else(|e| e.into_inner());
                g.waiters -= 1;
                (StGuard::locked(g), to.timed_out())
            }
            Err(leased) => {
                Self::may_wait(&leased)?;
                std::thread::sleep(timeout);
                (leased, true)
            }
        };
        if timed_out {
            let mut w = Work::default();
            let n = pump(&mut st, &mut w);
            self.notify(&st, n);
            drop(st);
            self.run(&mut w);
            st = self.lock();
        }
        Ok(st)
    }

    /// Whether a member of the array is an async-callback one.
    fn has_async_members(st: &St) -> bool {
        match &st.form {
            Form::Running { devs, .. } => devs.iter().any(|d| d.inner.is_async()),
            Form::Resting(a) => a.devices().iter().any(|d| d.inner.is_async()),
            _ => false,
        }
    }

    fn new(form: Form) -> Arc<ArrayObj> {
        let (align, block, readonly) = match &form {
            Form::Resting(a) => {
                let direct = a.devices().iter().any(|d| d.inner.direct);
                let lbs = a
                    .devices()
                    .iter()
                    .map(|d| u64::from(d.inner.lbs))
                    .max()
                    .unwrap_or(512)
                    .max(512);
                (
                    if direct {
                        4096usize.max(lbs as usize)
                    } else {
                        1
                    },
                    lbs,
                    false,
                )
            }
            _ => (1, 512, false),
        };
        Arc::new(ArrayObj {
            handle: OnceLock::new(),
            st: Mutex::new(St::new(form, align, block, readonly)),
            cv: Condvar::new(),
            lease: std::cell::UnsafeCell::new(None),
            bound: AtomicUsize::new(0),
            leased: AtomicBool::new(false),
        })
    }

    /// The I/O form; a resting array becomes its machine.
    fn running<'a>(&self, st: &'a mut St) -> FfiResult<&'a mut Machine> {
        if st.changing {
            return Err(Fail::new(
                MDRAID_BUSY,
                "the array is being quiesced or stopped",
            ));
        }
        if let Form::Resting(_) = st.form {
            Self::start_machine(st)?;
        }
        match &mut st.form {
            Form::Running { m, .. } => Ok(m),
            Form::Bound => Err(wrong_thread()),
            _ => Err(Fail::new(MDRAID_STOPPED, "the array is stopped")),
        }
    }

    /// A resting array becomes its machine (once; out of line, off the I/O path).
    #[cold]
    #[inline(never)]
    pub(crate) fn start_machine(st: &mut St) -> FfiResult {
        if let Form::Resting(_) = st.form {
            let Form::Resting(a) = std::mem::replace(&mut st.form, Form::Stopped) else {
                unreachable!()
            };
            let (m, devs) = a.into_machine(clock::now())?;
            st.form = Form::Running {
                m: Box::new(m),
                devs,
            };
        }
        Ok(())
    }

    /// Stops the machine and waits until it has (driving the work meanwhile). The devices
    /// come back.
    fn stop_machine<'a>(&'a self, mut st: StGuard<'a>) -> FfiResult<(StGuard<'a>, Vec<Dev>)> {
        Self::may_wait(&st)?;
        st.changing = true;
        if let Form::Running { m, .. } = &mut st.form {
            m.stop();
        }
        let mut st = self.drive_until(st, Machine::is_stopped)?;
        let devs = match std::mem::replace(&mut st.form, Form::Stopped) {
            Form::Running { devs, .. } => devs,
            _ => Vec::new(),
        };
        st.changing = false;
        Ok((st, devs))
    }

    /// Refuses a call that may wait for member I/O on the thread the array is bound to, when
    /// only this thread could deliver that I/O's completions (see [`Self::wait`]).
    fn may_wait(st: &StGuard<'_>) -> FfiResult {
        if st.is_leased() && Self::has_async_members(st) {
            return Err(Fail::new(
                MDRAID_BUSY,
                "the array is bound to this thread and has async-callback members: a call \
                 that waits for their I/O cannot be made from it (unbind first)",
            ));
        }
        Ok(())
    }

    /// Pumps the running machine and carries out its work (member I/O, completion
    /// callbacks) until `done` holds of it and no work is left.
    fn drive_until<'a>(
        &'a self,
        mut st: StGuard<'a>,
        done: fn(&Machine) -> bool,
    ) -> FfiResult<StGuard<'a>> {
        let finished = |st: &St| match &st.form {
            Form::Running { m, .. } => done(m),
            _ => true,
        };
        loop {
            let mut w = Work::default();
            let n = pump(&mut st, &mut w);
            self.notify(&st, n);
            if finished(&st) && w.is_empty() {
                return Ok(st);
            }
            drop(st);
            self.run(&mut w);
            st = self.lock();
            if !finished(&st) {
                st = self.wait(st, Duration::from_millis(50))?;
            }
        }
    }

    /// The facade form; a running machine is quiesced and handed back to the facade.
    fn resting<'a>(&'a self, st: StGuard<'a>) -> FfiResult<StGuard<'a>> {
        if st.changing {
            return Err(Fail::new(
                MDRAID_BUSY,
                "the array is being quiesced or stopped",
            ));
        }
        match st.form {
            Form::Resting(_) => return Ok(st),
            Form::Stopped => return Err(Fail::new(MDRAID_STOPPED, "the array is stopped")),
            Form::Bound => return Err(wrong_thread()),
            Form::Running { .. } => {}
        }
        let (mut st, m, devs) = self.quiesce_machine(st)?;
        st.form = Form::Resting(Box::new(Array::from_machine(*m, devs)?));
        Ok(st)
    }

    /// Drains a running machine to idle (a running sync action is interrupted, as md's
    /// quiesce does; nothing else is written) and takes it out of the array.
    fn quiesce_machine<'a>(
        &'a self,
        mut st: StGuard<'a>,
    ) -> FfiResult<(StGuard<'a>, Box<Machine>, Vec<Dev>)> {
        Self::may_wait(&st)?;
        st.changing = true;
        if let Form::Running { m, .. } = &mut st.form {
            if m.engine().sync_status().is_some() {
                // Refused only when no sync runs.
                let _ = m.abort_sync();
            }
        }
        let mut st = self.drive_until(st, |m| !m.is_busy())?;
        let Form::Running { m, devs } = std::mem::replace(&mut st.form, Form::Stopped) else {
            unreachable!("quiesce_machine is called on a running array")
        };
        st.changing = false;
        Ok((st, m, devs))
    }

    fn check_io(st: &St, offset: u64, ptr: usize, len: usize, size: u64) -> FfiResult {
        if len == 0 {
            return Err(Fail::new(MDRAID_INVALID_ARGUMENT, "zero length"));
        }
        if offset.checked_add(len as u64).is_none_or(|e| e > size) {
            return Err(Fail::new(
                MDRAID_OUT_OF_RANGE,
                format!("{len} bytes at {offset} run past the array's {size} bytes"),
            ));
        }
        if offset % st.block != 0 || len as u64 % st.block != 0 {
            return Err(Fail::new(
                MDRAID_MISALIGNED,
                format!(
                    "offset {offset} and length {len} must be multiples of {}",
                    st.block
                ),
            ));
        }
        if st.align > 1 && ptr % st.align != 0 {
            return Err(Fail::new(
                MDRAID_MISALIGNED,
                format!(
                    "buffer {ptr:#x} is not aligned to {} bytes (O_DIRECT member)",
                    st.align
                ),
            ));
        }
        Ok(())
    }

    /// Submits one request. A read the machine serves directly comes back with its one
    /// member I/O, to carry out with [`ArrayObj::run_direct`] once the lock is dropped; any
    /// other request is in `st.by_id` under its slot, for a [`pump`] pass.
    fn submit_locked(&self, st: &mut St, r: &NewRequest) -> FfiResult<Submitted> {
        let NewRequest {
            op,
            offset,
            ptr,
            len,
            flags,
            waiter,
            cb,
            user,
        } = *r;
        if flags & !MDRAID_IO_FUA != 0 {
            return Err(Fail::new(
                MDRAID_INVALID_ARGUMENT,
                format!("unknown flags {flags:#x}"),
            ));
        }
        let size = self.running(st)?.engine().array_sectors() * 512;
        let kind = match op {
            MDRAID_OP_READ => RequestKind::Read,
            MDRAID_OP_WRITE => RequestKind::Write,
            MDRAID_OP_FLUSH => RequestKind::Flush,
            MDRAID_OP_DISCARD => RequestKind::Discard,
            _ => {
                return Err(Fail::new(
                    MDRAID_INVALID_ARGUMENT,
                    format!("unknown operation {op}"),
                ))
            }
        };
        if st.readonly && kind != RequestKind::Read {
            return Err(Fail::new(MDRAID_READ_ONLY, "the array is read-only"));
        }
        match kind {
            RequestKind::Flush => {}
            RequestKind::Discard => Self::check_io(st, offset, st.align.max(1), len, size)?,
            _ => {
                if ptr == 0 {
                    return Err(Fail::new(MDRAID_NULL_PARAMETER, "buf is NULL"));
                }
                Self::check_io(st, offset, ptr, len, size)?
            }
        }
        let St {
            form, reqs, free, ..
        } = st;
        let Form::Running { m, devs } = form else {
            return Err(Fail::new(MDRAID_STOPPED, "the array is stopped"));
        };
        let slot = match free.pop() {
            Some(s) => s,
            None => {
                reqs.push(None);
                reqs.len() - 1
            }
        };
        reqs[slot] = Some(Req {
            ptr,
            len,
            waiter,
            done: None,
            cb,
            user,
        });
        let sectors = len as u64 / 512;
        let ar = match kind {
            RequestKind::Read => ArrayRequest::read(offset / 512, sectors, BufRef(slot as u64)),
            RequestKind::Write => ArrayRequest {
                fua: flags & MDRAID_IO_FUA != 0,
                ..ArrayRequest::write(offset / 512, sectors, BufRef(slot as u64))
            },
            RequestKind::Discard => ArrayRequest::discard(offset / 512, sectors),
            _ => ArrayRequest::flush(),
        };
        match m.submit_read(ar) {
            Ok(ReadSubmit::Direct(io)) => match IoCall::direct(devs, &io, slot, ptr, len) {
                Some(c) => Ok(Submitted::Direct(slot, c)),
                None => {
                    // (No device or buffer for it: cannot happen, the machine handed out
                    // one of ours on this request's buffer.) Reported failed (ENODEV): the
                    // read goes on from another mirror, or ends.
                    let done = crate::driver::direct_done_locked(st, io.id.raw(), 19)?.done;
                    Ok(Submitted::Queued(slot, done))
                }
            },
            Ok(ReadSubmit::Queued(id)) => {
                crate::driver::register(st, id, slot);
                Ok(Submitted::Queued(slot, None))
            }
            Err(e) => {
                reqs[slot] = None;
                free.push(slot);
                Err(match e {
                    SubmitError::Busy { .. } => Fail::new(MDRAID_BUSY, e.to_string()),
                    SubmitError::OutOfRange { .. } => Fail::new(MDRAID_OUT_OF_RANGE, e.to_string()),
                    _ => Fail::new(MDRAID_INVALID_ARGUMENT, e.to_string()),
                })
            }
        }
    }

    /// Submits one request and gets it going: a direct read's member I/O is carried out, any
    /// other request's work pumped and run (completion callbacks included). Returns its slot
    /// in `st.reqs` (a blocking request's, to wait on).
    fn submit(&self, r: &NewRequest) -> FfiResult<usize> {
        let mut st = self.lock();
        if r.waiter {
            // (Before anything is submitted: a request refused after it would still be in
            // flight.)
            Self::may_wait(&st)?;
        }
        let (slot, direct, done) = match self.submit_locked(&mut st, r)? {
            Submitted::Direct(slot, c) => (slot, Some(c), None),
            Submitted::Queued(slot, done) => (slot, None, done),
        };
        // A direct read queued nothing: only due timers want a pass.
        if direct.is_none() || timers_to_check(&st) {
            let mut w = Work::default();
            if let Some(d) = done {
                w.push_done(d);
            }
            let n = pump(&mut st, &mut w);
            self.notify(&st, n);
            drop(st);
            self.run(&mut w);
            w.dispose();
        } else {
            drop(st);
        }
        if let Some(c) = direct {
            self.run_direct(c);
        }
        Ok(slot)
    }

    /// A blocking request: submit, drive, wait for the completion.
    fn blocking(&self, op: u32, offset: u64, ptr: usize, len: usize, flags: u32) -> FfiResult {
        let slot = self.submit(&NewRequest {
            op,
            offset,
            ptr,
            len,
            flags,
            waiter: true,
            cb: None,
            user: 0,
        })?;
        let mut st = self.lock();
        loop {
            if let Some(code) = st
                .reqs
                .get(slot)
                .and_then(|r| r.as_ref())
                .and_then(|r| r.done)
            {
                st.reqs[slot] = None;
                st.free.push(slot);
                return match code {
                    MDRAID_OK => Ok(()),
                    c => Err(
                        Fail::new(c, "array I/O error: no mirror could serve the request")
                            .with_errno(5),
                    ),
                };
            }
            st = self.wait(st, Duration::from_millis(100))?;
        }
    }

    /// Runs `f` on the machine, then drives the work it made.
    fn machine_cmd(&self, f: impl FnOnce(&mut Machine) -> FfiResult) -> FfiResult {
        let mut w = Work::default();
        {
            let mut st = self.lock();
            let m = self.running(&mut st)?;
            f(m)?;
            let n = pump(&mut st, &mut w);
            self.notify(&st, n);
        }
        self.run(&mut w);
        Ok(())
    }
}

/// The error of a call on an array bound to another thread (the state here is the
/// placeholder).
#[cold]
#[inline(never)]
pub(crate) fn wrong_thread() -> Fail {
    Fail::new(
        MDRAID_WRONG_THREAD,
        "the array is bound to another thread (mdraid_array_bind_thread)",
    )
}

fn refused(e: md::array::machine::MachineError) -> Fail {
    use md::array::machine::MachineError as E;
    match e {
        E::NoSuchMember(i) => Fail::new(MDRAID_NOT_FOUND, format!("no member {i}")),
        e => Fail::new(MDRAID_REFUSED, e.to_string()),
    }
}

/// Array request: read.
pub const MDRAID_OP_READ: u32 = 0;
/// Array request: write (`MDRAID_IO_FUA` in flags for a forced-unit-access write).
pub const MDRAID_OP_WRITE: u32 = 1;
/// Array request: flush (offset, buf and len ignored).
pub const MDRAID_OP_FLUSH: u32 = 2;
/// Array request: discard (buf ignored).
pub const MDRAID_OP_DISCARD: u32 = 3;

/// Metadata versions (`mdraid_create_options.metadata`).
pub const MDRAID_METADATA_1_2: u32 = 0;
/// Superblock 1.1 (at sector 0).
pub const MDRAID_METADATA_1_1: u32 = 1;
/// Superblock 1.0 (at the end).
pub const MDRAID_METADATA_1_0: u32 = 2;
/// Superblock 0.90.
pub const MDRAID_METADATA_0_90: u32 = 3;

/// `mdraid_create_options.bitmap`: mdadm's default (internal above 100 GiB).
pub const MDRAID_BITMAP_AUTO: u32 = 0;
/// No write-intent bitmap.
pub const MDRAID_BITMAP_NONE: u32 = 1;
/// An internal write-intent bitmap.
pub const MDRAID_BITMAP_INTERNAL: u32 = 2;

/// Create flag: mark the mirrors in sync (no resync owed), as `--assume-clean`.
pub const MDRAID_CREATE_ASSUME_CLEAN: u32 = 1;

/// Per-member create/add flag: write-mostly (reads avoid it).
pub const MDRAID_MEMBER_WRITE_MOSTLY: u32 = 1;
/// Per-member create/add flag: failfast.
pub const MDRAID_MEMBER_FAILFAST: u32 = 2;
/// Add flag: only a re-add is acceptable (mdadm --re-add).
pub const MDRAID_ADD_RE_ADD_ONLY: u32 = 4;

/// Assemble flag: start degraded (mdadm --run).
pub const MDRAID_ASSEMBLE_RUN: u32 = 1;
/// Assemble flag: start even when degraded or dirty (mdadm --force).
pub const MDRAID_ASSEMBLE_FORCE: u32 = 2;
/// Assemble flag: read-only (no metadata written, writes refused).
pub const MDRAID_ASSEMBLE_READ_ONLY: u32 = 4;

/// Options of `mdraid_array_create` (mdadm --create --level=1). Initialise with
/// `mdraid_create_options_init`, then change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mdraid_create_options {
    /// `MDRAID_METADATA_*` (default 1.2).
    pub metadata: u32,
    /// Mirrors; members beyond it are spares. 0 (the default) means "every member given".
    pub raid_disks: u32,
    /// `MDRAID_BITMAP_*` (default `MDRAID_BITMAP_AUTO`).
    pub bitmap: u32,
    /// Bitmap chunk in bytes (a power of two >= 4096), 0 for mdadm's choice.
    pub bitmap_chunk_bytes: u64,
    /// Array name (NUL-terminated, copied; NULL for "mdraid").
    pub name: *const c_char,
    /// Home host (NULL: none).
    pub homehost: *const c_char,
    /// `MDRAID_CREATE_*` flags.
    pub flags: u32,
    /// Use only this many KiB of each member (0: all), as `--size`.
    pub size_kib: u64,
    /// Array UUID; all zero (the default) picks a random one.
    pub uuid: [u8; 16],
    /// 0.90 preferred minor.
    pub md_minor: u32,
    /// NULL, or one `MDRAID_MEMBER_*` flags word per member passed to create.
    pub member_flags: *const u32,
}

/// Fills `opts` with the defaults (1.2 metadata, auto bitmap, every member a mirror, random
/// UUID). Errors: `MDRAID_NULL_PARAMETER`. Thread-safe.
///
/// # Safety
/// `opts` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_create_options_init(
    opts: *mut mdraid_create_options,
) -> mdraid_result {
    ffi_boundary! {
        non_null(opts, "opts")?;
        // SAFETY: non-NULL, writable (caller's promise).
        unsafe {
            *opts = mdraid_create_options {
                metadata: MDRAID_METADATA_1_2,
                raid_disks: 0,
                bitmap: MDRAID_BITMAP_AUTO,
                bitmap_chunk_bytes: 0,
                name: std::ptr::null(),
                homehost: std::ptr::null(),
                flags: 0,
                size_kib: 0,
                uuid: [0; 16],
                md_minor: 0,
                member_flags: std::ptr::null(),
            }
        };
        Ok(())
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

fn publish(obj: Arc<ArrayObj>, out: *mut *mut mdraid_array) {
    let h = handle::insert(Obj::Array(obj.clone()));
    let _ = obj.handle.set(h);
    // SAFETY: `out` was checked non-NULL by the caller of this helper and is writable.
    unsafe { *out = h as *mut mdraid_array };
}

/// Gathers `n` member handles (NULL entries allowed when `allow_missing`).
///
/// # Safety
/// `members` is readable for `n` pointers.
unsafe fn member_list(
    members: *const *mut mdraid_member,
    n: usize,
    allow_missing: bool,
) -> FfiResult<Vec<Option<Arc<crate::member::MemberObj>>>> {
    non_null(members, "members")?;
    if n == 0 || n > 1920 {
        return Err(Fail::new(
            MDRAID_INVALID_ARGUMENT,
            format!("{n} members (1..1920)"),
        ));
    }
    // SAFETY: readable for `n` pointers (caller's promise).
    let ptrs = unsafe { std::slice::from_raw_parts(members, n) };
    ptrs.iter()
        .map(|&p| {
            if p.is_null() && allow_missing {
                Ok(None)
            } else {
                handle::member(p).map(Some)
            }
        })
        .collect()
}

/// Creates a RAID1 array over `members` (`n` of them, in slot order; a NULL entry is an
/// empty slot, mdadm's `missing`): superblocks (and bitmaps) are written and flushed on every
/// member. The array takes its own reference on each member; you still free your handles.
///
/// Blocking: returns when the metadata is written. With async members the writes go through
/// their callbacks and this call waits for their completions: run your reactor on another
/// thread. Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`,
/// `MDRAID_INVALID_ARGUMENT` (bad option, n = 0), `MDRAID_BUSY` (a member is used by another
/// array), `MDRAID_REFUSED` (geometry: member too small, name too long, ...),
/// `MDRAID_IO_ERROR`. On success `*out` is the new array. Thread-safe.
///
/// # Safety
/// `opts` is NULL (defaults) or valid; `members` is readable for `n` pointers; `out` is
/// writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_create(
    opts: *const mdraid_create_options,
    members: *const *mut mdraid_member,
    n: usize,
    out: *mut *mut mdraid_array,
) -> mdraid_result {
    ffi_boundary! {
        non_null(out, "out")?;
        let mut o = std::mem::MaybeUninit::<mdraid_create_options>::uninit();
        // SAFETY: `o` is writable.
        unsafe { mdraid_create_options_init(o.as_mut_ptr()) };
        // SAFETY: initialised just above; `opts` is valid when non-NULL (caller's promise).
        let o = if opts.is_null() { unsafe { o.assume_init() } } else { unsafe { *opts } };
        // SAFETY: caller's promise for `members`/`n`.
        let list = unsafe { member_list(members, n, true) }?;
        let version = match o.metadata {
            MDRAID_METADATA_1_2 => MetadataVersion::V1_2,
            MDRAID_METADATA_1_1 => MetadataVersion::V1_1,
            MDRAID_METADATA_1_0 => MetadataVersion::V1_0,
            MDRAID_METADATA_0_90 => MetadataVersion::V0_90,
            v => return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown metadata {v}"))),
        };
        let chunk = (o.bitmap_chunk_bytes != 0).then_some(o.bitmap_chunk_bytes);
        let bitmap = match o.bitmap {
            MDRAID_BITMAP_AUTO => BitmapRequest::Auto,
            MDRAID_BITMAP_NONE => BitmapRequest::None,
            MDRAID_BITMAP_INTERNAL => BitmapRequest::Internal { chunk_bytes: chunk },
            b => return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown bitmap {b}"))),
        };
        if o.flags & !MDRAID_CREATE_ASSUME_CLEAN != 0 {
            return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown create flags {:#x}", o.flags)));
        }
        // SAFETY: the caller's promise for the option strings.
        let name = unsafe { opt_c_str(o.name, "name") }?.unwrap_or("mdraid").to_string();
        // SAFETY: as above.
        let homehost = unsafe { opt_c_str(o.homehost, "homehost") }?.map(str::to_string);
        let mflags: Vec<u32> = if o.member_flags.is_null() {
            vec![0; n]
        } else {
            // SAFETY: one word per member (the documented contract).
            unsafe { std::slice::from_raw_parts(o.member_flags, n) }.to_vec()
        };
        let mut slots = Vec::with_capacity(n);
        for (m, f) in list.iter().zip(&mflags) {
            if f & !(MDRAID_MEMBER_WRITE_MOSTLY | MDRAID_MEMBER_FAILFAST) != 0 {
                return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown member flags {f:#x}")));
            }
            slots.push(match m {
                None => CreateSlot::Missing,
                Some(m) => {
                    let dev = Dev::claim(m)?;
                    CreateSlot::Device {
                        name: dev.name().to_string(),
                        dev,
                        write_mostly: f & MDRAID_MEMBER_WRITE_MOSTLY != 0,
                        failfast: f & MDRAID_MEMBER_FAILFAST != 0,
                    }
                }
            });
        }
        let mut uuid = o.uuid;
        if uuid == [0; 16] {
            uuid[..8].copy_from_slice(&random_u64().to_le_bytes());
            uuid[8..].copy_from_slice(&random_u64().to_le_bytes());
        }
        let copts = CreateOptions {
            version,
            raid_disks: if o.raid_disks == 0 { n as u32 } else { o.raid_disks },
            bitmap,
            name,
            homehost,
            assume_clean: o.flags & MDRAID_CREATE_ASSUME_CLEAN != 0,
            size_kib: (o.size_kib != 0).then_some(o.size_kib),
            now: clock::wall_secs(),
            uuid,
            seed: random_u64(),
            md_minor: o.md_minor,
        };
        let a = Array::create(slots, &copts).map_err(|e| match e {
            // mdadm's geometry rules refused the members (too small, bad bitmap chunk).
            md::Error::Format(f) => Fail::new(MDRAID_REFUSED, f.to_string()),
            e => Fail::from(e),
        })?;
        publish(ArrayObj::new(Form::Resting(Box::new(a))), out);
        Ok(())
    }
}

/// Assembles an array from `members` by md's rules (freshest member leads, non-fresh members
/// left out, ...). `flags`: `MDRAID_ASSEMBLE_RUN`, `MDRAID_ASSEMBLE_FORCE`,
/// `MDRAID_ASSEMBLE_READ_ONLY`. Members that assembly leaves out are let go at once (their
/// handles stay yours). Blocking (async members: as `mdraid_array_create`).
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_INVALID_ARGUMENT`,
/// `MDRAID_BUSY`, `MDRAID_NO_SUPERBLOCK`, `MDRAID_REFUSED` (not enough members to start, UUID
/// mismatch, ...; the message is mdadm's), `MDRAID_IO_ERROR`. Thread-safe.
///
/// # Safety
/// `members` is readable for `n` pointers; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_assemble(
    members: *const *mut mdraid_member,
    n: usize,
    flags: u32,
    out: *mut *mut mdraid_array,
) -> mdraid_result {
    ffi_boundary! {
        non_null(out, "out")?;
        // SAFETY: caller's promise for `members`/`n`.
        let list = unsafe { member_list(members, n, false) }?;
        if flags & !(MDRAID_ASSEMBLE_RUN | MDRAID_ASSEMBLE_FORCE | MDRAID_ASSEMBLE_READ_ONLY) != 0 {
            return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown assemble flags {flags:#x}")));
        }
        let mut devs = Vec::with_capacity(n);
        for m in list.iter().flatten() {
            let d = Dev::claim(m)?;
            devs.push((d.name().to_string(), d));
        }
        let opts = AssembleOptions {
            run: flags & MDRAID_ASSEMBLE_RUN != 0,
            force: flags & MDRAID_ASSEMBLE_FORCE != 0,
            readonly: flags & MDRAID_ASSEMBLE_READ_ONLY != 0,
        };
        let (a, _kicked) = Array::assemble(devs, &opts)?;
        let obj = ArrayObj::new(Form::Resting(Box::new(a)));
        obj.lock().readonly = opts.readonly;
        publish(obj, out);
        Ok(())
    }
}

/// Frees an array handle. NULL, an already freed handle and a handle of another type are
/// ignored (freeing twice is safe). Without `mdraid_array_stop` first, nothing more is
/// written: the members are left as a crash would leave them (dirty; the next assembly
/// resyncs). Outstanding async I/Os are forgotten: their tokens become unknown, and their
/// buffers (for metadata I/O) are freed, so do not carry them out after this (a simulated
/// power cut is fine). Not concurrently with other calls on the same array.
#[no_mangle]
pub extern "C" fn mdraid_array_free(array: *mut mdraid_array) {
    boundary_void(|| {
        if let Ok(a) = handle::array_arc(array) {
            if a.bound_elsewhere() {
                // Not from here: the handle stays valid (the header's binding contract).
                record(wrong_thread());
                return;
            }
            // Bound to this thread: the state goes back to the mutex, to be torn down.
            if let Err(e) = a.unbind() {
                record(e);
                return;
            }
        }
        if let Some(Obj::Array(a)) = handle::free_if(array, |o| matches!(o, Obj::Array(_))) {
            // Torn down here and now (the members let go, outstanding I/O forgotten): other
            // threads' lookup caches may keep the object's memory a while longer.
            let old = std::mem::replace(&mut a.lock().form, Form::Stopped);
            drop(old);
            handle::forget_cached_array();
        }
    })
}

/// Stops the array (mdadm --stop): new requests are refused, requests and I/O in flight
/// finish, a running sync action is interrupted, and the superblocks are written clean.
/// Blocks until that is done (with async members: needs the reactor running on another
/// thread). The members are then let go (their handles stay yours); the array handle stays
/// valid for `mdraid_array_get_info` and `mdraid_array_free`. Stopping a stopped array is OK.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_BUSY` (another thread is
/// stopping or quiescing it), `MDRAID_IO_ERROR`. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_stop(array: *mut mdraid_array) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        let st = a.lock();
        if st.changing {
            return Err(Fail::new(MDRAID_BUSY, "the array is being quiesced or stopped"));
        }
        match st.form {
            Form::Stopped => Ok(()),
            Form::Bound => Err(wrong_thread()),
            Form::Resting(_) => {
                let mut st = st;
                let Form::Resting(arr) = std::mem::replace(&mut st.form, Form::Stopped) else { unreachable!() };
                drop(st);
                arr.stop()?;
                Ok(())
            }
            Form::Running { .. } => {
                let (_st, devs) = a.stop_machine(st)?;
                drop(devs);
                Ok(())
            }
        }
    }
}

/// Reads `len` bytes at array byte `offset` into `buf`. Blocking: returns when the data is
/// there (with async members, needs the reactor on another thread). `offset` and `len` are
/// multiples of the block size (`mdraid_array_info.block_size`, 512 unless a member says
/// more); with an O_DIRECT member `buf` is aligned to `buffer_align`.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_INVALID_ARGUMENT` (len
/// 0), `MDRAID_OUT_OF_RANGE`, `MDRAID_MISALIGNED`, `MDRAID_IO_ERROR` (no mirror could read it;
/// `buf` may then hold partial data), `MDRAID_BUSY`, `MDRAID_STOPPED`. Thread-safe: any
/// number of threads may read and write one array at once.
///
/// # Safety
/// `buf` is writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_read(
    array: *mut mdraid_array,
    offset: u64,
    buf: *mut u8,
    len: usize,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        non_null(buf, "buf")?;
        a.blocking(MDRAID_OP_READ, offset, buf as usize, len, 0)
    }
}

/// Writes `len` bytes from `buf` at array byte `offset`; `flags` 0 or `MDRAID_IO_FUA`
/// (durable on every mirror that took it when this returns). Succeeds while one in-sync
/// mirror took the write. Blocking; alignment and errors as `mdraid_array_read`, plus
/// `MDRAID_READ_ONLY`. Thread-safe.
///
/// # Safety
/// `buf` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_write(
    array: *mut mdraid_array,
    offset: u64,
    buf: *const u8,
    len: usize,
    flags: u32,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        non_null(buf, "buf")?;
        a.blocking(MDRAID_OP_WRITE, offset, buf as usize, len, flags)
    }
}

/// Makes every completed write durable on every working member. Blocking. Errors:
/// `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_IO_ERROR`, `MDRAID_STOPPED`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_flush(array: *mut mdraid_array) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        a.blocking(MDRAID_OP_FLUSH, 0, 0, 0, 0)
    }
}

/// Discards `len` bytes at `offset` on every member (members may ignore it). Blocking;
/// errors as `mdraid_array_write` (no buffer). Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_discard(
    array: *mut mdraid_array,
    offset: u64,
    len: u64,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        let len = usize::try_from(len).map_err(|_| Fail::new(MDRAID_OUT_OF_RANGE, "length"))?;
        a.blocking(MDRAID_OP_DISCARD, offset, 0, len, 0)
    }
}

/// Submits an array request without waiting: `op` is `MDRAID_OP_READ`, `_WRITE`, `_FLUSH` or
/// `_DISCARD`; `buf`/`len` the memory (ignored for flush; `buf` ignored for discard), which
/// must stay valid and untouched until `complete(user_data, result)` is called. `complete`
/// is called exactly once when this returns `MDRAID_OK` — possibly before this call returns,
/// on this thread (synchronous members, or an async callback that completes inline) —
/// otherwise never. Alignment as `mdraid_array_read`.
///
/// Ordering: a read submitted while an overlapping write is in flight waits for it (it
/// returns the write's data). A write submitted while an overlapping read is in flight need
/// not wait for the read, which may then return the old data, the new or a mix, as on md:
/// wait for a read's completion before overwriting what it reads. A read on a healthy array
/// is one member read started from this call and finished by that read's completion.
///
/// Errors (nothing queued, `complete` not called): `MDRAID_NULL_PARAMETER` (array, complete,
/// or buf for read/write), `MDRAID_INVALID_HANDLE`, `MDRAID_INVALID_ARGUMENT`,
/// `MDRAID_OUT_OF_RANGE`, `MDRAID_MISALIGNED`, `MDRAID_READ_ONLY`, `MDRAID_BUSY` (the
/// request pool is full: complete some I/O, retry), `MDRAID_STOPPED`, `MDRAID_WRONG_THREAD`
/// (bound to another thread). Thread-safe.
///
/// # Safety
/// `buf` is valid for `len` bytes until the completion.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mdraid_array_submit(
    array: *mut mdraid_array,
    op: u32,
    offset: u64,
    buf: *mut u8,
    len: usize,
    flags: u32,
    complete: mdraid_complete_fn,
    user_data: *mut c_void,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        if complete.is_none() {
            return Err(Fail::new(MDRAID_NULL_PARAMETER, "complete is NULL"));
        }
        let len = if op == MDRAID_OP_FLUSH { 0 } else { len };
        a.submit(&NewRequest {
            op,
            offset,
            ptr: buf as usize,
            len,
            flags,
            waiter: false,
            cb: complete,
            user: user_data as usize,
        })?;
        Ok(())
    }
}

/// Drives the array's timers: md's safe-mode clean marking (~200 ms after the last write),
/// bitmap clearing after idle daemon passes, sync speed limits, read-error decay. Call it
/// when the deadline it returns passes (or every ~100 ms); every other call on the array
/// (but the completion of a read's member I/O) drives the timers too, so a busy array needs
/// no ticks, but an idle one goes clean only through them. `*next_ns` (optional, NULL allowed) gets the nanoseconds until the next
/// deadline, or `UINT64_MAX` when none is pending.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_STOPPED`, `MDRAID_BUSY`.
/// Thread-safe.
///
/// # Safety
/// `next_ns` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_tick(
    array: *mut mdraid_array,
    next_ns: *mut u64,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        let mut w = Work::default();
        let next;
        {
            let mut st = a.lock();
            let now = clock::now();
            let m = a.running(&mut st)?;
            m.handle_timeout(now);
            next = m.poll_timeout().map(|t| t.saturating_sub(now.mono_ns)).unwrap_or(u64::MAX);
            let n = pump(&mut st, &mut w);
            a.notify(&st, n);
        }
        a.run(&mut w);
        if !next_ns.is_null() {
            // SAFETY: non-NULL and writable (caller's promise).
            unsafe { *next_ns = next };
        }
        Ok(())
    }
}

/// Sync action: resync (copy the first mirror over the others where one is owed).
pub const MDRAID_SYNC_RESYNC: u32 = 0;
/// Sync action: recovery (rebuild recovering members / spares into empty slots).
pub const MDRAID_SYNC_RECOVERY: u32 = 1;
/// Sync action: check (count mismatched sectors, write nothing).
pub const MDRAID_SYNC_CHECK: u32 = 2;
/// Sync action: repair (check, and copy the first good mirror over differing ones).
pub const MDRAID_SYNC_REPAIR: u32 = 3;

/// Starts a sync action (`MDRAID_SYNC_*`) and returns at once; it runs as the array is
/// driven (its I/O goes to the members like any other; with synchronous members much of it
/// runs inside this and later calls). Follow it with `mdraid_array_sync_status` or wait for
/// its end with `mdraid_array_sync_wait`.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_INVALID_ARGUMENT`
/// (unknown action), `MDRAID_REFUSED` (one runs already or the last one's end is still being
/// recorded — `mdraid_array_sync_wait` waits for both —, nothing to do, read-only, ...),
/// `MDRAID_STOPPED`, `MDRAID_BUSY`. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_sync_start(array: *mut mdraid_array, action: u32) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        let act = match action {
            MDRAID_SYNC_RESYNC => SyncAction::Resync,
            MDRAID_SYNC_RECOVERY => SyncAction::Recovery,
            MDRAID_SYNC_CHECK => SyncAction::Check,
            MDRAID_SYNC_REPAIR => SyncAction::Repair,
            x => return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown sync action {x}"))),
        };
        a.machine_cmd(|m| m.start_sync(act).map_err(refused))
    }
}

/// Interrupts the running sync action; its end is then reported by
/// `mdraid_array_sync_status` as interrupted, and it does not start again on its own (md's
/// "idle", `mdraid_array_sync_stop`, lets md's recovery check restart a resync or recovery).
/// Errors: as `mdraid_array_sync_start` (`MDRAID_REFUSED`: none runs). Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_sync_abort(array: *mut mdraid_array) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        a.machine_cmd(|m| m.abort_sync().map_err(refused))
    }
}

/// `mdraid_array_sync_stop` flag: md's `frozen` (without it, md's `idle`).
pub const MDRAID_SYNC_STOP_FREEZE: u32 = 1;

/// md's `sync_action` `idle` and `frozen`: interrupts the running sync action, if any (its end
/// is then reported by `mdraid_array_sync_status` as interrupted). Without flags (`idle`)
/// md's recovery check follows once it has drained: a recovery (a spare for an empty slot, a
/// member still recovering) or a resync the array still owes starts again from its checkpoint;
/// a check or repair does not. With `MDRAID_SYNC_STOP_FREEZE` (`frozen`) nothing starts on
/// its own, not even after a member failure, until the next `mdraid_array_sync_start` or a
/// stop without the flag. Never refused for want of a running action. On a read-only array
/// it only interrupts. Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`,
/// `MDRAID_INVALID_ARGUMENT` (unknown flags), `MDRAID_STOPPED`, `MDRAID_BUSY`. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_sync_stop(array: *mut mdraid_array, flags: u32) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        if flags & !MDRAID_SYNC_STOP_FREEZE != 0 {
            return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown flags {flags:#x}")));
        }
        a.machine_cmd(|m| {
            m.stop_sync(flags & MDRAID_SYNC_STOP_FREEZE != 0);
            Ok(())
        })
    }
}

/// Whether sync actions are frozen (`mdraid_array_sync_stop` with `MDRAID_SYNC_STOP_FREEZE`;
/// md's `sync_action` reads `frozen`): `*frozen` gets 1 or 0. A freeze ends with a stop
/// without the flag or the next `mdraid_array_sync_start`. Errors: `MDRAID_NULL_PARAMETER`,
/// `MDRAID_INVALID_HANDLE`, `MDRAID_STOPPED`. Thread-safe.
///
/// # Safety
/// `frozen` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_sync_frozen(
    array: *mut mdraid_array,
    frozen: *mut u32,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        non_null(frozen, "frozen")?;
        let st = a.lock();
        let f = match &st.form {
            Form::Resting(arr) => arr.sync_frozen(),
            Form::Running { m, .. } => m.engine().sync_frozen(),
            Form::Stopped => return Err(Fail::new(MDRAID_STOPPED, "the array is stopped")),
            Form::Bound => return Err(wrong_thread()),
        };
        // SAFETY: non-NULL and writable (caller's promise).
        unsafe { *frozen = u32::from(f) };
        Ok(())
    }
}

/// Blocks until no sync action runs and the last one's end is recorded (its report is then
/// in `mdraid_array_sync_status`; driving timers meanwhile; with async members the reactor
/// must run on another thread). Errors: `MDRAID_NULL_PARAMETER`,
/// `MDRAID_INVALID_HANDLE`, `MDRAID_STOPPED`, `MDRAID_BUSY`. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_sync_wait(array: *mut mdraid_array) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        let mut st = a.lock();
        loop {
            let m = a.running(&mut st)?;
            if m.sync_status().is_none() {
                return Ok(());
            }
            st = a.wait(st, Duration::from_millis(20))?;
        }
    }
}

/// md's sync speed limits in KiB/s (defaults 1000 and 200000); only while the array is idle.
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_REFUSED` (busy),
/// `MDRAID_STOPPED`. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_set_speed_limits(
    array: *mut mdraid_array,
    min_kib: u64,
    max_kib: u64,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        a.machine_cmd(|m| m.set_speed_limits(min_kib, max_kib).map_err(refused))
    }
}

/// Progress of the running sync action and the outcome of the last one that ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mdraid_sync_status {
    /// 1 while an action runs.
    pub running: u32,
    /// The running action (`MDRAID_SYNC_*`), when `running`.
    pub action: u32,
    /// Sectors done and in total (running action).
    pub done_sectors: u64,
    /// Sectors in the running action's range.
    pub total_sectors: u64,
    /// Mismatched sectors so far (md's mismatch_cnt).
    pub mismatch_cnt: u64,
    /// Sectors written so far.
    pub sectors_copied: u64,
    /// Current speed, KiB/s.
    pub rate_kib_s: u64,
    /// 1 when the fields below describe an action that ended.
    pub last_valid: u32,
    /// The last ended action (`MDRAID_SYNC_*`).
    pub last_action: u32,
    /// Its mismatch count (check/repair).
    pub last_mismatch_cnt: u64,
    /// Sectors it wrote.
    pub last_sectors_copied: u64,
    /// 1 when it was interrupted.
    pub last_interrupted: u32,
}

fn action_code(a: SyncAction) -> u32 {
    match a {
        SyncAction::Resync => MDRAID_SYNC_RESYNC,
        SyncAction::Recovery => MDRAID_SYNC_RECOVERY,
        SyncAction::Check => MDRAID_SYNC_CHECK,
        SyncAction::Repair => MDRAID_SYNC_REPAIR,
    }
}

/// Fills `*out` with the sync status. Errors: `MDRAID_NULL_PARAMETER`,
/// `MDRAID_INVALID_HANDLE`, `MDRAID_STOPPED`. Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_sync_status(
    array: *mut mdraid_array,
    out: *mut mdraid_sync_status,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        non_null(out, "out")?;
        let mut st = a.lock();
        let mut s = mdraid_sync_status::default();
        let (status, last) = match &st.form {
            Form::Resting(arr) => (None, arr.last_sync()),
            Form::Running { m, .. } => (m.sync_status(), m.last_sync()),
            Form::Stopped => return Err(Fail::new(MDRAID_STOPPED, "the array is stopped")),
            Form::Bound => return Err(wrong_thread()),
        };
        let _ = &mut st;
        if let Some(x) = status {
            s.running = 1;
            s.action = action_code(x.action);
            s.done_sectors = x.done_sectors;
            s.total_sectors = x.total_sectors;
            s.mismatch_cnt = x.mismatch_cnt;
            s.sectors_copied = x.sectors_copied;
            s.rate_kib_s = x.rate_kib_s;
        }
        if let Some(r) = last {
            s.last_valid = 1;
            s.last_action = action_code(r.action);
            s.last_mismatch_cnt = r.mismatch_cnt;
            s.last_sectors_copied = r.sectors_copied;
            s.last_interrupted = u32::from(r.interrupted);
        }
        // SAFETY: non-NULL and writable (caller's promise).
        unsafe { *out = s };
        Ok(())
    }
}

/// Fails member `index` (as listed by `mdraid_array_member_info`; mdadm --fail): the
/// survivors record it as faulty. Returns once the failure is handed to the members (with
/// async members the superblock writes complete through your reactor).
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_NOT_FOUND` (index),
/// `MDRAID_REFUSED` (the last in-sync mirror), `MDRAID_STOPPED`, `MDRAID_BUSY`. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_fail(array: *mut mdraid_array, index: usize) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        a.machine_cmd(|m| m.fail_member(index).map_err(refused))
    }
}

/// Removes member `index` (faulty or spare; mdadm --remove) while the array is idle; the
/// others' superblocks forget it and the member is let go (your handle can be re-added).
/// Indices above `index` move down by one.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_NOT_FOUND`,
/// `MDRAID_REFUSED` (active member: fail it first; or I/O in flight), `MDRAID_STOPPED`,
/// `MDRAID_BUSY`. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_array_remove(array: *mut mdraid_array, index: usize) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        let mut w = Work::default();
        let dev;
        {
            let mut st = a.lock();
            a.running(&mut st)?;
            let Form::Running { m, devs } = &mut st.form else { unreachable!() };
            m.remove_member(index).map_err(refused)?;
            dev = devs.remove(index);
            let n = pump(&mut st, &mut w);
            a.notify(&st, n);
        }
        a.run(&mut w);
        drop(dev);
        Ok(())
    }
}

/// What `mdraid_array_add` did.
pub const MDRAID_ADDED_SPARE: u32 = 0;
/// The device was rebuilt into an empty slot.
pub const MDRAID_ADDED_REBUILT: u32 = 1;
/// The device came back to its old slot (only bitmap-dirty chunks copied).
pub const MDRAID_ADDED_RE_ADDED: u32 = 2;

/// Adds `member` (mdadm --add; with `MDRAID_ADD_RE_ADD_ONLY`, --re-add): a recent member
/// whose data the bitmap covers comes back to its slot copying only what changed; any other
/// device becomes a spare, rebuilt at once into an empty slot. `flags`: also
/// `MDRAID_MEMBER_WRITE_MOSTLY`, `MDRAID_MEMBER_FAILFAST`. Blocking: returns when the rebuild
/// is done. A running array is quiesced for it (in-flight work drains, a running sync action
/// is interrupted; nothing is written for it) and runs on afterwards; concurrent calls on the
/// array get `MDRAID_BUSY` meanwhile. `*outcome` (optional) gets
/// `MDRAID_ADDED_*`.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_INVALID_ARGUMENT`,
/// `MDRAID_BUSY` (member used elsewhere), `MDRAID_REFUSED` (not a re-add, too small, already a
/// member), `MDRAID_READ_ONLY`, `MDRAID_IO_ERROR`, `MDRAID_STOPPED`. Thread-safe.
///
/// # Safety
/// `outcome` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_add(
    array: *mut mdraid_array,
    member: *mut mdraid_member,
    flags: u32,
    outcome: *mut u32,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        let mo = handle::member(member)?;
        if flags & !(MDRAID_MEMBER_WRITE_MOSTLY | MDRAID_MEMBER_FAILFAST | MDRAID_ADD_RE_ADD_ONLY) != 0 {
            return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown add flags {flags:#x}")));
        }
        let dev = Dev::claim(&mo)?;
        let st = a.lock();
        let mut st = a.resting(st)?;
        let Form::Resting(arr) = &mut st.form else { unreachable!() };
        let opts = AddOptions {
            write_mostly: flags & MDRAID_MEMBER_WRITE_MOSTLY != 0,
            failfast: flags & MDRAID_MEMBER_FAILFAST != 0,
            re_add_only: flags & MDRAID_ADD_RE_ADD_ONLY != 0,
            device_uuid: Some({
                let mut u = [0u8; 16];
                u[..8].copy_from_slice(&random_u64().to_le_bytes());
                u[8..].copy_from_slice(&random_u64().to_le_bytes());
                u
            }),
        };
        let name = dev.name().to_string();
        let r = arr.add_member(name, dev, &opts, &mut |_, _| {})?;
        if !outcome.is_null() {
            let v = match r {
                AddOutcome::Spare => MDRAID_ADDED_SPARE,
                AddOutcome::Rebuilt(_) => MDRAID_ADDED_REBUILT,
                AddOutcome::ReAdded(_) => MDRAID_ADDED_RE_ADDED,
            };
            // SAFETY: non-NULL and writable (caller's promise).
            unsafe { *outcome = v };
        }
        Ok(())
    }
}

/// Facts about an array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mdraid_array_info {
    /// Array size in bytes.
    pub size: u64,
    /// Mirrors (slots).
    pub raid_disks: u32,
    /// Members listed by `mdraid_array_member_info` (in-sync, spare, faulty).
    pub members: u32,
    /// In-sync members.
    pub in_sync: u32,
    /// `MDRAID_METADATA_*`.
    pub metadata: u32,
    /// 1 when the array has a write-intent bitmap.
    pub bitmap: u32,
    /// 1 while the superblocks say dirty (writes since the last clean marking).
    pub dirty: u32,
    /// 1 when a resync is owed.
    pub needs_resync: u32,
    /// 1 after `mdraid_array_stop`.
    pub stopped: u32,
    /// 1 when assembled read-only.
    pub read_only: u32,
    /// Offsets and lengths of array I/O are multiples of this (512, or a member's larger
    /// logical block size).
    pub block_size: u32,
    /// Array I/O buffers must be aligned to this (1, or 4096 with an O_DIRECT member).
    pub buffer_align: u32,
    /// Member failures noticed while running.
    pub failures: u32,
    /// Event count.
    pub events: u64,
    /// Array UUID.
    pub uuid: [u8; 16],
}

fn metadata_code(v: MetadataVersion) -> u32 {
    match v {
        MetadataVersion::V1_2 => MDRAID_METADATA_1_2,
        MetadataVersion::V1_1 => MDRAID_METADATA_1_1,
        MetadataVersion::V1_0 => MDRAID_METADATA_1_0,
        MetadataVersion::V0_90 => MDRAID_METADATA_0_90,
    }
}

fn lead<D>(members: &[md::array::Member<D>]) -> Option<&Superblock> {
    members
        .iter()
        .find(|m| matches!(m.state, MemberState::InSync(_)))
        .or(members.first())
        .map(|m| &m.sb)
}

/// Fills `*out` with the array's facts. Works on a stopped array too (what is known).
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`. Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_get_info(
    array: *mut mdraid_array,
    out: *mut mdraid_array_info,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        non_null(out, "out")?;
        let st = a.lock();
        let mut i = mdraid_array_info {
            block_size: st.block as u32,
            buffer_align: st.align as u32,
            read_only: u32::from(st.readonly),
            failures: st.failures as u32,
            ..Default::default()
        };
        let in_sync = |s: &MemberState| matches!(s, MemberState::InSync(_));
        match &st.form {
            Form::Resting(arr) => {
                i.size = arr.size();
                i.raid_disks = arr.raid_disks();
                i.members = arr.members().len() as u32;
                i.in_sync = arr.in_sync_count();
                i.metadata = metadata_code(arr.version());
                i.bitmap = u32::from(arr.bitmap().is_some());
                i.dirty = u32::from(arr.is_dirty());
                i.needs_resync = u32::from(arr.needs_resync());
                i.events = arr.events();
                i.uuid = arr.lead_superblock().uuid();
            }
            Form::Running { m, .. } => {
                i.size = m.engine().array_sectors() * 512;
                i.members = m.members().len() as u32;
                i.in_sync = m.members().iter().filter(|x| in_sync(&x.state)).count() as u32;
                if let Some(sb) = lead(m.members()) {
                    i.raid_disks = sb.raid_disks();
                    i.metadata = metadata_code(sb.version());
                    i.uuid = sb.uuid();
                }
                i.bitmap = u32::from(m.bitmap().is_some());
                i.dirty = u32::from(m.is_dirty());
                i.needs_resync = u32::from(m.needs_resync());
                i.events = m.events();
            }
            Form::Stopped => i.stopped = 1,
            Form::Bound => return Err(wrong_thread()),
        }
        // SAFETY: non-NULL and writable (caller's promise).
        unsafe { *out = i };
        Ok(())
    }
}

/// Member state: an in-sync mirror.
pub const MDRAID_MEMBER_IN_SYNC: u32 = 0;
/// Member state: a spare (possibly being rebuilt).
pub const MDRAID_MEMBER_SPARE: u32 = 1;
/// Member state: faulty.
pub const MDRAID_MEMBER_FAULTY: u32 = 2;

/// One member's state and counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mdraid_member_info {
    /// `MDRAID_MEMBER_IN_SYNC`, `_SPARE` or `_FAULTY`.
    pub state: u32,
    /// Its slot (in-sync, or a spare being rebuilt into it), else -1.
    pub slot: i32,
    /// For a spare being rebuilt: sectors rebuilt so far.
    pub recovery_offset: u64,
    /// Device size in sectors.
    pub dev_sectors: u64,
    /// Member reads issued.
    pub reads: u64,
    /// Member writes issued.
    pub writes: u64,
    /// Sectors read.
    pub read_sectors: u64,
    /// Sectors written.
    pub write_sectors: u64,
    /// Member I/Os that failed.
    pub errors: u64,
    /// Sectors repaired after read errors (md's cnt_corrected_read).
    pub corrected: u64,
    /// Member I/Os in flight.
    pub pending: u32,
    /// Current (decaying) read-error count.
    pub read_errors: u32,
}

fn member_info<D>(
    m: &md::array::Member<D>,
    counters: Option<md::raid1::MemberCounters>,
) -> mdraid_member_info {
    let (state, slot) = match m.state {
        MemberState::InSync(s) => (MDRAID_MEMBER_IN_SYNC, s as i32),
        MemberState::Spare => (MDRAID_MEMBER_SPARE, m.rebuild.map_or(-1, |r| r.0 as i32)),
        MemberState::Faulty => (MDRAID_MEMBER_FAULTY, -1),
    };
    let c = counters.unwrap_or_default();
    mdraid_member_info {
        state,
        slot,
        recovery_offset: m.rebuild.map_or(0, |r| r.1),
        dev_sectors: m.dev_sectors,
        reads: c.reads,
        writes: c.writes,
        read_sectors: c.read_sectors,
        write_sectors: c.write_sectors,
        errors: c.errors,
        corrected: c.corrected,
        pending: c.pending,
        read_errors: c.read_errors,
    }
}

/// Fills `*out` with member `index`'s state and counters (counters are the engine's, per
/// slot: a member without a slot shows zeros). Errors: `MDRAID_NULL_PARAMETER`,
/// `MDRAID_INVALID_HANDLE`, `MDRAID_NOT_FOUND`, `MDRAID_STOPPED`. Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_member_info(
    array: *mut mdraid_array,
    index: usize,
    out: *mut mdraid_member_info,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        non_null(out, "out")?;
        let st = a.lock();
        let nf = || Fail::new(MDRAID_NOT_FOUND, format!("no member {index}"));
        let slot_of = |s: &MemberState| match s { MemberState::InSync(s) => Some(*s as usize), _ => None };
        let info = match &st.form {
            Form::Resting(arr) => {
                let m = arr.members().get(index).ok_or_else(nf)?;
                member_info(m, slot_of(&m.state).and_then(|s| arr.counters(s)))
            }
            Form::Running { m, .. } => {
                let x = m.members().get(index).ok_or_else(nf)?;
                member_info(x, slot_of(&x.state).and_then(|s| m.engine().member_counters(s)))
            }
            Form::Stopped => return Err(Fail::new(MDRAID_STOPPED, "the array is stopped")),
            Form::Bound => return Err(wrong_thread()),
        };
        // SAFETY: non-NULL and writable (caller's promise).
        unsafe { *out = info };
        Ok(())
    }
}

/// Member `index`'s name (its path, or the name given to `mdraid_member_new`), as
/// `mdraid_examine` writes text. Errors: as `mdraid_array_member_info`, plus
/// `MDRAID_BUFFER_TOO_SMALL`. Thread-safe.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes; `out_len` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_member_name(
    array: *mut mdraid_array,
    index: usize,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        let st = a.lock();
        let name = match &st.form {
            Form::Resting(arr) => arr.members().get(index).map(|m| m.name.clone()),
            Form::Running { m, .. } => m.members().get(index).map(|m| m.name.clone()),
            Form::Stopped => return Err(Fail::new(MDRAID_STOPPED, "the array is stopped")),
            Form::Bound => return Err(wrong_thread()),
        }
        .ok_or_else(|| Fail::new(MDRAID_NOT_FOUND, format!("no member {index}")))?;
        // SAFETY: the caller's promise for the output.
        unsafe { write_text(&name, buf, len, out_len) }
    }
}

/// `mdadm --detail` text of the array (what `mdraid detail` prints), written as
/// `mdraid_examine` writes text; `label` names the array in the header (NULL: "/dev/md0"),
/// `homehost` as for examine. On a running array this quiesces it first (as
/// `mdraid_array_add`: in-flight work drains, a running sync action is interrupted): call it
/// between workloads.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_BUFFER_TOO_SMALL`,
/// `MDRAID_STOPPED`, `MDRAID_BUSY`, `MDRAID_IO_ERROR`. Thread-safe.
///
/// # Safety
/// Strings NULL or NUL-terminated; `buf` NULL or writable for `len`; `out_len` writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_array_detail(
    array: *mut mdraid_array,
    label: *const c_char,
    homehost: *const c_char,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        // SAFETY: the caller's promise for the strings.
        let label = unsafe { opt_c_str(label, "label") }?.unwrap_or("/dev/md0").to_string();
        // SAFETY: as above.
        let homehost = unsafe { opt_c_str(homehost, "homehost") }?
            .map(str::to_string)
            .unwrap_or_else(crate::member::local_hostname);
        non_null(out_len, "out_len")?;
        let st = a.lock();
        let st = a.resting(st)?;
        let Form::Resting(arr) = &st.form else { unreachable!() };
        let text = md::report::detail_array(&arr.detail_info(&label, Some(homehost))).to_text();
        // SAFETY: the caller's promise for the output.
        unsafe { write_text(&text, buf, len, out_len) }
    }
}
