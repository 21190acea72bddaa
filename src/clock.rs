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
    time::OffsetDateTime::from_unix_timestamp(ts_s)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ts_s.to_string())
}
