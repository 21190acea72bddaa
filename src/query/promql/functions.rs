//! PromQL's function calls: range functions hand over to `range.rs`; the rest (maths, labels,
//! histograms, `absent`, `time`, `vector`, `scalar`, `sort`) work on one step's vector here.
//! A function perfwatch does not evaluate answers an error that names it.

use promql_parser::parser::{Call, Expr};
use regex::Regex;

use super::PromError;
use super::eval::{Evaluator, node, unparen};
use super::value::{NAME, Sample, SeriesIdx, StepValue, Val, with_label};
use crate::model::Labels;

/// Functions of one range vector (and for `quantile_over_time` a scalar before it).
const RANGE_FUNCTIONS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "present_over_time",
    "quantile_over_time",
];

pub fn call(ev: &mut Evaluator<'_>, call: &Call, t: i64) -> Result<StepValue, PromError> {
    let value = evaluate(ev, call, t)?;
    // A function that drops the name can make two series one (`rate({job="api"}[5m])` over
    // two metrics): Prometheus refuses that rather than mix them.
    if let StepValue::Vector(samples) = &value {
        ev.check_unique(samples)?;
    }
    Ok(value)
}

fn evaluate(ev: &mut Evaluator<'_>, call: &Call, t: i64) -> Result<StepValue, PromError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
    let key = node(call);
    if RANGE_FUNCTIONS.contains(&name) {
        let (param, range) = match args.as_slice() {
            [q, range] => (Some(scalar(ev, q, t)?), *range),
            [range] => (None, *range),
            _ => return Err(arity(name)),
        };
        return Ok(StepValue::Vector(ev.range_function(name, range, t, param, key)?));
    }
    match name {
        "time" => Ok(StepValue::Scalar(t as f64 / 1000.0)),
        "vector" => {
            let v = scalar(ev, first(&args, name)?, t)?;
            Ok(StepValue::Vector(vec![Sample { series: ev.labels.intern(Labels::default()), val: Val::F(v) }]))
        }
        "scalar" => {
            let samples = vector(ev, first(&args, name)?, t)?;
            Ok(StepValue::Scalar(match samples.as_slice() {
                [Sample { val: Val::F(v), .. }] => *v,
                _ => f64::NAN,
            }))
        }
        "absent" => absent(ev, &args, t, name),
        "absent_over_time" => {
            let arg = first(&args, name)?;
            let present = !ev.range_function("present_over_time", arg, t, None, key)?.is_empty();
            Ok(StepValue::Vector(if present { Vec::new() } else { absent_sample(ev, arg) }))
        }
        "timestamp" => timestamp(ev, first(&args, name)?, t, key),
        "sort" | "sort_desc" => {
            let mut samples = vector(ev, first(&args, name)?, t)?;
            let value = |s: &Sample| s.val.float().unwrap_or(f64::NAN);
            let descending = name == "sort_desc";
            // NaN last either way, as Prometheus sorts.
            samples.sort_by(|a, b| match (value(a).is_nan(), value(b).is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if descending => value(b).total_cmp(&value(a)),
                _ => value(a).total_cmp(&value(b)),
            });
            Ok(StepValue::Vector(samples))
        }
        "label_replace" => label_replace(ev, &args, t, key),
        "label_join" => label_join(ev, &args, t, key),
        "histogram_quantile" | "histogram_fraction" | "histogram_count" | "histogram_sum" | "histogram_avg" => {
            histogram(ev, name, &args, t, key)
        }
        _ => maths(ev, name, &args, t, key),
    }
}

/// Functions of one vector's float values (and scalar parameters after it).
fn maths(ev: &mut Evaluator<'_>, name: &str, args: &[&Expr], t: i64, key: usize) -> Result<StepValue, PromError> {
    let params: Vec<f64> = args.iter().skip(1).map(|a| scalar(ev, a, t)).collect::<Result<_, _>>()?;
    let p = |i: usize| params.get(i).copied();
    let f: Box<dyn Fn(f64) -> f64> = match (name, p(0), p(1)) {
        ("abs", ..) => Box::new(f64::abs),
        ("ceil", ..) => Box::new(f64::ceil),
        ("floor", ..) => Box::new(f64::floor),
        ("exp", ..) => Box::new(f64::exp),
        ("sqrt", ..) => Box::new(f64::sqrt),
        ("ln", ..) => Box::new(f64::ln),
        ("log2", ..) => Box::new(f64::log2),
        ("log10", ..) => Box::new(f64::log10),
        ("sgn", ..) => Box::new(|v: f64| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        }),
        ("round", nearest, _) => {
            let inverse = 1.0 / nearest.unwrap_or(1.0);
            Box::new(move |v: f64| (v * inverse + 0.5).floor() / inverse)
        }
        ("clamp", Some(min), Some(max)) => {
            if max < min {
                return Ok(StepValue::Vector(Vec::new()));
            }
            Box::new(move |v: f64| v.max(min).min(max))
        }
        ("clamp_min", Some(min), _) => Box::new(move |v: f64| v.max(min)),
        ("clamp_max", Some(max), _) => Box::new(move |v: f64| v.min(max)),
        ("clamp" | "clamp_min" | "clamp_max", ..) => return Err(arity(name)),
        (other, ..) => return Err(PromError::Unsupported(format!("the function {other}"))),
    };
    let samples = vector(ev, first(args, name)?, t)?;
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        if let Val::F(v) = s.val {
            out.push(Sample { series: ev.drop_name(key, s.series), val: Val::F(f(v)) });
        }
    }
    Ok(StepValue::Vector(out))
}

fn histogram(ev: &mut Evaluator<'_>, name: &str, args: &[&Expr], t: i64, key: usize) -> Result<StepValue, PromError> {
    let (params, arg) = match (name, args) {
        ("histogram_quantile", [q, v]) => (vec![scalar(ev, q, t)?], *v),
        ("histogram_fraction", [lo, hi, v]) => (vec![scalar(ev, lo, t)?, scalar(ev, hi, t)?], *v),
        (_, [v]) => (Vec::new(), *v),
        _ => return Err(arity(name)),
    };
    let samples = vector(ev, arg, t)?;
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        let h = match &s.val {
            Val::H(h) => h,
            Val::F(_) if name == "histogram_quantile" && ev.labels.get(s.series).get("le").is_some() => {
                return Err(PromError::Unsupported(
                    "histogram_quantile over classic _bucket series (perfwatch keeps timings as native histograms: histogram_quantile(0.99, rate(<timing>[5m])))".into(),
                ));
            }
            Val::F(_) => continue,
        };
        let value = match name {
            "histogram_quantile" => h.quantile(params[0]),
            "histogram_fraction" => h.fraction(params[0], params[1]),
            "histogram_count" => h.count(),
            "histogram_sum" => h.sum(),
            _ => h.sum() / h.count(),
        };
        out.push(Sample { series: ev.drop_name(key, s.series), val: Val::F(value) });
    }
    Ok(StepValue::Vector(out))
}

fn absent(ev: &mut Evaluator<'_>, args: &[&Expr], t: i64, name: &str) -> Result<StepValue, PromError> {
    let arg = first(args, name)?;
    let present = !vector(ev, arg, t)?.is_empty();
    Ok(StepValue::Vector(if present { Vec::new() } else { absent_sample(ev, arg) }))
}

/// `absent`'s one sample: labels from the selector's equality matchers, as Prometheus.
fn absent_sample(ev: &mut Evaluator<'_>, arg: &Expr) -> Vec<Sample> {
    let selector = match unparen(arg) {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::MatrixSelector(ms) => Some(&ms.vs),
        _ => None,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(vs) = selector {
        let mut seen: Vec<&str> = Vec::new();
        for m in &vs.matchers.matchers {
            if m.name == NAME || m.op.to_string() != "=" {
                continue;
            }
            if seen.contains(&m.name.as_str()) {
                pairs.retain(|(k, _)| *k != m.name);
                continue;
            }
            seen.push(&m.name);
            pairs.push((m.name.clone(), m.value.clone()));
        }
    }
    vec![Sample { series: ev.labels.intern(Labels::new(pairs)), val: Val::F(1.0) }]
}

fn timestamp(ev: &mut Evaluator<'_>, arg: &Expr, t: i64, key: usize) -> Result<StepValue, PromError> {
    let stamped: Vec<(SeriesIdx, i64)> = match unparen(arg) {
        Expr::VectorSelector(vs) => ev.select_times(vs, t),
        other => vector(ev, other, t)?.into_iter().map(|s| (s.series, t)).collect(),
    };
    Ok(StepValue::Vector(
        stamped
            .into_iter()
            .map(|(series, at)| Sample { series: ev.drop_name(key, series), val: Val::F(at as f64 / 1000.0) })
            .collect(),
    ))
}

fn label_replace(ev: &mut Evaluator<'_>, args: &[&Expr], t: i64, key: usize) -> Result<StepValue, PromError> {
    let [v, dst, replacement, src, regex] = args else { return Err(arity("label_replace")) };
    let (dst, replacement, src, pattern) =
        (string(ev, dst, t)?, string(ev, replacement, t)?, string(ev, src, t)?, string(ev, regex, t)?);
    let regex = Regex::new(&format!("^(?s:{pattern})$"))
        .map_err(|e| PromError::BadData(format!("invalid regular expression in label_replace(): {pattern}: {e}")))?;
    if !valid_label_name(&dst) {
        return Err(PromError::BadData(format!("invalid destination label name in label_replace(): {dst}")));
    }
    let samples = vector(ev, v, t)?;
    Ok(relabel(ev, key, samples, |labels| {
        let value = labels.get(&src).unwrap_or("");
        match regex.captures(value) {
            Some(caps) => {
                let mut expanded = String::new();
                caps.expand(&replacement, &mut expanded);
                with_label(labels, &dst, &expanded)
            }
            None => labels.clone(),
        }
    }))
}

fn label_join(ev: &mut Evaluator<'_>, args: &[&Expr], t: i64, key: usize) -> Result<StepValue, PromError> {
    let [v, dst, separator, sources @ ..] = args else { return Err(arity("label_join")) };
    let (dst, separator) = (string(ev, dst, t)?, string(ev, separator, t)?);
    let sources: Vec<String> = sources.iter().map(|s| string(ev, s, t)).collect::<Result<_, _>>()?;
    if !valid_label_name(&dst) {
        return Err(PromError::BadData(format!("invalid destination label name in label_join(): {dst}")));
    }
    let samples = vector(ev, v, t)?;
    Ok(relabel(ev, key, samples, |labels| {
        let joined: Vec<&str> = sources.iter().map(|name| labels.get(name).unwrap_or("")).collect();
        with_label(labels, &dst, &joined.join(&separator))
    }))
}

/// Each sample under the labels `change` makes of its own, worked out once per series.
fn relabel(ev: &mut Evaluator<'_>, key: usize, samples: Vec<Sample>, change: impl Fn(&Labels) -> Labels) -> StepValue {
    let mut out = Vec::with_capacity(samples.len());
    for s in samples {
        let series = match ev.derived.get(&(key, s.series)) {
            Some(done) => *done,
            None => {
                let done = ev.labels.intern(change(ev.labels.get(s.series)));
                ev.derived.insert((key, s.series), done);
                done
            }
        };
        out.push(Sample { series, val: s.val });
    }
    StepValue::Vector(out)
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn first<'a>(args: &[&'a Expr], name: &str) -> Result<&'a Expr, PromError> {
    args.first().copied().ok_or_else(|| arity(name))
}

fn arity(name: &str) -> PromError {
    PromError::BadData(format!("wrong number of arguments for {name}()"))
}

/// An argument that must be a scalar at `t`.
pub fn scalar(ev: &mut Evaluator<'_>, expr: &Expr, t: i64) -> Result<f64, PromError> {
    match ev.eval(expr, t)? {
        StepValue::Scalar(v) => Ok(v),
        _ => Err(PromError::BadData(format!("expected a scalar, got {expr}"))),
    }
}

/// An argument that must be an instant vector at `t`.
pub fn vector(ev: &mut Evaluator<'_>, expr: &Expr, t: i64) -> Result<Vec<Sample>, PromError> {
    match ev.eval(expr, t)? {
        StepValue::Vector(samples) => Ok(samples),
        _ => Err(PromError::BadData(format!("expected an instant vector, got {expr}"))),
    }
}

fn string(ev: &mut Evaluator<'_>, expr: &Expr, t: i64) -> Result<String, PromError> {
    match ev.eval(expr, t)? {
        StepValue::Str(s) => Ok(s),
        _ => Err(PromError::BadData(format!("expected a string, got {expr}"))),
    }
}
