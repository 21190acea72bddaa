//! The Prometheus protobuf exposition format (`io.prometheus.client.MetricFamily`, length-
//! delimited), which the Go client's `push` sends by default. Decoded into the same families
//! as the text format, so both go through one Pushgateway path. The message types are written
//! out with prost's derive (no code generation step); unknown fields, such as exemplars and
//! native-histogram spans, are skipped by the decoder.

use bumpalo::Bump;
use prost::Message;

use super::prom_text::{Family, PromTextError, PromType, Sample};

#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Quantile {
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
    #[prost(double, optional, tag = "4")]
    pub cumulative_count_float: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    #[prost(double, optional, tag = "4")]
    pub sample_count_float: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Value>,
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Value>,
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Value>,
    #[prost(int64, optional, tag = "6")]
    pub timestamp_ms: Option<i64>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
}

/// Whether a Content-Type names this format.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type.contains("application/vnd.google.protobuf")
        && content_type.contains("io.prometheus.client.MetricFamily")
}

/// Decodes every length-delimited family in `body`; an error names the family's position.
pub fn parse<'a>(mut body: &[u8], bump: &'a Bump) -> Result<Vec<Family<'a>>, PromTextError> {
    let mut families = Vec::new();
    let mut index = 0;
    while !body.is_empty() {
        index += 1;
        let err = |message: String| PromTextError { line: index, message };
        let family = MetricFamily::decode_length_delimited(&mut body).map_err(|e| err(format!("protobuf: {e}")))?;
        let name = family
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err("metric family without a name".into()))?;
        if !crate::ingest::names::is_valid_metric_name(name) {
            return Err(err(format!("{name:?} is not a valid metric name")));
        }
        let kind = match family.r#type.unwrap_or(3) {
            0 => PromType::Counter,
            1 => PromType::Gauge,
            2 => PromType::Summary,
            3 => PromType::Untyped,
            4 | 5 => PromType::Histogram,
            other => return Err(err(format!("unknown metric type {other}"))),
        };
        let name = bump.alloc_str(name);
        let mut samples = Vec::new();
        for metric in &family.metric {
            let mut labels = Vec::with_capacity(metric.label.len() + 1);
            for pair in &metric.label {
                let label = pair.name.as_deref().unwrap_or_default();
                if !crate::ingest::names::is_valid_label_name(label) {
                    return Err(err(format!("{label:?} is not a valid label name")));
                }
                labels.push((&*bump.alloc_str(label), &*bump.alloc_str(pair.value.as_deref().unwrap_or_default())));
            }
            let ts = metric.timestamp_ms;
            let mut push = |sample_name: &'a str, extra: Option<(&'a str, &'a str)>, value: f64| {
                let n_base = labels.len();
                labels.extend(extra);
                let sample_labels = &*bump.alloc_slice_copy(&labels);
                labels.truncate(n_base);
                samples.push(Sample { line: index, name: sample_name, labels: sample_labels, value, timestamp_ms: ts });
            };
            match kind {
                PromType::Counter => push(name, None, value_of(&metric.counter)),
                PromType::Gauge => push(name, None, value_of(&metric.gauge)),
                PromType::Untyped => push(name, None, value_of(&metric.untyped)),
                PromType::Summary => {
                    let summary = metric.summary.clone().unwrap_or_default();
                    for q in &summary.quantile {
                        let quantile = &*bump.alloc_str(&q.quantile.unwrap_or_default().to_string());
                        push(name, Some(("quantile", quantile)), q.value.unwrap_or(f64::NAN));
                    }
                    push(suffixed(bump, name, "_sum"), None, summary.sample_sum.unwrap_or_default());
                    push(suffixed(bump, name, "_count"), None, summary.sample_count.unwrap_or_default() as f64);
                }
                PromType::Histogram => {
                    let histogram = metric.histogram.clone().unwrap_or_default();
                    let count =
                        histogram.sample_count_float.unwrap_or(histogram.sample_count.unwrap_or_default() as f64);
                    let bucket_name = suffixed(bump, name, "_bucket");
                    for bucket in &histogram.bucket {
                        let le = &*bump.alloc_str(&bucket.upper_bound.unwrap_or(f64::INFINITY).to_string());
                        let cumulative =
                            bucket.cumulative_count_float.unwrap_or(bucket.cumulative_count.unwrap_or_default() as f64);
                        push(bucket_name, Some(("le", le)), cumulative);
                    }
                    push(suffixed(bump, name, "_sum"), None, histogram.sample_sum.unwrap_or_default());
                    push(suffixed(bump, name, "_count"), None, count);
                }
            }
        }
        families.push(Family { name, kind, samples });
    }
    Ok(families)
}

fn value_of(value: &Option<Value>) -> f64 {
    value.as_ref().and_then(|v| v.value).unwrap_or(f64::NAN)
}

fn suffixed<'a>(bump: &'a Bump, name: &str, suffix: &str) -> &'a str {
    let mut out = bumpalo::collections::String::with_capacity_in(name.len() + suffix.len(), bump);
    out.push_str(name);
    out.push_str(suffix);
    out.into_bump_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(families: &[MetricFamily]) -> Vec<u8> {
        let mut out = Vec::new();
        for family in families {
            family.encode_length_delimited(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn decodes_counters_and_histograms_like_the_text_format() {
        let counter = MetricFamily {
            name: Some("jobs_total".into()),
            r#type: Some(0),
            metric: vec![Metric {
                label: vec![LabelPair { name: Some("queue".into()), value: Some("emails".into()) }],
                counter: Some(Value { value: Some(5.0) }),
                ..Metric::default()
            }],
            ..MetricFamily::default()
        };
        let histogram = MetricFamily {
            name: Some("job_seconds".into()),
            r#type: Some(4),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: Some(3),
                    sample_sum: Some(1.5),
                    bucket: vec![
                        Bucket { cumulative_count: Some(1), upper_bound: Some(0.1), ..Bucket::default() },
                        Bucket { cumulative_count: Some(3), upper_bound: Some(1.0), ..Bucket::default() },
                    ],
                    ..Histogram::default()
                }),
                ..Metric::default()
            }],
            ..MetricFamily::default()
        };
        let bump = Bump::new();
        let families = parse(&encode(&[counter, histogram]), &bump).unwrap();
        assert_eq!(families.len(), 2);
        assert_eq!((families[0].name, families[0].kind), ("jobs_total", PromType::Counter));
        assert_eq!(families[0].samples[0].labels, vec![("queue", "emails")]);
        assert_eq!(families[0].samples[0].value, 5.0);
        let names: Vec<&str> = families[1].samples.iter().map(|s| s.name).collect();
        assert_eq!(names, vec!["job_seconds_bucket", "job_seconds_bucket", "job_seconds_sum", "job_seconds_count"]);
        assert_eq!(families[1].samples[1].labels, vec![("le", "1")]);
    }

    #[test]
    fn truncated_bodies_name_the_family() {
        let bump = Bump::new();
        let family = MetricFamily { name: Some("x".into()), r#type: Some(1), ..MetricFamily::default() };
        let mut body = encode(&[family.clone(), family]);
        body.truncate(body.len() - 1);
        let err = parse(&body, &bump).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(is_protobuf(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        ));
    }
}
