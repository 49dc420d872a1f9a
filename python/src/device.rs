//! Member devices seen from Python: the core's `FileDevice`, `MemDevice`, `FaultyDevice` and
//! `LatencyDevice`, plus any Python object with `read`/`write`/`flush`/`size` (a subclass of
//! `mdraid.BlockDevice`), all behind one [`Dev`] that the core's `Array` drives.
//!
//! Locking rule (no deadlock between the GIL and these mutexes): a native device's mutex is only
//! ever taken with the GIL released. Python devices have no mutex; their calls take the GIL.

use crate::error::{BindError, BindResult, EIO};
use mdraid::device::{
    BlockDevice, DeviceError, FaultControl, FaultRule, FaultyDevice, FileDevice, IoOp,
    LatencyDevice, Lock, MemDevice, OpenOptions, Ops, RuleId, ServiceModel,
};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The devices implemented in Rust.
#[derive(Debug)]
pub enum Native {
    File(FileDevice),
    Mem(MemDevice),
    Faulty(FaultyDevice<Dev>),
    Latency(LatencyDevice<Dev>),
}

impl Native {
    fn dev(&mut self) -> &mut dyn BlockDevice {
        match self {
            Native::File(d) => d,
            Native::Mem(d) => d,
            Native::Faulty(d) => d,
            Native::Latency(d) => d,
        }
    }
    fn size(&self) -> u64 {
        match self {
            Native::File(d) => d.size(),
            Native::Mem(d) => d.size(),
            Native::Faulty(d) => d.size(),
            Native::Latency(d) => d.size(),
        }
    }
}

/// A Python object acting as a device.
#[derive(Debug)]
pub struct PyDev {
    obj: Py<PyAny>,
    /// `size()` as read when the device was attached (a device's size does not change).
    size: u64,
}

/// Per-device I/O counters, counted where the core's requests reach the device.
#[derive(Debug, Default)]
pub struct Stats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub flushes: AtomicU64,
    pub read_bytes: AtomicU64,
    pub write_bytes: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Clone, Debug)]
enum Inner {
    Native(Arc<Mutex<Native>>),
    Py(Arc<PyDev>),
}

/// A member device handle: cheap to clone, every clone is the same device.
#[derive(Clone, Debug)]
pub struct Dev {
    inner: Inner,
    pub stats: Arc<Stats>,
}

fn lock(m: &Mutex<Native>) -> MutexGuard<'_, Native> {
    // A panic while a device was held leaves it as consistent as any crashed device: go on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dev {
    fn native(n: Native) -> Dev {
        Dev {
            inner: Inner::Native(Arc::new(Mutex::new(n))),
            stats: Arc::default(),
        }
    }

    /// An identity for "the same device given twice".
    pub fn identity(&self) -> usize {
        match &self.inner {
            Inner::Native(a) => Arc::as_ptr(a) as *const u8 as usize,
            Inner::Py(p) => p.obj.as_ptr() as usize,
        }
    }

    /// Runs `f` on the native device (GIL must be released by the caller).
    fn with_native<R>(&self, f: impl FnOnce(&mut Native) -> R) -> Option<R> {
        match &self.inner {
            Inner::Native(m) => Some(f(&mut lock(m))),
            Inner::Py(_) => None,
        }
    }

    fn count(&self, op: IoOp, len: usize, r: &Result<(), DeviceError>) {
        let s = &self.stats;
        let (n, b) = match op {
            IoOp::Read => (&s.reads, Some(&s.read_bytes)),
            IoOp::Write => (&s.writes, Some(&s.write_bytes)),
            _ => (&s.flushes, None),
        };
        n.fetch_add(1, Ordering::Relaxed);
        match (r, b) {
            (Ok(()), Some(b)) => {
                b.fetch_add(len as u64, Ordering::Relaxed);
            }
            (Err(_), _) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// A `Dev` over an opened file.
pub fn file_dev(f: FileDevice) -> Dev {
    Dev::native(Native::File(f))
}

/// The errno a Python exception stands for: an `OSError`'s own, else EIO.
fn errno_of(py: Python<'_>, e: &PyErr) -> i32 {
    if e.is_instance_of::<PyOSError>(py) {
        if let Ok(n) = e
            .value(py)
            .getattr("errno")
            .and_then(|v| v.extract::<i32>())
        {
            if n > 0 {
                return n;
            }
        }
    }
    EIO
}

fn io_err(op: IoOp, offset: u64, errno: i32) -> DeviceError {
    DeviceError::Io { op, offset, errno }
}

impl PyDev {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        Python::with_gil(|py| {
            let fail = |e: &PyErr| io_err(IoOp::Read, offset, errno_of(py, e));
            let r = self
                .obj
                .call_method1(py, "read", (offset, buf.len()))
                .map_err(|e| fail(&e))?;
            let r = r.bind(py);
            // bytes, bytearray, memoryview: anything with a byte buffer of the right length.
            if let Ok(b) = r.downcast::<PyBytes>() {
                let b = b.as_bytes();
                if b.len() != buf.len() {
                    return Err(io_err(IoOp::Read, offset, EIO));
                }
                buf.copy_from_slice(b);
                return Ok(());
            }
            let pb = PyBuffer::<u8>::get(r).map_err(|_| io_err(IoOp::Read, offset, EIO))?;
            if pb.len_bytes() != buf.len() {
                return Err(io_err(IoOp::Read, offset, EIO));
            }
            pb.copy_to_slice(py, buf)
                .map_err(|_| io_err(IoOp::Read, offset, EIO))
        })
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        Python::with_gil(|py| {
            let data = PyBytes::new(py, buf);
            let r = self
                .obj
                .call_method1(py, "write", (offset, data))
                .map_err(|e| io_err(IoOp::Write, offset, errno_of(py, &e)))?;
            // None, or the number of bytes written: a short write is an error.
            match r.extract::<Option<usize>>(py) {
                Ok(None) => Ok(()),
                Ok(Some(n)) if n == buf.len() => Ok(()),
                _ => Err(io_err(IoOp::Write, offset, EIO)),
            }
        })
    }

    fn flush(&self) -> Result<(), DeviceError> {
        Python::with_gil(|py| {
            self.obj
                .call_method0(py, "flush")
                .map(|_| ())
                .map_err(|e| io_err(IoOp::Flush, 0, errno_of(py, &e)))
        })
    }
}

impl BlockDevice for Dev {
    fn size(&self) -> u64 {
        match &self.inner {
            Inner::Native(m) => lock(m).size(),
            Inner::Py(p) => p.size,
        }
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let r = match &self.inner {
            Inner::Native(m) => lock(m).dev().read_at(offset, buf),
            Inner::Py(p) => mdraid::device::check_range(IoOp::Read, offset, buf.len(), p.size)
                .and_then(|_| p.read_at(offset, buf)),
        };
        self.count(IoOp::Read, buf.len(), &r);
        r
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let r = match &self.inner {
            Inner::Native(m) => lock(m).dev().write_at(offset, buf),
            Inner::Py(p) => mdraid::device::check_range(IoOp::Write, offset, buf.len(), p.size)
                .and_then(|_| p.write_at(offset, buf)),
        };
        self.count(IoOp::Write, buf.len(), &r);
        r
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        let r = match &self.inner {
            Inner::Native(m) => lock(m).dev().flush(),
            Inner::Py(p) => p.flush(),
        };
        self.count(IoOp::Flush, 0, &r);
        r
    }
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        match &self.inner {
            Inner::Native(m) => {
                let r = lock(m).dev().write_at_fua(offset, buf);
                self.count(IoOp::Write, buf.len(), &r);
                r
            }
            Inner::Py(_) => {
                self.write_at(offset, buf)?;
                self.flush()
            }
        }
    }
}

/// Reads `size` from a Python device: a `size()` method or a `size` attribute.
fn py_size(obj: &Bound<'_, PyAny>) -> BindResult<u64> {
    let s = obj.getattr("size")?;
    let s = if s.is_callable() { s.call0()? } else { s };
    s.extract::<u64>().map_err(|_| {
        BindError::Invalid("a device's size() must be a non-negative int (bytes)".into())
    })
}

/// A member as given from Python, converted: its device and its name.
pub struct Given {
    pub name: String,
    pub dev: Dev,
}

/// Converts a member argument: one of the native device classes, a path (opened as a
/// `FileDevice`), or a Python object with `read`, `write`, `flush` and `size`.
pub fn to_dev(obj: &Bound<'_, PyAny>, read_only: bool, auto_name: usize) -> BindResult<Given> {
    if let Ok(d) = obj.downcast::<PyMemDevice>() {
        let d = d.get();
        return Ok(Given {
            name: d.name.clone(),
            dev: d.dev.clone(),
        });
    }
    if let Ok(d) = obj.downcast::<PyFileDevice>() {
        let d = d.get();
        return Ok(Given {
            name: d.name.clone(),
            dev: d.dev.clone(),
        });
    }
    if let Ok(d) = obj.downcast::<PyFaultyDevice>() {
        let d = d.get();
        return Ok(Given {
            name: d.name.clone(),
            dev: d.dev.clone(),
        });
    }
    if let Ok(d) = obj.downcast::<PyLatencyDevice>() {
        let d = d.get();
        return Ok(Given {
            name: d.name.clone(),
            dev: d.dev.clone(),
        });
    }
    if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
        let path: PathBuf = obj.extract()?;
        let name = path.display().to_string();
        let dev = open_file(obj.py(), &path, read_only)?;
        return Ok(Given {
            name,
            dev: Dev::native(Native::File(dev)),
        });
    }
    for m in ["read", "write", "flush", "size"] {
        if !obj.hasattr(m)? {
            return Err(BindError::Type(format!(
                "a member must be a path, an mdraid device or an object with read, write, flush \
                 and size (an mdraid.BlockDevice subclass); got {} without '{m}'",
                obj.get_type().name()?
            )));
        }
    }
    let size = py_size(obj)?;
    let name = match obj
        .getattr("name")
        .ok()
        .and_then(|n| n.extract::<String>().ok())
    {
        Some(n) if !n.is_empty() => n,
        _ => format!("pydev{auto_name}"),
    };
    Ok(Given {
        name,
        dev: Dev {
            inner: Inner::Py(Arc::new(PyDev {
                obj: obj.clone().unbind(),
                size,
            })),
            stats: Arc::default(),
        },
    })
}

fn open_file(py: Python<'_>, path: &std::path::Path, read_only: bool) -> BindResult<FileDevice> {
    let opts = OpenOptions {
        read_only,
        direct: false,
        lock: Lock::Auto,
    };
    py.allow_threads(|| FileDevice::open_with(path, opts))
        .map_err(|e| {
            let errno = e.errno().unwrap_or(EIO);
            BindError::Os(format!("cannot open {}: {e}", path.display()), errno)
        })
}

/// An offset from Python: a negative one is refused as InvalidArgument, not OverflowError.
pub fn offset_arg(v: i128, what: &str) -> BindResult<u64> {
    u64::try_from(v).map_err(|_| BindError::Invalid(format!("{what} must be >= 0, not {v}")))
}

// ---------------------------------------------------------------------------------------------
// The classes.

fn native_read(py: Python<'_>, dev: &Dev, offset: i128, length: i128) -> BindResult<Py<PyBytes>> {
    let offset = offset_arg(offset, "offset")?;
    let length = usize::try_from(offset_arg(length, "length")?)
        .map_err(|_| BindError::Invalid("length too large".into()))?;
    let size = py
        .allow_threads(|| dev.with_native(|n| n.size()))
        .unwrap_or(0);
    if offset.checked_add(length as u64).is_none_or(|e| e > size) {
        return Err(BindError::Invalid(format!(
            "read of {length} bytes at {offset} is beyond the device's {size} bytes"
        )));
    }
    let mut buf = crate::error::zeroed(length)?;
    py.allow_threads(|| {
        dev.with_native(|n| n.dev().read_at(offset, &mut buf))
            .unwrap_or(Ok(()))
    })?;
    Ok(PyBytes::new(py, &buf).unbind())
}

fn native_write(
    py: Python<'_>,
    dev: &Dev,
    offset: i128,
    data: &Bound<'_, PyAny>,
) -> BindResult<()> {
    let offset = offset_arg(offset, "offset")?;
    let data = bytes_arg(data)?;
    let size = py
        .allow_threads(|| dev.with_native(|n| n.size()))
        .unwrap_or(0);
    if offset
        .checked_add(data.len() as u64)
        .is_none_or(|e| e > size)
    {
        return Err(BindError::Invalid(format!(
            "write of {} bytes at {offset} is beyond the device's {size} bytes",
            data.len()
        )));
    }
    py.allow_threads(|| {
        dev.with_native(|n| n.dev().write_at(offset, &data))
            .unwrap_or(Ok(()))
    })?;
    Ok(())
}

fn native_flush(py: Python<'_>, dev: &Dev) -> BindResult<()> {
    py.allow_threads(|| dev.with_native(|n| n.dev().flush()).unwrap_or(Ok(())))?;
    Ok(())
}

fn native_size(py: Python<'_>, dev: &Dev) -> u64 {
    py.allow_threads(|| dev.with_native(|n| n.size()))
        .unwrap_or(0)
}

/// Bytes from any object with a contiguous byte buffer (bytes, bytearray, memoryview, ...).
pub fn bytes_arg(data: &Bound<'_, PyAny>) -> BindResult<Vec<u8>> {
    if let Ok(b) = data.downcast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if data.is_instance_of::<PyString>() {
        return Err(BindError::Type(
            "data must be bytes-like (bytes, bytearray, memoryview), not str".into(),
        ));
    }
    let pb = PyBuffer::<u8>::get(data).map_err(|_| {
        BindError::Type(format!(
            "data must be bytes-like (bytes, bytearray, memoryview), not {}",
            data.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    Ok(pb.to_vec(data.py())?)
}

static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

fn default_name(kind: &str, name: Option<String>) -> String {
    name.unwrap_or_else(|| format!("{kind}{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed)))
}

/// A device held in memory (a `bytes`-like disk), zero-filled.
///
/// ``MemDevice(size, name=None)``; ``MemDevice.from_bytes(data)`` starts from given contents.
/// Writes are durable at once (no cache). ``read``/``write``/``flush``/``size`` work on it
/// directly, also while it is a member (to inspect or corrupt a mirror in tests).
#[pyclass(module = "mdraid", name = "MemDevice", frozen)]
pub struct PyMemDevice {
    pub dev: Dev,
    #[pyo3(get)]
    pub name: String,
}

#[pymethods]
impl PyMemDevice {
    #[new]
    #[pyo3(signature = (size, name=None))]
    fn new(py: Python<'_>, size: i128, name: Option<String>) -> BindResult<Self> {
        let size = usize::try_from(offset_arg(size, "size")?)
            .map_err(|_| BindError::Invalid("size too large".into()))?;
        let data = py.allow_threads(|| crate::error::zeroed(size))?;
        Ok(PyMemDevice {
            dev: Dev::native(Native::Mem(MemDevice::from_vec(data))),
            name: default_name("mem", name),
        })
    }
    /// A device holding a copy of `data`.
    #[staticmethod]
    #[pyo3(signature = (data, name=None))]
    fn from_bytes(data: &Bound<'_, PyAny>, name: Option<String>) -> BindResult<Self> {
        Ok(PyMemDevice {
            dev: Dev::native(Native::Mem(MemDevice::from_vec(bytes_arg(data)?))),
            name: default_name("mem", name),
        })
    }
    /// ``length`` bytes at byte ``offset``.
    fn read(&self, py: Python<'_>, offset: i128, length: i128) -> BindResult<Py<PyBytes>> {
        native_read(py, &self.dev, offset, length)
    }
    /// Writes ``data`` (bytes-like) at byte ``offset``.
    fn write(&self, py: Python<'_>, offset: i128, data: &Bound<'_, PyAny>) -> BindResult<()> {
        native_write(py, &self.dev, offset, data)
    }
    /// Nothing to do: memory has no cache.
    fn flush(&self, py: Python<'_>) -> BindResult<()> {
        native_flush(py, &self.dev)
    }
    /// Size in bytes.
    fn size(&self, py: Python<'_>) -> u64 {
        native_size(py, &self.dev)
    }
    /// The whole contents as bytes.
    fn getvalue(&self, py: Python<'_>) -> BindResult<Py<PyBytes>> {
        let v = py
            .allow_threads(|| {
                self.dev.with_native(|n| match n {
                    Native::Mem(m) => m.as_slice().to_vec(),
                    _ => Vec::new(),
                })
            })
            .unwrap_or_default();
        Ok(PyBytes::new(py, &v).unbind())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "MemDevice(size={}, name={:?})",
            native_size(py, &self.dev),
            self.name
        )
    }
}

/// An image file or block device, opened for as long as this object (or an array using it)
/// lives; held exclusively (``flock`` on files, ``O_EXCL`` on block devices), shared when
/// ``read_only``.
#[pyclass(module = "mdraid", name = "FileDevice", frozen)]
pub struct PyFileDevice {
    pub dev: Dev,
    #[pyo3(get)]
    pub name: String,
}

#[pymethods]
impl PyFileDevice {
    #[new]
    #[pyo3(signature = (path, read_only=false, name=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        name: Option<String>,
    ) -> BindResult<Self> {
        let f = open_file(py, &path, read_only)?;
        Ok(PyFileDevice {
            dev: Dev::native(Native::File(f)),
            name: name.unwrap_or_else(|| path.display().to_string()),
        })
    }
    /// ``length`` bytes at byte ``offset``.
    fn read(&self, py: Python<'_>, offset: i128, length: i128) -> BindResult<Py<PyBytes>> {
        native_read(py, &self.dev, offset, length)
    }
    /// Writes ``data`` (bytes-like) at byte ``offset``.
    fn write(&self, py: Python<'_>, offset: i128, data: &Bound<'_, PyAny>) -> BindResult<()> {
        native_write(py, &self.dev, offset, data)
    }
    /// ``fsync``: completed writes become durable.
    fn flush(&self, py: Python<'_>) -> BindResult<()> {
        native_flush(py, &self.dev)
    }
    /// Size in bytes.
    fn size(&self, py: Python<'_>) -> u64 {
        native_size(py, &self.dev)
    }
    fn __repr__(&self) -> String {
        format!("FileDevice({:?})", self.name)
    }
}

fn parse_ops(ops: &str) -> BindResult<Ops> {
    Ok(match ops {
        "read" | "reads" => Ops::READ,
        "write" | "writes" => Ops::WRITE,
        "flush" | "flushes" => Ops::FLUSH,
        "rw" => Ops::RW,
        "all" => Ops::ALL,
        o => {
            return Err(BindError::Invalid(format!(
                "ops must be 'read', 'write', 'flush', 'rw' or 'all', not {o:?}"
            )))
        }
    })
}

/// Wraps another device and fails the requests its rules pick (fault injection).
///
/// ``FaultyDevice(inner, name=None)``: ``inner`` is any member (a native device, a path or a
/// Python device). A failed request never reaches ``inner``: a failed write leaves the old data,
/// a failed read returns nothing. Rules are added with :meth:`fail` and take effect on the next
/// request, also while the device is a member of a running array.
#[pyclass(module = "mdraid", name = "FaultyDevice", frozen)]
pub struct PyFaultyDevice {
    pub dev: Dev,
    ctl: FaultControl,
    rules: Mutex<HashMap<u64, RuleId>>,
    next_rule: AtomicU64,
    #[pyo3(get)]
    pub name: String,
}

impl PyFaultyDevice {
    fn install(&self, rule: FaultRule) -> u64 {
        let id = self.ctl.add(rule);
        let n = self.next_rule.fetch_add(1, Ordering::Relaxed);
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(n, id);
        n
    }
    fn rule(&self, id: u64) -> Option<RuleId> {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .copied()
    }
}

#[pymethods]
impl PyFaultyDevice {
    #[new]
    #[pyo3(signature = (inner, name=None))]
    fn new(inner: &Bound<'_, PyAny>, name: Option<String>) -> BindResult<Self> {
        let g = to_dev(inner, false, 0)?;
        let (fd, ctl) = FaultyDevice::new(g.dev);
        Ok(PyFaultyDevice {
            dev: Dev::native(Native::Faulty(fd)),
            ctl,
            rules: Mutex::new(HashMap::new()),
            next_rule: AtomicU64::new(1),
            name: name.unwrap_or_else(|| format!("faulty:{}", g.name)),
        })
    }

    /// Installs a rule and returns its id.
    ///
    /// ``ops``: ``"read"``, ``"write"``, ``"flush"``, ``"rw"`` or ``"all"``. ``start``/``end``:
    /// only requests overlapping that byte range (flushes never match a ranged rule).
    /// ``nth``: only the n-th matching request (1-based); ``after``: every matching request after
    /// the first ``after``; ``times``: the rule expires after firing that often. ``errno``: the
    /// error number the request fails with (EIO by default).
    #[pyo3(signature = (ops="rw", start=None, end=None, *, nth=None, after=None, times=None, errno=5))]
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        ops: &str,
        start: Option<i128>,
        end: Option<i128>,
        nth: Option<u64>,
        after: Option<u64>,
        times: Option<u64>,
        errno: i32,
    ) -> BindResult<u64> {
        let mut rule = FaultRule::on(parse_ops(ops)?);
        match (start, end) {
            (None, None) => {}
            (s, e) => {
                let s = offset_arg(s.unwrap_or(0), "start")?;
                let e = match e {
                    Some(e) => offset_arg(e, "end")?,
                    None => u64::MAX,
                };
                if e <= s {
                    return Err(BindError::Invalid(format!("empty range {s}..{e}")));
                }
                rule = rule.overlapping(s..e);
            }
        }
        if nth.is_some() && after.is_some() {
            return Err(BindError::Invalid("give nth or after, not both".into()));
        }
        if let Some(n) = nth {
            rule = rule.nth(n);
        }
        if let Some(k) = after {
            rule = rule.after(k);
        }
        if let Some(t) = times {
            rule = rule.times(t);
        }
        if errno <= 0 {
            return Err(BindError::Invalid("errno must be positive".into()));
        }
        Ok(self.install(rule.errno(errno)))
    }

    /// Every request fails (a dead disk) until :meth:`clear` or the rule is removed.
    fn kill(&self) -> u64 {
        self.install(FaultRule::all_ops())
    }

    /// Removes a rule; False if it was not installed.
    fn remove(&self, rule: u64) -> bool {
        match self.rule(rule) {
            Some(id) => self.ctl.remove(id),
            None => false,
        }
    }

    /// Removes every rule (the device works again).
    fn clear(&self) {
        self.ctl.clear()
    }

    /// How many requests a rule failed.
    fn hits(&self, rule: u64) -> u64 {
        self.rule(rule).map_or(0, |id| self.ctl.hits(id))
    }

    /// Requests seen and failed: a dict with ``reads``, ``writes``, ``flushes``,
    /// ``read_faults``, ``write_faults``, ``flush_faults``.
    fn stats(&self) -> HashMap<&'static str, u64> {
        let s = self.ctl.stats();
        HashMap::from([
            ("reads", s.reads),
            ("writes", s.writes),
            ("flushes", s.flushes),
            ("read_faults", s.read_faults),
            ("write_faults", s.write_faults),
            ("flush_faults", s.flush_faults),
        ])
    }

    /// Reads through the rules, as the array would.
    fn read(&self, py: Python<'_>, offset: i128, length: i128) -> BindResult<Py<PyBytes>> {
        native_read(py, &self.dev, offset, length)
    }
    /// Writes through the rules, as the array would.
    fn write(&self, py: Python<'_>, offset: i128, data: &Bound<'_, PyAny>) -> BindResult<()> {
        native_write(py, &self.dev, offset, data)
    }
    /// Flushes through the rules.
    fn flush(&self, py: Python<'_>) -> BindResult<()> {
        native_flush(py, &self.dev)
    }
    /// Size in bytes.
    fn size(&self, py: Python<'_>) -> u64 {
        native_size(py, &self.dev)
    }
}

/// Wraps another device and makes each request take ``latency_us`` microseconds of real time
/// (the calling thread sleeps, without the GIL): a slow disk for concurrency tests.
#[pyclass(module = "mdraid", name = "LatencyDevice", frozen)]
pub struct PyLatencyDevice {
    pub dev: Dev,
    #[pyo3(get)]
    pub name: String,
}

#[pymethods]
impl PyLatencyDevice {
    #[new]
    #[pyo3(signature = (inner, latency_us, name=None))]
    fn new(inner: &Bound<'_, PyAny>, latency_us: i128, name: Option<String>) -> BindResult<Self> {
        let latency_us = offset_arg(latency_us, "latency_us")?;
        let g = to_dev(inner, false, 0)?;
        let model = ServiceModel::fixed(latency_us.saturating_mul(1000));
        let d = LatencyDevice::new(g.dev, model).with_real_sleep(true);
        Ok(PyLatencyDevice {
            dev: Dev::native(Native::Latency(d)),
            name: name.unwrap_or_else(|| format!("slow:{}", g.name)),
        })
    }
    /// ``length`` bytes at byte ``offset`` (after the latency).
    fn read(&self, py: Python<'_>, offset: i128, length: i128) -> BindResult<Py<PyBytes>> {
        native_read(py, &self.dev, offset, length)
    }
    /// Writes ``data`` at byte ``offset`` (after the latency).
    fn write(&self, py: Python<'_>, offset: i128, data: &Bound<'_, PyAny>) -> BindResult<()> {
        native_write(py, &self.dev, offset, data)
    }
    /// Flushes the inner device.
    fn flush(&self, py: Python<'_>) -> BindResult<()> {
        native_flush(py, &self.dev)
    }
    /// Size in bytes.
    fn size(&self, py: Python<'_>) -> u64 {
        native_size(py, &self.dev)
    }
}
