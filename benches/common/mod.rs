//! What several benchmarks start from: the load generator's web-platform series with an hour
//! of 10 s rollups in a real SQLite file, downsampled like a live one.

use std::sync::Arc;

use perfwatch::aggregate::batch::{FlushBatch, NewSeries, RollupDelta};
use perfwatch::aggregate::rollup::Rollup;
use perfwatch::loadgen::workload::{SeriesSpec, catalog};
use perfwatch::model::{MetricKind, series_id};
use perfwatch::store::tiers::Tier;
use perfwatch::store::{Store, StoreSettings};
use rand::SeedableRng;
use rand::rngs::SmallRng;

/// The tiers the history is kept in: 10 s, 1 m and 1 h.
pub fn tiers() -> Vec<Tier> {
    vec![
        Tier { resolution_s: 10, retention_s: 1 << 40 },
        Tier { resolution_s: 60, retention_s: 1 << 40 },
        Tier { resolution_s: 3600, retention_s: 1 << 40 },
    ]
}

/// A store at `path` holding `n_series` series over the `history_s` before `now_s`, up to the
/// last interval (which memory would still hold in a live daemon between flushes).
#[allow(dead_code)] // each bench reads what it needs; the page bench only the file
pub struct History {
    pub store: Store,
    pub specs: Vec<(u64, SeriesSpec)>,
    /// The last flush committed: an aggregator starting from it agrees with every read.
    pub seq: u64,
    pub rng: SmallRng,
}

pub fn key(spec: &SeriesSpec) -> String {
    let mut labels: Vec<String> = spec.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort();
    format!("{}{{{}}}", spec.name, labels.join(","))
}

pub fn kind(spec: &SeriesSpec) -> MetricKind {
    MetricKind::parse(spec.kind()).expect("a known kind")
}

/// One 10 s interval of every series: ten observations per timing, like a busy service.
pub fn interval(specs: &[(u64, SeriesSpec)], start_s: i64, rng: &mut SmallRng) -> Vec<RollupDelta> {
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

/// Writes the history, then as many empty flushes as downsampling needs to catch up.
#[allow(dead_code)] // the PromQL bench builds its own series
pub fn build(
    runtime: &tokio::runtime::Runtime,
    path: std::path::PathBuf,
    n_series: usize,
    history_s: i64,
    now_s: i64,
) -> History {
    build_specs(runtime, path, catalog(n_series), history_s, now_s)
}

/// [`build`] of the series `specs`.
pub fn build_specs(
    runtime: &tokio::runtime::Runtime,
    path: std::path::PathBuf,
    specs: Vec<SeriesSpec>,
    history_s: i64,
    now_s: i64,
) -> History {
    let store = Store::open(StoreSettings { path, tiers: tiers(), n_readers: 2 }).unwrap();
    let specs: Vec<(u64, SeriesSpec)> = specs.into_iter().map(|s| (series_id(&key(&s)), s)).collect();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut seq = 0;
    for start_s in (now_s - history_s..now_s - 10).step_by(10) {
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
        let empty = FlushBatch { seq, accept_floor_s: now_s - 20, ..FlushBatch::default() };
        runtime.block_on(store.handle.flush(Arc::new(empty))).unwrap();
    }
    History { store, specs, seq, rng }
}
