//! The HTTP API: warp routes for push, query, health, admin and /metrics. Only this module
//! knows the JSON shapes of the API; handlers are thin and call into ingest and query.

mod ack_link;
mod alert_page;
mod alerts;
mod arena;
mod auth;
mod body;
mod chart;
mod csrf;
mod gate;
mod influx;
mod notifications;
mod offload;
mod otlp;
mod page;
mod prometheus;
mod push;
mod pushgateway;
mod query;
mod reply;
mod routes;
pub mod server;
mod silences;
mod state;
mod status;

pub use self::csrf::CsrfKey;
pub use self::offload::CpuPool;
pub use self::routes::routes;
pub use self::state::{ApiState, IngestState, NotificationState, OncallState, OperationsState, ReadState};
pub use self::status::keep_warm as keep_status_page_warm;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use futures_util::FutureExt;
use warp::Rejection;
use warp::http::header::AUTHORIZATION;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use self::body::BodyHead;
use crate::{clock, telemetry};

/// An answer that is not a success: a status and a message that says what to do.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header, when the client should try again.
    pub retry_after_s: Option<u64>,
    /// A 401 for a page: `WWW-Authenticate: Basic`, so a browser asks for the token.
    pub challenge: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, message: String) -> ApiError {
        ApiError { status, message, retry_after_s: None, challenge: false }
    }

    /// 503 with `Retry-After`: the client should send the same again later.
    pub fn unavailable(message: String, retry_after_s: u64) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message,
            retry_after_s: Some(retry_after_s),
            challenge: false,
        }
    }

    /// A store failure: 500 with its message.
    pub fn internal(err: crate::store::StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }

    /// A query failure: 500 when the store failed, else 400 (the request asked for something
    /// that cannot be computed, such as p99 of a counter).
    pub fn query(err: crate::query::QueryError) -> ApiError {
        match err {
            crate::query::QueryError::Store(err) => ApiError::internal(err),
            crate::query::QueryError::Busy => ApiError::unavailable(err.to_string(), 1),
            other => ApiError::new(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }

    fn into_response(self) -> Response {
        let mut response = reply::error(self.status, &self.message);
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(warp::http::header::RETRY_AFTER, seconds.into());
        }
        if self.challenge {
            let challenge = warp::http::HeaderValue::from_static("Basic realm=\"perfwatch\", charset=\"UTF-8\"");
            response.headers_mut().insert(warp::http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

type Handled = Result<Response, Infallible>;

/// Who may call a route.
#[derive(Clone, Copy)]
enum Guard {
    /// The push token, when one is configured.
    Push,
    /// The API token (reads, alerts, admin, /metrics), when one is configured.
    Api,
    /// No bearer token: a signed link carries its own authority.
    Link,
    /// A page for a person: the API token, as a bearer token or basic auth's password.
    Page,
}

/// Checks the route's token, runs `handler`, and counts the answer: the one wrapper every
/// route goes through.
async fn guarded<Fut>(
    state: Arc<ApiState>,
    headers: HeaderMap,
    guard: Guard,
    route: &'static str,
    handler: impl FnOnce(Arc<ApiState>) -> Fut,
) -> Handled
where
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let authorization = headers.get(AUTHORIZATION);
    let allowed = match guard {
        Guard::Push => auth::check(state.push_token.as_ref(), authorization, "pushing"),
        Guard::Api => auth::check(state.api_token.as_ref(), authorization, "this API"),
        Guard::Link => Ok(()),
        Guard::Page => auth::check_page(state.api_token.as_ref(), authorization),
    };
    let result = match allowed {
        Ok(()) => answering_panics(route, handler(state.clone())).await,
        Err(err) => Err(err),
    };
    finish(route, result)
}

/// Runs a handler; a panic in it is a bug, answered 500 with an id the error log repeats. The
/// next request finds every pooled resource back (reads return their connection while
/// unwinding, shard locks are never poisoned for good).
async fn answering_panics<Fut>(route: &'static str, handler: Fut) -> Result<Response, ApiError>
where
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    std::panic::AssertUnwindSafe(handler).catch_unwind().await.unwrap_or_else(|panic| {
        let id = format!("{:016x}", rand::random::<u64>());
        let message = crate::store::reader::panic_message(panic.as_ref());
        telemetry::handler_panicked(route, &id, &message);
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error {id}: this is a bug in perfwatch; the log has the details under this id"),
        ))
    })
}

/// Receives a pushed body under `limits.max_body_bytes`, then inflates and handles it on the
/// CPU pool: the token was checked before, and no byte of the body is read before the headers
/// are.
async fn ingest<S, B>(
    state: Arc<IngestState>,
    head: BodyHead,
    stream: S,
    handle: impl FnOnce(&Arc<IngestState>, &[u8]) -> Result<Response, ApiError> + Send + 'static,
) -> Result<Response, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: bytes::Buf,
{
    if let Err(backlogged) = state.flush.health().admit() {
        return Err(ApiError::unavailable(backlogged.to_string(), RETRY_AFTER_S));
    }
    let raw = body::receive(stream, &head, body::Limit::pushed(state.limits.max_body_bytes)).await?;
    let worker = state.clone();
    state.cpu.run_sized(raw.cost_bytes(), move || handle(&worker, &raw.inflate()?)).await
}

type Params = HashMap<String, String>;

/// `POST /-/reload`: new rules, or every mistake and the running rules kept.
async fn reload_rules(state: Arc<OperationsState>) -> Result<Response, ApiError> {
    match state.reloader.reload().await {
        Ok(report) => Ok(reply::json(
            StatusCode::OK,
            &serde_json::json!({ "rules": report.n_rules, "kept_state": report.n_kept }),
        )),
        Err(errors) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "rules not reloaded; the running rules stay:\n{}",
                errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
            ),
        )),
    }
}

/// `POST /api/v1/admin/flush`: commit everything in memory now.
async fn flush_all(state: Arc<OperationsState>) -> Result<Response, ApiError> {
    let n = state
        .flush
        .flush_all()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("flush failed: {e}")))?;
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "rollups": n })))
}

/// How long a client refused for a backlog is asked to wait.
const RETRY_AFTER_S: u64 = 30;

/// Ready when the database takes writes and flushes keep up; otherwise 503 saying which.
fn readiness(state: &OperationsState) -> Response {
    let interval_s = state.aggregator.settings().interval_s;
    match crate::health::readiness(state.flush.health(), &state.tasks, interval_s, clock::now_ms()) {
        Ok(ready) => reply::json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "ready",
                "flush_lag_seconds": ready.flush_lag_ms as f64 / 1000.0,
                "durable_before": ready.durable_before_s,
            }),
        ),
        Err(why) => reply::error(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

fn finish(route: &'static str, result: Result<Response, ApiError>) -> Handled {
    let response = result.unwrap_or_else(ApiError::into_response);
    telemetry::http_request(route, response.status().as_u16());
    Ok(response)
}

fn rejected(rejection: Rejection) -> Response {
    if rejection.is_not_found() {
        reply::error(StatusCode::NOT_FOUND, "no such route; see docs/http-api.md for the API")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        reply::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
    } else if let Some(err) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        reply::error(StatusCode::BAD_REQUEST, &format!("bad JSON body: {err}"))
    } else if let Some(err) = rejection.find::<warp::reject::InvalidQuery>() {
        reply::error(StatusCode::BAD_REQUEST, &format!("bad query string: {err}"))
    } else {
        reply::error(StatusCode::BAD_REQUEST, &format!("bad request: {rejection:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_with_an_id() {
        let handler = async { panic!("detail of the bug") };
        let err = answering_panics("test", handler).await.unwrap_err();
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.message.starts_with("internal error ") && err.message.contains("under this id"), "{}", err.message);
        assert!(!err.message.contains("detail of the bug"), "the panic's text stays in the log: {}", err.message);
        let fine = answering_panics("test", async { Ok(reply::json(StatusCode::OK, &"ok")) }).await;
        assert_eq!(fine.unwrap().status(), StatusCode::OK);
    }
}
