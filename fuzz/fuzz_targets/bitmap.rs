//! Write-intent bitmap: parse never panics; what parses validates without panicking,
//! re-encodes to the bytes it came from, and parses back to the same value.
//!
//! Input: the bytes from the bitmap's first byte on (256-byte header, then the bits).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mdraid::format::bitmap::{Bitmap, BitmapSuper};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = BitmapSuper::parse(data) {
        let _ = h.validate();
        let _ = (
            h.chunks(),
            h.byte_len(),
            h.sectors(),
            h.chunk_sectors(),
            h.chunks_for(u64::MAX - 7, 9),
        );
        let bytes = h.to_bytes();
        assert_eq!(&bytes[..], &data[..bytes.len()], "to_bytes(parse(x)) != x");
        assert_eq!(BitmapSuper::parse(&bytes).as_ref(), Ok(&h));
    }
    if let Ok(mut b) = Bitmap::parse(data) {
        let _ = b.header.validate();
        let _ = (b.count_dirty(), b.dirty_chunks().count(), b.is_stale(0));
        let bytes = b.to_bytes();
        assert_eq!(&bytes[..], &data[..bytes.len()], "to_bytes(parse(x)) != x");
        assert_eq!(Bitmap::parse(&bytes).as_ref(), Ok(&b));
        b.apply_stale_rule(u64::MAX);
        let _ = b.set_sectors(0, u64::MAX);
    }
});
