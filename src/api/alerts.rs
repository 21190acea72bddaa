//! `GET /api/v1/alerts` (filter by state and severity) and `GET /api/v1/alerts/{id}` with the
//! instance's transition history.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, OncallState, reply};
use crate::alert::silence::{Silence, active_silences, matching};
use crate::clock;
use crate::model::SeriesKey;
use crate::store::alerts::{Ack, AlertRow, HistoryRow};

#[derive(Serialize)]
struct AlertBody {
    id: String,
    rule: String,
    group: String,
    labels: BTreeMap<String, String>,
    state: String,
    severity: Option<String>,
    value: Option<f64>,
    threshold: Option<f64>,
    pending_since: Option<i64>,
    firing_since: Option<i64>,
    updated: i64,
    acked: Option<AckBody>,
    silenced: bool,
    silenced_by: Vec<String>,
}

#[derive(Serialize)]
struct AckBody {
    by: String,
    at: i64,
    comment: String,
}

#[derive(Serialize)]
struct HistoryBody {
    at: i64,
    transition: String,
    state: String,
    severity: Option<String>,
    value: Option<f64>,
    threshold: Option<f64>,
    /// Who acknowledged, and their comment (acks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

fn alert_body(row: AlertRow, silences: &[Silence], now_s: i64) -> AlertBody {
    let parsed = SeriesKey::parse(&row.labels).map(|k| k.labels).unwrap_or_default();
    let silenced_by: Vec<String> =
        matching(silences, &parsed, row.severity.as_deref(), now_s).into_iter().map(str::to_owned).collect();
    let labels = parsed.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    AlertBody {
        acked: row.ack.map(|a| AckBody { by: a.by, at: a.at_s, comment: a.comment }),
        silenced: !silenced_by.is_empty(),
        silenced_by,
        id: row.id,
        rule: row.rule,
        group: row.group,
        labels,
        state: row.state,
        severity: row.severity,
        value: row.value,
        threshold: row.threshold,
        pending_since: row.pending_since_s,
        firing_since: row.firing_since_s,
        updated: row.updated_s,
    }
}

fn history_body(row: HistoryRow) -> HistoryBody {
    HistoryBody {
        at: row.at_s,
        transition: row.transition,
        state: row.state,
        severity: row.severity,
        value: row.value,
        threshold: row.threshold,
        by: row.actor,
        comment: row.note,
    }
}

/// Pending and firing alerts by default; `state=inactive|pending|firing|all`, `severity=…`.
pub async fn list(state: Arc<OncallState>, params: HashMap<String, String>) -> Result<Response, ApiError> {
    let states: Vec<&'static str> = match params.get("state").map(String::as_str) {
        None => vec!["pending", "firing"],
        Some("all") => vec![],
        Some("inactive") => vec!["inactive"],
        Some("pending") => vec!["pending"],
        Some("firing") => vec!["firing"],
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("state {other:?} is not one of inactive, pending, firing, all"),
            ));
        }
    };
    let now_s = clock::now_s();
    let (rows, silences) = state
        .reader
        .read(move |tx| Ok((tx.alerts(&states)?, tx.silences(now_s, false)?)))
        .await
        .map_err(ApiError::internal)?;
    let silences = active_silences(silences);
    let severity = params.get("severity").cloned();
    let alerts: Vec<AlertBody> = rows
        .into_iter()
        .filter(|row| severity.as_ref().is_none_or(|s| row.severity.as_ref() == Some(s)))
        .map(|row| alert_body(row, &silences, now_s))
        .collect();
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "alerts": alerts })))
}

pub async fn one(state: Arc<OncallState>, id: String) -> Result<Response, ApiError> {
    let lookup = id.clone();
    let now_s = clock::now_s();
    let (alert, history, silences) = state
        .reader
        .read(move |tx| {
            let alert = tx.alerts(&[])?.into_iter().find(|row| row.id == lookup);
            Ok((alert, tx.alert_history(&lookup)?, tx.silences(now_s, false)?))
        })
        .await
        .map_err(ApiError::internal)?;
    let silences = active_silences(silences);
    let alert = alert.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("no alert {id:?}; list them at /api/v1/alerts?state=all"))
    })?;
    let history: Vec<HistoryBody> = history.into_iter().map(history_body).collect();
    Ok(reply::json(
        StatusCode::OK,
        &serde_json::json!({ "alert": alert_body(alert, &silences, now_s), "history": history }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    by: String,
    #[serde(default)]
    comment: String,
}

/// Acknowledges (`Some`) or unacknowledges (`None`) an active alert.
pub async fn ack(state: Arc<OncallState>, id: String, request: Option<AckRequest>) -> Result<Response, ApiError> {
    let now_s = clock::now_s();
    let ack = match request {
        Some(r) if r.by.trim().is_empty() => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "\"by\" must name who acknowledges".into()));
        }
        Some(r) => Some(Ack { by: r.by, at_s: now_s, comment: r.comment }),
        None => None,
    };
    let acked_by = ack.as_ref().map(|a| a.by.clone());
    let acked = ack.is_some();
    let found = state.store.ack(id.clone(), ack, now_s).await.map_err(ApiError::internal)?;
    if !found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no pending or firing alert {id:?}; see /api/v1/alerts"),
        ));
    }
    // Stored first: if perfwatch dies now, the restart re-applies the ack to escalation.
    if let Some(by) = acked_by {
        state.scheduler.acked(id.clone(), by).await;
    }
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "id": id, "acked": acked })))
}
