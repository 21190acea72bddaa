//! Binary operators: arithmetic, comparisons (filtering, or `bool`) and the set operators
//! `and`, `or`, `unless`, between scalars and vectors, with `on`/`ignoring` and
//! `group_left`/`group_right` matching and Prometheus's errors when matches are not unique.

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use rustc_hash::{FxHashMap, FxHashSet};

use super::PromError;
use super::eval::{Evaluator, node};
use super::value::{NAME, Sample, SeriesIdx, StepValue, Val, without_name};
use crate::model::Labels;

/// Roles of a binary node's remembered label work (`Evaluator::derived` keys are the node's
/// address plus one of these, all inside the node itself).
const SIGNATURE: usize = 1;
const DROPPED_NAME: usize = 2;

pub fn eval(ev: &mut Evaluator<'_>, bin: &BinaryExpr, t: i64) -> Result<StepValue, PromError> {
    let op = bin.op.to_string();
    let modifier = bin.modifier.as_ref();
    if modifier.is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some()) {
        return Err(PromError::Unsupported("fill modifiers on binary operators".into()));
    }
    let return_bool = modifier.is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&bin.lhs, t)?;
    let rhs = ev.eval(&bin.rhs, t)?;
    let key = node(bin);
    Ok(match (lhs, rhs) {
        (StepValue::Scalar(a), StepValue::Scalar(b)) => {
            let (value, keep) = apply(&op, a, b)?;
            StepValue::Scalar(if is_comparison(&op) { f64::from(u8::from(keep)) } else { value })
        }
        (StepValue::Vector(v), StepValue::Scalar(s)) => {
            StepValue::Vector(with_scalar(ev, key, &op, v, s, false, return_bool)?)
        }
        (StepValue::Scalar(s), StepValue::Vector(v)) => {
            StepValue::Vector(with_scalar(ev, key, &op, v, s, true, return_bool)?)
        }
        (StepValue::Vector(l), StepValue::Vector(r)) => {
            let card = modifier.map_or(&VectorMatchCardinality::OneToOne, |m| &m.card);
            let matching = modifier.and_then(|m| m.matching.as_ref());
            StepValue::Vector(match op.as_str() {
                "and" | "or" | "unless" => set_operation(ev, key, &op, l, r, matching),
                _ => vectors(ev, key, &op, l, r, card, matching, return_bool)?,
            })
        }
        _ => return Err(PromError::BadData(format!("the operator {op} does not apply to strings"))),
    })
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// `a op b`: the value and, for comparisons, whether it holds.
fn apply(op: &str, a: f64, b: f64) -> Result<(f64, bool), PromError> {
    Ok(match op {
        "+" => (a + b, true),
        "-" => (a - b, true),
        "*" => (a * b, true),
        "/" => (a / b, true),
        "%" => (a % b, true),
        "^" => (a.powf(b), true),
        "atan2" => (a.atan2(b), true),
        "==" => (a, a == b),
        "!=" => (a, a != b),
        ">" => (a, a > b),
        "<" => (a, a < b),
        ">=" => (a, a >= b),
        "<=" => (a, a <= b),
        other => return Err(PromError::Unsupported(format!("the operator {other}"))),
    })
}

/// `l op r` where either may be a timing's histogram: scaling by a float, or adding two.
fn apply_values(op: &str, l: &Val, r: &Val) -> Result<Option<(Val, bool)>, PromError> {
    Ok(match (l, r) {
        (Val::F(a), Val::F(b)) => {
            let (v, keep) = apply(op, *a, *b)?;
            Some((Val::F(v), keep))
        }
        (Val::H(h), Val::F(f)) | (Val::F(f), Val::H(h)) if op == "*" => {
            let mut h = h.clone();
            h.scale(*f);
            Some((Val::H(h), true))
        }
        (Val::H(h), Val::F(f)) if op == "/" => {
            let mut h = h.clone();
            h.scale(1.0 / f);
            Some((Val::H(h), true))
        }
        (Val::H(a), Val::H(b)) if op == "+" => {
            let mut sum = a.clone();
            sum.add(b);
            Some((Val::H(sum), true))
        }
        // Never a silently empty answer: Prometheus subtracts histograms and drops the rest
        // with a warning; perfwatch says it does neither.
        _ => {
            return Err(PromError::Unsupported(format!(
                "the operator {op} between a timing's histogram and {}; histograms can be added, and multiplied or divided by a number",
                if matches!((l, r), (Val::H(_), Val::H(_))) { "another histogram" } else { "a number" }
            )));
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn with_scalar(
    ev: &mut Evaluator<'_>,
    key: usize,
    op: &str,
    vector: Vec<Sample>,
    scalar: f64,
    scalar_left: bool,
    return_bool: bool,
) -> Result<Vec<Sample>, PromError> {
    let drop = !is_comparison(op) || return_bool;
    let mut out = Vec::with_capacity(vector.len());
    for s in vector {
        let (l, r) = if scalar_left { (Val::F(scalar), s.val.clone()) } else { (s.val.clone(), Val::F(scalar)) };
        let Some((mut value, keep)) = apply_values(op, &l, &r)? else { continue };
        if is_comparison(op) && scalar_left {
            value = s.val;
        }
        if return_bool {
            value = Val::F(f64::from(u8::from(keep)));
        } else if !keep {
            continue;
        }
        let series = if drop { ev.drop_name(key + DROPPED_NAME, s.series) } else { s.series };
        out.push(Sample { series, val: value });
    }
    Ok(out)
}

/// The labels two sides match on, remembered per node.
fn signature(ev: &mut Evaluator<'_>, key: usize, series: SeriesIdx, matching: Option<&LabelModifier>) -> SeriesIdx {
    if let Some(sig) = ev.derived.get(&(key + SIGNATURE, series)) {
        return *sig;
    }
    let labels = ev.labels.get(series);
    let pairs = match matching {
        Some(LabelModifier::Include(on)) => {
            labels.pairs().iter().filter(|(k, _)| on.labels.iter().any(|n| n == k)).cloned().collect()
        }
        Some(LabelModifier::Exclude(ignoring)) => labels
            .pairs()
            .iter()
            .filter(|(k, _)| k != NAME && !ignoring.labels.iter().any(|n| n == k))
            .cloned()
            .collect(),
        None => labels.pairs().iter().filter(|(k, _)| k != NAME).cloned().collect(),
    };
    let sig = ev.labels.intern(Labels::new(pairs));
    ev.derived.insert((key + SIGNATURE, series), sig);
    sig
}

fn set_operation(
    ev: &mut Evaluator<'_>,
    key: usize,
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: Option<&LabelModifier>,
) -> Vec<Sample> {
    let right: FxHashSet<SeriesIdx> = rhs.iter().map(|s| signature(ev, key, s.series, matching)).collect();
    match op {
        "and" => lhs.into_iter().filter(|s| right.contains(&signature(ev, key, s.series, matching))).collect(),
        "unless" => lhs.into_iter().filter(|s| !right.contains(&signature(ev, key, s.series, matching))).collect(),
        _ => {
            let left: FxHashSet<SeriesIdx> = lhs.iter().map(|s| signature(ev, key, s.series, matching)).collect();
            let extra: Vec<Sample> =
                rhs.into_iter().filter(|s| !left.contains(&signature(ev, key, s.series, matching))).collect();
            lhs.into_iter().chain(extra).collect()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn vectors(
    ev: &mut Evaluator<'_>,
    key: usize,
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    card: &VectorMatchCardinality,
    matching: Option<&LabelModifier>,
    return_bool: bool,
) -> Result<Vec<Sample>, PromError> {
    // Nothing to match against: no answer, and no matching error either (as Prometheus).
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    // group_right: the right side is the "many" side; iterate it.
    let swapped = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let mut one_by_sig: FxHashMap<SeriesIdx, Sample> = FxHashMap::default();
    for s in one {
        let sig = signature(ev, key, s.series, matching);
        if let Some(previous) = one_by_sig.get(&sig) {
            let side = if swapped { "left" } else { "right" };
            return Err(PromError::Execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                braces(ev.labels.get(sig)),
                braces(ev.labels.get(previous.series)),
                braces(ev.labels.get(s.series)),
            )));
        }
        one_by_sig.insert(sig, s);
    }
    let mut matched: FxHashSet<SeriesIdx> = FxHashSet::default();
    let mut produced: FxHashSet<SeriesIdx> = FxHashSet::default();
    let mut out = Vec::new();
    for s in many {
        let sig = signature(ev, key, s.series, matching);
        let Some(other) = one_by_sig.get(&sig) else { continue };
        let (l, r) = if swapped { (&other.val, &s.val) } else { (&s.val, &other.val) };
        let Some((mut value, keep)) = apply_values(op, l, r)? else { continue };
        if return_bool {
            value = Val::F(f64::from(u8::from(keep)));
        } else if !keep {
            continue;
        }
        let series = result_series(ev, key, op, s.series, other.series, card, matching, return_bool);
        if matches!(card, VectorMatchCardinality::OneToOne) {
            if !matched.insert(sig) {
                return Err(PromError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                        .into(),
                ));
            }
        } else if !produced.insert(series) {
            return Err(PromError::Execution(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        out.push(Sample { series, val: value });
    }
    Ok(out)
}

/// The output's labels, as Prometheus's `resultMetric`.
#[allow(clippy::too_many_arguments)]
fn result_series(
    ev: &mut Evaluator<'_>,
    key: usize,
    op: &str,
    many: SeriesIdx,
    one: SeriesIdx,
    card: &VectorMatchCardinality,
    matching: Option<&LabelModifier>,
    return_bool: bool,
) -> SeriesIdx {
    if let Some(done) = ev.pairs.get(&(key, many, one)) {
        return *done;
    }
    let mut labels = ev.labels.get(many).clone();
    if !is_comparison(op) || return_bool {
        labels = without_name(&labels);
    }
    let mut pairs = labels.into_pairs();
    if matches!(card, VectorMatchCardinality::OneToOne) {
        match matching {
            Some(LabelModifier::Include(on)) => pairs.retain(|(k, _)| on.labels.iter().any(|n| n == k)),
            Some(LabelModifier::Exclude(ignoring)) => pairs.retain(|(k, _)| !ignoring.labels.iter().any(|n| n == k)),
            None => {}
        }
    }
    if let Some(include) = card.labels() {
        let one_labels = ev.labels.get(one).clone();
        for name in &include.labels {
            pairs.retain(|(k, _)| k != name);
            if let Some(v) = one_labels.get(name).filter(|v| !v.is_empty()) {
                pairs.push((name.clone(), v.to_owned()));
            }
        }
    }
    let out = ev.labels.intern(Labels::new(pairs));
    ev.pairs.insert((key, many, one), out);
    out
}

/// `{a="x", b="y"}`, as Prometheus prints label sets in errors.
fn braces(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(", "))
}
