//! One shard of the in-memory series map: per series its unflushed interval deltas, the last
//! gauge level and any Pushgateway cumulative state. Callers hold the shard's lock only for the
//! few map operations here; nothing in this file blocks or does IO.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::batch::{CumulativeChange, FlushBatch, NewSeries, RollupDelta};
use super::rollup::{Rollup, saturating_add};
use crate::model::{MetricKind, SeriesId};

/// Series ids are already xxh3 hashes; hashing them again would only cost time.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _bytes: &[u8]) {
        unreachable!("IdHasher only hashes u64 series ids")
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

pub type IdMap<V> = HashMap<SeriesId, V, BuildHasherDefault<IdHasher>>;

pub struct SeriesState {
    pub key: Box<str>,
    pub kind: MetricKind,
    /// Whether the store has been told about this series since the process started.
    pub persisted: bool,
    pub last_seen_s: i64,
    /// Unflushed deltas by interval start, oldest first; nearly always one or two.
    pub pending: Vec<(i64, Rollup)>,
    /// Latest gauge value, across intervals, for StatsD's `+n`/`-n` gauge deltas.
    pub gauge_level: f64,
    pub cumulative: Option<Cumulative>,
    /// StatsD set members seen per interval, kept while the interval still takes samples.
    pub set_members: Vec<(i64, IdSet)>,
    /// Count and sum of every interval drained since the process started (the running totals
    /// /metrics re-exports as counters and summary `_count`/`_sum`).
    pub drained_count: f64,
    pub drained_sum: f64,
}

pub type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

pub struct Cumulative {
    pub group: u64,
    pub values: Vec<f64>,
    pub dirty: bool,
}

impl SeriesState {
    pub fn new(key: &str, kind: MetricKind, now_s: i64) -> SeriesState {
        SeriesState {
            key: key.into(),
            kind,
            persisted: false,
            last_seen_s: now_s,
            pending: Vec::new(),
            gauge_level: 0.0,
            cumulative: None,
            set_members: Vec::new(),
            drained_count: 0.0,
            drained_sum: 0.0,
        }
    }

    /// The member set of interval `start_s`, created on first use.
    pub fn set_members_at(&mut self, start_s: i64) -> &mut IdSet {
        let pos = match self.set_members.iter().position(|(s, _)| *s == start_s) {
            Some(pos) => pos,
            None => {
                self.set_members.push((start_s, IdSet::default()));
                self.set_members.len() - 1
            }
        };
        &mut self.set_members[pos].1
    }

    /// The delta rollup of interval `start_s`, created on first use.
    #[inline]
    pub fn rollup_at(&mut self, start_s: i64) -> &mut Rollup {
        self.last_seen_s = self.last_seen_s.max(start_s);
        let pos = match self.pending.iter().rposition(|(s, _)| *s <= start_s) {
            Some(pos) if self.pending[pos].0 == start_s => pos,
            Some(pos) => {
                self.pending.insert(pos + 1, (start_s, Rollup::empty(self.kind == MetricKind::Timing)));
                pos + 1
            }
            None => {
                self.pending.insert(0, (start_s, Rollup::empty(self.kind == MetricKind::Timing)));
                0
            }
        };
        &mut self.pending[pos].1
    }
}

#[derive(Default)]
pub struct Shard {
    pub series: IdMap<SeriesState>,
    /// Cumulative state removed by a Pushgateway DELETE, to be removed from the store too.
    pub deleted_cumulative: Vec<(SeriesId, u64)>,
}

/// Before when a series (or its cumulative state) counts as idle, unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    pub series_before_s: i64,
    pub cumulative_before_s: i64,
}

/// What draining a shard removed from memory (besides the batch contents).
pub struct DrainStats {
    pub evicted: usize,
}

impl Shard {
    /// Moves deltas of intervals before `upto_s` into `batch`, forgets set members of intervals
    /// before `floor_s` (they take no more samples), forgets cumulative state idle since before
    /// `idle.cumulative_before_s` (in the store too), and evicts series idle since before
    /// `idle.series_before_s` that hold nothing unflushed.
    pub fn drain_into(&mut self, batch: &mut FlushBatch, upto_s: i64, floor_s: i64, idle: Idle) -> DrainStats {
        for (series, group) in self.deleted_cumulative.drain(..) {
            batch.cumulative.push(CumulativeChange { series, group, values: None });
        }
        let before = self.series.len();
        self.series.retain(|id, state| {
            let n_closed = state.pending.iter().take_while(|(s, _)| *s < upto_s).count();
            if upto_s == i64::MAX {
                state.set_members.clear();
            } else {
                state.set_members.retain(|(s, _)| *s >= floor_s);
            }
            // Pushed since the last drain (dirty) is not idle, whatever interval it went into.
            if state.last_seen_s < idle.cumulative_before_s && state.cumulative.as_ref().is_some_and(|c| !c.dirty) {
                let group = state.cumulative.take().map_or(0, |c| c.group);
                batch.cumulative.push(CumulativeChange { series: *id, group, values: None });
            }
            let cumulative_dirty = state.cumulative.as_ref().is_some_and(|c| c.dirty);
            if (n_closed > 0 || cumulative_dirty) && !state.persisted {
                batch.new_series.push(NewSeries { id: *id, key: state.key.clone(), kind: state.kind });
                state.persisted = true;
            }
            // A cumulative push that added nothing leaves an empty rollup: nothing to store.
            for (start_s, rollup) in state.pending.drain(..n_closed).filter(|(_, rollup)| !rollup.is_empty()) {
                state.drained_count = saturating_add(state.drained_count, rollup.count);
                state.drained_sum = saturating_add(state.drained_sum, rollup.sum);
                batch.rollups.push(RollupDelta { series: *id, start_s, rollup });
            }
            if state.pending.is_empty() {
                state.pending = Vec::new(); // give the memory back between bursts
            }
            if let Some(cumulative) = state.cumulative.as_mut().filter(|c| c.dirty) {
                cumulative.dirty = false;
                batch.cumulative.push(CumulativeChange {
                    series: *id,
                    group: cumulative.group,
                    values: Some(cumulative.values.clone()),
                });
            }
            !(state.pending.is_empty()
                && state.cumulative.is_none()
                && state.set_members.is_empty()
                && state.last_seen_s < idle.series_before_s)
        });
        DrainStats { evicted: before - self.series.len() }
    }
}
