//! `POST /api/v1/gate`: rule files sent by `perfwatch gate`, evaluated once against this
//! daemon's history (memory included) at a moment, without touching the running rules.

use std::sync::Arc;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, ReadState, reply};
use crate::clock;
use crate::query::time::parse_time;
use crate::query::view::with_view;
use crate::rules::gate;
use crate::rules::rule::metric_names;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateRequest {
    /// Rule files as the client read them; `name` is used in error positions.
    files: Vec<RuleFile>,
    /// When to evaluate (the query API's time syntax); now if absent.
    at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    content: String,
}

pub async fn evaluate(state: Arc<ReadState>, body: &[u8]) -> Result<Response, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let request: GateRequest = serde_json::from_slice(body)
        .map_err(|e| bad(format!("body: {e}; send {{\"files\": [{{\"name\": …, \"content\": …}}], \"at\": …}}")))?;
    let at_s = match &request.at {
        Some(text) => parse_time(text, clock::now_s()).map_err(|e| bad(format!("at: {e}")))?,
        None => clock::now_s(),
    };
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for file in &request.files {
        match crate::rules::parse(&file.content, &file.name, None) {
            Ok(mut parsed) => groups.append(&mut parsed),
            Err(mut found) => errors.append(&mut found),
        }
    }
    if !errors.is_empty() {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        return Err(bad(format!("the rule files have mistakes:\n{}", lines.join("\n"))));
    }
    if groups.iter().all(|g| g.rules.is_empty()) {
        return Err(bad("the rule files hold no rules; the gate has nothing to judge".into()));
    }
    let names = metric_names(groups.iter().flat_map(|g| &g.rules));
    let report = with_view(&state.reader, Some(&state.aggregator), None, &names, move |view| {
        gate::evaluate(&groups, at_s, view)
    })
    .await
    .map_err(ApiError::query)?;
    Ok(reply::json(StatusCode::OK, &report))
}
