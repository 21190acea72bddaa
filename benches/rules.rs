//! Rule evaluation at scale: 1,000 rules (the load generator's benchmark set) over its 10,000
//! series with an hour of 10 s rollups in a real SQLite file, downsampled like a live one. One
//! cycle evaluates every group once through the scheduler (one shared view, as when all are due), alert-state writes included.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use perfwatch::aggregate::batch::{FlushBatch, NewSeries, RollupDelta};
use perfwatch::aggregate::rollup::Rollup;
use perfwatch::aggregate::{Aggregator, AggregatorSettings, Observation, SeriesRef};
use perfwatch::loadgen::rules::rule_set;
use perfwatch::loadgen::workload::{SeriesSpec, catalog};
use perfwatch::model::{MetricKind, series_id};
use perfwatch::rules::scheduler::Scheduler;
use perfwatch::store::tiers::Tier;
use perfwatch::store::{Store, StoreSettings};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const N_SERIES: usize = 10_000;
const N_RULES: usize = 1_000;
/// An hour of history: the absent rules look that far back.
const HISTORY_S: i64 = 3_600;

fn key(spec: &SeriesSpec) -> String {
    let mut labels: Vec<String> = spec.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort();
    format!("{}{{{}}}", spec.name, labels.join(","))
}

/// One 10 s interval of every series: ten observations per timing, like a busy service.
fn interval(specs: &[(u64, SeriesSpec)], start_s: i64, rng: &mut SmallRng) -> Vec<RollupDelta> {
    specs
        .iter()
        .map(|(id, spec)| {
            let mut rollup = Rollup::empty(spec.is_timing());
            for _ in 0..if spec.is_timing() { 10 } else { 1 } {
                let value = spec.sample(rng);
                match spec.kind() {
                    "counter" => rollup.increment(value, start_s * 1000),
                    _ => rollup.observe(value, 1.0, start_s * 1000),
                }
            }
            RollupDelta { series: *id, start_s, rollup }
        })
        .collect()
}

fn kind(spec: &SeriesSpec) -> MetricKind {
    MetricKind::parse(spec.kind()).expect("a known kind")
}

fn evaluation(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tiers = vec![
        Tier { resolution_s: 10, retention_s: 1 << 40 },
        Tier { resolution_s: 60, retention_s: 1 << 40 },
        Tier { resolution_s: 3600, retention_s: 1 << 40 },
    ];
    let store = Store::open(StoreSettings { path: dir.path().join("rules.db"), tiers, n_readers: 2 }).unwrap();
    let specs: Vec<(u64, SeriesSpec)> = catalog(N_SERIES).into_iter().map(|s| (series_id(&key(&s)), s)).collect();
    // Half past a minute, so every run reads the same mix of 10 s and 1 m rows (a 5 m window
    // then spans three 10 s rows, four 1 m rows and three 10 s rows).
    let now = perfwatch::clock::now_s();
    let now = now - now.rem_euclid(60) + 30;
    let mut rng = SmallRng::seed_from_u64(7);
    let mut seq = 0;
    // The store holds the hour up to the last interval, which memory still holds unflushed
    // (as it would in a live daemon between flushes).
    for start_s in (now - HISTORY_S..now - 10).step_by(10) {
        seq += 1;
        let new_series = if seq == 1 {
            specs.iter().map(|(id, s)| NewSeries { id: *id, key: key(s).into(), kind: kind(s) }).collect()
        } else {
            Vec::new()
        };
        let rollups = interval(&specs, start_s, &mut rng);
        let batch = FlushBatch {
            seq,
            accept_floor_s: start_s - 20,
            now_s: start_s,
            upto_s: start_s,
            new_series,
            rollups,
            cumulative: Vec::new(),
        };
        runtime.block_on(store.handle.flush(Arc::new(batch))).unwrap();
    }
    for _ in 0..200 {
        seq += 1;
        let empty = FlushBatch { seq, accept_floor_s: now - 20, ..FlushBatch::default() };
        runtime.block_on(store.handle.flush(Arc::new(empty))).unwrap();
    }

    let groups = perfwatch::rules::parse(&rule_set(N_RULES, N_SERIES), "bench.yaml", None).unwrap();
    let groups: Vec<Arc<_>> = groups.into_iter().map(Arc::new).collect();
    let aggregator = Arc::new(Aggregator::new(
        AggregatorSettings {
            interval_s: 10,
            lateness_intervals: 2,
            future_intervals: 1,
            max_series: 100_000,
            idle_after_s: 3600,
            cumulative_idle_after_s: 86_400,
        },
        seq, // the last flush the store committed: a snapshot then agrees with every read
    ));
    for ((id, spec), delta) in specs.iter().zip(interval(&specs, now - 10, &mut rng)) {
        let key = key(spec);
        let obs = match kind(spec) {
            MetricKind::Counter => Observation::Increment(delta.rollup.sum),
            MetricKind::Gauge => Observation::Gauge(delta.rollup.last),
            _ => Observation::Timings { values: &[delta.rollup.last], weight: 1.0 },
        };
        aggregator
            .record(SeriesRef { key: &key, id: *id, kind: kind(spec) }, now - 10, (now - 10) * 1000, obs)
            .unwrap();
    }
    // Notifications are grouped and queued as in the daemon (to the default `log` notifier,
    // whose sender is not running here).
    let config = perfwatch::config::Config::defaults();
    let (_delivery, delivery) =
        perfwatch::notify::delivery::Delivery::new(store.handle.clone(), store.reader.clone(), config.notifiers)
            .unwrap();
    let (mut scheduler, _handle) = runtime
        .block_on(Scheduler::new(
            groups.iter().map(|g| (**g).clone()).collect(),
            aggregator.clone(),
            store.reader.clone(),
            store.handle.clone(),
            config.routing,
            delivery,
            perfwatch::notify::ack_link::AckLinks {
                key: Arc::new(perfwatch::notify::ack_link::AckKey::new(b"bench")),
                base: "http://127.0.0.1:9464".into(),
            },
        ))
        .unwrap();
    let cycle = |scheduler: &mut Scheduler| runtime.block_on(scheduler.evaluate(&groups, now)).unwrap();
    // The first cycle creates every alert instance; later ones are the steady state.
    cycle(&mut scheduler);
    let mut group = c.benchmark_group("rules");
    group.sample_size(10);
    group.bench_function("1000_rules_10k_series_cycle", |b| b.iter(|| cycle(&mut scheduler)));
    group.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
