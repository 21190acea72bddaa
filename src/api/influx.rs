//! `POST /write` (InfluxDB 1.x) and `POST /api/v2/write` (2.x): Influx line protocol as Telegraf
//! and the InfluxDB client libraries send it. Each numeric field becomes a gauge series named
//! `<measurement>_<field>` (booleans as 0/1) with the tags as labels; timestamps are read in
//! the `precision` asked for. Everything taken: `204 No Content`, as InfluxDB answers. A bad
//! line, or a string field (not a metric), is refused with its line number and the good lines
//! are kept: `400` with InfluxDB's `{"code": "invalid", "message"}` plus the counts and errors.

use std::sync::Arc;

use bumpalo::Bump;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, ApiState, reply};
use crate::aggregate::Observation;
use crate::clock;
use crate::ingest::parse::PushOutcome;
use crate::ingest::parse::influx::{FieldValue, parse_line};
use crate::ingest::sink::{IngestBatch, Resolved, Scratch};
use crate::model::MetricKind;

/// Milliseconds per timestamp unit, or how many units make a millisecond (negative).
fn precision_ms(precision: Option<&str>) -> Result<(i64, i64), ApiError> {
    // (multiply, divide)
    Ok(match precision.unwrap_or("ns") {
        "ns" | "n" => (1, 1_000_000),
        "us" | "u" => (1, 1_000),
        "ms" => (1, 1),
        "s" => (1_000, 1),
        "m" => (60_000, 1),
        "h" => (3_600_000, 1),
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("precision {other:?} is not one of ns, us, ms, s (or n, u, m, h)"),
            ));
        }
    })
}

pub fn write(state: &Arc<ApiState>, precision: Option<&str>, body: &[u8]) -> Result<Response, ApiError> {
    let (multiply, divide) = precision_ms(precision)?;
    let text = super::body::text(body)?;
    let bump = Bump::new();
    let mut batch =
        IngestBatch::new(&state.aggregator, &state.limits, &bump, "influx", clock::now_ms(), Scratch::default());
    let mut outcome = PushOutcome::default();
    let (mut tags, mut fields) = (Vec::new(), Vec::new());
    let mut last: Option<(&str, &str, Resolved)> = None;
    for (idx, raw) in text.split('\n').enumerate() {
        let line = raw.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = idx + 1;
        let point = match parse_line(line, &bump, &mut tags, &mut fields) {
            Ok(point) => point,
            Err(err) => {
                outcome.rejected += 1;
                outcome.note_error(line_no, err.to_string());
                continue;
            }
        };
        let ts_ms = point.timestamp.map(|t| t.saturating_mul(multiply) / divide);
        for (field, value) in fields.iter() {
            let Some(number) = value.number() else {
                outcome.rejected += 1;
                if let FieldValue::Str(_) = value {
                    outcome.note_error(
                        line_no,
                        format!("field {field:?} is a string; only numeric and boolean fields are metrics"),
                    );
                }
                continue;
            };
            // Agents write runs of points of one series: the series resolved last is reused
            // (the batch's key buffer still holds it).
            let resolved = match last {
                Some((series, last_field, resolved)) if series == point.series && last_field == *field => Ok(resolved),
                _ => {
                    let name = bumpalo::format!(in &bump, "{}_{}", point.measurement, field).into_bump_str();
                    let resolved = batch.resolve(name, &[], &tags, MetricKind::Gauge);
                    last = resolved.as_ref().ok().map(|r| (point.series, *field, *r));
                    resolved
                }
            };
            let recorded = resolved.and_then(|series| batch.record(series, ts_ms, Observation::Gauge(number)));
            batch.count(&recorded);
            match recorded {
                Ok(()) => outcome.accepted += 1,
                Err(reject) => {
                    outcome.rejected += 1;
                    outcome.hit_series_limit |= reject.is_series_limit();
                    outcome.note_error(line_no, format!("field {field:?}: {reject}"));
                }
            }
        }
    }
    batch.finish();
    Ok(answer(&outcome))
}

fn answer(outcome: &PushOutcome) -> Response {
    if outcome.rejected == 0 {
        let mut response = Response::new(Vec::new().into());
        *response.status_mut() = StatusCode::NO_CONTENT;
        return response;
    }
    let status = if outcome.hit_series_limit { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::BAD_REQUEST };
    let first = outcome.errors.first().map(|e| format!("line {}: {}", e.index, e.reason)).unwrap_or_default();
    let message = format!(
        "{} accepted, {} rejected (the good lines are kept); first: {first}",
        outcome.accepted, outcome.rejected
    );
    let errors: Vec<serde_json::Value> =
        outcome.errors.iter().map(|e| serde_json::json!({"line": e.index, "reason": e.reason})).collect();
    let code = if outcome.hit_series_limit { "too many requests" } else { "invalid" };
    reply::json(
        status,
        &serde_json::json!({"code": code, "message": message, "accepted": outcome.accepted, "rejected": outcome.rejected, "errors": errors}),
    )
}
