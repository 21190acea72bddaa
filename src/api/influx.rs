//! `POST /write` (InfluxDB 1.x) and `POST /api/v2/write` (2.x): Influx line protocol as Telegraf
//! and the InfluxDB client libraries send it, mapped to series by `ingest::influx`, timestamps
//! in the `precision` asked for. Everything taken: `204 No Content`, as InfluxDB answers. A bad
//! line, or a string field (not a metric), is refused with its line number and the good lines
//! are kept: `400` with InfluxDB's `{"code": "invalid", "message"}` plus the counts and errors.

use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, IngestState, reply};
use crate::clock;
use crate::ingest::influx::{self, Precision};
use crate::ingest::parse::PushOutcome;
use crate::ingest::sink::{IngestBatch, Scratch};

pub fn write(state: &Arc<IngestState>, precision: Option<&str>, body: &[u8]) -> Result<Response, ApiError> {
    let precision = Precision::parse(precision).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("precision {:?} is not one of ns, us, ms, s (or n, u, m, h)", precision.unwrap_or_default()),
        )
    })?;
    let outcome = super::arena::with(|bump| {
        let mut batch =
            IngestBatch::new(&state.aggregator, &state.limits, bump, "influx", clock::now_ms(), Scratch::default());
        let outcome = influx::ingest(body, precision, &mut batch);
        batch.finish();
        outcome
    });
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
