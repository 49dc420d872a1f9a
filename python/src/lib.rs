//! `mdraid._native`: the compiled half of the `mdraid` Python package.
//!
//! The bindings convert and forward; md's rules live in the core crate. Module layout mirrors
//! the Python API: [`device`] (member devices, including Python-defined ones), [`array`]
//! (`mdraid.Array` and its result types), [`examine`], [`registry`], [`error`] (the one error
//! enum and its mapping to the Python exceptions of `mdraid/errors.py`), and [`drive`] (every
//! call into the core's blocking `Array` facade).
#![deny(clippy::undocumented_unsafe_blocks)]
#![forbid(unsafe_code)]

mod array;
mod device;
mod drive;
mod error;
mod examine;
mod registry;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<array::PyArray>()?;
    m.add_class::<array::SyncResult>()?;
    m.add_class::<array::SyncJob>()?;
    m.add_class::<array::AddResult>()?;
    m.add_class::<array::MemberInfo>()?;
    m.add_class::<array::Detail>()?;
    m.add_class::<device::PyMemDevice>()?;
    m.add_class::<device::PyFileDevice>()?;
    m.add_class::<device::PyFaultyDevice>()?;
    m.add_class::<device::PyLatencyDevice>()?;
    m.add_class::<examine::PySuperblock>()?;
    m.add_class::<examine::BitmapInfo>()?;
    m.add_class::<registry::PyRegistry>()?;
    m.add_class::<registry::PyHandle>()?;
    m.add_class::<registry::RegistryEntry>()?;
    m.add_function(wrap_pyfunction!(examine::examine, m)?)?;
    m.add_function(wrap_pyfunction!(examine::examine_bitmap, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
