//! `GET /`: the built-in status page. Server-rendered HTML with no scripts and no external
//! assets, refreshing itself: perfwatch's own health in one line; the headline targets over
//! the last 5 minutes (API and dashboard latency, cache hit ratio and latency per tier, DB
//! p99, pool utilisation, 5xx ratio; see `status/headlines.rs`) against their thresholds,
//! each with its trend over the last hour; the slowest endpoints and queries; active alerts
//! with state, severity, escalation step and who was paged, each linking to its page; the
//! last 24 hours of incidents; and silences — so a newcomer sees something at once and
//! on-call has a page when Grafana is down.

use std::fmt::Write;
use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

mod headlines;
mod health_line;
mod incidents;
mod slowest;
mod trend_cache;

pub(crate) use self::trend_cache::TrendCache;
use self::trend_cache::Trends;

use self::health_line::HealthLine;
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

/// What the top of the page shows: the headline tiles and the slowest endpoints and queries.
struct Targets {
    headlines: Vec<headlines::Headline>,
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
/// with its trend over the last hour; and the slowest endpoints and queries.
async fn targets(state: &ReadState, now_s: i64) -> Result<Targets, ApiError> {
    let mut names = headlines::metric_names();
    names.extend(["api_request_duration_seconds".to_owned(), "db_query_duration_seconds".to_owned()]);
    names.sort();
    names.dedup();
    // From a whole minute: the coarser tier serves the whole minutes, one row a series each.
    let (from_s, to_s) = ((now_s - WINDOW_S).div_euclid(STEP_S) * STEP_S, now_s + 1);
    let current = with_view(&state.reader, Some(&state.aggregator), None, &names, move |view| {
        let current = headlines::fetch(view, from_s, to_s)?;
        let mut per = |selector: &str, label: &str| -> Result<Vec<(String, Rollup)>, crate::query::QueryError> {
            let group_by = vec![label.to_owned()];
            Ok(view
                .fetch(&builtin(selector), from_s, to_s, &group_by)?
                .into_iter()
                .map(|g| (g.labels.get(label).unwrap_or_default().to_owned(), g.rollup))
                .collect())
        };
        let endpoints = per("api_request_duration_seconds", "endpoint")?;
        Ok((current, endpoints, per("db_query_duration_seconds", "query")?))
    });
    // The current values and the trends are read at once, on their own pooled connections.
    let (current, trends) = futures_util::future::join(current, headlines::trends(state, now_s)).await;
    let (current, endpoints, queries) = current
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the headlines failed: {e}")))?;
    let (endpoints, queries) = futures_util::future::join(
        slowest_with_trends(state, &endpoints, "api_request_duration_seconds", "endpoint", now_s),
        slowest_with_trends(state, &queries, "db_query_duration_seconds", "query", now_s),
    )
    .await;
    Ok(Targets { headlines: headlines::headlines(current, trends?), endpoints: endpoints?, queries: queries? })
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
    // Sorted: the same five in another order are the same trend (and the same cache entry).
    let mut names: Vec<String> = rows.iter().map(|row| regex::escape(&row.name)).collect();
    names.sort();
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
    headlines::render(&mut body, &targets.headlines, now_s);
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
