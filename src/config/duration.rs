//! Durations in the config and rule files: `10s`, `5m`, `2d` or a number of seconds, read by
//! a visitor so a bad one is reported at its own line and column.

use std::fmt;

use serde::Deserialize;

use crate::query::time::MAX_DURATION_S;

/// A positive duration written as `10s`, `5m`, `2d` (or a plain number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub i64);

/// Like [`Seconds`] but zero is allowed: `for: 0s`, a first escalation step `after: 0s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay(pub i64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Seconds, D::Error> {
        deserializer.deserialize_any(DurationVisitor { allow_zero: false }).map(Seconds)
    }
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Delay, D::Error> {
        deserializer.deserialize_any(DurationVisitor { allow_zero: true }).map(Delay)
    }
}

/// A visitor rather than an untagged enum, so the parser reports the value's own line and
/// column on error.
struct DurationVisitor {
    allow_zero: bool,
}

impl DurationVisitor {
    fn accept(&self, seconds: i64) -> bool {
        (seconds > 0 || (self.allow_zero && seconds == 0)) && seconds <= MAX_DURATION_S
    }

    fn refusal(&self, what: impl fmt::Display) -> String {
        let kind = if self.allow_zero { "non-negative" } else { "positive" };
        format!("{what} is not a {kind} duration of at most 10000 years; write e.g. 10s, 5m, 1h, 7d")
    }
}

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as 10s, 5m, 1h or 7d")
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<i64, E> {
        i64::try_from(n)
            .ok()
            .filter(|n| self.accept(*n))
            .ok_or_else(|| E::custom(self.refusal(format_args!("{n} (seconds)"))))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<i64, E> {
        Some(n).filter(|n| self.accept(*n)).ok_or_else(|| E::custom(self.refusal(format_args!("{n} (seconds)"))))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<i64, E> {
        crate::query::time::parse_duration_s(text)
            .filter(|s| self.accept(*s))
            .ok_or_else(|| E::custom(self.refusal(format_args!("{text:?}"))))
    }
}
