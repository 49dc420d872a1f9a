//! Assembly and creation inside the kernel: the core's blocking [`Array`] over member devices
//! whose reads and writes are C hooks doing synchronous bio I/O (process context), then
//! [`Array::into_machine`] hands the running array to the C side as a [`Machine`]; a hot add
//! hands a device to the running machine.
//!
//! Every rule (which devices form the array, how a new one is laid out, how a spare is
//! rebuilt) is the core's; this file only moves arguments across the C ABI.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::fmt::Write;

use mdraid::array::machine::Now;
use mdraid::array::{AddOptions, AssembleOptions, CreateOptions, CreateSlot};
use mdraid::device::{BlockDevice, DeviceError, IoOp};
use mdraid::format::geometry::BitmapRequest;
use mdraid::format::MetadataVersion;

use crate::machine::KMachine;

extern "C" {
    /// Synchronous I/O on a member: `op` 0 read, 1 write, 2 flush, 3 write + FUA; `len`
    /// bytes at byte `offset` to/from `buf` (any alignment; the C side bounces). 0 or -errno.
    pub fn mdraid_k_dev_io(ctx: *mut c_void, op: u32, offset: u64, buf: *mut u8, len: usize)
        -> i32;
}

/// A member device as the C side describes it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KDevDesc {
    /// The C side's device context (passed back to [`mdraid_k_dev_io`] and in the output).
    pub ctx: *mut c_void,
    /// Size in bytes.
    pub size: u64,
    /// Logical block size.
    pub lbs: u32,
    /// Device number.
    pub major: u32,
    /// Device number.
    pub minor: u32,
    /// Name (e.g. "vda"), NUL-terminated, at most 31 bytes.
    pub name: [u8; 32],
}

struct KDev(KDevDesc);

impl KDev {
    fn io(&mut self, op: u32, offset: u64, buf: *mut u8, len: usize) -> Result<(), DeviceError> {
        let iop = match op {
            0 => IoOp::Read,
            2 => IoOp::Flush,
            _ => IoOp::Write,
        };
        let end = offset.checked_add(len as u64);
        if op != 2 && end.is_none_or(|e| e > self.0.size) {
            return Err(DeviceError::OutOfRange {
                op: iop,
                offset,
                len: len as u64,
                size: self.0.size,
            });
        }
        // SAFETY: `buf` points to `len` bytes the caller owns for the call (a slice below);
        // the hook does not keep it.
        let r = unsafe { mdraid_k_dev_io(self.0.ctx, op, offset, buf, len) };
        if r < 0 {
            return Err(DeviceError::Io {
                op: iop,
                offset,
                errno: -r,
            });
        }
        Ok(())
    }
}

impl BlockDevice for KDev {
    fn size(&self) -> u64 {
        self.0.size
    }
    fn logical_block_size(&self) -> u32 {
        self.0.lbs.max(512)
    }
    fn device_number(&self) -> Option<(u32, u32)> {
        Some((self.0.major, self.0.minor))
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.io(0, offset, buf.as_mut_ptr(), buf.len())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        // The hook only reads from `buf` for a write.
        self.io(1, offset, buf.as_ptr().cast_mut(), buf.len())
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.io(2, 0, core::ptr::null_mut(), 0)
    }
    fn write_at_fua(&mut self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.io(3, offset, buf.as_ptr().cast_mut(), buf.len())
    }
}

/// Array-wide parameters of a new array (md's `level`, `raid_disks`, `metadata_version`,
/// `bitmap/` attributes as the C side collected them).
#[repr(C)]
pub struct KCreate {
    /// 0 → 0.90, 10 → 1.0, 11 → 1.1, 12 → 1.2.
    pub version: u32,
    /// Mirrors.
    pub raid_disks: u32,
    /// 0 no bitmap, 1 internal.
    pub bitmap: u32,
    /// Bitmap chunk in bytes (0: mdadm's choice).
    pub bitmap_chunk: u64,
    /// Mark in sync without a resync.
    pub assume_clean: u32,
    /// Array UUID (random, from the C side).
    pub uuid: [u8; 16],
    /// Seed for device UUIDs (random).
    pub seed: u64,
    /// The array's minor (0.90 preferred minor).
    pub md_minor: u32,
    /// Array name, NUL-terminated.
    pub name: [u8; 32],
}

/// Where the results go: `ctx_out[i]` is member `i`'s device context (the others given
/// were left out and belong to the caller again), `*nmembers` how many.
#[repr(C)]
pub struct KResult {
    /// The machine, on success.
    pub machine: *mut KMachine,
    /// Member contexts in machine order (caller-provided, as many entries as devices given).
    pub ctx_out: *mut *mut c_void,
    /// Members written to `ctx_out`.
    pub nmembers: usize,
    /// An error message, NUL-terminated (caller-provided buffer).
    pub msg: *mut u8,
    /// Size of `msg`.
    pub msg_len: usize,
}

fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from(core::str::from_utf8(&b[..n]).unwrap_or("?"))
}

/// A `fmt::Write` into a C buffer, truncating, always NUL-terminated.
pub struct CBuf<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> CBuf<'a> {
    /// Wraps `len` bytes at `p` (NULL or 0 gives a sink).
    ///
    /// # Safety
    /// `p` is NULL or valid for `len` writes during `'a`.
    pub unsafe fn new(p: *mut u8, len: usize) -> CBuf<'a> {
        let buf: &mut [u8] = if p.is_null() || len == 0 {
            &mut []
        } else {
            // SAFETY: by the contract.
            unsafe { core::slice::from_raw_parts_mut(p, len) }
        };
        if let Some(b) = buf.first_mut() {
            *b = 0;
        }
        CBuf { buf, at: 0 }
    }
}

impl Write for CBuf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &c in s.as_bytes() {
            if self.at + 1 >= self.buf.len() {
                break;
            }
            self.buf[self.at] = c;
            self.at += 1;
            self.buf[self.at] = 0;
        }
        Ok(())
    }
}

/// # Safety
/// `devs` points to `n` descriptors; `res` is valid, its buffers as documented.
unsafe fn finish(
    a: mdraid::Result<mdraid::array::Array<KDev>>,
    now: Now,
    res: &mut KResult,
) -> i64 {
    // SAFETY: the caller's message buffer.
    let mut msg = unsafe { CBuf::new(res.msg, res.msg_len) };
    let a = match a {
        Ok(a) => a,
        Err(e) => {
            let _ = write!(msg, "{e}");
            return -22;
        }
    };
    let resync = a.needs_resync();
    let (m, devs) = match a.into_machine(now) {
        Ok(x) => x,
        Err(e) => {
            let _ = write!(msg, "{e}");
            return -22;
        }
    };
    for (i, d) in devs.iter().enumerate() {
        // SAFETY: `ctx_out` has room for every device given, and members are a subset.
        unsafe { *res.ctx_out.add(i) = d.0.ctx };
    }
    res.nmembers = devs.len();
    res.machine = Box::into_raw(Box::new(KMachine::new(m, resync)));
    0
}

/// # Safety
/// `devs` points to `n` readable descriptors.
unsafe fn take_devs(devs: *const KDevDesc, n: usize) -> Option<Vec<KDevDesc>> {
    if devs.is_null() || n == 0 {
        return None;
    }
    // SAFETY: by contract, `n` descriptors.
    Some(unsafe { core::slice::from_raw_parts(devs, n) }.to_vec())
}

/// Assembles the array carried by `devs` (md's rules: freshest leads, non-fresh kicked, a
/// degraded start only with `run`), then hands it over as a machine in `res`. Reads and
/// writes metadata through [`mdraid_k_dev_io`]. `flags`: bit 0 run, bit 1 force, bit 2
/// read-only. 0 or a negative errno with `res.msg` saying why.
///
/// # Safety
/// `devs` points to `n` descriptors; `res` is valid with `ctx_out` holding `n` entries.
unsafe fn assemble(
    devs: *const KDevDesc,
    n: usize,
    flags: u32,
    mono_ns: u64,
    wall_secs: u64,
    res: *mut KResult,
) -> i64 {
    // SAFETY: by contract.
    let (Some(devs), Some(res)) = (unsafe { take_devs(devs, n) }, unsafe { res.as_mut() }) else {
        return -22;
    };
    let list = devs
        .into_iter()
        .map(|d| (cstr(&d.name), KDev(d)))
        .collect::<Vec<_>>();
    let opts = AssembleOptions {
        run: flags & 1 != 0,
        force: flags & 2 != 0,
        readonly: flags & 4 != 0,
    };
    let a = mdraid::array::Array::assemble(list, &opts).map(|(a, _report)| a);
    let now = Now { mono_ns, wall_secs };
    // SAFETY: as ours.
    unsafe { finish(a, now, res) }
}

/// Creates a RAID1 array over `devs` (all of them slots, in order; md's `new_dev` order) with
/// mdadm's layout, then hands it over as a machine. 0 or a negative errno with `res.msg`.
///
/// # Safety
/// As [`assemble`]; `opts` points to one [`KCreate`].
unsafe fn create(
    devs: *const KDevDesc,
    n: usize,
    opts: *const KCreate,
    mono_ns: u64,
    wall_secs: u64,
    res: *mut KResult,
) -> i64 {
    // SAFETY: by contract.
    let (Some(devs), Some(o), Some(res)) = (
        unsafe { take_devs(devs, n) },
        unsafe { opts.as_ref() },
        unsafe { res.as_mut() },
    ) else {
        return -22;
    };
    let version = match o.version {
        0 => MetadataVersion::V0_90,
        10 => MetadataVersion::V1_0,
        11 => MetadataVersion::V1_1,
        12 => MetadataVersion::V1_2,
        _ => return -22,
    };
    let slots = devs
        .into_iter()
        .map(|d| CreateSlot::Device {
            name: cstr(&d.name),
            dev: KDev(d),
            write_mostly: false,
            failfast: false,
        })
        .collect::<Vec<_>>();
    let copts = CreateOptions {
        version,
        raid_disks: o.raid_disks,
        bitmap: if o.bitmap == 0 {
            BitmapRequest::None
        } else {
            BitmapRequest::Internal {
                chunk_bytes: (o.bitmap_chunk != 0).then_some(o.bitmap_chunk),
            }
        },
        name: cstr(&o.name),
        homehost: None,
        assume_clean: o.assume_clean != 0,
        size_kib: None,
        now: wall_secs,
        uuid: o.uuid,
        seed: o.seed,
        md_minor: o.md_minor,
    };
    let a = mdraid::array::Array::create(slots, &copts);
    let now = Now { mono_ns, wall_secs };
    // SAFETY: as ours.
    unsafe { finish(a, now, res) }
}

/// Whether `dev` carries an md superblock the core recognises: 1, 0, or a negative errno
/// when it cannot be read.
///
/// # Safety
/// `dev` points to one descriptor.
unsafe fn has_superblock(dev: *const KDevDesc) -> i64 {
    // SAFETY: by contract.
    let Some(d) = (unsafe { dev.as_ref() }) else {
        return -22;
    };
    let mut k = KDev(*d);
    match mdraid::format::probe::probe(&mut k, None) {
        Ok(_) => 1,
        Err(mdraid::Error::Format(_)) => 0,
        Err(mdraid::Error::Device(e)) => -i64::from(e.errno().unwrap_or(5)),
        Err(_) => 0,
    }
}

/// md's `array_state` = active: assembles the array the devices carry when any of them has a
/// superblock the core recognises ([`assemble`], `flags` as there), else creates a new one over
/// all of them ([`create`] with `opts`; not read-only). 0 assembled, 1 created, or a negative
/// errno with `res.msg` saying why.
///
/// # Safety
/// As [`create`].
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_activate(
    devs: *const KDevDesc,
    n: usize,
    flags: u32,
    opts: *const KCreate,
    mono_ns: u64,
    wall_secs: u64,
    res: *mut KResult,
) -> i64 {
    if devs.is_null() || n == 0 {
        return -22;
    }
    let mut any = false;
    for i in 0..n {
        // SAFETY: `devs` points to `n` descriptors.
        match unsafe { has_superblock(devs.add(i)) } {
            r if r < 0 => return r,
            r => any |= r == 1,
        }
    }
    if any {
        // SAFETY: by contract.
        unsafe { assemble(devs, n, flags, mono_ns, wall_secs, res) }
    } else if flags & 4 != 0 {
        -22
    } else {
        // SAFETY: by contract.
        match unsafe { create(devs, n, opts, mono_ns, wall_secs, res) } {
            0 => 1,
            e => e,
        }
    }
}

/// Hot add (md's `new_dev` on a running array, mdadm --add): decides through the machine
/// ([`Machine::plan_add`](mdraid::array::machine::Machine::plan_add)) how the device at `dev`
/// joins — its old slot (re-add) or a fresh superblock as a spare — and hands it to the
/// running machine ([`Machine::add_member`](mdraid::array::machine::Machine::add_member)),
/// which writes its metadata and rebuilds it through the normal I/O path. Reads the device
/// (its superblock, a re-added device's bad-block log) through [`mdraid_k_dev_io`]. The
/// machine must be idle ([`crate::machine`]'s quiesce command first). Returns the new
/// member's index, or a negative errno with `msg` saying why.
///
/// # Safety
/// `m` is a live machine used by no one else during the call; `dev` points to one
/// descriptor; `uuid` to 16 bytes; `msg` is NULL or valid for `msg_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_add(
    m: *mut KMachine,
    dev: *const KDevDesc,
    uuid: *const [u8; 16],
    msg: *mut u8,
    msg_len: usize,
) -> i64 {
    // SAFETY: the caller's message buffer.
    let mut out = unsafe { CBuf::new(msg, msg_len) };
    // SAFETY: by contract.
    let (Some(k), Some(d), Some(uuid)) = (unsafe { m.as_mut() }, unsafe { dev.as_ref() }, unsafe {
        uuid.as_ref()
    }) else {
        return -22;
    };
    let mut kd = KDev(*d);
    match add(k, &mut kd, *uuid) {
        Ok(i) => i64::try_from(i).unwrap_or(-22),
        Err((errno, e)) => {
            let _ = write!(out, "{e}");
            -i64::from(errno)
        }
    }
}

fn add(
    k: &mut KMachine,
    dev: &mut KDev,
    uuid: [u8; 16],
) -> Result<usize, (i32, alloc::string::String)> {
    use alloc::string::ToString;
    use mdraid::array::{Member, MemberState};
    use mdraid::format::badblocks::{log_location, BadBlockLog};
    use mdraid::format::probe::Superblock;

    let name = cstr(&dev.0.name);
    let fail = |errno: i32, e: &dyn core::fmt::Display| (errno, alloc::format!("{name}: {e}"));
    if k.m.is_readonly() {
        return Err((30, "read-only array".to_string()));
    }
    let found = mdraid::format::probe::probe(dev, None)
        .ok()
        .map(|f| (f.sb, f.sector));
    let dev_sectors = dev.size() / 512;
    let opts = AddOptions {
        device_uuid: Some(uuid),
        ..AddOptions::default()
    };
    let plan =
        k.m.plan_add(found, dev_sectors, &opts)
            .map_err(|e| fail(22, &e))?;
    // A re-added device brings its own bad-block log (a fresh superblock has none).
    let badblocks = match &plan.sb {
        Superblock::V1(s, _) if s.feature_map & mdraid::format::sb1::FEATURE_BAD_BLOCKS != 0 => {
            match log_location(s) {
                Some((off, len)) => {
                    let mut raw = alloc::vec![0u8; len];
                    dev.read_at(off, &mut raw).map_err(|e| fail(5, &e))?;
                    Some(BadBlockLog::parse_for(s, &raw).map_err(|e| fail(22, &e))?)
                }
                None => None,
            }
        }
        _ => None,
    };
    let member = Member {
        dev: mdraid::array::machine::Detached {
            device_number: Some((dev.0.major, dev.0.minor)),
            block_size: dev.logical_block_size(),
        },
        name: name.clone(),
        sb: plan.sb,
        sb_sector: plan.sb_sector,
        dev_sectors,
        state: MemberState::Spare,
        badblocks,
        rebuild: None,
        rebuild_bitmap: false,
    };
    k.m.add_member(member, plan.comeback)
        .map_err(|e| fail(16, &e))
}
