//! `POST /api/v1/push`: the native JSON format. Answers how many entries were accepted and
//! rejected, with the index and reason of the first 100 rejections.

use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, IngestState, reply};
use crate::clock;
use crate::ingest::parse::{PushOutcome, json};
use crate::ingest::sink::{IngestBatch, Scratch};

#[derive(Serialize)]
struct OutcomeBody {
    accepted: u64,
    rejected: u64,
    errors: Vec<serde_json::Value>,
}

/// How an answer names where a rejected sample was.
#[derive(Clone, Copy)]
pub enum Position {
    /// Index into the JSON `metrics` array.
    Index,
    /// 1-based line of a text body.
    Line,
}

pub fn native(state: &Arc<IngestState>, body: &[u8]) -> Result<Response, ApiError> {
    let text = super::body::text(body)?;
    let outcome = super::arena::with(|bump| {
        let mut batch =
            IngestBatch::new(&state.aggregator, &state.limits, bump, "json", clock::now_ms(), Scratch::default());
        let outcome = json::parse(text, &mut batch);
        batch.finish();
        outcome
    });
    let outcome = outcome.map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, message))?;
    Ok(outcome_reply(&outcome, Position::Index))
}

/// 200 when anything was taken (or nothing was sent), 400 when everything was refused, 429
/// when the active series limit refused something; the body always says what happened.
pub fn outcome_reply(outcome: &PushOutcome, position: Position) -> Response {
    let status = if outcome.hit_series_limit {
        StatusCode::TOO_MANY_REQUESTS
    } else if outcome.accepted == 0 && outcome.rejected > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = OutcomeBody {
        accepted: outcome.accepted,
        rejected: outcome.rejected,
        errors: outcome
            .errors
            .iter()
            .map(|e| match position {
                Position::Index => serde_json::json!({ "index": e.index, "reason": e.reason }),
                Position::Line => serde_json::json!({ "line": e.index, "reason": e.reason }),
            })
            .collect(),
    };
    reply::json(status, &body)
}
