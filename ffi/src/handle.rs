//! Handles: every object C holds is a pointer-shaped token naming a slot of one process-wide
//! table (slot index and generation), not the address of Rust memory. A freed, stale or forged
//! handle is therefore refused with `MDRAID_INVALID_HANDLE` instead of being dereferenced, and
//! freeing a handle twice is a no-op. C never dereferences these pointers (the types are
//! opaque). The I/O path's array lookups ([`array_of`]) hit a per-thread cache of the last
//! array instead of the table's lock and reference count; any free invalidates every cache.

use crate::array::ArrayObj;
use crate::error::{Fail, FfiResult, MDRAID_INVALID_HANDLE, MDRAID_NULL_PARAMETER};
use crate::member::{MemberObj, Waiter};
use crate::registry::{RegRefObj, RegistryObj};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// What a handle names.
#[derive(Clone)]
pub enum Obj {
    Member(Arc<MemberObj>),
    Array(Arc<ArrayObj>),
    Registry(Arc<RegistryObj>),
    RegRef(Arc<RegRefObj>),
    /// Not a C object: the completion target of an async member's blocking I/O (tokens).
    Waiter(Arc<Waiter>),
}

struct Slot {
    generation: u32,
    obj: Option<Obj>,
}

struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// Read-locked by every call (threads look handles up in parallel), write-locked only to make
/// or free a handle.
static TABLE: RwLock<Table> = RwLock::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
});

/// Handles freed so far: a per-thread cache of the last array looked up is valid while this
/// has not moved (a free bumps it under the table's write lock, before it returns).
static REMOVALS: AtomicU64 = AtomicU64::new(0);

/// A thread's cache of the last array it looked up.
struct ArrayCache {
    /// (handle, `REMOVALS` then, the object). A strong reference: a hit takes no reference
    /// count. A freed array is torn down by `mdraid_array_free` itself (its members let
    /// go), so what a stale entry keeps until it is replaced is the object's memory only.
    last: std::cell::RefCell<Option<(u64, u64, Arc<ArrayObj>)>>,
    /// [`ArrayRef::Cached`] references alive on this thread: while any is, the entry is not
    /// replaced (which could drop the object under them).
    borrows: std::cell::Cell<u32>,
}

thread_local! {
    static LAST_ARRAY: ArrayCache = const {
        ArrayCache {
            last: std::cell::RefCell::new(None),
            borrows: std::cell::Cell::new(0),
        }
    };
}

/// An array looked up by handle, for the length of one call on this thread.
pub struct ArrayRef(RefKind);

enum RefKind {
    /// The object in this thread's cache (no reference count taken).
    Cached(std::ptr::NonNull<ArrayObj>, *const ArrayCache),
    /// A counted reference (the cache missed, or was in use).
    Owned(Arc<ArrayObj>),
}

impl std::ops::Deref for ArrayRef {
    type Target = ArrayObj;
    fn deref(&self) -> &ArrayObj {
        match &self.0 {
            // SAFETY: the cache entry holding this object (a strong reference) is not
            // replaced or cleared while `borrows` counts this reference, and the cache lives
            // as long as the thread, which this value (not `Send`) does not outlive.
            RefKind::Cached(p, _) => unsafe { p.as_ref() },
            RefKind::Owned(a) => a,
        }
    }
}

impl Drop for ArrayRef {
    fn drop(&mut self) {
        if let RefKind::Cached(_, c) = &self.0 {
            // SAFETY: `c` is this thread's cache (see `deref`).
            let c = unsafe { &**c };
            c.borrows.set(c.borrows.get() - 1);
        }
    }
}

// A panic while the table was locked cannot leave it inconsistent (every change is one
// assignment), so a poisoned lock is used as it is.
fn table() -> RwLockWriteGuard<'static, Table> {
    TABLE.write().unwrap_or_else(|e| e.into_inner())
}

fn table_read() -> RwLockReadGuard<'static, Table> {
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}

/// Slot `s` and generation `g` as a handle value: never 0.
fn encode(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | (u64::from(slot) + 1)
}

fn decode(h: u64) -> Option<(usize, u32)> {
    let low = (h & 0xffff_ffff) as u32;
    let slot = low.checked_sub(1)? as usize;
    Some((slot, (h >> 32) as u32))
}

/// Registers `obj`; returns its handle value.
pub fn insert(obj: Obj) -> u64 {
    let mut t = table();
    if let Some(s) = t.free.pop() {
        let slot = &mut t.slots[s as usize];
        slot.generation = slot.generation.wrapping_add(1).max(1);
        slot.obj = Some(obj);
        return encode(s, slot.generation);
    }
    let s = t.slots.len() as u32;
    t.slots.push(Slot {
        generation: 1,
        obj: Some(obj),
    });
    encode(s, 1)
}

/// The object a handle names, if live.
pub fn get(h: u64) -> Option<Obj> {
    let (s, g) = decode(h)?;
    let t = table_read();
    let slot = t.slots.get(s)?;
    if slot.generation != g {
        return None;
    }
    slot.obj.clone()
}

/// Unregisters a handle; returns its object (to drop outside the table lock).
pub fn remove(h: u64) -> Option<Obj> {
    let (s, g) = decode(h)?;
    let mut t = table();
    let slot = t.slots.get_mut(s)?;
    if slot.generation != g {
        return None;
    }
    let obj = slot.obj.take()?;
    t.free.push(s as u32);
    REMOVALS.fetch_add(1, Ordering::Release);
    Some(obj)
}

/// The array a handle value names, if live: [`get`] with a per-thread cache of the last
/// array looked up (the I/O path looks the same array up on every call). A handle freed
/// before this call (ordered by the caller's own synchronisation) is refused, as by `get`.
pub fn array_of(h: u64) -> Option<ArrayRef> {
    let epoch = REMOVALS.load(Ordering::Acquire);
    let hit = LAST_ARRAY
        .try_with(|c| {
            let last = c.last.try_borrow().ok()?;
            match &*last {
                Some((ch, ce, a)) if *ch == h && *ce == epoch => {
                    c.borrows.set(c.borrows.get() + 1);
                    Some(ArrayRef(RefKind::Cached(
                        std::ptr::NonNull::from(&**a),
                        c as *const ArrayCache,
                    )))
                }
                _ => None,
            }
        })
        .ok()
        .flatten();
    if hit.is_some() {
        return hit;
    }
    let Some(Obj::Array(a)) = get(h) else {
        return None;
    };
    let _ = LAST_ARRAY.try_with(|c| {
        if c.borrows.get() == 0 {
            if let Ok(mut last) = c.last.try_borrow_mut() {
                // (The entry replaced may be a freed array's last reference: dropped here,
                // with no reference into it left on this thread.)
                *last = Some((h, epoch, a.clone()));
            }
        }
    });
    Some(ArrayRef(RefKind::Owned(a)))
}

/// Forgets this thread's cached array (after freeing it: its memory goes now rather than at
/// the next lookup), unless a reference into it is alive on this thread.
pub fn forget_cached_array() {
    let _ = LAST_ARRAY.try_with(|c| {
        if c.borrows.get() == 0 {
            if let Ok(mut last) = c.last.try_borrow_mut() {
                let old = last.take();
                drop(last);
                drop(old);
            }
        }
    });
}

fn bad(what: &str) -> Fail {
    Fail::new(
        MDRAID_INVALID_HANDLE,
        format!("{what} is not a live {what} handle (freed, stale or of another type)"),
    )
}

fn lookup<T>(p: *const T, what: &str) -> FfiResult<Obj> {
    if p.is_null() {
        return Err(Fail::new(MDRAID_NULL_PARAMETER, format!("{what} is NULL")));
    }
    get(p as u64).ok_or_else(|| bad(what))
}

pub fn member<T>(p: *const T) -> FfiResult<Arc<MemberObj>> {
    match lookup(p, "member")? {
        Obj::Member(m) => Ok(m),
        _ => Err(bad("member")),
    }
}

pub fn array<T>(p: *const T) -> FfiResult<ArrayRef> {
    if p.is_null() {
        return Err(Fail::new(MDRAID_NULL_PARAMETER, "array is NULL"));
    }
    let a = array_of(p as u64).ok_or_else(|| bad("array"))?;
    if a.bound_elsewhere() {
        return Err(crate::array::wrong_thread());
    }
    Ok(a)
}

/// The array a handle names, as a counted reference.
pub fn array_arc<T>(p: *const T) -> FfiResult<Arc<ArrayObj>> {
    match lookup(p, "array")? {
        Obj::Array(a) => Ok(a),
        _ => Err(bad("array")),
    }
}

pub fn registry<T>(p: *const T) -> FfiResult<Arc<RegistryObj>> {
    match lookup(p, "registry")? {
        Obj::Registry(r) => Ok(r),
        _ => Err(bad("registry")),
    }
}

pub fn reg_ref<T>(p: *const T) -> FfiResult<Arc<RegRefObj>> {
    match lookup(p, "registry reference")? {
        Obj::RegRef(r) => Ok(r),
        _ => Err(bad("registry reference")),
    }
}

/// Frees a handle of the kind `is_kind` accepts; NULL, stale and foreign handles are ignored.
pub fn free_if<T>(p: *const T, is_kind: fn(&Obj) -> bool) -> Option<Obj> {
    if p.is_null() {
        return None;
    }
    let h = p as u64;
    match get(h) {
        Some(o) if is_kind(&o) => remove(h),
        _ => None,
    }
}
