//! Superblock 0.90: parse never panics; what parses validates without panicking, re-encodes to
//! the very 4096 bytes it came from, and parses back to the same value.
//!
//! Input: the 4 KiB superblock; bytes past 4096 (when there are 8 or more) give the device size
//! for `validate`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mdraid::format::sb0::{self, Superblock0};

const SB0_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(sb) = Superblock0::parse(data) else {
        return;
    };
    let dev_sectors = match data.get(SB0_BYTES..SB0_BYTES + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().unwrap()),
        None => u64::MAX,
    };
    let _ = sb.validate(dev_sectors);
    let _ = sb.validate(u64::MAX);
    let _ = sb0::location(dev_sectors);
    let _ = (sb.is_clean(), sb.uuid_bytes(), sb.checksum_ok());

    let bytes = sb.to_bytes();
    assert_eq!(&bytes[..], &data[..SB0_BYTES], "to_bytes(parse(x)) != x");
    let again = Superblock0::parse(&bytes).expect("re-encoded superblock must parse");
    assert_eq!(again, sb);

    let mut fixed = sb;
    fixed.update_checksum();
    assert!(fixed.checksum_ok());
});
