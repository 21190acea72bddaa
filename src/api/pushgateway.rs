//! Pushgateway-compatible routes: `PUT|POST /metrics/job/<job>{/<label>/<value>}` with a text
//! or delimited-protobuf exposition body, and `DELETE` on the same path. A malformed body is refused whole with 400
//! and the line and reason, as Pushgateway does; nothing of it is applied.

use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, IngestState, reply};
use crate::clock;
use crate::ingest::parse::{prom_proto, prom_text};
use crate::ingest::pushgateway::{GroupingKey, apply};
use crate::ingest::sink::{IngestBatch, Scratch};

pub fn push(
    state: &Arc<IngestState>,
    tail: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let grouping = GroupingKey::parse(tail).map_err(|e| bad(e.to_string()))?;
    super::arena::with(|bump| {
        let families = if content_type.is_some_and(prom_proto::is_protobuf) {
            prom_proto::parse(body, bump)
                .map_err(|e| bad(format!("protobuf parsing error in metric family {}: {}", e.line, e.message)))?
        } else {
            let text = super::body::text(body)?;
            prom_text::parse(text, bump).map_err(|e| bad(format!("text format parsing error in {e}")))?
        };
        let pairs: Vec<(&str, &str)> = grouping.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let now_ms = clock::now_ms();
        let mut batch =
            IngestBatch::new(&state.aggregator, &state.limits, bump, "prometheus", now_ms, Scratch::default());
        let outcome = apply(&families, &pairs, grouping.hash, &mut batch);
        batch.finish();
        Ok(super::push::outcome_reply(&outcome, super::push::Position::Line))
    })
}

/// Forgets the group's cumulative totals: the next push of its series counts from zero.
pub fn delete(state: &Arc<IngestState>, tail: &str) -> Result<Response, ApiError> {
    let grouping = GroupingKey::parse(tail).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let forgotten = state.aggregator.forget_group(grouping.hash);
    Ok(reply::json(StatusCode::ACCEPTED, &serde_json::json!({ "forgotten_series": forgotten })))
}
