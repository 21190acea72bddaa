//! The HTTP API: warp routes for push, query, health, admin and /metrics. Only this module
//! knows the JSON shapes of the API; handlers are thin and call into ingest and query.

mod alerts;
mod auth;
mod body;
mod push;
mod pushgateway;
mod query;
mod reply;
mod silences;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use warp::filters::BoxedFilter;
use warp::http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::aggregate::Aggregator;
use crate::aggregate::flusher::FlushHandle;
use crate::config::Secret;
use crate::ingest::limits::Limits;
use crate::store::Reader;
use crate::{clock, telemetry};

/// What every handler can reach.
pub struct ApiState {
    pub aggregator: Arc<Aggregator>,
    pub reader: Reader,
    pub limits: Limits,
    pub push_token: Option<Secret>,
    pub api_token: Option<Secret>,
    pub flush: FlushHandle,
    pub store: crate::store::StoreHandle,
    pub reloader: crate::rules::reload::Reloader,
    pub prometheus: Option<PrometheusHandle>,
}

/// An answer that is not a success: a status and a message that says what to do.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: String) -> ApiError {
        ApiError { status, message }
    }

    fn into_response(self) -> Response {
        reply::error(self.status, &self.message)
    }
}

type Handled = Result<Response, Infallible>;

/// Every route, with unknown paths and methods answered in JSON.
pub fn routes(
    state: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let headers = warp::header::headers_cloned();

    let push = warp::path!("api" / "v1" / "push")
        .and(warp::post())
        .and(with_state.clone())
        .and(headers)
        .and(warp::body::stream())
        .and_then(|state: Arc<ApiState>, headers: HeaderMap, stream| async move {
            let result = async {
                auth::check(state.push_token.as_ref(), headers.get(AUTHORIZATION), "pushing")?;
                let encoding = headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok());
                let body = body::read(Box::pin(stream), encoding, state.limits.max_body_bytes).await?;
                push::native(&state, &body)
            }
            .await;
            finish("push", result)
        });

    let pushgateway = warp::path("metrics")
        .and(warp::path::tail())
        .and(warp::put().or(warp::post()).unify())
        .and(with_state.clone())
        .and(headers)
        .and(warp::body::stream())
        .and_then(|tail: warp::path::Tail, state: Arc<ApiState>, headers: HeaderMap, stream| async move {
            let result = async {
                auth::check(state.push_token.as_ref(), headers.get(AUTHORIZATION), "pushing")?;
                let encoding = headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok());
                let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
                let body = body::read(Box::pin(stream), encoding, state.limits.max_body_bytes).await?;
                pushgateway::push(&state, tail.as_str(), content_type, &body)
            }
            .await;
            finish("pushgateway", result)
        });

    let pushgateway_delete = warp::path("metrics")
        .and(warp::path::tail())
        .and(warp::delete())
        .and(with_state.clone())
        .and(headers)
        .and_then(|tail: warp::path::Tail, state: Arc<ApiState>, headers: HeaderMap| async move {
            let result = auth::check(state.push_token.as_ref(), headers.get(AUTHORIZATION), "pushing")
                .and_then(|()| pushgateway::delete(&state, tail.as_str()));
            finish("pushgateway_delete", result)
        });

    let query = warp::path!("api" / "v1" / "query")
        .and(warp::get())
        .and(with_state.clone())
        .and(headers)
        .and(warp::query::<HashMap<String, String>>())
        .and_then(|state: Arc<ApiState>, headers: HeaderMap, params| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the query API")?;
                query::query(state, params).await
            }
            .await;
            finish("query", result)
        });

    let metric_list =
        warp::path!("api" / "v1" / "metrics").and(warp::get()).and(with_state.clone()).and(headers).and_then(
            |state: Arc<ApiState>, headers: HeaderMap| async move {
                let result = async {
                    auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the query API")?;
                    query::metrics(state).await
                }
                .await;
                finish("metrics_list", result)
            },
        );

    let series = warp::path!("api" / "v1" / "series")
        .and(warp::get())
        .and(with_state.clone())
        .and(headers)
        .and(warp::query::<HashMap<String, String>>())
        .and_then(|state: Arc<ApiState>, headers: HeaderMap, params| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the query API")?;
                query::series(state, params).await
            }
            .await;
            finish("series", result)
        });

    let alert_list = warp::path!("api" / "v1" / "alerts")
        .and(warp::get())
        .and(with_state.clone())
        .and(headers)
        .and(warp::query::<HashMap<String, String>>())
        .and_then(|state: Arc<ApiState>, headers: HeaderMap, params| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the alerts API")?;
                alerts::list(state, params).await
            }
            .await;
            finish("alerts", result)
        });

    let alert_one =
        warp::path!("api" / "v1" / "alerts" / String).and(warp::get()).and(with_state.clone()).and(headers).and_then(
            |id: String, state: Arc<ApiState>, headers: HeaderMap| async move {
                let result = async {
                    auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the alerts API")?;
                    alerts::one(state, id).await
                }
                .await;
                finish("alert", result)
            },
        );

    let alert_ack = warp::path!("api" / "v1" / "alerts" / String / "ack")
        .and(warp::post())
        .and(with_state.clone())
        .and(headers)
        .and(warp::body::json())
        .and_then(|id: String, state: Arc<ApiState>, headers: HeaderMap, request: alerts::AckRequest| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the alerts API")?;
                alerts::ack(state, id, Some(request)).await
            }
            .await;
            finish("alert_ack", result)
        });

    let alert_unack = warp::path!("api" / "v1" / "alerts" / String / "unack")
        .and(warp::post())
        .and(with_state.clone())
        .and(headers)
        .and_then(|id: String, state: Arc<ApiState>, headers: HeaderMap| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the alerts API")?;
                alerts::ack(state, id, None).await
            }
            .await;
            finish("alert_unack", result)
        });

    let silence_create = warp::path!("api" / "v1" / "silences")
        .and(warp::post())
        .and(with_state.clone())
        .and(headers)
        .and(warp::body::json())
        .and_then(|state: Arc<ApiState>, headers: HeaderMap, request: silences::NewSilence| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the silences API")?;
                silences::create(state, request).await
            }
            .await;
            finish("silence_create", result)
        });

    let silence_list = warp::path!("api" / "v1" / "silences")
        .and(warp::get())
        .and(with_state.clone())
        .and(headers)
        .and(warp::query::<HashMap<String, String>>())
        .and_then(|state: Arc<ApiState>, headers: HeaderMap, params| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the silences API")?;
                silences::list(state, params).await
            }
            .await;
            finish("silences", result)
        });

    let silence_expire = warp::path!("api" / "v1" / "silences" / String)
        .and(warp::delete())
        .and(with_state.clone())
        .and(headers)
        .and_then(|id: String, state: Arc<ApiState>, headers: HeaderMap| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the silences API")?;
                silences::expire(state, id).await
            }
            .await;
            finish("silence_expire", result)
        });

    let reload = warp::path!("-" / "reload").and(warp::post()).and(with_state.clone()).and(headers).and_then(
        |state: Arc<ApiState>, headers: HeaderMap| async move {
            let result = async {
                auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the admin API")?;
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
            .await;
            finish("reload", result)
        },
    );

    let flush =
        warp::path!("api" / "v1" / "admin" / "flush").and(warp::post()).and(with_state.clone()).and(headers).and_then(
            |state: Arc<ApiState>, headers: HeaderMap| async move {
                let result = async {
                    auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "the admin API")?;
                    let n =
                        state.flush.flush_all().await.map_err(|e| {
                            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("flush failed: {e}"))
                        })?;
                    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "rollups": n })))
                }
                .await;
                finish("admin_flush", result)
            },
        );

    let metrics = warp::path!("metrics").and(warp::get()).and(with_state.clone()).and(headers).and_then(
        |state: Arc<ApiState>, headers: HeaderMap| async move {
            let result = auth::check(state.api_token.as_ref(), headers.get(AUTHORIZATION), "/metrics").map(|()| {
                let text = state.prometheus.as_ref().map(|p| p.render()).unwrap_or_default();
                warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4; charset=utf-8")
                    .into_response()
            });
            finish("metrics", result)
        },
    );

    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| reply::json(StatusCode::OK, &serde_json::json!({ "status": "alive" })));

    let readyz = warp::path!("readyz").and(warp::get()).and(with_state).map(|state: Arc<ApiState>| readiness(&state));

    // Each route boxed and folded: a flat type keeps compile times sane as routes grow.
    let all: Vec<BoxedFilter<(Response,)>> = vec![
        push.boxed(),
        pushgateway.boxed(),
        pushgateway_delete.boxed(),
        query.boxed(),
        metric_list.boxed(),
        series.boxed(),
        alert_list.boxed(),
        alert_one.boxed(),
        alert_ack.boxed(),
        alert_unack.boxed(),
        silence_create.boxed(),
        silence_list.boxed(),
        silence_expire.boxed(),
        reload.boxed(),
        flush.boxed(),
        metrics.boxed(),
        healthz.boxed(),
        readyz.boxed(),
    ];
    all.into_iter()
        .reduce(|routes, route| routes.or(route).unify().boxed())
        .expect("there are routes")
        .recover(|rejection: Rejection| async move { Ok::<_, Infallible>(rejected(rejection)) })
        .unify()
}

/// Ready when the last commit is recent: the database takes writes and flushes keep up.
fn readiness(state: &ApiState) -> Response {
    let interval_ms = state.aggregator.settings().interval_s * 1000;
    let lag_ms = clock::now_ms() - state.flush.last_commit_ms();
    if lag_ms > 3 * interval_ms + 5_000 {
        return reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("last successful flush was {} s ago; check the database disk and the logs", lag_ms / 1000),
        );
    }
    reply::json(StatusCode::OK, &serde_json::json!({ "status": "ready", "flush_lag_seconds": lag_ms as f64 / 1000.0 }))
}

fn finish(route: &'static str, result: Result<Response, ApiError>) -> Handled {
    let response = result.unwrap_or_else(ApiError::into_response);
    telemetry::http_request(route, response.status().as_u16());
    Ok(response)
}

fn rejected(rejection: Rejection) -> Response {
    if rejection.is_not_found() {
        reply::error(StatusCode::NOT_FOUND, "no such route; see README for the API")
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
