//! The machine driver: one small loop that only moves bytes.
//!
//! Under the array's lock: feed an input to the [`Machine`], then drain `poll_io` into a work
//! list (resolving each I/O's memory: the caller's buffer, or a bounce copy of a
//! machine-owned buffer), `poll_completion` into waiters / completion callbacks, and
//! `poll_event`. Outside the lock: carry out the work — synchronous members (files, sync
//! callbacks) right here, asynchronous members by calling their callback with a token — then
//! feed the synchronous results back and repeat; finally call the completion callbacks. No
//! member callback and no completion callback ever runs with the lock held, so callbacks may
//! call back into the library (complete inline, submit more).
//!
//! A read on a healthy array is a direct read (`Machine::submit_read`: md's fast path, its
//! one member read handed straight back at submission, its completion finishing the read
//! there and then): one lock round trip for the submit and one for the completion, no pass
//! over the machine's queues unless a timer is due or the completion let other work go, the
//! completion callback called directly. Other requests' slots are found by index
//! (`ReqId::index`), and work lists keep their first entry inline, so neither path touches
//! the heap or the pool.

use crate::array::{ArrayObj, Form, Req, St};
use crate::clock;
use crate::error::*;
use crate::member::{dev_err, mdraid_io_token, Dev, DevInner, MDRAID_IO_FUA, MDRAID_IO_PREFLUSH};
use md::array::machine::{BufIdx, Io, IoBuffer, IoId, IoKind, Notice};
use md::device::IoOp;
use md::raid1::MemberError;
use md::raid1::{DirectDone, ReqId};
use std::ffi::{c_int, c_void};
use std::sync::Arc;

/// Called once when an array request submitted with `mdraid_array_submit` finishes:
/// `MDRAID_OK`, or `MDRAID_IO_ERROR` when no mirror could serve it. Runs on the thread whose
/// call finished it (see the header's THREADS section).
pub type mdraid_complete_fn = Option<extern "C" fn(user_data: *mut c_void, result: mdraid_result)>;

/// A machine-owned buffer's copy handed to a member I/O.
pub(crate) struct Bounce {
    pub buf: Vec<u8>,
    /// For a read: where the bytes go when it completes.
    pub read_into: Option<(BufIdx, usize)>,
}

/// One member I/O to carry out.
pub(crate) struct IoCall {
    dev: Arc<DevInner>,
    id: u64,
    kind: IoKind,
    offset: u64,
    len: usize,
    ptr: usize,
    flags: u32,
}

/// A list whose first entry lives inline: the common pass (one member I/O, one completion)
/// touches neither the heap nor the per-thread pool; longer lists spill into a vector taken
/// from the pool, so the I/O path does not allocate once warm.
pub(crate) struct List<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> List<T> {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }
    /// Appends (after everything already in the list, which is drained whole).
    #[inline]
    fn push(&mut self, v: T, spill: impl FnOnce(&mut Vec<T>)) {
        if self.is_empty() {
            self.first = Some(v);
        } else {
            if self.rest.capacity() == 0 {
                spill(&mut self.rest);
            }
            self.rest.push(v);
        }
    }
    /// Takes every entry, first to last; the spill vector keeps its capacity.
    #[inline]
    fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
    }
}

/// Work found under the lock, done outside it.
#[derive(Default)]
pub(crate) struct Work {
    ios: List<IoCall>,
    done: List<(mdraid_complete_fn, usize, mdraid_result)>,
    results: List<(u64, c_int)>,
}

impl<T> List<T> {
    /// Disposes of a list that holds nothing and no memory without running drop glue (the
    /// I/O path makes and ends lists on every call); anything else is dropped normally.
    #[inline]
    fn dispose(self) {
        if self.first.is_none() && self.rest.capacity() == 0 {
            // Nothing to free: an empty `Option` and a `Vec` without an allocation.
            std::mem::forget(self);
        }
    }
}

impl Work {
    /// Ends a `Work` whose contents were carried out: free of drop glue when it never
    /// spilled (the common case), else its vectors go back to the pool.
    #[inline]
    pub(crate) fn dispose(self) {
        if self.is_empty()
            && self.ios.rest.capacity() == 0
            && self.done.rest.capacity() == 0
            && self.results.rest.capacity() == 0
        {
            std::mem::forget(self);
        }
    }

    /// Nothing to call out to.
    pub(crate) fn is_empty(&self) -> bool {
        self.ios.is_empty() && self.done.is_empty() && self.results.is_empty()
    }
    #[inline]
    fn push_io(&mut self, c: IoCall) {
        self.ios
            .push(c, |v| *v = pooled(|p| std::mem::take(&mut p.0)));
    }
    #[inline]
    pub(crate) fn push_done(&mut self, d: (mdraid_complete_fn, usize, mdraid_result)) {
        self.done
            .push(d, |v| *v = pooled(|p| std::mem::take(&mut p.1)));
    }
}

type Vecs = (
    Vec<IoCall>,
    Vec<(mdraid_complete_fn, usize, mdraid_result)>,
    Vec<(u64, c_int)>,
);

/// Nesting of `run` on this thread (see [`ArrayObj::run`]).
const MAX_DEPTH: u32 = 4;

/// The per-thread driver state, one thread-local (each access to one costs a call in a
/// shared library).
#[derive(Default)]
struct Local {
    depth: std::cell::Cell<u32>,
    deferred: std::cell::RefCell<Vec<(u64, Work)>>,
    /// Set when work is deferred (the outermost call's check, without the `RefCell`).
    any_deferred: std::cell::Cell<bool>,
    pool: std::cell::RefCell<Vec<Vecs>>,
}

thread_local! {
    static LOCAL: Local = Local::default();
}

/// Runs `f` one nesting level deeper on this thread; at the outermost level, then the work
/// nested calls deferred.
fn deeper<R>(l: &Local, f: impl FnOnce() -> R) -> R {
    let depth = l.depth.get();
    l.depth.set(depth + 1);
    let r = f();
    if depth == 0 {
        run_deferred(l);
    }
    l.depth.set(depth);
    r
}

/// Runs the work deferred on this thread by nested calls (see [`ArrayObj::run`]), from the
/// outermost one.
fn run_deferred(l: &Local) {
    if !l.any_deferred.get() {
        return;
    }
    l.any_deferred.set(false);
    loop {
        let next = l.deferred.borrow_mut().pop();
        let Some((owner, mut w)) = next else { break };
        // The array may have been freed meanwhile: its work goes with it.
        if let Some(a) = crate::handle::array_of(owner) {
            a.run_now(&mut w);
        }
    }
}

/// A spill vector from the pool (empty when the pool has none).
fn pooled<T>(take: impl FnOnce(&mut Vecs) -> Vec<T>) -> Vec<T> {
    LOCAL
        .try_with(|l| {
            let mut p = l.pool.try_borrow_mut().ok()?;
            let v = p.last_mut().map(take);
            if p.last()
                .is_some_and(|t| t.0.capacity() == 0 && t.1.capacity() == 0 && t.2.capacity() == 0)
            {
                p.pop();
            }
            v
        })
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl Drop for Work {
    #[inline]
    fn drop(&mut self) {
        if self.ios.rest.capacity() == 0
            && self.done.rest.capacity() == 0
            && self.results.rest.capacity() == 0
        {
            return;
        }
        let mut v = (
            std::mem::take(&mut self.ios.rest),
            std::mem::take(&mut self.done.rest),
            std::mem::take(&mut self.results.rest),
        );
        v.0.clear();
        v.1.clear();
        v.2.clear();
        let _ = LOCAL.try_with(|l| {
            if let Ok(mut p) = l.pool.try_borrow_mut() {
                if p.len() < 8 {
                    p.push(v);
                }
            }
        });
    }
}

/// Drains the machine's outputs into `w`. Returns whether a waiter may have something new.
pub(crate) fn pump(st: &mut St, w: &mut Work) -> bool {
    let St {
        form,
        reqs,
        free,
        by_id,
        bounces,
        pool,
        failures,
        timer_checked,
        ..
    } = st;
    let Form::Running { m, devs } = form else {
        return false;
    };
    let mut notify = false;
    // Timers: looked at once per tick of the coarse clock (a few ms; md's timers are 200 ms
    // and more). The coarse clock lags the precise one by at most a tick: a timer fires a
    // few ms late at worst, never early.
    if let Some(t) = m.poll_timeout() {
        let coarse = clock::coarse_ns();
        if coarse != *timer_checked {
            *timer_checked = coarse;
            if coarse >= t {
                m.handle_timeout(clock::now());
            }
        }
    }
    // One pass suffices: polling completions and events hands out no new I/O. The common
    // pass has one output (a read's member I/O, or its completion): once the machine is
    // drained, the remaining polls are skipped.
    'pass: {
        while let Some(io) = m.poll_io() {
            let Some(dev) = devs.get(io.member).map(|d| d.inner.clone()) else {
                let _ = m.handle_io_completion(io.id, Err(MemberError::Io(19)));
                continue;
            };
            let Ok(len) = usize::try_from(io.len) else {
                let _ = m.handle_io_completion(io.id, Err(MemberError::Io(22)));
                continue;
            };
            let ptr = match io.buf {
                IoBuffer::None => 0,
                IoBuffer::Caller { token, offset } => {
                    match caller_ptr(reqs, token.0, offset, io.len) {
                        Some(p) => p,
                        None => {
                            let _ = m.handle_io_completion(io.id, Err(MemberError::Io(22)));
                            continue;
                        }
                    }
                }
                IoBuffer::Machine { index, offset } => {
                    let mut b = pool.pop().unwrap_or_default();
                    b.clear();
                    b.resize(len, 0);
                    let read_into = if io.kind == IoKind::Read {
                        Some((index, offset))
                    } else {
                        match m.buffer(index).and_then(|s| s.get(offset..offset + len)) {
                            Some(s) => b.copy_from_slice(s),
                            None => {
                                pool.push(b);
                                let _ = m.handle_io_completion(io.id, Err(MemberError::Io(22)));
                                continue;
                            }
                        }
                        None
                    };
                    let p = b.as_mut_ptr() as usize;
                    bounces.insert(io.id.raw(), Bounce { buf: b, read_into });
                    p
                }
            };
            let mut flags = 0;
            if io.fua {
                flags |= MDRAID_IO_FUA;
            }
            if io.preflush {
                flags |= MDRAID_IO_PREFLUSH;
            }
            w.push_io(IoCall {
                dev,
                id: io.id.raw(),
                kind: io.kind,
                offset: io.offset,
                len,
                ptr,
                flags,
            });
            if m.is_drained() {
                break 'pass;
            }
        }
        while let Some((rid, res)) = m.poll_completion() {
            let Some(slot) = by_id
                .get_mut(rid.index())
                .and_then(|e| e.take_if(|e| e.0 == rid.raw()))
                .map(|e| e.1)
            else {
                continue;
            };
            let code = match res {
                Ok(()) => MDRAID_OK,
                Err(_) => MDRAID_IO_ERROR,
            };
            let Some(r) = reqs.get_mut(slot).and_then(|r| r.as_mut()) else {
                continue;
            };
            if r.waiter {
                r.done = Some(code);
                notify = true;
            } else if let Some(r) = reqs[slot].take() {
                free.push(slot);
                w.push_done((r.cb, r.user, code));
            }
            if m.is_drained() {
                break 'pass;
            }
        }
        while let Some(n) = m.poll_event() {
            notify = true;
            if let Notice::MemberFailed { .. } = n {
                *failures += 1;
            }
        }
    }
    notify
}

/// Where `len` bytes at `offset` of request slot `slot`'s caller buffer start, if they lie
/// within it.
#[inline]
fn caller_ptr(reqs: &[Option<Req>], slot: u64, offset: u64, len: u64) -> Option<usize> {
    let r = reqs.get(usize::try_from(slot).ok()?)?.as_ref()?;
    (offset.checked_add(len)? <= r.len as u64).then(|| r.ptr + offset as usize)
}

/// Records that the machine's request `rid` is request slot `slot` (its completion comes
/// through `poll_completion`).
#[inline]
pub(crate) fn register(st: &mut St, rid: ReqId, slot: usize) {
    let i = rid.index();
    if st.by_id.len() <= i {
        st.by_id.resize(i + 1, None);
    }
    st.by_id[i] = Some((rid.raw(), slot));
}

/// A member callback's errno-style result as the machine takes it (a negative errno is
/// taken as its magnitude).
fn member_result(rc: c_int) -> Result<(), MemberError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(MemberError::Io(rc.checked_abs().unwrap_or(5).max(1)))
    }
}

/// Whether a pass of [`pump`] would look at the timers now: one is armed and the coarse
/// clock moved since they were last looked at.
#[inline]
pub(crate) fn timers_to_check(st: &St) -> bool {
    matches!(&st.form, Form::Running { m, .. } if m.poll_timeout().is_some())
        && clock::coarse_ns() != st.timer_checked
}

/// What feeding a direct read's outcome left to do (see [`direct_done_locked`]).
pub(crate) struct DirectEnd {
    /// A finished async read's completion callback, to call once the lock is dropped.
    pub done: Option<(mdraid_complete_fn, usize, mdraid_result)>,
    /// The machine has work for a [`pump`] pass (what the completion let go, a read going
    /// on as an ordinary request).
    pub pump: bool,
}

/// Feeds a direct read's outcome to the machine (under the lock). A finished read's slot is
/// released and its completion callback returned (a blocking read's waiter is told
/// instead); a read whose member failed goes on as an ordinary request, registered for the
/// pump pass the result asks for.
pub(crate) fn direct_done_locked(st: &mut St, id: u64, rc: c_int) -> FfiResult<DirectEnd> {
    let Form::Running { m, .. } = &mut st.form else {
        return Err(Fail::new(MDRAID_UNKNOWN_TOKEN, "the array is not running"));
    };
    let res = member_result(rc);
    let done = m
        .complete_direct_read(IoId::from_raw(id), res)
        .map_err(|e| Fail::new(MDRAID_UNKNOWN_TOKEN, e.to_string()))?;
    let more = !m.is_drained();
    let mut out = None;
    match done {
        DirectDone::Finished(buf, r) => {
            let slot = buf.0 as usize;
            let code = if r.is_ok() {
                MDRAID_OK
            } else {
                MDRAID_IO_ERROR
            };
            if let Some(req) = st.reqs.get_mut(slot).and_then(|r| r.as_mut()) {
                if req.waiter {
                    req.done = Some(code);
                } else if let Some(req) = st.reqs[slot].take() {
                    st.free.push(slot);
                    out = Some((req.cb, req.user, code));
                }
            }
        }
        DirectDone::Continues(rid, buf) => register(st, rid, buf.0 as usize),
    }
    // (Timers are looked at by submissions and ticks, not here: the next read's submission
    // is no later than this one's completion callback.)
    let pump = more || matches!(done, DirectDone::Continues(..));
    Ok(DirectEnd { done: out, pump })
}

/// Feeds one member I/O's outcome to the machine (under the lock).
/// `Ok(true)`: a direct read finished, which a waiter (a blocking read, a stop) may want to
/// hear of.
pub(crate) fn complete_locked(st: &mut St, id: u64, rc: c_int, w: &mut Work) -> FfiResult<bool> {
    if IoId::from_raw(id).is_direct_read() {
        // (The caller's pump pass follows.)
        if let Some(d) = direct_done_locked(st, id, rc)?.done {
            w.push_done(d);
        }
        return Ok(true);
    }
    let Form::Running { m, .. } = &mut st.form else {
        return Err(Fail::new(MDRAID_UNKNOWN_TOKEN, "the array is not running"));
    };
    let res = member_result(rc);
    let bounce = if st.bounces.is_empty() {
        None
    } else {
        st.bounces.remove(&id)
    };
    if let Some(b) = &bounce {
        if res.is_ok() {
            if let Some((idx, off)) = b.read_into {
                if let Some(dst) = m
                    .buffer_mut(idx)
                    .and_then(|s| s.get_mut(off..off + b.buf.len()))
                {
                    dst.copy_from_slice(&b.buf);
                }
            }
        }
    }
    let r = m.handle_io_completion(IoId::from_raw(id), res);
    if let Some(b) = bounce {
        st.pool.push(b.buf);
    }
    r.map(|()| false)
        .map_err(|e| Fail::new(MDRAID_UNKNOWN_TOKEN, e.to_string()))
}

impl IoCall {
    /// A direct read's member I/O on the buffer of its request (`slot`: `len` bytes at
    /// `ptr`); `None` if the device or the buffer range is not that request's (never, for
    /// an I/O the machine handed out).
    pub(crate) fn direct(
        devs: &[Dev],
        io: &Io,
        slot: usize,
        ptr: usize,
        len: usize,
    ) -> Option<IoCall> {
        let IoBuffer::Caller { token, offset } = io.buf else {
            return None;
        };
        if token.0 != slot as u64 {
            return None;
        }
        let n = usize::try_from(io.len).ok()?;
        let offset = usize::try_from(offset).ok()?;
        if offset.checked_add(n)? > len {
            return None;
        }
        Some(IoCall {
            dev: devs.get(io.member)?.inner.clone(),
            id: io.id.raw(),
            kind: io.kind,
            offset: io.offset,
            len: n,
            ptr: ptr + offset,
            flags: 0,
        })
    }

    /// Carries out a synchronous member's I/O here and now; returns 0 or an errno.
    fn perform_sync(&self) -> c_int {
        let r = match self.kind {
            IoKind::Read if self.ptr != 0 => {
                // SAFETY: `ptr` is a caller buffer range checked against the request's length
                // (alive until the request completes, which needs this I/O) or a bounce buffer
                // owned by the array until this I/O completes; no other I/O in flight touches
                // these bytes (the engine never overlaps member reads into one buffer range).
                let b = unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut u8, self.len) };
                self.dev.read(self.offset, b)
            }
            IoKind::Write if self.ptr != 0 => {
                // SAFETY: as above; writes only read the memory.
                let b = unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) };
                self.dev.write(self.offset, b, self.flags)
            }
            IoKind::Flush => self.dev.flush(),
            IoKind::Discard => self.dev.discard(self.offset, self.len as u64),
            _ => Err(dev_err(IoOp::Read, self.offset, 22)),
        };
        match r {
            Ok(()) => 0,
            Err(e) => e.errno().unwrap_or(5),
        }
    }

    /// Starts an asynchronous member's I/O; returns 0 (started) or an errno (not started).
    fn start_async(&self, owner: u64) -> c_int {
        let Some(cb) = self.dev.callbacks() else {
            return 22;
        };
        let token = mdraid_io_token { owner, id: self.id };
        match self.kind {
            IoKind::Read if self.ptr != 0 => match cb.read {
                Some(f) => f(cb.ctx, self.offset, self.ptr as *mut u8, self.len, token),
                None => 95,
            },
            IoKind::Write if self.ptr != 0 => match cb.write {
                Some(f) => f(
                    cb.ctx,
                    self.offset,
                    self.ptr as *const u8,
                    self.len,
                    self.flags,
                    token,
                ),
                None => 95,
            },
            IoKind::Flush => match cb.flush {
                Some(f) => f(cb.ctx, token),
                None => 95,
            },
            IoKind::Discard => match cb.discard {
                Some(f) => f(cb.ctx, self.offset, self.len as u64, token),
                // No discard callback: done at once (reported as completed below).
                None => i32::MIN,
            },
            _ => 22,
        }
    }
}

impl ArrayObj {
    /// Does `w` outside the lock until nothing is left, then calls the completion callbacks.
    pub(crate) fn run(&self, w: &mut Work) {
        if w.ios.is_empty() && w.done.is_empty() {
            return;
        }
        // A callback that completes its I/O inline re-enters the library, which hands out the
        // next I/O to the same callback, and so on: past a small depth the work is deferred
        // to the outermost call on this thread, so a long chain (a sync action over members
        // that complete inline) runs in a loop instead of growing the stack.
        let ran = LOCAL.try_with(|l| {
            let depth = l.depth.get();
            if depth >= MAX_DEPTH {
                l.deferred
                    .borrow_mut()
                    .push((self.owner(), std::mem::take(w)));
                l.any_deferred.set(true);
                return;
            }
            deeper(l, || {
                if !self.run_one(w) {
                    self.run_now(w);
                }
            });
        });
        // (Thread teardown: no thread-local state left; run it here.)
        if ran.is_err() {
            self.run_now(w);
        }
    }

    /// The I/O path's common pass without [`Self::run_now`]'s loop: one asynchronous member
    /// I/O to start and nothing else, or one completion callback and nothing else. `true`
    /// when that was all; `false` leaves `w` (with the outcome of a member I/O that did not
    /// start already fed back) to `run_now`.
    #[inline]
    fn run_one(&self, w: &mut Work) -> bool {
        if !w.ios.rest.is_empty() || !w.done.rest.is_empty() || !w.results.is_empty() {
            return false;
        }
        match (&w.ios.first, &w.done.first) {
            (Some(c), None) if c.dev.is_async() => {
                let Some(c) = w.ios.first.take() else {
                    return false;
                };
                let rc = match c.start_async(self.owner()) {
                    0 => return true,
                    i32::MIN => 0,
                    rc => rc,
                };
                let mut st = self.lock();
                let direct = complete_locked(&mut st, c.id, rc, w).unwrap_or(false);
                let notify = pump(&mut st, w);
                self.notify(&st, notify || direct);
                false
            }
            (None, Some(_)) => {
                if let Some((Some(f), user, code)) = w.done.first.take() {
                    f(user as *mut c_void, code);
                }
                true
            }
            _ => false,
        }
    }

    fn run_now(&self, w: &mut Work) {
        let owner = self.owner();
        let mut ios = List::default();
        loop {
            std::mem::swap(&mut ios, &mut w.ios);
            if ios.is_empty() {
                break;
            }
            for c in ios.drain() {
                let r = if c.dev.is_async() {
                    match c.start_async(owner) {
                        0 => continue,
                        i32::MIN => 0,
                        rc => rc,
                    }
                } else {
                    c.perform_sync()
                };
                let v = (c.id, r);
                w.results
                    .push(v, |v| *v = pooled(|p| std::mem::take(&mut p.2)));
            }
            // `ios` is empty again (drained): swapped back into `w` next round, its spill
            // vector kept.
            if !w.results.is_empty() {
                let mut st = self.lock();
                let mut results = std::mem::take(&mut w.results);
                let mut direct = false;
                for (id, rc) in results.drain() {
                    direct |= complete_locked(&mut st, id, rc, w).unwrap_or(false);
                }
                w.results = results;
                let notify = pump(&mut st, w);
                self.notify(&st, notify || direct);
            }
        }
        if w.ios.rest.capacity() < ios.rest.capacity() {
            std::mem::swap(&mut ios, &mut w.ios);
        }
        ios.dispose();
        // A completion that submits again takes another `Work`.
        for (cb, user, code) in w.done.drain() {
            if let Some(f) = cb {
                f(user as *mut c_void, code);
            }
        }
    }

    /// Carries out a direct read's member I/O (no lock held): an asynchronous member's is
    /// started (its completion comes through `mdraid_member_io_complete`), a synchronous
    /// member's done here and reported.
    pub(crate) fn run_direct(&self, c: IoCall) {
        if c.dev.is_async() {
            // The common case, without a work list: started right here under `run`'s depth
            // limit (a chain of reads each completed inline in its member callback and
            // submitting the next nests through here).
            let started = LOCAL
                .try_with(|l| {
                    if l.depth.get() >= MAX_DEPTH {
                        return None;
                    }
                    Some(deeper(l, || c.start_async(self.owner())))
                })
                .ok()
                .flatten();
            match started {
                Some(0) => return,
                Some(rc) => {
                    // Not started: its outcome goes in now (the read goes on from another
                    // mirror, or ends).
                    let _ = self.complete_io(c.id, if rc == i32::MIN { 0 } else { rc });
                    return;
                }
                // Too deep (or the thread's teardown): `run` defers it.
                None => {}
            }
        }
        // Through `run`: its depth limit keeps a chain of inline completions that submit
        // again (synchronous members) from growing the stack.
        let mut w = Work::default();
        w.push_io(c);
        self.run(&mut w);
        w.dispose();
    }

    /// `mdraid_member_io_complete` for one of this array's I/Os.
    pub(crate) fn complete_io(&self, id: u64, rc: c_int) -> FfiResult {
        if IoId::from_raw(id).is_direct_read() {
            // A direct read: one lock round trip, the completion callback called directly,
            // a pump pass only when the machine has something for it.
            let (done, more) = {
                let mut st = self.lock();
                let d = direct_done_locked(&mut st, id, rc)?;
                let mut more = None;
                if d.pump {
                    let mut w = Work::default();
                    pump(&mut st, &mut w);
                    more = Some(w);
                }
                // A stop or quiesce may wait for this read.
                self.notify(&st, true);
                (d.done, more)
            };
            if let Some(mut w) = more {
                self.run(&mut w);
                w.dispose();
            }
            if let Some((Some(f), user, code)) = done {
                f(user as *mut c_void, code);
            }
            return Ok(());
        }
        let mut w = Work::default();
        {
            let mut st = self.lock();
            complete_locked(&mut st, id, rc, &mut w)?;
            let notify = pump(&mut st, &mut w);
            self.notify(&st, notify);
        }
        self.run(&mut w);
        w.dispose();
        Ok(())
    }
}
