//! The common path from any protocol's parser to the aggregator: merges common and per-metric
//! labels, normalises names, enforces limits, builds the canonical key and records the sample.
//! Buffers are reused from sample to sample; a request allocates only for series it creates.

use thiserror::Error;

use super::limits::Limits;
use super::names;
use crate::aggregate::rollup::{Rollup, storable};
use crate::aggregate::{Aggregator, Observation, RecordError, SeriesRef};
use crate::model::{MetricKind, series_id, write_canonical_key};
use crate::telemetry;

use bumpalo::Bump;

/// Why one sample was refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Reject {
    #[error("{0}")]
    Parse(String),
    #[error("metric name {name:?} is {len} bytes, more than limits.max_name_len ({limit})")]
    NameTooLong { name: String, len: usize, limit: usize },
    #[error("label name {name:?} is {len} bytes, more than limits.max_name_len ({limit})")]
    LabelNameTooLong { name: String, len: usize, limit: usize },
    #[error("the metric name is empty; every sample needs a name")]
    EmptyName,
    #[error("a label name is empty (its value is {value:?}); name the label or leave it out")]
    EmptyLabelName { value: String },
    #[error("{count} labels is more than limits.max_labels ({limit})")]
    TooManyLabels { count: usize, limit: usize },
    #[error("label {label:?} has a value of {len} bytes, more than limits.max_label_value_len ({limit})")]
    LabelValueTooLong { label: String, len: usize, limit: usize },
    #[error("label name {0:?} starts with '__', which is reserved")]
    ReservedLabel(String),
    #[error("{kind} value {value} is not allowed: {why}")]
    BadValue { kind: MetricKind, value: f64, why: &'static str },
    /// Well-formed, but not something perfwatch takes (and why).
    #[error("{0}")]
    Unsupported(&'static str),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl Reject {
    /// A bounded label value for the rejection counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Reject::Parse(_) => "parse",
            Reject::NameTooLong { .. } | Reject::LabelNameTooLong { .. } | Reject::LabelValueTooLong { .. } => {
                "too_long"
            }
            Reject::EmptyName | Reject::EmptyLabelName { .. } => "empty_name",
            Reject::TooManyLabels { .. } => "too_many_labels",
            Reject::ReservedLabel(_) => "reserved_label",
            Reject::BadValue { .. } => "bad_value",
            Reject::Unsupported(_) => "unsupported",
            Reject::Record(RecordError::TooLate { .. }) => "too_late",
            Reject::Record(RecordError::TooEarly { .. }) => "too_early",
            Reject::Record(RecordError::KindMismatch { .. }) => "kind_mismatch",
            Reject::Record(RecordError::TooManySeries { .. }) => "series_limit",
            Reject::Record(RecordError::Collision { .. }) => "collision",
        }
    }

    pub fn is_series_limit(&self) -> bool {
        matches!(self, Reject::Record(RecordError::TooManySeries { .. }))
    }
}

/// Buffers an [`IngestBatch`] works in, handed from batch to batch so a StatsD listener
/// allocates nothing per datagram.
#[derive(Default)]
pub struct Scratch {
    labels: Vec<(&'static str, &'static str)>,
    order: Vec<u32>,
    key: String,
}

/// Reuses the allocation of an emptied vector of string pairs under a new lifetime.
pub fn recycle<'a, 'b>(mut pairs: Vec<(&'a str, &'a str)>) -> Vec<(&'b str, &'b str)> {
    pairs.clear();
    // In-place collection: same layout, so the allocation is kept.
    pairs.into_iter().map(|_| -> (&'b str, &'b str) { unreachable!("the vector is empty") }).collect()
}

/// One request's (or datagram's) worth of samples on their way into the aggregator.
pub struct IngestBatch<'a> {
    aggregator: &'a Aggregator,
    limits: &'a Limits,
    bump: &'a Bump,
    protocol: &'static str,
    now_ms: i64,
    labels: Vec<(&'a str, &'a str)>,
    order: Vec<u32>,
    key: String,
    /// Samples accepted, for /metrics when the batch finishes.
    n_accepted: u64,
}

/// A resolved series: its key lives in the batch's buffer until the next `resolve`.
#[derive(Clone, Copy)]
pub struct Resolved {
    id: u64,
    kind: MetricKind,
}

impl<'a> IngestBatch<'a> {
    pub fn new(
        aggregator: &'a Aggregator,
        limits: &'a Limits,
        bump: &'a Bump,
        protocol: &'static str,
        now_ms: i64,
        scratch: Scratch,
    ) -> Self {
        IngestBatch {
            aggregator,
            limits,
            bump,
            protocol,
            now_ms,
            labels: recycle(scratch.labels),
            order: scratch.order,
            key: scratch.key,
            n_accepted: 0,
        }
    }

    pub fn bump(&self) -> &'a Bump {
        self.bump
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Checks names and limits and builds the series key from `common` then `own` labels.
    pub fn resolve(
        &mut self,
        name: &'a str,
        common: &[(&'a str, &'a str)],
        own: &[(&'a str, &'a str)],
        kind: MetricKind,
    ) -> Result<Resolved, Reject> {
        if name.is_empty() {
            return Err(Reject::EmptyName);
        }
        let name = names::metric_name(name, self.bump);
        if name.len() > self.limits.max_name_len {
            return Err(Reject::NameTooLong { name: truncate(name), len: name.len(), limit: self.limits.max_name_len });
        }
        self.labels.clear();
        for (label, value) in common.iter().chain(own) {
            if value.is_empty() {
                continue; // Prometheus semantics: an empty value is no label
            }
            if label.is_empty() {
                return Err(Reject::EmptyLabelName { value: truncate(value) });
            }
            let label = names::label_name(label, self.bump);
            if label.starts_with("__") {
                return Err(Reject::ReservedLabel(label.to_owned()));
            }
            if label.len() > self.limits.max_name_len {
                return Err(Reject::LabelNameTooLong {
                    name: truncate(label),
                    len: label.len(),
                    limit: self.limits.max_name_len,
                });
            }
            if value.len() > self.limits.max_label_value_len {
                return Err(Reject::LabelValueTooLong {
                    label: label.to_owned(),
                    len: value.len(),
                    limit: self.limits.max_label_value_len,
                });
            }
            self.labels.push((label, value));
        }
        let n_labels = write_canonical_key(name, &self.labels, &mut self.order, &mut self.key);
        if n_labels > self.limits.max_labels {
            return Err(Reject::TooManyLabels { count: n_labels, limit: self.limits.max_labels });
        }
        Ok(Resolved { id: series_id(&self.key), kind })
    }

    /// Whether `obs` is a value a series of `kind` takes, without recording it: for inputs
    /// that must take or refuse several values as one.
    pub fn check(&self, kind: MetricKind, obs: &Observation<'_>) -> Result<(), Reject> {
        check_values(kind, obs)
    }

    /// Records `obs` for the series last resolved, at `ts_ms` (default: now).
    pub fn record(&mut self, series: Resolved, ts_ms: Option<i64>, obs: Observation<'_>) -> Result<(), Reject> {
        debug_assert_eq!(series_id(&self.key), series.id, "the key buffer holds the series last resolved");
        check_values(series.kind, &obs)?;
        let ts_ms = ts_ms.unwrap_or(self.now_ms);
        let start_s = self.aggregator.admit(ts_ms, self.now_ms)?;
        let series_ref = SeriesRef { key: &self.key, id: series.id, kind: series.kind };
        self.aggregator.record(series_ref, start_s, ts_ms, obs)?;
        Ok(())
    }

    /// Records a cumulative value set (Pushgateway) for the series last resolved.
    pub fn record_cumulative(
        &mut self,
        series: Resolved,
        group: u64,
        ts_ms: Option<i64>,
        values: &[f64],
        apply_delta: impl FnOnce(Option<&[f64]>, &[f64], &mut Rollup),
    ) -> Result<(), Reject> {
        // Bounds may be +Inf (a histogram's last bucket); callers check the totals themselves.
        if let Some(bad) = values.iter().find(|v| v.is_nan()) {
            return Err(Reject::BadValue { kind: series.kind, value: *bad, why: "it must be a number" });
        }
        // The difference of two totals in range is finite, so deltas cannot overflow.
        if let Some(bad) = values.iter().find(|v| v.is_finite() && !storable(**v)) {
            return Err(Reject::BadValue { kind: series.kind, value: *bad, why: TOO_LARGE });
        }
        debug_assert_eq!(series_id(&self.key), series.id, "the key buffer holds the series last resolved");
        let ts_ms = ts_ms.unwrap_or(self.now_ms);
        let start_s = self.aggregator.admit(ts_ms, self.now_ms)?;
        let series_ref = SeriesRef { key: &self.key, id: series.id, kind: series.kind };
        self.aggregator.record_cumulative(series_ref, group, start_s, values, apply_delta)?;
        Ok(())
    }

    /// Counts the outcome of one sample (or entry) for /metrics.
    pub fn count(&mut self, outcome: &Result<(), Reject>) {
        match outcome {
            Ok(()) => self.n_accepted += 1,
            Err(reject) => telemetry::sample_rejected(self.protocol, reject.reason()),
        }
    }

    /// Publishes the accepted count to /metrics and hands the buffers back.
    pub fn finish(self) -> Scratch {
        telemetry::samples_accepted(self.protocol, self.n_accepted);
        Scratch { labels: recycle(self.labels), order: self.order, key: self.key }
    }
}

/// The most one sample may weigh: a StatsD sample rate of 1e-6, i.e. one sample standing for a
/// million. Heavier weights would let one datagram swamp a series' counts.
pub const MAX_WEIGHT: f64 = 1e6;

/// Why a finite value beyond [`crate::aggregate::rollup::MAX_MAGNITUDE`] is refused.
const TOO_LARGE: &str = "its magnitude is over 1e300, the largest perfwatch stores";

fn check_values(kind: MetricKind, obs: &Observation<'_>) -> Result<(), Reject> {
    let bad = |value: f64, why| Err(Reject::BadValue { kind, value, why });
    match *obs {
        Observation::Timings { values, weight } => {
            if !(weight.is_finite() && weight > 0.0 && weight <= MAX_WEIGHT) {
                return bad(weight, "a sample rate must be in [0.000001, 1]");
            }
            for value in values {
                if !value.is_finite() || *value < 0.0 {
                    return bad(*value, "timings are non-negative seconds");
                }
                if !storable(*value) {
                    return bad(*value, TOO_LARGE);
                }
            }
        }
        Observation::Buckets { count, sum, buckets } => {
            if !(count.is_finite() && count >= 0.0 && sum.is_finite()) {
                return bad(count, "a histogram's count and sum must be finite, the count non-negative");
            }
            if !storable(count) || !storable(sum) {
                return bad(if storable(count) { sum } else { count }, TOO_LARGE);
            }
            if let Some((value, _)) = buckets.iter().find(|(v, _)| !v.is_finite() || *v < 0.0) {
                return bad(*value, "timings are non-negative seconds");
            }
            if let Some((value, _)) = buckets.iter().find(|(v, _)| !storable(*v)) {
                return bad(*value, TOO_LARGE);
            }
        }
        Observation::Gauges(levels) => {
            if let Some(level) = levels.iter().find(|v| !v.is_finite()) {
                return bad(*level, "it must be finite");
            }
            if let Some(level) = levels.iter().find(|v| !storable(**v)) {
                return bad(*level, TOO_LARGE);
            }
        }
        Observation::Increment(delta) if !delta.is_finite() || delta < 0.0 => {
            return bad(delta, "counter increments are non-negative; send a gauge for values that go down");
        }
        Observation::Gauge(v) | Observation::GaugeDelta(v) | Observation::CounterDelta(v) if !v.is_finite() => {
            return bad(v, "it must be finite");
        }
        Observation::Increment(v)
        | Observation::Gauge(v)
        | Observation::GaugeDelta(v)
        | Observation::CounterDelta(v)
            if !storable(v) =>
        {
            return bad(v, TOO_LARGE);
        }
        _ => {}
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect::<String>() + if text.len() > 64 { "…" } else { "" }
}
