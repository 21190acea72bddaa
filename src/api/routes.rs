//! Every route of the API, in groups by who calls them: pushers, readers (dashboards, the
//! CLI, CI gates), on-call (alerts, silences, acknowledge links), notification checks, and
//! operations (health, /metrics, admin). Each route checks its token and counts its answer
//! through `guarded`; handlers live in the files named after what they serve.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::body::{self, BodyHead};
use super::{
    ApiError, ApiState, Guard, Params, ack_link, alert_page, alerts, flush_all, gate, guarded, influx, ingest,
    notifications, otlp, prometheus, push, pushgateway, query, readiness, rejected, reload_rules, reply, silences,
    status,
};
use crate::clock;

/// What every route starts from: the state and the request's headers.
type Base = BoxedFilter<(Arc<ApiState>, HeaderMap)>;
/// One route, boxed: a flat type keeps compile times sane as routes grow.
type Route = BoxedFilter<(Response,)>;

/// Every route, with unknown paths and methods answered in JSON.
pub fn routes(
    state: Arc<ApiState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let base: Base = warp::any().map(move || state.clone()).and(warp::header::headers_cloned()).boxed();
    [
        push_routes(&base),
        read_routes(&base),
        oncall_routes(&base),
        alert_pages(&base),
        notification_routes(&base),
        operations(&base),
    ]
    .into_iter()
    .flatten()
    .reduce(|routes, route| routes.or(route).unify().boxed())
    .expect("there are routes")
    .recover(|rejection: Rejection| async move { Ok::<_, Infallible>(rejected(rejection)) })
    .unify()
}

/// Pushes in every protocol, under the push token.
fn push_routes(base: &Base) -> Vec<Route> {
    let base = || base.clone();
    let push = warp::path!("api" / "v1" / "push").and(warp::post()).and(base()).and(warp::body::stream()).and_then(
        |state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            guarded(state, headers, Guard::Push, "push", move |state| {
                ingest(state.ingest.clone(), head, Box::pin(stream), push::native)
            })
        },
    );
    let otlp_metrics = warp::path!("v1" / "metrics").and(warp::post()).and(base()).and(warp::body::stream()).and_then(
        |state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            let content_type = head.content_type.clone();
            guarded(state, headers, Guard::Push, "otlp", move |state| {
                ingest(state.ingest.clone(), head, Box::pin(stream), move |state, body| {
                    otlp::export(state, content_type.as_deref(), body)
                })
            })
        },
    );
    let influx_write = warp::path!("write")
        .or(warp::path!("api" / "v2" / "write"))
        .unify()
        .and(warp::post())
        .and(warp::query::<HashMap<String, String>>())
        .and(base())
        .and(warp::body::stream())
        .and_then(|query: HashMap<String, String>, state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            guarded(state, headers, Guard::Push, "influx_write", move |state| {
                ingest(state.ingest.clone(), head, Box::pin(stream), move |state, body| {
                    influx::write(state, query.get("precision").map(String::as_str), body)
                })
            })
        });
    let pushgateway = warp::path("metrics")
        .and(warp::path::tail())
        .and(warp::put().or(warp::post()).unify())
        .and(base())
        .and(warp::body::stream())
        .and_then(|tail: warp::path::Tail, state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            let content_type = head.content_type.clone();
            guarded(state, headers, Guard::Push, "pushgateway", move |state| {
                ingest(state.ingest.clone(), head, Box::pin(stream), move |state, body| {
                    pushgateway::push(state, tail.as_str(), content_type.as_deref(), body)
                })
            })
        });
    let pushgateway_delete = warp::path("metrics").and(warp::path::tail()).and(warp::delete()).and(base()).and_then(
        |tail: warp::path::Tail, state, headers| {
            guarded(state, headers, Guard::Push, "pushgateway_delete", move |state| async move {
                pushgateway::delete(&state.ingest, tail.as_str())
            })
        },
    );
    vec![push.boxed(), otlp_metrics.boxed(), influx_write.boxed(), pushgateway.boxed(), pushgateway_delete.boxed()]
}

/// Reads: queries, metric and series lists, and the CI gate.
fn read_routes(base: &Base) -> Vec<Route> {
    let base = || base.clone();
    let query = warp::path!("api" / "v1" / "query").and(warp::get()).and(base()).and(warp::query::<Params>()).and_then(
        |state, headers, params| {
            guarded(state, headers, Guard::Api, "query", move |state| query::query(state.reads.clone(), params))
        },
    );
    let metric_list = warp::path!("api" / "v1" / "metrics").and(warp::get()).and(base()).and_then(|state, headers| {
        guarded(state, headers, Guard::Api, "metrics_list", |state| query::metrics(state.reads.clone()))
    });
    let series =
        warp::path!("api" / "v1" / "series").and(warp::get()).and(base()).and(warp::query::<Params>()).and_then(
            |state, headers, params| {
                guarded(state, headers, Guard::Api, "series", move |state| query::series(state.reads.clone(), params))
            },
        );
    let gate = warp::path!("api" / "v1" / "gate").and(warp::post()).and(base()).and(warp::body::stream()).and_then(
        |state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            guarded(state, headers, Guard::Api, "gate", move |state| async move {
                let state = state.reads.clone();
                let limit = body::Limit::pushed(state.limits.max_body_bytes);
                let raw = body::receive(Box::pin(stream), &head, limit).await?;
                let body = state.cpu.run_sized(raw.cost_bytes(), move || raw.inflate()).await?;
                gate::evaluate(state, &body).await
            })
        },
    );
    let prometheus = warp::path!("prometheus" / "api" / "v1" / ..)
        .and(warp::path::tail())
        .and(warp::get().or(warp::post()).unify())
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(base())
        .and(warp::body::stream())
        .and_then(|tail: warp::path::Tail, method, raw_query, state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            let path = tail.as_str().to_owned();
            guarded(state, headers, Guard::Api, "prometheus", move |state| {
                prometheus::serve(state, method, path, raw_query, head, Box::pin(stream))
            })
        });
    vec![query.boxed(), metric_list.boxed(), series.boxed(), gate.boxed(), prometheus.boxed()]
}

/// What on-call does: alerts, acknowledgements, silences, and the signed acknowledge links.
fn oncall_routes(base: &Base) -> Vec<Route> {
    let base = || base.clone();
    let alert_list =
        warp::path!("api" / "v1" / "alerts").and(warp::get()).and(base()).and(warp::query::<Params>()).and_then(
            |state, headers, params| {
                guarded(state, headers, Guard::Api, "alerts", move |state| alerts::list(state.oncall.clone(), params))
            },
        );
    let alert_one = warp::path!("api" / "v1" / "alerts" / String).and(warp::get()).and(base()).and_then(
        |id: String, state, headers| {
            guarded(state, headers, Guard::Api, "alert", move |state| alerts::one(state.oncall.clone(), id))
        },
    );
    let alert_ack = warp::path!("api" / "v1" / "alerts" / String / "ack")
        .and(warp::post())
        .and(base())
        .and(warp::body::stream())
        .and_then(|id: String, state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            guarded(state, headers, Guard::Api, "alert_ack", move |state| async move {
                let request: alerts::AckRequest = body::json(Box::pin(stream), &head).await?;
                alerts::ack(state.oncall.clone(), id, Some(request)).await
            })
        });
    let alert_unack = warp::path!("api" / "v1" / "alerts" / String / "unack").and(warp::post()).and(base()).and_then(
        |id: String, state, headers| {
            guarded(state, headers, Guard::Api, "alert_unack", move |state| alerts::ack(state.oncall.clone(), id, None))
        },
    );
    let silence_create =
        warp::path!("api" / "v1" / "silences").and(warp::post()).and(base()).and(warp::body::stream()).and_then(
            |state, headers: HeaderMap, stream| {
                let head = BodyHead::from_headers(&headers);
                guarded(state, headers, Guard::Api, "silence_create", move |state| async move {
                    let request: silences::NewSilence = body::json(Box::pin(stream), &head).await?;
                    silences::create(state.oncall.clone(), request).await
                })
            },
        );
    let silence_list = warp::path!("api" / "v1" / "silences")
        .and(warp::get())
        .and(base())
        .and(warp::query::<Params>())
        .and_then(|state, headers, params| {
            guarded(state, headers, Guard::Api, "silences", move |state| silences::list(state.oncall.clone(), params))
        });
    let silence_expire = warp::path!("api" / "v1" / "silences" / String).and(warp::delete()).and(base()).and_then(
        |id: String, state, headers| {
            guarded(state, headers, Guard::Api, "silence_expire", move |state| {
                silences::expire(state.oncall.clone(), id)
            })
        },
    );
    let ack_page =
        warp::path!("ack" / String).and(warp::get()).and(base()).and_then(|token: String, state, headers| {
            guarded(state, headers, Guard::Link, "ack_link", move |state| ack_link::show(state.oncall.clone(), token))
        });
    let ack_post = warp::path!("ack" / String).and(warp::post()).and(base()).and(warp::body::stream()).and_then(
        |token: String, state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            guarded(state, headers, Guard::Link, "ack_link", move |state| async move {
                let form = body::form(Box::pin(stream), &head).await?;
                ack_link::acknowledge(state.oncall.clone(), token, form).await
            })
        },
    );
    vec![
        alert_list.boxed(),
        alert_one.boxed(),
        alert_ack.boxed(),
        alert_unack.boxed(),
        silence_create.boxed(),
        silence_list.boxed(),
        silence_expire.boxed(),
        ack_page.boxed(),
        ack_post.boxed(),
    ]
}

/// The alert page a notification links to, and its forms (a person's pages: basic auth).
fn alert_pages(base: &Base) -> Vec<Route> {
    let base = || base.clone();
    let page = warp::path!("alerts" / String).and(warp::get()).and(base()).and_then(|id: String, state, headers| {
        guarded(state, headers, Guard::Page, "alert_page", move |state: Arc<ApiState>| {
            alert_page::page(state.oncall.clone(), state.reads.clone(), id)
        })
    });
    let form = |action: &'static str, act: alert_page::forms::Action| {
        warp::path("alerts")
            .and(warp::path::param::<String>())
            .and(warp::path(action))
            .and(warp::path::end())
            .and(warp::post())
            .and(base())
            .and(warp::body::stream())
            .and_then(move |id: String, state, headers: HeaderMap, stream| {
                let head = BodyHead::from_headers(&headers);
                guarded(state, headers.clone(), Guard::Page, "alert_form", move |state| async move {
                    let form = body::form(Box::pin(stream), &head).await?;
                    alert_page::forms::act(state.oncall.clone(), id, act, &headers, form).await
                })
            })
            .boxed()
    };
    use alert_page::forms::Action;
    vec![page.boxed(), form("ack", Action::Ack), form("unack", Action::Unack), form("silence", Action::Silence)]
}

/// Notifications: the outbox's record and a test message through a notifier.
fn notification_routes(base: &Base) -> Vec<Route> {
    let base = || base.clone();
    let notifier_test = warp::path!("api" / "v1" / "notifiers" / String / "test")
        .and(warp::post())
        .and(base())
        .and(warp::body::stream())
        .and_then(|name: String, state, headers: HeaderMap, stream| {
            let head = BodyHead::from_headers(&headers);
            guarded(state, headers, Guard::Api, "notifier_test", move |state| async move {
                let body = body::receive(Box::pin(stream), &head, body::SMALL_JSON).await?.inflate()?;
                notifications::test(state.notifications.clone(), name, &body).await
            })
        });
    let notification_list =
        warp::path!("api" / "v1" / "notifications").and(warp::get()).and(base()).and(warp::query::<Params>()).and_then(
            |state, headers, params| {
                guarded(state, headers, Guard::Api, "notifications", move |state| {
                    notifications::list(state.notifications.clone(), params)
                })
            },
        );
    let notification_one = warp::path!("api" / "v1" / "notifications" / String).and(warp::get()).and(base()).and_then(
        |id: String, state, headers| {
            guarded(state, headers, Guard::Api, "notification", move |state| {
                notifications::one(state.notifications.clone(), id)
            })
        },
    );
    vec![notifier_test.boxed(), notification_list.boxed(), notification_one.boxed()]
}

/// Running perfwatch: health, readiness, its own /metrics, rule reloads, flushes, the status page.
fn operations(base: &Base) -> Vec<Route> {
    let base = || base.clone();
    let reload = warp::path!("-" / "reload").and(warp::post()).and(base()).and_then(|state, headers| {
        guarded(state, headers, Guard::Api, "reload", |state| reload_rules(state.operations.clone()))
    });
    let flush =
        warp::path!("api" / "v1" / "admin" / "flush").and(warp::post()).and(base()).and_then(|state, headers| {
            guarded(state, headers, Guard::Api, "admin_flush", |state| flush_all(state.operations.clone()))
        });
    let metrics = warp::path!("metrics").and(warp::get()).and(base()).and_then(|state, headers| {
        guarded(state, headers, Guard::Api, "metrics", |state: Arc<ApiState>| async move {
            let state = &state.operations;
            // Gauges that are read, not counted (the database's, the disk's) are read now.
            state.own.refresh().await.map_err(ApiError::internal)?;
            let mut text = state.own.prometheus.as_ref().map(|p| p.render()).unwrap_or_default();
            if state.export.enabled {
                // A failing re-export must not cost Prometheus perfwatch's own health.
                match crate::export::render(&state.aggregator, &state.reader, &state.export, clock::now_s()).await {
                    Ok(pushed) => text.push_str(&pushed),
                    Err(err) => tracing::error!(error = %err, "cannot re-export the pushed metrics"),
                }
            }
            Ok(warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4; charset=utf-8")
                .into_response())
        })
    });
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| reply::json(StatusCode::OK, &serde_json::json!({ "status": "alive" })));
    let readyz =
        warp::path!("readyz").and(warp::get()).and(base()).map(|state: Arc<ApiState>, _| readiness(&state.operations));

    let status_page = warp::path::end().and(warp::get()).and(base()).and_then(|state, headers| {
        guarded(state, headers, Guard::Page, "status", |state| {
            status::page(state.reads.clone(), state.operations.clone())
        })
    });
    vec![reload.boxed(), flush.boxed(), metrics.boxed(), healthz.boxed(), readyz.boxed(), status_page.boxed()]
}
