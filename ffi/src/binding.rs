//! Arrays bound to one thread (`mdraid_array_bind_thread`): an SPDK- or QEMU-style reactor
//! that drives an array from one thread gets an I/O path without the array's lock.
//!
//! An array's state (`St`) lives either in its mutex (unbound: every thread locks it) or,
//! while it is bound, in its *lease*, which only the bound thread touches, without a lock.
//! The mutex then holds a placeholder whose form is [`Form::Bound`], so a call from any other
//! thread finds nothing to act on and fails with `MDRAID_WRONG_THREAD`. Binding and
//! unbinding move the state between the two under the mutex, from the bound thread; a
//! thread that ends with arrays bound gives them back to their mutex (a thread-local's
//! destructor), so they can be used and freed elsewhere afterwards.

use crate::array::{mdraid_array, wrong_thread, ArrayObj, Form, St};
use crate::error::*;
use crate::handle;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, Weak};

/// The calling thread, as the binding records it (never 0).
pub(crate) fn this_thread() -> usize {
    // SAFETY: pthread_self has no preconditions; the value names the calling thread while
    // it lives (threads alive at the same time have different values).
    (unsafe { libc::pthread_self() }) as usize
}

/// The array's state as one call holds it: under the mutex, or (the bound thread) the lease.
pub(crate) struct StGuard<'a> {
    /// The state this guard holds (the mutex's data, or the lease): the deref target,
    /// without a look at `hold` on every access.
    st: std::ptr::NonNull<St>,
    hold: Hold<'a>,
}

/// What keeps [`StGuard::st`] exclusively this guard's.
pub(crate) enum Hold<'a> {
    Locked(MutexGuard<'a, St>),
    /// The bound thread's hold of the lease.
    #[allow(dead_code)] // (held for its drop)
    Leased(LeaseHeld<'a>),
}

/// Clears the array's `leased` when dropped.
pub(crate) struct LeaseHeld<'a>(&'a ArrayObj);

impl<'a> StGuard<'a> {
    pub(crate) fn locked(mut g: MutexGuard<'a, St>) -> Self {
        StGuard {
            st: std::ptr::NonNull::from(&mut *g),
            hold: Hold::Locked(g),
        }
    }

    /// The mutex guard back (a condition-variable wait), or `Err(self)` for the lease.
    pub(crate) fn into_locked(self) -> Result<MutexGuard<'a, St>, Self> {
        match self.hold {
            Hold::Locked(g) => Ok(g),
            hold => Err(StGuard { st: self.st, hold }),
        }
    }

    pub(crate) fn is_leased(&self) -> bool {
        matches!(self.hold, Hold::Leased(_))
    }
}

impl Drop for LeaseHeld<'_> {
    fn drop(&mut self) {
        self.0.leased.store(false, Ordering::Relaxed);
    }
}

impl std::ops::Deref for StGuard<'_> {
    type Target = St;
    fn deref(&self) -> &St {
        // SAFETY: `st` points at the state `hold` keeps exclusively this guard's (the
        // mutex's data while its guard lives; the lease while `leased` is set, which no
        // other guard, binding or unbinding takes then), for the guard's lifetime.
        unsafe { self.st.as_ref() }
    }
}

impl std::ops::DerefMut for StGuard<'_> {
    fn deref_mut(&mut self) -> &mut St {
        // SAFETY: as in `deref`; `&mut self` makes the access unique.
        unsafe { self.st.as_mut() }
    }
}

impl ArrayObj {
    /// The array's state for this call: the lease on the bound thread (no lock), else the
    /// mutex (on another thread while the array is bound: the placeholder).
    #[inline]
    pub(crate) fn lock(&self) -> StGuard<'_> {
        if self.bound.load(Ordering::Acquire) != 0 {
            if let Some(g) = self.lease() {
                return g;
            }
        }
        // The state is consistent between statements that touch it; after a caught panic the
        // object is still memory-safe to use.
        StGuard::locked(self.st.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The lease, on the bound thread when no guard holds it.
    #[inline]
    fn lease(&self) -> Option<StGuard<'_>> {
        if self.bound.load(Ordering::Acquire) != this_thread()
            || self.leased.load(Ordering::Relaxed)
        {
            return None;
        }
        self.leased.store(true, Ordering::Relaxed);
        // SAFETY: the lease is touched only by the bound thread (this one: checked above),
        // and only through a guard, of which `leased` allows one at a time; binding and
        // unbinding, the only other writers, run on this thread too and refuse while a
        // guard is out.
        match unsafe { (*self.lease.get()).as_deref_mut() } {
            Some(st) => Some(StGuard {
                st: std::ptr::NonNull::from(st),
                hold: Hold::Leased(LeaseHeld(self)),
            }),
            None => {
                self.leased.store(false, Ordering::Relaxed);
                None
            }
        }
    }

    /// Whether the array is bound to a thread other than this one.
    #[inline]
    pub(crate) fn bound_elsewhere(&self) -> bool {
        let b = self.bound.load(Ordering::Acquire);
        b != 0 && b != this_thread()
    }

    /// Moves the state into the lease and binds the array to this thread.
    fn bind(self: &Arc<Self>) -> FfiResult {
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        match self.bound.load(Ordering::Acquire) {
            0 => {}
            b if b == this_thread() => return Ok(()),
            _ => return Err(wrong_thread()),
        }
        if g.changing {
            return Err(Fail::new(
                MDRAID_BUSY,
                "the array is being quiesced or stopped",
            ));
        }
        // A bound array runs its machine from the start (the facade's blocking I/O would
        // wait for completions only this thread could deliver).
        ArrayObj::start_machine(&mut g)?;
        match &g.form {
            Form::Stopped => return Err(Fail::new(MDRAID_STOPPED, "the array is stopped")),
            Form::Running { m, .. }
                if m.engine().requests_in_flight() > 0 || m.engine().member_ios_in_flight() > 0 =>
            {
                return Err(Fail::new(
                    MDRAID_BUSY,
                    "I/O is in flight: bind the array while it is idle",
                ))
            }
            _ => {}
        }
        if g.waiters > 0 {
            return Err(Fail::new(MDRAID_BUSY, "another thread waits on the array"));
        }
        // Recorded first: the thread's end gives the array back (and a thread already
        // ending cannot take one).
        let recorded = BOUND_HERE
            .try_with(|b| {
                b.try_borrow_mut()
                    .map(|mut b| b.push(Arc::downgrade(self)))
                    .is_ok()
            })
            .unwrap_or(false);
        if !recorded {
            return Err(Fail::new(MDRAID_BUSY, "this thread is ending"));
        }
        let st = std::mem::replace(&mut *g, St::placeholder());
        // SAFETY: no thread holds the lease (the array is not bound, and the mutex, held
        // here, is what a binding goes through).
        unsafe { *self.lease.get() = Some(Box::new(st)) };
        self.bound.store(this_thread(), Ordering::Release);
        Ok(())
    }

    /// Gives the state back to the mutex. On the bound thread, with no guard out; an array
    /// that is not bound is left as it is.
    pub(crate) fn unbind(&self) -> FfiResult {
        if self.bound.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let mut g = self.st.lock().unwrap_or_else(|e| e.into_inner());
        match self.bound.load(Ordering::Acquire) {
            0 => return Ok(()),
            b if b == this_thread() => {}
            _ => return Err(wrong_thread()),
        }
        if self.leased.load(Ordering::Relaxed) {
            return Err(Fail::new(MDRAID_BUSY, "the array is in use on this thread"));
        }
        // SAFETY: this is the bound thread and no guard holds the lease (checked above).
        let Some(st) = (unsafe { (*self.lease.get()).take() }) else {
            return Err(Fail::new(MDRAID_PANIC, "a bound array without its state"));
        };
        *g = *st;
        self.bound.store(0, Ordering::Release);
        drop(g);
        let me = self as *const ArrayObj;
        let _ = BOUND_HERE.try_with(|b| {
            if let Ok(mut b) = b.try_borrow_mut() {
                b.retain(|w| w.as_ptr() != me && w.strong_count() > 0);
            }
        });
        Ok(())
    }
}

/// The arrays bound to this thread, given back to their mutexes when it ends.
struct BoundHere(std::cell::RefCell<Vec<Weak<ArrayObj>>>);

impl Drop for BoundHere {
    fn drop(&mut self) {
        for w in self.0.get_mut().drain(..) {
            if let Some(a) = w.upgrade() {
                let _ = a.unbind();
            }
        }
    }
}

impl std::ops::Deref for BoundHere {
    type Target = std::cell::RefCell<Vec<Weak<ArrayObj>>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

thread_local! {
    static BOUND_HERE: BoundHere = const { BoundHere(std::cell::RefCell::new(Vec::new())) };
}

/// Binds the array to the calling thread (a reactor that drives it alone): from then on the
/// array's I/O path takes no lock. The contract while it is bound:
///
/// - Every call naming the array, and every `mdraid_member_io_complete` of its member I/O,
///   comes from this thread. From any other thread they fail with `MDRAID_WRONG_THREAD` and
///   do nothing (a completion so refused is not taken: deliver it again from this thread);
///   `mdraid_array_free` from another thread is ignored (the handle stays valid).
/// - Calls that would wait for member I/O (the blocking read/write/flush/discard, stop, sync
///   wait, and the calls that quiesce: detail, add) fail with `MDRAID_BUSY` when a member is
///   an async-callback member (its completions could only come from this thread, which would
///   be waiting); over synchronous members and files they work as before.
/// - Callbacks are invoked on this thread, from inside its calls, as before.
///
/// Bind while the array is idle (no request or member I/O in flight, no other thread inside
/// a call on it: otherwise `MDRAID_BUSY`). Binding again from the same thread is OK; from
/// another one `MDRAID_WRONG_THREAD`. When the thread ends with the array still bound, the
/// binding ends with it. `mdraid_array_unbind_thread` ends it earlier.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_BUSY`, `MDRAID_STOPPED`,
/// `MDRAID_WRONG_THREAD`.
#[no_mangle]
pub extern "C" fn mdraid_array_bind_thread(array: *mut mdraid_array) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array_arc(array)?;
        a.bind()
    }
}

/// Ends the array's binding (see `mdraid_array_bind_thread`): every thread may call it again,
/// under its lock. From the bound thread only (from another one `MDRAID_WRONG_THREAD`); an
/// array that is not bound is left as it is (`MDRAID_OK`). I/O in flight may go on: its
/// completions may then come from any thread.
///
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_WRONG_THREAD`.
#[no_mangle]
pub extern "C" fn mdraid_array_unbind_thread(array: *mut mdraid_array) -> mdraid_result {
    ffi_boundary! {
        let a = handle::array(array)?;
        a.unbind()
    }
}
