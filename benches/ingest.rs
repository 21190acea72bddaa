//! Parse + aggregate throughput of each wire format through the same path the daemon uses
//! (IngestBatch into a sharded Aggregator), in observations per second on one core.

use bumpalo::Bump;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use perfwatch::aggregate::{Aggregator, AggregatorSettings};
use perfwatch::ingest::limits::Limits;
use perfwatch::ingest::parse::{json, prom_text};
use perfwatch::ingest::pushgateway;
use perfwatch::ingest::sink::{IngestBatch, Scratch};
use perfwatch::ingest::statsd::ingest_line;

fn aggregator() -> Aggregator {
    Aggregator::new(
        AggregatorSettings {
            interval_s: 10,
            lateness_intervals: 2,
            future_intervals: 1,
            max_series: 1_000_000,
            idle_after_s: 3600,
            cumulative_idle_after_s: 86_400,
        },
        0,
    )
}

/// A JSON push of `n_obs` observations in timing entries of `per_entry` values over 1,000 series.
fn json_body(n_obs: usize, per_entry: usize) -> String {
    let entries: Vec<String> = (0..n_obs / per_entry)
        .map(|idx| {
            let values: Vec<String> = (0..per_entry).map(|v| format!("0.0{:04}", (idx * 7 + v * 13) % 9999 + 1)).collect();
            format!(
                r#"{{"name":"api_request_duration_seconds","type":"timing","labels":{{"endpoint":"/vendors/{}","instance":"web-{}"}},"values":[{}]}}"#,
                idx % 100,
                idx % 10,
                values.join(",")
            )
        })
        .collect();
    format!(r#"{{"labels":{{"service":"api-gateway"}},"metrics":[{}]}}"#, entries.join(","))
}

fn json(c: &mut Criterion) {
    let agg = aggregator();
    let limits = Limits::default();
    let mut group = c.benchmark_group("ingest_json");
    for (n_obs, per_entry) in [(1_000, 1), (1_000, 10), (10_000, 10), (10_000, 100)] {
        let body = json_body(n_obs, per_entry);
        group.throughput(Throughput::Elements(n_obs as u64));
        group.bench_function(format!("{n_obs}obs_{per_entry}per_entry"), |b| {
            let mut bump = Bump::new();
            b.iter(|| {
                bump.reset();
                let mut batch =
                    IngestBatch::new(&agg, &limits, &bump, "json", perfwatch::clock::now_ms(), Scratch::default());
                let outcome = json::parse(&body, &mut batch).unwrap();
                assert_eq!(outcome.rejected, 0);
                batch.finish();
            })
        });
    }
    group.finish();
}

fn statsd(c: &mut Criterion) {
    let agg = aggregator();
    let limits = Limits::default();
    let lines: Vec<String> = (0..1000)
        .map(|i| format!("api.latency:{}.5|ms|@0.5|#endpoint:/vendors/{},instance:web-{}", i % 300, i % 100, i % 10))
        .collect();
    let mut group = c.benchmark_group("ingest_statsd");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("1000_lines", |b| {
        let bump = Bump::new();
        let mut scratch = Scratch::default();
        let mut tags = Vec::new();
        b.iter(|| {
            let mut batch = IngestBatch::new(
                &agg,
                &limits,
                &bump,
                "statsd",
                perfwatch::clock::now_ms(),
                std::mem::take(&mut scratch),
            );
            let mut line_tags = perfwatch::ingest::sink::recycle(std::mem::take(&mut tags));
            for line in &lines {
                ingest_line(&mut batch, line, &mut line_tags).unwrap();
            }
            tags = perfwatch::ingest::sink::recycle(line_tags);
            scratch = batch.finish();
        })
    });
    group.finish();
}

fn prometheus(c: &mut Criterion) {
    let agg = aggregator();
    let limits = Limits::default();
    let mut text = String::from("# TYPE jobs_total counter\n");
    for i in 0..500 {
        text += &format!("jobs_total{{queue=\"q{i}\"}} {}\n", i * 3);
    }
    text += "# TYPE job_seconds histogram\n";
    for i in 0..40 {
        for (le, n) in [("0.1", 2), ("0.5", 5), ("1", 9), ("+Inf", 10)] {
            text += &format!("job_seconds_bucket{{queue=\"q{i}\",le=\"{le}\"}} {}\n", n * (i + 1));
        }
        text += &format!(
            "job_seconds_sum{{queue=\"q{i}\"}} {}\njob_seconds_count{{queue=\"q{i}\"}} {}\n",
            4 * (i + 1),
            10 * (i + 1)
        );
    }
    let n_lines = text.lines().count() as u64;
    let grouping = pushgateway::GroupingKey::parse("job/bench").unwrap();
    let pairs: Vec<(&str, &str)> = grouping.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut group = c.benchmark_group("ingest_prometheus");
    group.throughput(Throughput::Elements(n_lines));
    group.bench_function(format!("{n_lines}_lines"), |b| {
        let mut bump = Bump::new();
        b.iter(|| {
            bump.reset();
            let families = prom_text::parse(&text, &bump).unwrap();
            let mut batch =
                IngestBatch::new(&agg, &limits, &bump, "prometheus", perfwatch::clock::now_ms(), Scratch::default());
            let outcome = pushgateway::apply(&families, &pairs, grouping.hash, &mut batch);
            assert_eq!(outcome.rejected, 0);
            batch.finish();
        })
    });
    group.finish();
}

/// A format's whole request path (decode, map, aggregate) for one body.
type IngestFn = dyn for<'a> Fn(&'a [u8], &mut IngestBatch<'a>) -> perfwatch::ingest::parse::PushOutcome;

/// The load generator's workload as JSON, OTLP protobuf and Influx bodies of 10k observations
/// (timings of ten values), covering every series once per iteration: the same observations
/// through each format's whole request path.
fn formats(c: &mut Criterion) {
    use perfwatch::ingest::influx::{self, Precision};
    use perfwatch::ingest::otlp::{self, ResourceLabels};
    use perfwatch::ingest::parse::otlp_messages as otlp_owned;
    use perfwatch::ingest::parse::otlp_view;
    use perfwatch::loadgen::{encode, workload};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    let limits = Limits::default();
    let labels: &'static ResourceLabels = Box::leak(Box::default());
    let json: &IngestFn = &|body, batch| json::parse(std::str::from_utf8(body).unwrap(), batch).unwrap();
    let otlp: &IngestFn = &|body, batch| otlp::ingest(&otlp_view::decode(body, batch.bump()).unwrap(), batch, labels);
    // As the API takes OTLP/JSON: serde, one member per oneof, carried over to protobuf.
    let otlp_json: &IngestFn = &|body, batch| {
        let mut request: otlp_owned::ExportMetricsServiceRequest = serde_json::from_slice(body).unwrap();
        request.keep_one_of_each();
        let protobuf = batch.bump().alloc_slice_copy(&prost::Message::encode_to_vec(&request));
        otlp::ingest(&otlp_view::decode(protobuf, batch.bump()).unwrap(), batch, labels)
    };
    let influx: &IngestFn = &|body, batch| influx::ingest(body, Precision::parse(None).unwrap(), batch);
    let mut group = c.benchmark_group("ingest_formats");
    group.sample_size(20);
    for n_series in [1_000, 10_000, 100_000] {
        let specs = workload::catalog(n_series);
        let firsts = (0..n_series).step_by(1_000);
        let mut rng = SmallRng::seed_from_u64(1);
        let json_bodies: Vec<_> =
            firsts.clone().map(|first| encode::json_body(&specs, first, 1_000, 10, &mut rng)).collect();
        let n_obs: u64 = json_bodies.iter().map(|(_, n)| n).sum();
        let json_bodies: Vec<Vec<u8>> = json_bodies.into_iter().map(|(body, _)| body.into_bytes()).collect();
        let otlp_bodies: Vec<Vec<u8>> =
            firsts.clone().map(|first| encode::otlp_body(&specs, first, 1_000, 10, &mut rng).0).collect();
        let otlp_json_bodies: Vec<Vec<u8>> = otlp_bodies
            .iter()
            .map(|body| {
                let request: otlp_owned::ExportMetricsServiceRequest = prost::Message::decode(&body[..]).unwrap();
                serde_json::to_vec(&request).unwrap()
            })
            .collect();
        let influx_bodies: Vec<Vec<u8>> =
            firsts.map(|first| encode::influx_body(&specs, first, 1_000, 10, &mut rng).0.into_bytes()).collect();
        group.throughput(Throughput::Elements(n_obs));
        for (name, ingest, bodies) in [
            ("json", json, &json_bodies),
            ("otlp", otlp, &otlp_bodies),
            ("otlp_json", otlp_json, &otlp_json_bodies),
            ("influx", influx, &influx_bodies),
        ] {
            let agg = aggregator();
            group.bench_function(format!("{name}_{}k_series", n_series / 1_000), |b| {
                // One arena reset per request, as the daemon keeps one per worker thread.
                let mut bump = Bump::new();
                b.iter(|| {
                    for body in bodies {
                        bump.reset();
                        let now = perfwatch::clock::now_ms();
                        let mut batch = IngestBatch::new(&agg, &limits, &bump, name, now, Scratch::default());
                        assert_eq!(ingest(body, &mut batch).rejected, 0);
                        batch.finish();
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, json, statsd, prometheus, formats);
criterion_main!(benches);
