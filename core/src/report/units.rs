//! mdadm's number formatting, in integer arithmetic only (the core has no floating point).
//!
//! - [`human_size`]: the " (31.00 MiB 32.51 MB)" suffix of `--examine` / `--detail` /
//!   `--examine-bitmap` sizes (mdadm 4.2's `human_size`).
//! - [`human_size_brief`]: "31.00MiB" / "32.51MB" (mdadm 4.2's `human_size_brief`).
//! - [`percent_1dp`]: what C's `printf("%2.1f", 100.0 * num / den)` prints, bit for bit.

use alloc::format;
use alloc::string::String;

/// Sizes below this many bytes get no human-readable suffix.
const HUMAN_MIN: u64 = 5000 * 1024;
/// From this many bytes on, mdadm switches from MiB/MB to GiB/GB.
const HUMAN_GIB_FROM: u64 = 2 << 30;

/// Hundredths of `bytes / unit`, rounded half up: mdadm's `(bytes * 200 / unit + 1) / 2`.
fn centi_binary(bytes: u64, unit: u64) -> u128 {
    (u128::from(bytes) * 200 / u128::from(unit)).div_ceil(2)
}

/// Hundredths of `bytes / unit` for decimal units: mdadm's `(bytes / (unit / 200) + 1) / 2`.
fn centi_decimal(bytes: u64, unit: u64) -> u64 {
    (bytes / (unit / 200)).div_ceil(2)
}

/// mdadm's `human_size`: "" below 5000 KiB, " (x.xx MiB y.yy MB)" below 2 GiB, else
/// " (x.xx GiB y.yy GB)". (mdadm 4.2 has no TiB step: a 4 TB array shows as GiB.)
pub fn human_size(bytes: u64) -> String {
    if bytes < HUMAN_MIN {
        String::new()
    } else if bytes < HUMAN_GIB_FROM {
        let b = centi_binary(bytes, 1 << 20);
        let d = centi_decimal(bytes, 1_000_000);
        format!(
            " ({}.{:02} MiB {}.{:02} MB)",
            b / 100,
            b % 100,
            d / 100,
            d % 100
        )
    } else {
        let b = centi_binary(bytes, 1 << 30);
        let d = centi_decimal(bytes, 1_000_000_000);
        format!(
            " ({}.{:02} GiB {}.{:02} GB)",
            b / 100,
            b % 100,
            d / 100,
            d % 100
        )
    }
}

/// Unit family for [`human_size_brief`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// MiB / GiB (mdadm's IEC).
    Iec,
    /// MB / GB (mdadm's JEDEC).
    Jedec,
}

/// mdadm's `human_size_brief`: "" below 5000 KiB, else "x.xxMiB" / "x.xxGiB" (IEC) or
/// "x.xxMB" / "x.xxGB" (JEDEC), switching at 2 GiB.
pub fn human_size_brief(bytes: u64, prefix: Prefix) -> String {
    if bytes < HUMAN_MIN {
        return String::new();
    }
    let gib = bytes >= HUMAN_GIB_FROM;
    match prefix {
        Prefix::Iec => {
            let (c, u) = if gib {
                (centi_binary(bytes, 1 << 30), "GiB")
            } else {
                (centi_binary(bytes, 1 << 20), "MiB")
            };
            format!("{}.{:02}{u}", c / 100, c % 100)
        }
        Prefix::Jedec => {
            let (c, u) = if gib {
                (centi_decimal(bytes, 1_000_000_000), "GB")
            } else {
                (centi_decimal(bytes, 1_000_000), "MB")
            };
            format!("{}.{:02}{u}", c / 100, c % 100)
        }
    }
}

/// Tenths of a percent that C's `printf("%.1f", 100.0 * num / den)` shows (`den` 0 counts as
/// 1, as mdadm's `den ?: 1`).
///
/// The double `100.0 * num / den` is rebuilt exactly as `m / 2^k` (53-bit `m`, IEEE
/// round-to-nearest-even division), then rounded to one decimal the way glibc does: on the exact
/// binary value, ties to even. Exact for `num < 2^46` and `den < 2^53`; beyond that (no bitmap
/// is that large) the exact rational is rounded instead.
pub fn percent_tenths(num: u64, den: u64) -> u64 {
    let den = den.max(1);
    if num == 0 {
        return 0;
    }
    if num >= 1 << 46 || den >= 1 << 53 {
        // Rational rounding, half to even.
        let a = u128::from(num) * 1000;
        let t = u128::from(den);
        let (q, r) = (a / t, a % t);
        let up = 2 * r > t || (2 * r == t && q % 2 == 1);
        return u64::try_from(q + u128::from(up)).unwrap_or(u64::MAX);
    }
    let a = u128::from(num) * 100; // exact in a double: < 2^53
    let t = u128::from(den);
    // Smallest k with (a << k) / t >= 2^52; the quotient then has 53 significant bits.
    // a / t < 2^53 always, and a << k stays below 2^53 * t < 2^106.
    let mut k = 0u32;
    while (a << k) / t < (1u128 << 52) {
        k += 1;
    }
    let (mut m, r) = ((a << k) / t, (a << k) % t);
    if 2 * r > t || (2 * r == t && m % 2 == 1) {
        m += 1;
    }
    // The double is m / 2^k; round m * 10 / 2^k to an integer, ties to even.
    let x = m * 10;
    if k == 0 {
        return u64::try_from(x).unwrap_or(u64::MAX);
    }
    let mut tenths = x >> k;
    let rem = x & ((1u128 << k) - 1);
    let half = 1u128 << (k - 1);
    if rem > half || (rem == half && tenths % 2 == 1) {
        tenths += 1;
    }
    u64::try_from(tenths).unwrap_or(u64::MAX)
}

/// `printf("%2.1f", 100.0 * num / den)` as text: "0.0", "3.2", "100.0".
pub fn percent_1dp(num: u64, den: u64) -> String {
    let t = percent_tenths(num, den);
    format!("{}.{}", t / 10, t % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_boundaries() {
        assert_eq!(human_size(0), "");
        assert_eq!(human_size(5000 * 1024 - 1), "");
        assert_eq!(human_size(5000 * 1024), " (4.88 MiB 5.12 MB)");
        assert_eq!(human_size(31744 * 1024), " (31.00 MiB 32.51 MB)");
        assert_eq!(human_size(63488 * 512), " (31.00 MiB 32.51 MB)");
        assert_eq!(human_size(18944 * 1024), " (18.50 MiB 19.40 MB)");
        assert_eq!(human_size((2 << 30) - 1), " (2048.00 MiB 2147.48 MB)");
        assert_eq!(human_size(2 << 30), " (2.00 GiB 2.15 GB)");
        // 4 TB disk as mdadm 4.2 prints it (no TiB step).
        assert_eq!(human_size(4_000_787_030_016), " (3726.02 GiB 4000.79 GB)");
        // Rounding: cMiB = (b*200/2^20 + 1)/2, i.e. half up on the 1/200 grid.
        assert_eq!(human_size(10 * (1 << 20) + 5242), " (10.00 MiB 10.49 MB)");
        assert_eq!(human_size(10 * (1 << 20) + 5243), " (10.01 MiB 10.49 MB)");
        assert_eq!(
            human_size(u64::MAX),
            " (17179869184.00 GiB 18446744073.71 GB)"
        );
    }

    #[test]
    fn human_size_brief_units() {
        assert_eq!(human_size_brief(1000, Prefix::Iec), "");
        assert_eq!(human_size_brief(31744 * 1024, Prefix::Iec), "31.00MiB");
        assert_eq!(human_size_brief(31744 * 1024, Prefix::Jedec), "32.51MB");
        assert_eq!(human_size_brief(3 << 30, Prefix::Iec), "3.00GiB");
        assert_eq!(human_size_brief(3 << 30, Prefix::Jedec), "3.22GB");
    }

    #[test]
    fn percent_like_printf() {
        assert_eq!(percent_1dp(0, 1), "0.0");
        assert_eq!(percent_1dp(0, 0), "0.0");
        assert_eq!(percent_1dp(1, 1), "100.0");
        assert_eq!(percent_1dp(16, 496), "3.2");
        // Exact binary ties go to even: 6.25 -> 6.2, 6.75 -> 6.8.
        assert_eq!(percent_1dp(1, 16), "6.2");
        assert_eq!(percent_1dp(3, 16), "18.8");
        assert_eq!(percent_1dp(27, 400), "6.8");
        // Decimal ties that are not exact doubles follow the double (values from glibc):
        // 0.15 is stored as 0.1499..., 0.35 as 0.3499..., 1.05 as 1.0500...
        assert_eq!(percent_1dp(3, 2000), "0.1");
        assert_eq!(percent_1dp(7, 2000), "0.3");
        assert_eq!(percent_1dp(21, 2000), "1.1");
        assert_eq!(percent_1dp(1, 3), "33.3");
        assert_eq!(percent_1dp(2, 3), "66.7");
        assert_eq!(percent_1dp(999, 1000), "99.9");
        assert_eq!(percent_1dp(9999, 10000), "100.0");
        assert_eq!(percent_1dp(1 << 50, 1 << 51), "50.0");
    }
}
