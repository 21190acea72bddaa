//! The cost of one flush: committing a batch of closed-interval rollups (timings with sketches,
//! counters) into a real SQLite file in WAL mode, as new rows and as merges into existing ones.

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use perfwatch::aggregate::batch::{FlushBatch, NewSeries, RollupDelta};
use perfwatch::aggregate::rollup::Rollup;
use perfwatch::model::MetricKind;
use perfwatch::store::tiers::Tier;
use perfwatch::store::{Store, StoreSettings};

const N_SERIES: u64 = 10_000;

fn batch(seq: u64, start_s: i64, with_series: bool) -> Arc<FlushBatch> {
    let rollups = (0..N_SERIES)
        .map(|series| {
            let timing = series % 2 == 0;
            let mut rollup = Rollup::empty(timing);
            for i in 0..20 {
                rollup.observe(0.001 * (1 + (series + i) % 200) as f64, 1.0, start_s * 1000);
            }
            RollupDelta { series, start_s, rollup }
        })
        .collect();
    let new_series = if with_series {
        (0..N_SERIES)
            .map(|id| NewSeries {
                id,
                key: format!("m{{i=\"{id}\"}}").into(),
                kind: if id % 2 == 0 { MetricKind::Timing } else { MetricKind::Counter },
            })
            .collect()
    } else {
        Vec::new()
    };
    Arc::new(FlushBatch {
        seq,
        accept_floor_s: start_s - 20,
        now_s: start_s,
        upto_s: start_s,
        new_series,
        rollups,
        cumulative: Vec::new(),
    })
}

fn flush(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tiers = vec![Tier { resolution_s: 10, retention_s: 1 << 40 }, Tier { resolution_s: 60, retention_s: 1 << 40 }];
    let store = Store::open(StoreSettings { path: dir.path().join("bench.db"), tiers, n_readers: 1 }).unwrap();
    let now = perfwatch::clock::now_s();
    let base = now - now.rem_euclid(60) - 86_400;
    runtime.block_on(store.handle.flush(batch(1, base, true))).unwrap();
    let mut seq = 1;
    let mut start = base;
    let mut group = c.benchmark_group("store_flush");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N_SERIES));
    group.bench_function("10k_new_rows", |b| {
        b.iter_batched(
            || {
                seq += 1;
                start += 10;
                batch(seq, start, false)
            },
            |batch| runtime.block_on(store.handle.flush(batch)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("10k_merged_rows", |b| {
        b.iter_batched(
            || {
                seq += 1;
                batch(seq, start, false)
            },
            |batch| runtime.block_on(store.handle.flush(batch)).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// A p99 over 24 h of one series at 1 m steps (1,440 points), and the whole day as one point,
/// after the day went through downsampling like a real one would.
fn query(c: &mut Criterion) {
    use perfwatch::aggregate::{Aggregator, AggregatorSettings};
    use perfwatch::query::{QueryRequest, execute, selector::Selector, stat::Stat};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tiers = vec![
        Tier { resolution_s: 10, retention_s: 1 << 40 },
        Tier { resolution_s: 60, retention_s: 1 << 40 },
        Tier { resolution_s: 3600, retention_s: 1 << 40 },
    ];
    let store = Store::open(StoreSettings { path: dir.path().join("query.db"), tiers, n_readers: 1 }).unwrap();
    let now = perfwatch::clock::now_s();
    let to = now - now.rem_euclid(3600);
    let from = to - 86_400;
    let key = "api_request_duration_seconds{endpoint=\"/vendors/:id\"}";
    let id = perfwatch::model::series_id(key);
    let rollups: Vec<RollupDelta> = (from..to)
        .step_by(10)
        .map(|start_s| {
            let mut rollup = Rollup::empty(true);
            for i in 0..50 {
                rollup.observe(0.002 + 0.001 * ((start_s / 10 + i) % 300) as f64, 1.0, start_s * 1000);
            }
            RollupDelta { series: id, start_s, rollup }
        })
        .collect();
    let day = FlushBatch {
        seq: 1,
        accept_floor_s: to,
        now_s: to,
        upto_s: to,
        new_series: vec![NewSeries { id, key: key.into(), kind: MetricKind::Timing }],
        rollups,
        cumulative: Vec::new(),
    };
    runtime.block_on(store.handle.flush(Arc::new(day))).unwrap();
    // Downsampling catches up a bounded amount per flush; empty flushes let it finish.
    for seq in 2..40 {
        let empty = FlushBatch { seq, accept_floor_s: to, ..FlushBatch::default() };
        runtime.block_on(store.handle.flush(Arc::new(empty))).unwrap();
    }
    let agg = Aggregator::new(
        AggregatorSettings {
            interval_s: 10,
            lateness_intervals: 2,
            future_intervals: 1,
            max_series: 10,
            idle_after_s: 3600,
            cumulative_idle_after_s: 86_400,
        },
        100,
    );
    let request = |step_s| QueryRequest {
        selector: Selector::parse("api_request_duration_seconds").unwrap(),
        stat: Stat::parse("p99").unwrap(),
        from_s: from,
        to_s: to,
        step_s,
        group_by: None,
    };
    let points = runtime.block_on(execute(&store.reader, &agg, request(Some(60)))).unwrap();
    assert_eq!(points[0].points.len(), 1440, "{:?}", &points[0].points[..5.min(points[0].points.len())]);
    let mut group = c.benchmark_group("query_24h_one_series");
    group.bench_function("p99_step_1m", |b| {
        b.iter(|| runtime.block_on(execute(&store.reader, &agg, request(Some(60)))).unwrap())
    });
    group.bench_function("p99_whole_day", |b| {
        b.iter(|| runtime.block_on(execute(&store.reader, &agg, request(None))).unwrap())
    });
    group.finish();
}

criterion_group!(benches, flush, query);
criterion_main!(benches);
