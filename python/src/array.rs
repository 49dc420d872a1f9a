//! `mdraid.Array`: a running RAID1 array over member devices, driven through the core's
//! blocking facade ([`crate::drive`]).
//!
//! Threads: the core array sits behind a mutex, taken with the GIL released, so calls from
//! several Python threads are safe and run one at a time on one array (while other Python
//! threads, and calls on other arrays, go on). A non-blocking sync action is a Rust thread that
//! holds the array until the action ends; calls on the array wait for it meanwhile.

use crate::device::{bytes_arg, offset_arg, to_dev, Dev, Given};
use crate::device::{PyFaultyDevice, PyFileDevice, PyLatencyDevice, PyMemDevice};
use crate::drive::{self, Arr};
use crate::error::{no_panic, BindError, BindResult};
use mdraid::array::{
    AddOptions, AddOutcome, AssembleOptions, CreateOptions, CreateSlot, MemberState,
    SyncAction as SyncKind, SyncReport, SyncStop,
};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

static NEXT_TID: AtomicU64 = AtomicU64::new(1);
thread_local! {
    static TID: u64 = NEXT_TID.fetch_add(1, Ordering::Relaxed);
}

fn tid() -> u64 {
    TID.with(|t| *t)
}

/// The core array and who holds it.
struct Shared {
    array: Mutex<Option<Arr>>,
    /// The thread inside a call on this array (0: none): a Python device that calls back into
    /// its own array from its read/write would otherwise deadlock.
    owner: AtomicU64,
}

impl Shared {
    fn check_reentry(&self) -> BindResult<()> {
        if self.owner.load(Ordering::Acquire) == tid() {
            return Err(BindError::Invalid(
                "an array was called from one of its own devices' methods".into(),
            ));
        }
        Ok(())
    }

    /// Runs `f` on the open array. Call with the GIL released. `locked` runs once the array
    /// is held (before `f`).
    fn run<R>(
        &self,
        locked: impl FnOnce(),
        f: impl FnOnce(&mut Arr) -> BindResult<R>,
    ) -> BindResult<R> {
        let mut g = self.array.lock().unwrap_or_else(|e| e.into_inner());
        self.owner.store(tid(), Ordering::Release);
        let r = match g.as_mut() {
            None => Err(BindError::Closed),
            Some(a) => {
                locked();
                no_panic(|| f(a))
            }
        };
        self.owner.store(0, Ordering::Release);
        r
    }

    fn take(&self) -> BindResult<Arr> {
        let mut g = self.array.lock().unwrap_or_else(|e| e.into_inner());
        g.take().ok_or(BindError::Closed)
    }
}

/// How a sync action ended.
#[pyclass(module = "mdraid", name = "SyncResult", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct SyncResult {
    /// "resync", "recover", "check" or "repair" (md's words).
    pub action: String,
    /// Sectors found to differ between mirrors (md's ``mismatch_cnt``; check and repair).
    pub mismatch_sectors: u64,
    /// Sectors written to members by the action.
    pub sectors_copied: u64,
    /// Member sectors below which the action is done: all of them when it ran to its end,
    /// its last checkpoint when interrupted.
    pub sectors_done: u64,
    /// It stopped before the end (a member failed, or :meth:`SyncJob.stop`).
    pub interrupted: bool,
}

#[pymethods]
impl SyncResult {
    fn __repr__(&self) -> String {
        format!(
            "SyncResult(action={:?}, mismatch_sectors={}, sectors_copied={}, sectors_done={}, interrupted={})",
            self.action, self.mismatch_sectors, self.sectors_copied, self.sectors_done,
            if self.interrupted { "True" } else { "False" }
        )
    }
}

impl From<SyncReport> for SyncResult {
    fn from(r: SyncReport) -> Self {
        SyncResult {
            action: r.action.as_str().to_string(),
            mismatch_sectors: r.mismatch_cnt,
            sectors_copied: r.sectors_copied,
            sectors_done: r.sectors_done,
            interrupted: r.interrupted,
        }
    }
}

/// What ``add`` / ``re_add`` did.
#[pyclass(module = "mdraid", name = "AddResult", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct AddResult {
    /// "spare" (every slot was filled), "rebuilt" (rebuilt in full into an empty slot) or
    /// "re-added" (back in its old slot, only what changed meanwhile copied).
    pub outcome: String,
    /// The rebuild, for "rebuilt" and "re-added".
    pub sync: Option<SyncResult>,
}

#[pymethods]
impl AddResult {
    fn __repr__(&self) -> String {
        match &self.sync {
            Some(r) => format!(
                "AddResult(outcome={:?}, sync={})",
                self.outcome,
                r.__repr__()
            ),
            None => format!("AddResult(outcome={:?}, sync=None)", self.outcome),
        }
    }
}

/// One member of a running array, with I/O counters taken at the device.
#[pyclass(module = "mdraid", name = "MemberInfo", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct MemberInfo {
    /// The member's name (its path, or the device's ``name``).
    pub name: String,
    /// "in_sync", "rebuilding", "spare" or "faulty".
    pub state: String,
    /// The slot it holds or is rebuilt into; None for spares and faulty members.
    pub slot: Option<u32>,
    /// Reads, writes and flushes the array sent to the device.
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    /// Bytes read and written successfully.
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Requests the device failed.
    pub errors: u64,
    /// Sectors the engine repaired after read errors (md's ``cnt_corrected_read``).
    pub corrected: u64,
    /// The engine's current (decaying) read-error count for the member.
    pub read_errors: u32,
}

#[pymethods]
impl MemberInfo {
    fn __repr__(&self) -> String {
        format!(
            "MemberInfo(name={:?}, state={:?}, slot={}, reads={}, writes={}, errors={})",
            self.name,
            self.state,
            crate::examine::py_opt(self.slot),
            self.reads,
            self.writes,
            self.errors
        )
    }
}

/// The array's state, as ``mdadm --detail`` reports it, plus its members.
#[pyclass(module = "mdraid", name = "Detail", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct Detail {
    /// Metadata version: "1.2", "1.1", "1.0" or "0.90".
    pub version: String,
    /// The array UUID, as mdadm prints it.
    pub uuid: String,
    /// The array name ("homehost:name"; empty for 0.90).
    pub name: String,
    pub level: i32,
    pub raid_disks: u32,
    /// Array size in bytes.
    pub size: u64,
    /// Sectors of each member used.
    pub component_sectors: u64,
    pub events: u64,
    /// "clean" or "active" (superblocks marked dirty: writes since the last clean point).
    pub state: String,
    /// Fewer in-sync members than slots.
    pub degraded: bool,
    /// The mirrors may differ until a resync (unclean shutdown, or created without
    /// ``assume_clean``).
    pub needs_resync: bool,
    pub bitmap: bool,
    pub active_devices: u32,
    pub working_devices: u32,
    pub failed_devices: u32,
    pub spare_devices: u32,
    pub members: Vec<MemberInfo>,
}

#[pymethods]
impl Detail {
    fn __repr__(&self) -> String {
        format!(
            "Detail(version={:?}, raid_disks={}, size={}, events={}, state={:?}, degraded={}, members=[{}])",
            self.version,
            self.raid_disks,
            self.size,
            self.events,
            self.state,
            if self.degraded { "True" } else { "False" },
            self.members
                .iter()
                .map(|m| m.__repr__())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// A Python progress callback, called with the GIL; its first exception is kept and raised
/// when the action ends (the action itself cannot be interrupted by it).
struct Progress {
    cb: Option<Py<PyAny>>,
    err: Option<PyErr>,
}

impl Progress {
    fn new(cb: Option<Py<PyAny>>) -> Self {
        Progress { cb, err: None }
    }
    fn call(&mut self, done: u64, total: u64) {
        if self.err.is_some() {
            return;
        }
        if let Some(cb) = &self.cb {
            Python::with_gil(|py| {
                if let Err(e) = cb.call1(py, (done, total)) {
                    self.err = Some(e);
                }
            });
        }
    }
    fn finish<T>(self, r: BindResult<T>) -> BindResult<T> {
        let v = r?;
        match self.err {
            Some(e) => Err(BindError::Py(e)),
            None => Ok(v),
        }
    }
}

/// How a member is named in fail/remove: by name, by index, or by the device object.
enum Key {
    Name(String),
    Index(usize),
    Ident(usize),
}

fn key_of(obj: &Bound<'_, PyAny>) -> BindResult<Key> {
    if obj.is_instance_of::<PyBool>() {
        return Err(BindError::Type(
            "a member is a name, an index or a device".into(),
        ));
    }
    if obj.is_instance_of::<PyInt>() {
        let i: i128 = obj.extract()?;
        return Ok(Key::Index(
            usize::try_from(offset_arg(i, "member index")?)
                .map_err(|_| BindError::Invalid("member index too large".into()))?,
        ));
    }
    if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
        let p: std::path::PathBuf = obj.extract()?;
        return Ok(Key::Name(p.display().to_string()));
    }
    let native = [
        obj.downcast::<PyMemDevice>()
            .ok()
            .map(|d| d.get().dev.identity()),
        obj.downcast::<PyFileDevice>()
            .ok()
            .map(|d| d.get().dev.identity()),
        obj.downcast::<PyFaultyDevice>()
            .ok()
            .map(|d| d.get().dev.identity()),
        obj.downcast::<PyLatencyDevice>()
            .ok()
            .map(|d| d.get().dev.identity()),
    ];
    Ok(Key::Ident(
        native
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(obj.as_ptr() as usize),
    ))
}

fn resolve(a: &Arr, key: &Key) -> BindResult<String> {
    let ms = a.members();
    let found = match key {
        Key::Name(n) => ms.iter().find(|m| &m.name == n),
        Key::Index(i) => ms.get(*i),
        Key::Ident(id) => a
            .devices()
            .iter()
            .position(|d| d.identity() == *id)
            .and_then(|i| ms.get(i)),
    };
    found.map(|m| m.name.clone()).ok_or_else(|| {
        BindError::Invalid(match key {
            Key::Name(n) => format!("{n} is not a member of this array"),
            Key::Index(i) => format!("no member {i} (the array has {})", ms.len()),
            Key::Ident(_) => "that device is not a member of this array".into(),
        })
    })
}

fn member_infos(a: &Arr) -> Vec<MemberInfo> {
    a.members()
        .iter()
        .zip(a.devices())
        .enumerate()
        .map(|(i, (m, dev))| {
            let (state, slot) = match (m.state, m.rebuild) {
                (MemberState::InSync(s), _) => ("in_sync", Some(s)),
                (MemberState::Spare, Some((s, _))) => ("rebuilding", Some(s)),
                (MemberState::Spare, None) => ("spare", None),
                (MemberState::Faulty, _) => ("faulty", None),
            };
            let st = &dev.stats;
            let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
            let engine = a.counters(i).unwrap_or_default();
            MemberInfo {
                name: m.name.clone(),
                state: state.to_string(),
                slot,
                reads: g(&st.reads),
                writes: g(&st.writes),
                flushes: g(&st.flushes),
                read_bytes: g(&st.read_bytes),
                write_bytes: g(&st.write_bytes),
                errors: g(&st.errors),
                corrected: engine.corrected,
                read_errors: engine.read_errors,
            }
        })
        .collect()
}

/// Converts the member list; no device is named twice.
fn members_arg(
    members: &Bound<'_, PyAny>,
    read_only: bool,
    allow_missing: bool,
) -> BindResult<Vec<Option<Given>>> {
    if members.is_instance_of::<PyString>() || members.is_instance_of::<PyBytes>() {
        return Err(BindError::Type(
            "members must be a list of devices or paths, not one string".into(),
        ));
    }
    let iter = members
        .try_iter()
        .map_err(|_| BindError::Type("members must be a list of devices or paths".into()))?;
    let mut out: Vec<Option<Given>> = Vec::new();
    let mut paths: Vec<std::path::PathBuf> = Vec::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        let missing = item.is_none()
            || item
                .downcast::<PyString>()
                .is_ok_and(|s| s.to_str().is_ok_and(|s| s == "missing"));
        if missing {
            if !allow_missing {
                return Err(BindError::Invalid(
                    "'missing' (None) only stands for an empty slot when creating".into(),
                ));
            }
            out.push(None);
            continue;
        }
        // A file named twice (also through another path to it) is refused before it is opened
        // twice (the second open would find it locked).
        if item.is_instance_of::<PyString>() || item.hasattr("__fspath__")? {
            let p: std::path::PathBuf = item.extract()?;
            let canon = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if paths.contains(&canon) {
                return Err(BindError::Invalid(format!(
                    "{} is given twice",
                    p.display()
                )));
            }
            paths.push(canon);
        }
        let g = to_dev(&item, read_only, i)?;
        for o in out.iter().flatten() {
            if o.dev.identity() == g.dev.identity() {
                return Err(BindError::Invalid(format!("{} is given twice", g.name)));
            }
            if o.name == g.name {
                return Err(BindError::Invalid(format!(
                    "two members are named {:?}: give devices distinct names",
                    g.name
                )));
            }
        }
        out.push(Some(g));
    }
    if out.iter().all(Option::is_none) {
        return Err(BindError::Invalid("no member devices given".into()));
    }
    Ok(out)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut b = [0u8; N];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
        for (i, x) in b.iter_mut().enumerate() {
            *x = (seed.rotate_left((i * 7) as u32) >> 8) as u8 ^ i as u8;
        }
    }
    b
}

fn uuid_arg(u: Option<&Bound<'_, PyAny>>) -> BindResult<[u8; 16]> {
    let Some(u) = u else {
        return Ok(random_bytes());
    };
    if let Ok(s) = u.extract::<String>() {
        return mdraid::format::uuid::parse(&s)
            .ok_or_else(|| BindError::Invalid(format!("{s:?} is not a UUID")));
    }
    let b = bytes_arg(u)?;
    b.try_into()
        .map_err(|_| BindError::Invalid("a UUID is 16 bytes".into()))
}

fn bitmap_arg(bitmap: &Bound<'_, PyAny>, chunk: Option<u64>) -> BindResult<BitmapRequest> {
    if let Ok(b) = bitmap.downcast::<PyBool>() {
        return Ok(if b.is_true() {
            BitmapRequest::Internal { chunk_bytes: chunk }
        } else {
            BitmapRequest::None
        });
    }
    match bitmap.extract::<String>().as_deref() {
        Ok("internal") => Ok(BitmapRequest::Internal { chunk_bytes: chunk }),
        Ok("none") => Ok(BitmapRequest::None),
        Ok("auto") => Ok(BitmapRequest::Auto),
        _ => Err(BindError::Invalid(
            "bitmap must be True, False, 'internal', 'none' or 'auto'".into(),
        )),
    }
}

fn sync_kind(action: &str) -> BindResult<SyncKind> {
    Ok(match action {
        "resync" => SyncKind::Resync,
        "check" => SyncKind::Check,
        "repair" => SyncKind::Repair,
        "recover" | "recovery" => SyncKind::Recovery,
        a => {
            return Err(BindError::Invalid(format!(
                "sync action must be 'resync', 'check', 'repair' or 'recover', not {a:?}"
            )))
        }
    })
}

/// A running RAID1 array (md's raid1 personality) over member devices.
///
/// Made by :meth:`create` or :meth:`assemble`; ends with :meth:`stop` (superblocks written
/// clean) or :meth:`abandon` (nothing more written, as a power cut leaves it). As a context
/// manager it stops on exit. Once ended, every call raises :class:`ArrayClosedError`; an array
/// that is garbage-collected without either is abandoned.
///
/// Offsets and lengths are bytes; unaligned requests are read-modify-written by sectors.
#[pyclass(module = "mdraid", name = "Array", frozen)]
pub struct PyArray {
    shared: Arc<Shared>,
    /// Devices assembly left out: (name, reason).
    #[pyo3(get)]
    kicked: Vec<(String, String)>,
    /// Assembly found the superblocks unclean (a resync is owed).
    #[pyo3(get)]
    unclean: bool,
}

impl PyArray {
    fn new(a: Arr, kicked: Vec<(String, String)>, unclean: bool) -> Self {
        PyArray {
            shared: Arc::new(Shared {
                array: Mutex::new(Some(a)),
                owner: AtomicU64::new(0),
            }),
            kicked,
            unclean,
        }
    }

    /// Runs `f` on the array with the GIL released.
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Arr) -> BindResult<R> + Send,
    ) -> BindResult<R> {
        self.shared.check_reentry()?;
        py.allow_threads(|| self.shared.run(|| {}, f))
    }

    fn sync(
        &self,
        py: Python<'_>,
        kind: SyncKind,
        progress: Option<Py<PyAny>>,
    ) -> BindResult<SyncResult> {
        let mut p = Progress::new(progress);
        let r = self.with(py, |a| {
            Ok(drive::run_sync(a, kind, &mut |d, t| p.call(d, t))?)
        });
        p.finish(r).map(SyncResult::from)
    }

    fn add_with(
        &self,
        py: Python<'_>,
        device: &Bound<'_, PyAny>,
        opts: AddOptions,
        progress: Option<Py<PyAny>>,
    ) -> BindResult<AddResult> {
        self.shared.check_reentry()?;
        let g = to_dev(device, false, 0)?;
        let mut p = Progress::new(progress);
        let r = self.with(py, |a| {
            if a.devices().iter().any(|d| d.identity() == g.dev.identity()) {
                return Err(BindError::Invalid(format!(
                    "{} is already a member",
                    g.name
                )));
            }
            Ok(drive::add(a, g.name, g.dev, &opts, &mut |d, t| {
                p.call(d, t)
            })?)
        });
        let (outcome, sync) = match p.finish(r)? {
            AddOutcome::Spare => ("spare", None),
            AddOutcome::Rebuilt(r) => ("rebuilt", Some(r.into())),
            AddOutcome::ReAdded(r) => ("re-added", Some(r.into())),
        };
        Ok(AddResult {
            outcome: outcome.to_string(),
            sync,
        })
    }
}

#[pymethods]
impl PyArray {
    /// Creates a RAID1 array over ``members`` (``mdadm --create --level=1``).
    ///
    /// ``members``: paths (opened as :class:`FileDevice`), mdraid devices, Python devices
    /// (:class:`BlockDevice` subclasses), or ``None`` / ``"missing"`` for an empty slot. The first
    /// ``raid_disks`` (default: all) fill the slots, the rest become spares. ``metadata``:
    /// "1.2" (default), "1.1", "1.0" or "0.90". ``bitmap``: True (internal, default), False,
    /// "auto" (mdadm's default: only above 100 GiB). ``bitmap_chunk``: bytes per bit.
    /// ``size_kib``: use only this much of each member. ``uuid``: "xxxxxxxx:xxxxxxxx:..." or
    /// 16 bytes (default random). ``write_mostly`` / ``failfast``: indices into ``members``.
    /// Without ``assume_clean`` the array owes a resync, as mdadm leaves it.
    #[staticmethod]
    #[pyo3(signature = (members, level=1, metadata="1.2", bitmap=None, *, raid_disks=None,
        name="mdraid", homehost=None, assume_clean=false, size_kib=None, bitmap_chunk=None,
        uuid=None, write_mostly=vec![], failfast=vec![]))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        members: &Bound<'_, PyAny>,
        level: i64,
        metadata: &str,
        bitmap: Option<&Bound<'_, PyAny>>,
        raid_disks: Option<u32>,
        name: &str,
        homehost: Option<String>,
        assume_clean: bool,
        size_kib: Option<u64>,
        bitmap_chunk: Option<u64>,
        uuid: Option<&Bound<'_, PyAny>>,
        write_mostly: Vec<usize>,
        failfast: Vec<usize>,
    ) -> BindResult<Self> {
        if level != 1 {
            return Err(BindError::Invalid(format!(
                "only RAID level 1 is supported, not {level}"
            )));
        }
        let version = MetadataVersion::parse(metadata).ok_or_else(|| {
            BindError::Invalid(format!(
                "metadata must be '1.2', '1.1', '1.0' or '0.90', not {metadata:?}"
            ))
        })?;
        let bitmap = match bitmap {
            Some(b) => bitmap_arg(b, bitmap_chunk)?,
            None => BitmapRequest::Internal {
                chunk_bytes: bitmap_chunk,
            },
        };
        let given = members_arg(members, false, true)?;
        for &i in write_mostly.iter().chain(&failfast) {
            if given.get(i).is_none_or(Option::is_none) {
                return Err(BindError::Invalid(format!(
                    "write_mostly/failfast index {i} is not a device in members"
                )));
            }
        }
        let n = given.len() as u32;
        let slots: Vec<CreateSlot<Dev>> = given
            .into_iter()
            .enumerate()
            .map(|(i, g)| match g {
                None => CreateSlot::Missing,
                Some(g) => CreateSlot::Device {
                    name: g.name,
                    dev: g.dev,
                    write_mostly: write_mostly.contains(&i),
                    failfast: failfast.contains(&i),
                },
            })
            .collect();
        let opts = CreateOptions {
            version,
            raid_disks: raid_disks.unwrap_or(n),
            bitmap,
            name: name.to_string(),
            homehost,
            assume_clean,
            size_kib,
            now: 0,
            uuid: uuid_arg(uuid)?,
            seed: u64::from_le_bytes(random_bytes()),
            md_minor: 0,
        };
        let a = py.allow_threads(|| no_panic(|| Ok(drive::create(slots, opts)?)))?;
        Ok(PyArray::new(a, Vec::new(), false))
    }

    /// Assembles an array from its members by md's rules (``mdadm --assemble``).
    ///
    /// ``run``: start degraded when members the superblocks record as working are missing.
    /// ``force``: start even when degraded or unclean. ``readonly``: write nothing; writes are
    /// refused with :class:`ReadOnlyError`. Devices left out are in :attr:`kicked`.
    #[staticmethod]
    #[pyo3(signature = (members, run=false, force=false, readonly=false))]
    fn assemble(
        py: Python<'_>,
        members: &Bound<'_, PyAny>,
        run: bool,
        force: bool,
        readonly: bool,
    ) -> BindResult<Self> {
        let given = members_arg(members, readonly, false)?;
        let devs: Vec<(String, Dev)> = given
            .into_iter()
            .flatten()
            .map(|g| (g.name, g.dev))
            .collect();
        let opts = AssembleOptions {
            run,
            force,
            readonly,
        };
        let (a, report) = py.allow_threads(|| no_panic(|| Ok(drive::assemble(devs, &opts)?)))?;
        let kicked = report
            .kicked
            .iter()
            .map(|k| (k.name.clone(), k.reason.to_string()))
            .collect();
        Ok(PyArray::new(a, kicked, report.unclean))
    }

    /// Array size in bytes.
    #[getter]
    fn size(&self, py: Python<'_>) -> BindResult<u64> {
        self.with(py, |a| Ok(a.size()))
    }

    /// Number of mirrors (slots).
    #[getter]
    fn raid_disks(&self, py: Python<'_>) -> BindResult<u32> {
        self.with(py, |a| Ok(a.raid_disks()))
    }

    /// The superblocks' event count.
    #[getter]
    fn events(&self, py: Python<'_>) -> BindResult<u64> {
        self.with(py, |a| Ok(a.events()))
    }

    /// Fewer in-sync members than slots.
    #[getter]
    fn degraded(&self, py: Python<'_>) -> BindResult<bool> {
        self.with(py, |a| Ok(a.is_degraded()))
    }

    /// Whether the array was stopped, abandoned or closed.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        if self.shared.owner.load(Ordering::Acquire) == tid() {
            return false; // asked from inside one of its own calls: it is open
        }
        py.allow_threads(|| {
            self.shared
                .array
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
        })
    }

    /// The array UUID, as mdadm prints it.
    #[getter]
    fn uuid(&self, py: Python<'_>) -> BindResult<String> {
        self.with(py, |a| {
            Ok(mdraid::format::uuid::format_bytes(
                &a.lead_superblock().uuid(),
            ))
        })
    }

    /// The members, in the order given (devices added later at the end).
    #[getter]
    pub(crate) fn members(&self, py: Python<'_>) -> BindResult<Vec<MemberInfo>> {
        self.with(py, |a| Ok(member_infos(a)))
    }

    /// ``length`` bytes at array byte ``offset``.
    ///
    /// Raises :class:`InvalidArgument` for a negative offset or length or a range beyond the
    /// array, :class:`DeviceError` (EIO) when no mirror could deliver the data.
    fn read(&self, py: Python<'_>, offset: i128, length: i128) -> BindResult<Py<PyBytes>> {
        let offset = offset_arg(offset, "offset")?;
        let length = offset_arg(length, "length")?;
        let buf = self.with(py, |a| {
            if offset.checked_add(length).is_none_or(|e| e > a.size()) {
                return Err(BindError::Core(
                    mdraid::array::ArrayError::OutOfRange {
                        op: "read",
                        offset,
                        len: length,
                        size: a.size(),
                    }
                    .into(),
                ));
            }
            let mut buf = crate::error::zeroed(usize::try_from(length).unwrap_or(usize::MAX))?;
            drive::read(a, offset, &mut buf)?;
            Ok(buf)
        })?;
        Ok(PyBytes::new(py, &buf).unbind())
    }

    /// Reads ``len(buffer)`` bytes at ``offset`` into a writable buffer (bytearray,
    /// memoryview, ...); returns the number of bytes read.
    fn readinto(
        &self,
        py: Python<'_>,
        offset: i128,
        buffer: &Bound<'_, PyAny>,
    ) -> BindResult<usize> {
        let offset = offset_arg(offset, "offset")?;
        let pb = PyBuffer::<u8>::get(buffer).map_err(|_| {
            BindError::Type(
                "readinto needs a writable bytes-like buffer (bytearray, memoryview)".into(),
            )
        })?;
        if pb.readonly() {
            return Err(BindError::Type(
                "readinto needs a writable buffer, not a read-only one".into(),
            ));
        }
        let n = pb.len_bytes();
        let data = self.with(py, |a| {
            let mut buf = crate::error::zeroed(n)?;
            drive::read(a, offset, &mut buf)?;
            Ok(buf)
        })?;
        pb.copy_from_slice(py, &data)?;
        Ok(n)
    }

    /// Writes ``data`` (bytes, bytearray, memoryview) at array byte ``offset`` on every
    /// working mirror; succeeds while one mirror takes it. ``fua``: durable on return.
    #[pyo3(signature = (offset, data, fua=false))]
    fn write(
        &self,
        py: Python<'_>,
        offset: i128,
        data: &Bound<'_, PyAny>,
        fua: bool,
    ) -> BindResult<usize> {
        let offset = offset_arg(offset, "offset")?;
        let data = bytes_arg(data)?;
        let n = data.len();
        self.with(py, |a| Ok(drive::write(a, offset, &data, fua)?))?;
        Ok(n)
    }

    /// Makes every completed write durable on every working member.
    fn flush(&self, py: Python<'_>) -> BindResult<()> {
        self.with(py, |a| Ok(drive::flush(a)?))
    }

    /// Runs a resync if one is owed (unclean shutdown, new array); ``progress(done, total)``
    /// sees sectors.
    #[pyo3(signature = (progress=None))]
    fn resync(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> BindResult<SyncResult> {
        self.sync(py, SyncKind::Resync, progress)
    }

    /// Reads every mirror and counts mismatched sectors; writes nothing.
    #[pyo3(signature = (progress=None))]
    fn check(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> BindResult<SyncResult> {
        self.sync(py, SyncKind::Check, progress)
    }

    /// Like check, and copies the first good mirror over differing ones.
    #[pyo3(signature = (progress=None))]
    fn repair(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> BindResult<SyncResult> {
        self.sync(py, SyncKind::Repair, progress)
    }

    /// Starts a sync action ("resync", "check", "repair", "recover") in a background thread
    /// and returns its :class:`SyncJob` (poll ``progress()``, ``wait()``, ``stop()``). The
    /// job holds the array until it ends: other calls on this array wait for it.
    fn start_sync(&self, py: Python<'_>, action: &str) -> BindResult<SyncJob> {
        let kind = sync_kind(action)?;
        self.shared.check_reentry()?;
        let st = Arc::new(JobState::default());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let shared = Arc::clone(&self.shared);
        let job = Arc::clone(&st);
        std::thread::Builder::new()
            .name("mdraid-sync".into())
            .spawn(move || {
                let r = shared.run(
                    move || {
                        let _ = tx.send(());
                    },
                    |a| {
                        let progress = &mut |d, t| {
                            job.total.store(t, Ordering::Relaxed);
                            job.done.store(d, Ordering::Relaxed);
                        };
                        Ok(drive::run_sync_stoppable(a, kind, progress, &job.stop)?)
                    },
                );
                let mut g = job.result.lock().unwrap_or_else(|e| e.into_inner());
                *g = Some(r.map_err(Some));
                job.cv.notify_all();
            })
            .map_err(|e| BindError::Invalid(format!("cannot start a thread: {e}")))?;
        // Returns once the job holds the array; if it found the array closed, says so.
        if py.allow_threads(move || rx.recv()).is_err() {
            let err = py.allow_threads(|| {
                let mut g = st.result.lock().unwrap_or_else(|e| e.into_inner());
                while g.is_none() {
                    g = st.cv.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                match g.take() {
                    Some(Err(Some(e))) => e,
                    _ => BindError::Closed,
                }
            });
            return Err(err);
        }
        Ok(SyncJob {
            st,
            action: action.to_string(),
            err: Mutex::new(None),
        })
    }

    /// Lets time pass for a long-lived array: what md does when idle comes due (superblocks
    /// marked clean ~200 ms after the last write, bitmap bits cleared after idle daemon
    /// passes). Every other call does this too; call it when the array sits idle.
    fn tick(&self, py: Python<'_>) -> BindResult<()> {
        self.with(py, |a| Ok(drive::tick(a)?))
    }

    /// md's ``sync_action`` ``idle`` (``freeze=False``) or ``frozen`` while no action runs
    /// (to stop a running :class:`SyncJob`, call its ``stop``; this call waits for it, as every
    /// call does). Frozen: no sync action starts on its own (a spare stays a spare, an added
    /// device too, an owed resync waits) until ``sync_stop()`` or an explicit action. Idle
    /// ends a freeze and runs md's recovery check at once: a recovery onto a waiting spare or
    /// an owed resync runs to its end here; returns the last such action's
    /// :class:`SyncResult`, or ``None``.
    #[pyo3(signature = (freeze=false, progress=None))]
    fn sync_stop(
        &self,
        py: Python<'_>,
        freeze: bool,
        progress: Option<Py<PyAny>>,
    ) -> BindResult<Option<SyncResult>> {
        let mut p = Progress::new(progress);
        let r = self.with(py, |a| {
            Ok(drive::stop_sync(a, freeze, &mut |d, t| p.call(d, t))?)
        });
        p.finish(r).map(|r| r.map(SyncResult::from))
    }

    /// Whether sync actions are frozen (:meth:`sync_stop` or :meth:`SyncJob.stop` with
    /// ``freeze=True``; md's ``sync_action`` reads ``frozen``).
    #[getter]
    fn sync_frozen(&self, py: Python<'_>) -> BindResult<bool> {
        self.with(py, |a| Ok(a.sync_frozen()))
    }

    /// Sets md's sync speed limits in KiB/s (``sync_speed_min`` / ``sync_speed_max``) for later
    /// sync actions; they pace the action in real time.
    fn set_speed_limits(&self, py: Python<'_>, min_kib: u64, max_kib: u64) -> BindResult<()> {
        if min_kib == 0 || max_kib < min_kib {
            return Err(BindError::Invalid(format!(
                "speed limits need 0 < min <= max, not {min_kib}..{max_kib}"
            )));
        }
        self.with(py, |a| Ok(drive::set_speed_limits(a, min_kib, max_kib)?))
    }

    /// Fails a member (``mdadm --fail``): the survivors record it as faulty. ``member``: its
    /// name, its index in :attr:`members`, or the device object. The last in-sync mirror
    /// cannot fail (:class:`InvalidArgument`).
    fn fail(&self, py: Python<'_>, member: &Bound<'_, PyAny>) -> BindResult<()> {
        let key = key_of(member)?;
        self.with(py, |a| {
            let name = resolve(a, &key)?;
            Ok(drive::fail(a, &name)?)
        })
    }

    /// Removes a faulty or spare member (``mdadm --remove``); the device is released. A device
    /// assembly left out can be named by its path.
    fn remove(&self, py: Python<'_>, member: &Bound<'_, PyAny>) -> BindResult<()> {
        let key = key_of(member)?;
        let missing = match self.with(py, |a| match resolve(a, &key) {
            Ok(name) => drive::remove(a, &name, None)
                .map(|_| None)
                .map_err(Into::into),
            Err(e) => Ok(Some(e)),
        })? {
            None => return Ok(()),
            Some(e) => e,
        };
        // Not a member: a device assembly left out, named by its path or given as an object,
        // is forgotten from the survivors' role tables.
        let outsider = match &key {
            Key::Name(n) if self.kicked.iter().any(|(k, _)| k == n) => to_dev(member, false, 0)?,
            Key::Ident(_) => to_dev(member, false, 0)?,
            _ => return Err(missing),
        };
        self.with(py, |a| {
            drive::remove(a, &outsider.name, Some(outsider.dev))?;
            Ok(())
        })
    }

    /// Adds a device (``mdadm --add``): a recent member whose changes the bitmap covers comes
    /// back to its slot copying only those (re-add); any other device becomes a spare, rebuilt
    /// at once into an empty slot. Runs the rebuild to its end.
    #[pyo3(signature = (device, write_mostly=false, failfast=false, progress=None))]
    fn add(
        &self,
        py: Python<'_>,
        device: &Bound<'_, PyAny>,
        write_mostly: bool,
        failfast: bool,
        progress: Option<Py<PyAny>>,
    ) -> BindResult<AddResult> {
        let opts = AddOptions {
            write_mostly,
            failfast,
            re_add_only: false,
            device_uuid: Some(random_bytes()),
        };
        self.add_with(py, device, opts, progress)
    }

    /// Re-adds a recent member (``mdadm --re-add``); refused (:class:`InvalidArgument`) when
    /// the device cannot come back to its slot.
    #[pyo3(signature = (device, progress=None))]
    fn re_add(
        &self,
        py: Python<'_>,
        device: &Bound<'_, PyAny>,
        progress: Option<Py<PyAny>>,
    ) -> BindResult<AddResult> {
        let opts = AddOptions {
            re_add_only: true,
            ..AddOptions::default()
        };
        self.add_with(py, device, opts, progress)
    }

    /// The array's state and members (:class:`Detail`).
    fn detail(&self, py: Python<'_>) -> BindResult<Detail> {
        self.with(py, |a| {
            let info = a.detail_info("/dev/md0", None);
            let name = match a.lead_superblock() {
                mdraid::format::probe::Superblock::V1(s, _) => {
                    let end = s.set_name.iter().position(|&c| c == 0).unwrap_or(32);
                    String::from_utf8_lossy(&s.set_name[..end]).into_owned()
                }
                mdraid::format::probe::Superblock::V0(_) => String::new(),
            };
            Ok(Detail {
                version: info.version.clone(),
                uuid: mdraid::format::uuid::format_bytes(&a.lead_superblock().uuid()),
                name,
                level: info.level,
                raid_disks: info.raid_disks,
                size: a.size(),
                component_sectors: a.component_sectors(),
                events: a.events(),
                state: if a.is_dirty() { "active" } else { "clean" }.to_string(),
                degraded: a.is_degraded(),
                needs_resync: a.needs_resync(),
                bitmap: a.bitmap().is_some(),
                active_devices: info.active_devices,
                working_devices: info.working_devices,
                failed_devices: info.failed_devices,
                spare_devices: info.spare_devices,
                members: member_infos(a),
            })
        })
    }

    /// ``mdadm --detail`` text for the array, named ``device`` in the header.
    #[pyo3(signature = (device="/dev/md0", homehost=None))]
    fn detail_text(
        &self,
        py: Python<'_>,
        device: &str,
        homehost: Option<String>,
    ) -> BindResult<String> {
        self.with(py, |a| {
            Ok(mdraid::report::detail_array(&a.detail_info(device, homehost)).to_text())
        })
    }

    /// Stops the array: pending writes flushed, superblocks written clean, devices released.
    /// The array is closed afterwards, even when this raises.
    fn stop(&self, py: Python<'_>) -> BindResult<()> {
        self.shared.check_reentry()?;
        py.allow_threads(|| {
            let a = self.shared.take()?;
            no_panic(|| Ok(drive::stop(a).map(drop)?))
        })
    }

    /// Closes the array without writing anything more, as a power cut would leave the members
    /// (for crash tests). Completed writes that were not flushed stay wherever the devices
    /// put them.
    fn abandon(&self, py: Python<'_>) -> BindResult<()> {
        self.shared.check_reentry()?;
        py.allow_threads(|| {
            let a = self.shared.take()?;
            drop(drive::abandon(a));
            Ok(())
        })
    }

    /// :meth:`stop` unless already closed.
    pub(crate) fn close(&self, py: Python<'_>) -> BindResult<()> {
        match self.stop(py) {
            Err(BindError::Closed) => Ok(()),
            r => r,
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> BindResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.with(py, |a| {
            Ok(format!(
                "<mdraid.Array raid1 {} mirrors, {} bytes, {} members>",
                a.raid_disks(),
                a.size(),
                a.members().len()
            ))
        }) {
            Ok(s) => s,
            Err(_) => "<mdraid.Array closed>".into(),
        }
    }
}

#[derive(Default)]
struct JobState {
    done: AtomicU64,
    total: AtomicU64,
    /// `SyncJob.stop`'s request, taken by the job's thread between member I/Os.
    stop: SyncStop,
    /// The outcome once the job ended; the error is taken by the first `wait`.
    result: Mutex<Option<Result<SyncReport, Option<BindError>>>>,
    cv: Condvar,
}

/// A sync action running in the background (:meth:`Array.start_sync`).
#[pyclass(module = "mdraid", name = "SyncJob", frozen)]
pub struct SyncJob {
    st: Arc<JobState>,
    /// The action asked for.
    #[pyo3(get)]
    action: String,
    err: Mutex<Option<PyErr>>,
}

#[pymethods]
impl SyncJob {
    /// ``(sectors done, sectors in total)`` so far (``(0, 0)`` before the first report).
    fn progress(&self) -> (u64, u64) {
        (
            self.st.done.load(Ordering::Relaxed),
            self.st.total.load(Ordering::Relaxed),
        )
    }

    /// Stops the action (md's ``sync_action`` written while it runs; returns at once, ``wait``
    /// for the outcome). ``freeze=False`` is md's ``idle``: a check or repair ends
    /// (``interrupted``); a resync or recovery starts again at once from its checkpoint (md's
    /// recovery check) and the job runs it to its end. ``freeze=True`` is md's ``frozen``: the
    /// action ends at its checkpoint and nothing starts on its own until
    /// :meth:`Array.sync_stop` or an explicit action. No effect once the job has ended.
    #[pyo3(signature = (freeze=false))]
    fn stop(&self, freeze: bool) {
        self.st.stop.request(freeze);
    }

    /// Whether the action has ended.
    #[getter]
    fn done(&self) -> bool {
        self.st
            .result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Waits for the end (at most ``timeout`` seconds: then :class:`TimeoutError`) and returns
    /// the :class:`SyncResult`, or raises the action's error.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<SyncResult> {
        let deadline = timeout
            .map(|t| std::time::Instant::now() + std::time::Duration::from_secs_f64(t.max(0.0)));
        let out = py.allow_threads(|| {
            let mut g = self.st.result.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(r) = g.as_mut() {
                    return Some(match r {
                        Ok(rep) => Ok(*rep),
                        Err(e) => Err(e.take()),
                    });
                }
                match deadline {
                    None => g = self.st.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                    Some(d) => {
                        let now = std::time::Instant::now();
                        if now >= d {
                            return None;
                        }
                        g = self
                            .st
                            .cv
                            .wait_timeout(g, d - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
        });
        match out {
            None => Err(PyTimeoutError::new_err(format!(
                "{} still running",
                self.action
            ))),
            Some(Ok(rep)) => Ok(rep.into()),
            Some(Err(e)) => {
                let mut cached = self.err.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(e) = e {
                    *cached = Some(PyErr::from(e));
                }
                Err(cached
                    .as_ref()
                    .map(|e| e.clone_ref(py))
                    .unwrap_or_else(|| crate::error::MdraidError::new_err("sync action failed")))
            }
        }
    }
}
