//! The array machine ([`Machine`]) for C: an opaque pointer, requests in, member I/Os out,
//! their completions in, request completions, notices and the timer out.
//!
//! The C side calls these from one worker at a time (its per-array mutex) in process context;
//! nothing here blocks or sleeps.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt::Write;
use mdraid::array::machine::{Io, IoBuffer, IoKind, Machine, Notice, Now};
use mdraid::array::MemberState;
use mdraid::format::probe::Superblock;
use mdraid::raid1::{ArrayRequest, BufRef, MemberError, RequestKind, SubmitError, SyncAction};

/// The machine and what the C side asks about it (opaque to C).
pub struct KMachine {
    pub(crate) m: Machine,
    /// The last sync action that ended: (action, mismatch_cnt).
    last: Option<(SyncAction, u64)>,
    /// A resync is owed and not yet started.
    resync_owed: bool,
    /// The caller's token of each request in the machine: `(request id, token)` at the id's
    /// [`mdraid::raid1::ReqId::index`] (small and unique among requests in flight; no map on the I/O path).
    tokens: Vec<Option<(u64, u64)>>,
    /// An I/O and a notice taken out early by [`mdraid_k_pending`].
    next_io: Option<Io>,
    next_event: Option<Notice>,
}

impl KMachine {
    pub(crate) fn new(m: Machine, resync_owed: bool) -> Self {
        KMachine {
            m,
            last: None,
            resync_owed,
            tokens: Vec::new(),
            next_io: None,
            next_event: None,
        }
    }
}

/// One member I/O, as `poll_io` hands it out.
#[repr(C)]
pub struct KIo {
    /// Id to complete it with.
    pub id: u64,
    /// Member index.
    pub member: u32,
    /// 0 read, 1 write, 2 flush, 3 discard.
    pub kind: u32,
    /// Byte offset on the member.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Force unit access.
    pub fua: u8,
    /// Flush the member's cache first.
    pub preflush: u8,
    /// 0 none, 1 the caller's request buffer (`token`, `buf_offset`), 2 machine memory at
    /// `ptr` that stays put until completion (read into or written from), 3 machine memory at
    /// `ptr` to copy before this call's caller returns (written from only).
    pub buf_kind: u8,
    /// Padding.
    pub pad: u8,
    /// Caller's token (buf_kind 1).
    pub token: u64,
    /// Byte offset in the caller's buffer (buf_kind 1).
    pub buf_offset: u64,
    /// Machine memory (buf_kind 2 and 3).
    pub ptr: *mut u8,
}

/// A notice for the C side.
#[repr(C)]
pub struct KEvent {
    /// 1 member failed, 2 sync progress, 3 sync done, 4 dirty, 5 clean, 6 spare rebuilt,
    /// 7 stopped.
    pub kind: u32,
    /// Member index (1, 6).
    pub member: u32,
    /// Sector (2), mismatch_cnt (3).
    pub value: u64,
    /// A line for the kernel log (NUL-terminated; empty when the notice needs none).
    pub text: [u8; 96],
}

/// The array's state for sysfs.
pub struct KStatus {
    /// Mirrors (slots).
    pub raid_disks: u32,
    /// Slots without an in-sync member.
    pub degraded: u32,
    /// 0 0.90, 10 1.0, 11 1.1, 12 1.2.
    pub version: u32,
    /// Array size in 512-byte sectors.
    pub sectors: u64,
    /// Running sync: 0 none, 1 resync, 2 recover, 3 check, 4 repair.
    pub sync_action: u32,
    /// Running sync: sectors done and in total.
    pub sync_done: u64,
    /// Running sync: total sectors.
    pub sync_total: u64,
    /// Running sync: KiB/s.
    pub sync_speed: u64,
    /// md's mismatch_cnt: the running check's count, else the last one's.
    pub mismatch_cnt: u64,
    /// Superblocks dirty.
    pub dirty: u32,
    /// Requests or I/Os in flight, or metadata pending.
    pub busy: u32,
    /// Stop finished.
    pub stopped: u32,
    /// Bitmap chunk (bytes), 0 without bitmap.
    pub bitmap_chunk: u64,
    /// Bitmap location relative to the superblock (sectors, signed).
    pub bitmap_offset: i64,
}

/// One member for sysfs.
pub struct KMember {
    /// 0 in sync, 1 spare, 2 faulty, 3 being rebuilt (spare with progress).
    pub state: u32,
    /// Slot (in sync or being rebuilt), else u32::MAX.
    pub slot: u32,
    /// Write-mostly.
    pub write_mostly: u32,
    /// Corrected read errors (md `errors`).
    pub errors: u64,
}

fn action_num(a: SyncAction) -> u32 {
    match a {
        SyncAction::Resync => 1,
        SyncAction::Recovery => 2,
        SyncAction::Check => 3,
        SyncAction::Repair => 4,
    }
}

/// # Safety
/// `m` is NULL or a live machine from this crate, used by one caller at a time.
unsafe fn km<'a>(m: *mut KMachine) -> Option<&'a mut KMachine> {
    // SAFETY: by the contract.
    unsafe { m.as_mut() }
}

/// Frees a machine (NULL is ignored).
///
/// # Safety
/// `m` is NULL or a machine from assembly/creation, not used again.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_machine_free(m: *mut KMachine) {
    if !m.is_null() {
        // SAFETY: a Box::into_raw pointer, dropped once.
        drop(unsafe { Box::from_raw(m) });
    }
}

/// Submits an array request: `kind` 0 read, 1 write, 2 flush, 3 discard; `sector`/`sectors`
/// in 512-byte units; the request's memory is the caller's `token` from byte 0. The request id
/// goes to `*id`. 0, -EBUSY (pool full: retry after completions), -EINVAL (bad range, stopping),
/// -EROFS (read-only).
///
/// # Safety
/// `m` is a live machine; `id` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_submit(
    m: *mut KMachine,
    kind: u32,
    sector: u64,
    sectors: u64,
    fua: u32,
    token: u64,
    id: *mut u64,
) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    if id.is_null() {
        return -22;
    }
    match submit(k, kind, sector, sectors, fua != 0, token) {
        Ok(r) => {
            // SAFETY: checked non-NULL.
            unsafe { *id = r };
            0
        }
        Err(e) => e,
    }
}

/// md's read fast path in one call: submits a read as [`mdraid_k_submit`] does and, when the
/// machine then holds exactly one output (the read's own member I/O, md's read fast path) and
/// its timer did not move, hands that I/O to `*out` and returns 1: the caller issues it and
/// has nothing to drain. 0: submitted, the caller drains the machine as after
/// `mdraid_k_submit`. Negative: as `mdraid_k_submit` (not submitted).
///
/// # Safety
/// `m` is a live machine; `id` and `out` are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_submit_read(
    m: *mut KMachine,
    sector: u64,
    sectors: u64,
    token: u64,
    id: *mut u64,
    out: *mut KIo,
) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    if id.is_null() || out.is_null() {
        return -22;
    }
    let timer = k.m.poll_timeout();
    let r = match submit(k, 0, sector, sectors, false, token) {
        Ok(r) => r,
        Err(e) => return e,
    };
    // SAFETY: checked non-NULL.
    unsafe { *id = r };
    if k.next_io.is_some() || k.next_event.is_some() {
        return 0;
    }
    let Some(io) = k.m.poll_io() else {
        return 0;
    };
    if !nothing_else(k, timer) {
        k.next_io = Some(io); // handed out by the caller's drain, first
        return 0;
    }
    match kio(k, io) {
        Some(v) => {
            // SAFETY: checked non-NULL.
            unsafe { out.write(v) };
            1
        }
        None => 0, // failed at once: an input for the drain
    }
}

/// Submits to the machine; the request id, or a negative errno.
fn submit(
    k: &mut KMachine,
    kind: u32,
    sector: u64,
    sectors: u64,
    fua: bool,
    token: u64,
) -> Result<u64, i64> {
    let kind = match kind {
        0 => RequestKind::Read,
        1 => RequestKind::Write,
        2 => RequestKind::Flush,
        3 => RequestKind::Discard,
        _ => return Err(-22),
    };
    let req = ArrayRequest {
        kind,
        sector,
        sectors,
        fua,
        buf: BufRef(token),
        buf_offset: 0,
    };
    match k.m.handle_submit(req) {
        Ok(r) => {
            let i = r.index();
            if k.tokens.len() <= i {
                k.tokens.resize(i + 1, None);
            }
            k.tokens[i] = Some((r.raw(), token));
            Ok(r.raw())
        }
        Err(SubmitError::Busy { .. }) => Err(-16),
        Err(_) => Err(-22),
    }
}

/// The next member I/O into `*out`: 1, or 0 when there is none.
///
/// # Safety
/// `m` is a live machine; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_poll_io(m: *mut KMachine, out: *mut KIo) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    if out.is_null() {
        return -22;
    }
    loop {
        let Some(io): Option<Io> = k.next_io.take().or_else(|| k.m.poll_io()) else {
            return 0;
        };
        // (An I/O that failed at once is an input: the machine may have more to hand out.)
        if let Some(v) = kio(k, io) {
            // SAFETY: checked non-NULL.
            unsafe { out.write(v) };
            return 1;
        }
    }
}

/// A member I/O for C; `None` (the I/O failed at once) when its machine memory is missing.
fn kio(k: &mut KMachine, io: Io) -> Option<KIo> {
    let mut v = KIo {
        id: io.id.raw(),
        member: io.member as u32,
        kind: match io.kind {
            IoKind::Read => 0,
            IoKind::Write => 1,
            IoKind::Flush => 2,
            _ => 3,
        },
        offset: io.offset,
        len: io.len,
        fua: u8::from(io.fua),
        preflush: u8::from(io.preflush),
        buf_kind: 0,
        pad: 0,
        token: 0,
        buf_offset: 0,
        ptr: core::ptr::null_mut(),
    };
    let len = usize::try_from(io.len).unwrap_or(usize::MAX);
    match io.buf {
        IoBuffer::None => {}
        IoBuffer::Caller { token, offset } => {
            v.buf_kind = 1;
            v.token = token.0;
            v.buf_offset = offset;
        }
        IoBuffer::Machine { index, offset } => {
            // Scratch buffers (the only ones read into) stay put for the machine's life;
            // metadata images may be rewritten by the next round, so those are copied now.
            let stable = k.m.buffer_mut(index).map(|b| (b.len(), b.as_mut_ptr()));
            let (blen, ptr, kind) = match stable {
                Some((l, p)) => (l, p, 2),
                None => match k.m.buffer(index) {
                    Some(b) => (b.len(), b.as_ptr().cast_mut(), 3),
                    None => (0, core::ptr::null_mut(), 0),
                },
            };
            if kind == 0 || offset.checked_add(len).is_none_or(|e| e > blen) {
                // A machine I/O without its memory is a core bug: fail it, never touch memory.
                let _ = k.m.handle_io_completion(io.id, Err(MemberError::Io(5)));
                return None;
            }
            v.buf_kind = kind;
            // SAFETY: `offset + len <= blen`, within the buffer.
            v.ptr = unsafe { ptr.add(offset) };
        }
    }
    Some(v)
}

/// Reports member I/O `id` done: `err` 0 or a negative errno. 0, or -ENOENT for an unknown id.
///
/// # Safety
/// `m` is a live machine.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_io_complete(m: *mut KMachine, id: u64, err: i32) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    if complete(k, id, err) {
        0
    } else {
        -2
    }
}

/// Feeds member I/O `id`'s outcome (C's 0 or negative errno) to the machine; `false` for an
/// unknown id.
fn complete(k: &mut KMachine, id: u64, err: i32) -> bool {
    let r = if err == 0 {
        Ok(())
    } else {
        Err(MemberError::Io(err.saturating_neg()))
    };
    k.m.handle_io_completion(mdraid::array::machine::IoId::from_raw(id), r)
        .is_ok()
}

/// [`mdraid_k_io_complete`] and the request it finished, in one call (md's read fast path:
/// a read's one member I/O succeeded). -ENOENT for an unknown id; 0: nothing finished, the
/// caller drains the machine; 1: the request of token `*tok` finished with `*err` (0 or
/// -EIO) and the machine has nothing else to hand out and its timer did not move: the caller
/// ends it and is done; 2: the same, and the caller drains the machine too.
///
/// # Safety
/// `m` is a live machine; `tok`, `err` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_io_complete_one(
    m: *mut KMachine,
    id: u64,
    err: i32,
    tok: *mut u64,
    rerr: *mut i32,
) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    if tok.is_null() || rerr.is_null() {
        return -22;
    }
    let timer = k.m.poll_timeout();
    if !complete(k, id, err) {
        return -2;
    }
    let Some((t, e)) = next_completion(k) else {
        return 0;
    };
    // SAFETY: checked non-NULL.
    unsafe {
        *tok = t;
        *rerr = e;
    }
    if nothing_else(k, timer) {
        1
    } else {
        2
    }
}

/// The fast path's test after taking its one output: nothing else to hand out (here or in the
/// machine) and the timer where it was (`timer`, read before the input).
fn nothing_else(k: &KMachine, timer: Option<u64>) -> bool {
    k.next_io.is_none() && k.next_event.is_none() && k.m.is_drained() && k.m.poll_timeout() == timer
}

/// The next finished array request: its token (as given to [`mdraid_k_submit`]) to `*id`,
/// 0 or -EIO to `*err`; returns 1, or 0.
///
/// # Safety
/// `m` is a live machine; `id`, `err` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_poll_completion(
    m: *mut KMachine,
    id: *mut u64,
    err: *mut i32,
) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    if id.is_null() || err.is_null() {
        return -22;
    }
    match next_completion(k) {
        Some((token, e)) => {
            // SAFETY: checked non-NULL.
            unsafe {
                *id = token;
                *err = e;
            }
            1
        }
        None => 0,
    }
}

/// The next finished request we submitted: (token, 0 or -EIO).
fn next_completion(k: &mut KMachine) -> Option<(u64, i32)> {
    while let Some((r, res)) = k.m.poll_completion() {
        // A request we never submitted has no token: nothing for the C side to end.
        let token = k.tokens.get_mut(r.index()).and_then(|t| match *t {
            Some((raw, tok)) if raw == r.raw() => {
                *t = None;
                Some(tok)
            }
            _ => None,
        });
        if let Some(token) = token {
            return Some((token, if res.is_ok() { 0 } else { -5 }));
        }
    }
    None
}

/// Whether the machine has a member I/O or a notice to hand out (for a completion path that
/// only ends requests and leaves the rest to a worker): 1, or 0.
///
/// # Safety
/// `m` is a live machine.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_pending(m: *mut KMachine) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return 0;
    };
    if k.next_io.is_none() {
        k.next_io = k.m.poll_io();
    }
    if k.next_event.is_none() {
        k.next_event = k.m.poll_event();
    }
    i64::from(k.next_io.is_some() || k.next_event.is_some())
}

/// The next notice into `*out`: 1, or 0.
///
/// # Safety
/// `m` is a live machine; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_poll_event(m: *mut KMachine, out: *mut KEvent) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    if out.is_null() {
        return -22;
    }
    let Some(n) = k.next_event.take().or_else(|| k.m.poll_event()) else {
        return 0;
    };
    let (kind, member, value) = match n {
        Notice::MemberFailed { member } => (1, member as u32, 0),
        Notice::SyncProgress { sector, .. } => (2, 0, sector),
        Notice::SyncDone(r) => {
            k.last = Some((r.action, r.mismatch_cnt));
            if r.action == SyncAction::Resync && !r.interrupted {
                k.resync_owed = false;
            }
            (3, action_num(r.action), r.mismatch_cnt)
        }
        Notice::Dirty => (4, 0, 0),
        Notice::Clean => (5, 0, 0),
        Notice::SpareRebuilt { member, slot } => (6, member as u32, u64::from(slot)),
        Notice::Stopped => (7, 0, 0),
        _ => (0, 0, 0),
    };
    let mut text = [0u8; 96];
    let name = |i: u32| {
        k.m.members()
            .get(i as usize)
            .map_or("?", |x| x.name.as_str())
    };
    // SAFETY: a local buffer of 96 bytes.
    let mut w = unsafe { crate::array::CBuf::new(text.as_mut_ptr(), text.len()) };
    let _ = match kind {
        1 => write!(
            w,
            "member {} failed, array continues on the others",
            name(member)
        ),
        3 => write!(
            w,
            "{} done, mismatch_cnt {value}",
            crate::attrs::action_name(member)
        ),
        6 => write!(w, "{} rebuilt into slot {value}", name(member)),
        _ => Ok(()),
    };
    // SAFETY: checked non-NULL.
    unsafe {
        out.write(KEvent {
            kind,
            member,
            value,
            text,
        })
    };
    1
}

/// When to call [`mdraid_k_handle_timeout`] next (monotonic ns) to `*at`: 1, or 0 for never.
///
/// # Safety
/// `m` is a live machine; `at` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_poll_timeout(m: *mut KMachine, at: *mut u64) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    if at.is_null() {
        return -22;
    }
    match k.m.poll_timeout() {
        Some(t) => {
            // SAFETY: checked non-NULL.
            unsafe { *at = t };
            1
        }
        None => 0,
    }
}

/// Time passed.
///
/// # Safety
/// `m` is a live machine.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_handle_timeout(m: *mut KMachine, mono_ns: u64, wall_secs: u64) {
    // SAFETY: by contract.
    if let Some(k) = unsafe { km(m) } {
        k.m.handle_timeout(Now { mono_ns, wall_secs });
    }
}

/// Commands: 1 start sync (`arg` 1 resync, 2 recover, 3 check, 4 repair), 2 stop sync
/// (md's `idle`, or with `arg` 1 `frozen`: [`mdraid::array::machine::Machine::stop_sync`]),
/// 3 fail member `arg`, 4 remove member `arg`, 5 stop, 6 speed limits (`arg` = min KiB/s
/// << 32 | max KiB/s), 7 start the owed resync if any, 8 quiesce for a hot add (a running
/// sync action is interrupted, as md's quiesce does; an interrupted resync stays owed), 9
/// md's recovery check once the hot add is done (an interrupted resync resumes; a recovery
/// the new device allows starts first). 0 or a negative errno (EBUSY refused
/// now, EINVAL bad argument, ENODEV no such member).
///
/// # Safety
/// `m` is a live machine.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_cmd(m: *mut KMachine, cmd: u32, arg: u64) -> i64 {
    // SAFETY: by contract.
    let Some(k) = (unsafe { km(m) }) else {
        return -22;
    };
    command(k, cmd, arg)
}

/// [`mdraid_k_cmd`] on a machine.
pub(crate) fn command(k: &mut KMachine, cmd: u32, arg: u64) -> i64 {
    use mdraid::array::machine::MachineError as E;
    let idx = usize::try_from(arg).unwrap_or(usize::MAX);
    let r = match cmd {
        1 => {
            let a = match arg {
                1 => SyncAction::Resync,
                2 => SyncAction::Recovery,
                3 => SyncAction::Check,
                4 => SyncAction::Repair,
                _ => return -22,
            };
            let r = k.m.start_sync(a);
            if r.is_ok() && a == SyncAction::Resync {
                k.resync_owed = false;
            }
            r
        }
        2 => {
            k.m.stop_sync(arg == 1);
            Ok(())
        }
        3 => k.m.fail_member(idx),
        4 => k.m.remove_member(idx).map(|_| ()),
        5 => {
            k.m.stop();
            Ok(())
        }
        6 => k.m.set_speed_limits(arg >> 32, arg & 0xffff_ffff),
        7 => {
            if k.resync_owed && k.m.needs_resync() {
                let r = k.m.start_sync(SyncAction::Resync);
                if r.is_ok() {
                    k.resync_owed = false;
                }
                r
            } else {
                Ok(())
            }
        }
        8 => {
            if let Some(s) = k.m.engine().sync_status() {
                k.resync_owed |= s.action == SyncAction::Resync;
                // Refused only when no sync runs.
                let _ = k.m.abort_sync();
            }
            Ok(())
        }
        9 => {
            k.m.request_sync_check();
            Ok(())
        }
        _ => return -22,
    };
    match r {
        Ok(()) => 0,
        Err(E::NoSuchMember(_)) => -19,
        Err(E::Refused(_)) => -16,
        Err(_) => -16,
    }
}

/// The array's size in sectors to `*sectors`; returns bit 0 busy (requests, member I/O, a
/// sync action or metadata pending), bit 1 stopped.
///
/// # Safety
/// `m` is a live machine; `sectors` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_state(m: *const KMachine, sectors: *mut u64) -> i64 {
    // SAFETY: by contract (read-only use).
    let (Some(k), false) = (unsafe { m.as_ref() }, sectors.is_null()) else {
        return -22;
    };
    // SAFETY: checked non-NULL.
    unsafe { *sectors = k.m.engine().array_sectors() };
    i64::from(k.m.is_busy()) | i64::from(k.m.is_stopped()) << 1
}

/// The array's state.
pub(crate) fn status(k: &KMachine) -> KStatus {
    let mm = &k.m;
    let members = mm.members();
    let lead = members
        .iter()
        .find(|x| matches!(x.state, MemberState::InSync(_)))
        .or(members.first());
    let raid_disks = lead.map_or(0, |l| l.sb.raid_disks());
    let in_sync = members
        .iter()
        .filter(|x| matches!(x.state, MemberState::InSync(_)))
        .count() as u32;
    let sync = mm.sync_status();
    let (version, bitmap_offset) = match lead.map(|l| &l.sb) {
        Some(sb @ Superblock::V1(s, _)) => (
            match sb.version() {
                mdraid::format::MetadataVersion::V1_0 => 10,
                mdraid::format::MetadataVersion::V1_1 => 11,
                _ => 12,
            },
            i64::from(s.bitmap_offset),
        ),
        Some(_) => (0, 8),
        None => (12, 0),
    };
    KStatus {
        raid_disks,
        degraded: raid_disks.saturating_sub(in_sync),
        version,
        sectors: mm.engine().array_sectors(),
        sync_action: if mm.engine().sync_frozen() {
            5
        } else {
            sync.map_or(0, |s| action_num(s.action))
        },
        sync_done: sync.map_or(0, |s| s.done_sectors),
        sync_total: sync.map_or(0, |s| s.total_sectors),
        sync_speed: sync.map_or(0, |s| s.rate_kib_s),
        mismatch_cnt: match sync {
            Some(s) => s.mismatch_cnt,
            // The machine's record first: it is set before the end's notice reaches us.
            None => mm
                .last_sync()
                .map(|r| r.mismatch_cnt)
                .or(k.last.map(|l| l.1))
                .unwrap_or(0),
        },
        dirty: u32::from(mm.is_dirty()),
        busy: u32::from(mm.is_busy()),
        stopped: u32::from(mm.is_stopped()),
        bitmap_chunk: mm
            .bitmap()
            .and_then(|b| b.bitmap.header.chunk_sectors())
            .map_or(0, |c| c * 512),
        bitmap_offset: if mm.bitmap().is_some() {
            bitmap_offset
        } else {
            0
        },
    }
}

/// Member `i`'s state, `None` past the last member.
pub(crate) fn member(k: &KMachine, i: usize) -> Option<KMember> {
    let x = k.m.members().get(i)?;
    let (state, slot) = match (x.state, x.rebuild) {
        (MemberState::InSync(s), _) => (0, s),
        (MemberState::Spare, Some((s, _))) => (3, s),
        (MemberState::Spare, None) => (1, u32::MAX),
        (MemberState::Faulty, _) => (2, u32::MAX),
    };
    let (write_mostly, sb_errors) = match &x.sb {
        Superblock::V1(s, _) => (
            u32::from(s.devflags & mdraid::format::sb1::DEVFLAG_WRITE_MOSTLY != 0),
            u64::from(s.cnt_corrected_read),
        ),
        Superblock::V0(_) => (0, 0),
    };
    // In-sync members sit at engine position = slot.
    let live = match x.state {
        MemberState::InSync(s) => {
            k.m.engine()
                .member_counters(s as usize)
                .map_or(0, |c| c.corrected)
        }
        _ => 0,
    };
    Some(KMember {
        state,
        slot,
        write_mostly,
        errors: sb_errors.max(live),
    })
}
