//! `GET /alerts/{id}`: the page a notification links to, for the person paged. What is wrong
//! (rule, severity, state, labels, value against threshold, since when, runbook and
//! dashboard), what the rule measured charted around the episode with its thresholds, its
//! pending and firing stretches and every transition marked (a ratio's or a regression's two
//! parts beneath), who was paged, the episode's timeline (transitions, each notification and
//! its attempts, acks, silences), and forms to acknowledge or silence. Server-rendered, no
//! scripts; reads here, decisions in `episode` and `timeline`, markup in `render`.

mod episode;
pub(super) mod forms;
mod measure;
mod render;
pub(super) use self::render::describe;
mod timeline;

use std::collections::BTreeMap;
use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

use super::chart::{Level, Unit};
use super::page::{message, respond};
use super::{ApiError, OncallState, ReadState};
use crate::alert::dispatch::Group;
use crate::alert::silence::{active_silences, matching, with_severity};
use crate::clock;
use crate::model::{Labels, SeriesKey};
use crate::rules::rule::{Condition, Direction, Measure, Rule};
use crate::store::alerts::{AlertRow, HistoryRow, SilenceRow};
use crate::store::outbox::OutboxFilter;

/// At most this many notifications of one alert are listed (the newest).
const NOTIFICATIONS_SHOWN: usize = 200;

/// What the store holds about one alert.
struct Record {
    alert: AlertRow,
    history: Vec<HistoryRow>,
    notifications: Vec<timeline::Notification>,
    silences: Vec<SilenceRow>,
    group: Option<Group>,
}

pub async fn page(oncall: Arc<OncallState>, reads: Arc<ReadState>, id: String) -> Result<Response, ApiError> {
    let now_s = clock::now_s();
    let Some(record) = read(&oncall, id.clone()).await? else {
        let body = "<p>It may be from another perfwatch, or mistyped. <a href=\"../\">See the active alerts</a>.</p>";
        return Ok(message(StatusCode::NOT_FOUND, "No such alert", body));
    };
    let alert = &record.alert;
    let labels = SeriesKey::parse(&alert.labels).map(|k| k.labels).unwrap_or_default();
    let rule = oncall.scheduler.rule(&alert.group, &alert.rule);
    let (unit, parts_unit) = rule.as_ref().map_or((Unit::Plain, Unit::Plain), units);
    let episodes = episode::episodes(&record.history);
    let current = episodes.last().copied();
    let (from_s, to_s) = episode::span(current.as_ref(), now_s);
    let step_s = episode::step(from_s, to_s, reads.aggregator.settings().interval_s);
    // Best effort: the page answers "what is wrong and who knows" even when the chart cannot
    // be drawn (reads busy under load, a series whose kind changed).
    let (measured, chart_error) = match &rule {
        Some(rule) => match measure::over_span(&reads, rule, &labels, from_s, to_s, step_s).await {
            Ok(measured) => (measured, None),
            Err(crate::query::QueryError::Store(err)) => return Err(ApiError::internal(err)),
            Err(err) => {
                tracing::warn!(alert = %alert.id, error = %err, "the alert page's chart cannot be drawn; left empty");
                (measure::Measured::default(), Some(err.to_string()))
            }
        },
        None => (measure::Measured::default(), None),
    };
    let show = |v: f64| unit.show(v);
    let with_severity = with_severity(&labels, alert.severity.as_deref());
    let entries = match current {
        Some(episode) => timeline::build(&timeline::Sources {
            alert_id: &alert.id,
            episode,
            history: &record.history,
            notifications: &record.notifications,
            silences: &record.silences,
            labels: &with_severity,
            show: &show,
        }),
        None => Vec::new(),
    };
    let silences = active_silences(record.silences.clone());
    let silenced_now = matching(&silences, &labels, alert.severity.as_deref(), now_s);
    let annotations = annotations(rule.as_ref(), &record, &labels);
    let html = render::html(render::Page {
        alert,
        labels: &labels,
        rule: rule.as_ref(),
        annotations: &annotations,
        unit,
        parts_unit,
        episode: current,
        span: (from_s, to_s),
        step_s,
        measured: &measured,
        chart_error: chart_error.as_deref(),
        part_names: rule.as_ref().and_then(measure::part_names),
        levels: rule.as_ref().map_or_else(Vec::new, |r| levels(r, unit)),
        bands: episode::bands(&record.history, from_s, to_s),
        marks: episode::marks(&record.history, from_s, to_s),
        timeline: &entries,
        group: record.group.as_ref(),
        silenced_by: record.silences.iter().filter(|s| silenced_now.contains(&s.id.as_str())).collect(),
        csrf: &oncall.csrf.token(&alert.id, now_s),
        earlier: episodes.len().saturating_sub(1),
        now_s,
    });
    Ok(respond(StatusCode::OK, html))
}

/// The alert, its history, its notifications with their attempts, every silence, and the
/// notification group holding it, in one read transaction.
async fn read(oncall: &OncallState, id: String) -> Result<Option<Record>, ApiError> {
    oncall
        .reader
        .read(move |tx| {
            let Some(alert) = tx.alert(&id)? else { return Ok(None) };
            let filter = OutboxFilter { alert: Some(id.clone()), ..OutboxFilter::default() };
            let mut notifications = Vec::new();
            for row in tx.notifications(&filter, NOTIFICATIONS_SHOWN)? {
                let attempts = tx.attempts(&row.id)?;
                notifications.push((row, attempts));
            }
            let group = tx
                .notify_groups()?
                .into_iter()
                .filter_map(|(_, json)| serde_json::from_str::<Group>(&json).ok())
                .find(|g| g.alerts.contains_key(&id));
            Ok(Some(Record {
                history: tx.alert_history(&id)?,
                notifications,
                silences: tx.silences(0, true)?,
                group,
                alert,
            }))
        })
        .await
        .map_err(ApiError::internal)
}

/// How the rule's value is written, and how its parts are.
fn units(rule: &Rule) -> (Unit, Unit) {
    let stat_unit = |name: &str| {
        let timed = matches!(
            rule.stat,
            crate::query::stat::Stat::Quantile(_)
                | crate::query::stat::Stat::Avg
                | crate::query::stat::Stat::Min
                | crate::query::stat::Stat::Max
                | crate::query::stat::Stat::Last
        );
        if timed && name.ends_with("_seconds") { Unit::Seconds } else { Unit::Plain }
    };
    match &rule.measure {
        Measure::Stat { selector } => (stat_unit(&selector.name), Unit::Plain),
        Measure::Ratio { .. } => (Unit::Ratio, Unit::Plain),
        Measure::Regression { selector, .. } => (Unit::Factor, stat_unit(&selector.name)),
        Measure::Absent { .. } => (Unit::Plain, Unit::Plain),
    }
}

/// The rule's thresholds as lines: one, or warning and critical; and where it resolves.
fn levels(rule: &Rule, unit: Unit) -> Vec<Level> {
    let side = |direction: &Direction| match direction {
        Direction::Above => "above",
        Direction::Below => "below",
    };
    let mut out = match &rule.condition {
        Condition::Threshold { direction, threshold, .. } => vec![Level {
            value: *threshold,
            label: format!("fires {} {}", side(direction), unit.show(*threshold)),
            class: "threshold",
        }],
        Condition::Levels { direction, warning, critical } => vec![
            Level {
                value: *warning,
                label: format!("warning {} {}", side(direction), unit.show(*warning)),
                class: "warning",
            },
            Level {
                value: *critical,
                label: format!("critical {} {}", side(direction), unit.show(*critical)),
                class: "threshold",
            },
        ],
        Condition::Absent { .. } => Vec::new(),
    };
    if let Some(resolve_at) = rule.resolve_at {
        out.push(Level {
            value: resolve_at,
            label: format!("resolves at {}", unit.show(resolve_at)),
            class: "resolve",
        });
    }
    out
}

/// The rule's annotations rendered for this alert (or, for a rule no longer loaded, as the
/// last notification carried them).
fn annotations(rule: Option<&Rule>, record: &Record, labels: &Labels) -> BTreeMap<String, String> {
    let alert = &record.alert;
    match rule {
        Some(rule) => {
            rule.annotations_for(labels, alert.value, alert.threshold, alert.severity.as_deref().unwrap_or(""))
        }
        None => record
            .group
            .as_ref()
            .and_then(|g| g.alerts.get(&alert.id))
            .map(|a| a.annotations.clone())
            .unwrap_or_default(),
    }
}
