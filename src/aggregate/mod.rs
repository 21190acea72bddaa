//! The aggregator: every accepted sample lands here, in the delta rollup of its series and
//! interval, until a flush hands closed intervals to the store.
//!
//! Series live in [`N_SHARDS`] mutex-guarded shards picked by series id, so both cores ingest
//! in parallel; a lock is held for one series update and never across IO or `.await`. Queries
//! read a consistent snapshot of memory plus the batches drained but not yet committed.

pub mod batch;
pub mod rollup;
mod shard;
pub mod sketch;

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use thiserror::Error;

use self::batch::FlushBatch;
use self::rollup::Rollup;
use self::shard::{Cumulative, SeriesState, Shard};
use crate::model::{MetricKind, SeriesId, interval_start};

pub const N_SHARDS: usize = 64;

/// How the aggregator treats time and size.
#[derive(Debug, Clone)]
pub struct AggregatorSettings {
    pub interval_s: i64,
    /// Intervals behind the current one that still accept samples.
    pub lateness_intervals: i64,
    /// Intervals ahead of the current one a timestamp may claim (clock skew).
    pub future_intervals: i64,
    pub max_series: usize,
    /// Series with nothing unflushed and no sample for this long leave memory.
    pub idle_after_s: i64,
    /// Cumulative state (Pushgateway groups, OTLP cumulative streams) with no push for this
    /// long is forgotten, in memory and on disk; the stream's next push counts whole, as a new
    /// one's does.
    pub cumulative_idle_after_s: i64,
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum RecordError {
    #[error("timestamp {ts_ms} ms is older than the allowed lateness ({lateness_s} s before the current interval)")]
    TooLate { ts_ms: i64, lateness_s: i64 },
    #[error("timestamp {ts_ms} ms is more than {ahead_s} s in the future")]
    TooEarly { ts_ms: i64, ahead_s: i64 },
    #[error("series {key} is a {existing}, not a {wanted}; use another metric name")]
    KindMismatch { key: String, existing: MetricKind, wanted: MetricKind },
    #[error(
        "active series limit of {limit} reached (limits.max_series): new series are refused, existing ones keep working"
    )]
    TooManySeries { limit: usize },
    #[error("series id collision between {key} and an existing series; rename one of them")]
    Collision { key: String },
}

/// One update to a series.
#[derive(Debug, Clone, Copy)]
pub enum Observation<'a> {
    /// Timing values in seconds, each observed `weight` times (1 / sample rate).
    Timings {
        values: &'a [f64],
        weight: f64,
    },
    /// A counter increment, already multiplied out by any sample rate.
    Increment(f64),
    /// A signed counter change: StatsD counters may be decremented (`decr`).
    CounterDelta(f64),
    Gauge(f64),
    /// Gauge readings in the order they were written (a run of Influx points of one series):
    /// each is observed, the last is the level.
    Gauges(&'a [f64]),
    /// StatsD `+n` / `-n`: moves the gauge from its last level.
    GaugeDelta(f64),
    /// A histogram's new observations (OTLP delta histograms): count and sum exactly, each
    /// bucket's count at its representative value.
    Buckets {
        count: f64,
        sum: f64,
        buckets: &'a [(f64, u64)],
    },
    /// A StatsD set member (its hash): counts 1 the first time it is seen in an interval, so a
    /// set series is a counter of unique members per interval.
    SetMember(u64),
}

/// A series as the ingest side names it: canonical key, its id and kind.
#[derive(Debug, Clone, Copy)]
pub struct SeriesRef<'a> {
    pub key: &'a str,
    pub id: SeriesId,
    pub kind: MetricKind,
}

/// What memory holds for one series that a query asked about.
#[derive(Debug, Clone)]
pub struct SeriesSnapshot {
    pub id: SeriesId,
    pub key: Box<str>,
    pub kind: MetricKind,
    pub deltas: Vec<(i64, Rollup)>,
}

/// A series' running totals, as [`Aggregator::totals`] reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTotals {
    pub key: Box<str>,
    pub kind: MetricKind,
    /// Samples (timings) or increments (counters) since the process started.
    pub count: f64,
    /// Their sum: a counter's total, a timing's summed values.
    pub sum: f64,
    /// A gauge's latest level.
    pub level: f64,
}

/// Memory's part of a query: unflushed deltas plus batches on their way to the store.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub series: Vec<SeriesSnapshot>,
    pub in_flight: Vec<Arc<FlushBatch>>,
    /// The last flush sequence drained before the snapshot (`None`: no memory was read). A
    /// read transaction that sees a later one committed would count its rows twice, once on
    /// disk and once in `series`; see [`Snapshot::agrees_with`].
    pub drained_upto: Option<u64>,
}

impl Snapshot {
    /// Whether this snapshot and a read transaction that sees flushes up to `committed_seq`
    /// count every sample exactly once: no batch drained after the snapshot may be committed in
    /// the transaction's view.
    pub fn agrees_with(&self, committed_seq: u64) -> bool {
        self.drained_upto.is_none_or(|drained| committed_seq <= drained)
    }
}

pub struct Aggregator {
    settings: AggregatorSettings,
    shards: Box<[Mutex<Shard>]>,
    n_series: AtomicUsize,
    /// Raised by each flush before it drains; samples below it are refused under the shard
    /// lock, so nothing can land in an interval the downsampler may already have closed.
    floor_s: AtomicI64,
    /// Drains take it for writing, snapshots for reading: a snapshot sees a batch either in
    /// the shards or in `in_flight`, never in both or neither.
    epoch: RwLock<()>,
    in_flight: Mutex<Vec<Arc<FlushBatch>>>,
    next_seq: AtomicU64,
}

impl Aggregator {
    /// `last_seq` is the last flush sequence the store committed.
    pub fn new(settings: AggregatorSettings, last_seq: u64) -> Aggregator {
        Aggregator {
            settings,
            shards: (0..N_SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            n_series: AtomicUsize::new(0),
            floor_s: AtomicI64::new(i64::MIN),
            epoch: RwLock::new(()),
            in_flight: Mutex::new(Vec::new()),
            next_seq: AtomicU64::new(last_seq + 1),
        }
    }

    pub fn settings(&self) -> &AggregatorSettings {
        &self.settings
    }

    pub fn n_series(&self) -> usize {
        self.n_series.load(Ordering::Relaxed)
    }

    /// The interval a sample at `ts_ms` goes into, or why it cannot be taken at `now_ms`.
    pub fn admit(&self, ts_ms: i64, now_ms: i64) -> Result<i64, RecordError> {
        let interval = self.settings.interval_s;
        let start = interval_start(ts_ms, interval);
        let current = interval_start(now_ms, interval);
        if start < current - self.settings.lateness_intervals * interval {
            return Err(RecordError::TooLate { ts_ms, lateness_s: self.settings.lateness_intervals * interval });
        }
        if start > current + self.settings.future_intervals * interval {
            return Err(RecordError::TooEarly { ts_ms, ahead_s: self.settings.future_intervals * interval });
        }
        Ok(start)
    }

    /// Adds one observation to `series` in interval `start_s` (from [`Aggregator::admit`]).
    pub fn record(
        &self,
        series: SeriesRef<'_>,
        start_s: i64,
        ts_ms: i64,
        obs: Observation<'_>,
    ) -> Result<(), RecordError> {
        let mut shard = self.shard(series.id);
        let state = self.state_mut(&mut shard, series, start_s)?;
        apply(state, start_s, ts_ms, obs);
        Ok(())
    }

    /// Replaces the series' cumulative state by `values` and lets `apply_delta` turn the
    /// previous and new values into this interval's delta, all under one lock so the delta and
    /// the state reach the store together.
    pub fn record_cumulative(
        &self,
        series: SeriesRef<'_>,
        group: u64,
        start_s: i64,
        values: &[f64],
        apply_delta: impl FnOnce(Option<&[f64]>, &[f64], &mut Rollup),
    ) -> Result<(), RecordError> {
        let mut shard = self.shard(series.id);
        let state = self.state_mut(&mut shard, series, start_s)?;
        let previous = state.cumulative.take();
        // Another source's totals (another Pushgateway group, or OTLP) are not this one's.
        let prev_values = previous.as_ref().filter(|c| c.group == group).map(|c| c.values.as_slice());
        apply_delta(prev_values, values, state.rollup_at(start_s));
        let mut reuse = previous.map(|c| c.values).unwrap_or_default();
        reuse.clear();
        reuse.extend_from_slice(values);
        state.cumulative = Some(Cumulative { group, values: reuse, dirty: true });
        Ok(())
    }

    /// Forgets the cumulative state of every series pushed under `group` (Pushgateway DELETE):
    /// the next push of those series counts from zero again. Returns how many were forgotten.
    pub fn forget_group(&self, group: u64) -> usize {
        let mut n_forgotten = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let mut removed = Vec::new();
            for (id, state) in shard.series.iter_mut() {
                if state.cumulative.as_ref().is_some_and(|c| c.group == group) {
                    state.cumulative = None;
                    removed.push((*id, group));
                }
            }
            n_forgotten += removed.len();
            shard.deleted_cumulative.extend(removed);
        }
        n_forgotten
    }

    /// Puts back cumulative state the store kept across a restart, last pushed at
    /// `updated_s`.
    pub fn restore_cumulative(&self, series: SeriesRef<'_>, group: u64, values: Vec<f64>, updated_s: i64) {
        let mut shard = self.shard(series.id);
        let state = shard.series.entry(series.id).or_insert_with(|| {
            self.n_series.fetch_add(1, Ordering::Relaxed);
            let mut state = SeriesState::new(series.key, series.kind, updated_s);
            state.persisted = true;
            state
        });
        state.cumulative = Some(Cumulative { group, values, dirty: false });
    }

    /// Drains every delta of intervals before `upto_s` (`i64::MAX` on shutdown) into a batch
    /// and records it as in flight until [`Aggregator::committed`].
    pub fn drain(&self, upto_s: i64, now_ms: i64) -> Arc<FlushBatch> {
        let interval = self.settings.interval_s;
        let floor = interval_start(now_ms, interval) - self.settings.lateness_intervals * interval;
        self.floor_s.fetch_max(floor, Ordering::SeqCst);
        let now_s = now_ms.div_euclid(1000);
        let idle = shard::Idle {
            series_before_s: now_s - self.settings.idle_after_s,
            cumulative_before_s: now_s - self.settings.cumulative_idle_after_s,
        };
        let _epoch = self.epoch.write().unwrap_or_else(|e| e.into_inner());
        let mut batch = FlushBatch {
            seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
            accept_floor_s: self.floor_s.load(Ordering::SeqCst),
            now_s,
            upto_s: upto_s.min(now_s + 1),
            ..FlushBatch::default()
        };
        let mut n_evicted = 0;
        for shard in self.shards.iter() {
            let floor = batch.accept_floor_s;
            n_evicted += lock(shard).drain_into(&mut batch, upto_s, floor, idle).evicted;
        }
        self.n_series.fetch_sub(n_evicted, Ordering::Relaxed);
        let batch = Arc::new(batch);
        lock(&self.in_flight).push(batch.clone());
        batch
    }

    /// The store committed every batch up to `seq`.
    pub fn committed(&self, seq: u64) {
        lock(&self.in_flight).retain(|batch| batch.seq > seq);
    }

    /// Unflushed deltas of series named `name` in `[from_s, to_s)`, and in-flight batches.
    pub fn snapshot(&self, name: &str, from_s: i64, to_s: i64) -> Snapshot {
        self.snapshot_of(&[name], from_s, to_s)
    }

    /// [`Aggregator::snapshot`] of several metrics in one pass over the shards.
    pub fn snapshot_of(&self, names: &[impl AsRef<str>], from_s: i64, to_s: i64) -> Snapshot {
        self.snapshot_where(|key| names.iter().any(|name| key_has_name(key, name.as_ref())), from_s, to_s)
    }

    /// [`Aggregator::snapshot`] of every series whose canonical key `wanted` accepts.
    pub fn snapshot_where(&self, wanted: impl Fn(&str) -> bool, from_s: i64, to_s: i64) -> Snapshot {
        let _epoch = self.epoch.read().unwrap_or_else(|e| e.into_inner());
        let mut snapshot = Snapshot::default();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for (id, state) in &shard.series {
                if !wanted(&state.key) {
                    continue;
                }
                let deltas: Vec<(i64, Rollup)> =
                    state.pending.iter().filter(|(s, _)| *s >= from_s && *s < to_s).cloned().collect();
                snapshot.series.push(SeriesSnapshot { id: *id, key: state.key.clone(), kind: state.kind, deltas });
            }
        }
        snapshot.in_flight = lock(&self.in_flight).clone();
        // Under the epoch lock: no drain runs between reading the shards and this.
        snapshot.drained_upto = Some(self.next_seq.load(Ordering::SeqCst).saturating_sub(1));
        snapshot
    }

    /// Names, kinds and series counts of everything in memory.
    pub fn series_keys(&self) -> Vec<(SeriesId, Box<str>, MetricKind)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            out.extend(shard.series.iter().map(|(id, s)| (*id, s.key.clone(), s.kind)));
        }
        out
    }

    /// Every series in memory with its running totals since the process started (drained
    /// intervals plus the ones still open) and, for gauges, the latest level.
    pub fn totals(&self) -> Vec<SeriesTotals> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            out.extend(shard.series.values().map(|s| SeriesTotals {
                key: s.key.clone(),
                kind: s.kind,
                count: s.drained_count + s.pending.iter().map(|(_, r)| r.count).sum::<f64>(),
                sum: s.drained_sum + s.pending.iter().map(|(_, r)| r.sum).sum::<f64>(),
                level: s.gauge_level,
            }));
        }
        out
    }

    /// Heap bytes held by unflushed rollups (sketch bins dominate), for the memory gauge.
    pub fn rollup_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                lock(shard)
                    .series
                    .values()
                    .map(|s| s.pending.iter().map(|(_, r)| r.heap_bytes()).sum::<usize>())
                    .sum::<usize>()
            })
            .sum()
    }

    fn shard(&self, id: SeriesId) -> MutexGuard<'_, Shard> {
        // Middle bits: the map uses the low bits for buckets and the top ones for tags.
        lock(&self.shards[(id >> 32) as usize % N_SHARDS])
    }

    fn state_mut<'s>(
        &self,
        shard: &'s mut Shard,
        series: SeriesRef<'_>,
        start_s: i64,
    ) -> Result<&'s mut SeriesState, RecordError> {
        if start_s < self.floor_s.load(Ordering::SeqCst) {
            return Err(RecordError::TooLate {
                ts_ms: start_s * 1000,
                lateness_s: self.settings.lateness_intervals * self.settings.interval_s,
            });
        }
        let state = match shard.series.entry(series.id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                if self.n_series.fetch_add(1, Ordering::Relaxed) >= self.settings.max_series {
                    self.n_series.fetch_sub(1, Ordering::Relaxed);
                    return Err(RecordError::TooManySeries { limit: self.settings.max_series });
                }
                entry.insert(SeriesState::new(series.key, series.kind, start_s))
            }
        };
        if *state.key != *series.key {
            return Err(RecordError::Collision { key: series.key.to_owned() });
        }
        if state.kind != series.kind {
            return Err(RecordError::KindMismatch {
                key: series.key.to_owned(),
                existing: state.kind,
                wanted: series.kind,
            });
        }
        Ok(state)
    }
}

#[inline]
fn apply(state: &mut SeriesState, start_s: i64, ts_ms: i64, obs: Observation<'_>) {
    match obs {
        Observation::Timings { values, weight } => {
            let rollup = state.rollup_at(start_s);
            for value in values {
                rollup.observe(*value, weight, ts_ms);
            }
        }
        Observation::Buckets { count, sum, buckets } => {
            state.rollup_at(start_s).observe_buckets(count, sum, buckets.iter().copied(), ts_ms)
        }
        Observation::Increment(delta) | Observation::CounterDelta(delta) => {
            state.rollup_at(start_s).increment(delta, ts_ms)
        }
        Observation::Gauge(level) => {
            state.gauge_level = level;
            state.rollup_at(start_s).observe(level, 1.0, ts_ms);
        }
        Observation::Gauges(levels) => {
            let rollup = state.rollup_at(start_s);
            for level in levels {
                rollup.observe(*level, 1.0, ts_ms);
            }
            state.gauge_level = levels.last().copied().unwrap_or(state.gauge_level);
        }
        Observation::GaugeDelta(delta) => {
            let level = rollup::saturating_add(state.gauge_level, delta);
            state.gauge_level = level;
            state.rollup_at(start_s).observe(level, 1.0, ts_ms);
        }
        Observation::SetMember(member) => {
            if state.set_members_at(start_s).insert(member) {
                state.rollup_at(start_s).increment(1.0, ts_ms);
            }
        }
    }
}

/// Whether canonical `key` belongs to metric `name`.
pub fn key_has_name(key: &str, name: &str) -> bool {
    key.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with('{'))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a shard lock leaves plain data behind; keep serving.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
