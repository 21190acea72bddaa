//! `POST /api/v1/notifiers/{name}/test` queues a test notification through the outbox like any
//! other; `GET /api/v1/notifications[?alert=&notifier=&status=&subject=&limit=]` lists notifications
//! newest first and `GET /api/v1/notifications/{id}` shows one with every attempt.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, NotificationState, reply};
use crate::clock;
use crate::notify::message::Message;
use crate::store::outbox::{AttemptRow, OutboxFilter, OutboxRow};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    by: Option<String>,
}

#[derive(Serialize)]
struct NotificationBody {
    id: String,
    notifier: String,
    subject: String,
    kind: String,
    status: String,
    attempts: i64,
    created: i64,
    due: i64,
    sent: Option<i64>,
    last_error: Option<String>,
    in_doubt: bool,
    /// The receiver's reference (Slack's `channel/ts` with a bot token).
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<String>,
}

#[derive(Serialize)]
struct AttemptBody {
    at: i64,
    status: String,
    error: Option<String>,
    latency_ms: i64,
}

fn body(row: OutboxRow) -> NotificationBody {
    NotificationBody {
        id: row.id,
        notifier: row.notifier,
        subject: row.subject,
        kind: row.kind,
        status: row.status,
        attempts: row.attempts,
        created: row.created_s,
        due: row.due_s,
        sent: row.sent_s,
        last_error: row.last_error,
        in_doubt: row.in_doubt,
        receipt: row.receipt,
    }
}

pub async fn test(state: Arc<NotificationState>, name: String, request: &[u8]) -> Result<Response, ApiError> {
    let request: TestRequest = if request.iter().all(u8::is_ascii_whitespace) {
        TestRequest::default()
    } else {
        serde_json::from_slice(request).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("body: {e}; send {{\"by\": \"name\"}} or nothing"))
        })?
    };
    if !state.delivery.notifier_names().any(|n| n == name) {
        let known: Vec<&str> = state.delivery.notifier_names().collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no notifier {name:?}; configured: {}", known.join(", ")),
        ));
    }
    let by = request.by.unwrap_or_else(|| "perfwatch".into());
    let payload = serde_json::to_string(&Message::test(&name, &by)).expect("a message serialises");
    let id = format!("test-{:016x}", rand::random::<u64>());
    let row = OutboxRow::new(id.clone(), name, "test".into(), "test".into(), payload, clock::now_s());
    state.store.enqueue(vec![row]).await.map_err(ApiError::internal)?;
    state.delivery.wake();
    Ok(reply::json(StatusCode::ACCEPTED, &serde_json::json!({ "id": id })))
}

pub async fn list(state: Arc<NotificationState>, params: HashMap<String, String>) -> Result<Response, ApiError> {
    let filter = OutboxFilter {
        notifier: params.get("notifier").cloned(),
        status: params.get("status").cloned(),
        subject: params.get("subject").cloned(),
        alert: params.get("alert").cloned(),
    };
    let limit = match params.get("limit") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "limit must be 1 to 1000".into()))?,
        None => 100,
    };
    let rows = state.reader.read(move |tx| tx.notifications(&filter, limit)).await.map_err(ApiError::internal)?;
    let rows: Vec<NotificationBody> = rows.into_iter().map(body).collect();
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "notifications": rows })))
}

pub async fn one(state: Arc<NotificationState>, id: String) -> Result<Response, ApiError> {
    let lookup = id.clone();
    let (rows, attempts) = state
        .reader
        .read(move |tx| Ok((tx.notification(&lookup)?, tx.attempts(&lookup)?)))
        .await
        .map_err(ApiError::internal)?;
    let row = rows.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no notification {id:?}")))?;
    let attempts: Vec<AttemptBody> = attempts
        .into_iter()
        .map(|a: AttemptRow| AttemptBody { at: a.at_s, status: a.status, error: a.error, latency_ms: a.latency_ms })
        .collect();
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "notification": body(row), "attempts": attempts })))
}
