//! A consistent, shared view for evaluating many rules at once. Memory is snapshotted for every
//! metric the rules read in one pass, then everything is read in one transaction; each
//! metric's series list and each series' rollup over a window are read once and shared by
//! every rule (and every evaluation time) that needs them. A cycle of 1,000 rules thus reads
//! each series about once per distinct window instead of once per rule.

use std::collections::{BTreeSet, HashMap};

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::{Arc, Mutex};

use super::plan::plan;
use super::selector::{MatchOp, Selector};
use super::{GroupRollup, QueryError};
use crate::aggregate::rollup::Rollup;
use crate::aggregate::{Aggregator, Snapshot};
use crate::model::{Labels, MetricKind, SeriesId, SeriesKey};
use crate::store::Reader;
use crate::store::reader::ReadTx;

/// Runs `work` on a view of `reader` plus `aggregator`'s memory (if any) of the metrics
/// `names`, in a blocking thread, with series lists from `catalog` when given.
pub async fn with_view<T, F>(
    reader: &Reader,
    aggregator: Option<&Aggregator>,
    catalog: Option<&Arc<Catalog>>,
    names: &[String],
    work: F,
) -> Result<T, QueryError>
where
    T: Send + 'static,
    F: FnOnce(&mut View<'_, '_>) -> Result<T, QueryError> + Send + 'static,
{
    let take = || aggregator.map(|a| a.snapshot_of(names, i64::MIN, i64::MAX)).unwrap_or_default();
    let catalog = catalog.cloned();
    super::read_with_memory(reader, take, move |tx, snapshot| work(&mut View::new(tx, snapshot, catalog)?)).await
}

/// A series as rules see it.
#[derive(Clone)]
struct Entry {
    id: SeriesId,
    labels: Labels,
    kind: MetricKind,
}

/// The series of one metric, with posting lists so a selector such as `{instance="web-7"}`
/// visits its few series instead of all of the metric's.
#[derive(Default)]
struct Metric {
    entries: Vec<Entry>,
    ids: FxHashSet<SeriesId>,
    postings: HashMap<(String, String), Vec<usize>>,
}

/// Series lists that outlive one view, for a caller that evaluates again and again (the rule
/// scheduler): parsing every key of every metric each cycle is a good part of its cost.
/// Series rows are never deleted, so a metric's list is current while its stored count is.
#[derive(Default)]
pub struct Catalog(Mutex<HashMap<String, (usize, Arc<Metric>)>>);

impl Catalog {
    fn get(&self, name: &str, count: usize) -> Option<Arc<Metric>> {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cached.get(name).filter(|(n, _)| *n == count).map(|(_, metric)| metric.clone())
    }

    fn put(&self, name: &str, count: usize, metric: Arc<Metric>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), (count, metric));
    }
}

impl Metric {
    fn new(entries: Vec<Entry>) -> Metric {
        let mut postings: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (idx, entry) in entries.iter().enumerate() {
            for (label, value) in entry.labels.iter() {
                postings.entry((label.to_owned(), value.to_owned())).or_default().push(idx);
            }
        }
        let ids = entries.iter().map(|e| e.id).collect();
        Metric { entries, ids, postings }
    }

    /// The entries `selector` matches.
    fn matching<'m>(&'m self, selector: &'m Selector) -> impl Iterator<Item = &'m Entry> + 'm {
        // The shortest posting list of the selector's equality matchers bounds the candidates.
        let narrowest = selector
            .matchers
            .iter()
            .filter(|m| m.op == MatchOp::Equal && !m.value.is_empty())
            .map(|m| self.postings.get(&(m.label.clone(), m.value.clone())).map_or(&[][..], Vec::as_slice))
            .min_by_key(|list| list.len());
        let candidates: Box<dyn Iterator<Item = &Entry>> = match narrowest {
            Some(list) => Box::new(list.iter().map(|&idx| &self.entries[idx])),
            None => Box::new(self.entries.iter()),
        };
        candidates.filter(move |e| selector.matches(&e.labels))
    }
}

/// Fewer series than this in a tier-0 segment are read by point lookups.
const BULK_MIN_SERIES: usize = 64;

/// What a fetch asked for, to answer a repeated one from memory.
#[derive(PartialEq, Eq, Hash)]
struct FetchKey {
    selector: String,
    from_s: i64,
    to_s: i64,
    group_by: Vec<String>,
}

pub struct View<'t, 'c> {
    tx: &'t ReadTx<'c>,
    watermarks: Vec<Option<i64>>,
    /// Memory's deltas per series (open intervals and batches not yet committed).
    memory: FxHashMap<SeriesId, Vec<(i64, Rollup)>>,
    /// Series memory holds, by metric name; keys are parsed only for those not stored yet.
    memory_series: HashMap<String, Vec<(SeriesId, Box<str>, MetricKind)>>,
    metrics: HashMap<String, Arc<Metric>>,
    catalog: Option<Arc<Catalog>>,
    windows: FxHashMap<(SeriesId, i64, i64), Option<Rollup>>,
    fetched: HashMap<FetchKey, Vec<GroupRollup>>,
    present: HashMap<FetchKey, Vec<Labels>>,
    /// Tier-0 segments read in one scan by [`View::prefetch`], by segment then series.
    raw: HashMap<(i64, i64), FxHashMap<SeriesId, Rollup>>,
}

/// A read a rule will make, as [`View::prefetch`] takes them.
pub struct Request {
    pub selector: Selector,
    pub from_s: i64,
    pub to_s: i64,
}

impl<'t, 'c> View<'t, 'c> {
    /// A view of `tx` plus `snapshot`, which must agree with `tx` ([`Snapshot::agrees_with`])
    /// and hold every metric the reads will name.
    pub fn new(
        tx: &'t ReadTx<'c>,
        snapshot: Snapshot,
        catalog: Option<Arc<Catalog>>,
    ) -> Result<View<'t, 'c>, QueryError> {
        let committed_seq = tx.last_flush_seq()?;
        let mut memory: FxHashMap<SeriesId, Vec<(i64, Rollup)>> = FxHashMap::default();
        let mut memory_series: HashMap<String, Vec<(SeriesId, Box<str>, MetricKind)>> = HashMap::new();
        for series in snapshot.series {
            let name = series.key.split('{').next().unwrap_or_default().to_owned();
            memory.entry(series.id).or_default().extend(series.deltas);
            memory_series.entry(name).or_default().push((series.id, series.key, series.kind));
        }
        // Batches the store has not committed as of `tx` count from memory, exactly once.
        for batch in snapshot.in_flight.iter().filter(|b| b.seq > committed_seq) {
            for delta in &batch.rollups {
                memory.entry(delta.series).or_default().push((delta.start_s, delta.rollup.clone()));
            }
        }
        Ok(View {
            watermarks: tx.watermarks()?,
            tx,
            memory,
            memory_series,
            metrics: HashMap::new(),
            catalog,
            windows: FxHashMap::default(),
            fetched: HashMap::new(),
            present: HashMap::new(),
            raw: HashMap::new(),
        })
    }

    /// Prepares for `requests`: each tier-0 segment that many of the requested series need is
    /// read in one scan instead of a point lookup per series and interval. Requests only make
    /// reads cheaper; a read not announced works the same.
    pub fn prefetch(&mut self, requests: &[Request]) -> Result<(), QueryError> {
        let mut wanted: HashMap<(i64, i64), FxHashSet<SeriesId>> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for request in requests {
            // Rules sharing a selector and window (the same metric watched at several
            // thresholds) ask once.
            if !seen.insert((request.selector.to_string(), request.from_s, request.to_s)) {
                continue;
            }
            let metric = self.metric(&request.selector.name)?;
            let segments: Vec<_> = plan(request.from_s, request.to_s, self.tx.tiers(), &self.watermarks)
                .into_iter()
                .filter(|s| s.tier == 0)
                .collect();
            for entry in metric.matching(&request.selector) {
                for segment in &segments {
                    wanted.entry((segment.from_s, segment.to_s)).or_default().insert(entry.id);
                }
            }
        }
        for ((from_s, to_s), ids) in wanted {
            if ids.len() >= BULK_MIN_SERIES && self.tx.raw_scan_pays(ids.len())? {
                let rows = self.tx.raw_range(from_s, to_s, &ids)?;
                self.raw.insert((from_s, to_s), rows);
            }
        }
        Ok(())
    }

    /// Merged rollups per group of `group_by` (empty: everything merged) over `[from_s, to_s)`
    /// of the series `selector` matches, groups with no data left out, sorted by labels.
    pub fn fetch(
        &mut self,
        selector: &Selector,
        from_s: i64,
        to_s: i64,
        group_by: &[String],
    ) -> Result<Vec<GroupRollup>, QueryError> {
        let key = FetchKey { selector: selector.to_string(), from_s, to_s, group_by: group_by.to_vec() };
        if let Some(groups) = self.fetched.get(&key) {
            return Ok(groups.clone());
        }
        let metric = self.metric(&selector.name)?;
        let mut groups: Vec<GroupRollup> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for entry in metric.matching(selector) {
            let Some(rollup) = self.window(entry.id, from_s, to_s)? else { continue };
            let labels = entry.labels.project(group_by);
            match index.get(&labels) {
                Some(&idx) => groups[idx].rollup.merge(rollup),
                None => {
                    index.insert(labels.clone(), groups.len());
                    groups.push(GroupRollup { labels, rollup: rollup.clone(), kind: entry.kind });
                }
            }
        }
        groups.sort_by(|a, b| a.labels.cmp(&b.labels));
        self.fetched.insert(key, groups.clone());
        Ok(groups)
    }

    /// The groups of `group_by` with any data over `[from_s, to_s)`, sorted: existence checks
    /// (coarsest tiers first, a group done at its first series with data) instead of rollups.
    pub fn present(
        &mut self,
        selector: &Selector,
        from_s: i64,
        to_s: i64,
        group_by: &[String],
    ) -> Result<Vec<Labels>, QueryError> {
        let key = FetchKey { selector: selector.to_string(), from_s, to_s, group_by: group_by.to_vec() };
        if let Some(groups) = self.present.get(&key) {
            return Ok(groups.clone());
        }
        let metric = self.metric(&selector.name)?;
        let mut present: BTreeSet<Labels> = BTreeSet::new();
        for entry in metric.matching(selector) {
            let labels = entry.labels.project(group_by);
            if !present.contains(&labels) && self.has_data(entry.id, from_s, to_s)? {
                present.insert(labels);
            }
        }
        let present: Vec<Labels> = present.into_iter().collect();
        self.present.insert(key, present.clone());
        Ok(present)
    }

    fn has_data(&self, id: SeriesId, from_s: i64, to_s: i64) -> Result<bool, QueryError> {
        if let Some(Some(_)) = self.windows.get(&(id, from_s, to_s)) {
            return Ok(true);
        }
        if self.memory.get(&id).into_iter().flatten().any(|(s, _)| *s >= from_s && *s < to_s) {
            return Ok(true);
        }
        let mut segments = plan(from_s, to_s, self.tx.tiers(), &self.watermarks);
        segments.sort_by_key(|s| std::cmp::Reverse(s.tier));
        for segment in segments {
            if self.tx.has_rows(segment.tier, id, segment.from_s, segment.to_s)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every series named `name`, stored or only in memory so far.
    fn metric(&mut self, name: &str) -> Result<Arc<Metric>, QueryError> {
        if let Some(metric) = self.metrics.get(name) {
            return Ok(metric.clone());
        }
        let stored = match &self.catalog {
            Some(catalog) => {
                let count = self.tx.count_series_named(name)?;
                match catalog.get(name, count) {
                    Some(metric) => metric,
                    None => {
                        let metric = Arc::new(Metric::new(self.stored_entries(name)?));
                        catalog.put(name, count, metric.clone());
                        metric
                    }
                }
            }
            None => Arc::new(Metric::new(self.stored_entries(name)?)),
        };
        // Series only memory knows yet (new since the last flush) join a copy.
        let mut fresh: Vec<Entry> = Vec::new();
        for (id, key, kind) in self.memory_series.remove(name).unwrap_or_default() {
            if !stored.ids.contains(&id)
                && let Some(key) = SeriesKey::parse(&key).filter(|k| k.name == name)
            {
                fresh.push(Entry { id, labels: key.labels, kind });
            }
        }
        let metric = if fresh.is_empty() {
            stored
        } else {
            Arc::new(Metric::new(stored.entries.iter().cloned().chain(fresh).collect()))
        };
        self.metrics.insert(name.to_owned(), metric.clone());
        Ok(metric)
    }

    fn stored_entries(&self, name: &str) -> Result<Vec<Entry>, QueryError> {
        let mut entries: Vec<Entry> = Vec::new();
        for stored in self.tx.series_named(name)? {
            if let Some(key) = SeriesKey::parse(&stored.key).filter(|k| k.name == name) {
                entries.push(Entry { id: stored.id, labels: key.labels, kind: stored.kind });
            }
        }
        Ok(entries)
    }

    /// One series' rollup over `[from_s, to_s)` from the right tiers and memory.
    fn window(&mut self, id: SeriesId, from_s: i64, to_s: i64) -> Result<Option<&Rollup>, QueryError> {
        if !self.windows.contains_key(&(id, from_s, to_s)) {
            let mut merged: Option<Rollup> = None;
            for segment in plan(from_s, to_s, self.tx.tiers(), &self.watermarks) {
                match self.raw.get(&(segment.from_s, segment.to_s)).filter(|_| segment.tier == 0) {
                    Some(scanned) => merge_into(&mut merged, scanned.get(&id)),
                    None => self.tx.merge_rollups(segment.tier, id, segment.from_s, segment.to_s, &mut merged)?,
                }
            }
            for (_, rollup) in self.memory.get(&id).into_iter().flatten().filter(|(s, _)| *s >= from_s && *s < to_s) {
                merge_into(&mut merged, Some(rollup));
            }
            self.windows.insert((id, from_s, to_s), merged);
        }
        Ok(self.windows[&(id, from_s, to_s)].as_ref())
    }
}

fn merge_into(merged: &mut Option<Rollup>, rollup: Option<&Rollup>) {
    match (merged.as_mut(), rollup) {
        (Some(m), Some(r)) => m.merge(r),
        (None, Some(r)) => *merged = Some(r.clone()),
        (_, None) => {}
    }
}
