//! One error enum for the bindings and its single conversion into a Python exception.
//!
//! The exception classes live in Python (`mdraid/errors.py`) and are imported here, so the
//! hierarchy is written once, where Python users read it.

use mdraid::array::ArrayError;
use mdraid::device::DeviceError;
use mdraid::format::FormatError;
use pyo3::exceptions::PyTypeError;
use pyo3::PyErr;

/// The Python exception classes, imported from `mdraid.errors`.
pub mod exc {
    use pyo3::import_exception;
    import_exception!(mdraid.errors, MdraidError);
    import_exception!(mdraid.errors, FormatError);
    import_exception!(mdraid.errors, SuperblockError);
    import_exception!(mdraid.errors, AssemblyError);
    import_exception!(mdraid.errors, ReadOnlyError);
    import_exception!(mdraid.errors, RegistryError);
    import_exception!(mdraid.errors, DeviceError);
    import_exception!(mdraid.errors, InvalidArgument);
    import_exception!(mdraid.errors, ArrayClosedError);
}
pub use exc::MdraidError;
use exc::{
    ArrayClosedError, AssemblyError, DeviceError as PyDeviceError, FormatError as PyFormatError,
    InvalidArgument, ReadOnlyError, RegistryError as PyRegistryError, SuperblockError,
};

/// errno values the bindings raise themselves (Linux numbers).
pub const EIO: i32 = 5;
pub const EINVAL: i32 = 22;

/// Everything a binding call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// An error of the core.
    #[error(transparent)]
    Core(#[from] mdraid::Error),
    /// A parameter the bindings refuse before calling the core.
    #[error("{0}")]
    Invalid(String),
    /// A wrong Python type.
    #[error("{0}")]
    Type(String),
    /// The array was stopped, abandoned or closed.
    #[error("the array is closed (stopped or abandoned)")]
    Closed,
    /// Opening a file failed.
    #[error("{0}")]
    Os(String, i32),
    /// A Python exception to pass on as it is.
    #[error("{0}")]
    Py(PyErr),
    /// A buffer of this many bytes could not be allocated.
    #[error("cannot allocate {0} bytes")]
    NoMemory(usize),
    /// A member has no write-intent bitmap.
    #[error("{0}")]
    NoBitmap(String),
    /// The core panicked: a bug, reported instead of unwinding into Python.
    #[error("internal error in mdraid (please report): {0}")]
    Internal(String),
}

impl From<PyErr> for BindError {
    fn from(e: PyErr) -> Self {
        BindError::Py(e)
    }
}

impl From<DeviceError> for BindError {
    fn from(e: DeviceError) -> Self {
        BindError::Core(e.into())
    }
}

/// `Result` of the bindings.
pub type BindResult<T> = Result<T, BindError>;

fn device_err(errno: i32, msg: String) -> PyErr {
    PyDeviceError::new_err((errno, msg))
}

fn format_err(e: &FormatError) -> PyErr {
    let msg = e.to_string();
    match e {
        FormatError::Sb1(_) | FormatError::Sb0(_) | FormatError::Probe(_) => {
            SuperblockError::new_err(msg)
        }
        // Laying out a new array from the caller's parameters (sizes, chunk): their error.
        FormatError::Geometry(_) => InvalidArgument::new_err(msg),
        _ => PyFormatError::new_err(msg),
    }
}

fn core_err(e: &mdraid::Error) -> PyErr {
    let msg = e.to_string();
    match e {
        mdraid::Error::Device(d) => match d {
            DeviceError::Io { errno, .. } => device_err(*errno, msg),
            _ => device_err(EINVAL, msg),
        },
        mdraid::Error::Format(f) => format_err(f),
        mdraid::Error::Registry(r) => PyRegistryError::new_err((r.errno(), msg)),
        mdraid::Error::Array(a) => match a {
            ArrayError::Invalid(_) | ArrayError::NoDevices | ArrayError::OutOfRange { .. } => {
                InvalidArgument::new_err(msg)
            }
            ArrayError::NoSuperblock { .. } => SuperblockError::new_err(msg),
            ArrayError::ReadOnly => ReadOnlyError::new_err(msg),
            // Every mirror that could serve the request failed it.
            ArrayError::Io(_) | ArrayError::NoWorkingMember => device_err(EIO, msg),
            _ => AssemblyError::new_err(msg),
        },
        _ => MdraidError::new_err(msg),
    }
}

impl From<BindError> for PyErr {
    fn from(e: BindError) -> PyErr {
        match e {
            BindError::Core(c) => core_err(&c),
            BindError::Invalid(m) => InvalidArgument::new_err(m),
            BindError::Type(m) => PyTypeError::new_err(m),
            BindError::Closed => ArrayClosedError::new_err(BindError::Closed.to_string()),
            BindError::Os(m, errno) => device_err(errno, m),
            BindError::Py(p) => p,
            BindError::NoBitmap(m) => PyFormatError::new_err(m),
            BindError::NoMemory(n) => {
                pyo3::exceptions::PyMemoryError::new_err(format!("cannot allocate {n} bytes"))
            }
            BindError::Internal(m) => {
                MdraidError::new_err(format!("internal error in mdraid (please report): {m}"))
            }
        }
    }
}

/// A zero-filled buffer, or an error instead of the abort a failed allocation would be.
pub fn zeroed(n: usize) -> BindResult<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| BindError::NoMemory(n))?;
    v.resize(n, 0);
    Ok(v)
}

/// Runs core code, turning a panic (a core bug) into an error instead of unwinding into Python.
pub fn no_panic<R>(f: impl FnOnce() -> BindResult<R>) -> BindResult<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(BindError::Internal(what))
        }
    }
}
