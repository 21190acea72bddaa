//! Rule evaluation at scale: 1,000 rules (the load generator's benchmark set) over its 10,000
//! series with an hour of 10 s rollups in a real SQLite file, downsampled like a live one. One
//! cycle evaluates every group once through the scheduler (one shared view, as when all are due), alert-state writes included.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use perfwatch::aggregate::{Aggregator, AggregatorSettings, Observation, SeriesRef};
use perfwatch::loadgen::rules::rule_set;
use perfwatch::model::MetricKind;
use perfwatch::rules::scheduler::Scheduler;

mod common;
use common::{interval, key, kind};

const N_SERIES: usize = 10_000;
const N_RULES: usize = 1_000;
/// An hour of history: the absent rules look that far back.
const HISTORY_S: i64 = 3_600;

fn evaluation(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Half past a minute, so every run reads the same mix of 10 s and 1 m rows (a 5 m window
    // then spans three 10 s rows, four 1 m rows and three 10 s rows).
    let now = perfwatch::clock::now_s();
    let now = now - now.rem_euclid(60) + 30;
    let common::History { store, specs, seq, mut rng } =
        common::build(&runtime, dir.path().join("rules.db"), N_SERIES, HISTORY_S, now);

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
