//! `mdraid_registry`: md's object model (units, names, refcounted references) as a value.

use crate::error::*;
use crate::handle::{self, Obj};
use md::registry::{ArrayHandle, ArrayState, Registry};
use std::ffi::c_char;
use std::sync::{Arc, Mutex};

/// A registry of md arrays (opaque): md's `all_mddevs` list. Made by `mdraid_registry_new`,
/// freed by `mdraid_registry_free`. All calls on one registry may run concurrently.
pub struct mdraid_registry {
    _private: [u8; 0],
}

/// One counted reference to a registry entry (opaque; md's `mddev->active`). Made by probe,
/// alloc, lookup, get and dup; given back by `mdraid_registry_put` (which frees it).
pub struct mdraid_registry_ref {
    _private: [u8; 0],
}

pub struct RegistryObj {
    reg: Mutex<Registry<()>>,
}

pub struct RegRefObj {
    registry: u64,
    h: Mutex<Option<ArrayHandle>>,
}

fn reg_lock(r: &RegistryObj) -> std::sync::MutexGuard<'_, Registry<()>> {
    r.reg.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes an empty registry (create-on-open on, units 0..(1<<20)-1). Errors:
/// `MDRAID_NULL_PARAMETER`. Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_new(out: *mut *mut mdraid_registry) -> mdraid_result {
    ffi_boundary! {
        non_null(out, "out")?;
        let obj = Arc::new(RegistryObj { reg: Mutex::new(Registry::new()) });
        // SAFETY: non-NULL and writable (caller's promise).
        unsafe { *out = handle::insert(Obj::Registry(obj)) as *mut mdraid_registry };
        Ok(())
    }
}

/// Frees a registry; references made from it become invalid handles (free them with
/// `mdraid_registry_ref_free`). NULL and freed handles are ignored (double free is safe).
#[no_mangle]
pub extern "C" fn mdraid_registry_free(registry: *mut mdraid_registry) {
    boundary_void(|| drop(handle::free_if(registry, |o| matches!(o, Obj::Registry(_)))))
}

fn give(registry: *mut mdraid_registry, h: ArrayHandle, out: *mut *mut mdraid_registry_ref) {
    let obj = Arc::new(RegRefObj {
        registry: registry as u64,
        h: Mutex::new(Some(h)),
    });
    // SAFETY: the callers checked `out` non-NULL; writable by the caller's promise.
    unsafe { *out = handle::insert(Obj::RegRef(obj)) as *mut mdraid_registry_ref };
}

fn with_reg(
    registry: *mut mdraid_registry,
    out: *mut *mut mdraid_registry_ref,
    f: impl FnOnce(&mut Registry<()>) -> Result<ArrayHandle, md::registry::RegistryError>,
) -> FfiResult {
    let r = handle::registry(registry)?;
    non_null(out, "out")?;
    let h = f(&mut reg_lock(&r))?;
    give(registry, h, out);
    Ok(())
}

/// Opens unit `unit` (md's md_probe + open): a reference to its array, creating an empty one
/// when there is none (create-on-open; never for units >= 512, md's named range).
/// Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_NOT_FOUND` (no array and
/// none created: ENXIO), `MDRAID_STOPPED` (being deleted: ENODEV), `MDRAID_INVALID_ARGUMENT`
/// (unit out of range). `mdraid_last_errno()` has md's errno. Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_probe(
    registry: *mut mdraid_registry,
    unit: u32,
    out: *mut *mut mdraid_registry_ref,
) -> mdraid_result {
    ffi_boundary! { with_reg(registry, out, |r| r.probe(unit)) }
}

/// Creates a named array (`md_*` name; md's new_array) at the next free unit from 512 up.
/// Errors: as probe, plus `MDRAID_EXISTS` (name taken), `MDRAID_INVALID_ARGUMENT` (not
/// `md_*`, too long). Thread-safe.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_alloc_named(
    registry: *mut mdraid_registry,
    name: *const c_char,
    out: *mut *mut mdraid_registry_ref,
) -> mdraid_result {
    ffi_boundary! {
        // SAFETY: the caller's promise for `name`.
        let name = unsafe { c_str(name, "name") }?;
        with_reg(registry, out, |r| r.alloc_named(name))
    }
}

/// Creates the array at exactly `unit` (md's new_array with mdNNN). Errors: as probe, plus
/// `MDRAID_EXISTS`. Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_alloc_unit(
    registry: *mut mdraid_registry,
    unit: u32,
    out: *mut *mut mdraid_registry_ref,
) -> mdraid_result {
    ffi_boundary! { with_reg(registry, out, |r| r.alloc_unit(unit)) }
}

/// A reference to the array named `name` (an `md_*` name, or `mdN`). Errors: as probe
/// (`MDRAID_NOT_FOUND`: no such array). Thread-safe.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_lookup(
    registry: *mut mdraid_registry,
    name: *const c_char,
    out: *mut *mut mdraid_registry_ref,
) -> mdraid_result {
    ffi_boundary! {
        // SAFETY: the caller's promise for `name`.
        let name = unsafe { c_str(name, "name") }?;
        with_reg(registry, out, |r| r.lookup_name(name))
    }
}

/// A reference to the array at `unit`, without creating one. Errors: as probe. Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_get(
    registry: *mut mdraid_registry,
    unit: u32,
    out: *mut *mut mdraid_registry_ref,
) -> mdraid_result {
    ffi_boundary! { with_reg(registry, out, |r| r.get(unit)) }
}

fn ref_handle<'a>(rr: &'a RegRefObj) -> FfiResult<std::sync::MutexGuard<'a, Option<ArrayHandle>>> {
    let g = rr.h.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        return Err(Fail::new(MDRAID_INVALID_HANDLE, "the reference was put"));
    }
    Ok(g)
}

/// Another reference to the same array. Errors: `MDRAID_NULL_PARAMETER`,
/// `MDRAID_INVALID_HANDLE`, `MDRAID_STOPPED` (deleted or removed). Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_dup(
    registry: *mut mdraid_registry,
    reference: *const mdraid_registry_ref,
    out: *mut *mut mdraid_registry_ref,
) -> mdraid_result {
    ffi_boundary! {
        let rr = handle::reg_ref(reference)?;
        let g = ref_handle(&rr)?;
        with_reg(registry, out, |r| r.dup(g.as_ref().expect("checked")))
    }
}

/// Gives a reference back (md's mddev_put) and frees the reference handle. When it was the
/// last reference of an array that is clear, memberless and unheld, the array is removed;
/// `*removed` (optional) says whether. Putting a reference twice returns
/// `MDRAID_INVALID_HANDLE` the second time (safe). Errors: `MDRAID_NULL_PARAMETER`,
/// `MDRAID_INVALID_HANDLE`, `MDRAID_STOPPED` (stale: the array was removed). Thread-safe.
///
/// # Safety
/// `removed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_put(
    registry: *mut mdraid_registry,
    reference: *mut mdraid_registry_ref,
    removed: *mut u32,
) -> mdraid_result {
    ffi_boundary! {
        let r = handle::registry(registry)?;
        let rr = handle::reg_ref(reference)?;
        if rr.registry != registry as u64 {
            return Err(Fail::new(MDRAID_INVALID_HANDLE, "the reference belongs to another registry"));
        }
        let h = rr.h.lock().unwrap_or_else(|e| e.into_inner()).take()
            .ok_or_else(|| Fail::new(MDRAID_INVALID_HANDLE, "the reference was put"))?;
        let _ = handle::free_if(reference, |o| matches!(o, Obj::RegRef(_)));
        let gone = reg_lock(&r).put(h)?;
        if !removed.is_null() {
            // SAFETY: non-NULL and writable (caller's promise).
            unsafe { *removed = u32::from(gone.is_some()) };
        }
        Ok(())
    }
}

/// Frees a reference handle without giving the reference back (the array stays referenced:
/// use `mdraid_registry_put` normally). NULL and freed handles are ignored.
#[no_mangle]
pub extern "C" fn mdraid_registry_ref_free(reference: *mut mdraid_registry_ref) {
    boundary_void(|| drop(handle::free_if(reference, |o| matches!(o, Obj::RegRef(_)))))
}

/// Registry state of an array: clear (not configured).
pub const MDRAID_REGISTRY_CLEAR: u32 = 0;
/// Configured but not running.
pub const MDRAID_REGISTRY_INACTIVE: u32 = 1;
/// Running.
pub const MDRAID_REGISTRY_ACTIVE: u32 = 2;

/// A registry entry's state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mdraid_registry_info {
    /// The unit (minor).
    pub unit: u32,
    /// `MDRAID_REGISTRY_CLEAR`, `_INACTIVE` or `_ACTIVE`.
    pub state: u32,
    /// Generation (unique per array created by this registry).
    pub generation: u64,
    /// Member devices attached.
    pub members: u32,
    /// References held.
    pub holders: u32,
    /// 1 when stopped and waiting for its last holder.
    pub deleted: u32,
    /// The block-device name (`md5`, `md_home`), NUL-terminated.
    pub name: [u8; 32],
}

/// Fills `*out` with the entry `reference` names. Errors: `MDRAID_NULL_PARAMETER`,
/// `MDRAID_INVALID_HANDLE`, `MDRAID_STOPPED` (removed). Thread-safe.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn mdraid_registry_get_info(
    registry: *mut mdraid_registry,
    reference: *const mdraid_registry_ref,
    out: *mut mdraid_registry_info,
) -> mdraid_result {
    ffi_boundary! {
        let r = handle::registry(registry)?;
        let rr = handle::reg_ref(reference)?;
        non_null(out, "out")?;
        let g = ref_handle(&rr)?;
        let i = reg_lock(&r).info_of(g.as_ref().expect("checked"))?;
        let mut name = [0u8; 32];
        let dn = i.disk_name();
        let b = dn.as_str().as_bytes();
        name[..b.len().min(31)].copy_from_slice(&b[..b.len().min(31)]);
        let info = mdraid_registry_info {
            unit: i.unit,
            state: match i.state {
                ArrayState::Clear => MDRAID_REGISTRY_CLEAR,
                ArrayState::Inactive => MDRAID_REGISTRY_INACTIVE,
                ArrayState::Active => MDRAID_REGISTRY_ACTIVE,
            },
            generation: i.generation,
            members: i.members,
            holders: i.holders,
            deleted: u32::from(i.deleted),
            name,
        };
        // SAFETY: non-NULL and writable (caller's promise).
        unsafe { *out = info };
        Ok(())
    }
}

/// Registry transition: configure (clear -> inactive).
pub const MDRAID_REGISTRY_OP_CONFIGURE: u32 = 0;
/// Registry transition: run (needs a member).
pub const MDRAID_REGISTRY_OP_RUN: u32 = 1;
/// Registry transition: stop running (-> inactive).
pub const MDRAID_REGISTRY_OP_SET_INACTIVE: u32 = 2;
/// Registry transition: full stop (clears and marks deleted).
pub const MDRAID_REGISTRY_OP_STOP: u32 = 3;
/// Registry transition: a member device attached.
pub const MDRAID_REGISTRY_OP_ADD_MEMBER: u32 = 4;
/// Registry transition: a member device detached.
pub const MDRAID_REGISTRY_OP_REMOVE_MEMBER: u32 = 5;
/// Registry transition: an ioctl succeeded (drops the create-on-open hold).
pub const MDRAID_REGISTRY_OP_IOCTL: u32 = 6;

/// Applies an `MDRAID_REGISTRY_OP_*` transition to the entry `reference` names, by md's
/// rules. Errors: `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`, `MDRAID_INVALID_ARGUMENT`,
/// `MDRAID_BUSY`, `MDRAID_STOPPED` (`mdraid_last_errno()` has md's errno). Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_registry_apply(
    registry: *mut mdraid_registry,
    reference: *const mdraid_registry_ref,
    op: u32,
) -> mdraid_result {
    ffi_boundary! {
        let r = handle::registry(registry)?;
        let rr = handle::reg_ref(reference)?;
        let g = ref_handle(&rr)?;
        let h = g.as_ref().expect("checked");
        let mut reg = reg_lock(&r);
        match op {
            MDRAID_REGISTRY_OP_CONFIGURE => reg.configure(h)?,
            MDRAID_REGISTRY_OP_RUN => reg.set_running(h)?,
            MDRAID_REGISTRY_OP_SET_INACTIVE => reg.set_inactive(h)?,
            MDRAID_REGISTRY_OP_STOP => reg.stop(h)?,
            MDRAID_REGISTRY_OP_ADD_MEMBER => { reg.add_member(h)?; }
            MDRAID_REGISTRY_OP_REMOVE_MEMBER => { reg.remove_member(h)?; }
            MDRAID_REGISTRY_OP_IOCTL => reg.note_ioctl(h)?,
            x => return Err(Fail::new(MDRAID_INVALID_ARGUMENT, format!("unknown registry op {x}"))),
        }
        Ok(())
    }
}

/// Removes the array at `unit` explicitly (refused while running, configured, with members
/// or holders: `MDRAID_BUSY`). Errors: also `MDRAID_NULL_PARAMETER`, `MDRAID_INVALID_HANDLE`,
/// `MDRAID_NOT_FOUND`. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_registry_remove(
    registry: *mut mdraid_registry,
    unit: u32,
) -> mdraid_result {
    ffi_boundary! {
        let r = handle::registry(registry)?;
        reg_lock(&r).remove(unit)?;
        Ok(())
    }
}
