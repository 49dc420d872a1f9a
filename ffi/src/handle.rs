//! Handles: every object C holds is a pointer-shaped token naming a slot of one process-wide
//! table (slot index and generation), not the address of Rust memory. A freed, stale or forged
//! handle is therefore refused with `MDRAID_INVALID_HANDLE` instead of being dereferenced, and
//! freeing a handle twice is a no-op. C never dereferences these pointers (the types are
//! opaque). The I/O path's array lookups ([`array_of`]) hit a per-thread cache of the last
//! array instead of the table's lock; any free invalidates every cache.

use crate::array::ArrayObj;
use crate::error::{Fail, FfiResult, MDRAID_INVALID_HANDLE, MDRAID_NULL_PARAMETER};
use crate::member::{MemberObj, Waiter};
use crate::registry::{RegRefObj, RegistryObj};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

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

thread_local! {
    /// The last array handle this thread looked up: (handle, `REMOVALS` then, the object).
    /// Weak, so a freed array is dropped as soon as its last user lets go.
    static LAST_ARRAY: std::cell::RefCell<Option<(u64, u64, Weak<ArrayObj>)>> =
        const { std::cell::RefCell::new(None) };
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
pub fn array_of(h: u64) -> Option<Arc<ArrayObj>> {
    let epoch = REMOVALS.load(Ordering::Acquire);
    let hit = LAST_ARRAY
        .try_with(|c| {
            let c = c.try_borrow().ok()?;
            match &*c {
                Some((ch, ce, w)) if *ch == h && *ce == epoch => w.upgrade(),
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
        if let Ok(mut c) = c.try_borrow_mut() {
            *c = Some((h, epoch, Arc::downgrade(&a)));
        }
    });
    Some(a)
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

pub fn array<T>(p: *const T) -> FfiResult<Arc<ArrayObj>> {
    if p.is_null() {
        return Err(Fail::new(MDRAID_NULL_PARAMETER, "array is NULL"));
    }
    array_of(p as u64).ok_or_else(|| bad("array"))
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
