//! `sum [by|without (…)] (rate|increase(x[r]))` of timings, evaluated per group
//! rather than per series: the series of each group are merged once into one point list (every
//! point kept at its own time, so each window holds exactly the points the series' own windows
//! would), and each step reads one window per group. The sum of windows is the window of the
//! sum because these functions add interval deltas; the group's histogram window slides from
//! step to step (`sliding.rs`). A dashboard's `sum by (endpoint)` over 1,000 timing series then
//! merges 20 windows a step instead of 1,000 and adds no 1,000 histograms together.
//!
//! Only timings: a counter's increase per series is already two reads of its running totals,
//! and merging them cost more than it saved (measured). Anything else, and selectors whose
//! series are not all timings, are evaluated the ordinary way.

use promql_parser::parser::{AggregateExpr, Expr};

use super::PromError;
use super::eval::{Evaluator, duration_ms, node, unparen};
use super::range::Window;
use super::sliding;
use super::source::{Points, Shape};
use super::value::StepValue;

/// Each group's merged points, per `sum` node; `None` where the node does not qualify.
pub type GroupCache = rustc_hash::FxHashMap<usize, Option<Vec<Points>>>;

/// The `sum` at `t` evaluated per group, or `None` when `agg` is not such a sum.
pub fn sum_of_increases(ev: &mut Evaluator<'_>, agg: &AggregateExpr, t: i64) -> Result<Option<StepValue>, PromError> {
    let key = node(agg);
    if agg.op.to_string() != "sum" || agg.param.is_some() {
        return Ok(None);
    }
    let Expr::Call(call) = unparen(&agg.expr) else { return Ok(None) };
    let (func, [arg]) = (call.func.name, call.args.args.as_slice()) else { return Ok(None) };
    let (Expr::MatrixSelector(ms), "rate" | "increase") = (unparen(arg), func) else { return Ok(None) };
    if !ev.groups.contains_key(&key) {
        let merged = merge_groups(ev, agg, node(call), node(&ms.vs));
        ev.groups.insert(key, merged);
    }
    let Some(Some(groups)) = ev.groups.get(&key) else { return Ok(None) };
    let to = ev.effective(ms.vs.at.as_ref(), ms.vs.offset.as_ref(), t);
    let window = Window { from_ms: to.saturating_sub(duration_ms(ms.range)), to_ms: to, param: None };
    let out = sliding::increases(&mut ev.sliding, key, func, groups, window)?;
    Ok(Some(StepValue::Vector(out)))
}

/// The selector's series merged per group, moved out of the loaded data; `None` (data left as
/// it was) unless every series is a timing.
fn merge_groups(
    ev: &mut Evaluator<'_>,
    agg: &AggregateExpr,
    call_key: usize,
    selector_key: usize,
) -> Option<Vec<Points>> {
    let list = ev.data.get(&selector_key)?;
    let shape = list.first()?.shape;
    if shape != Shape::Timing || list.iter().any(|p| p.shape != shape) {
        return None;
    }
    // Two metrics that are one series without their names: the ordinary path answers
    // Prometheus's error for that.
    let mut unnamed = Vec::with_capacity(list.len());
    let series: Vec<u32> = list.iter().map(|p| p.series).collect();
    for s in series {
        unnamed.push(ev.drop_name(call_key, s));
    }
    unnamed.sort_unstable();
    if unnamed.windows(2).any(|w| w[0] == w[1]) {
        return None;
    }
    let list = ev.data.remove(&selector_key)?;
    let mut order: Vec<u32> = Vec::new();
    let mut members: rustc_hash::FxHashMap<u32, Vec<(i64, crate::aggregate::rollup::Rollup)>> = Default::default();
    for p in list {
        let unnamed = ev.drop_name(call_key, p.series);
        let group = super::aggregate::group_of(ev, node(agg), agg.modifier.as_ref(), unnamed);
        let points = members.entry(group).or_insert_with(|| {
            order.push(group);
            Vec::new()
        });
        points.extend(p.t.into_iter().zip(p.rollups));
    }
    let mut out = Vec::with_capacity(order.len());
    for group in order {
        let mut points = members.remove(&group).unwrap_or_default();
        points.sort_by_key(|(t, _)| *t);
        let mut merged = Points {
            series: group,
            shape,
            t: Vec::new(),
            rollups: Vec::new(),
            totals: Vec::new(),
            before: 0.0,
            history: None,
        };
        let mut running = 0.0;
        for (t, rollup) in points {
            merged.t.push(t);
            merged.rollups.push(rollup);
            running += merged.delta(merged.rollups.len() - 1);
            merged.totals.push(running);
        }
        out.push(merged);
    }
    Some(out)
}
