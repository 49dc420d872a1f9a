//! Text for the Linux errno values a member device can report, so errors read like the OS's
//! own (`No such file or directory`) without needing libc's `strerror` (the core is no_std).

/// The C library's message for `errno`, for the values opening and I/O can produce; `None`
/// for others (callers then show the number).
pub fn errno_text(errno: i32) -> Option<&'static str> {
    // Linux's generic errno numbers (asm-generic/errno-base.h and errno.h).
    Some(match errno {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        5 => "Input/output error",
        6 => "No such device or address",
        9 => "Bad file descriptor",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        16 => "Device or resource busy",
        19 => "No such device",
        20 => "Not a directory",
        21 => "Is a directory",
        22 => "Invalid argument",
        24 => "Too many open files",
        26 => "Text file busy",
        27 => "File too large",
        28 => "No space left on device",
        30 => "Read-only file system",
        36 => "File name too long",
        40 => "Too many levels of symbolic links",
        61 => "No data available",
        95 => "Operation not supported",
        110 => "Connection timed out",
        121 => "Remote I/O error",
        _ => return None,
    })
}

/// Displays an errno as its text, or as `errno N` when it has none here.
pub(crate) struct ErrnoText(pub i32);

impl core::fmt::Display for ErrnoText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match errno_text(self.0) {
            Some(t) => f.write_str(t),
            None => write!(f, "errno {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn text_or_number() {
        assert_eq!(ErrnoText(2).to_string(), "No such file or directory");
        assert_eq!(ErrnoText(16).to_string(), "Device or resource busy");
        assert_eq!(ErrnoText(4242).to_string(), "errno 4242");
    }

    #[test]
    fn device_errors_read_as_text_and_keep_errno() {
        use crate::device::{DeviceError, IoOp};
        let open = DeviceError::Io {
            op: IoOp::Open,
            offset: 0,
            errno: 2,
        };
        assert_eq!(open.to_string(), "No such file or directory");
        let read = DeviceError::Io {
            op: IoOp::Read,
            offset: 4096,
            errno: 5,
        };
        assert_eq!(
            read.to_string(),
            "read error at byte 4096: Input/output error"
        );
        assert_eq!(read.errno(), Some(5));
    }
}
