//! The parameters of a query as a URL carries them (`metric`, `stat`, `from`, `to`, `step`,
//! `group_by`), read into a `QueryRequest`. Pure: the time "now" is given.

use std::collections::HashMap;

use super::selector::Selector;
use super::stat::Stat;
use super::time::{parse_duration_s, parse_time};
use super::{QueryError, QueryRequest};

/// Reads a query's parameters; a missing or malformed one, or a window and step that cannot be
/// answered, is a `BadRequest` naming it.
pub fn parse_request(params: &HashMap<String, String>, now_s: i64) -> Result<QueryRequest, QueryError> {
    let bad = QueryError::BadRequest;
    let metric = params.get("metric").ok_or_else(|| {
        bad("metric is required, e.g. metric=api_request_duration_seconds{endpoint=\"/vendors/:id\"}".into())
    })?;
    let selector = Selector::parse(metric).map_err(|e| bad(format!("metric: {e}")))?;
    let stat = params.get("stat").ok_or_else(|| {
        bad("stat is required: count, sum, avg, min, max, last, rate or a quantile such as p99".into())
    })?;
    let stat = Stat::parse(stat)?;
    let from_s =
        parse_time(params.get("from").map_or("-1h", String::as_str), now_s).map_err(|e| bad(format!("from: {e}")))?;
    // `to` is exclusive; the default includes the interval open now.
    let to_s = match params.get("to") {
        Some(text) => parse_time(text, now_s).map_err(|e| bad(format!("to: {e}")))?,
        None => now_s + 1,
    };
    let step_s = match params.get("step") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .or_else(|| parse_duration_s(text))
                .filter(|s| *s > 0)
                .ok_or_else(|| bad(format!("step {text:?} is not a duration; write e.g. 60 or 1m")))?,
        ),
    };
    let group_by = params
        .get("group_by")
        .map(|text| text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect());
    let request = QueryRequest { selector, stat, from_s, to_s, step_s, group_by };
    super::validate(&request)?;
    Ok(request)
}
