//! Bad-block log: parse never panics; what parses validates, normalizes and answers queries
//! without panicking, and re-encodes to a log that parses back to the same entries.
//!
//! Input: the first byte is `bblog_shift`, the rest is the log area (bblog_size sectors).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mdraid::format::badblocks::BadBlockLog;

fuzz_target!(|data: &[u8]| {
    let Some((&shift, log)) = data.split_first() else {
        return;
    };
    if let Ok(mut l) = BadBlockLog::parse(log, shift) {
        let _ = l.validate();
        let sectors = (log.len() / 512) as u16;
        if let Ok(bytes) = l.to_bytes(sectors) {
            assert_eq!(
                BadBlockLog::parse(&bytes, shift).map(|p| p.entries),
                Ok(l.entries.clone())
            );
        }
        let _ = (
            l.is_bad(0, u64::MAX),
            l.first_bad(u64::MAX - 3, 8),
            l.bad_sectors(),
        );
        l.normalize();
        let _ = l.add(u64::MAX - 100, 1000, 512);
        let _ = l.remove(0, u64::MAX, 512);
    }
});
