//! The HTTP server: accepts connections on the bound listener and serves each with HTTP/1.1
//! under bounds, so no client can hold perfwatch's ports or file descriptors:
//!
//! - at most `http.max_connections` open at once; a connection past that is closed at once
//!   (counted and logged), never left to exhaust file descriptors;
//! - a request's headers must arrive within `http.header_read_timeout`, and an idle
//!   keep-alive connection is closed after the same time (hyper times the wait for every
//!   request head, the first and the next);
//! - a whole request, body included, must be answered within `http.request_timeout`: a body
//!   trickled in a byte a minute gets 408 and its connection closed;
//! - at most 100 headers, in hyper's read buffer of at most about 400 KiB (its default: a
//!   smaller one costs large bodies extra reads).
//!
//! On shutdown it stops accepting and lets requests in flight finish, for at most
//! [`DRAIN_DEADLINE`]; connections still open then are closed.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use warp::Filter;
use warp::reply::Response;

use crate::config::HttpLimits;
use crate::telemetry;

/// How long requests in flight may take to finish after shutdown began.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
const MAX_HEADERS: usize = 100;

/// Serves `routes` on `listener` until `cancel`, then drains.
pub async fn serve<F>(listener: Arc<TcpListener>, routes: F, limits: HttpLimits, cancel: CancellationToken)
where
    F: Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut last_warning: Option<Instant> = None;
    let mut warn = |what: &str, detail: &dyn std::fmt::Display| {
        // At most one line a second: a flood must not flood the log too.
        if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            last_warning = Some(Instant::now());
            tracing::warn!(%detail, "{what}");
        }
    };
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                // Out of file descriptors or memory: wait a little instead of spinning.
                telemetry::http_accept_failed();
                warn("cannot accept an HTTP connection; retrying", &err);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            telemetry::http_connection_refused();
            warn(
                "HTTP connection refused: http.max_connections are open (idle ones close after http.header_read_timeout)",
                &limits.max_connections,
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = timed(TowerToHyperService::new(warp::service(routes.clone())), limits.request_timeout);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_headers(MAX_HEADERS)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        telemetry::http_connections_open(limits.max_connections - slots.available_permits());
        let slots_left = slots.clone();
        let max = limits.max_connections;
        while connections.try_join_next().is_some() {} // reap the finished
        connections.spawn(async move {
            // Errors here are the client's (reset, bad request line, too slow): hyper has
            // answered what it could; nothing to do but count the slot free again.
            let _ = connection.await;
            drop(slot);
            telemetry::http_connections_open(max - slots_left.available_permits());
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown()).await.is_err() {
        tracing::warn!(deadline = ?DRAIN_DEADLINE, "HTTP requests still in flight at the drain deadline were cut off");
    }
    // Every connection task holds the routes (and so the flusher's handle): end them all, or
    // the final flush would wait for them.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// A service answering 408 when a request (body included) takes longer than `limit`.
#[derive(Clone)]
struct Timed<S> {
    inner: S,
    limit: Duration,
}

fn timed<S>(inner: S, limit: Duration) -> Timed<S> {
    Timed { inner, limit }
}

impl<S> hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Timed<S>
where
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let answer = self.inner.call(request);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, answer).await {
                Ok(answered) => answered,
                Err(_) => {
                    telemetry::http_request("timeout", 408);
                    let message = format!(
                        "the request took longer than http.request_timeout ({} s); send its body without pauses",
                        limit.as_secs()
                    );
                    let mut response = super::reply::error(warp::http::StatusCode::REQUEST_TIMEOUT, &message);
                    let close = warp::http::HeaderValue::from_static("close");
                    response.headers_mut().insert(warp::http::header::CONNECTION, close);
                    Ok(response)
                }
            }
        })
    }
}
/// Raises this process's open-file limit to its hard limit (systemd's default soft limit is
/// 1,024) and returns the soft limit now in force, so `http.max_connections` can be checked
/// against it.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}
