//! The pushed metrics, re-exported on /metrics so Prometheus can scrape them: counters as
//! cumulative counters (named `…_total`, as Prometheus client libraries name them), gauges at
//! their latest level, and timings as summaries — quantiles over a recent window from the
//! mergeable sketches (memory and SQLite together), `_sum` and `_count` since perfwatch
//! started. Totals live with the series in memory, so a series idle long enough to be evicted
//! drops out (Prometheus marks it stale) and totals restart at zero with the process (a counter
//! reset Prometheus' `rate()` handles).

pub mod text;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use self::text::Family;
use crate::aggregate::{Aggregator, SeriesTotals};
use crate::model::{Labels, MetricKind, SeriesKey};
use crate::query::QueryError;
use crate::query::selector::Selector;
use crate::query::view::{Request, with_view};
use crate::store::Reader;

/// What /metrics re-exports of the pushed metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    pub enabled: bool,
    /// Summaries' quantiles cover this much recent time.
    pub window_s: i64,
    pub quantiles: Vec<f64>,
}

impl Default for ExportSettings {
    fn default() -> ExportSettings {
        ExportSettings { enabled: true, window_s: 300, quantiles: vec![0.5, 0.9, 0.95, 0.99] }
    }
}

/// One pushed metric's series.
struct Metric {
    kind: MetricKind,
    series: Vec<(Labels, SeriesTotals)>,
}

/// The pushed metrics in Prometheus' text format, as of `now_s`.
pub async fn render(
    aggregator: &Aggregator,
    reader: &Reader,
    settings: &ExportSettings,
    now_s: i64,
) -> Result<String, QueryError> {
    let mut metrics: BTreeMap<String, Metric> = BTreeMap::new();
    for totals in aggregator.totals() {
        let Some(key) = SeriesKey::parse(&totals.key) else { continue };
        // perfwatch's own families come from its recorder; a pushed one must not collide.
        if key.name.starts_with("perfwatch_") {
            continue;
        }
        let metric = metrics.entry(key.name).or_insert_with(|| Metric { kind: totals.kind, series: Vec::new() });
        // Prometheus needs one type per family; series of another kind under the name are left out.
        if metric.kind == totals.kind {
            metric.series.push((key.labels, totals));
        }
    }
    for metric in metrics.values_mut() {
        metric.series.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let quantiles = window_quantiles(aggregator, reader, &metrics, settings, now_s).await?;
    Ok(write(&metrics, &quantiles, settings))
}

/// Per timing series, its quantiles over the window (NaN without recent samples).
async fn window_quantiles(
    aggregator: &Aggregator,
    reader: &Reader,
    metrics: &BTreeMap<String, Metric>,
    settings: &ExportSettings,
    now_s: i64,
) -> Result<HashMap<(String, Labels), Vec<f64>>, QueryError> {
    // For each timing, grouping by every label its series carry gives one group per series.
    let wanted: Vec<(String, Vec<String>)> = metrics
        .iter()
        .filter(|(_, m)| m.kind == MetricKind::Timing)
        .map(|(name, m)| {
            let labels: BTreeSet<String> =
                m.series.iter().flat_map(|(l, _)| l.iter().map(|(k, _)| k.to_owned())).collect();
            (name.clone(), labels.into_iter().collect())
        })
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<String> = wanted.iter().map(|(n, _)| n.clone()).collect();
    let qs = settings.quantiles.clone();
    let (from_s, to_s) = (now_s - settings.window_s, now_s + 1);
    with_view(reader, Some(aggregator), None, &names, move |view| {
        // Stored names always parse; one that would not is left out with its own selector.
        let reads: Vec<(&String, &Vec<String>, Selector)> =
            wanted.iter().filter_map(|(name, group_by)| Some((name, group_by, Selector::parse(name).ok()?))).collect();
        let requests: Vec<Request> =
            reads.iter().map(|(_, _, s)| Request { selector: s.clone(), from_s, to_s }).collect();
        view.prefetch(&requests)?;
        let mut out = HashMap::new();
        for (name, group_by, selector) in &reads {
            for group in view.fetch(selector, from_s, to_s, group_by)? {
                let sketch = group.rollup.sketch.as_ref();
                let values = qs.iter().map(|q| sketch.and_then(|s| s.quantile(*q)).unwrap_or(f64::NAN)).collect();
                out.insert(((*name).clone(), group.labels), values);
            }
        }
        Ok(out)
    })
    .await
}

/// The exposition text.
fn write(
    metrics: &BTreeMap<String, Metric>,
    quantiles: &HashMap<(String, Labels), Vec<f64>>,
    settings: &ExportSettings,
) -> String {
    let mut out = String::new();
    // Sample names already written, so a generated name (`x_total`, `x_sum`) never repeats one.
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let window = format!("{:#}", jiff::SignedDuration::from_secs(settings.window_s));
    let q_names: Vec<String> = settings.quantiles.iter().map(|q| text::number(*q)).collect();
    for (name, metric) in metrics {
        let (family, samples): (String, Vec<String>) = match metric.kind {
            MetricKind::Counter => {
                let family = if name.ends_with("_total") { name.clone() } else { format!("{name}_total") };
                (family.clone(), vec![family])
            }
            MetricKind::Gauge => (name.clone(), vec![name.clone()]),
            MetricKind::Timing => (name.clone(), vec![name.clone(), format!("{name}_sum"), format!("{name}_count")]),
        };
        if samples.iter().any(|s| taken.contains(s)) {
            continue;
        }
        taken.extend(samples);
        match metric.kind {
            MetricKind::Counter => {
                let mut f =
                    Family::start(&mut out, &family, "counter", "counter pushed to perfwatch (total since it started)");
                for (labels, totals) in &metric.series {
                    f.sample("", labels, None, totals.sum);
                }
            }
            MetricKind::Gauge => {
                let mut f = Family::start(&mut out, &family, "gauge", "gauge pushed to perfwatch (latest value)");
                for (labels, totals) in &metric.series {
                    f.sample("", labels, None, totals.level);
                }
            }
            MetricKind::Timing => {
                let help = format!(
                    "timing pushed to perfwatch: quantiles over the last {window}; _sum and _count since perfwatch started"
                );
                let mut f = Family::start(&mut out, &family, "summary", &help);
                for (labels, totals) in metric.series.iter().filter(|(l, _)| l.get("quantile").is_none()) {
                    let values = quantiles.get(&(name.clone(), labels.clone()));
                    for (idx, q) in q_names.iter().enumerate() {
                        let value = values.and_then(|v| v.get(idx)).copied().unwrap_or(f64::NAN);
                        f.sample("", labels, Some(("quantile", q)), value);
                    }
                    f.sample("_sum", labels, None, totals.sum);
                    f.sample("_count", labels, None, totals.count);
                }
            }
        }
    }
    out
}
