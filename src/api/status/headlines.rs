//! The status page's headline tiles: each target the platform is held to (the shipped rules'
//! thresholds) measured over the last 5 minutes, with its trend over the last hour, coloured
//! and labelled by how it stands. The targets are one table, [`SPECS`]; a ratio split by a
//! label (hit ratio per cache tier, utilisation per pool) makes a tile per value.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::trend_cache::Trends;
use super::{STEP_S, TREND_S, builtin, trend};
use crate::aggregate::rollup::Rollup;
use crate::api::chart::{self, Chart, Level, Unit};
use crate::api::{ApiError, ReadState};
use crate::html::escape;
use crate::query::QueryError;
use crate::query::stat::Stat;
use crate::query::view::View;

/// How a headline is measured.
enum Measure {
    /// A quantile (`p99`, `p95`) of every series the selector matches, merged.
    Quantile { selector: &'static str, stat: &'static str },
    /// `stat(numerator) / stat(denominator)` (`sum` or `avg`), per value of `per` if given.
    Ratio { numerator: &'static str, denominator: &'static str, stat: &'static str, per: Option<&'static str> },
}

/// One target: `what` (with `{}` for the `per` label's value), how it is measured, the target
/// and which side of it is bad.
struct Spec {
    what: &'static str,
    measure: Measure,
    target: f64,
    /// `true`: over the target is bad (latency); `false`: under it is bad (hit ratio).
    upper: bool,
    unit: Unit,
}

/// The targets, as the shipped rules (rules/web-platform.yaml) set them.
const SPECS: &[Spec] = &[
    Spec {
        what: "API p99",
        measure: Measure::Quantile { selector: "api_request_duration_seconds", stat: "p99" },
        target: super::API_TARGET_S,
        upper: true,
        unit: Unit::Seconds,
    },
    Spec {
        what: "dashboard p95",
        measure: Measure::Quantile {
            selector: r#"api_request_duration_seconds{endpoint=~"/dashboard.*"}"#,
            stat: "p95",
        },
        target: 0.2,
        upper: true,
        unit: Unit::Seconds,
    },
    Spec {
        what: "cache hit ratio {}",
        measure: Measure::Ratio {
            numerator: r#"cache_requests_total{result="hit"}"#,
            denominator: "cache_requests_total",
            stat: "sum",
            per: Some("tier"),
        },
        target: 0.85,
        upper: false,
        unit: Unit::Ratio,
    },
    Spec {
        what: "cache L1 p99",
        measure: Measure::Quantile { selector: r#"cache_request_duration_seconds{tier="l1"}"#, stat: "p99" },
        target: 0.001,
        upper: true,
        unit: Unit::Seconds,
    },
    Spec {
        what: "cache L2 p99",
        measure: Measure::Quantile { selector: r#"cache_request_duration_seconds{tier="l2"}"#, stat: "p99" },
        target: 0.005,
        upper: true,
        unit: Unit::Seconds,
    },
    Spec {
        what: "cache L3 p99",
        measure: Measure::Quantile { selector: r#"cache_request_duration_seconds{tier=~"l3|cdn"}"#, stat: "p99" },
        target: 0.02,
        upper: true,
        unit: Unit::Seconds,
    },
    Spec {
        what: "DB p99",
        measure: Measure::Quantile { selector: "db_query_duration_seconds", stat: "p99" },
        target: super::DB_TARGET_S,
        upper: true,
        unit: Unit::Seconds,
    },
    Spec {
        what: "pool {} utilisation",
        measure: Measure::Ratio {
            numerator: "db_pool_connections_in_use",
            denominator: "db_pool_connections_max",
            stat: "avg",
            per: Some("pool"),
        },
        target: 0.95,
        upper: true,
        unit: Unit::Ratio,
    },
    Spec {
        what: "5xx ratio",
        measure: Measure::Ratio {
            numerator: r#"http_responses_total{code=~"5.*"}"#,
            denominator: "http_responses_total",
            stat: "sum",
            per: None,
        },
        target: 0.01,
        upper: true,
        unit: Unit::Ratio,
    },
];

/// One tile: what, the measured value, its target, which side is bad, and the trend.
pub(super) struct Headline {
    what: String,
    value: Option<f64>,
    target: f64,
    upper: bool,
    unit: Unit,
    /// (start of the minute, value), oldest first.
    trend: Vec<(i64, f64)>,
}

/// Every metric the headlines read (for the view's memory snapshot).
pub(super) fn metric_names() -> Vec<String> {
    let mut names: Vec<String> = SPECS
        .iter()
        .flat_map(|spec| match &spec.measure {
            Measure::Quantile { selector, .. } => vec![*selector],
            Measure::Ratio { numerator, denominator, .. } => vec![*numerator, *denominator],
        })
        .map(|selector| builtin(selector).name)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Current values (rollups over the window per group) of every spec, in `SPECS` order: one
/// list for a quantile, two (numerator, denominator) for a ratio.
pub(super) fn fetch(view: &mut View<'_, '_>, from_s: i64, to_s: i64) -> Result<Vec<Vec<Grouped>>, QueryError> {
    let mut fetch = |selector: &str, per: Option<&str>| -> Result<Grouped, QueryError> {
        let group_by: Vec<String> = per.iter().map(|s| s.to_string()).collect();
        Ok(view
            .fetch(&builtin(selector), from_s, to_s, &group_by)?
            .into_iter()
            .map(|g| (group_by.iter().filter_map(|k| g.labels.get(k)).collect::<Vec<_>>().join(" "), g.rollup))
            .collect())
    };
    SPECS
        .iter()
        .map(|spec| match &spec.measure {
            Measure::Quantile { selector, .. } => Ok(vec![fetch(selector, None)?]),
            Measure::Ratio { numerator, denominator, per, .. } => {
                Ok(vec![fetch(numerator, *per)?, fetch(denominator, *per)?])
            }
        })
        .collect()
}

/// Rollups per value of the grouping label ("" without one).
pub(super) type Grouped = BTreeMap<String, Rollup>;

/// Every spec's trends, in `SPECS` order (one for a quantile, numerator and denominator for a
/// ratio), read concurrently: each read takes its own pooled connection.
pub(super) async fn trends(state: &ReadState, now_s: i64) -> Result<Vec<Vec<Trends>>, ApiError> {
    let reads = SPECS.iter().map(|spec| async move {
        match &spec.measure {
            Measure::Quantile { selector, stat } => Ok(vec![trend(state, builtin(selector), stat, &[], now_s).await?]),
            Measure::Ratio { numerator, denominator, stat, per } => {
                let per: Vec<&str> = per.iter().copied().collect();
                let (num, den) = futures_util::future::join(
                    trend(state, builtin(numerator), stat, &per, now_s),
                    trend(state, builtin(denominator), stat, &per, now_s),
                )
                .await;
                Ok(vec![num?, den?])
            }
        }
    });
    futures_util::future::join_all(reads).await.into_iter().collect()
}

/// The tiles, from the current values [`fetch`] read and the [`trends`].
pub(super) fn headlines(current: Vec<Vec<Grouped>>, trends: Vec<Vec<Trends>>) -> Vec<Headline> {
    let mut out = Vec::new();
    for ((spec, current), mut trends) in SPECS.iter().zip(current).zip(trends) {
        match &spec.measure {
            Measure::Quantile { stat, .. } => {
                let Ok(Stat::Quantile(q)) = Stat::parse(stat) else {
                    unreachable!("headline quantiles are written pNN")
                };
                let value = current[0].get("").and_then(|r| r.sketch.as_ref()?.quantile(q));
                out.push(tile(spec, spec.what.to_owned(), value, trends[0].remove("").unwrap_or_default()));
            }
            Measure::Ratio { stat, .. } => {
                out.extend(ratio_tiles(spec, stat, &current[0], &current[1], &trends[0], &trends[1]));
            }
        }
    }
    out
}

fn tile(spec: &Spec, what: String, value: Option<f64>, trend: Vec<(i64, f64)>) -> Headline {
    Headline { what, value, target: spec.target, upper: spec.upper, unit: spec.unit, trend }
}

/// A tile per group of the denominator (a missing numerator of sums is 0: no hits); one "no
/// data" tile when nothing was pushed.
fn ratio_tiles(
    spec: &Spec,
    stat: &str,
    num: &Grouped,
    den: &Grouped,
    num_trends: &Trends,
    den_trends: &Trends,
) -> Vec<Headline> {
    let value = |r: &Rollup| if stat == "avg" { (r.count > 0.0).then(|| r.sum / r.count) } else { Some(r.sum) };
    let mut out: Vec<Headline> = den
        .iter()
        .map(|(group, den_rollup)| {
            let num_value = match num.get(group) {
                Some(r) => value(r),
                None if stat == "sum" => Some(0.0),
                None => None,
            };
            let ratio = num_value.zip(value(den_rollup).filter(|d| *d > 0.0)).map(|(n, d)| n / d);
            // Cache tiers are written L1, L2, L3 on the page.
            let tiers = matches!(spec.measure, Measure::Ratio { per: Some("tier"), .. });
            let shown = if tiers { group.to_uppercase() } else { group.clone() };
            tile(
                spec,
                spec.what.replace("{}", &shown),
                ratio,
                self::ratio(num_trends.get(group), den_trends.get(group)),
            )
        })
        .collect();
    if out.is_empty() {
        out.push(tile(spec, spec.what.replace(" {}", ""), None, Vec::new()));
    }
    out
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

/// One tile per headline, coloured and labelled by how it stands against its target, with its
/// trend over the last hour and the target drawn across it.
pub(super) fn render(body: &mut String, headlines: &[Headline], now_s: i64) {
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
