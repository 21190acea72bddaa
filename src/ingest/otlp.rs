//! OTLP metrics into series. Names and attribute keys go through the one naming rule (dots
//! become underscores). Labels: the point's attributes, plus the resource attributes the
//! configured mapping names (by default `service.name` → `service`, `service.instance.id` →
//! `instance`, `service.namespace` → `namespace`, `deployment.environment` → `env`); other
//! resource and scope attributes are left out so SDK details do not multiply series.
//!
//! Kinds: gauges and non-monotonic cumulative sums (up-down counters) are gauges; monotonic
//! sums are counters; histograms (explicit or exponential, see `exponential`) are timings in
//! seconds (`ms`, `us`, `ns` units converted).
//! Cumulative points become per-interval deltas per stream: the first point of a stream
//! counts from zero, a re-sent identical point adds nothing, and a new start time or a total
//! that went down is a reset after which the point counts whole. Stream state is kept with the
//! series (and saved with the flush, like Pushgateway state) so a restart does not recount.

use std::collections::BTreeMap;

use crate::aggregate::Observation;
use crate::ingest::cumulative::{apply_histogram, counter_delta, histogram_state};
use crate::ingest::exponential;
use crate::ingest::parse::PushOutcome;
use crate::ingest::parse::otlp::{
    AnyValue, CUMULATIVE, DELTA, ExponentialHistogramDataPoint, ExportMetricsServiceRequest, HistogramDataPoint,
    KeyValue, Metric, NumberDataPoint, Sum,
};
use crate::ingest::sink::{IngestBatch, Reject};
use crate::model::MetricKind;

/// The cumulative-state group OTLP streams use (one stream per series).
const STREAM_GROUP: u64 = 0x6f74_6c70; // "otlp"

/// Which resource attributes become which labels.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceLabels(pub BTreeMap<String, String>);

impl Default for ResourceLabels {
    fn default() -> ResourceLabels {
        ResourceLabels(
            [
                ("service.name", "service"),
                ("service.instance.id", "instance"),
                ("service.namespace", "namespace"),
                ("deployment.environment", "env"),
            ]
            .into_iter()
            .map(|(a, l)| (a.to_owned(), l.to_owned()))
            .collect(),
        )
    }
}

/// Takes every data point of `request` into `batch`; refused points are counted with why.
pub fn ingest<'a>(
    request: &'a ExportMetricsServiceRequest,
    batch: &mut IngestBatch<'a>,
    mapping: &'a ResourceLabels,
) -> PushOutcome {
    let mut outcome = PushOutcome::default();
    let bump = batch.bump();
    let mut common: Vec<(&'a str, &'a str)> = Vec::new();
    let mut own: Vec<(&'a str, &'a str)> = Vec::new();
    let mut state: Vec<f64> = Vec::new();
    for resource in &request.resource_metrics {
        common.clear();
        for kv in resource.resource.iter().flat_map(|r| &r.attributes) {
            if let Some(label) = mapping.0.get(&kv.key)
                && let Some(value) = attribute_text(kv.value.as_ref(), bump)
            {
                common.push((label.as_str(), value));
            }
        }
        for metric in resource.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let (common, own, state) = (&common, &mut own, &mut state);
            let results: Vec<Result<(), Reject>> = if let Some(gauge) = &metric.gauge {
                let gauge_of = Observation::Gauge;
                gauge
                    .data_points
                    .iter()
                    .map(|p| number(batch, metric, p, common, own, MetricKind::Gauge, gauge_of))
                    .collect()
            } else if let Some(sum) = &metric.sum {
                sum.data_points.iter().map(|p| sum_point(batch, metric, sum, p, common, own)).collect()
            } else if let Some(h) = &metric.histogram {
                let t = h.aggregation_temporality;
                h.data_points.iter().map(|p| explicit_histogram(batch, metric, p, t, common, own, state)).collect()
            } else if let Some(h) = &metric.exponential_histogram {
                let t = h.aggregation_temporality;
                h.data_points.iter().map(|p| exponential_histogram(batch, metric, p, t, common, own, state)).collect()
            } else if let Some((n, why)) = unsupported(metric) {
                (0..n).map(|_| Err(Reject::Unsupported(why))).collect()
            } else {
                outcome.rejected += 1;
                outcome.note_error(0, format!("metric {:?} has no data", metric.name));
                continue;
            };
            for (idx, result) in results.into_iter().enumerate() {
                batch.count(&result);
                match result {
                    Ok(()) => outcome.accepted += 1,
                    Err(reject) => {
                        outcome.rejected += 1;
                        outcome.hit_series_limit |= reject.is_series_limit();
                        outcome.note_error(idx + 1, format!("metric {:?}: {reject}", metric.name));
                    }
                }
            }
        }
    }
    outcome
}

/// One sum data point, by monotonicity and temporality.
fn sum_point<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &'a Metric,
    sum: &Sum,
    point: &'a NumberDataPoint,
    common: &[(&'a str, &'a str)],
    own: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), Reject> {
    let (kind, observation): (MetricKind, fn(f64) -> Observation<'static>) =
        match (sum.is_monotonic, sum.aggregation_temporality) {
            (true, CUMULATIVE) => return cumulative_counter(batch, metric, point, common, own),
            (true, DELTA) => (MetricKind::Counter, Observation::Increment),
            (false, CUMULATIVE) => (MetricKind::Gauge, Observation::Gauge),
            (false, DELTA) => (MetricKind::Counter, Observation::CounterDelta),
            _ => return Err(Reject::Unsupported("a sum needs aggregation_temporality DELTA or CUMULATIVE")),
        };
    number(batch, metric, point, common, own, kind, observation)
}

/// Data points of a type perfwatch does not take, and why.
fn unsupported(metric: &Metric) -> Option<(usize, &'static str)> {
    let summary = metric.summary.as_ref()?;
    Some((summary.data_points.len(), "summaries' quantiles cannot be merged; export a histogram"))
}

/// An attribute value as label text (None for an empty or compound value).
fn attribute_text<'a>(value: Option<&'a AnyValue>, bump: &'a bumpalo::Bump) -> Option<&'a str> {
    let value = value?;
    if let Some(text) = &value.string_value {
        return Some(text.as_str());
    }
    let text = match (value.bool_value, value.int_value, value.double_value) {
        (Some(b), _, _) => bumpalo::format!(in bump, "{}", b),
        (_, Some(i), _) => bumpalo::format!(in bump, "{}", i),
        (_, _, Some(d)) => bumpalo::format!(in bump, "{}", d),
        _ => return None,
    };
    Some(text.into_bump_str())
}

/// The point's own attributes as labels, into `own`.
fn point_labels<'a>(attributes: &'a [KeyValue], bump: &'a bumpalo::Bump, own: &mut Vec<(&'a str, &'a str)>) {
    own.clear();
    for kv in attributes {
        if let Some(value) = attribute_text(kv.value.as_ref(), bump) {
            own.push((kv.key.as_str(), value));
        }
    }
}

fn timestamp_ms(time_unix_nano: u64) -> Option<i64> {
    (time_unix_nano > 0).then_some((time_unix_nano / 1_000_000) as i64)
}

fn value(point: &NumberDataPoint) -> Result<f64, Reject> {
    point
        .as_double
        .or(point.as_int.map(|i| i as f64))
        .ok_or(Reject::Unsupported("a number data point needs as_double or as_int"))
}

fn number<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &'a Metric,
    point: &'a NumberDataPoint,
    common: &[(&'a str, &'a str)],
    own: &mut Vec<(&'a str, &'a str)>,
    kind: MetricKind,
    observation: impl FnOnce(f64) -> Observation<'static>,
) -> Result<(), Reject> {
    let value = value(point)?;
    point_labels(&point.attributes, batch.bump(), own);
    let series = batch.resolve(&metric.name, common, own, kind)?;
    batch.record(series, timestamp_ms(point.time_unix_nano), observation(value))
}

fn cumulative_counter<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &'a Metric,
    point: &'a NumberDataPoint,
    common: &[(&'a str, &'a str)],
    own: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), Reject> {
    let value = value(point)?;
    point_labels(&point.attributes, batch.bump(), own);
    let series = batch.resolve(&metric.name, common, own, MetricKind::Counter)?;
    let ts_ms = timestamp_ms(point.time_unix_nano).unwrap_or(batch.now_ms());
    // State: [start time, total]; a new start time is a reset.
    let current = [point.start_time_unix_nano as f64, value];
    batch.record_cumulative(series, STREAM_GROUP, Some(ts_ms), &current, |previous, current, rollup| {
        let same_stream = previous.filter(|p| p.len() == 2 && p[0] == current[0]).map(|p| &p[1..]);
        rollup.increment(counter_delta(same_stream, current[1]), ts_ms)
    })
}

/// Seconds per unit of a histogram's values.
fn unit_scale(unit: &str) -> f64 {
    match unit {
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "min" => 60.0,
        "h" => 3600.0,
        _ => 1.0,
    }
}

fn explicit_histogram<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &'a Metric,
    point: &'a HistogramDataPoint,
    temporality: i32,
    common: &[(&'a str, &'a str)],
    own: &mut Vec<(&'a str, &'a str)>,
    state: &mut Vec<f64>,
) -> Result<(), Reject> {
    if point.bucket_counts.len() != point.explicit_bounds.len() + 1 && !point.bucket_counts.is_empty() {
        return Err(Reject::Unsupported("a histogram needs one more bucket count than explicit bounds"));
    }
    let scale = unit_scale(&metric.unit);
    let sum = point.sum.unwrap_or(0.0) * scale;
    let count = point.count as f64;
    point_labels(&point.attributes, batch.bump(), own);
    let series = batch.resolve(&metric.name, common, own, MetricKind::Timing)?;
    let ts_ms = timestamp_ms(point.time_unix_nano).unwrap_or(batch.now_ms());
    // (upper bound in seconds, cumulative count), the last bound +Inf.
    let mut cumulative = Vec::with_capacity(point.bucket_counts.len());
    let mut running = 0.0;
    for (idx, n) in point.bucket_counts.iter().enumerate() {
        running += *n as f64;
        let le = point.explicit_bounds.get(idx).map_or(f64::INFINITY, |b| b * scale);
        cumulative.push((le, running));
    }
    match temporality {
        CUMULATIVE => {
            // State: [start time, count, sum, le₁, cum₁, …]; a new start time is a reset.
            let mut layout = Vec::new();
            histogram_state(count, sum, &cumulative, &mut layout);
            state.clear();
            state.push(point.start_time_unix_nano as f64);
            state.extend(layout);
            batch.record_cumulative(series, STREAM_GROUP, Some(ts_ms), state, |previous, current, rollup| {
                let same_stream = previous.filter(|p| !p.is_empty() && p[0] == current[0]).map(|p| &p[1..]);
                apply_histogram(same_stream, &current[1..], rollup, ts_ms)
            })
        }
        DELTA => {
            let buckets = bucket_pairs(&cumulative);
            batch.record(series, Some(ts_ms), Observation::Buckets { count, sum, buckets: &buckets })
        }
        _ => Err(Reject::Unsupported("a histogram needs aggregation_temporality DELTA or CUMULATIVE")),
    }
}

fn exponential_histogram<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &'a Metric,
    point: &'a ExponentialHistogramDataPoint,
    temporality: i32,
    common: &[(&'a str, &'a str)],
    own: &mut Vec<(&'a str, &'a str)>,
    state: &mut Vec<f64>,
) -> Result<(), Reject> {
    if point.negative.as_ref().is_some_and(|n| n.bucket_counts.iter().any(|c| *c > 0)) {
        return Err(Reject::Unsupported("negative values in a histogram; timings are non-negative"));
    }
    let unit = unit_scale(&metric.unit);
    let positive = point.positive.clone().unwrap_or_default();
    let sum = point.sum.unwrap_or(0.0) * unit;
    point_labels(&point.attributes, batch.bump(), own);
    let series = batch.resolve(&metric.name, common, own, MetricKind::Timing)?;
    let ts_ms = timestamp_ms(point.time_unix_nano).unwrap_or(batch.now_ms());
    let mut layout = Vec::new();
    exponential::state(
        point.count as f64,
        sum,
        point.zero_count as f64,
        point.scale,
        positive.offset,
        &positive.bucket_counts,
        &mut layout,
    );
    match temporality {
        CUMULATIVE => {
            // State: [start time, count, sum, zero, scale, offset, counts…].
            state.clear();
            state.push(point.start_time_unix_nano as f64);
            state.extend(layout);
            batch.record_cumulative(series, STREAM_GROUP, Some(ts_ms), state, |previous, current, rollup| {
                let same_stream = previous.filter(|p| p.len() >= 6 && p[0] == current[0]).map(|p| &p[1..]);
                let (count, sum, buckets) = exponential::gained(same_stream, &current[1..], unit);
                rollup.observe_buckets(count, sum, buckets.into_iter(), ts_ms)
            })
        }
        DELTA => {
            let (count, sum, buckets) = exponential::gained(None, &layout, unit);
            batch.record(series, Some(ts_ms), Observation::Buckets { count, sum, buckets: &buckets })
        }
        _ => Err(Reject::Unsupported("a histogram needs aggregation_temporality DELTA or CUMULATIVE")),
    }
}

/// Per-bucket (representative value, count) from cumulative `(le, count)` pairs: the middle of
/// each bucket, or its lower bound for the last, open one.
fn bucket_pairs(cumulative: &[(f64, f64)]) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(cumulative.len());
    let (mut lower, mut before) = (0.0_f64, 0.0);
    for (le, cum) in cumulative {
        let value = if le.is_infinite() { lower } else { (lower.min(*le) + le) / 2.0 };
        out.push((value, (cum - before).max(0.0).round() as u64));
        lower = *le;
        before = *cum;
    }
    out
}
