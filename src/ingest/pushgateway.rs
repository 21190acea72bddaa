//! Pushgateway semantics: the grouping key from `/metrics/job/<job>{/<label>/<value>}` (with
//! `@base64` values), and a parsed text push applied to the aggregator — counters, histograms
//! and summary totals as cumulative values turned into deltas per series, gauges as they are.
//! Grouping labels win over labels of the same name in the pushed samples.

use std::collections::BTreeMap;

use base64::Engine;
use thiserror::Error;

use super::cumulative::{apply_histogram, counter_delta, histogram_state};
use super::parse::PushOutcome;
use super::parse::prom_text::{Family, PromType, Sample};
use super::sink::{IngestBatch, Reject};
use crate::aggregate::Observation;
use crate::model::{MetricKind, write_canonical_key};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GroupingError {
    #[error("the path must start with /metrics/job/<job>")]
    NoJob,
    #[error("label {0:?} has no value in the path; write /<label>/<value> pairs")]
    MissingValue(String),
    #[error("the value of {label} is not valid base64url: {reason}")]
    Base64 { label: String, reason: String },
    #[error("{0:?} is not a valid label name")]
    BadLabel(String),
    #[error("the job name must not be empty")]
    EmptyJob,
}

/// The labels a push is grouped under, and the hash that identifies the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupingKey {
    pub labels: Vec<(String, String)>,
    pub hash: u64,
}

impl GroupingKey {
    /// Parses the path after `/metrics/`, e.g. `job/checkout/instance@base64/aG9zdDE=`.
    pub fn parse(tail: &str) -> Result<GroupingKey, GroupingError> {
        let segments: Vec<String> = tail.trim_end_matches('/').split('/').map(percent_decoded).collect();
        if segments.first().is_none_or(|s| s != "job" && s != "job@base64") {
            return Err(GroupingError::NoJob);
        }
        let mut labels = Vec::new();
        for pair in segments.chunks(2) {
            let [name, value] = pair else { return Err(GroupingError::MissingValue(pair[0].clone())) };
            let (label, value) = match name.strip_suffix("@base64") {
                Some(label) => (label.to_owned(), decode_base64(label, value)?),
                None => (name.clone(), value.clone()),
            };
            if !super::names::is_valid_label_name(&label) {
                return Err(GroupingError::BadLabel(label));
            }
            labels.push((label, value));
        }
        if labels[0].1.is_empty() {
            return Err(GroupingError::EmptyJob);
        }
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut canonical = String::new();
        write_canonical_key("", &pairs, &mut Vec::new(), &mut canonical);
        Ok(GroupingKey { hash: xxhash_rust::xxh3::xxh3_64(canonical.as_bytes()), labels })
    }
}

fn decode_base64(label: &str, value: &str) -> Result<String, GroupingError> {
    if value == "=" {
        return Ok(String::new());
    }
    let trimmed = value.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|e| GroupingError::Base64 { label: label.to_owned(), reason: e.to_string() })?;
    String::from_utf8(bytes).map_err(|e| GroupingError::Base64 { label: label.to_owned(), reason: e.to_string() })
}

/// A path segment with its `%XX` escapes decoded; bytes that are not UTF-8 become U+FFFD.
fn percent_decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Applies a parsed push; per-sample refusals (limits, lateness) are listed by line.
pub fn apply<'a>(
    families: &[Family<'a>],
    grouping: &'a [(&'a str, &'a str)],
    group: u64,
    batch: &mut IngestBatch<'a>,
) -> PushOutcome {
    let mut outcome = PushOutcome::default();
    let mut note = |batch: &mut IngestBatch<'a>, line: usize, result: Result<(), Reject>| {
        outcome.tally(batch, line, result, Reject::to_string)
    };
    let mut state = Vec::new();
    for family in families {
        match family.kind {
            PromType::Counter => {
                for sample in family.samples.iter().filter(|s| !s.name.ends_with("_created") && !s.value.is_nan()) {
                    let result = record_counter(batch, sample.name, sample, grouping, group);
                    note(batch, sample.line, result);
                }
            }
            PromType::Gauge | PromType::Untyped => {
                for sample in family.samples.iter().filter(|s| !s.value.is_nan()) {
                    let result = batch
                        .resolve(sample.name, sample.labels, grouping, MetricKind::Gauge)
                        .and_then(|series| batch.record(series, sample.timestamp_ms, Observation::Gauge(sample.value)));
                    note(batch, sample.line, result);
                }
            }
            PromType::Summary => {
                for sample in family.samples.iter().filter(|s| !s.value.is_nan()) {
                    let result = if sample.name == family.name {
                        batch.resolve(sample.name, sample.labels, grouping, MetricKind::Gauge).and_then(|series| {
                            batch.record(series, sample.timestamp_ms, Observation::Gauge(sample.value))
                        })
                    } else {
                        record_counter(batch, sample.name, sample, grouping, group)
                    };
                    note(batch, sample.line, result);
                }
            }
            PromType::Histogram => {
                for (labels, histogram) in collect_histograms(family) {
                    let line = histogram.line;
                    let result = record_histogram(batch, family.name, &labels, &histogram, grouping, group, &mut state);
                    note(batch, line, result);
                }
            }
        }
    }
    outcome
}

fn record_counter<'a>(
    batch: &mut IngestBatch<'a>,
    name: &'a str,
    sample: &Sample<'a>,
    grouping: &[(&'a str, &'a str)],
    group: u64,
) -> Result<(), Reject> {
    if !sample.value.is_finite() || sample.value < 0.0 {
        return Err(Reject::BadValue {
            kind: MetricKind::Counter,
            value: sample.value,
            why: "a total must be finite and non-negative",
        });
    }
    let series = batch.resolve(name, sample.labels, grouping, MetricKind::Counter)?;
    let ts_ms = sample.timestamp_ms.unwrap_or(batch.now_ms());
    batch.record_cumulative(series, group, sample.timestamp_ms, &[sample.value], |previous, current, rollup| {
        rollup.increment(counter_delta(previous, current[0]), ts_ms)
    })
}

#[derive(Default)]
struct Histogram {
    line: usize,
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: Option<f64>,
    timestamp_ms: Option<i64>,
}

/// The family's samples grouped per label set (without `le`).
fn collect_histograms<'a>(family: &Family<'a>) -> BTreeMap<Vec<(&'a str, &'a str)>, Histogram> {
    let mut out: BTreeMap<Vec<(&'a str, &'a str)>, Histogram> = BTreeMap::new();
    for sample in &family.samples {
        let mut labels: Vec<(&str, &str)> = sample.labels.iter().copied().filter(|(k, _)| *k != "le").collect();
        labels.sort();
        let entry = out.entry(labels).or_insert_with(|| Histogram { line: sample.line, ..Histogram::default() });
        entry.timestamp_ms = entry.timestamp_ms.or(sample.timestamp_ms);
        match &sample.name[family.name.len()..] {
            "_bucket" => {
                let le = sample.labels.iter().find(|(k, _)| *k == "le").map(|(_, v)| *v);
                let bound = match le {
                    Some("+Inf") | Some("Inf") => Some(f64::INFINITY),
                    Some(text) => text.parse().ok(),
                    None => None,
                };
                // A bucket without a readable `le` cannot be placed; the parse step keeps
                // the rest of the family usable.
                if let Some(bound) = bound {
                    entry.buckets.push((bound, sample.value));
                }
            }
            "_sum" => entry.sum = sample.value,
            _ => entry.count = Some(sample.value),
        }
    }
    out
}

fn record_histogram<'a>(
    batch: &mut IngestBatch<'a>,
    name: &'a str,
    labels: &[(&'a str, &'a str)],
    histogram: &Histogram,
    grouping: &[(&'a str, &'a str)],
    group: u64,
    state: &mut Vec<f64>,
) -> Result<(), Reject> {
    let totals = [histogram.sum, histogram.count.unwrap_or(0.0)];
    if let Some(bad) = totals.iter().chain(histogram.buckets.iter().map(|(_, c)| c)).find(|v| !v.is_finite()) {
        return Err(Reject::BadValue { kind: MetricKind::Timing, value: *bad, why: "histogram totals must be finite" });
    }
    let mut buckets = histogram.buckets.clone();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = histogram.count.or(buckets.last().filter(|b| b.0.is_infinite()).map(|b| b.1)).unwrap_or(0.0);
    if buckets.last().is_none_or(|b| b.0.is_finite()) {
        buckets.push((f64::INFINITY, count));
    }
    histogram_state(count, histogram.sum, &buckets, state);
    let series = batch.resolve(name, labels, grouping, MetricKind::Timing)?;
    let ts_ms = histogram.timestamp_ms.unwrap_or(batch.now_ms());
    batch.record_cumulative(series, group, histogram.timestamp_ms, state, |previous, current, rollup| {
        apply_histogram(previous, current, rollup, ts_ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_keys_from_paths() {
        let key = GroupingKey::parse("job/checkout/instance/host%201").unwrap();
        assert_eq!(key.labels, vec![("instance".into(), "host 1".into()), ("job".into(), "checkout".into())]);
        let encoded = GroupingKey::parse("job@base64/Y2hlY2tvdXQ/path@base64/L3ZhciMx=").unwrap();
        assert_eq!(encoded.labels, vec![("job".into(), "checkout".into()), ("path".into(), "/var#1".into())]);
        assert_eq!(GroupingKey::parse("job/a/empty@base64/=").unwrap().labels[0].1, "");
        // Order of pairs does not change the group.
        assert_eq!(
            GroupingKey::parse("job/a/x/1/y/2").unwrap().hash,
            GroupingKey::parse("job/a/y/2/x/1").unwrap().hash
        );
        assert_eq!(GroupingKey::parse("instance/x"), Err(GroupingError::NoJob));
        assert_eq!(GroupingKey::parse("job/a/instance"), Err(GroupingError::MissingValue("instance".into())));
        assert!(matches!(GroupingKey::parse("job@base64/!!"), Err(GroupingError::Base64 { .. })));
        assert_eq!(GroupingKey::parse("job/"), Err(GroupingError::MissingValue("job".into())));
    }

    #[test]
    fn path_segments_are_percent_decoded_and_bad_escapes_kept() {
        let key = GroupingKey::parse("job/a%2Fb/instance/caf%C3%A9%20%zz%+f%4").unwrap();
        assert_eq!(key.labels, vec![("instance".into(), "café %zz%+f%4".into()), ("job".into(), "a/b".into())]);
    }
}
