//! Request bodies for each format the load generator speaks: native JSON entries, Prometheus
//! text with cumulative totals per grouping key, and StatsD datagrams.

use std::fmt::Write as _;

use rand::rngs::SmallRng;

use super::workload::{SeriesSpec, Shape};

/// A JSON push of `n_entries` entries starting at series `first` (wrapping), each timing
/// entry with `values_per_entry` values. Returns the body and the observations in it.
pub fn json_body(
    specs: &[SeriesSpec],
    first: usize,
    n_entries: usize,
    values_per_entry: usize,
    rng: &mut SmallRng,
) -> (String, u64) {
    let mut out = String::with_capacity(n_entries * (80 + values_per_entry * 10));
    let mut n_obs = 0;
    out.push_str("{\"metrics\":[");
    for idx in 0..n_entries {
        let spec = &specs[(first + idx) % specs.len()];
        if idx > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"name\":\"{}\",\"type\":\"{}\",\"labels\":{{", spec.name, spec.kind());
        for (pos, (k, v)) in spec.labels.iter().enumerate() {
            let _ = write!(out, "{}\"{k}\":\"{v}\"", if pos > 0 { "," } else { "" });
        }
        out.push('}');
        if spec.is_timing() {
            out.push_str(",\"values\":[");
            for v in 0..values_per_entry {
                let _ = write!(out, "{}{:.6}", if v > 0 { "," } else { "" }, spec.sample(rng));
            }
            out.push(']');
            n_obs += values_per_entry as u64;
        } else {
            let _ = write!(out, ",\"value\":{}", spec.sample(rng));
            n_obs += 1;
        }
        out.push('}');
    }
    out.push_str("]}");
    (out, n_obs)
}

/// An Influx line-protocol body for `n_entries` entries starting at series `first`: a timing
/// entry is `values_per_entry` points of its series (one `value` field each), any other entry
/// one point, so series and observations match the JSON workload.
pub fn influx_body(
    specs: &[SeriesSpec],
    first: usize,
    n_entries: usize,
    values_per_entry: usize,
    rng: &mut SmallRng,
) -> (String, u64) {
    let mut out = String::with_capacity(n_entries * values_per_entry * 90);
    let mut n_obs = 0;
    let mut series = String::new();
    for idx in 0..n_entries {
        let spec = &specs[(first + idx) % specs.len()];
        series.clear();
        series.push_str(spec.name);
        for (k, v) in &spec.labels {
            let _ = write!(series, ",{k}={}", v.replace(' ', "\\ ").replace(',', "\\,"));
        }
        let points = if spec.is_timing() { values_per_entry } else { 1 };
        for _ in 0..points {
            let _ = writeln!(out, "{series} value={:.6}", spec.sample(rng));
        }
        n_obs += points as u64;
    }
    (out, n_obs)
}

/// An OTLP protobuf export of `n_entries` metrics starting at series `first`, delta
/// temporality: timings as histograms of `values_per_entry` new observations over
/// [`BUCKETS`], counters as sums, levels as gauges.
pub fn otlp_body(
    specs: &[SeriesSpec],
    first: usize,
    n_entries: usize,
    values_per_entry: usize,
    rng: &mut SmallRng,
) -> (Vec<u8>, u64) {
    use crate::ingest::parse::otlp_messages::*;
    use prost::Message;
    let attributes = |spec: &SeriesSpec| -> Vec<KeyValue> {
        spec.labels
            .iter()
            .map(|(k, v)| KeyValue {
                key: (*k).to_owned(),
                value: Some(AnyValue { string_value: Some(v.clone()), ..Default::default() }),
            })
            .collect()
    };
    let mut metrics = Vec::with_capacity(n_entries);
    let mut n_obs = 0;
    for idx in 0..n_entries {
        let spec = &specs[(first + idx) % specs.len()];
        let mut metric = Metric { name: spec.name.to_owned(), ..Default::default() };
        match spec.shape {
            Shape::Latency { .. } => {
                let mut counts = vec![0u64; BUCKETS.len() + 1];
                let mut sum = 0.0;
                for _ in 0..values_per_entry {
                    let v = spec.sample(rng);
                    sum += v;
                    counts[BUCKETS.iter().position(|b| v <= *b).unwrap_or(BUCKETS.len())] += 1;
                }
                metric.unit = "s".into();
                metric.histogram = Some(Histogram {
                    data_points: vec![HistogramDataPoint {
                        attributes: attributes(spec),
                        count: values_per_entry as u64,
                        sum: Some(sum),
                        bucket_counts: counts,
                        explicit_bounds: BUCKETS.to_vec(),
                        ..Default::default()
                    }],
                    aggregation_temporality: DELTA,
                });
                n_obs += values_per_entry as u64;
            }
            Shape::Count { .. } => {
                let point = NumberDataPoint {
                    attributes: attributes(spec),
                    as_double: Some(spec.sample(rng)),
                    ..Default::default()
                };
                metric.sum = Some(Sum { data_points: vec![point], aggregation_temporality: DELTA, is_monotonic: true });
                n_obs += 1;
            }
            Shape::Level { .. } => {
                let point = NumberDataPoint {
                    attributes: attributes(spec),
                    as_double: Some(spec.sample(rng)),
                    ..Default::default()
                };
                metric.gauge = Some(Gauge { data_points: vec![point] });
                n_obs += 1;
            }
        }
        metrics.push(metric);
    }
    let service = KeyValue {
        key: "service.name".into(),
        value: Some(AnyValue { string_value: Some("loadgen".into()), ..Default::default() }),
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![service] }),
            scope_metrics: vec![ScopeMetrics { scope: None, metrics }],
        }],
    };
    (request.encode_to_vec(), n_obs)
}

/// Cumulative state of one Prometheus pusher (one grouping key).
pub struct PromPusher {
    totals: Vec<f64>,
    histograms: Vec<[f64; 12]>,
}

/// Histogram bucket bounds for timings, in seconds.
pub const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

impl PromPusher {
    pub fn new(n_series: usize) -> PromPusher {
        PromPusher { totals: vec![0.0; n_series], histograms: vec![[0.0; 12]; n_series] }
    }

    /// The text body after `values_per_series` new observations of every series; returns it
    /// and the number of lines.
    pub fn body(&mut self, specs: &[SeriesSpec], values_per_series: usize, rng: &mut SmallRng) -> (String, u64) {
        let mut out = String::with_capacity(specs.len() * 200);
        let mut n_lines = 0;
        for (idx, spec) in specs.iter().enumerate() {
            let labels: String = spec.labels.iter().map(|(k, v)| format!("{k}=\"{v}\",")).collect();
            match spec.shape {
                Shape::Latency { .. } => {
                    let h = &mut self.histograms[idx];
                    for _ in 0..values_per_series {
                        let v = spec.sample(rng);
                        for (b, bound) in BUCKETS.iter().enumerate() {
                            if v <= *bound {
                                h[b] += 1.0;
                            }
                        }
                        h[10] += v;
                        h[11] += 1.0;
                    }
                    for (b, bound) in BUCKETS.iter().enumerate() {
                        let _ = writeln!(out, "{}_bucket{{{labels}le=\"{bound}\"}} {}", spec.name, h[b]);
                    }
                    let _ = writeln!(out, "{}_bucket{{{labels}le=\"+Inf\"}} {}", spec.name, h[11]);
                    let _ = writeln!(out, "{}_sum{{{labels}}} {}", spec.name, h[10]);
                    let _ = writeln!(out, "{}_count{{{labels}}} {}", spec.name, h[11]);
                    n_lines += BUCKETS.len() as u64 + 3;
                }
                Shape::Count { .. } => {
                    self.totals[idx] += spec.sample(rng);
                    let _ = writeln!(out, "{}{{{labels}}} {}", spec.name, self.totals[idx]);
                    n_lines += 1;
                }
                Shape::Level { .. } => {
                    let _ = writeln!(out, "{}{{{labels}}} {}", spec.name, spec.sample(rng));
                    n_lines += 1;
                }
            }
        }
        (with_type_lines(&out, specs), n_lines)
    }
}

/// Puts a `# TYPE` line before each family (samples of a family are contiguous per series
/// order, so families are grouped first).
fn with_type_lines(body: &str, specs: &[SeriesSpec]) -> String {
    let mut families: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for line in body.lines() {
        let spec = specs.iter().find(|s| line.starts_with(s.name)).expect("every line is of a spec");
        let kind = match spec.shape {
            Shape::Latency { .. } => "histogram",
            Shape::Count { .. } => "counter",
            Shape::Level { .. } => "gauge",
        };
        match families.iter_mut().find(|(name, _, _)| *name == spec.name) {
            Some(family) => family.2.push(line),
            None => families.push((spec.name, kind, vec![line])),
        }
    }
    let mut out = String::with_capacity(body.len() + families.len() * 40);
    for (name, kind, lines) in families {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// StatsD datagrams of at most `max_bytes`, one line per series sample, starting at `first`.
pub fn statsd_datagrams(
    specs: &[SeriesSpec],
    first: usize,
    n_lines: usize,
    max_bytes: usize,
    rng: &mut SmallRng,
) -> Vec<(Vec<u8>, u64)> {
    let mut datagrams = Vec::new();
    let mut current = String::new();
    let mut in_current = 0;
    for idx in 0..n_lines {
        let spec = &specs[(first + idx) % specs.len()];
        let value = spec.sample(rng);
        let (value, kind) = match spec.shape {
            Shape::Latency { .. } => (value * 1000.0, "ms"),
            Shape::Count { .. } => (value, "c"),
            Shape::Level { .. } => (value, "g"),
        };
        let tags: Vec<String> = spec.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let line = format!("{}:{value:.3}|{kind}|#{}", spec.name, tags.join(","));
        if !current.is_empty() && current.len() + 1 + line.len() > max_bytes {
            datagrams.push((std::mem::take(&mut current).into_bytes(), in_current));
            in_current = 0;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
        in_current += 1;
    }
    if !current.is_empty() {
        datagrams.push((current.into_bytes(), in_current));
    }
    datagrams
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::loadgen::workload::catalog;

    #[test]
    fn bodies_parse_with_perfwatch_own_parsers() {
        let specs = catalog(40);
        let mut rng = SmallRng::seed_from_u64(3);
        let (json, n_obs) = json_body(&specs, 5, 40, 10, &mut rng);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["metrics"].as_array().unwrap().len(), 40);
        let n_timings = specs.iter().filter(|s| s.is_timing()).count() as u64;
        assert_eq!(n_obs, n_timings * 10 + (40 - n_timings));

        let mut pusher = PromPusher::new(specs.len());
        let (text, _) = pusher.body(&specs, 5, &mut rng);
        let bump = bumpalo::Bump::new();
        let families = crate::ingest::parse::prom_text::parse(&text, &bump).unwrap();
        assert!(families.iter().any(|f| f.kind == crate::ingest::parse::prom_text::PromType::Histogram));

        let datagrams = statsd_datagrams(&specs, 0, 100, 1432, &mut rng);
        assert_eq!(datagrams.iter().map(|(_, n)| n).sum::<u64>(), 100);
        for (bytes, _) in &datagrams {
            assert!(bytes.len() <= 1432);
            for line in std::str::from_utf8(bytes).unwrap().lines() {
                crate::ingest::parse::statsd::parse_line(line).unwrap();
            }
        }
    }
}
