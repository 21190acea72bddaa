//! No heap allocation per sample on the ingest hot path. Each format's request path as the
//! daemon runs it (HTTP aside) takes the load
//! generator's workload as a body of 100 entries and of 1,000 (about 1,000 and 10,000
//! observations), and OTLP as an SDK sends it by default (cumulative histograms, counters and
//! exponential histograms, 100 and 1,000 points of each), all of series that already exist;
//! Influx also as Telegraf writes it (a series per line, several fields, escapes, timestamps);
//! this thread's heap allocations are counted: ten times the samples must not mean more
//! allocations beyond the arena's few extra chunks. (OTLP/JSON is left out on purpose: serde
//! decodes it into owned messages first; docs/benchmarks.md says so.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bumpalo::Bump;
use perfwatch::aggregate::{Aggregator, AggregatorSettings};
use perfwatch::ingest::influx::{self, Precision};
use perfwatch::ingest::limits::Limits;
use perfwatch::ingest::otlp::{self, ResourceLabels};
use perfwatch::ingest::parse::{PushOutcome, json, otlp_view};
use perfwatch::ingest::sink::{IngestBatch, Scratch, recycle};
use perfwatch::ingest::statsd::ingest_line;
use perfwatch::loadgen::{encode, workload};
use rand::SeedableRng;
use rand::rngs::SmallRng;

/// Counts the heap allocations (and reallocations) each thread makes.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// One request's worth of a format: decode, map and record `body` into `batch`.
type Ingest = dyn for<'a> Fn(&'a [u8], &mut IngestBatch<'a>) -> PushOutcome;

/// A format's small and big body.
type Bodies = (Vec<u8>, Vec<u8>);

/// A format's bodies: the first 100 entries and the first 1,000 of the same workload (ten
/// values per timing), so the small one's samples are a prefix of the big one's.
fn bodies(encode: impl Fn(usize, &mut SmallRng) -> Vec<u8>) -> Bodies {
    (encode(100, &mut SmallRng::seed_from_u64(7)), encode(1_000, &mut SmallRng::seed_from_u64(7)))
}

/// Heap allocations of one request of `body`, after a first request of `warm_up` created
/// the series (and the sketches' bins). Each request gets a fresh arena, the stricter case:
/// the daemon lends each request its thread's arena, already grown.
fn allocations(aggregator: &Aggregator, ingest: &Ingest, warm_up: &[u8], body: &[u8]) -> u64 {
    let limits = Limits::default();
    let now_ms = 1_764_000_005_000;
    let run = |body: &[u8]| {
        let bump = Bump::new();
        let mut batch = IngestBatch::new(aggregator, &limits, &bump, "test", now_ms, Scratch::default());
        let outcome = ingest(body, &mut batch);
        batch.finish();
        assert_eq!(outcome.rejected, 0, "{:?}", outcome.errors.first());
        assert!(outcome.accepted > 0);
    };
    run(warm_up);
    let before = ALLOCATIONS.with(Cell::get);
    run(body);
    ALLOCATIONS.with(Cell::get) - before
}

/// What an OpenTelemetry SDK sends by default: cumulative histograms, counters and
/// exponential histograms, `n` points of each over `n` routes.
fn otlp_cumulative_body(n: usize) -> Vec<u8> {
    use perfwatch::ingest::parse::otlp_messages::*;
    use prost::Message;
    let attributes = |idx: usize| {
        let value = AnyValue { string_value: Some(format!("/route/{idx}")), ..Default::default() };
        vec![KeyValue { key: "http.route".into(), value: Some(value) }]
    };
    let (start, time) = (1_764_000_000_000_000_000, 1_764_000_005_000_000_000);
    let histogram = (0..n).map(|idx| HistogramDataPoint {
        attributes: attributes(idx),
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: 6,
        sum: Some(0.9),
        bucket_counts: vec![1, 2, 3, 0],
        explicit_bounds: vec![0.05, 0.1, 0.25],
    });
    let counter = (0..n).map(|idx| NumberDataPoint {
        attributes: attributes(idx),
        start_time_unix_nano: start,
        time_unix_nano: time,
        as_int: Some(40 + idx as i64),
        ..Default::default()
    });
    let exponential = (0..n).map(|idx| ExponentialHistogramDataPoint {
        attributes: attributes(idx),
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: 7,
        sum: Some(0.7),
        scale: 5,
        zero_count: 1,
        positive: Some(Buckets { offset: -110, bucket_counts: vec![1, 0, 2, 3] }),
        negative: None,
    });
    let metrics = vec![
        Metric {
            name: "http.server.request.duration".into(),
            unit: "s".into(),
            histogram: Some(Histogram { data_points: histogram.collect(), aggregation_temporality: CUMULATIVE }),
            ..Default::default()
        },
        Metric {
            name: "http.server.requests".into(),
            sum: Some(Sum { data_points: counter.collect(), aggregation_temporality: CUMULATIVE, is_monotonic: true }),
            ..Default::default()
        },
        Metric {
            name: "db.client.operation.duration".into(),
            unit: "s".into(),
            exponential_histogram: Some(ExponentialHistogram {
                data_points: exponential.collect(),
                aggregation_temporality: CUMULATIVE,
            }),
            ..Default::default()
        },
    ];
    let scope = ScopeMetrics { scope: None, metrics };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics { resource: None, scope_metrics: vec![scope] }],
    }
    .encode_to_vec()
}

/// What Telegraf sends: every line a different series, several fields, escapes, a
/// timestamp in nanoseconds; `n` lines.
fn telegraf_body(n: usize) -> Vec<u8> {
    let ts_ns = 1_764_000_005_000_000_000_i64;
    let mut out = String::new();
    for idx in 0..n {
        out += &format!(
            "cpu,host=web-{},cpu=cpu{},dc=eu\\ west usage_user={}.5,usage_system=2.25,usage_idle=96i,online=true {ts_ns}\n",
            idx / 8,
            idx % 8,
            idx % 50
        );
    }
    out.into_bytes()
}

fn aggregator() -> Aggregator {
    let settings = AggregatorSettings {
        interval_s: 10,
        lateness_intervals: 2,
        future_intervals: 1,
        max_series: 100_000,
        idle_after_s: 3600,
        cumulative_idle_after_s: 86_400,
    };
    Aggregator::new(settings, 0)
}

#[test]
fn ingest_allocates_nothing_per_sample() {
    let specs = workload::catalog(1_000);
    let labels: &'static ResourceLabels = Box::leak(Box::default());
    let json_ingest: &Ingest = &|body, batch| json::parse(std::str::from_utf8(body).unwrap(), batch).unwrap();
    let otlp_ingest: &Ingest =
        &|body, batch| otlp::ingest(&otlp_view::decode(body, batch.bump()).unwrap(), batch, labels);
    let influx_ingest: &Ingest = &|body, batch| influx::ingest(body, Precision::parse(None).unwrap(), batch);
    let statsd_ingest: &Ingest = &|body, batch| {
        let mut outcome = PushOutcome::default();
        let mut tags = recycle(Vec::new());
        for (idx, line) in std::str::from_utf8(body).unwrap().lines().enumerate() {
            let result = ingest_line(batch, line, &mut tags);
            outcome.tally(batch, idx, result, ToString::to_string);
        }
        outcome
    };
    let formats: [(&str, &Ingest, Bodies); 6] = [
        ("json", json_ingest, bodies(|n, rng| encode::json_body(&specs, 0, n, 10, rng).0.into_bytes())),
        ("otlp", otlp_ingest, bodies(|n, rng| encode::otlp_body(&specs, 0, n, 10, rng).0)),
        ("otlp cumulative", otlp_ingest, bodies(|n, _| otlp_cumulative_body(n))),
        ("influx", influx_ingest, bodies(|n, rng| encode::influx_body(&specs, 0, n, 10, rng).0.into_bytes())),
        ("influx as telegraf writes it", influx_ingest, bodies(|n, _| telegraf_body(n))),
        (
            "statsd",
            statsd_ingest,
            bodies(|n, rng| {
                let datagrams = encode::statsd_datagrams(&specs, 0, n * 10, usize::MAX, rng);
                datagrams.into_iter().next().unwrap().0
            }),
        ),
    ];
    for (name, ingest, (small, big)) in formats {
        let aggregator = aggregator();
        let for_small = allocations(&aggregator, ingest, &big, &small);
        let for_big = allocations(&aggregator, ingest, &big, &big);
        // Per-sample allocation would add hundreds; the arena adds a chunk per doubling.
        assert!(
            for_big <= for_small + 16,
            "{name}: {for_small} heap allocations for the small body, {for_big} for one ten times its size"
        );
        eprintln!("{name}: {for_small} heap allocations for the small body, {for_big} for ten times its size");
    }
}
