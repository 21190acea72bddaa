//! `GET /api/v1/alerts` (filter by state and severity) and `GET /api/v1/alerts/{id}` with the
//! instance's transition history.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, ApiState, reply};
use crate::model::SeriesKey;
use crate::store::alerts::{AlertRow, HistoryRow};

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
}

#[derive(Serialize)]
struct HistoryBody {
    at: i64,
    transition: String,
    state: String,
    severity: Option<String>,
    value: Option<f64>,
    threshold: Option<f64>,
}

fn alert_body(row: AlertRow) -> AlertBody {
    let labels = SeriesKey::parse(&row.labels)
        .map(|k| k.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        .unwrap_or_default();
    AlertBody {
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
    }
}

/// Pending and firing alerts by default; `state=inactive|pending|firing|all`, `severity=…`.
pub async fn list(state: Arc<ApiState>, params: HashMap<String, String>) -> Result<Response, ApiError> {
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
    let rows = state.reader.read(move |tx| tx.alerts(&states)).await.map_err(internal)?;
    let severity = params.get("severity").cloned();
    let alerts: Vec<AlertBody> = rows
        .into_iter()
        .filter(|row| severity.as_ref().is_none_or(|s| row.severity.as_ref() == Some(s)))
        .map(alert_body)
        .collect();
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "alerts": alerts })))
}

pub async fn one(state: Arc<ApiState>, id: String) -> Result<Response, ApiError> {
    let lookup = id.clone();
    let (alert, history) = state
        .reader
        .read(move |tx| {
            let alert = tx.alerts(&[])?.into_iter().find(|row| row.id == lookup);
            Ok((alert, tx.alert_history(&lookup)?))
        })
        .await
        .map_err(internal)?;
    let alert = alert.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("no alert {id:?}; list them at /api/v1/alerts?state=all"))
    })?;
    let history: Vec<HistoryBody> = history.into_iter().map(history_body).collect();
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "alert": alert_body(alert), "history": history })))
}

fn internal(err: crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}
