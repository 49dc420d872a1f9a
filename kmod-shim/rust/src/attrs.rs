//! md's sysfs vocabulary (Documentation/admin-guide/md.rst) for the module's `md/` directory:
//! which attributes exist, what each shows, and how each store is parsed and carried out.
//!
//! The C side (sysfs.c) only creates the files from [`mdraid_k_attr_info`] and routes reads
//! and writes here with the array's configuration ([`KConf`], its memory) and its machine (NULL
//! while the array does not run). A store that needs kernel work (opening a device, starting or
//! stopping the array) comes back as a [`Do`] code for the C side to carry out. Every store
//! parses its input strictly and answers bad input with an errno.

use core::fmt::Write;

use crate::machine::{command, member, status, KMachine};

const EINVAL: i64 = -22;
const EBUSY: i64 = -16;
const ENOENT: i64 = -2;

/// The array's configuration before it runs (md's `level`, `raid_disks`, `metadata_version`,
/// `bitmap/`, sync speed limits), kept in the C side's array and changed only here.
#[repr(C)]
pub struct KConf {
    /// 1 (raid1) is all there is.
    pub level: u32,
    /// Mirrors for a new array (0: as many as devices given).
    pub raid_disks: u32,
    /// 0 → 0.90, 10 → 1.0, 11 → 1.1, 12 → 1.2.
    pub version: u32,
    /// 0 no bitmap, 1 internal.
    pub bitmap: u32,
    /// Bitmap chunk in bytes (0: mdadm's choice).
    pub bitmap_chunk: u64,
    /// Sync speed limits in KiB/s (0: the system default).
    pub speed_min: u64,
    /// Sync speed limits in KiB/s (0: the system default).
    pub speed_max: u64,
    /// The running array is read-only.
    pub readonly: u32,
    /// Set by the C side before showing `array_state`: devices given or registry configured.
    pub present: u32,
    /// Output of a store: the dev_t of `new_dev` (major << 20 | minor), or 1 for a read-only
    /// activation.
    pub arg: u64,
}

/// What a store asks the C side to do (returned as a positive value).
#[repr(u32)]
enum Do {
    /// Open device `arg` and take it (a candidate, or a hot add while running).
    NewDev = 1,
    /// Start the array (`arg` 1: read-only) from the candidates.
    Activate = 2,
    /// Stop the machine, keep the devices.
    Inactive = 3,
    /// Full stop.
    Clear = 4,
    /// Release the device (not a member of a running array).
    RemoveCandidate = 5,
    /// The machine removed member `idx`: release its device.
    RemoveMember = 6,
}

/// Which directory an attribute lives in.
const MD: u32 = 0;
const BITMAP: u32 = 1;
const DEV: u32 = 2;

/// (directory, name, mode), in id order.
const ATTRS: &[(u32, &str, u32)] = &[
    (MD, "level\0", 0o644),
    (MD, "raid_disks\0", 0o644),
    (MD, "metadata_version\0", 0o644),
    (MD, "new_dev\0", 0o200),
    (MD, "array_state\0", 0o644),
    (MD, "sync_action\0", 0o644),
    (MD, "sync_completed\0", 0o444),
    (MD, "sync_speed\0", 0o444),
    (MD, "sync_speed_min\0", 0o644),
    (MD, "sync_speed_max\0", 0o644),
    (MD, "mismatch_cnt\0", 0o444),
    (MD, "degraded\0", 0o444),
    (MD, "safe_mode_delay\0", 0o644),
    (MD, "component_size\0", 0o444),
    (MD, "mdr_debug\0", 0o444),
    (BITMAP, "location\0", 0o644),
    (BITMAP, "chunksize\0", 0o644),
    (DEV, "state\0", 0o644),
    (DEV, "slot\0", 0o444),
    (DEV, "errors\0", 0o444),
];

const ACTIONS: [&str; 6] = ["idle", "resync", "recover", "check", "repair", "frozen"];

/// The name of sync action `a` (0 idle … 4 repair, 5 frozen: what md's `sync_action` shows
/// while MD_RECOVERY_FROZEN is set).
pub(crate) fn action_name(a: u32) -> &'static str {
    ACTIONS.get(a as usize).copied().unwrap_or("?")
}

/// Attribute `id`: its directory (0 `md/`, 1 `md/bitmap/`, 2 `md/dev-<name>/`) to `*dir`, its
/// NUL-terminated name to `*name`, its mode to `*mode`. 0, or -ENOENT past the last.
///
/// # Safety
/// The outputs are valid for writes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_attr_info(
    id: u32,
    dir: *mut u32,
    name: *mut *const u8,
    mode: *mut u32,
) -> i64 {
    let Some(&(d, n, m)) = ATTRS.get(id as usize) else {
        return ENOENT;
    };
    if dir.is_null() || name.is_null() || mode.is_null() {
        return EINVAL;
    }
    // SAFETY: checked non-NULL; valid for writes by contract.
    unsafe {
        *dir = d;
        *name = n.as_ptr();
        *mode = m;
    }
    0
}

/// A `fmt::Write` into the C side's page, truncating.
struct Page<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Write for Page<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.at);
        self.buf[self.at..self.at + n].copy_from_slice(&s.as_bytes()[..n]);
        self.at += n;
        Ok(())
    }
}

/// Shows attribute `id` of the array (`m` NULL when it does not run; `idx` the member's
/// index in the machine for `dev-<name>/`, negative when the device is not a member of a
/// running array) into `buf[..len]`. The bytes written, or a negative errno.
///
/// # Safety
/// `m` is NULL or a live machine, `conf` a live configuration, both not changed meanwhile;
/// `buf` is valid for `len` writes.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_show(
    m: *const KMachine,
    conf: *const KConf,
    id: u32,
    idx: i32,
    buf: *mut u8,
    len: usize,
) -> i64 {
    // SAFETY: by contract.
    let (k, Some(c)) = (unsafe { m.as_ref() }, unsafe { conf.as_ref() }) else {
        return EINVAL;
    };
    if buf.is_null() {
        return EINVAL;
    }
    // SAFETY: `len` writable bytes by contract.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    let mut p = Page { buf, at: 0 };
    if show(k, c, id, idx, &mut p).is_err() {
        return EINVAL;
    }
    p.at as i64
}

fn show(k: Option<&KMachine>, c: &KConf, id: u32, idx: i32, p: &mut Page) -> core::fmt::Result {
    let st = k.map(status);
    let sync = st.as_ref().filter(|s| s.sync_action != 0);
    let mem = match (k, usize::try_from(idx)) {
        (Some(k), Ok(i)) => member(k, i),
        _ => None,
    };
    let speed = |v: u64, def: u64, p: &mut Page| match v {
        0 => writeln!(p, "{def} (system)"),
        v => writeln!(p, "{v} (local)"),
    };
    match id {
        0 => writeln!(p, "{}", if c.level == 1 { "raid1" } else { "" }),
        1 => writeln!(p, "{}", st.as_ref().map_or(c.raid_disks, |s| s.raid_disks)),
        2 => match st.as_ref().map_or(c.version, |s| s.version) {
            0 => writeln!(p, "0.90"),
            v => writeln!(p, "1.{}", v.saturating_sub(10)),
        },
        4 => match &st {
            Some(_) if c.readonly != 0 => writeln!(p, "readonly"),
            Some(s) => writeln!(p, "{}", if s.dirty != 0 { "active" } else { "clean" }),
            None => writeln!(p, "{}", if c.present != 0 { "inactive" } else { "clear" }),
        },
        5 => writeln!(
            p,
            "{}",
            action_name(st.as_ref().map_or(0, |s| s.sync_action))
        ),
        6 => match sync {
            Some(s) => writeln!(p, "{} / {}", s.sync_done, s.sync_total),
            None => writeln!(p, "none"),
        },
        7 => match sync {
            Some(s) => writeln!(p, "{}", s.sync_speed),
            None => writeln!(p, "none"),
        },
        8 => speed(c.speed_min, 1000, p),
        9 => speed(c.speed_max, 200_000, p),
        10 => writeln!(p, "{}", st.as_ref().map_or(0, |s| s.mismatch_cnt)),
        11 => writeln!(p, "{}", st.as_ref().map_or(0, |s| s.degraded)),
        12 => writeln!(p, "0.200"), // the core's safe-mode delay (md's default)
        13 => writeln!(p, "{}", st.as_ref().map_or(0, |s| s.sectors / 2)),
        14 => {
            let e = k.map(|k| k.m.engine());
            writeln!(
                p,
                "requests={} member_ios={} busy={} dirty={} stopped={}",
                e.map_or(0, |e| e.requests_in_flight()),
                e.map_or(0, |e| e.member_ios_in_flight()),
                st.as_ref().map_or(0, |s| s.busy),
                st.as_ref().map_or(0, |s| s.dirty),
                st.as_ref().map_or(0, |s| s.stopped),
            )
        }
        15 => match &st {
            Some(s) if s.bitmap_chunk != 0 => writeln!(p, "{:+}", s.bitmap_offset),
            Some(_) => writeln!(p, "none"),
            None => writeln!(p, "{}", if c.bitmap != 0 { "+8" } else { "none" }),
        },
        16 => writeln!(
            p,
            "{}",
            st.as_ref().map_or(c.bitmap_chunk, |s| s.bitmap_chunk)
        ),
        17 => match mem {
            Some(x) => {
                let name = ["in_sync", "spare", "faulty", "spare"][(x.state & 3) as usize];
                let wm = if x.write_mostly != 0 {
                    ",write_mostly"
                } else {
                    ""
                };
                writeln!(p, "{name}{wm}")
            }
            None => writeln!(p),
        },
        18 => match mem.filter(|x| x.slot != u32::MAX) {
            Some(x) => writeln!(p, "{}", x.slot),
            None => writeln!(p, "none"),
        },
        19 => writeln!(p, "{}", mem.map_or(0, |x| x.errors)),
        _ => Err(core::fmt::Error),
    }
}

/// The written text without one trailing newline, as UTF-8 (`None` otherwise).
fn word(b: &[u8]) -> Option<&str> {
    core::str::from_utf8(b.strip_suffix(b"\n").unwrap_or(b)).ok()
}

/// Carries out a store of `buf[..len]` to attribute `id` (arguments as [`mdraid_k_show`]):
/// 0 done, a positive [`Do`] code for the C side (with `conf.arg`), or a negative errno.
///
/// # Safety
/// As [`mdraid_k_show`], with `m` and `conf` used by no one else during the call and `buf`
/// valid for `len` reads.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_store(
    m: *mut KMachine,
    conf: *mut KConf,
    id: u32,
    idx: i32,
    buf: *const u8,
    len: usize,
) -> i64 {
    // SAFETY: by contract.
    let (k, Some(c)) = (unsafe { m.as_mut() }, unsafe { conf.as_mut() }) else {
        return EINVAL;
    };
    // SAFETY: `len` readable bytes by contract.
    let Some(w) = (unsafe { crate::input(buf, len) }).and_then(word) else {
        return EINVAL;
    };
    store(k, c, id, idx, w)
}

/// Speed limits (KiB/s, 0: md's system default) as [`command`] 6 takes them.
fn speed_arg(min: u64, max: u64) -> u64 {
    let min = if min == 0 { 1000 } else { min };
    let max = if max == 0 { 200_000 } else { max };
    min << 32 | max
}

/// Gives a machine that just started what was configured before it ran: the sync speed
/// limits written while the array was inactive (md applies them to the first resync too).
/// 0 or a negative errno.
///
/// # Safety
/// `m` is a live machine and `conf` a valid configuration, neither used by anyone else
/// during the call.
#[no_mangle]
pub unsafe extern "C" fn mdraid_k_apply_conf(m: *mut KMachine, conf: *const KConf) -> i64 {
    // SAFETY: by contract.
    let (Some(k), Some(c)) = (unsafe { m.as_mut() }, unsafe { conf.as_ref() }) else {
        return EINVAL;
    };
    if c.speed_min == 0 && c.speed_max == 0 {
        return 0;
    }
    command(k, 6, speed_arg(c.speed_min, c.speed_max))
}

fn store(k: Option<&mut KMachine>, c: &mut KConf, id: u32, idx: i32, w: &str) -> i64 {
    let running = k.is_some();
    match id {
        0 if running => EBUSY,
        0 if w == "raid1" || w == "1" => {
            c.level = 1;
            0
        }
        1 => match w.parse::<u32>() {
            Ok(n) if (1..=16).contains(&n) && running => EBUSY, // reshape is not supported
            Ok(n) if (1..=16).contains(&n) => {
                c.raid_disks = n;
                0
            }
            _ => EINVAL,
        },
        2 if running => EBUSY,
        2 => match ["0.90", "1.0", "1.1", "1.2"].iter().position(|v| *v == w) {
            Some(i) => {
                c.version = [0, 10, 11, 12][i];
                0
            }
            None => EINVAL,
        },
        3 => match parse_dev(w) {
            Some(d) => {
                c.arg = d;
                Do::NewDev as i64
            }
            None => EINVAL,
        },
        4 => match (w, k) {
            ("clear", _) => Do::Clear as i64,
            ("inactive", _) => Do::Inactive as i64,
            ("active" | "clean" | "readonly", k) => {
                let ro = u32::from(w == "readonly");
                match k {
                    Some(_) if ro == c.readonly => 0,
                    Some(_) => EBUSY,
                    None => {
                        c.arg = u64::from(ro);
                        Do::Activate as i64
                    }
                }
            }
            _ => EINVAL,
        },
        5 => match (k, ACTIONS.iter().position(|a| *a == w)) {
            // md: both stop the running action; `frozen` keeps anything from starting on its
            // own, `idle` lets md's recovery check start what is still owed.
            (Some(k), _) if w == "idle" || w == "frozen" => command(k, 2, u64::from(w == "frozen")),
            (Some(k), Some(a)) if (1..=4).contains(&a) => command(k, 1, a as u64),
            _ => EINVAL,
        },
        8 | 9 => {
            let v = match w {
                "system" => 0,
                _ => match w.parse::<u64>() {
                    Ok(v) if v <= u64::from(u32::MAX) => v,
                    _ => return EINVAL,
                },
            };
            let (mn, mx) = if id == 8 {
                (v, c.speed_max)
            } else {
                (c.speed_min, v)
            };
            if let Some(k) = k {
                let r = command(k, 6, speed_arg(mn, mx));
                if r < 0 {
                    return r;
                }
            }
            c.speed_min = mn;
            c.speed_max = mx;
            0
        }
        // Only the core's fixed delay is accepted.
        12 if w == "0.200" || w == "0.2" => 0,
        15 if running => EBUSY,
        15 => match w {
            "none" => {
                c.bitmap = 0;
                0
            }
            // placed by the core as mdadm places it
            "internal" | "+8" => {
                c.bitmap = 1;
                0
            }
            _ => EINVAL,
        },
        16 => match w.parse::<u64>() {
            Ok(v) if v != 0 && (v < 4096 || !v.is_power_of_two()) => EINVAL,
            Ok(_) if running => EBUSY,
            Ok(v) => {
                c.bitmap_chunk = v;
                0
            }
            Err(_) => EINVAL,
        },
        17 => {
            let i = usize::try_from(idx).ok();
            match (w, k, i) {
                ("faulty", Some(k), Some(i)) => command(k, 3, i as u64),
                ("faulty", _, _) => EBUSY,
                ("remove", Some(k), Some(i)) => match member(k, i).map(|x| x.state) {
                    // md: only faulty or spare devices can be removed
                    None | Some(0) | Some(3) => EBUSY,
                    Some(_) => match command(k, 4, i as u64) {
                        0 => Do::RemoveMember as i64,
                        r => r,
                    },
                },
                ("remove", _, _) => Do::RemoveCandidate as i64,
                _ => EINVAL,
            }
        }
        _ => EINVAL,
    }
}

/// "MAJ:MIN" as the kernel's dev_t (major < 4096, minor < 2^20, not 0:0).
fn parse_dev(w: &str) -> Option<u64> {
    let (a, b) = w.split_once(':')?;
    let (maj, min) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
    (maj < 4096 && min < 1 << 20 && (maj | min) != 0).then_some(maj << 20 | min)
}
