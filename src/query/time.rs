//! Times as query parameters: RFC 3339, unix seconds, `now`, or relative like `-1h`, `-30m`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "cannot read time {text:?}: use RFC 3339 (2026-11-24T10:00:00Z), unix seconds, 'now' or a relative time such as -1h"
)]
pub struct TimeError {
    pub text: String,
}

/// The earliest time a query may name: 0000-01-01T00:00:00Z.
pub const MIN_TIME_S: i64 = -62_167_219_200;
/// The latest time a query may name: 9999-12-31T23:59:59Z.
pub const MAX_TIME_S: i64 = 253_402_300_799;

/// Unix seconds for `text`, relative times counted back from `now_s`; always between
/// [`MIN_TIME_S`] and [`MAX_TIME_S`], so arithmetic on two of them cannot overflow.
pub fn parse_time(text: &str, now_s: i64) -> Result<i64, TimeError> {
    let err = || TimeError { text: text.to_owned() };
    let text = text.trim();
    let seconds = if text == "now" {
        Some(now_s)
    } else if let Some(ago) = text.strip_prefix('-').or_else(|| text.strip_prefix("now-")) {
        parse_duration_s(ago).and_then(|seconds| now_s.checked_sub(seconds))
    } else if let Ok(seconds) = text.parse::<f64>() {
        // Checked before the cast: `as` would turn NaN into 0 and saturate the rest.
        let floor = seconds.floor();
        ((MIN_TIME_S as f64..=MAX_TIME_S as f64).contains(&floor)).then_some(floor as i64)
    } else {
        text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
    };
    seconds.filter(|s| (MIN_TIME_S..=MAX_TIME_S).contains(s)).ok_or_else(err)
}

/// The longest duration perfwatch reads: the span of the calendar it reads (10,000 years), so
/// a time plus or minus a duration cannot overflow, in seconds or in milliseconds.
pub const MAX_DURATION_S: i64 = MAX_TIME_S - MIN_TIME_S;

/// Seconds in a duration such as `90s`, `5m`, `1h30m`, `7d`, `1w`, `1y` (jiff's friendly
/// format, or ISO 8601 such as `PT5M`); at most [`MAX_DURATION_S`]. A duration is an amount of
/// time, not a calendar step: a year counts 365.25 days and a month 30.44 days.
/// Parts below a second are dropped; a duration that rounds to 0 is refused unless it is 0.
pub fn parse_duration_s(text: &str) -> Option<i64> {
    let text = text.trim();
    if text == "0" {
        return Some(0);
    }
    let span: jiff::Span = text.parse().ok()?;
    if span.is_negative() {
        return None;
    }
    let units = [
        (i128::from(span.get_years()), 31_557_600_000_000_000),
        (i128::from(span.get_months()), 2_630_016_000_000_000),
        (i128::from(span.get_weeks()), 604_800_000_000_000),
        (i128::from(span.get_days()), 86_400_000_000_000),
        (i128::from(span.get_hours()), 3_600_000_000_000),
        (span.get_minutes().into(), 60_000_000_000),
        (span.get_seconds().into(), 1_000_000_000),
        (span.get_milliseconds().into(), 1_000_000),
        (span.get_microseconds().into(), 1_000),
        (span.get_nanoseconds().into(), 1),
    ];
    let nanos: i128 = units.iter().map(|(n, unit)| n * unit).sum();
    let seconds = i64::try_from(nanos / 1_000_000_000).ok()?;
    Some(seconds).filter(|s| *s > 0 || span.is_zero()).filter(|s| *s <= MAX_DURATION_S)
}

/// [`parse_duration_s`] for command-line flags.
pub fn parse_std_duration(text: &str) -> Result<std::time::Duration, String> {
    let seconds =
        parse_duration_s(text).ok_or_else(|| format!("{text:?} is not a duration such as 30s, 5m or 1h30m"))?;
    Ok(std::time::Duration::from_secs(seconds.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form() {
        let now = 1_764_000_000;
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-1h", now), Ok(now - 3600));
        assert_eq!(parse_time("now-5m", now), Ok(now - 300));
        assert_eq!(parse_time("1764000123", now), Ok(1_764_000_123));
        assert_eq!(parse_time("2025-11-24T16:00:00Z", now), Ok(1_764_000_000));
        assert!(parse_time("yesterday", now).is_err());
        for out_of_range in ["-290000000000y", "9000000000000000000", "-9e300", "NaN", "inf", "99999-01-01T00:00:00Z"] {
            assert!(parse_time(out_of_range, now).is_err(), "{out_of_range} is refused, not wrapped");
        }
        assert_eq!(parse_time("253402300799", now), Ok(MAX_TIME_S));
        assert_eq!(parse_duration_s("1h30m"), Some(5400));
        assert_eq!(parse_duration_s("7d"), Some(604_800));
        assert_eq!(parse_duration_s("10000y"), None, "beyond the calendar");
        assert!(parse_duration_s("9999y").is_some_and(|s| s <= MAX_DURATION_S), "a year is 365.25 days");
        assert_eq!(parse_duration_s("1y"), Some(31_557_600));
        assert_eq!(parse_duration_s("0s"), Some(0));
        assert_eq!(parse_duration_s("0"), Some(0));
        assert_eq!(parse_duration_s("2 hours 30 min"), Some(9000));
        for refused in ["500ms", "-5m", "5m ago", "5", "", "soon"] {
            assert_eq!(parse_duration_s(refused), None, "{refused:?}");
        }
    }
}
