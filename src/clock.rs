//! Wall-clock time in the units perfwatch uses. Decisions take `now` as a parameter; only the
//! shells (actors, handlers) call these.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub fn now_s() -> i64 {
    now_ms().div_euclid(1000)
}
