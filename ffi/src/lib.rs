//! libmdraid: the C ABI of mdraid.
//!
//! A thin driver of [`md::array::machine::Machine`] (the sans-IO array: engine plus md's
//! metadata policy) and of the blocking [`md::array::Array`] facade. This crate holds no RAID or
//! metadata logic: it moves bytes between the machine and member devices (files, block devices,
//! or the caller's callbacks), keeps caller buffers and completion callbacks, and turns Rust
//! errors into `mdraid_result` codes. The C contract is written in the header
//! (`ffi/include/mdraid.h`, generated from the doc comments here by cbindgen).
//!
//! Modules, one per C object: [`member`] (`mdraid_member`, `mdraid_member_io_complete`,
//! `mdraid_examine`), [`array`] (`mdraid_array`), [`binding`] (arrays bound to one thread),
//! [`registry`] (`mdraid_registry`), plus the infrastructure: [`error`] (`mdraid_result`, the per-thread last error, the panic boundary)
//! and [`handle`] (the table that makes handles checkable).
#![allow(non_camel_case_types)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(not(target_pointer_width = "64"))]
compile_error!("libmdraid encodes handles in 64-bit pointers");

#[macro_use]
pub mod error;
pub mod array;
pub mod binding;
mod clock;
mod driver;
pub mod handle;
pub mod member;
pub mod registry;

use std::ffi::c_char;

/// The library's version as a NUL-terminated string, e.g. "0.1.0" (the same as
/// `MDRAID_VERSION`). The string is static: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
