//! Prometheus's HTTP API at `/prometheus/api/v1/…`, so Grafana's Prometheus data source
//! (URL `http://<perfwatch>/prometheus`) reads perfwatch directly: queries and range queries
//! in PromQL, series, label names and values, metadata, build information, and the rules
//! and alerts (`prometheus/rules.rs`). Parameters come
//! from the query string and, for POST, a form body (Grafana's default), repeated keys such as
//! `match[]` kept. Answers use Prometheus's envelopes and error types.
//!
//! Under a prefix because perfwatch's own `/api/v1/query` (`metric=…&stat=…`) and
//! `/api/v1/series` predate it; the prefix is where Mimir serves the same API.

mod encode;
mod rules;

use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use futures_util::Stream;
use warp::http::{Method, StatusCode, header};
use warp::reply::Response;

use super::body::{self, BodyHead, Limit};
use super::{ApiError, ApiState, ReadState};
use crate::query::QueryError;
use crate::query::promql::{self, LOOKBACK_MS, Limits, PromError, Query, catalog};

/// Request bodies (form-encoded parameters) are small; a query is rarely a kilobyte.
const FORM_LIMIT: Limit = Limit { bytes: 1 << 20, name: "the 1 MiB limit of Prometheus API requests" };

/// The request's parameters, in order, repeated keys kept.
struct Params(Vec<(String, String)>);

impl Params {
    /// The first value of `key`, as Go's `FormValue` (the body's before the query string's).
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }
}

/// Serves `/prometheus/api/v1/<path>`.
pub async fn serve<S, B>(
    api: Arc<ApiState>,
    method: Method,
    path: String,
    raw_query: String,
    head: BodyHead,
    stream: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    // The body's parameters first: Go's FormValue prefers them to the query string's.
    let mut params: Vec<(String, String)> = Vec::new();
    let is_form = head.content_type.as_deref().is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && is_form {
        let raw = body::receive(stream, &head, FORM_LIMIT).await?.inflate()?;
        params.extend(form_urlencoded::parse(&raw).into_owned());
    }
    params.extend(form_urlencoded::parse(raw_query.as_bytes()).into_owned());
    let params = Params(params);
    let state = &api.reads;
    let answer = match path.trim_end_matches('/') {
        "query" => instant(state, &params).await,
        "query_range" => range(state, &params).await,
        "series" => series(state, &params).await,
        "labels" => labels(state, &params).await,
        "metadata" => metadata(state, &params).await,
        "rules" => rules::rules(&api.oncall, &params).await.map(|data| encode::success(&data, &[])),
        "alerts" => rules::alerts(&api.oncall).await.map(|data| encode::success(&data, &[])),
        "status/buildinfo" => Ok(encode::success(&build_info(), &[])),
        "query_exemplars" => Ok(encode::success("[]", &[])),
        other => match other.strip_prefix("label/").and_then(|rest| rest.strip_suffix("/values")) {
            Some(name) => label_values(state, &params, name).await,
            None => {
                return Ok(respond(
                    StatusCode::NOT_FOUND,
                    encode::error("not_found", &format!("no API endpoint /api/v1/{other}")),
                ));
            }
        },
    };
    Ok(match answer {
        Ok(body) => respond(StatusCode::OK, body),
        Err(err) => {
            let (status, kind) = classify(&err);
            let mut response = respond(status, encode::error(kind, &err.to_string()));
            if matches!(err, PromError::Query(QueryError::Busy)) {
                response.headers_mut().insert(header::RETRY_AFTER, 1.into());
            }
            response
        }
    })
}

fn respond(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().expect("a valid header value"));
    response
}

/// The status and `errorType` Prometheus answers an error with.
fn classify(err: &PromError) -> (StatusCode, &'static str) {
    match err {
        PromError::BadData(_) => (StatusCode::BAD_REQUEST, "bad_data"),
        PromError::Execution(_) | PromError::Unsupported(_) | PromError::Limit(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "execution")
        }
        PromError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        PromError::Query(QueryError::Busy) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        PromError::Query(QueryError::Store(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        PromError::Query(_) => (StatusCode::BAD_REQUEST, "bad_data"),
    }
}

async fn instant(state: &ReadState, params: &Params) -> Result<String, PromError> {
    let now = crate::clock::now_ms();
    let at = match params.get("time") {
        Some(text) => parse_time(text, "time")?,
        None => now,
    };
    let query = Query {
        expr: required(params, "query")?.to_owned(),
        start_ms: at,
        end_ms: at,
        step_ms: None,
        lookback_ms: lookback(params)?,
    };
    let value = promql::run(&state.reader, &state.aggregator, query, limits(state, params)?, now).await?;
    Ok(encode::success(&encode::query_data(&value), &[]))
}

async fn range(state: &ReadState, params: &Params) -> Result<String, PromError> {
    let query = Query {
        expr: required(params, "query")?.to_owned(),
        start_ms: parse_time(required(params, "start")?, "start")?,
        end_ms: parse_time(required(params, "end")?, "end")?,
        step_ms: Some(parse_duration(required(params, "step")?, "step")?),
        lookback_ms: lookback(params)?,
    };
    let now = crate::clock::now_ms();
    let value = promql::run(&state.reader, &state.aggregator, query, limits(state, params)?, now).await?;
    Ok(encode::success(&encode::query_data(&value), &[]))
}

async fn series(state: &ReadState, params: &Params) -> Result<String, PromError> {
    let matchers = params.all("match[]");
    if matchers.is_empty() {
        return Err(PromError::BadData("no match[] parameter provided".into()));
    }
    let found = catalog::series(&state.reader, &state.aggregator, catalog::selectors(&matchers)?).await?;
    let (found, warnings) = limited(found, params)?;
    let mut out = String::from("[");
    for (idx, labels) in found.iter().enumerate() {
        if idx > 0 {
            out.push(',');
        }
        encode::metric(&mut out, labels);
    }
    out.push(']');
    Ok(encode::success(&out, &warnings))
}

async fn labels(state: &ReadState, params: &Params) -> Result<String, PromError> {
    let selectors = catalog::selectors(&params.all("match[]"))?;
    let found = catalog::series(&state.reader, &state.aggregator, selectors).await?;
    let (names, warnings) = limited(catalog::label_names(&found), params)?;
    Ok(encode::success(&serde_json::to_string(&names).unwrap_or_default(), &warnings))
}

async fn label_values(state: &ReadState, params: &Params, name: &str) -> Result<String, PromError> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned();
    let name = match name.strip_prefix("U__") {
        Some(escaped) => unescape_label_name(escaped),
        None => name,
    };
    let selectors = catalog::selectors(&params.all("match[]"))?;
    let found = catalog::series(&state.reader, &state.aggregator, selectors).await?;
    let (values, warnings) = limited(catalog::label_values(&found, &name), params)?;
    Ok(encode::success(&serde_json::to_string(&values).unwrap_or_default(), &warnings))
}

async fn metadata(state: &ReadState, params: &Params) -> Result<String, PromError> {
    let wanted = params.get("metric").filter(|m| !m.is_empty());
    let limit = params.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let mut out = serde_json::Map::new();
    for (name, metric_type) in catalog::metric_types(&state.reader, &state.aggregator).await? {
        if wanted.is_some_and(|w| w != name) || limit.is_some_and(|l| out.len() >= l) {
            continue;
        }
        out.insert(name, serde_json::json!([{"type": metric_type, "help": "", "unit": ""}]));
    }
    Ok(encode::success(&serde_json::Value::Object(out).to_string(), &[]))
}

fn build_info() -> String {
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "perfwatch",
        "buildDate": "",
        "goVersion": "",
    })
    .to_string()
}

/// Applies the `limit` parameter, with Prometheus's warning when it cut the list.
fn limited<T>(mut items: Vec<T>, params: &Params) -> Result<(Vec<T>, Vec<String>), PromError> {
    let limit = match params.get("limit") {
        None | Some("") => return Ok((items, Vec::new())),
        Some(text) => text.parse::<i64>().map_err(|_| {
            PromError::BadData(format!("invalid parameter \"limit\": cannot parse {text:?} to a valid limit"))
        })?,
    };
    if limit > 0 && items.len() > limit as usize {
        items.truncate(limit as usize);
        return Ok((items, vec!["results truncated due to limit".into()]));
    }
    Ok((items, Vec::new()))
}

fn required<'p>(params: &'p Params, key: &str) -> Result<&'p str, PromError> {
    params.get(key).ok_or_else(|| PromError::BadData(format!("invalid parameter \"{key}\": missing")))
}

/// `lookback_delta`, or the default when absent, zero or negative (as Prometheus).
fn lookback(params: &Params) -> Result<i64, PromError> {
    let asked = params.get("lookback_delta").map_or(Ok(0), |text| parse_duration(text, "lookback_delta"))?;
    Ok(if asked > 0 { asked } else { LOOKBACK_MS })
}

/// The configured limits (`query:`), with a shorter timeout when the request asks for one
/// (0, as in Prometheus, asks for none).
fn limits(state: &ReadState, params: &Params) -> Result<Limits, PromError> {
    let mut limits = state.promql_limits;
    if let Some(text) = params.get("timeout") {
        let asked = parse_duration(text, "timeout")?;
        if asked > 0 {
            limits.timeout = limits.timeout.min(Duration::from_millis(asked as u64));
        }
    }
    Ok(limits)
}

/// A time as Prometheus takes it: unix seconds (with a fraction) or RFC 3339.
fn parse_time(text: &str, key: &str) -> Result<i64, PromError> {
    // Clamped as Prometheus clamps its min and max time, so arithmetic on it cannot overflow.
    let (min, max) = (crate::query::time::MIN_TIME_S * 1000, crate::query::time::MAX_TIME_S * 1000);
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        return Ok(((seconds * 1000.0).round() as i64).clamp(min, max));
    }
    text.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).map_err(|_| {
        PromError::BadData(format!("invalid parameter \"{key}\": cannot parse {text:?} to a valid timestamp"))
    })
}

/// A duration as Prometheus takes it: seconds (with a fraction) or `5m`, `1h30m`.
fn parse_duration(text: &str, key: &str) -> Result<i64, PromError> {
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() {
            return Err(PromError::BadData(format!(
                "invalid parameter \"{key}\": cannot parse {text:?} to a valid duration"
            )));
        }
        if seconds.abs() * 1000.0 >= i64::MAX as f64 {
            return Err(PromError::BadData(format!(
                "invalid parameter \"{key}\": cannot parse {text:?} to a valid duration. It overflows int64"
            )));
        }
        return Ok((seconds * 1000.0).round() as i64);
    }
    // Outside code: a panic on some text answers as a bad parameter.
    let parsed = std::panic::catch_unwind(|| promql_parser::util::duration::parse_duration(text));
    match parsed {
        Ok(Ok(duration)) => Ok(crate::query::promql::duration_ms(duration)),
        _ => Err(PromError::BadData(format!("invalid parameter \"{key}\": cannot parse {text:?} to a valid duration"))),
    }
}

/// Prometheus's `U__` escaping of label names in paths: `_xx_` (hex) for other characters,
/// `__` for an underscore.
fn unescape_label_name(escaped: &str) -> String {
    let mut out = String::new();
    let mut rest = escaped;
    while let Some(idx) = rest.find('_') {
        out.push_str(&rest[..idx]);
        rest = &rest[idx + 1..];
        if let Some(after) = rest.strip_prefix('_') {
            out.push('_');
            rest = after;
        } else if let Some(end) = rest.find('_') {
            match u32::from_str_radix(&rest[..end], 16).ok().and_then(char::from_u32) {
                Some(ch) => out.push(ch),
                None => out.push_str(&rest[..end]),
            }
            rest = &rest[end + 1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse_as_prometheus_takes_them() {
        assert_eq!(parse_time("1700000000.123", "time").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_time("2023-11-14T22:13:20Z", "time").unwrap(), 1_700_000_000_000);
        assert!(parse_time("yesterday", "time").unwrap_err().to_string().contains("\"time\""));
        assert_eq!(parse_duration("15", "step").unwrap(), 15_000);
        assert_eq!(parse_duration("1m30s", "step").unwrap(), 90_000);
        assert!(parse_duration("fast", "step").is_err());
        assert!(parse_duration("NaN", "step").is_err() && parse_duration("inf", "step").is_err());
        assert_eq!(unescape_label_name("http_2e_status"), "http.status");
        assert_eq!(unescape_label_name("a__b"), "a_b");
    }
}
