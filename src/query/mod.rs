//! Queries: a selector, a stat, a window and an optional step, answered from the store's tiers
//! plus what memory holds (open intervals and batches on their way to disk). Quantiles over
//! windows and across series come from merged sketches, never from averaged percentiles.

pub mod params;
pub mod plan;
pub mod promql;
pub mod selector;
pub mod stat;
pub(crate) mod time;
pub(crate) mod view;

use std::collections::{BTreeMap, HashMap};

use thiserror::Error;

use self::plan::{Segment, plan};
use self::selector::{Selector, SelectorError};
use self::stat::{Stat, StatError};
use crate::aggregate::rollup::Rollup;
use crate::aggregate::{Aggregator, Snapshot};
use crate::model::{Labels, MetricKind, SeriesId, SeriesKey};
use crate::store::reader::ReadTx;
use crate::store::tiers::align_down;
use crate::store::{Reader, StoreError};

/// The most points one query may return per series.
pub const MAX_POINTS: i64 = 11_000;

#[derive(Debug, Error)]
pub enum QueryError {
    #[error(transparent)]
    Selector(#[from] SelectorError),
    #[error(transparent)]
    Stat(#[from] StatError),
    #[error("{0}")]
    BadRequest(String),
    #[error("flushes kept committing while the read was taken; try again")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A PromQL evaluation's own failure, carried through `read_with_memory`.
    #[error(transparent)]
    PromQl(Box<promql::PromError>),
}

impl From<promql::PromError> for QueryError {
    fn from(err: promql::PromError) -> QueryError {
        match err {
            promql::PromError::Query(inner) => inner,
            other => QueryError::PromQl(Box::new(other)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub selector: Selector,
    pub stat: Stat,
    pub from_s: i64,
    pub to_s: i64,
    /// One point per step; `None`: the whole window is one point.
    pub step_s: Option<i64>,
    /// `None`: one result per series; `Some(labels)`: series merged per distinct value of
    /// those labels (empty: everything merged into one).
    pub group_by: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuerySeries {
    pub labels: Labels,
    /// (start of the period summarised, unix seconds; value)
    pub points: Vec<(i64, f64)>,
}

pub async fn execute(
    reader: &Reader,
    aggregator: &Aggregator,
    request: QueryRequest,
) -> Result<Vec<QuerySeries>, QueryError> {
    validate(&request)?;
    let (name, from_s, to_s) = (request.selector.name.clone(), request.from_s, request.to_s);
    let take = || aggregator.snapshot(&name, from_s, to_s);
    read_with_memory(reader, take, move |tx, snapshot| evaluate(tx, &request, snapshot)).await
}

/// How often a read is tried again when a flush committed between its memory snapshot and its
/// transaction; a flush commits once an interval, so a second try nearly always agrees.
const MAX_SNAPSHOT_TRIES: usize = 8;

/// Runs `work` on a memory snapshot from `take` and a read transaction that agree (see
/// [`Snapshot::agrees_with`]): the snapshot is taken first, and when the transaction already
/// sees a flush drained after it, both are taken again, so no sample counts twice.
pub(crate) async fn read_with_memory<T, F>(
    reader: &Reader,
    take: impl Fn() -> Snapshot,
    work: F,
) -> Result<T, QueryError>
where
    T: Send + 'static,
    F: FnOnce(&ReadTx<'_>, Snapshot) -> Result<T, QueryError> + Send + 'static,
{
    enum Attempt<T, F> {
        Done(T),
        Stale(F),
    }
    let mut work = work;
    for _ in 0..MAX_SNAPSHOT_TRIES {
        let snapshot = take();
        let attempt = reader
            .with_conn(move |conn| {
                conn.read(move |tx| {
                    if !snapshot.agrees_with(tx.last_flush_seq()?) {
                        return Ok(Attempt::Stale(work));
                    }
                    work(tx, snapshot).map(Attempt::Done)
                })
            })
            .await?;
        match attempt {
            Attempt::Done(value) => return Ok(value),
            Attempt::Stale(returned) => work = returned,
        }
    }
    Err(QueryError::Busy)
}

/// Whether the window is ordered and the step gives at most `MAX_POINTS` points.
pub(crate) fn validate(request: &QueryRequest) -> Result<(), QueryError> {
    if request.from_s >= request.to_s {
        return Err(QueryError::BadRequest(format!("from ({}) must be before to ({})", request.from_s, request.to_s)));
    }
    if let Some(step) = request.step_s {
        if step <= 0 || step > time::MAX_TIME_S - time::MIN_TIME_S {
            return Err(QueryError::BadRequest("step must be positive and below 10,000 years, e.g. 60s or 5m".into()));
        }
        // i128: a window and step from the request cannot overflow the count.
        let n_points = (i128::from(request.to_s) - i128::from(request.from_s)) / i128::from(step) + 1;
        if n_points > i128::from(MAX_POINTS) {
            return Err(QueryError::BadRequest(format!(
                "{n_points} points per series is more than the {MAX_POINTS} allowed; use a larger step or a shorter window"
            )));
        }
    }
    Ok(())
}

fn evaluate(
    tx: &crate::store::reader::ReadTx<'_>,
    request: &QueryRequest,
    snapshot: Snapshot,
) -> Result<Vec<QuerySeries>, QueryError> {
    let buckets = Buckets::new(request.from_s, request.to_s, request.step_s);
    let groups = collect(tx, &request.selector, &buckets, request.group_by.as_deref(), Some(request.stat), &snapshot)?;
    let mut out = Vec::new();
    for group in groups {
        let points: Vec<(i64, f64)> = group
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(idx, rollup)| {
                let (start, end) = buckets.range(idx);
                let value = request.stat.evaluate(rollup.as_ref()?, group.kind, (end - start) as f64)?;
                Some((start, value))
            })
            .collect();
        if !points.is_empty() {
            out.push(QuerySeries { labels: group.labels, points });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// One group's rollup merged over a whole window.
#[derive(Debug, Clone)]
pub struct GroupRollup {
    pub labels: Labels,
    pub rollup: Rollup,
    pub kind: MetricKind,
}

/// A group's rollups per bucket.
struct Collected {
    labels: Labels,
    kind: MetricKind,
    buckets: Vec<Option<Rollup>>,
}

/// The heart of every read: which series match, how they group, and their rollups per bucket
/// from the right tiers, memory and batches in flight (each counted exactly once).
fn collect(
    tx: &crate::store::reader::ReadTx<'_>,
    selector: &Selector,
    buckets: &Buckets,
    group_by: Option<&[String]>,
    stat: Option<Stat>,
    snapshot: &Snapshot,
) -> Result<Vec<Collected>, QueryError> {
    let committed_seq = tx.last_flush_seq()?;
    let watermarks = tx.watermarks()?;

    // Every series the selector matches, stored or only in memory so far.
    let mut candidates: BTreeMap<SeriesId, (String, MetricKind)> = BTreeMap::new();
    for stored in tx.series_named(&selector.name)? {
        candidates.insert(stored.id, (stored.key, stored.kind));
    }
    for series in &snapshot.series {
        candidates.entry(series.id).or_insert_with(|| (series.key.to_string(), series.kind));
    }
    let mut groups: Vec<Collected> = Vec::new();
    let mut group_index: HashMap<Labels, usize> = HashMap::new();
    let mut matched: HashMap<SeriesId, usize> = HashMap::new();
    for (id, (key, kind)) in candidates {
        let Some(parsed) = SeriesKey::parse(&key) else { continue };
        if parsed.name != selector.name || !selector.matches(&parsed.labels) {
            continue;
        }
        if let Some(stat) = stat {
            stat.check_kind(&selector.name, kind)?;
        }
        let group_labels = match group_by {
            Some(names) => parsed.labels.project(names),
            None => parsed.labels.clone(),
        };
        let group = *group_index.entry(group_labels.clone()).or_insert_with(|| {
            groups.push(Collected { labels: group_labels, kind, buckets: vec![None; buckets.len()] });
            groups.len() - 1
        });
        matched.insert(id, group);
    }

    let mut add = |group: usize, start_s: i64, rollup: &Rollup| {
        if start_s < buckets.from_s || start_s >= buckets.to_s {
            return;
        }
        match &mut groups[group].buckets[buckets.index_of(start_s)] {
            Some(merged) => merged.merge(rollup),
            slot @ None => *slot = Some(rollup.clone()),
        }
    };
    let segments = buckets.segments(tx.tiers(), &watermarks);
    for (id, group) in &matched {
        for segment in &segments {
            for (start_s, rollup) in tx.rollups(segment.tier, *id, segment.from_s, segment.to_s)? {
                add(*group, start_s, &rollup);
            }
        }
    }
    for series in &snapshot.series {
        if let Some(group) = matched.get(&series.id) {
            for (start_s, rollup) in &series.deltas {
                add(*group, *start_s, rollup);
            }
        }
    }
    for batch in snapshot.in_flight.iter().filter(|b| b.seq > committed_seq) {
        for delta in &batch.rollups {
            if let Some(group) = matched.get(&delta.series) {
                add(*group, delta.start_s, &delta.rollup);
            }
        }
    }
    Ok(groups)
}

/// The periods a query reports on: one window, or step-aligned buckets clipped to the window.
struct Buckets {
    from_s: i64,
    to_s: i64,
    step_s: Option<i64>,
    first_s: i64,
}

impl Buckets {
    fn new(from_s: i64, to_s: i64, step_s: Option<i64>) -> Buckets {
        let first_s = step_s.map_or(from_s, |step| align_down(from_s, step));
        Buckets { from_s, to_s, step_s, first_s }
    }

    fn len(&self) -> usize {
        match self.step_s {
            None => 1,
            Some(step) => ((self.to_s - 1 - self.first_s) / step + 1) as usize,
        }
    }

    fn index_of(&self, ts_s: i64) -> usize {
        match self.step_s {
            None => 0,
            Some(step) => ((align_down(ts_s, step) - self.first_s) / step) as usize,
        }
    }

    fn range(&self, idx: usize) -> (i64, i64) {
        match self.step_s {
            None => (self.from_s, self.to_s),
            Some(step) => {
                let start = self.first_s + idx as i64 * step;
                (start.max(self.from_s), (start + step).min(self.to_s))
            }
        }
    }

    /// Tier segments for every bucket, adjacent ones of the same tier joined into one read.
    fn segments(&self, tiers: &[crate::store::tiers::Tier], watermarks: &[Option<i64>]) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        for idx in 0..self.len() {
            let (start, end) = self.range(idx);
            for segment in plan(start, end, tiers, watermarks) {
                match out.last_mut() {
                    Some(last) if last.tier == segment.tier && last.to_s == segment.from_s => last.to_s = segment.to_s,
                    _ => out.push(segment),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::aggregate::{AggregatorSettings, Observation, SeriesRef};
    use crate::store::tiers::Tier;
    use crate::store::{Store, StoreSettings};

    /// Defect 7 of issue 13: a memory snapshot taken before a flush committed, read with a
    /// transaction that sees the commit, counts the flushed deltas twice. The read notices and
    /// takes the snapshot again.
    #[tokio::test]
    async fn a_snapshot_older_than_the_committed_flush_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let tiers = vec![Tier { resolution_s: 10, retention_s: 3600 }];
        let store = Store::open(StoreSettings { path: dir.path().join("q.db"), tiers, n_readers: 1 }).unwrap();
        let settings = AggregatorSettings {
            interval_s: 10,
            lateness_intervals: 2,
            future_intervals: 1,
            max_series: 10,
            idle_after_s: 3600,
            cumulative_idle_after_s: 7200,
        };
        let aggregator = Arc::new(Aggregator::new(settings, 0));
        let now_ms = crate::clock::now_ms();
        let series = SeriesRef { key: "lat", id: crate::model::series_id("lat"), kind: MetricKind::Timing };
        let start_s = align_down(now_ms / 1000, 10);
        aggregator.record(series, start_s, now_ms, Observation::Timings { values: &[0.1], weight: 1.0 }).unwrap();
        // Taken, then the flush commits before the read: this snapshot still holds the sample.
        let stale = Mutex::new(Some(aggregator.snapshot("lat", 0, i64::MAX)));
        store.handle.flush(aggregator.drain(i64::MAX, now_ms)).await.unwrap();

        let takes = Arc::new(AtomicUsize::new(0));
        let (counted, memory) = (takes.clone(), aggregator.clone());
        let take = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let stale = stale.lock().unwrap().take();
            stale.unwrap_or_else(|| memory.snapshot("lat", 0, i64::MAX))
        };
        let used =
            read_with_memory(&store.reader, take, |tx, snapshot| Ok((snapshot.drained_upto, tx.last_flush_seq()?)))
                .await
                .unwrap();
        assert_eq!(takes.load(Ordering::SeqCst), 2, "the stale snapshot was refused and taken again");
        assert_eq!(used, (Some(1), 1), "the snapshot used was taken after the drain of flush 1, which the read sees");
    }
}
