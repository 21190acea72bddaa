//! `query:` the bounds of one PromQL query (the Prometheus API, docs/promql.md).
//!
//! ```yaml
//! query:
//!   max_series: 100000       # series one selector may match
//!   max_samples: 50000000    # points one query may load and return
//!   timeout: 30s             # below http.request_timeout (the default keeps a second below it)
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::Seconds;
use crate::query::promql::Limits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawQuery {
    max_series: usize,
    max_samples: usize,
    timeout: Option<Seconds>,
}

impl Default for RawQuery {
    fn default() -> RawQuery {
        let limits = Limits::default();
        RawQuery { max_series: limits.max_series, max_samples: limits.max_samples, timeout: None }
    }
}

/// The limits; mistakes go to `problems`. A query must end before its HTTP request does: by
/// default 30 s, or a second less than `http.request_timeout` when that is shorter.
pub(super) fn validate(raw: RawQuery, request_timeout: Duration, problems: &mut Vec<String>) -> Limits {
    if raw.max_series == 0 || raw.max_samples == 0 {
        problems.push("query.max_series and query.max_samples must be 1 or more".into());
    }
    let timeout = match raw.timeout {
        Some(set) => Duration::from_secs(set.0.max(1) as u64),
        None => Limits::default().timeout.min(request_timeout.saturating_sub(Duration::from_secs(1))),
    };
    if timeout >= request_timeout || timeout.is_zero() {
        problems.push(format!(
            "query.timeout ({}s) must be shorter than http.request_timeout ({}s), or the answer never arrives",
            timeout.as_secs(),
            request_timeout.as_secs()
        ));
    }
    Limits { max_series: raw.max_series, max_samples: raw.max_samples, timeout }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_stays_below_the_request_timeout() {
        let mut problems = Vec::new();
        let default = validate(RawQuery::default(), Duration::from_secs(60), &mut problems);
        assert_eq!(default.timeout, Duration::from_secs(30));
        let short = validate(RawQuery::default(), Duration::from_secs(3), &mut problems);
        assert_eq!(short.timeout, Duration::from_secs(2), "a second below a short request timeout");
        assert!(problems.is_empty(), "{problems:?}");
        let set = RawQuery { timeout: Some(Seconds(90)), ..RawQuery::default() };
        validate(set, Duration::from_secs(60), &mut problems);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("query.timeout (90s) must be shorter than http.request_timeout (60s)"),
            "{problems:?}"
        );
    }
}
