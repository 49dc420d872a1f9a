//! `mdraid.Registry`: md's object model (units, named arrays, refcounted handles, removal
//! rules) from the core's `Registry`, with a Python object (usually an `Array`) as each
//! entry's payload.
//!
//! The registry's mutex is held only for the core's bookkeeping (no Python code runs under
//! it), so it is taken with the GIL held.

use crate::array::PyArray;
use crate::error::{BindError, BindResult};
use mdraid::registry::{ArrayHandle, ArrayInfo, ArrayState, Hold, Registry};
use pyo3::prelude::*;
use std::sync::{Mutex, MutexGuard};

type Reg = Registry<Option<Py<PyAny>>>;

/// A snapshot of one registry entry.
#[pyclass(module = "mdraid", name = "RegistryEntry", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct RegistryEntry {
    /// The unit (minor of /dev/mdN).
    pub unit: u32,
    /// Unique per array the registry created.
    pub generation: u64,
    /// The block-device name: the array's name, or "md<unit>".
    pub name: String,
    /// "clear", "inactive" or "active".
    pub state: String,
    /// Member devices attached.
    pub members: u32,
    /// References held.
    pub holders: u32,
    /// What keeps it alive while unused: "none", "until_ioctl" or "until_stop".
    pub hold: String,
    /// Stopped and waiting for its last holder to go.
    pub deleted: bool,
}

#[pymethods]
impl RegistryEntry {
    fn __repr__(&self) -> String {
        format!(
            "RegistryEntry(unit={}, name={:?}, state={:?}, members={}, holders={}, deleted={})",
            self.unit,
            self.name,
            self.state,
            self.members,
            self.holders,
            if self.deleted { "True" } else { "False" }
        )
    }
}

impl From<ArrayInfo> for RegistryEntry {
    fn from(i: ArrayInfo) -> Self {
        RegistryEntry {
            unit: i.unit,
            generation: i.generation,
            name: i.disk_name().as_str().to_string(),
            state: match i.state {
                ArrayState::Clear => "clear",
                ArrayState::Inactive => "inactive",
                ArrayState::Active => "active",
            }
            .to_string(),
            members: i.members,
            holders: i.holders,
            hold: match i.hold {
                Hold::None => "none",
                Hold::UntilIoctl => "until_ioctl",
                Hold::UntilStop => "until_stop",
            }
            .to_string(),
            deleted: i.deleted,
        }
    }
}

/// One reference to a registry entry (md's ``mddev->active``). Give it back with
/// :meth:`Registry.put`; a handle that was put refuses further use.
#[pyclass(module = "mdraid", name = "Handle", frozen)]
pub struct PyHandle {
    h: Mutex<Option<ArrayHandle>>,
    /// The entry's unit.
    #[pyo3(get)]
    unit: u32,
    /// The entry's generation.
    #[pyo3(get)]
    generation: u64,
}

#[pymethods]
impl PyHandle {
    fn __repr__(&self) -> String {
        format!("Handle(unit={}, generation={})", self.unit, self.generation)
    }
}

impl PyHandle {
    fn new(h: ArrayHandle) -> Self {
        PyHandle {
            unit: h.unit(),
            generation: h.generation(),
            h: Mutex::new(Some(h)),
        }
    }
    fn with<R>(&self, f: impl FnOnce(&ArrayHandle) -> BindResult<R>) -> BindResult<R> {
        let g = self.h.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(h) => f(h),
            None => Err(BindError::Invalid("this handle was already put".into())),
        }
    }
    fn take(&self) -> BindResult<ArrayHandle> {
        self.h
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| BindError::Invalid("this handle was already put".into()))
    }
}

/// md's registry of arrays: units (``/dev/mdN``), named arrays (``md_*``), refcounted handles
/// and md's removal rules (an entry goes when it is clear, memberless and unreferenced).
///
/// Errors are :class:`RegistryError` with md's ``errno`` (EEXIST, ENOENT, EBUSY, ENODEV, ...).
#[pyclass(module = "mdraid", name = "Registry", frozen)]
pub struct PyRegistry {
    reg: Mutex<Reg>,
}

fn reg_err(e: mdraid::registry::RegistryError) -> BindError {
    BindError::Core(e.into())
}

impl PyRegistry {
    fn lock(&self) -> MutexGuard<'_, Reg> {
        self.reg.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl PyRegistry {
    /// An empty registry; ``max_unit`` caps the units (default: md's 2**20 - 1).
    #[new]
    #[pyo3(signature = (max_unit=None))]
    fn new(max_unit: Option<u32>) -> BindResult<Self> {
        let reg = match max_unit {
            Some(m) => Registry::with_max_unit(m).map_err(reg_err)?,
            None => Registry::new(),
        };
        Ok(PyRegistry {
            reg: Mutex::new(reg),
        })
    }

    /// Opens ``/dev/md<unit>``: md creates an empty array there on first open (below 512).
    fn probe(&self, unit: u32) -> BindResult<PyHandle> {
        Ok(PyHandle::new(self.lock().probe(unit).map_err(reg_err)?))
    }

    /// A reference to an existing entry by unit.
    fn get(&self, unit: u32) -> BindResult<PyHandle> {
        Ok(PyHandle::new(self.lock().get(unit).map_err(reg_err)?))
    }

    /// A reference to an existing entry by name ("md_home", "md5").
    fn lookup(&self, name: &str) -> BindResult<PyHandle> {
        Ok(PyHandle::new(
            self.lock().lookup_name(name).map_err(reg_err)?,
        ))
    }

    /// A new named array ("md_*"), on a unit md would pick (from 512 up).
    fn alloc_named(&self, name: &str) -> BindResult<PyHandle> {
        Ok(PyHandle::new(
            self.lock().alloc_named(name).map_err(reg_err)?,
        ))
    }

    /// A new array at exactly ``unit`` (md's ``new_array`` with "mdNNN").
    fn alloc_unit(&self, unit: u32) -> BindResult<PyHandle> {
        Ok(PyHandle::new(
            self.lock().alloc_unit(unit).map_err(reg_err)?,
        ))
    }

    /// Another reference to the same entry.
    fn dup(&self, handle: &PyHandle) -> BindResult<PyHandle> {
        let h = handle.with(|h| self.lock().dup(h).map_err(reg_err))?;
        Ok(PyHandle::new(h))
    }

    /// Gives a reference back. Returns the entry's payload (its array) when this removed the
    /// entry, else None.
    fn put(&self, handle: &PyHandle) -> BindResult<Option<Py<PyAny>>> {
        let h = handle.take()?;
        Ok(self.lock().put(h).map_err(reg_err)?.flatten())
    }

    /// Makes ``array`` the entry's running array: configured, its members counted, running.
    fn attach(&self, py: Python<'_>, handle: &PyHandle, array: Py<PyArray>) -> BindResult<()> {
        let n = array.get().members(py)?.len();
        handle.with(|h| {
            let mut r = self.lock();
            if r.payload(h).map_err(reg_err)?.is_some() {
                return Err(BindError::Invalid(format!(
                    "md{} already has an array",
                    h.unit()
                )));
            }
            r.configure(h).map_err(reg_err)?;
            for _ in 0..n {
                r.add_member(h).map_err(reg_err)?;
            }
            r.set_running(h).map_err(reg_err)?;
            *r.payload_mut(h).map_err(reg_err)? = Some(array.into_any());
            Ok(())
        })
    }

    /// The entry's array (or None).
    fn array(&self, py: Python<'_>, handle: &PyHandle) -> BindResult<Option<Py<PyAny>>> {
        handle.with(|h| {
            Ok(self
                .lock()
                .payload(h)
                .map_err(reg_err)?
                .as_ref()
                .map(|p| p.clone_ref(py)))
        })
    }

    /// Stops the entry (md's full stop): its array is stopped (superblocks clean), its members
    /// detached, and the entry marked deleted; it goes when its last holder puts.
    fn stop(&self, py: Python<'_>, handle: &PyHandle) -> BindResult<()> {
        // The registry first: it refuses (EBUSY) while others hold a running array.
        handle.with(|h| self.lock().stop(h).map_err(reg_err))?;
        if let Some(a) = self.array(py, handle)? {
            if let Ok(a) = a.bind(py).downcast::<PyArray>() {
                a.get().close(py)?;
            }
        }
        Ok(())
    }

    /// Removes an unused entry; returns its payload. EBUSY while it runs, has members or
    /// holders.
    fn remove(&self, unit: u32) -> BindResult<Option<Py<PyAny>>> {
        self.lock().remove(unit).map_err(reg_err)
    }

    /// The entry at ``unit``, or None.
    fn info(&self, unit: u32) -> Option<RegistryEntry> {
        self.lock().info(unit).map(Into::into)
    }

    /// Every entry, by unit.
    fn entries(&self) -> Vec<RegistryEntry> {
        self.lock().iter().map(Into::into).collect()
    }

    fn __len__(&self) -> usize {
        self.lock().len()
    }
}
