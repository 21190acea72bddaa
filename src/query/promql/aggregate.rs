//! Aggregations (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`, `topk`,
//! `bottomk`, `quantile`, `count_values`) with `by` and `without`. `sum` and `avg` of timings
//! merge their histograms, so a quantile across series is the merged sketch's.

use promql_parser::parser::{AggregateExpr, LabelModifier};
use rustc_hash::FxHashMap;

use super::PromError;
use super::eval::{Evaluator, node};
use super::functions::{scalar, vector};
use super::histogram::Histogram;
use super::range::{quantile, variance};
use super::value::{NAME, Sample, SeriesIdx, StepValue, Val, format_float, with_label};
use crate::model::Labels;

pub fn eval(ev: &mut Evaluator<'_>, agg: &AggregateExpr, t: i64) -> Result<StepValue, PromError> {
    if let Some(per_group) = super::pushdown::sum_of_increases(ev, agg, t)? {
        return Ok(per_group);
    }
    let op = agg.op.to_string();
    let key = node(agg);
    let mut param = None;
    let mut label = None;
    if let Some(p) = &agg.param {
        match op.as_str() {
            "count_values" => match ev.eval(p, t)? {
                StepValue::Str(s) => label = Some(s),
                _ => {
                    return Err(PromError::BadData(
                        "count_values needs a label name, e.g. count_values(\"value\", x)".into(),
                    ));
                }
            },
            _ => param = Some(scalar(ev, p, t)?),
        }
    }
    let samples = vector(ev, &agg.expr, t)?;
    // Groups in the order first seen, each with its samples.
    let mut order: Vec<SeriesIdx> = Vec::new();
    let mut groups: FxHashMap<SeriesIdx, Vec<Sample>> = FxHashMap::default();
    for s in samples {
        let group = group_of(ev, key, agg.modifier.as_ref(), s.series);
        groups.entry(group).or_insert_with(|| {
            order.push(group);
            Vec::new()
        });
        groups.get_mut(&group).expect("inserted").push(s);
    }
    let mut out = Vec::new();
    for group in order {
        let members = groups.remove(&group).unwrap_or_default();
        match op.as_str() {
            "topk" | "bottomk" => out.extend(top(members, param.unwrap_or(f64::NAN), op == "topk")),
            "count_values" => {
                let label = label.clone().unwrap_or_default();
                out.extend(count_values(ev, group, &label, &members)?);
            }
            _ => {
                if let Some(val) = reduce(&op, &members, param)? {
                    out.push(Sample { series: group, val });
                }
            }
        }
    }
    Ok(StepValue::Vector(out))
}

/// The group a series falls in, remembered per node.
pub(super) fn group_of(
    ev: &mut Evaluator<'_>,
    key: usize,
    modifier: Option<&LabelModifier>,
    series: SeriesIdx,
) -> SeriesIdx {
    if let Some(group) = ev.derived.get(&(key, series)) {
        return *group;
    }
    let labels = ev.labels.get(series);
    let pairs: Vec<(String, String)> = match modifier {
        Some(LabelModifier::Include(names)) => {
            labels.pairs().iter().filter(|(k, _)| names.labels.iter().any(|n| n == k)).cloned().collect()
        }
        Some(LabelModifier::Exclude(names)) => {
            labels.pairs().iter().filter(|(k, _)| k != NAME && !names.labels.iter().any(|n| n == k)).cloned().collect()
        }
        None => Vec::new(),
    };
    let group = ev.labels.intern(Labels::new(pairs));
    ev.derived.insert((key, series), group);
    group
}

/// One group's value; `None` when it has none (only histograms for `min`, say).
fn reduce(op: &str, members: &[Sample], param: Option<f64>) -> Result<Option<Val>, PromError> {
    let floats: Vec<f64> = members.iter().filter_map(|s| s.val.float()).collect();
    let histograms: Vec<&Histogram> = members
        .iter()
        .filter_map(|s| match &s.val {
            Val::H(h) => Some(h.as_ref()),
            Val::F(_) => None,
        })
        .collect();
    let n = floats.len() as f64;
    let some = |v: f64| Ok(Some(Val::F(v)));
    match op {
        "count" => return some(members.len() as f64),
        "group" => return some(1.0),
        "sum" | "avg" if !histograms.is_empty() => {
            // Floats and histograms together have no sum (Prometheus drops the group too).
            if !floats.is_empty() {
                return Ok(None);
            }
            let mut h = Histogram::empty();
            histograms.iter().for_each(|x| h.add(x));
            if op == "avg" {
                h.scale(1.0 / histograms.len() as f64);
            }
            return Ok(Some(Val::H(Box::new(h))));
        }
        _ => {}
    }
    if floats.is_empty() {
        return Ok(None);
    }
    match op {
        "sum" => some(floats.iter().sum()),
        "avg" => some(floats.iter().sum::<f64>() / n),
        "min" => some(floats.iter().copied().fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m })),
        "max" => some(floats.iter().copied().fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m })),
        "stddev" => some(variance(&floats).sqrt()),
        "stdvar" => some(variance(&floats)),
        "quantile" => some(quantile(param.unwrap_or(f64::NAN), &mut floats.clone())),
        other => Err(PromError::Unsupported(format!("the aggregation {other}"))),
    }
}

/// `topk` or `bottomk`: the `k` largest or smallest floats, labels kept.
fn top(members: Vec<Sample>, k: f64, largest: bool) -> Vec<Sample> {
    if k.is_nan() || k < 1.0 {
        return Vec::new();
    }
    let mut floats: Vec<Sample> = members.into_iter().filter(|s| s.val.float().is_some()).collect();
    let value = |s: &Sample| s.val.float().unwrap_or(f64::NAN);
    // NaN sorts last either way, as in Prometheus.
    floats.sort_by(|a, b| {
        let (x, y) = (value(a), value(b));
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ if largest => y.total_cmp(&x),
            _ => x.total_cmp(&y),
        }
    });
    floats.truncate(k.min(usize::MAX as f64) as usize);
    floats
}

fn count_values(
    ev: &mut Evaluator<'_>,
    group: SeriesIdx,
    label: &str,
    members: &[Sample],
) -> Result<Vec<Sample>, PromError> {
    let mut counts: Vec<(String, f64)> = Vec::new();
    for s in members {
        let Some(v) = s.val.float() else { continue };
        let text = format_float(v);
        match counts.iter_mut().find(|(k, _)| *k == text) {
            Some((_, n)) => *n += 1.0,
            None => counts.push((text, 1.0)),
        }
    }
    let base = ev.labels.get(group).clone();
    Ok(counts
        .into_iter()
        .map(|(value, n)| Sample { series: ev.labels.intern(with_label(&base, label, &value)), val: Val::F(n) })
        .collect())
}
