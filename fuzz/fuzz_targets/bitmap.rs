//! Write-intent bitmap: parse never panics; what parses validates without panicking,
//! re-encodes to the bytes it came from, and parses back to the same value.
//!
//! Input: the bytes from the bitmap's first byte on (256-byte header, then the bits).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // TODO(lead): the bitmap codec is being written on another branch; when
    // `mdraid::format::bitmap::{Bitmap, BitmapSuper}` exist, replace this stub with:
    //
    //     use mdraid::format::bitmap::{Bitmap, BitmapSuper};
    //     if let Ok(h) = BitmapSuper::parse(data) {
    //         let _ = h.validate();
    //         let bytes = h.to_bytes();
    //         assert_eq!(&bytes[..], &data[..bytes.len()], "to_bytes(parse(x)) != x");
    //         assert_eq!(BitmapSuper::parse(&bytes).as_ref(), Ok(&h));
    //     }
    //     if let Ok(b) = Bitmap::parse(data) {
    //         let _ = b.header.validate();
    //         let _ = (b.count_dirty(), b.dirty_chunks().count(), b.is_stale(0));
    //         let bytes = b.to_bytes();
    //         assert_eq!(&bytes[..], &data[..bytes.len()], "to_bytes(parse(x)) != x");
    //         assert_eq!(Bitmap::parse(&bytes).as_ref(), Ok(&b));
    //     }
    let _ = mdraid::format::BitmapError::Truncated {
        need: 256,
        have: data.len(),
    };
});
