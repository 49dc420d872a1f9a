//! Calendar arithmetic for md timestamps (seconds since the Unix epoch, shown in UTC).
//!
//! no_std has no clock and no time zone database: time always enters as an argument, and the
//! civil-date conversion is done here (days-from-civil, proleptic Gregorian).

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    /// Full year, e.g. 2026.
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    /// 0..=23
    pub hour: u32,
    /// 0..=59
    pub minute: u32,
    /// 0..=59
    pub second: u32,
    /// 0 = Sunday .. 6 = Saturday
    pub weekday: u32,
}

impl UtcTime {
    /// Breaks `secs` since 1970-01-01T00:00:00Z into calendar fields.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// The C library's `ctime` layout without the newline: `Wed Nov 25 15:09:26 2026`.
    pub fn ctime(&self) -> alloc::string::String {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        alloc::format!(
            "{} {} {:2} {:02}:{:02}:{:02} {}",
            DAYS[self.weekday as usize % 7],
            MONTHS[(self.month as usize + 11) % 12],
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.year
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(UtcTime::from_unix(0).ctime(), "Thu Jan  1 00:00:00 1970");
        // 2026-11-25 15:09:26 UTC, a fixture's creation time.
        assert_eq!(
            UtcTime::from_unix(1_795_619_366).ctime(),
            "Wed Nov 25 15:09:26 2026"
        );
        assert_eq!(
            UtcTime::from_unix(951_782_400).ctime(),
            "Tue Feb 29 00:00:00 2000"
        );
        assert_eq!(UtcTime::from_unix(-1).ctime(), "Wed Dec 31 23:59:59 1969");
    }
}
