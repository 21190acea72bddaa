//! `GET /api/v1/query`, `/api/v1/metrics` and `/api/v1/series`: the JSON shapes of reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, ReadState, reply};
use crate::clock;
use crate::model::{MetricKind, SeriesKey};
use crate::query::execute;
use crate::query::params::parse_request;
use crate::query::selector::Selector;

#[derive(Serialize)]
struct QueryBody {
    series: Vec<SeriesBody>,
}

#[derive(Serialize)]
struct SeriesBody {
    labels: BTreeMap<String, String>,
    points: Vec<(i64, f64)>,
}

pub async fn query(state: Arc<ReadState>, params: HashMap<String, String>) -> Result<Response, ApiError> {
    let request = parse_request(&params, clock::now_s()).map_err(ApiError::query)?;
    let result = execute(&state.reader, &state.aggregator, request).await.map_err(ApiError::query)?;
    let body = QueryBody {
        series: result
            .into_iter()
            .map(|s| SeriesBody {
                labels: s.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
                points: s.points,
            })
            .collect(),
    };
    Ok(reply::json(StatusCode::OK, &body))
}

#[derive(Serialize)]
struct MetricsBody {
    metrics: Vec<MetricEntry>,
}

#[derive(Serialize)]
struct MetricEntry {
    name: String,
    kind: &'static str,
    series: usize,
}

/// Every metric name with its kind and how many series it has (stored or in memory).
pub async fn metrics(state: Arc<ReadState>) -> Result<Response, ApiError> {
    let series = all_series(&state).await?;
    let mut by_name: BTreeMap<(String, MetricKind), usize> = BTreeMap::new();
    for (key, kind) in series.values() {
        if let Some(parsed) = SeriesKey::parse(key) {
            *by_name.entry((parsed.name, *kind)).or_default() += 1;
        }
    }
    let metrics =
        by_name.into_iter().map(|((name, kind), series)| MetricEntry { name, kind: kind.as_str(), series }).collect();
    Ok(reply::json(StatusCode::OK, &MetricsBody { metrics }))
}

#[derive(Serialize)]
struct SeriesListBody {
    series: Vec<SeriesEntry>,
}

#[derive(Serialize)]
struct SeriesEntry {
    name: String,
    kind: &'static str,
    labels: BTreeMap<String, String>,
}

/// The series of one metric, optionally narrowed by matchers: `?metric=name{tier="l1"}`.
pub async fn series(state: Arc<ReadState>, params: HashMap<String, String>) -> Result<Response, ApiError> {
    let metric = params.get("metric").ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "metric is required, e.g. metric=cache_requests_total".into())
    })?;
    let selector =
        Selector::parse(metric).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("metric: {e}")))?;
    let series = all_series(&state).await?;
    let mut out: Vec<SeriesEntry> = series
        .values()
        .filter_map(|(key, kind)| {
            let parsed = SeriesKey::parse(key)?;
            (parsed.name == selector.name && selector.matches(&parsed.labels)).then(|| SeriesEntry {
                name: parsed.name,
                kind: kind.as_str(),
                labels: parsed.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(reply::json(StatusCode::OK, &SeriesListBody { series: out }))
}

async fn all_series(state: &ReadState) -> Result<HashMap<u64, (String, MetricKind)>, ApiError> {
    let stored = state
        .reader
        .read(|tx| tx.all_series())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut all: HashMap<u64, (String, MetricKind)> = stored.into_iter().map(|s| (s.id, (s.key, s.kind))).collect();
    for (id, key, kind) in state.aggregator.series_keys() {
        all.entry(id).or_insert_with(|| (key.to_string(), kind));
    }
    Ok(all)
}
