//! `GET /`: the built-in status page. Server-rendered HTML with no scripts and no external
//! assets, refreshing itself: the headline targets over the last 5 minutes (API p99, cache hit
//! ratio per tier, DB p99, pool utilisation) against their thresholds, each with its trend over
//! the last hour (an inline SVG with the threshold line), active alerts with their
//! state, severity, escalation step and who was paged, and silences — so a newcomer sees
//! something at once and on-call has a page when Grafana is down.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

mod health_line;
mod incidents;
mod slowest;
mod trend_cache;

pub(crate) use self::trend_cache::TrendCache;
use self::trend_cache::Trends;

use self::health_line::HealthLine;
use super::chart::{self, Chart, Level, Unit};
use super::page;
use super::{ApiError, OperationsState, ReadState};
use crate::aggregate::rollup::Rollup;
use crate::alert::dispatch::Group;
use crate::clock;
use crate::html::escape;
use crate::query::QueryRequest;
use crate::query::selector::{MatchOp, Matcher, Selector};
use crate::query::stat::Stat;
use crate::query::view::with_view;
use crate::store::alerts::{AlertRow, Incident, SilenceRow};

/// Headlines cover this much recent time.
const WINDOW_S: i64 = 300;
const REFRESH_S: u32 = 15;
/// Trends cover the last hour, a point a minute.
const TREND_S: i64 = 3600;
const STEP_S: i64 = 60;

/// One headline: what, the measured value, its target, whether lower is better, and the trend.
struct Headline {
    what: String,
    value: Option<f64>,
    target: f64,
    /// `true`: over the target is bad (latency); `false`: under it is bad (hit ratio).
    upper: bool,
    unit: Unit,
    /// (start of the minute, value), oldest first.
    trend: Vec<(i64, f64)>,
}

impl Headline {
    /// The one tile of a ratio nobody pushed the series for.
    fn no_data(what: &str, target: f64, upper: bool) -> Headline {
        Headline { what: what.into(), value: None, target, upper, unit: Unit::Ratio, trend: Vec::new() }
    }
}

/// What the top of the page shows: the headline tiles and the slowest endpoints and queries.
struct Targets {
    headlines: Vec<Headline>,
    endpoints: Vec<slowest::Row>,
    queries: Vec<slowest::Row>,
}

/// The API's and the DB's p99 targets.
const API_TARGET_S: f64 = 0.2;
const DB_TARGET_S: f64 = 0.05;

pub async fn page(state: Arc<ReadState>, operations: Arc<OperationsState>) -> Result<Response, ApiError> {
    let now_s = clock::now_s();
    let targets = targets(&state, now_s).await?;
    let (alerts, silences, groups, outbox, failures, incidents) = state
        .reader
        .read(move |tx| {
            Ok((
                tx.alerts(&["pending", "firing"])?,
                tx.silences(now_s, false)?,
                tx.notify_groups()?,
                tx.outbox_counts()?,
                tx.recent_failures(now_s - health_line::FAILURES_WINDOW_S)?,
                tx.incidents(now_s - incidents::WINDOW_S, incidents::SHOWN)?,
            ))
        })
        .await
        .map_err(ApiError::internal)?;
    let groups: Vec<Group> = groups.into_iter().filter_map(|(_, json)| serde_json::from_str(&json).ok()).collect();
    let interval_s = state.aggregator.settings().interval_s;
    let health = HealthLine {
        readiness: crate::health::readiness(operations.flush.health(), &operations.tasks, interval_s, clock::now_ms())
            .map(|ready| ready.flush_lag_ms),
        ingest_per_s: ingest_rate(&state, now_s).await,
        recording: operations.records_own_metrics,
        outbox_waiting: HealthLine::waiting(&outbox),
        failures,
        now_s,
    };
    let html = render(
        &health,
        &targets,
        &Oncall { alerts: &alerts, groups: &groups, silences: &silences, incidents: &incidents },
        now_s,
    );
    Ok(page::respond(StatusCode::OK, html))
}

/// Computes the page's targets and trends once a minute until `cancel`, so the trend cache
/// holds every settled minute and a load at any hour reads only the minutes that may still
/// change: the person paged at 2 a.m. is the first to open the page in hours.
pub async fn keep_warm(state: Arc<ReadState>, cancel: tokio_util::sync::CancellationToken) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(STEP_S as u64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(err) = targets(&state, clock::now_s()).await {
            tracing::warn!(error = %err.message, "computing the status page's trends failed; the page computes them when opened");
        }
    }
}

/// The targets over the last [`WINDOW_S`], from memory and SQLite through one view, each
/// with its trend over the last hour.
async fn targets(state: &ReadState, now_s: i64) -> Result<Targets, ApiError> {
    let names: Vec<String> = [
        "api_request_duration_seconds",
        "cache_requests_total",
        "db_query_duration_seconds",
        "db_pool_connections_in_use",
        "db_pool_connections_max",
    ]
    .map(String::from)
    .to_vec();
    let (from_s, to_s) = (now_s - WINDOW_S, now_s + 1);
    let fetched = with_view(&state.reader, Some(&state.aggregator), None, &names, move |view| {
        let mut fetch =
            |selector: &str, group_by: &[&str]| -> Result<Vec<(String, Rollup)>, crate::query::QueryError> {
                let selector = builtin(selector);
                let group_by: Vec<String> = group_by.iter().map(|s| s.to_string()).collect();
                Ok(view
                    .fetch(&selector, from_s, to_s, &group_by)?
                    .into_iter()
                    .map(|g| (group_by.iter().filter_map(|k| g.labels.get(k)).collect::<Vec<_>>().join(" "), g.rollup))
                    .collect())
            };
        Ok((
            fetch("api_request_duration_seconds", &[])?,
            fetch("cache_requests_total{result=\"hit\"}", &["tier"])?,
            fetch("cache_requests_total", &["tier"])?,
            fetch("db_query_duration_seconds", &[])?,
            fetch("db_pool_connections_in_use", &["pool"])?,
            fetch("db_pool_connections_max", &["pool"])?,
            fetch("api_request_duration_seconds", &["endpoint"])?,
            fetch("db_query_duration_seconds", &["query"])?,
        ))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the headlines failed: {e}")))?;
    let (api, hits, lookups, db, in_use, max, endpoints, queries) = fetched;
    let p99 = |groups: &[(String, Rollup)]| groups.first().and_then(|(_, r)| r.sketch.as_ref()?.quantile(0.99));
    let mut api_trend = trend(state, builtin("api_request_duration_seconds"), "p99", &[], now_s).await?;
    let mut out = vec![Headline {
        what: "API p99".into(),
        value: p99(&api),
        target: API_TARGET_S,
        upper: true,
        unit: Unit::Seconds,
        trend: api_trend.remove("").unwrap_or_default(),
    }];
    let hit_trends = trend(state, builtin("cache_requests_total{result=\"hit\"}"), "sum", &["tier"], now_s).await?;
    let lookup_trends = trend(state, builtin("cache_requests_total"), "sum", &["tier"], now_s).await?;
    out.extend(cache_headlines(&hits, &lookups, &hit_trends, &lookup_trends));
    let mut db_trend = trend(state, builtin("db_query_duration_seconds"), "p99", &[], now_s).await?;
    out.push(Headline {
        what: "DB p99".into(),
        value: p99(&db),
        target: DB_TARGET_S,
        upper: true,
        unit: Unit::Seconds,
        trend: db_trend.remove("").unwrap_or_default(),
    });
    let in_use_trends = trend(state, builtin("db_pool_connections_in_use"), "avg", &["pool"], now_s).await?;
    let max_trends = trend(state, builtin("db_pool_connections_max"), "avg", &["pool"], now_s).await?;
    out.extend(pool_headlines(&in_use, &max, &in_use_trends, &max_trends));
    Ok(Targets {
        headlines: out,
        endpoints: slowest_with_trends(state, &endpoints, "api_request_duration_seconds", "endpoint", now_s).await?,
        queries: slowest_with_trends(state, &queries, "db_query_duration_seconds", "query", now_s).await?,
    })
}

/// The worst five of `current` (p99 per value of `label`), with trends read for those five only.
async fn slowest_with_trends(
    state: &ReadState,
    current: &[(String, Rollup)],
    metric: &str,
    label: &str,
    now_s: i64,
) -> Result<Vec<slowest::Row>, ApiError> {
    let mut rows = slowest::worst(current);
    if rows.is_empty() {
        return Ok(rows);
    }
    let names: Vec<String> = rows.iter().map(|row| regex::escape(&row.name)).collect();
    let mut selector = builtin(metric);
    match Matcher::new(label, MatchOp::Regex, &names.join("|")) {
        Ok(matcher) => selector.matchers.push(matcher),
        // Five names too long for one pattern: their trends are left out.
        Err(err) => {
            tracing::warn!(error = %err, "the slowest rows' trends cannot be selected; left out");
            return Ok(rows);
        }
    }
    slowest::attach(&mut rows, trend(state, selector, "p99", &[label], now_s).await?);
    Ok(rows)
}

/// A selector perfwatch writes itself.
fn builtin(text: &str) -> Selector {
    Selector::parse(text).expect("a valid built-in selector")
}

/// `stat` of `selector` a minute at a time over the last hour, per value of `group_by` (the
/// values joined by spaces). Minutes that can no longer change come from the trend cache.
async fn trend(
    state: &ReadState,
    selector: Selector,
    stat: &str,
    group_by: &[&str],
    now_s: i64,
) -> Result<Trends, ApiError> {
    let key = format!("{selector} {stat} {group_by:?}");
    let from_s = (now_s - TREND_S).div_euclid(STEP_S) * STEP_S;
    let (compute_from_s, settled) = state.trend_cache.settled(&key, from_s);
    // A trend that cannot be computed is left out, and nothing of it is kept.
    let Some(fresh) = compute_trend(state, selector, stat, group_by, compute_from_s, now_s).await? else {
        return Ok(Trends::new());
    };
    let trends = trend_cache::joined(settled, fresh, compute_from_s);
    // A minute is final once no sample for it is accepted any more and its flush is committed.
    let settings = state.aggregator.settings();
    let settle_s = (settings.lateness_intervals + 2) * settings.interval_s;
    let settled_to_s = (now_s - settle_s).div_euclid(STEP_S) * STEP_S;
    if settled_to_s > from_s {
        state.trend_cache.keep(&key, &trends, settled_to_s, now_s);
    }
    Ok(trends)
}

/// The trend's points from `from_s` to now, read; `None` when it cannot be computed.
async fn compute_trend(
    state: &ReadState,
    selector: Selector,
    stat: &str,
    group_by: &[&str],
    from_s: i64,
    now_s: i64,
) -> Result<Option<Trends>, ApiError> {
    let request = QueryRequest {
        selector,
        stat: Stat::parse(stat).expect("a valid built-in stat"),
        from_s,
        to_s: now_s + 1,
        step_s: Some(STEP_S),
        group_by: Some(group_by.iter().map(|s| s.to_string()).collect()),
    };
    // Best effort: a trend that cannot be computed (a series of another kind pushed under a
    // latency name makes p99 refuse) is left out; the page must not go down with it.
    let what = request.selector.to_string();
    let series = match crate::query::execute(&state.reader, &state.aggregator, request).await {
        Ok(series) => series,
        Err(crate::query::QueryError::Store(err)) => return Err(ApiError::internal(err)),
        Err(err) => {
            tracing::warn!(selector = %what, stat, error = %err, "a status page trend cannot be computed; left out");
            return Ok(None);
        }
    };
    Ok(Some(
        series
            .into_iter()
            .map(|s| (group_by.iter().filter_map(|k| s.labels.get(k)).collect::<Vec<_>>().join(" "), s.points))
            .collect(),
    ))
}

/// Samples accepted per second over the last [`WINDOW_S`], from perfwatch's own recorded
/// metrics; `None` when they are not recorded (or the read fails: the line must not cost the page).
async fn ingest_rate(state: &ReadState, now_s: i64) -> Option<f64> {
    let request = QueryRequest {
        selector: builtin(&format!("{}{{job=\"perfwatch\"}}", crate::telemetry::SAMPLES_ACCEPTED)),
        stat: Stat::parse("rate").expect("a valid built-in stat"),
        from_s: now_s - WINDOW_S,
        to_s: now_s + 1,
        step_s: None,
        group_by: Some(Vec::new()),
    };
    let series = crate::query::execute(&state.reader, &state.aggregator, request).await.ok()?;
    series.first()?.points.first().map(|(_, rate)| *rate)
}

/// `numerator / denominator` at each time the denominator is positive (a missing numerator is 0).
fn ratio(numerator: Option<&Vec<(i64, f64)>>, denominator: Option<&Vec<(i64, f64)>>) -> Vec<(i64, f64)> {
    let numerator: BTreeMap<i64, f64> = numerator.into_iter().flatten().copied().collect();
    denominator
        .into_iter()
        .flatten()
        .filter(|(_, d)| *d > 0.0)
        .map(|(t, d)| (*t, numerator.get(t).copied().unwrap_or(0.0) / d))
        .collect()
}

/// The hit ratio per cache tier (one "no data" tile when no tier pushed).
fn cache_headlines(
    hits: &[(String, Rollup)],
    lookups: &[(String, Rollup)],
    hit_trends: &Trends,
    lookup_trends: &Trends,
) -> Vec<Headline> {
    let hits: BTreeMap<&str, f64> = hits.iter().map(|(tier, r)| (tier.as_str(), r.sum)).collect();
    let mut out: Vec<Headline> = lookups
        .iter()
        .map(|(tier, rollup)| Headline {
            what: format!("cache hit ratio {}", tier.to_uppercase()),
            value: (rollup.sum > 0.0).then(|| hits.get(tier.as_str()).copied().unwrap_or(0.0) / rollup.sum),
            target: 0.85,
            upper: false,
            unit: Unit::Ratio,
            trend: ratio(hit_trends.get(tier), lookup_trends.get(tier)),
        })
        .collect();
    if out.is_empty() {
        out.push(Headline::no_data("cache hit ratio", 0.85, false));
    }
    out
}

/// The utilisation of each connection pool (one "no data" tile when no pool pushed).
fn pool_headlines(
    in_use: &[(String, Rollup)],
    max: &[(String, Rollup)],
    in_use_trends: &Trends,
    max_trends: &Trends,
) -> Vec<Headline> {
    let max: BTreeMap<&str, f64> = max.iter().map(|(pool, r)| (pool.as_str(), r.sum / r.count)).collect();
    let mut out: Vec<Headline> = in_use
        .iter()
        .map(|(pool, rollup)| {
            let size = max.get(pool.as_str()).copied().filter(|s| *s > 0.0);
            Headline {
                what: format!("pool {pool} utilisation"),
                value: size.map(|size| rollup.sum / rollup.count / size),
                target: 0.95,
                upper: true,
                unit: Unit::Ratio,
                trend: ratio(in_use_trends.get(pool), max_trends.get(pool)),
            }
        })
        .collect();
    if out.is_empty() {
        out.push(Headline::no_data("pool utilisation", 0.95, true));
    }
    out
}

fn ago(now_s: i64, then_s: i64) -> String {
    format!("{} ago", crate::clock::elapsed(now_s - then_s))
}

/// What the lower half of the page shows: alerts, incidents, silences.
struct Oncall<'a> {
    alerts: &'a [AlertRow],
    groups: &'a [Group],
    silences: &'a [SilenceRow],
    incidents: &'a [Incident],
}

/// The page.
fn render(health: &HealthLine, targets: &Targets, oncall: &Oncall<'_>, now_s: i64) -> String {
    let mut body = String::new();
    health.render(&mut body);
    render_headlines(&mut body, &targets.headlines, now_s);
    body.push_str("<div class=\"pair\"><div>");
    slowest::render(&mut body, "Slowest endpoints", "endpoint", &targets.endpoints, API_TARGET_S, now_s);
    body.push_str("</div><div>");
    slowest::render(&mut body, "Slowest DB queries", "query", &targets.queries, DB_TARGET_S, now_s);
    body.push_str("</div></div>");
    render_alerts(&mut body, oncall.alerts, oncall.groups, now_s);
    incidents::render(&mut body, oncall.incidents, now_s);
    render_silences(&mut body, oncall.silences);
    let body = format!(
        "<h1>perfwatch</h1><p class=\"quiet\">As of {} · refreshes every {REFRESH_S} s · <a href=\"/metrics\">/metrics</a></p>{body}",
        escape(&clock::rfc3339(now_s))
    );
    page::document("perfwatch status", CSS, &body, Some(REFRESH_S))
}

/// One tile per headline, coloured and labelled by how it stands against its target, with its
/// trend over the last hour and the target drawn across it.
fn render_headlines(body: &mut String, headlines: &[Headline], now_s: i64) {
    body.push_str("<h2>Targets, last 5 minutes</h2><div class=\"tiles\">");
    for h in headlines {
        let relation = if h.upper { "≤" } else { "≥" };
        let (class, state) = match h.value {
            None => ("nodata", "no data"),
            Some(v) if h.upper && v > h.target => ("bad", "over target"),
            Some(v) if !h.upper && v < h.target => ("bad", "under target"),
            Some(_) => ("ok", "on target"),
        };
        let value = h.value.map_or_else(|| "no data".to_owned(), |v| h.unit.show(v));
        let target = h.unit.show(h.target);
        let trend = chart::svg(&Chart {
            from_s: now_s - TREND_S,
            to_s: now_s,
            points: &h.trend,
            gap_s: 2 * STEP_S,
            others: Vec::new(),
            marks: Vec::new(),
            levels: vec![Level { value: h.target, label: format!("target {relation} {target}"), class: "threshold" }],
            bands: Vec::new(),
            unit: h.unit,
            title: format!("{}, last hour, a point a minute; target {relation} {target}", h.what),
            ticks: false,
        });
        let _ = write!(
            body,
            "<div class=\"tile {class}\"><div class=\"what\">{}</div><div class=\"value\">{}</div>\
             <div class=\"state\">{state}</div><div class=\"target\">target {relation} {}</div>{trend}</div>",
            escape(&h.what),
            escape(&value),
            escape(&target)
        );
    }
    body.push_str("</div>");
}

/// The active alerts with their escalation and who was paged.
fn render_alerts(body: &mut String, alerts: &[AlertRow], groups: &[Group], now_s: i64) {
    let _ = write!(body, "<h2>Active alerts ({})</h2>", alerts.len());
    if alerts.is_empty() {
        body.push_str("<p class=\"quiet\">None. All clear.</p>");
    } else {
        body.push_str(
            "<table class=\"stack alerts\"><tr><th>state</th><th>severity</th><th>alert</th><th>labels</th><th>value</th>\
             <th>since</th><th>escalation</th><th>paged</th></tr>",
        );
        for alert in alerts {
            let group = groups.iter().find(|g| g.alerts.contains_key(&alert.id));
            let escalation = match (group, &alert.ack) {
                (_, Some(ack)) => format!("acknowledged by {}", ack.by),
                (Some(g), None) if g.steps_done > 0 => format!("step {}", g.steps_done),
                (Some(_), None) => "waiting (group_wait)".into(),
                (None, None) if alert.state == "pending" => "not yet (pending)".into(),
                (None, None) => "—".into(),
            };
            let paged = group.map_or_else(String::new, |g| {
                let mut who: Vec<String> = g.paged.iter().cloned().collect();
                who.extend(g.people.iter().map(|m| m.person.name.clone()));
                who.join(", ")
            });
            let since = alert.firing_since_s.or(alert.pending_since_s).map_or_else(String::new, |s| ago(now_s, s));
            let value = alert.value.map_or_else(|| "no data".to_owned(), |v| format!("{v:.4}"));
            let severity = alert.severity.as_deref().unwrap_or("");
            let _ = write!(
                body,
                "<tr class=\"{}\"><td data-label=\"state\">{}</td><td data-label=\"severity\" class=\"sev-{}\">{}</td>\
                 <td data-label=\"alert\"><a href=\"alerts/{}\">{}</a></td><td data-label=\"labels\">{}</td>\
                 <td data-label=\"value\">{}</td><td data-label=\"since\">{}</td><td data-label=\"escalation\">{}</td>\
                 <td data-label=\"paged\">{}</td></tr>",
                escape(&alert.state),
                escape(&alert.state),
                escape(severity),
                escape(severity),
                escape(&alert.id),
                escape(&alert.rule),
                page::stored_label_chips(&alert.labels),
                escape(&value),
                escape(&since),
                escape(&escalation),
                escape(&paged)
            );
        }
        body.push_str("</table>");
    }
}

fn render_silences(body: &mut String, silences: &[SilenceRow]) {
    let _ = write!(body, "<h2>Silences ({})</h2>", silences.len());
    if silences.is_empty() {
        body.push_str("<p class=\"quiet\">None.</p>");
    } else {
        body.push_str("<table class=\"stack\"><tr><th>matchers</th><th>until</th><th>by</th><th>why</th></tr>");
        for s in silences {
            let _ = write!(
                body,
                "<tr><td data-label=\"matchers\"><code>{}</code></td><td data-label=\"until\">{}</td>\
                 <td data-label=\"by\">{}</td><td data-label=\"why\">{}</td></tr>",
                escape(&s.matchers),
                escape(&clock::rfc3339(s.ends_s)),
                escape(&s.author),
                escape(&s.comment)
            );
        }
        body.push_str("</table>");
    }
}

const CSS: &str = ".tiles{display:flex;flex-wrap:wrap;gap:.75em}\
.tile{border-radius:6px;padding:.75em 1em;flex:1 1 10.5em;max-width:16em;border:1px solid #ccc}\
.tile .what{font-size:.85em;color:#444}.tile .value{font-size:1.6em;font-weight:600}.tile .target{font-size:.8em;color:#555}\
.tile .state{font-size:.8em;font-weight:600}.tile svg.chart{margin-top:.4em}\
tr.firing td:first-child{color:#d93025;font-weight:600}tr.pending td:first-child{color:#b26a00}\
.health{padding:.5em .8em;border-radius:6px;border:1px solid}\
.pair{display:flex;flex-wrap:wrap;gap:0 2em}.pair>div{flex:1 1 20em;min-width:0}\
table.slowest td.trend{width:40%}table.slowest svg.chart{max-height:3em}\
table.slowest tr.bad .state{color:#d93025}table.slowest .state{font-size:.8em;font-weight:600}";
