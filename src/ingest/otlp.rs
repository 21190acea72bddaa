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
use crate::aggregate::rollup::storable;
use crate::ingest::cumulative::{apply_histogram, counter_delta, histogram_state};
use crate::ingest::exponential;
use crate::ingest::parse::PushOutcome;
use crate::ingest::parse::otlp_view::{
    AttributeValue, CUMULATIVE, DELTA, Data, ExponentialPoint, HistogramPoint, KeyValue, Metric, NumberPoint, Request,
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

/// Buffers one request works in, reused from point to point.
#[derive(Default)]
struct Buffers<'a> {
    /// Labels from the resource.
    common: Vec<(&'a str, &'a str)>,
    /// Labels from the point.
    own: Vec<(&'a str, &'a str)>,
    /// A cumulative point's state.
    state: Vec<f64>,
    layout: Vec<f64>,
    /// A histogram's `(le, cumulative count)` pairs.
    cumulative: Vec<(f64, f64)>,
    /// A histogram's `(value, count)` per bucket.
    buckets: Vec<(f64, u64)>,
}

/// Takes every data point of `request` into `batch`; refused points are counted with why.
pub fn ingest<'a>(request: &Request<'a>, batch: &mut IngestBatch<'a>, mapping: &'a ResourceLabels) -> PushOutcome {
    let mut outcome = PushOutcome::default();
    let bump = batch.bump();
    let mut buffers = Buffers::default();
    for resource in request.resources {
        buffers.common.clear();
        for kv in resource.attributes {
            if let Some(label) = mapping.0.get(kv.key)
                && let Some(value) = attribute_text(kv.value, bump)
            {
                buffers.common.push((label.as_str(), value));
            }
        }
        for metric in resource.metrics {
            let (b, out) = (&mut buffers, &mut outcome);
            let describe = |reject: &Reject| format!("metric {:?}: {reject}", metric.name);
            match metric.data {
                Data::Gauge(points) => {
                    for (idx, p) in points.iter().enumerate() {
                        let result = number(batch, metric, p, b, MetricKind::Gauge, Observation::Gauge);
                        out.tally(batch, idx + 1, result, describe);
                    }
                }
                Data::Sum { points, temporality, monotonic } => {
                    for (idx, p) in points.iter().enumerate() {
                        let result = sum_point(batch, metric, p, temporality, monotonic, b);
                        out.tally(batch, idx + 1, result, describe);
                    }
                }
                Data::Histogram { points, temporality } => {
                    for (idx, p) in points.iter().enumerate() {
                        let result = explicit_histogram(batch, metric, p, temporality, b);
                        out.tally(batch, idx + 1, result, describe);
                    }
                }
                Data::Exponential { points, temporality } => {
                    for (idx, p) in points.iter().enumerate() {
                        let result = exponential_histogram(batch, metric, p, temporality, b);
                        out.tally(batch, idx + 1, result, describe);
                    }
                }
                Data::Summary { points } => {
                    let why = "summaries' quantiles cannot be merged; export a histogram";
                    (0..points).for_each(|idx| out.tally(batch, idx + 1, Err(Reject::Unsupported(why)), describe));
                }
                Data::Missing => {
                    outcome.rejected += 1;
                    outcome.note_error(0, format!("metric {:?} has no data", metric.name));
                }
            }
        }
    }
    outcome
}

/// One sum data point, by monotonicity and temporality.
fn sum_point<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &Metric<'a>,
    point: &NumberPoint<'a>,
    temporality: i32,
    monotonic: bool,
    b: &mut Buffers<'a>,
) -> Result<(), Reject> {
    let (kind, observation): (MetricKind, fn(f64) -> Observation<'static>) = match (monotonic, temporality) {
        (true, CUMULATIVE) => return cumulative_counter(batch, metric, point, b),
        (true, DELTA) => (MetricKind::Counter, Observation::Increment),
        (false, CUMULATIVE) => (MetricKind::Gauge, Observation::Gauge),
        (false, DELTA) => (MetricKind::Counter, Observation::CounterDelta),
        _ => return Err(Reject::Unsupported("a sum needs aggregation_temporality DELTA or CUMULATIVE")),
    };
    number(batch, metric, point, b, kind, observation)
}

/// An attribute value as label text (None for an empty or compound value); numbers and
/// booleans are written into the request's arena.
fn attribute_text<'a>(value: AttributeValue<'a>, bump: &'a bumpalo::Bump) -> Option<&'a str> {
    let text = match value {
        AttributeValue::Text(text) => return Some(text),
        AttributeValue::Bool(b) => bumpalo::format!(in bump, "{}", b),
        AttributeValue::Int(i) => bumpalo::format!(in bump, "{}", i),
        AttributeValue::Double(d) => bumpalo::format!(in bump, "{}", d),
        AttributeValue::Missing | AttributeValue::Other => return None,
    };
    Some(text.into_bump_str())
}

/// The point's own attributes as labels, into `own`.
fn point_labels<'a>(attributes: &[KeyValue<'a>], bump: &'a bumpalo::Bump, own: &mut Vec<(&'a str, &'a str)>) {
    own.clear();
    for kv in attributes {
        if let Some(value) = attribute_text(kv.value, bump) {
            own.push((kv.key, value));
        }
    }
}

fn timestamp_ms(time_unix_nano: u64) -> Option<i64> {
    (time_unix_nano > 0).then_some((time_unix_nano / 1_000_000) as i64)
}

fn value(point: &NumberPoint<'_>) -> Result<f64, Reject> {
    point.value.ok_or(Reject::Unsupported("a number data point needs as_double or as_int"))
}

/// Labels the point and resolves its series.
fn resolve<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &Metric<'a>,
    attributes: &[KeyValue<'a>],
    b: &mut Buffers<'a>,
    kind: MetricKind,
) -> Result<crate::ingest::sink::Resolved, Reject> {
    point_labels(attributes, batch.bump(), &mut b.own);
    batch.resolve(metric.name, &b.common, &b.own, kind)
}

fn number<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &Metric<'a>,
    point: &NumberPoint<'a>,
    b: &mut Buffers<'a>,
    kind: MetricKind,
    observation: impl FnOnce(f64) -> Observation<'static>,
) -> Result<(), Reject> {
    let value = value(point)?;
    let series = resolve(batch, metric, point.attributes, b, kind)?;
    batch.record(series, timestamp_ms(point.time_unix_nano), observation(value))
}

fn cumulative_counter<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &Metric<'a>,
    point: &NumberPoint<'a>,
    b: &mut Buffers<'a>,
) -> Result<(), Reject> {
    let value = value(point)?;
    if !(storable(value) && value >= 0.0) {
        return Err(Reject::BadValue {
            kind: MetricKind::Counter,
            value,
            why: "a monotonic total must be finite, non-negative and within 1e300",
        });
    }
    let series = resolve(batch, metric, point.attributes, b, MetricKind::Counter)?;
    let ts_ms = timestamp_ms(point.time_unix_nano).unwrap_or(batch.now_ms());
    // State: [start time, total]; a new start time is a reset.
    let current = [point.start_time_unix_nano as f64, value];
    batch.record_cumulative(series, STREAM_GROUP, Some(ts_ms), &current, |previous, current, rollup| {
        rollup.increment(counter_delta(same_stream(previous, current), current[1]), ts_ms)
    })
}

/// The previous state of a stream without its start time, when the stream is the same one
/// (same start time; a new one is a reset). States are `[start time, …]`; each reader checks
/// the rest fits what it expects.
fn same_stream<'p>(previous: Option<&'p [f64]>, current: &[f64]) -> Option<&'p [f64]> {
    previous.filter(|p| !p.is_empty() && p.first() == current.first()).map(|p| &p[1..])
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
    metric: &Metric<'a>,
    point: &HistogramPoint<'a>,
    temporality: i32,
    b: &mut Buffers<'a>,
) -> Result<(), Reject> {
    if point.bucket_counts.len() != point.explicit_bounds.len() + 1 && !point.bucket_counts.is_empty() {
        return Err(Reject::Unsupported("a histogram needs one more bucket count than explicit bounds"));
    }
    let scale = unit_scale(metric.unit);
    let sum = point.sum.unwrap_or(0.0) * scale;
    if !storable(sum) {
        return Err(Reject::BadValue {
            kind: MetricKind::Timing,
            value: sum,
            why: "the sum must be finite, within 1e300",
        });
    }
    let count = point.count as f64;
    let series = resolve(batch, metric, point.attributes, b, MetricKind::Timing)?;
    let ts_ms = timestamp_ms(point.time_unix_nano).unwrap_or(batch.now_ms());
    // (upper bound in seconds, cumulative count), the last bound +Inf.
    b.cumulative.clear();
    let mut running = 0.0;
    for (idx, n) in point.bucket_counts.iter().enumerate() {
        running += *n as f64;
        let le = point.explicit_bounds.get(idx).map_or(f64::INFINITY, |b| b * scale);
        b.cumulative.push((le, running));
    }
    match temporality {
        CUMULATIVE => {
            // State: [start time, count, sum, le₁, cum₁, …]; a new start time is a reset.
            histogram_state(count, sum, &b.cumulative, &mut b.layout);
            b.state.clear();
            b.state.push(point.start_time_unix_nano as f64);
            b.state.extend_from_slice(&b.layout);
            batch.record_cumulative(series, STREAM_GROUP, Some(ts_ms), &b.state, |previous, current, rollup| {
                apply_histogram(same_stream(previous, current), &current[1..], rollup, ts_ms)
            })
        }
        DELTA => {
            bucket_pairs(&b.cumulative, &mut b.buckets);
            batch.record(series, Some(ts_ms), Observation::Buckets { count, sum, buckets: &b.buckets })
        }
        _ => Err(Reject::Unsupported("a histogram needs aggregation_temporality DELTA or CUMULATIVE")),
    }
}

fn exponential_histogram<'a>(
    batch: &mut IngestBatch<'a>,
    metric: &Metric<'a>,
    point: &ExponentialPoint<'a>,
    temporality: i32,
    b: &mut Buffers<'a>,
) -> Result<(), Reject> {
    if point.has_negative {
        return Err(Reject::Unsupported("negative values in a histogram; timings are non-negative"));
    }
    if !exponential::SCALES.contains(&point.scale) {
        return Err(Reject::Unsupported("an exponential histogram's scale must be within -10..=20"));
    }
    let unit = unit_scale(metric.unit);
    let sum = point.sum.unwrap_or(0.0) * unit;
    let last_index = i64::from(point.positive_offset) + point.positive.len() as i64 - 1;
    let top = if point.positive.is_empty() { 0.0 } else { exponential::representative(last_index, point.scale) * unit };
    if !storable(top) {
        return Err(Reject::BadValue { kind: MetricKind::Timing, value: top, why: "its buckets go beyond 1e300 s" });
    }
    if !storable(sum) {
        return Err(Reject::BadValue {
            kind: MetricKind::Timing,
            value: sum,
            why: "the sum must be finite, within 1e300",
        });
    }
    let series = resolve(batch, metric, point.attributes, b, MetricKind::Timing)?;
    let ts_ms = timestamp_ms(point.time_unix_nano).unwrap_or(batch.now_ms());
    let (count, zero) = (point.count as f64, point.zero_count as f64);
    exponential::state(count, sum, zero, point.scale, point.positive_offset, point.positive, &mut b.layout);
    match temporality {
        CUMULATIVE => {
            // State: [start time, count, sum, zero, scale, offset, counts…].
            b.state.clear();
            b.state.push(point.start_time_unix_nano as f64);
            b.state.extend_from_slice(&b.layout);
            let buckets = &mut b.buckets;
            batch.record_cumulative(series, STREAM_GROUP, Some(ts_ms), &b.state, |previous, current, rollup| {
                let (count, sum) = exponential::gained(same_stream(previous, current), &current[1..], unit, buckets);
                rollup.observe_buckets(count, sum, buckets.iter().copied(), ts_ms)
            })
        }
        DELTA => {
            let (count, sum) = exponential::gained(None, &b.layout, unit, &mut b.buckets);
            batch.record(series, Some(ts_ms), Observation::Buckets { count, sum, buckets: &b.buckets })
        }
        _ => Err(Reject::Unsupported("a histogram needs aggregation_temporality DELTA or CUMULATIVE")),
    }
}

/// Per-bucket (representative value, count) from cumulative `(le, count)` pairs, into `out`:
/// the middle of each bucket, or its lower bound for the last, open one.
fn bucket_pairs(cumulative: &[(f64, f64)], out: &mut Vec<(f64, u64)>) {
    out.clear();
    let (mut lower, mut before) = (0.0_f64, 0.0);
    for (le, cum) in cumulative {
        let value = if le.is_infinite() { lower } else { (lower.min(*le) + le) / 2.0 };
        out.push((value, (cum - before).max(0.0).round() as u64));
        lower = *le;
        before = *cum;
    }
}
