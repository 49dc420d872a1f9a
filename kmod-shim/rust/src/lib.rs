//! mdraid's core as seen from the kernel module.
//!
//! This crate is the only place where the core meets the kernel's C ABI. It provides:
//!
//! - the exported entry points, all named `mdraid_k_*` and `extern "C"`;
//! - a `#[global_allocator]` that forwards to the C hooks [`mdraid_k_alloc`] / [`mdraid_k_free`]
//!   (kmalloc / kfree on the C side);
//! - a `#[panic_handler]` that forwards to the C hook [`mdraid_k_panic`], which must not return
//!   (the module WARNs and stops the array; a panic in the core is always a bug).
//!
//! Those three hooks are the only undefined symbols the linked object may have, besides the
//! `mem*` functions the kernel itself exports; `scripts/check-kobj.sh` enforces that.
//!
//! Entry points return 0 or a positive value on success and a negative errno on failure, never
//! set `errno`, and write outputs only on success.
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod array;
mod attrs;
mod machine;
mod registry;

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_int;
use core::panic::PanicInfo;

use mdraid::format::{sb0::Superblock0, sb1::Superblock1};

/// Linux's EINVAL.
const EINVAL: c_int = 22;

extern "C" {
    /// Allocates `size` bytes aligned to `align` (a power of two); NULL on failure.
    pub fn mdraid_k_alloc(size: usize, align: usize) -> *mut u8;
    /// Frees memory from [`mdraid_k_alloc`]; `size`/`align` are those it was allocated with.
    pub fn mdraid_k_free(ptr: *mut u8, size: usize, align: usize);
    /// Reports a core panic at `file:line` (`file` is not NUL-terminated). Must not return.
    pub fn mdraid_k_panic(file: *const u8, file_len: usize, line: u32) -> !;
}

struct KernelAlloc;

// SAFETY: forwards to the C allocator, which returns memory of at least `size` bytes aligned to
// `align` or NULL, and frees only what it returned; that is GlobalAlloc's contract.
unsafe impl GlobalAlloc for KernelAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a plain C call; the hook accepts any size/align pair.
        unsafe { mdraid_k_alloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this `layout` (GlobalAlloc's caller contract).
        unsafe { mdraid_k_free(ptr, layout.size(), layout.align()) }
    }
}

#[global_allocator]
static ALLOC: KernelAlloc = KernelAlloc;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let (file, line) = match info.location() {
        Some(l) => (l.file(), l.line()),
        None => ("<unknown>", 0),
    };
    // SAFETY: `file` is a valid string slice for the duration of the call; the hook never returns.
    unsafe { mdraid_k_panic(file.as_ptr(), file.len(), line) }
}

/// Views `len` bytes at `buf` as a slice, or `None` for a NULL pointer.
///
/// # Safety
/// `buf` must be NULL or point to `len` readable bytes that stay unchanged during the call.
unsafe fn input<'a>(buf: *const u8, len: usize) -> Option<&'a [u8]> {
    if buf.is_null() {
        return None;
    }
    // SAFETY: non-NULL and, by the caller's contract, `len` readable bytes.
    Some(unsafe { core::slice::from_raw_parts(buf, len) })
}

/// Decodes the 1.x superblock in `buf[..len]` and returns the checksum md would store for it
/// (0..=u32::MAX), or -EINVAL if it does not decode.
///
/// # Safety
/// `buf` must be NULL or point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_sb1_checksum(buf: *const u8, len: usize) -> i64 {
    // SAFETY: passed through from our caller's contract.
    let Some(b) = (unsafe { input(buf, len) }) else {
        return -i64::from(EINVAL);
    };
    match Superblock1::parse(b) {
        Ok(sb) => i64::from(sb.compute_checksum()),
        Err(_) => -i64::from(EINVAL),
    }
}

/// Decodes the 0.90 superblock in `buf[..len]` and returns the checksum md would store for it
/// (0..=u32::MAX), or -EINVAL if it does not decode.
///
/// # Safety
/// `buf` must be NULL or point to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_sb0_checksum(buf: *const u8, len: usize) -> i64 {
    // SAFETY: passed through from our caller's contract.
    let Some(b) = (unsafe { input(buf, len) }) else {
        return -i64::from(EINVAL);
    };
    match Superblock0::parse(b) {
        Ok(sb) => i64::from(sb.compute_checksum()),
        Err(_) => -i64::from(EINVAL),
    }
}
