//! The fuzz targets: each takes arbitrary bytes the way perfwatch takes them from the network
//! or from an operator's file, and runs them through the same code the daemon runs. A target
//! panics only when perfwatch would: a crash found here is a bug. Where input is accepted,
//! what it leaves behind is checked too (every drained rollup storable, sketches that round
//! trip), so a silently wrong value is caught as well as a panic.
//!
//! This file is compiled twice: into the AFL++ harness (`fuzz/src/main.rs`) and into the
//! integration tests (`tests/it/fuzz_corpus.rs`), which replay every corpus and regression
//! input on each `cargo test`.

use std::collections::HashMap;

use bumpalo::Bump;
use perfwatch::aggregate::sketch::Sketch;
use perfwatch::aggregate::{Aggregator, AggregatorSettings};
use perfwatch::ingest::influx::{self, Precision};
use perfwatch::ingest::limits::Limits;
use perfwatch::ingest::otlp::{self, ResourceLabels};
use perfwatch::ingest::parse::otlp_messages::ExportMetricsServiceRequest;
use perfwatch::ingest::parse::{json, otlp_view, prom_proto, prom_text};
use perfwatch::ingest::pushgateway::{self, GroupingKey};
use perfwatch::ingest::sink::{IngestBatch, Scratch};
use perfwatch::ingest::statsd;
use perfwatch::store::tiers::Tier;
use prost::Message;

/// Every target, by the name the harness and the corpus directories use.
pub const TARGETS: &[&str] = &[
    "json",
    "prom_text",
    "prom_proto",
    "otlp_proto",
    "otlp_json",
    "influx",
    "statsd",
    "query",
    "promql",
    "rules",
    "config",
    "sketch",
    "block",
    "ack_link",
];

/// A fixed "now" (2027-01-15T08:00:00Z) so a run depends on its input only.
const NOW_MS: i64 = 1_800_000_000_000;

/// Runs `data` through target `name`. Unknown names panic: that is the harness's caller's bug.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "json" => json_push(data),
        "prom_text" => pushgateway_push(data, false),
        "prom_proto" => pushgateway_push(data, true),
        "otlp_proto" => otlp_export(data),
        "otlp_json" => otlp_json_export(data),
        "influx" => influx_write(data),
        "statsd" => statsd_datagram(data),
        "query" => query_params(data),
        "promql" => promql(data),
        "rules" => rule_file(data),
        "config" => config_file(data),
        "sketch" => stored_sketch(data),
        "block" => sealed_block(data),
        "ack_link" => ack_link(data),
        other => panic!("no fuzz target {other:?}; the targets are {TARGETS:?}"),
    }
}

fn aggregator() -> Aggregator {
    let settings = AggregatorSettings {
        interval_s: 10,
        lateness_intervals: 2,
        future_intervals: 1,
        max_series: 1000,
        idle_after_s: 3600,
        cumulative_idle_after_s: 86_400,
    };
    Aggregator::new(settings, 0)
}

/// A fresh aggregator and arena, as the daemon has at start; one per input, so a run
/// depends on its input only.
struct Sandbox {
    aggregator: Aggregator,
    limits: Limits,
    bump: Bump,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox { aggregator: aggregator(), limits: Limits::default(), bump: Bump::new() }
    }

    /// A batch as the HTTP handlers open one.
    fn batch(&self, protocol: &'static str) -> IngestBatch<'_> {
        IngestBatch::new(&self.aggregator, &self.limits, &self.bump, protocol, NOW_MS, Scratch::default())
    }

    /// Finishes `batch` and checks what it left in the aggregator.
    fn check(&self, batch: IngestBatch<'_>) {
        batch.finish();
        check_drained(&self.aggregator);
    }
}

/// Everything accepted must be storable: finite counts and sums, no NaN, sketches that encode
/// and decode to the same count. A NaN that got through would be quarantined by the store,
/// which is a loss the client was never told of.
fn check_drained(aggregator: &Aggregator) {
    let batch = aggregator.drain(i64::MAX, NOW_MS);
    for delta in &batch.rollups {
        let r = &delta.rollup;
        assert!(r.count.is_finite() && r.count >= 0.0, "count {} stored", r.count);
        assert!(r.sum.is_finite(), "sum {} stored", r.sum);
        assert!(![r.min, r.max, r.last].iter().any(|v| v.is_nan()), "NaN min, max or last stored: {r:?}");
        if let Some(sketch) = &r.sketch {
            let decoded = Sketch::decode(&sketch.to_blob()).expect("a sketch perfwatch wrote reads back");
            assert_eq!(decoded.count(), sketch.count(), "the sketch round trips");
        }
    }
    for change in &batch.cumulative {
        if let Some(values) = &change.values {
            // Bucket bounds include +Inf; a NaN would poison every later delta.
            assert!(!values.iter().any(|v| v.is_nan()), "cumulative state {values:?} stored");
        }
    }
}

/// The first line, and the bytes after it: for targets that take a path or parameter and a body.
fn split_first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

fn json_push(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let sandbox = Sandbox::new();
    let mut batch = sandbox.batch("json");
    if let Ok(outcome) = json::parse(text, &mut batch) {
        assert!(outcome.errors.len() as u64 <= outcome.rejected, "more errors than rejections");
    }
    sandbox.check(batch);
}

/// First line: the grouping path after `/metrics/`; the rest: the exposition body, pushed
/// twice so the second push is counted against the first's cumulative totals.
fn pushgateway_push(data: &[u8], protobuf: bool) {
    let (tail, body) = split_first_line(data);
    let Ok(grouping) = GroupingKey::parse(&String::from_utf8_lossy(tail)) else { return };
    let sandbox = Sandbox::new();
    let families = if protobuf {
        prom_proto::parse(body, &sandbox.bump)
    } else {
        let Ok(text) = std::str::from_utf8(body) else { return };
        prom_text::parse(text, &sandbox.bump)
    };
    let Ok(families) = families else { return };
    let pairs: Vec<(&str, &str)> = grouping.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut batch = sandbox.batch("prometheus");
    for _ in 0..2 {
        pushgateway::apply(&families, &pairs, grouping.hash, &mut batch);
    }
    sandbox.check(batch);
}

fn otlp_export(data: &[u8]) {
    let labels = ResourceLabels::default();
    let sandbox = Sandbox::new();
    let Ok(request) = otlp_view::decode(data, &sandbox.bump) else { return };
    let mut batch = sandbox.batch("otlp");
    for _ in 0..2 {
        otlp::ingest(&request, &mut batch, &labels);
    }
    sandbox.check(batch);
}

/// OTLP/JSON is carried over into protobuf, as the handler does.
fn otlp_json_export(data: &[u8]) {
    let Ok(mut request) = serde_json::from_slice::<ExportMetricsServiceRequest>(data) else { return };
    request.keep_one_of_each();
    otlp_export(&request.encode_to_vec());
}

/// First line: the `precision` parameter; the rest: the line protocol body.
fn influx_write(data: &[u8]) {
    let (precision, body) = split_first_line(data);
    let precision = std::str::from_utf8(precision).ok().filter(|p| !p.is_empty());
    let Some(precision) = Precision::parse(precision) else { return };
    let sandbox = Sandbox::new();
    let mut batch = sandbox.batch("influx");
    influx::ingest(body, precision, &mut batch);
    sandbox.check(batch);
}

fn statsd_datagram(data: &[u8]) {
    let sandbox = Sandbox::new();
    let mut batch = sandbox.batch("statsd");
    statsd::ingest_datagram(&mut batch, data, &mut Vec::new(), &mut None);
    sandbox.check(batch);
}

/// A URL query string, `&`-separated `name=value` pairs, taken as they are (not percent-decoded).
fn query_params(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let params: HashMap<String, String> =
        text.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let Ok(request) = perfwatch::query::params::parse_request(&params, NOW_MS / 1000) else { return };
    assert!(request.from_s < request.to_s, "an empty window passed");
    let tiers =
        [Tier { resolution_s: 10, retention_s: 86_400 }, Tier { resolution_s: 3600, retention_s: 86_400 * 400 }];
    perfwatch::query::plan::plan(request.from_s, request.to_s, &tiers, &[None, Some(NOW_MS / 1000 - 7200)]);
}

/// A PromQL expression as the Prometheus API takes it: parsed, checked and planned as an
/// instant and as a range query (what runs before anything is read).
fn promql(data: &[u8]) {
    use perfwatch::query::promql::{self, LOOKBACK_MS, Query};
    let Ok(text) = std::str::from_utf8(data) else { return };
    for step_ms in [None, Some(15_000)] {
        let query = Query {
            expr: text.to_owned(),
            start_ms: NOW_MS - 3_600_000,
            end_ms: NOW_MS,
            step_ms,
            lookback_ms: LOOKBACK_MS,
        };
        let _ = promql::check(&query);
    }
    let _ = promql::catalog::selectors(&[text.to_owned()]);
}

fn rule_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let routes = ["oncall".to_owned(), "slack".to_owned()];
    if let Err(errors) = perfwatch::rules::parse(text, "fuzz.yaml", Some(&routes)) {
        assert!(!errors.is_empty(), "a refused rule file must say why");
    }
}

fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = perfwatch::config::Config::parse(text, "fuzz.yaml");
}

/// A sealed block of tier 0 as read back from the database, possibly corrupt: its rows
/// written again read back the same.
fn sealed_block(data: &[u8]) {
    use perfwatch::store::block::{BlockWriter, rows};
    let read: Vec<_> = rows(data, 1_800_000_000, 10).map_while(Result::ok).collect();
    let mut writer = BlockWriter::new(1_800_000_000, 10);
    for row in &read {
        writer.push(row.start_s, &row.scalars, row.sketch).expect("rows read back are in order, inside the block");
    }
    let blob = writer.finish();
    let again: Vec<_> = rows(&blob, 1_800_000_000, 10).collect::<Result<_, _>>().expect("a written block reads back");
    assert_eq!(again.len(), read.len());
    for (a, b) in again.iter().zip(&read) {
        assert_eq!((a.start_s, a.scalars.last_ms, a.sketch), (b.start_s, b.scalars.last_ms, b.sketch));
        assert_eq!(a.scalars.sum.to_bits(), b.scalars.sum.to_bits());
    }
}

/// A sketch blob as read back from the database, possibly corrupt.
fn stored_sketch(data: &[u8]) {
    let Ok(sketch) = Sketch::decode(data) else { return };
    for q in [0.0, 0.5, 0.99, 1.0] {
        if let Some(v) = sketch.quantile(q) {
            assert!(!v.is_nan(), "quantile {q} is NaN");
        }
    }
    let again = Sketch::decode(&sketch.to_blob()).expect("a decoded sketch encodes to a readable one");
    assert_eq!(again.count(), sketch.count());
    let mut merged = sketch.clone();
    merged.merge(&again);
    let mut merged_encoded = sketch.clone();
    merged_encoded.merge_encoded(data).expect("a blob that decodes merges");
    assert_eq!(merged_encoded.count(), merged.count(), "merging the blob and the decoded sketch agree");
}

/// An acknowledge link's token, as a browser brings it back.
fn ack_link(data: &[u8]) {
    let key = perfwatch::notify::ack_link::AckKey::new(b"a fuzzing key of thirty-two bytes");
    let _ = key.verify(&String::from_utf8_lossy(data), NOW_MS / 1000);
}
