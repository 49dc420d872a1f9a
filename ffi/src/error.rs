//! Result codes, the per-thread last error and the panic boundary.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};

/// What every fallible call returns. The values are stable: they never change meaning and
/// are never reused. `MDRAID_OK` is 0; errors start at 9001 (md's block major is 9).
/// `mdraid_last_error()` describes the last failure on the calling thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mdraid_result {
    /// Success.
    MDRAID_OK = 0,
    /// A required pointer argument was NULL. Nothing was done.
    MDRAID_NULL_PARAMETER = 9001,
    /// A handle that is not (or no longer) a live handle of the expected type: freed, put,
    /// or never made by this library. Nothing was done.
    MDRAID_INVALID_HANDLE = 9002,
    /// An argument is invalid: a zero length where data is needed, an unknown flag or enum
    /// value, a string that is not UTF-8 or too long, too many or too few members.
    MDRAID_INVALID_ARGUMENT = 9003,
    /// An offset or length beyond the end of the array (or device).
    MDRAID_OUT_OF_RANGE = 9004,
    /// An offset or length that is not a multiple of the array's block size (512 bytes, or the
    /// largest member logical block size), or a buffer address that is not aligned where a
    /// member was opened with `MDRAID_OPEN_DIRECT` (see `mdraid_array_info.buffer_align`).
    MDRAID_MISALIGNED = 9005,
    /// An I/O error no mirror could cover (read: no working mirror has the data; write: no
    /// in-sync mirror took it), or a device error outside an array. `mdraid_last_errno()`
    /// gives the errno when there is one.
    MDRAID_IO_ERROR = 9006,
    /// The device carries no md superblock.
    MDRAID_NO_SUPERBLOCK = 9007,
    /// md's rules refuse the operation: an assembly without enough members, failing the
    /// last in-sync mirror, removing an active member, a re-add that is not one, a sync
    /// action that cannot run now, an invalid create geometry. The message says which.
    MDRAID_REFUSED = 9008,
    /// Busy: a member handle already used by an array, an array changing form (a stop or a
    /// quiesce in progress), back-pressure from a full request pool, a registry entry in use.
    MDRAID_BUSY = 9009,
    /// The array was assembled read-only.
    MDRAID_READ_ONLY = 9010,
    /// No such thing: a member index, a registry unit or name.
    MDRAID_NOT_FOUND = 9011,
    /// It already exists (registry unit or name, a member already in the array).
    MDRAID_EXISTS = 9012,
    /// The array was stopped; only `_info`, `_free` and friends still work.
    MDRAID_STOPPED = 9013,
    /// `mdraid_member_io_complete` with a token that is not outstanding (completed twice,
    /// forged, or its array was freed).
    MDRAID_UNKNOWN_TOKEN = 9014,
    /// An output buffer is too small; nothing was written. Call again with a NULL buffer to
    /// learn the size.
    MDRAID_BUFFER_TOO_SMALL = 9015,
    /// On-disk metadata is malformed or unsupported.
    MDRAID_FORMAT_ERROR = 9016,
    /// The array is bound to another thread (`mdraid_array_bind_thread`): the call did
    /// nothing.
    MDRAID_WRONG_THREAD = 9017,
    /// A bug: the library panicked. The panic was caught at the boundary (it never unwinds
    /// into C); the object involved may be left unusable, but memory is safe.
    MDRAID_PANIC = 9100,
}

pub use mdraid_result::*;

/// A failed call: the code and the message for `mdraid_last_error()`.
#[derive(Debug)]
pub struct Fail {
    pub code: mdraid_result,
    pub msg: String,
    pub errno: c_int,
}

impl Fail {
    pub fn new(code: mdraid_result, msg: impl Into<String>) -> Self {
        Fail {
            code,
            msg: msg.into(),
            errno: 0,
        }
    }
    pub fn with_errno(mut self, errno: c_int) -> Self {
        self.errno = errno;
        self
    }
}

// Kept out of cbindgen's sight (it cannot parse defaulted type parameters).
pub(crate) use internal::FfiResult;
mod internal {
    /// `Result` with a [`super::Fail`].
    /// cbindgen:ignore
    pub type FfiResult<T = ()> = Result<T, super::Fail>;
}

impl From<md::Error> for Fail {
    fn from(e: md::Error) -> Self {
        use md::array::ArrayError as A;
        use md::device::DeviceError as D;
        use md::registry::RegistryError as R;
        let msg = e.to_string();
        let (code, errno) = match &e {
            md::Error::Device(D::Io { errno, .. }) => (MDRAID_IO_ERROR, *errno),
            md::Error::Device(D::OutOfRange { .. }) => (MDRAID_OUT_OF_RANGE, 0),
            md::Error::Device(D::Misaligned { .. }) => (MDRAID_MISALIGNED, 22),
            md::Error::Device(_) => (MDRAID_IO_ERROR, 5),
            md::Error::Format(_) => (MDRAID_FORMAT_ERROR, 0),
            md::Error::Registry(r) => (registry_code(r), r.errno()),
            md::Error::Array(a) => match a {
                A::NoSuperblock { .. } => (MDRAID_NO_SUPERBLOCK, 0),
                A::NoDevices => (MDRAID_INVALID_ARGUMENT, 22),
                A::OutOfRange { .. } => (MDRAID_OUT_OF_RANGE, 0),
                A::ReadOnly => (MDRAID_READ_ONLY, 30),
                A::Io(_) | A::NoWorkingMember => (MDRAID_IO_ERROR, 5),
                _ => (MDRAID_REFUSED, 0),
            },
            _ => (MDRAID_REFUSED, 0),
        };
        let _ = R::NotFound;
        Fail { code, msg, errno }
    }
}

pub fn registry_code(r: &md::registry::RegistryError) -> mdraid_result {
    use md::registry::RegistryError as R;
    match r {
        R::Exists { .. } | R::NameExists { .. } => MDRAID_EXISTS,
        R::NotFound | R::NoDevice { .. } => MDRAID_NOT_FOUND,
        R::Busy { .. } => MDRAID_BUSY,
        R::Deleted { .. } | R::StaleHandle { .. } => MDRAID_STOPPED,
        R::NoFreeUnit => MDRAID_BUSY,
        _ => MDRAID_INVALID_ARGUMENT,
    }
}

impl From<md::registry::RegistryError> for Fail {
    fn from(e: md::registry::RegistryError) -> Self {
        Fail {
            code: registry_code(&e),
            errno: e.errno(),
            msg: e.to_string(),
        }
    }
}

struct Last {
    msg: CString,
    errno: c_int,
}

thread_local! {
    static LAST: RefCell<Last> = RefCell::new(Last { msg: CString::default(), errno: 0 });
}

/// Records `f` as this thread's last error and returns its code.
pub fn record(f: Fail) -> mdraid_result {
    let msg = CString::new(f.msg.replace('\0', " ")).unwrap_or_default();
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.msg = msg;
            l.errno = f.errno;
        }
    });
    f.code
}

/// Runs `body` behind the panic boundary: a `Fail` is recorded, a panic becomes
/// `MDRAID_PANIC`.
pub fn boundary(body: impl FnOnce() -> FfiResult) -> mdraid_result {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => MDRAID_OK,
        Ok(Err(f)) => record(f),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            record(Fail::new(
                MDRAID_PANIC,
                format!("internal error (panic caught): {what}"),
            ))
        }
    }
}

/// Like [`boundary`] for functions without a result (free functions): a panic is swallowed.
pub fn boundary_void(body: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
}

/// Every exported fallible function's body: `ffi_boundary!{ ... Ok(()) }`.
macro_rules! ffi_boundary {
    ($($body:tt)*) => {
        $crate::error::boundary(move || -> $crate::error::FfiResult { $($body)* })
    };
}

/// Fails with `MDRAID_NULL_PARAMETER` when the pointer is NULL.
pub fn non_null<T>(p: *const T, what: &str) -> FfiResult {
    if p.is_null() {
        Err(Fail::new(MDRAID_NULL_PARAMETER, format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points at a NUL-terminated string that lives for the call.
pub unsafe fn c_str<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    non_null(p, what)?;
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string alive for the call.
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Fail::new(MDRAID_INVALID_ARGUMENT, format!("{what} is not UTF-8")))
}

/// An optional string argument (NULL is `None`).
///
/// # Safety
/// As [`c_str`].
pub unsafe fn opt_c_str<'a>(p: *const c_char, what: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: as the caller promised for `p`.
    unsafe { c_str(p, what) }.map(Some)
}

/// Copies `text` and a NUL into the caller's `buf` of `len` bytes and writes the text's length
/// (without the NUL) to `out_len`. With `buf` NULL (and any `len`) only the length is written.
/// A non-NULL `buf` shorter than the text plus its NUL is `MDRAID_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes; `out_len` is NULL or writable.
pub unsafe fn write_text(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> FfiResult {
    non_null(out_len, "out_len")?;
    if !buf.is_null() {
        if len < text.len() + 1 {
            return Err(Fail::new(
                MDRAID_BUFFER_TOO_SMALL,
                format!("buffer of {len} bytes, need {}", text.len() + 1),
            ));
        }
        // SAFETY: `buf` is writable for `len >= text.len() + 1` bytes (caller's promise), and
        // `text` does not overlap it (it is ours).
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
            *buf.add(text.len()) = 0;
        }
    }
    // SAFETY: non-NULL (checked) and writable (caller's promise).
    unsafe { *out_len = text.len() };
    Ok(())
}

/// The message of the last call on this thread that failed, NUL-terminated; "" when none has.
/// The pointer stays valid until the next failing call on this thread; do not free it.
/// Thread-safe (each thread has its own).
#[no_mangle]
pub extern "C" fn mdraid_last_error() -> *const c_char {
    let r = std::panic::catch_unwind(|| {
        LAST.try_with(|l| l.try_borrow().map(|l| l.msg.as_ptr()).ok())
            .ok()
            .flatten()
    });
    match r {
        Ok(Some(p)) => p,
        _ => c"".as_ptr(),
    }
}

/// The errno of the last failure on this thread when it had one (an I/O error from a member,
/// a registry refusal as md answers it), else 0. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_last_errno() -> c_int {
    std::panic::catch_unwind(|| {
        LAST.try_with(|l| l.try_borrow().map(|l| l.errno).unwrap_or(0))
            .unwrap_or(0)
    })
    .unwrap_or(0)
}

/// A static description of a result code ("MDRAID_OK: success", ...), for any value: unknown
/// values give "unknown result". Never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn mdraid_result_text(result: u32) -> *const c_char {
    let s: &'static std::ffi::CStr = match result {
        0 => c"MDRAID_OK: success",
        9001 => c"MDRAID_NULL_PARAMETER: a required pointer was NULL",
        9002 => c"MDRAID_INVALID_HANDLE: not a live handle of this type",
        9003 => c"MDRAID_INVALID_ARGUMENT: invalid argument",
        9004 => c"MDRAID_OUT_OF_RANGE: beyond the end",
        9005 => c"MDRAID_MISALIGNED: misaligned offset, length or buffer",
        9006 => c"MDRAID_IO_ERROR: I/O error",
        9007 => c"MDRAID_NO_SUPERBLOCK: no md superblock",
        9008 => c"MDRAID_REFUSED: refused by md's rules",
        9009 => c"MDRAID_BUSY: busy",
        9010 => c"MDRAID_READ_ONLY: the array is read-only",
        9011 => c"MDRAID_NOT_FOUND: not found",
        9012 => c"MDRAID_EXISTS: already exists",
        9013 => c"MDRAID_STOPPED: the array is stopped",
        9014 => c"MDRAID_UNKNOWN_TOKEN: no such outstanding I/O",
        9015 => c"MDRAID_BUFFER_TOO_SMALL: output buffer too small",
        9016 => c"MDRAID_FORMAT_ERROR: malformed or unsupported metadata",
        9017 => c"MDRAID_WRONG_THREAD: the array is bound to another thread",
        9100 => c"MDRAID_PANIC: internal error (caught panic)",
        _ => c"unknown result",
    };
    s.as_ptr()
}

/// Internal, for the test suite: panics inside the panic boundary, which must turn it into
/// `MDRAID_PANIC` (with a message in `mdraid_last_error()`) instead of unwinding into C.
/// Thread-safe; has no other effect.
#[no_mangle]
pub extern "C" fn mdraid__panic_for_test() -> mdraid_result {
    ffi_boundary! {
        let v: Vec<u8> = Vec::new();
        // An index out of bounds: a bug as the library could have one.
        let i = v.len() + std::hint::black_box(1);
        Err(Fail::new(MDRAID_OK, format!("unreachable {}", v[i])))
    }
}
