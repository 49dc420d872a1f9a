//! The registry of arrays (md's `all_mddevs` + `md_probe`/`mddev_get`/`mddev_put`) for C.
//!
//! The C side holds one [`Registry`] behind its own mutex and one handle per reference it
//! keeps (the probe's, each open's, each sysfs operation's). Units are the minors of the
//! module's block major; named arrays come from the `new_array` module parameter.

use alloc::boxed::Box;
use mdraid::registry::{ArrayHandle, ArrayState, Registry, RegistryError};

/// The C side's registry (opaque).
pub struct KRegistry(Registry<()>);

/// One counted reference (opaque).
pub struct KHandle(ArrayHandle);

fn err(e: RegistryError) -> i64 {
    -i64::from(e.errno())
}

/// A new, empty registry with units 0..=`max_unit` (0 for md's default), or NULL.
#[no_mangle]
pub extern "C" fn mdraid_k_reg_new(max_unit: u32) -> *mut KRegistry {
    let reg = if max_unit == 0 {
        Registry::new()
    } else {
        match Registry::with_max_unit(max_unit) {
            Ok(r) => r,
            Err(_) => return core::ptr::null_mut(),
        }
    };
    Box::into_raw(Box::new(KRegistry(reg)))
}

/// Frees a registry (NULL is ignored). Outstanding handles must not be used afterwards.
///
/// # Safety
/// `reg` is NULL or came from [`mdraid_k_reg_new`] and is not used again.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_reg_free(reg: *mut KRegistry) {
    if !reg.is_null() {
        // SAFETY: by the contract, a pointer from Box::into_raw that is dropped once.
        drop(unsafe { Box::from_raw(reg) });
    }
}

/// Writes a new handle to `*out`; returns 0.
///
/// # Safety
/// `out` is valid for a write.
unsafe fn give(h: ArrayHandle, out: *mut *mut KHandle) -> i64 {
    // SAFETY: the caller checked `out` for NULL; valid for a write by contract.
    unsafe { *out = Box::into_raw(Box::new(KHandle(h))) };
    0
}

/// How the C side reaches a handle operation.
const OP_PROBE: u32 = 0;
const OP_GET: u32 = 1;

/// Takes a reference to the array at `unit`: `op` 0 is md's probe+open (creates an empty
/// array on first use, units below 512 only), 1 only looks it up. The handle goes to `*out`.
/// Returns 0 or a negative errno (ENXIO not created on open, ENODEV deleted, EINVAL unit).
///
/// # Safety
/// `reg` came from [`mdraid_k_reg_new`]; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_reg_open(
    reg: *mut KRegistry,
    unit: u32,
    op: u32,
    out: *mut *mut KHandle,
) -> i64 {
    // SAFETY: the C side passes its live registry, under its lock.
    let Some(reg) = (unsafe { reg.as_mut() }) else {
        return -22;
    };
    if out.is_null() {
        return -22;
    }
    let r = match op {
        OP_PROBE => reg.0.probe(unit),
        OP_GET => reg.0.get(unit),
        _ => return -22,
    };
    match r {
        // SAFETY: `out` checked above.
        Ok(h) => unsafe { give(h, out) },
        Err(e) => err(e),
    }
}

/// md's `new_array` parameter: `md_<name>` (named, unit from 512 up) or `md<N>`; returns the
/// new array's unit or a negative errno (EEXIST, EINVAL, E2BIG, ENODEV).
///
/// # Safety
/// `reg` came from [`mdraid_k_reg_new`]; `name` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_reg_new_array(
    reg: *mut KRegistry,
    name: *const u8,
    len: usize,
) -> i64 {
    // SAFETY: the C side passes its live registry.
    let Some(reg) = (unsafe { reg.as_mut() }) else {
        return -22;
    };
    // SAFETY: `len` readable bytes by contract.
    let Some(bytes) = (unsafe { crate::input(name, len) }) else {
        return -22;
    };
    let Ok(s) = core::str::from_utf8(bytes) else {
        return -22;
    };
    match reg.0.new_array(s) {
        Ok(unit) => i64::from(unit),
        Err(e) => err(e),
    }
}

/// Gives a reference back (frees the handle). Returns 1 when that removed the array (the C
/// side deletes its disk), 0 when it lives on, or a negative errno (the handle is freed anyway).
///
/// # Safety
/// `reg` came from [`mdraid_k_reg_new`]; `h` came from this registry and is not used again.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_reg_put(reg: *mut KRegistry, h: *mut KHandle) -> i64 {
    if h.is_null() {
        return -22;
    }
    // SAFETY: a handle from `give`, consumed once.
    let h = unsafe { Box::from_raw(h) };
    // SAFETY: the C side passes its live registry.
    let Some(reg) = (unsafe { reg.as_mut() }) else {
        return -22;
    };
    match reg.0.put(h.0) {
        Ok(Some(())) => 1,
        Ok(None) => 0,
        Err(e) => err(e),
    }
}

/// Registry state changes, md's names: 0 configure (clear → inactive), 1 run, 2 inactive,
/// 3 stop (full: deleted once unreferenced), 4 note a control operation (drops the open
/// hold), 5 one member more, 6 one member fewer.
///
/// # Safety
/// `reg` came from [`mdraid_k_reg_new`]; `h` is a live handle of it.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_reg_op(reg: *mut KRegistry, h: *const KHandle, op: u32) -> i64 {
    // SAFETY: live registry and handle by contract.
    let (Some(reg), Some(h)) = (unsafe { reg.as_mut() }, unsafe { h.as_ref() }) else {
        return -22;
    };
    let h = &h.0;
    let r = match op {
        0 => reg.0.configure(h),
        1 => reg.0.set_running(h),
        2 => reg.0.set_inactive(h),
        3 => reg.0.stop(h),
        4 => reg.0.note_ioctl(h),
        5 => reg.0.add_member(h).map(|_| ()),
        6 => reg.0.remove_member(h).map(|_| ()),
        _ => return -22,
    };
    match r {
        Ok(()) => 0,
        Err(e) => err(e),
    }
}

/// What the registry knows of one array.
#[repr(C)]
pub struct KRegInfo {
    /// 0 clear, 1 inactive, 2 active.
    pub state: u32,
    /// Member devices counted.
    pub members: u32,
    /// References held.
    pub holders: u32,
    /// Stopped, waiting for the last holder.
    pub deleted: u32,
    /// Created by name (`name` holds it, NUL-terminated).
    pub named: u32,
    /// The name (md_*), NUL-terminated.
    pub name: [u8; 32],
}

/// Fills `*out` for the array at `unit`; 0, or -ENOENT when there is none.
///
/// # Safety
/// `reg` came from [`mdraid_k_reg_new`]; `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_reg_info(
    reg: *const KRegistry,
    unit: u32,
    out: *mut KRegInfo,
) -> i64 {
    // SAFETY: live registry by contract.
    let Some(reg) = (unsafe { reg.as_ref() }) else {
        return -22;
    };
    if out.is_null() {
        return -22;
    }
    let Some(info) = reg.0.info(unit) else {
        return -2;
    };
    let mut name = [0u8; 32];
    if let Some(n) = info.name {
        let b = n.as_str().as_bytes();
        let l = b.len().min(31);
        name[..l].copy_from_slice(&b[..l]);
    }
    let v = KRegInfo {
        state: match info.state {
            ArrayState::Clear => 0,
            ArrayState::Inactive => 1,
            ArrayState::Active => 2,
        },
        members: info.members,
        holders: info.holders,
        deleted: u32::from(info.deleted),
        named: u32::from(info.name.is_some()),
        name,
    };
    // SAFETY: checked non-NULL; valid for a write by contract.
    unsafe { out.write(v) };
    0
}
