//! Superblock 1.x: parse never panics; what parses validates without panicking, re-encodes to
//! the very bytes it came from, and parses back to the same value.
//!
//! Input: the superblock bytes, as read from sector 0, 8 or the 1.0 location. The last 8 bytes
//! (when there are more than 256) also give the device size for `validate`, so that the layout
//! checks see both small and huge devices; the block-alignment checks run for 512-byte,
//! 4 KiB and 64 KiB logical blocks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mdraid::format::sb1::Superblock1;

fuzz_target!(|data: &[u8]| {
    let Ok(sb) = Superblock1::parse(data) else {
        return;
    };
    let dev_sectors = match data.len() {
        n if n > 256 + 8 => u64::from_le_bytes(data[n - 8..].try_into().unwrap()),
        _ => u64::MAX,
    };
    let _ = sb.validate(sb.super_offset, dev_sectors);
    let _ = sb.validate(sb.super_offset, u64::MAX);
    let _ = sb.validate(sb.super_offset.wrapping_add(8), dev_sectors);
    for block in [512, 4096, 65536] {
        let _ = sb.validate_blocks(block);
    }
    let _ = (sb.name(), sb.role(), sb.is_clean(), sb.checksum_ok());

    let bytes = sb.to_bytes();
    assert_eq!(bytes.len(), sb.byte_len());
    assert_eq!(&bytes[..], &data[..bytes.len()], "to_bytes(parse(x)) != x");
    let again = Superblock1::parse(&bytes).expect("re-encoded superblock must parse");
    assert_eq!(again, sb);

    let mut fixed = sb;
    fixed.update_checksum();
    assert!(fixed.checksum_ok());
});
