//! A selector's series and their points: which stored and in-memory series match, and each
//! one's intervals over the time the query needs, from the tiers (see `tier.rs`), memory and
//! batches on their way to disk, each counted once.
//!
//! How perfwatch's series look to PromQL: a counter is a cumulative counter (running totals
//! of its interval deltas), a gauge a gauge, a timing a native histogram, and also
//! `<name>_count` and `<name>_sum` counters. Every interval is one point, at the time of its
//! last observation.

use std::collections::BTreeMap;

use promql_parser::label::Matchers;
use promql_parser::parser::VectorSelector;
use rustc_hash::{FxHashMap, FxHashSet};

use super::tier::{self, Source};
use super::value::{LabelTable, NAME, SeriesIdx};
use super::{Deadline, PromError};
use crate::aggregate::Snapshot;
use crate::aggregate::rollup::Rollup;
use crate::model::{Labels, MetricKind, SeriesId, SeriesKey};
use crate::query::plan::plan;
use crate::store::reader::{ReadTx, StoredSeries};
use crate::store::tiers::Tier;

/// How a series reads in PromQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Counter,
    Gauge,
    Timing,
    /// `<timing>_count`: a counter of observations.
    TimingCount,
    /// `<timing>_sum`: a counter of observed seconds.
    TimingSum,
}

/// One series' points, oldest first.
#[derive(Debug)]
pub struct Points {
    pub series: SeriesIdx,
    pub shape: Shape,
    /// When each point was taken: its interval's last observation, unix ms.
    pub t: Vec<i64>,
    pub rollups: Vec<Rollup>,
    /// Counters: the running total after each point, counted from `before`.
    pub totals: Vec<f64>,
    /// Counters: the total before the first point; 0 when the query only reads differences.
    pub before: f64,
    /// Timings: everything observed before the first point, when the query reads whole
    /// (cumulative) histograms.
    pub history: Option<Rollup>,
}

impl Points {
    /// The points in `(after_ms, upto_ms]`, as an index range.
    pub fn window(&self, after_ms: i64, upto_ms: i64) -> std::ops::Range<usize> {
        let lo = self.t.partition_point(|t| *t <= after_ms);
        let hi = self.t.partition_point(|t| *t <= upto_ms).max(lo);
        lo..hi
    }

    /// A counter's total before point `idx`.
    pub fn total_before(&self, idx: usize) -> f64 {
        if idx == 0 { self.before } else { self.totals[idx - 1] }
    }

    /// A counter's increment at point `idx`.
    pub fn delta(&self, idx: usize) -> f64 {
        match self.shape {
            Shape::TimingCount => self.rollups[idx].count,
            _ => self.rollups[idx].sum,
        }
    }
}

/// What a selector needs loaded: points taken in `(from_ms, to_ms]`, and the function it is
/// the range argument of (`None`: an instant selector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub from_ms: i64,
    pub to_ms: i64,
    pub func: Option<&'static str>,
}

/// The "function" of a range selector a query returns as it is: every point.
pub const RAW_MATRIX: &str = "(range vector)";

impl Want {
    /// Whether absolute counter totals and whole histograms are read (else differences are
    /// enough, and no history is loaded).
    pub fn absolute(&self) -> bool {
        !matches!(
            self.func,
            Some("rate" | "increase" | "irate" | "idelta" | "delta" | "resets" | "changes" | "count_over_time")
                | Some("present_over_time" | "absent_over_time")
        )
    }

    /// Whether a series of `shape` gives the same answer from any tier's intervals (so the
    /// query's coarse tier may serve it), or depends on each sample (so tier 0 serves it):
    /// sums, extremes and sketches merge exactly across tiers; a gauge's samples, a counter's
    /// running totals per point and the last two points do not.
    pub fn any_tier(&self, shape: Shape) -> bool {
        let merged = matches!(shape, Shape::Timing);
        let level = matches!(shape, Shape::Gauge);
        match self.func {
            None | Some("last_over_time" | "present_over_time" | "absent_over_time") => true,
            Some("count_over_time") => !matches!(shape, Shape::TimingCount | Shape::TimingSum),
            Some("rate" | "increase" | "delta") => !level,
            Some("min_over_time" | "max_over_time" | "sum_over_time" | "avg_over_time") => merged || level,
            Some("quantile_over_time") => merged,
            Some(_) => false,
        }
    }
}

/// Reads selectors' series within one read transaction and one memory snapshot.
pub struct Loader<'a> {
    pub tx: &'a ReadTx<'a>,
    pub snapshot: &'a Snapshot,
    pub committed_seq: u64,
    pub watermarks: Vec<Option<i64>>,
    /// The tier whose intervals are the points (see `tier::choose`).
    pub chosen: usize,
    pub now_s: i64,
    pub max_series: usize,
    /// Points the query may still load.
    pub samples_left: usize,
    pub deadline: Deadline,
    pub all_stored: Option<Vec<StoredSeries>>,
}

/// A series as one selector sees it.
struct View {
    id: SeriesId,
    labels: Labels,
    shape: Shape,
}

impl Loader<'_> {
    pub fn load(
        &mut self,
        selector: &VectorSelector,
        want: Want,
        labels: &mut LabelTable,
    ) -> Result<Vec<Points>, PromError> {
        let views = self.matching(selector)?;
        if views.len() > self.max_series {
            return Err(PromError::Limit(format!(
                "the selector {selector} matches {} series, more than the {} a query may read (query.max_series); add label matchers",
                views.len(),
                self.max_series
            )));
        }
        let from_s = want.from_ms.div_euclid(1000);
        let to_s = want.to_ms.div_euclid(1000) + 1;
        // Series whose answer depends on each sample read tier 0's intervals; the rest the
        // query's tier.
        let ids_where = |any_tier: bool| -> Vec<SeriesId> {
            let ids: FxHashSet<SeriesId> =
                views.iter().filter(|v| want.any_tier(v.shape) == any_tier).map(|v| v.id).collect();
            ids.into_iter().collect()
        };
        let (mut coarse, coarse_from_s) = self.rows(&ids_where(true), from_s, to_s, self.chosen)?;
        let (mut fine, fine_from_s) = self.rows(&ids_where(false), from_s, to_s, 0)?;
        // A series' rows go to its last view whole, and are copied only for the others (a
        // timing read as itself and as `_count`, say).
        let mut uses: FxHashMap<(SeriesId, bool), usize> = FxHashMap::default();
        for view in &views {
            *uses.entry((view.id, want.any_tier(view.shape))).or_default() += 1;
        }
        let mut out = Vec::with_capacity(views.len());
        for view in views {
            self.deadline.check()?;
            let any_tier = want.any_tier(view.shape);
            let (rows, read_from_s) = if any_tier { (&mut coarse, coarse_from_s) } else { (&mut fine, fine_from_s) };
            let left = uses.get_mut(&(view.id, any_tier)).expect("counted above");
            *left -= 1;
            let own = if *left == 0 { rows.remove(&view.id) } else { rows.get(&view.id).cloned() };
            let mut points = points_of(view.shape, own, want);
            if points.t.len() > self.samples_left {
                return Err(PromError::Limit(
                    "query processing would load too many samples into memory in query execution (query.max_samples); narrow the selector or the time range".into(),
                ));
            }
            self.samples_left -= points.t.len();
            if want.absolute() && view.shape != Shape::Gauge {
                self.add_history(&mut points, view.id, read_from_s)?;
            }
            if points.t.is_empty() {
                continue;
            }
            points.series = labels.intern(view.labels);
            out.push(points);
        }
        // In label order, as Prometheus's storage returns series (`topk` keeps the first of
        // equal values).
        out.sort_by(|a, b| labels.get(a.series).cmp(labels.get(b.series)));
        Ok(out)
    }

    /// Every series the selector matches, stored or only in memory so far.
    fn matching(&mut self, selector: &VectorSelector) -> Result<Vec<View>, PromError> {
        let exact = selector.name.clone().or_else(|| {
            selector
                .matchers
                .matchers
                .iter()
                .find(|m| m.name == NAME && m.op.to_string() == "=")
                .map(|m| m.value.clone())
        });
        if let Some(base) = exact.as_deref().and_then(|name| name.strip_suffix("_bucket")) {
            self.refuse_buckets_of(base)?;
        }
        let mut candidates: BTreeMap<SeriesId, (String, MetricKind)> = BTreeMap::new();
        match &exact {
            Some(name) => {
                for wanted in names_behind(name) {
                    for stored in self.tx.series_named(wanted)? {
                        candidates.insert(stored.id, (stored.key, stored.kind));
                    }
                }
            }
            None => {
                if self.all_stored.is_none() {
                    self.all_stored = Some(self.tx.all_series()?);
                }
                for stored in self.all_stored.iter().flatten() {
                    candidates.insert(stored.id, (stored.key.clone(), stored.kind));
                }
            }
        }
        for series in &self.snapshot.series {
            candidates.entry(series.id).or_insert_with(|| (series.key.to_string(), series.kind));
        }
        let mut out = Vec::new();
        for (id, (key, kind)) in candidates {
            let Some(parsed) = SeriesKey::parse(&key) else { continue };
            for (name, shape) in views_of(&parsed.name, kind) {
                if exact.as_ref().is_some_and(|wanted| *wanted != name) {
                    continue;
                }
                let mut pairs = parsed.labels.pairs().to_vec();
                pairs.push((NAME.to_owned(), name));
                let labels = Labels::new(pairs);
                if matches(&selector.matchers, &labels) {
                    out.push(View { id, labels, shape });
                }
            }
        }
        Ok(out)
    }

    /// `<timing>_bucket` would read classic buckets, which a timing does not have: say so
    /// rather than answer nothing.
    fn refuse_buckets_of(&self, base: &str) -> Result<(), PromError> {
        let in_memory = self
            .snapshot
            .series
            .iter()
            .any(|s| s.kind == MetricKind::Timing && SeriesKey::parse(&s.key).is_some_and(|k| k.name == base));
        if in_memory || self.tx.series_named(base)?.iter().any(|s| s.kind == MetricKind::Timing) {
            return Err(PromError::Unsupported(format!(
                "{base}_bucket: {base} is a timing, kept as a native histogram, with no classic buckets; use histogram_quantile(0.99, rate({base}[5m]))"
            )));
        }
        Ok(())
    }

    /// Each series' rows over `[from_s, to_s)` from the tiers that serve it, memory and batches
    /// in flight, merged by interval; and where the reads started.
    #[allow(clippy::type_complexity)]
    fn rows(
        &self,
        ids: &[SeriesId],
        from_s: i64,
        to_s: i64,
        chosen: usize,
    ) -> Result<(FxHashMap<SeriesId, Vec<Row>>, i64), PromError> {
        let tiers = self.tx.tiers();
        if ids.is_empty() {
            return Ok((FxHashMap::default(), from_s));
        }
        let sources = tier::sources(from_s, to_s, chosen, tiers, &self.watermarks, self.now_s);
        let read_from_s = sources.first().map_or(from_s, |s| s.from_s);
        // Sources come oldest first and do not overlap, and each one's rows of a series come
        // oldest first: appended, a series' rows stay in order.
        let mut out: FxHashMap<SeriesId, Vec<Row>> = FxHashMap::default();
        for source in &sources {
            self.deadline.check()?;
            let resolution = tiers[source.tier].resolution_s;
            for (id, rows) in self.read_source(source, ids)? {
                let series = out.entry(id).or_default();
                series.extend(rows.into_iter().map(|(start, rollup)| Row { start, end: start + resolution, rollup }));
            }
        }
        let wanted: FxHashSet<SeriesId> = ids.iter().copied().collect();
        let raw = tiers[0].resolution_s;
        let in_range = |start: i64| start >= read_from_s && start < to_s;
        let mut add = |id: SeriesId, start: i64, rollup: &Rollup| {
            if wanted.contains(&id) && in_range(start) {
                merge_row(out.entry(id).or_default(), start, raw, rollup);
            }
        };
        for series in &self.snapshot.series {
            for (start, rollup) in &series.deltas {
                add(series.id, *start, rollup);
            }
        }
        for batch in self.snapshot.in_flight.iter().filter(|b| b.seq > self.committed_seq) {
            for delta in &batch.rollups {
                add(delta.series, delta.start_s, &delta.rollup);
            }
        }
        Ok((out, read_from_s))
    }

    /// One tier's rows for `ids`: point lookups per series, or for tier 0 one scan of the
    /// time range when a good part of each interval's rows is wanted.
    fn read_source(
        &self,
        source: &Source,
        ids: &[SeriesId],
    ) -> Result<FxHashMap<SeriesId, Vec<(i64, Rollup)>>, PromError> {
        if source.tier == 0 && self.tx.raw_scan_pays(ids.len())? {
            let wanted: FxHashSet<SeriesId> = ids.iter().copied().collect();
            return Ok(self.tx.raw_rows(source.from_s, source.to_s, &wanted)?);
        }
        let mut out = FxHashMap::default();
        for id in ids {
            self.deadline.check()?;
            let rows = self.tx.rollups(source.tier, *id, source.from_s, source.to_s)?;
            if !rows.is_empty() {
                out.insert(*id, rows);
            }
        }
        Ok(out)
    }

    /// Sets a counter's total before its first point, or a timing's history, from everything
    /// stored before `before_s` (coarse tiers for the bulk of it).
    fn add_history(&self, points: &mut Points, id: SeriesId, before_s: i64) -> Result<(), PromError> {
        let mut history: Option<Rollup> = None;
        let tiers: &[Tier] = self.tx.tiers();
        for segment in plan(i64::from(i32::MIN), before_s, tiers, &self.watermarks) {
            self.tx.merge_rollups(segment.tier, id, segment.from_s, segment.to_s, &mut history)?;
        }
        // Memory's deltas before the window (late samples, or intervals not yet flushed).
        let mut early = |start: i64, rollup: &Rollup| {
            if start < before_s {
                history.get_or_insert_with(|| Rollup::empty(rollup.sketch.is_some())).merge(rollup);
            }
        };
        for series in self.snapshot.series.iter().filter(|s| s.id == id) {
            series.deltas.iter().for_each(|(start, rollup)| early(*start, rollup));
        }
        for batch in self.snapshot.in_flight.iter().filter(|b| b.seq > self.committed_seq) {
            batch.rollups.iter().filter(|d| d.series == id).for_each(|d| early(d.start_s, &d.rollup));
        }
        let Some(history) = history else { return Ok(()) };
        let before = match points.shape {
            Shape::TimingCount => history.count,
            Shape::Counter | Shape::TimingSum => history.sum,
            Shape::Gauge | Shape::Timing => 0.0,
        };
        points.before += before;
        points.totals.iter_mut().for_each(|total| *total += before);
        if points.shape == Shape::Timing {
            points.history.get_or_insert_with(|| Rollup::empty(true)).merge(&history);
        }
        Ok(())
    }
}

/// The stored names a selector for `name` may be served from: itself, and the timing behind
/// `<timing>_count` and `<timing>_sum`.
fn names_behind(name: &str) -> Vec<&str> {
    let mut out = vec![name];
    out.extend(name.strip_suffix("_count").or_else(|| name.strip_suffix("_sum")));
    out
}

/// The names and shapes a stored series shows as.
pub(super) fn views_of(name: &str, kind: MetricKind) -> Vec<(String, Shape)> {
    match kind {
        MetricKind::Counter => vec![(name.to_owned(), Shape::Counter)],
        MetricKind::Gauge => vec![(name.to_owned(), Shape::Gauge)],
        MetricKind::Timing => vec![
            (name.to_owned(), Shape::Timing),
            (format!("{name}_count"), Shape::TimingCount),
            (format!("{name}_sum"), Shape::TimingSum),
        ],
    }
}

/// Whether `labels` satisfy the matchers (any one `or` group of them, when there are groups).
pub fn matches(matchers: &Matchers, labels: &Labels) -> bool {
    let all =
        |group: &[promql_parser::label::Matcher]| group.iter().all(|m| m.is_match(labels.get(&m.name).unwrap_or("")));
    if matchers.or_matchers.is_empty() {
        all(&matchers.matchers)
    } else {
        matchers.or_matchers.iter().any(|group| all(group))
    }
}

/// One stored or in-memory interval of a series: `[start, end)`.
#[derive(Debug, Clone)]
struct Row {
    start: i64,
    end: i64,
    rollup: Rollup,
}

/// Merges a tier-0 delta from memory into the row that holds its interval, or adds it in
/// order (mostly at the end: memory holds the newest intervals).
fn merge_row(rows: &mut Vec<Row>, start: i64, resolution: i64, rollup: &Rollup) {
    let at = rows.partition_point(|row| row.start <= start);
    if let Some(row) = at.checked_sub(1).map(|idx| &mut rows[idx])
        && start < row.end
    {
        row.rollup.merge(rollup);
        return;
    }
    rows.insert(at, Row { start, end: start + resolution, rollup: rollup.clone() });
}

/// A series' points from its rows, only those taken in `want`'s window.
fn points_of(shape: Shape, rows: Option<Vec<Row>>, want: Want) -> Points {
    let mut pairs: Vec<(i64, Rollup)> = rows
        .into_iter()
        .flatten()
        .filter(|row| !row.rollup.is_empty() && row.rollup.last_ms != i64::MIN)
        .map(|Row { rollup: mut r, .. }| {
            // A timing's `_count` and `_sum` read no buckets.
            if matches!(shape, Shape::TimingCount | Shape::TimingSum) {
                r.sketch = None;
            }
            (r.last_ms, r)
        })
        .collect();
    pairs.sort_by_key(|(t, _)| *t);
    // Points before the window still count: into a counter's total before the first, and a
    // timing's history.
    let mut points =
        Points { series: 0, shape, t: Vec::new(), rollups: Vec::new(), totals: Vec::new(), before: 0.0, history: None };
    let mut running = 0.0;
    for (t, rollup) in pairs {
        if t > want.to_ms {
            break;
        }
        running += match shape {
            Shape::TimingCount => rollup.count,
            Shape::Counter | Shape::TimingSum => rollup.sum,
            Shape::Gauge | Shape::Timing => 0.0,
        };
        if t <= want.from_ms {
            points.before = running;
            if shape == Shape::Timing {
                points.history.get_or_insert_with(|| Rollup::empty(true)).merge(&rollup);
            }
            continue;
        }
        points.t.push(t);
        points.rollups.push(rollup);
        points.totals.push(running);
    }
    points
}
