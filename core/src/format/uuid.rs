//! md array and device UUIDs, printed as mdadm does (four 32-bit words in hex, colon-separated).

use alloc::string::String;
use core::fmt::Write;

/// Formats 16 bytes as `xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`, bytes in stored order (1.x, bitmap).
pub fn format_bytes(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(35);
    for (i, b) in u.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses the form printed by [`format_bytes`] (colons optional, as mdadm accepts ':' '.' ' ' '-').
pub fn parse(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut hi: Option<u8> = None;
    for c in s.chars() {
        if matches!(c, ':' | '.' | ' ' | '-') {
            continue;
        }
        let v = c.to_digit(16)? as u8;
        match hi.take() {
            None => hi = Some(v),
            Some(h) => {
                *out.get_mut(n)? = (h << 4) | v;
                n += 1;
            }
        }
    }
    (n == 16 && hi.is_none()).then_some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn roundtrip() {
        let u = [
            0x2e, 0x3e, 0x6b, 0xd8, 0xa2, 0xb1, 0x67, 0xc1, 0xc4, 0xba, 0x16, 0x42, 0x62, 0x02,
            0x9d, 0xd7,
        ];
        let s = super::format_bytes(&u);
        assert_eq!(s, "2e3e6bd8:a2b167c1:c4ba1642:62029dd7");
        assert_eq!(super::parse(&s), Some(u));
        assert_eq!(super::parse("2e3e"), None);
    }
}
