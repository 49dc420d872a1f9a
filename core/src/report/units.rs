//! mdadm's number formatting, in integer arithmetic only (the core has no floating point).
//!
//! - [`human_size`]: the " (31.00 MiB 32.51 MB)" suffix of `--examine` / `--detail` /
//!   `--examine-bitmap` sizes (mdadm 4.2's `human_size`).
//! - [`human_size_brief`]: "31.00MiB" / "32.51MB" (mdadm 4.2's `human_size_brief`).
//! - [`percent_1dp`]: what C's `printf("%2.1f", 100.0 * num / den)` prints, bit for bit.

use alloc::format;
use alloc::string::String;

/// Sizes below this many bytes get no human-readable text.
const HUMAN_MIN: i64 = 5000 * 1024;
/// From this many bytes on, mdadm switches from MiB/MB to GiB/GB.
const HUMAN_GIB_FROM: i64 = 2 << 30;
/// From this many bytes on, mdadm switches from GiB/GB to TiB/TB (new in mdadm 4.2).
const HUMAN_TIB_FROM: i64 = 2 << 40;

/// One of mdadm's three display scales.
#[derive(Clone, Copy)]
enum Scale {
    Mega,
    Giga,
    Tera,
}

impl Scale {
    /// The scale `bytes` is shown in, or `None` when mdadm shows nothing.
    ///
    /// mdadm takes the size as a C `long long`: a `u64` from 2^63 on reads as negative and,
    /// like anything under 5000 KiB, gets no text.
    fn of(bytes: u64) -> Option<(Scale, i64)> {
        let b = bytes as i64;
        let scale = if b < HUMAN_MIN {
            return None;
        } else if b < HUMAN_GIB_FROM {
            Scale::Mega
        } else if b < HUMAN_TIB_FROM {
            Scale::Giga
        } else {
            Scale::Tera
        };
        Some((scale, b))
    }

    fn shift(self) -> u32 {
        match self {
            Scale::Mega => 20,
            Scale::Giga => 30,
            Scale::Tera => 40,
        }
    }

    fn decimal_unit(self) -> i64 {
        match self {
            Scale::Mega => 1_000_000,
            Scale::Giga => 1_000_000_000,
            Scale::Tera => 1_000_000_000_000,
        }
    }

    fn iec(self) -> &'static str {
        match self {
            Scale::Mega => "MiB",
            Scale::Giga => "GiB",
            Scale::Tera => "TiB",
        }
    }

    fn jedec(self) -> &'static str {
        match self {
            Scale::Mega => "MB",
            Scale::Giga => "GB",
            Scale::Tera => "TB",
        }
    }

    /// Hundredths of a binary unit, rounded half up: `(bytes * 200 / 2^shift + 1) / 2`.
    ///
    /// For sizes no real disk has (from about 41 PiB, e.g. a corrupt superblock) this follows
    /// what Debian's mdadm 4.2 binary does rather than the C text: the product `bytes * 200`
    /// wraps in 64 bits, both divisions are arithmetic right shifts (rounding toward minus
    /// infinity), and the result is printed as unsigned. Checked against the binary: 5e16 bytes
    /// shows as "184467440737057104.82 TiB".
    fn binary_centi(self, bytes: i64) -> u64 {
        let units = bytes.wrapping_mul(200) >> self.shift();
        ((units + 1) >> 1) as u64
    }

    /// Hundredths of a decimal unit, rounded half up: `(bytes / (unit / 200) + 1) / 2`.
    /// `bytes` is positive here, so nothing wraps.
    fn decimal_centi(self, bytes: i64) -> u64 {
        let units = bytes / (self.decimal_unit() / 200);
        ((units + 1) / 2) as u64
    }
}

/// `centi` hundredths as "x.yy".
fn centi_text(centi: u64) -> String {
    format!("{}.{:02}", centi / 100, centi % 100)
}

/// mdadm's `human_size`: "" below 5000 KiB, " (x.xx MiB y.yy MB)" below 2 GiB,
/// " (x.xx GiB y.yy GB)" below 2 TiB, else " (x.xx TiB y.yy TB)".
///
/// `bytes` is read as mdadm's C `long long`: from 2^63 on it is negative and shows nothing.
/// Callers holding a signed size pass it with `as u64` (the same bits).
pub fn human_size(bytes: u64) -> String {
    match Scale::of(bytes) {
        None => String::new(),
        Some((scale, b)) => format!(
            " ({} {} {} {})",
            centi_text(scale.binary_centi(b)),
            scale.iec(),
            centi_text(scale.decimal_centi(b)),
            scale.jedec()
        ),
    }
}

/// Unit family for [`human_size_brief`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// MiB / GiB / TiB (mdadm's IEC).
    Iec,
    /// MB / GB / TB (mdadm's JEDEC).
    Jedec,
}

/// mdadm's `human_size_brief`: "" below 5000 KiB, else "x.xxMiB" / "x.xxGiB" / "x.xxTiB"
/// (IEC) or "x.xxMB" / "x.xxGB" / "x.xxTB" (JEDEC), switching at 2 GiB and 2 TiB. Same
/// arithmetic and `long long` reading as [`human_size`].
pub fn human_size_brief(bytes: u64, prefix: Prefix) -> String {
    match Scale::of(bytes) {
        None => String::new(),
        Some((scale, b)) => match prefix {
            Prefix::Iec => format!("{}{}", centi_text(scale.binary_centi(b)), scale.iec()),
            Prefix::Jedec => format!("{}{}", centi_text(scale.decimal_centi(b)), scale.jedec()),
        },
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
        assert_eq!(human_size(32704 * 1024), " (31.94 MiB 33.49 MB)");
        assert_eq!(human_size(18944 * 1024), " (18.50 MiB 19.40 MB)");
        assert_eq!(human_size((2 << 30) - 1), " (2048.00 MiB 2147.48 MB)");
        assert_eq!(human_size(2 << 30), " (2.00 GiB 2.15 GB)");
        assert_eq!(human_size(4 << 30), " (4.00 GiB 4.29 GB)");
        // Rounding: cMiB = (b*200/2^20 + 1)/2, i.e. half up on the 1/200 grid.
        assert_eq!(human_size(10 * (1 << 20) + 5242), " (10.00 MiB 10.49 MB)");
        assert_eq!(human_size(10 * (1 << 20) + 5243), " (10.01 MiB 10.49 MB)");
    }

    /// The TiB step at 2 TiB, with values printed by Debian's mdadm 4.2 binary (`--examine` of
    /// a 1.2 superblock whose data_size was patched; the byte count is data_size * 512).
    #[test]
    fn human_size_tib_like_mdadm_4_2() {
        assert_eq!(human_size((2 << 40) - 1), " (2048.00 GiB 2199.02 GB)");
        assert_eq!(human_size(4_294_967_295 * 512), " (2048.00 GiB 2199.02 GB)");
        assert_eq!(human_size(2 << 40), " (2.00 TiB 2.20 TB)");
        assert_eq!(human_size(4_294_967_297 * 512), " (2.00 TiB 2.20 TB)");
        assert_eq!(human_size(3 << 40), " (3.00 TiB 3.30 TB)");
        assert_eq!(human_size(5_368_709_119 * 512), " (2.50 TiB 2.75 TB)");
        // A 4 TB disk.
        assert_eq!(human_size(7_814_037_168 * 512), " (3.64 TiB 4.00 TB)");
        assert_eq!(human_size(206_158_430_208 * 512), " (96.00 TiB 105.55 TB)");
        assert_eq!(
            human_size(20_015_998_343_868 * 512),
            " (9320.68 TiB 10248.19 TB)"
        );
        assert_eq!(
            human_size(35_184_372_088_832 * 512),
            " (16384.00 TiB 18014.40 TB)"
        );
    }

    /// Absurd sizes (a corrupt superblock) print what the mdadm 4.2 binary prints.
    #[test]
    fn human_size_absurd_like_mdadm_4_2() {
        // Largest size whose bytes * 200 still fits in a long long.
        assert_eq!(
            human_size(90_071_992_547_409 * 512),
            " (41943.04 TiB 46116.86 TB)"
        );
        // Beyond it the product wraps and the binary prints the result as unsigned.
        assert_eq!(
            human_size(90_071_992_547_410 * 512),
            " (184467440737053573.12 TiB 46116.86 TB)"
        );
        assert_eq!(
            human_size(50_000_000_000_000_000),
            " (184467440737057104.82 TiB 50000.00 TB)"
        );
        assert_eq!(
            human_size(140_737_488_355_327 * 512),
            " (184467440737077166.08 TiB 72057.59 TB)"
        );
        assert_eq!(
            human_size(1 << 57),
            " (184467440737058816.00 TiB 144115.19 TB)"
        );
        assert_eq!(human_size(1 << 62), " (0.00 TiB 4611686.02 TB)");
        assert_eq!(human_size((1 << 63) - 512), " (0.00 TiB 9223372.04 TB)");
        // From 2^63 on the C long long is negative: no text.
        assert_eq!(human_size(1 << 63), "");
        assert_eq!(human_size(u64::MAX - 511), "");
        assert_eq!(human_size(u64::MAX), "");
    }

    #[test]
    fn human_size_brief_units() {
        assert_eq!(human_size_brief(1000, Prefix::Iec), "");
        assert_eq!(human_size_brief(5000 * 1024 - 1, Prefix::Jedec), "");
        assert_eq!(human_size_brief(31744 * 1024, Prefix::Iec), "31.00MiB");
        assert_eq!(human_size_brief(31744 * 1024, Prefix::Jedec), "32.51MB");
        assert_eq!(human_size_brief((2 << 30) - 1, Prefix::Iec), "2048.00MiB");
        assert_eq!(human_size_brief((2 << 30) - 1, Prefix::Jedec), "2147.48MB");
        assert_eq!(human_size_brief(3 << 30, Prefix::Iec), "3.00GiB");
        assert_eq!(human_size_brief(3 << 30, Prefix::Jedec), "3.22GB");
        assert_eq!(human_size_brief((2 << 40) - 1, Prefix::Iec), "2048.00GiB");
        assert_eq!(human_size_brief((2 << 40) - 1, Prefix::Jedec), "2199.02GB");
        assert_eq!(human_size_brief(2 << 40, Prefix::Iec), "2.00TiB");
        assert_eq!(human_size_brief(2 << 40, Prefix::Jedec), "2.20TB");
        assert_eq!(
            human_size_brief(7_814_037_168 * 512, Prefix::Iec),
            "3.64TiB"
        );
        assert_eq!(
            human_size_brief(7_814_037_168 * 512, Prefix::Jedec),
            "4.00TB"
        );
        assert_eq!(human_size_brief(1 << 63, Prefix::Iec), "");
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
