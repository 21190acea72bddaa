//! `POST|GET /api/v1/silences` and `DELETE /api/v1/silences/{id}`: label matchers, a start and
//! an end, an author and a comment. Ending a silence early keeps it on record.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, OncallState, reply};
use crate::alert::silence::Silence;
use crate::clock;
use crate::query::time::{parse_duration_s, parse_time};
use crate::store::alerts::SilenceRow;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// `{service="api",severity=~"crit.*"}`
    #[serde(rename = "match")]
    matchers: String,
    starts_at: Option<String>,
    ends_at: Option<String>,
    /// Instead of `ends_at`: how long from the start, e.g. `2h`.
    duration: Option<String>,
    author: String,
    #[serde(default)]
    comment: String,
}

#[derive(Serialize)]
struct SilenceBody {
    id: String,
    #[serde(rename = "match")]
    matchers: String,
    starts_at: i64,
    ends_at: i64,
    author: String,
    comment: String,
    active: bool,
}

pub async fn create(state: Arc<OncallState>, request: NewSilence) -> Result<Response, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let now_s = clock::now_s();
    Silence::new(String::new(), &request.matchers, 0, 0).map_err(|e| bad(format!("match: {e}")))?;
    if request.author.trim().is_empty() {
        return Err(bad("author must name who silences".into()));
    }
    let starts_s = match &request.starts_at {
        Some(text) => parse_time(text, now_s).map_err(|e| bad(format!("starts_at: {e}")))?,
        None => now_s,
    };
    let ends_s = match (&request.ends_at, &request.duration) {
        (Some(text), None) => parse_time(text, now_s).map_err(|e| bad(format!("ends_at: {e}")))?,
        (None, Some(text)) => parse_duration_s(text)
            .and_then(|duration| starts_s.checked_add(duration))
            .filter(|ends_s| *ends_s <= crate::query::time::MAX_TIME_S)
            .ok_or_else(|| bad(format!("duration {text:?} is not a duration up to year 9999; write e.g. 2h")))?,
        _ => return Err(bad("give exactly one of ends_at and duration".into())),
    };
    if ends_s <= starts_s.max(now_s) {
        return Err(bad("the silence would end before it starts or in the past".into()));
    }
    let id = format!("{:016x}", rand::random::<u64>());
    let row = SilenceRow {
        id: id.clone(),
        matchers: request.matchers,
        starts_s,
        ends_s,
        author: request.author,
        comment: request.comment,
        created_s: now_s,
        until_resolved: None,
    };
    state.store.save_silence(row).await.map_err(ApiError::internal)?;
    Ok(reply::json(StatusCode::CREATED, &serde_json::json!({ "id": id })))
}

/// Active and future silences; `?all=true` includes ended ones.
pub async fn list(state: Arc<OncallState>, params: HashMap<String, String>) -> Result<Response, ApiError> {
    let now_s = clock::now_s();
    let all = params.get("all").is_some_and(|v| v == "true");
    let rows = state.reader.read(move |tx| tx.silences(now_s, all)).await.map_err(ApiError::internal)?;
    let silences: Vec<SilenceBody> = rows
        .into_iter()
        .map(|r| SilenceBody {
            active: r.starts_s <= now_s && now_s < r.ends_s,
            id: r.id,
            matchers: r.matchers,
            starts_at: r.starts_s,
            ends_at: r.ends_s,
            author: r.author,
            comment: r.comment,
        })
        .collect();
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "silences": silences })))
}

/// Ends a silence now.
pub async fn expire(state: Arc<OncallState>, id: String) -> Result<Response, ApiError> {
    let now_s = clock::now_s();
    let lookup = id.clone();
    let existing = state
        .reader
        .read(move |tx| Ok(tx.silences(now_s, false)?.into_iter().find(|s| s.id == lookup)))
        .await
        .map_err(ApiError::internal)?;
    let Some(mut silence) = existing else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no active silence {id:?}; see /api/v1/silences")));
    };
    silence.ends_s = now_s;
    state.store.save_silence(silence).await.map_err(ApiError::internal)?;
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "id": id, "ended": now_s })))
}
