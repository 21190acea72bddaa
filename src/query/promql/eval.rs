//! The evaluator: what a query needs loaded (`Plan`), then the expression evaluated at each
//! step over the loaded points. Series are label-table indices; transformations of them
//! (dropping the name, grouping) are remembered per expression node, so a range query
//! computes each output series' labels once, not once per step.

use std::ops::Range;
use std::time::UNIX_EPOCH;

use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use rustc_hash::FxHashMap;

use super::histogram::Histogram;
use super::range::{self, Window};
use super::source::{Loader, Points, Shape, Want};
use super::value::{LabelTable, QueryValue, Sample, SeriesIdx, StepValue, Val, without_name};
use super::{Deadline, Limits, PromError, Query};
use super::{sliding, tier};
use crate::aggregate::Snapshot;
use crate::model::Labels;
use crate::store::reader::ReadTx;

/// The step of a subquery that names none (Prometheus's default evaluation interval).
const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// What a query reads: each selector's window, the times that choose the tier, the metric names.
#[derive(Debug, Default)]
pub struct Plan {
    wants: FxHashMap<usize, Want>,
    times: Vec<i64>,
    names: Option<Vec<String>>,
    /// The latest time any selector reads.
    pub to_ms: i64,
}

impl Plan {
    pub fn of(expr: &Expr, query: &Query) -> Plan {
        let mut plan = Plan {
            times: vec![query.start_ms, query.lookback_ms],
            names: Some(Vec::new()),
            to_ms: i64::MIN,
            ..Plan::default()
        };
        plan.times.extend(query.step_ms);
        plan.walk(expr, query.start_ms, query.end_ms, query, Some(super::source::RAW_MATRIX));
        plan.to_ms = plan.to_ms.max(query.end_ms);
        plan
    }

    /// The metric names memory must show (`None`: every series, for a selector without one).
    pub fn names(&self) -> Option<Vec<String>> {
        self.names.clone()
    }

    /// `func`: the function a range selector here is the argument of (a top-level range
    /// selector: [`super::source::RAW_MATRIX`]).
    fn walk(&mut self, expr: &Expr, from: i64, to: i64, query: &Query, func: Option<&'static str>) {
        match expr {
            Expr::VectorSelector(vs) => self.want(vs, from, to, query.lookback_ms, query, None),
            Expr::MatrixSelector(ms) => {
                let range = duration_ms(ms.range);
                self.times.push(range);
                self.want(&ms.vs, from, to, range, query, func);
            }
            Expr::Call(call) => {
                for arg in &call.args.args {
                    self.walk(arg, from, to, query, Some(call.func.name));
                }
            }
            Expr::Subquery(sq) => {
                let (range, step) = (duration_ms(sq.range), sq.step.map_or(DEFAULT_SUBQUERY_STEP_MS, duration_ms));
                self.times.extend([range, step, offset_ms(sq.offset.as_ref())]);
                let (a, b) = shifted(sq.at.as_ref(), sq.offset.as_ref(), from, to, query);
                self.walk(&sq.expr, a.saturating_sub(range), b, query, None);
            }
            Expr::Aggregate(agg) => {
                self.walk(&agg.expr, from, to, query, None);
                if let Some(param) = &agg.param {
                    self.walk(param, from, to, query, None);
                }
            }
            Expr::Binary(bin) => {
                self.walk(&bin.lhs, from, to, query, None);
                self.walk(&bin.rhs, from, to, query, None);
            }
            Expr::Paren(p) => self.walk(&p.expr, from, to, query, func),
            Expr::Unary(u) => self.walk(&u.expr, from, to, query, None),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    fn want(&mut self, vs: &VectorSelector, from: i64, to: i64, back: i64, query: &Query, func: Option<&'static str>) {
        self.times.push(offset_ms(vs.offset.as_ref()));
        match &vs.at {
            Some(AtModifier::At(at)) => self.times.push(system_ms(*at)),
            Some(AtModifier::End) => self.times.push(query.end_ms),
            Some(AtModifier::Start) | None => {}
        }
        let (a, b) = shifted(vs.at.as_ref(), vs.offset.as_ref(), from, to, query);
        let want = Want { from_ms: a.saturating_sub(back), to_ms: b, func };
        self.to_ms = self.to_ms.max(want.to_ms);
        self.wants.insert(node(vs), want);
        let exact = vs.name.clone().or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == super::value::NAME && m.op.to_string() == "=")
                .map(|m| m.value.clone())
        });
        match (exact, &mut self.names) {
            (Some(name), Some(names)) => {
                // The timing behind `_count` and `_sum` (and `_bucket`, to say it has none).
                let base = ["_count", "_sum", "_bucket"].iter().find_map(|suffix| name.strip_suffix(suffix));
                names.extend(base.map(str::to_owned));
                names.push(name);
            }
            (None, names) => *names = None,
            (Some(_), None) => {}
        }
    }
}

/// A node's identity within one query: its address in the parsed expression.
pub fn node<T>(x: &T) -> usize {
    x as *const T as usize
}

pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn display_ms(ms: i64) -> String {
    promql_parser::util::duration::display_duration(&std::time::Duration::from_millis(ms.max(0) as u64))
}

fn offset_ms(offset: Option<&Offset>) -> i64 {
    match offset {
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
        None => 0,
    }
}

fn system_ms(at: std::time::SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(d),
        Err(before) => -duration_ms(before.duration()),
    }
}

/// The times `[from, to]` moved by an `@` and an `offset`.
fn shifted(at: Option<&AtModifier>, offset: Option<&Offset>, from: i64, to: i64, query: &Query) -> (i64, i64) {
    let (a, b) = match at {
        Some(AtModifier::Start) => (query.start_ms, query.start_ms),
        Some(AtModifier::End) => (query.end_ms, query.end_ms),
        Some(AtModifier::At(t)) => (system_ms(*t), system_ms(*t)),
        None => (from, to),
    };
    let off = offset_ms(offset);
    (a.saturating_sub(off), b.saturating_sub(off))
}

/// Range queries evaluate to instant vectors or scalars at each step.
pub fn check_range_type(expr: &Expr) -> Result<(), PromError> {
    match unparen(expr) {
        Expr::MatrixSelector(_) | Expr::Subquery(_) => Err(PromError::BadData(
            "invalid parameter \"query\": invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
        )),
        Expr::StringLiteral(_) => Err(PromError::BadData(
            "invalid parameter \"query\": invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
        )),
        _ => Ok(()),
    }
}

pub fn unparen(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

/// A range vector's windows at one step.
pub enum Windows<'e> {
    /// A selector's loaded points, and which of them each series has in the window.
    Points(Vec<(&'e Points, Range<usize>)>, Window),
    /// A subquery's samples per series.
    Samples(Vec<(SeriesIdx, Vec<(i64, Val)>)>, Window),
}

pub struct Evaluator<'q> {
    pub labels: LabelTable,
    pub data: FxHashMap<usize, Vec<Points>>,
    pub query: &'q Query,
    pub deadline: Deadline,
    /// Per node and input series, the output series (a dropped name, a group).
    pub derived: FxHashMap<(usize, SeriesIdx), SeriesIdx>,
    /// Per binary node, the output series of a pair of matched inputs.
    pub pairs: FxHashMap<(usize, SeriesIdx, SeriesIdx), SeriesIdx>,
    /// Bare timing selectors: each series' cumulative histogram so far, and up to which point.
    cumulative: FxHashMap<(usize, SeriesIdx), (usize, Histogram)>,
    /// Timings' rate and increase windows, carried from step to step.
    pub sliding: sliding::SlidingCache,
    /// Sums of increases evaluated per group (`pushdown.rs`).
    pub groups: super::pushdown::GroupCache,
    pub samples_left: usize,
}

impl<'q> Evaluator<'q> {
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        tx: &ReadTx<'_>,
        snapshot: &Snapshot,
        expr: &Expr,
        query: &'q Query,
        plan: &Plan,
        limits: Limits,
        deadline: Deadline,
        now_ms: i64,
    ) -> Result<QueryValue, PromError> {
        let mut loader = Loader {
            tx,
            snapshot,
            committed_seq: tx.last_flush_seq()?,
            watermarks: tx.watermarks()?,
            chosen: tier::choose(tx.tiers(), &plan.times),
            now_s: now_ms.div_euclid(1000),
            max_series: limits.max_series,
            samples_left: limits.max_samples,
            deadline,
            all_stored: None,
        };
        let mut ev = Evaluator {
            labels: LabelTable::default(),
            data: FxHashMap::default(),
            query,
            deadline,
            derived: FxHashMap::default(),
            pairs: FxHashMap::default(),
            cumulative: FxHashMap::default(),
            sliding: sliding::SlidingCache::default(),
            groups: Default::default(),
            samples_left: 0,
        };
        let mut selectors = Vec::new();
        collect_selectors(expr, &mut selectors);
        for vs in selectors {
            let Some(want) = plan.wants.get(&node(vs)) else { continue };
            let points = loader.load(vs, *want, &mut ev.labels)?;
            ev.data.insert(node(vs), points);
        }
        ev.samples_left = loader.samples_left;
        match query.step_ms {
            None => ev.instant(expr),
            Some(step) => ev.range(expr, step),
        }
    }

    fn instant(&mut self, expr: &Expr) -> Result<QueryValue, PromError> {
        let t = self.query.start_ms;
        if let Expr::MatrixSelector(_) | Expr::Subquery(_) = unparen(expr) {
            return self.top_level_matrix(unparen(expr), t);
        }
        Ok(match self.eval(expr, t)? {
            StepValue::Scalar(v) => QueryValue::Scalar(t, v),
            StepValue::Str(s) => QueryValue::String(t, s),
            StepValue::Vector(samples) => {
                self.check_unique(&samples)?;
                QueryValue::Vector(samples.into_iter().map(|s| (self.labels.get(s.series).clone(), t, s.val)).collect())
            }
        })
    }

    fn range(&mut self, expr: &Expr, step: i64) -> Result<QueryValue, PromError> {
        let mut series: FxHashMap<SeriesIdx, Vec<(i64, Val)>> = FxHashMap::default();
        // By index: start + k·step for k up to (end - start) / step, which cannot overflow.
        let n_steps = (self.query.end_ms - self.query.start_ms) / step;
        for k in 0..=n_steps {
            let t = self.query.start_ms + k * step;
            self.deadline.check()?;
            match self.eval(expr, t)? {
                StepValue::Scalar(v) => {
                    self.spend(1)?;
                    let none = self.labels.intern(Labels::default());
                    series.entry(none).or_default().push((t, Val::F(v)));
                }
                StepValue::Str(_) => unreachable!("checked by check_range_type"),
                StepValue::Vector(samples) => {
                    self.check_unique(&samples)?;
                    self.spend(samples.len())?;
                    for s in samples {
                        series.entry(s.series).or_default().push((t, s.val));
                    }
                }
            }
        }
        let mut out: Vec<(Labels, Vec<(i64, Val)>)> =
            series.into_iter().map(|(idx, points)| (self.labels.get(idx).clone(), points)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(QueryValue::Matrix(out))
    }

    /// An instant query for a range vector: every point in the window, as Prometheus returns
    /// raw samples.
    fn top_level_matrix(&mut self, expr: &Expr, t: i64) -> Result<QueryValue, PromError> {
        let deadline = self.deadline;
        let windows = self.windows(expr, t, None)?;
        let mut out = Vec::new();
        match windows {
            Windows::Points(list, _) => {
                let mut raw: Vec<(SeriesIdx, Vec<(i64, Val)>)> = Vec::with_capacity(list.len());
                for (p, idx) in list {
                    deadline.check()?;
                    raw.push((p.series, raw_points(p, idx)));
                }
                for (series, points) in raw {
                    self.spend(points.len())?;
                    if !points.is_empty() {
                        out.push((self.labels.get(series).clone(), points));
                    }
                }
            }
            Windows::Samples(list, _) => {
                for (series, points) in list {
                    self.spend(points.len())?;
                    out.push((self.labels.get(series).clone(), points));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(QueryValue::Matrix(out))
    }

    /// Counts returned samples against the query's limit.
    pub fn spend(&mut self, n: usize) -> Result<(), PromError> {
        self.samples_left = self.samples_left.checked_sub(n).ok_or_else(|| {
            PromError::Limit(
                "query processing would load too many samples into memory in query execution (query.max_samples); narrow the query or use a larger step".into(),
            )
        })?;
        Ok(())
    }

    pub fn check_unique(&self, samples: &[Sample]) -> Result<(), PromError> {
        let mut seen: Vec<SeriesIdx> = samples.iter().map(|s| s.series).collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w[0] == w[1]) {
            return Err(PromError::Execution("vector cannot contain metrics with the same labelset".into()));
        }
        Ok(())
    }

    /// The expression's value at `t`.
    pub fn eval(&mut self, expr: &Expr, t: i64) -> Result<StepValue, PromError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(StepValue::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(StepValue::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => self.negate(&u.expr, t, node(u)),
            Expr::VectorSelector(vs) => Ok(StepValue::Vector(self.select(vs, t))),
            Expr::Call(call) => super::functions::call(self, call, t),
            Expr::Aggregate(agg) => super::aggregate::eval(self, agg, t),
            Expr::Binary(bin) => super::binary::eval(self, bin, t),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => Err(PromError::BadData(
                "a range vector cannot be used here; wrap it in a function such as rate(...) or max_over_time(...)"
                    .into(),
            )),
            Expr::Extension(e) => Err(PromError::Unsupported(format!("the extension {}", e.expr.name()))),
        }
    }

    fn negate(&mut self, inner: &Expr, t: i64, key: usize) -> Result<StepValue, PromError> {
        Ok(match self.eval(inner, t)? {
            StepValue::Scalar(v) => StepValue::Scalar(-v),
            StepValue::Vector(samples) => StepValue::Vector(
                samples
                    .into_iter()
                    .map(|s| {
                        let val = match s.val {
                            Val::F(v) => Val::F(-v),
                            Val::H(mut h) => {
                                h.scale(-1.0);
                                Val::H(h)
                            }
                        };
                        Sample { series: self.drop_name(key, s.series), val }
                    })
                    .collect(),
            ),
            StepValue::Str(_) => return Err(PromError::BadData("a string cannot be negated".into())),
        })
    }

    /// `series` without its metric name, remembered per node.
    pub fn drop_name(&mut self, key: usize, series: SeriesIdx) -> SeriesIdx {
        if let Some(out) = self.derived.get(&(key, series)) {
            return *out;
        }
        let out = self.labels.intern(without_name(self.labels.get(series)));
        self.derived.insert((key, series), out);
        out
    }

    /// The time a selector or subquery reads at, when evaluated at `t`.
    pub fn effective(&self, at: Option<&AtModifier>, offset: Option<&Offset>, t: i64) -> i64 {
        shifted(at, offset, t, t, self.query).1
    }

    /// An instant selector at `t`: each series' latest point within the lookback.
    fn select(&mut self, vs: &VectorSelector, t: i64) -> Vec<Sample> {
        let key = node(vs);
        let at = self.effective(vs.at.as_ref(), vs.offset.as_ref(), t);
        let lookback = self.query.lookback_ms;
        let Some(list) = self.data.get(&key) else { return Vec::new() };
        let mut out = Vec::with_capacity(list.len());
        for p in list {
            let idx = p.t.partition_point(|x| *x <= at);
            if idx == 0 || p.t[idx - 1] <= at.saturating_sub(lookback) {
                continue;
            }
            let i = idx - 1;
            let val = match p.shape {
                Shape::Timing => Val::H(Box::new(cumulative(&mut self.cumulative, key, p, i))),
                _ => raw_value(p, i),
            };
            out.push(Sample { series: p.series, val });
        }
        out
    }

    /// An instant selector's series at `t` with the time of the point each one reads.
    pub fn select_times(&self, vs: &VectorSelector, t: i64) -> Vec<(SeriesIdx, i64)> {
        let at = self.effective(vs.at.as_ref(), vs.offset.as_ref(), t);
        let lookback = self.query.lookback_ms;
        let list = self.data.get(&node(vs)).map(Vec::as_slice).unwrap_or_default();
        list.iter()
            .filter_map(|p| {
                let idx = p.t.partition_point(|x| *x <= at);
                (idx > 0 && p.t[idx - 1] > at.saturating_sub(lookback)).then(|| (p.series, p.t[idx - 1]))
            })
            .collect()
    }

    /// A range argument's windows at `t`: a selector's points or a subquery's samples.
    pub fn windows(&mut self, expr: &Expr, t: i64, param: Option<f64>) -> Result<Windows<'_>, PromError> {
        match unparen(expr) {
            Expr::MatrixSelector(ms) => {
                let to = self.effective(ms.vs.at.as_ref(), ms.vs.offset.as_ref(), t);
                let window = Window { from_ms: to.saturating_sub(duration_ms(ms.range)), to_ms: to, param };
                let list = self.data.get(&node(&ms.vs)).map(Vec::as_slice).unwrap_or_default();
                Ok(Windows::Points(list.iter().map(|p| (p, p.window(window.from_ms, window.to_ms))).collect(), window))
            }
            Expr::Subquery(sq) => {
                let to = self.effective(sq.at.as_ref(), sq.offset.as_ref(), t);
                let (range, step) = (duration_ms(sq.range), sq.step.map_or(DEFAULT_SUBQUERY_STEP_MS, duration_ms));
                let window = Window { from_ms: to.saturating_sub(range), to_ms: to, param };
                if step <= 0 || range / step > super::MAX_POINTS {
                    return Err(PromError::Limit(format!(
                        "the subquery [{}:{}] takes more than {} steps; use a larger step",
                        display_ms(range),
                        display_ms(step),
                        super::MAX_POINTS
                    )));
                }
                let mut series: FxHashMap<SeriesIdx, Vec<(i64, Val)>> = FxHashMap::default();
                let mut at = (window.from_ms.div_euclid(step) + 1).saturating_mul(step);
                while at <= to {
                    self.deadline.check()?;
                    match self.eval(&sq.expr, at)? {
                        StepValue::Vector(samples) => {
                            for s in samples {
                                series.entry(s.series).or_default().push((at, s.val));
                            }
                        }
                        StepValue::Scalar(v) => {
                            let none = self.labels.intern(Labels::default());
                            series.entry(none).or_default().push((at, Val::F(v)));
                        }
                        StepValue::Str(_) => return Err(PromError::BadData("a subquery of a string".into())),
                    }
                    let Some(next) = at.checked_add(step) else { break };
                    at = next;
                }
                let mut list: Vec<_> = series.into_iter().collect();
                list.sort_by_key(|(idx, _)| *idx);
                Ok(Windows::Samples(list, window))
            }
            _ => {
                Err(PromError::BadData("expected a range vector, such as metric[5m] or a subquery expr[1h:1m]".into()))
            }
        }
    }

    /// `func` over each series' window at `t`, the name dropped (but by `last_over_time`).
    pub fn range_function(
        &mut self,
        func: &str,
        arg: &Expr,
        t: i64,
        param: Option<f64>,
        key: usize,
    ) -> Result<Vec<Sample>, PromError> {
        // A timing's rate or increase over a selector: its window carried from the last step.
        if let (Expr::MatrixSelector(ms), "rate" | "increase") = (unparen(arg), func) {
            let to = self.effective(ms.vs.at.as_ref(), ms.vs.offset.as_ref(), t);
            let window = Window { from_ms: to.saturating_sub(duration_ms(ms.range)), to_ms: to, param };
            let list = self.data.get(&node(&ms.vs)).map(Vec::as_slice).unwrap_or_default();
            let mut out = sliding::increases(&mut self.sliding, key, func, list, window)?;
            for s in &mut out {
                s.series = self.drop_name(key, s.series);
            }
            return Ok(out);
        }
        let results: Vec<(SeriesIdx, Val)> = match self.windows(arg, t, param)? {
            Windows::Points(list, window) => {
                let mut out = Vec::with_capacity(list.len());
                for (p, idx) in list {
                    if let Some(val) = range::over_points(func, p, idx, window)? {
                        out.push((p.series, val));
                    }
                }
                out
            }
            Windows::Samples(list, window) => {
                let mut out = Vec::with_capacity(list.len());
                for (series, samples) in list {
                    let inside: Vec<(i64, Val)> = samples.into_iter().filter(|(at, _)| *at > window.from_ms).collect();
                    if let Some(val) = range::over_samples(func, &inside, window)? {
                        out.push((series, val));
                    }
                }
                out
            }
        };
        let keep_name = func == "last_over_time";
        Ok(results
            .into_iter()
            .map(|(series, val)| Sample { series: if keep_name { series } else { self.drop_name(key, series) }, val })
            .collect())
    }
}

/// A point's value as a sample: a gauge's level, a counter's total.
fn raw_value(p: &Points, i: usize) -> Val {
    match p.shape {
        Shape::Gauge => Val::F(p.rollups[i].last),
        _ => Val::F(p.totals[i]),
    }
}

/// Points `idx` as raw samples; a timing's as cumulative histograms, carried forward.
fn raw_points(p: &Points, idx: Range<usize>) -> Vec<(i64, Val)> {
    if p.shape != Shape::Timing {
        return idx.map(|i| (p.t[i], raw_value(p, i))).collect();
    }
    let mut h = Histogram::empty();
    if let Some(history) = &p.history {
        h.add_rollup(history);
    }
    p.rollups[..idx.start].iter().for_each(|r| h.add_rollup(r));
    idx.map(|i| {
        h.add_rollup(&p.rollups[i]);
        (p.t[i], Val::H(Box::new(h.clone())))
    })
    .collect()
}

/// A timing's cumulative histogram at point `i`, carried forward from the last one asked for.
fn cumulative(
    cache: &mut FxHashMap<(usize, SeriesIdx), (usize, Histogram)>,
    key: usize,
    p: &Points,
    i: usize,
) -> Histogram {
    let entry = cache.entry((key, p.series)).or_insert_with(|| {
        let mut h = Histogram::empty();
        if let Some(history) = &p.history {
            h.add_rollup(history);
        }
        h.add_rollup(&p.rollups[0]);
        (0, h)
    });
    if entry.0 > i {
        let mut h = Histogram::empty();
        if let Some(history) = &p.history {
            h.add_rollup(history);
        }
        h.add_rollup(&p.rollups[0]);
        *entry = (0, h);
    }
    while entry.0 < i {
        entry.0 += 1;
        entry.1.add_rollup(&p.rollups[entry.0]);
    }
    entry.1.clone()
}

fn collect_selectors<'e>(expr: &'e Expr, out: &mut Vec<&'e VectorSelector>) {
    match expr {
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        Expr::Call(call) => call.args.args.iter().for_each(|a| collect_selectors(a, out)),
        Expr::Subquery(sq) => collect_selectors(&sq.expr, out),
        Expr::Aggregate(agg) => {
            collect_selectors(&agg.expr, out);
            if let Some(param) = &agg.param {
                collect_selectors(param, out);
            }
        }
        Expr::Binary(bin) => {
            collect_selectors(&bin.lhs, out);
            collect_selectors(&bin.rhs, out);
        }
        Expr::Paren(p) => collect_selectors(&p.expr, out),
        Expr::Unary(u) => collect_selectors(&u.expr, out),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}
