//! Times as query parameters: RFC 3339, unix seconds, `now`, or relative like `-1h`, `-30m`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "cannot read time {text:?}: use RFC 3339 (2026-11-24T10:00:00Z), unix seconds, 'now' or a relative time such as -1h"
)]
pub struct TimeError {
    pub text: String,
}

/// Unix seconds for `text`, relative times counted back from `now_s`.
pub fn parse_time(text: &str, now_s: i64) -> Result<i64, TimeError> {
    let err = || TimeError { text: text.to_owned() };
    let text = text.trim();
    if text == "now" {
        return Ok(now_s);
    }
    if let Some(ago) = text.strip_prefix('-').or_else(|| text.strip_prefix("now-")) {
        let seconds = parse_duration_s(ago).ok_or_else(err)?;
        return Ok(now_s - seconds);
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds.floor() as i64);
    }
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|_| err())?;
    Ok(parsed.unix_timestamp())
}

/// Seconds in a duration such as `90s`, `5m`, `1h30m`, `7d`, `1w`.
pub fn parse_duration_s(text: &str) -> Option<i64> {
    let duration = humantime::parse_duration(text).ok()?;
    i64::try_from(duration.as_secs()).ok().filter(|s| *s > 0 || text.starts_with('0'))
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
        assert_eq!(parse_duration_s("1h30m"), Some(5400));
        assert_eq!(parse_duration_s("7d"), Some(604_800));
    }
}
