//! Wall-clock time in the units perfwatch uses. Decisions take `now` as a parameter; only the
//! shells (actors, handlers) call these.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub fn now_s() -> i64 {
    now_ms().div_euclid(1000)
}

/// Unix seconds as RFC 3339 UTC (`2026-11-24T10:00:00Z`); the number itself if out of range.
pub fn rfc3339(ts_s: i64) -> String {
    jiff::Timestamp::from_second(ts_s).map_or_else(|_| ts_s.to_string(), |t| t.to_string())
}

/// Unix seconds as the UTC time of day, `HH:MM`, for chart axes.
pub fn hh_mm(ts_s: i64) -> String {
    let of_day = ts_s.rem_euclid(86_400);
    format!("{:02}:{:02}", of_day / 3600, of_day % 3600 / 60)
}

/// A span of seconds as a person reads it: `20 s`, `1 min 30 s`, `10 min`, `2 h 5 min`,
/// `3 d`; negative spans count as 0.
pub fn elapsed(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 if s % 60 == 0 => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::{elapsed, hh_mm};

    #[test]
    fn times_of_day_are_utc_hours_and_minutes() {
        assert_eq!(hh_mm(1_764_000_000), "16:00");
        assert_eq!(hh_mm(86_399), "23:59");
        assert_eq!(hh_mm(-60), "23:59");
    }

    #[test]
    fn spans_read_in_the_largest_units_that_fit() {
        let cases =
            [(-5, "0 s"), (20, "20 s"), (90, "1 min 30 s"), (600, "10 min"), (7500, "2 h 5 min"), (3 * 86_400, "3 d")];
        for (seconds, want) in cases {
            assert_eq!(elapsed(seconds), want, "{seconds} s");
        }
    }
}
