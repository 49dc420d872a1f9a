//! `examine` and `examine_bitmap`: a member's metadata as typed Python objects and as mdadm's
//! text, both from the core's parsers and report builders.

use crate::device::{to_dev, Dev};
use crate::error::{BindError, BindResult};
use mdraid::device::BlockDevice;
use mdraid::format::badblocks::{log_location, BadBlockLog};
use mdraid::format::bitmap::{count_bits, location_sb1, offset_sb0, BitmapSuper};
use mdraid::format::probe::{probe, Found, Role, Superblock};
use mdraid::format::sb0;
use mdraid::format::uuid::format_bytes;
use mdraid::report::bitmap::examine_member_bitmap_text;
use mdraid::report::{examine_sb0, examine_sb1, ExamineOpts};
use pyo3::prelude::*;
use std::collections::HashMap;

/// Reads up to `len` bytes at `offset`, fewer at the end of the device, nothing on error.
fn read_upto(dev: &mut Dev, offset: u64, len: u64) -> Vec<u8> {
    let n = dev.size().saturating_sub(offset).min(len) as usize;
    let mut buf = vec![0u8; n];
    match dev.read_at(offset, &mut buf) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// The bytes where the superblock says its bitmap lives (header and bits, at most 4 MiB).
fn bitmap_bytes(dev: &mut Dev, found: &Found) -> Option<Vec<u8>> {
    let off = match &found.sb {
        Superblock::V1(s, _) => location_sb1(s)?,
        Superblock::V0(s) if s.state & sb0::STATE_BITMAP_PRESENT != 0 => {
            offset_sb0(found.dev_sectors)?
        }
        Superblock::V0(_) => return None,
    };
    Some(read_upto(dev, off, 4 << 20))
}

/// The write-intent bitmap of a member, from its header and bits.
#[pyclass(module = "mdraid", name = "BitmapInfo", frozen, get_all)]
#[derive(Clone, Debug)]
pub struct BitmapInfo {
    /// Bytes of array data per bit.
    pub chunksize: u32,
    /// The bitmap's event count.
    pub events: u64,
    /// Events up to which bits were cleared.
    pub events_cleared: u64,
    /// Array sectors the bitmap covers.
    pub sync_size: u64,
    /// Seconds between the daemon's passes.
    pub daemon_sleep: u32,
    /// The header's state bits (1: stale, 2: write error).
    pub state: u32,
    /// Chunks (bits) in the bitmap.
    pub chunks: u64,
    /// Set bits (dirty chunks).
    pub dirty: u64,
}

#[pymethods]
impl BitmapInfo {
    fn __repr__(&self) -> String {
        format!(
            "BitmapInfo(chunksize={}, events={}, events_cleared={}, chunks={}, dirty={})",
            self.chunksize, self.events, self.events_cleared, self.chunks, self.dirty
        )
    }
}

fn bitmap_info(bytes: &[u8], uuid: &[u8; 16]) -> Option<BitmapInfo> {
    let h = BitmapSuper::parse(bytes).ok()?;
    if &h.uuid != uuid {
        return None;
    }
    let chunks = h.chunks();
    let bits = bytes.get(mdraid::format::bitmap::BITMAP_HEADER_BYTES..)?;
    let avail = (bits.len() as u64).saturating_mul(8);
    Some(BitmapInfo {
        chunksize: h.chunksize,
        events: h.events,
        events_cleared: h.events_cleared,
        sync_size: h.sync_size,
        daemon_sleep: h.daemon_sleep,
        state: h.state,
        chunks,
        dirty: count_bits(bits, chunks.min(avail)),
    })
}

/// A member's superblock, as ``mdraid.examine`` found it.
///
/// Sizes and offsets are in 512-byte sectors, as md stores them. For 0.90 superblocks, which
/// have no such fields: ``name`` is empty, ``data_offset`` is 0, ``data_size`` is the used
/// component size, ``super_offset`` is the sector it was found at and ``feature_map`` is 1
/// when the superblock says there is a bitmap (the 1.x meaning of bit 0), else 0.
#[pyclass(module = "mdraid", name = "Superblock", frozen)]
pub struct PySuperblock {
    found: Found,
    bitmap_raw: Option<Vec<u8>>,
    path: String,
    #[pyo3(get)]
    version: String,
    #[pyo3(get)]
    array_uuid: String,
    #[pyo3(get)]
    device_uuid: Option<String>,
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    level: i32,
    #[pyo3(get)]
    raid_disks: u32,
    #[pyo3(get)]
    events: u64,
    #[pyo3(get)]
    data_offset: u64,
    #[pyo3(get)]
    data_size: u64,
    #[pyo3(get)]
    super_offset: u64,
    /// "clean" or "active" (written while the array had writes in flight).
    #[pyo3(get)]
    state: String,
    /// The slot this device holds ("Active device N"), or None (spare, faulty).
    #[pyo3(get)]
    dev_role: Option<u32>,
    /// "active", "spare", "faulty" or "journal".
    #[pyo3(get)]
    role: String,
    #[pyo3(get)]
    feature_map: u32,
    #[pyo3(get)]
    checksum_ok: bool,
    #[pyo3(get)]
    ctime: u64,
    #[pyo3(get)]
    bitmap: Option<BitmapInfo>,
    /// Bad-block log entries: (first sector on the device, sectors).
    #[pyo3(get)]
    bad_blocks: Vec<(u64, u32)>,
}

#[pymethods]
impl PySuperblock {
    /// mdadm's ``--examine`` text, byte for byte as mdadm 4.2 prints it.
    ///
    /// ``device``: the name in the header line (default: the path examined). ``homehost``: the
    /// host for "(local to host ...)" (default: none). ``device_names``: ``{(major, minor):
    /// path}`` for the 0.90 device table.
    #[pyo3(signature = (device=None, homehost=None, device_names=None))]
    fn examine_text(
        &self,
        device: Option<String>,
        homehost: Option<String>,
        device_names: Option<HashMap<(u32, u32), String>>,
    ) -> String {
        let device = device.unwrap_or_else(|| self.path.clone());
        let names = device_names.unwrap_or_default();
        let lookup = |ma: u32, mi: u32| names.get(&(ma, mi)).cloned();
        let opts = ExamineOpts {
            device: Some(&device),
            homehost: homehost.as_deref(),
            dev_sectors: self.found.dev_sectors,
            bitmap_header: self.bitmap_raw.as_deref(),
            dev_name: Some(&lookup),
        };
        match &self.found.sb {
            Superblock::V1(s, _) => examine_sb1(s, &opts).to_text(),
            Superblock::V0(s) => examine_sb0(s, &opts).to_text(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Superblock(version={:?}, array_uuid={:?}, level={}, raid_disks={}, events={}, role={:?}, dev_role={})",
            self.version,
            self.array_uuid,
            self.level,
            self.raid_disks,
            self.events,
            self.role,
            py_opt(self.dev_role)
        )
    }
}

/// An optional number as Python prints it.
pub fn py_opt(v: Option<u32>) -> String {
    v.map_or_else(|| "None".into(), |v| v.to_string())
}

fn role_names(r: Role) -> (Option<u32>, &'static str) {
    match r {
        Role::Active(s) => (Some(s), "active"),
        Role::Spare => (None, "spare"),
        Role::Faulty => (None, "faulty"),
        Role::Journal => (None, "journal"),
    }
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn superblock_of(mut dev: Dev, path: String) -> BindResult<PySuperblock> {
    let found = probe(&mut dev, None)?;
    let bitmap_raw = bitmap_bytes(&mut dev, &found);
    let sb = &found.sb;
    let (dev_role, role) = role_names(sb.role());
    let uuid = sb.uuid();
    let bitmap = bitmap_raw
        .as_deref()
        .and_then(|b| bitmap_info(b, &sb.bitmap_uuid()));
    let common = |name: String,
                  device_uuid: Option<String>,
                  data_offset: u64,
                  data_size: u64,
                  super_offset: u64,
                  feature_map: u32,
                  bad_blocks: Vec<(u64, u32)>| PySuperblock {
        found: found.clone(),
        bitmap_raw: bitmap_raw.clone(),
        path: path.clone(),
        version: sb.version().as_str().to_string(),
        array_uuid: format_bytes(&uuid),
        device_uuid,
        name,
        level: sb.level(),
        raid_disks: sb.raid_disks(),
        events: sb.events(),
        data_offset,
        data_size,
        super_offset,
        state: if sb.is_clean() { "clean" } else { "active" }.to_string(),
        dev_role,
        role: role.to_string(),
        feature_map,
        checksum_ok: sb.checksum_ok(),
        ctime: sb.ctime_secs(),
        bitmap: bitmap.clone(),
        bad_blocks,
    };
    Ok(match sb {
        Superblock::V1(s, _) => {
            let bad_blocks = log_location(s)
                .and_then(|(off, len)| {
                    let raw = read_upto(&mut dev, off, len as u64);
                    BadBlockLog::parse_for(s, &raw).ok()
                })
                .map(|l| {
                    l.entries
                        .iter()
                        .map(|e| (e.start_sector, e.len_sectors))
                        .collect()
                })
                .unwrap_or_default();
            common(
                c_str(&s.set_name),
                Some(format_bytes(&s.device_uuid)),
                s.data_offset,
                s.data_size,
                s.super_offset,
                s.feature_map,
                bad_blocks,
            )
        }
        Superblock::V0(s) => common(
            String::new(),
            None,
            0,
            u64::from(s.size) * 2,
            found.sector,
            u32::from(s.state & sb0::STATE_BITMAP_PRESENT != 0),
            Vec::new(),
        ),
    })
}

/// Opens what `examine` is given: a path read-only and unlocked (as ``mdadm -E`` looks at a
/// member in use), or a device object as it is.
fn examined(obj: &Bound<'_, PyAny>) -> BindResult<(Dev, String)> {
    if obj.is_instance_of::<pyo3::types::PyString>() || obj.hasattr("__fspath__")? {
        let path: std::path::PathBuf = obj.extract()?;
        let opts = mdraid::device::OpenOptions {
            read_only: true,
            direct: false,
            lock: mdraid::device::Lock::Unlocked,
        };
        let f = obj
            .py()
            .allow_threads(|| mdraid::device::FileDevice::open_with(&path, opts))
            .map_err(|e| {
                BindError::Os(
                    format!("cannot open {}: {e}", path.display()),
                    e.errno().unwrap_or(crate::error::EIO),
                )
            })?;
        return Ok((crate::device::file_dev(f), path.display().to_string()));
    }
    let g = to_dev(obj, true, 0)?;
    Ok((g.dev, g.name))
}

/// Reads the md superblock of a member (a path or a device) and returns it typed.
///
/// Raises :class:`SuperblockError` when there is none, :class:`DeviceError` when the device
/// cannot be read.
#[pyfunction]
pub fn examine(py: Python<'_>, device: &Bound<'_, PyAny>) -> BindResult<PySuperblock> {
    let (dev, path) = examined(device)?;
    py.allow_threads(|| crate::error::no_panic(|| superblock_of(dev, path)))
}

/// mdadm's ``--examine-bitmap`` text for a member (a path or a device).
///
/// ``device``: the name on the "Filename" line (default: the path). Raises
/// :class:`FormatError` when the superblock records no bitmap.
#[pyfunction]
#[pyo3(signature = (device, name=None))]
pub fn examine_bitmap(
    py: Python<'_>,
    device: &Bound<'_, PyAny>,
    name: Option<String>,
) -> BindResult<String> {
    let (mut dev, path) = examined(device)?;
    let name = name.unwrap_or(path);
    py.allow_threads(|| {
        crate::error::no_panic(|| {
            let found = probe(&mut dev, None)?;
            match bitmap_bytes(&mut dev, &found) {
                Some(bytes) => Ok(examine_member_bitmap_text(
                    &name,
                    &bytes,
                    found.sb.version(),
                )),
                None => Err(BindError::NoBitmap(format!("{name} doesn't have bitmap"))),
            }
        })
    })
}
