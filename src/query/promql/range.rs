//! Functions over range vectors, for one series' window at a time.
//!
//! Over stored points (`points`): counters and timings are read through their interval
//! deltas, so `increase` is the exact count in the window and `rate` that over the range, never
//! extrapolated; a timing's `*_over_time` reads its observations (`max_over_time` the slowest,
//! `quantile_over_time` from the merged sketch). Gauges follow Prometheus on their samples,
//! with `min`, `max`, `sum`, `count` and `avg` over time exact over every sample the rollups
//! saw. Over a subquery's samples (`samples`) every function is Prometheus's own.

use std::ops::Range;

use super::PromError;
use super::histogram::Histogram;
use super::source::{Points, Shape};
use super::value::Val;

/// A window `(from_ms, to_ms]`, `range_ms` long, and the function's scalar parameter.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
    pub param: Option<f64>,
}

impl Window {
    fn seconds(&self) -> f64 {
        (self.to_ms - self.from_ms) as f64 / 1000.0
    }
}

/// `func` over points `idx` of `p`; `None` when the window gives no value.
pub fn over_points(func: &str, p: &Points, idx: Range<usize>, w: Window) -> Result<Option<Val>, PromError> {
    if idx.is_empty() {
        return Ok(None);
    }
    match p.shape {
        Shape::Timing => timing(func, p, idx, w),
        Shape::Counter | Shape::TimingCount | Shape::TimingSum => counter(func, p, idx, w),
        Shape::Gauge => gauge(func, p, idx, w),
    }
}

fn counter(func: &str, p: &Points, idx: Range<usize>, w: Window) -> Result<Option<Val>, PromError> {
    let increase = p.totals[idx.end - 1] - p.total_before(idx.start);
    let samples = || idx.clone().map(|i| (p.t[i], p.totals[i])).collect::<Vec<_>>();
    Ok(match func {
        "increase" | "delta" => Some(Val::F(increase)),
        "rate" => Some(Val::F(increase / w.seconds())),
        "irate" | "idelta" => instant_change(&samples(), func == "irate").map(Val::F),
        // A counter's samples are its pushes; a timing's `_count` and `_sum` have one per point.
        "count_over_time" if p.shape == Shape::Counter => Some(Val::F(p.rollups[idx].iter().map(|r| r.count).sum())),
        "resets" => Some(Val::F(idx.skip(1).filter(|i| p.delta(*i) < 0.0).count() as f64)),
        "changes" => Some(Val::F(idx.skip(1).filter(|i| p.delta(*i) != 0.0).count() as f64)),
        _ => floats_over_time(func, &samples().iter().map(|s| s.1).collect::<Vec<_>>(), w)?.map(Val::F),
    })
}

fn gauge(func: &str, p: &Points, idx: Range<usize>, w: Window) -> Result<Option<Val>, PromError> {
    let rollups = &p.rollups[idx.clone()];
    let total = |f: fn(&crate::aggregate::rollup::Rollup) -> f64| rollups.iter().map(f).sum::<f64>();
    Ok(match func {
        "min_over_time" => Some(Val::F(rollups.iter().map(|r| r.min).fold(f64::INFINITY, f64::min))),
        "max_over_time" => Some(Val::F(rollups.iter().map(|r| r.max).fold(f64::NEG_INFINITY, f64::max))),
        "sum_over_time" => Some(Val::F(total(|r| r.sum))),
        "count_over_time" => Some(Val::F(total(|r| r.count))),
        "avg_over_time" => Some(Val::F(total(|r| r.sum) / total(|r| r.count))),
        _ => over_samples(func, &idx.map(|i| (p.t[i], Val::F(p.rollups[i].last))).collect::<Vec<_>>(), w)?,
    })
}

fn timing(func: &str, p: &Points, idx: Range<usize>, w: Window) -> Result<Option<Val>, PromError> {
    let rollups = &p.rollups[idx.clone()];
    let merged = || {
        let mut h = Histogram::empty();
        rollups.iter().for_each(|r| h.add_rollup(r));
        h
    };
    let observed = |f: fn(&crate::aggregate::rollup::Rollup) -> f64| rollups.iter().map(f).sum::<f64>();
    Ok(match func {
        "increase" | "rate" => Some(timing_increase(func, merged(), w)),
        "irate" => {
            if idx.len() < 2 {
                return Ok(None);
            }
            let (last, previous) = (idx.end - 1, idx.end - 2);
            let seconds = (p.t[last] - p.t[previous]) as f64 / 1000.0;
            let mut h = Histogram::empty();
            h.add_rollup(&p.rollups[last]);
            h.scale(1.0 / seconds);
            (seconds > 0.0).then(|| Val::H(Box::new(h)))
        }
        "min_over_time" => Some(Val::F(rollups.iter().map(|r| r.min).fold(f64::INFINITY, f64::min))),
        "max_over_time" => Some(Val::F(rollups.iter().map(|r| r.max).fold(f64::NEG_INFINITY, f64::max))),
        "sum_over_time" => Some(Val::F(observed(|r| r.sum))),
        "count_over_time" => Some(Val::F(observed(|r| r.count))),
        "avg_over_time" => Some(Val::F(observed(|r| r.sum) / observed(|r| r.count))),
        "last_over_time" => Some(Val::F(rollups[rollups.len() - 1].last)),
        "present_over_time" => Some(Val::F(1.0)),
        "quantile_over_time" => Some(Val::F(merged().quantile(param(w)?))),
        other => {
            return Err(PromError::Unsupported(format!(
                "{other} of a timing (a native histogram); use rate, increase or a *_over_time of its observations"
            )));
        }
    })
}

/// A timing's `increase` (the window's merged histogram) or `rate` (that per second).
pub fn timing_increase(func: &str, mut merged: Histogram, w: Window) -> Val {
    if func == "rate" {
        merged.scale(1.0 / w.seconds());
    }
    Val::H(Box::new(merged))
}

/// `func` over plain samples, as Prometheus computes it.
pub fn over_samples(func: &str, samples: &[(i64, Val)], w: Window) -> Result<Option<Val>, PromError> {
    if samples.is_empty() {
        return Ok(None);
    }
    let floats: Vec<(i64, f64)> = samples.iter().filter_map(|(t, v)| v.float().map(|f| (*t, f))).collect();
    let histograms: Vec<&Histogram> = samples
        .iter()
        .filter_map(|(_, v)| match v {
            Val::H(h) => Some(h.as_ref()),
            Val::F(_) => None,
        })
        .collect();
    if !histograms.is_empty() {
        return histogram_samples(func, &histograms, samples.len());
    }
    Ok(match func {
        "rate" | "increase" | "delta" => extrapolated(&floats, w, func != "delta", func == "rate").map(Val::F),
        "irate" | "idelta" => instant_change(&floats, func == "irate").map(Val::F),
        "resets" => Some(Val::F(floats.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64)),
        "changes" => Some(Val::F(
            floats.windows(2).filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan())).count() as f64,
        )),
        _ => floats_over_time(func, &floats.iter().map(|s| s.1).collect::<Vec<_>>(), w)?.map(Val::F),
    })
}

/// A subquery of histograms: sums, averages, counts and the last one.
fn histogram_samples(func: &str, histograms: &[&Histogram], n: usize) -> Result<Option<Val>, PromError> {
    let sum = || {
        let mut h = Histogram::empty();
        histograms.iter().for_each(|x| h.add(x));
        h
    };
    Ok(match func {
        "sum_over_time" => Some(Val::H(Box::new(sum()))),
        "avg_over_time" => {
            let mut h = sum();
            h.scale(1.0 / histograms.len() as f64);
            Some(Val::H(Box::new(h)))
        }
        "count_over_time" => Some(Val::F(n as f64)),
        "present_over_time" => Some(Val::F(1.0)),
        "last_over_time" => histograms.last().map(|h| Val::H(Box::new((*h).clone()))),
        other => return Err(PromError::Unsupported(format!("{other} over a subquery of histograms"))),
    })
}

/// The `*_over_time` functions of plain values.
fn floats_over_time(func: &str, values: &[f64], w: Window) -> Result<Option<f64>, PromError> {
    let n = values.len() as f64;
    if values.is_empty() {
        return Ok(None);
    }
    Ok(Some(match func {
        "avg_over_time" => values.iter().sum::<f64>() / n,
        "sum_over_time" => values.iter().sum(),
        "count_over_time" => n,
        "min_over_time" => values.iter().copied().fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
        "max_over_time" => values.iter().copied().fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
        "last_over_time" => values[values.len() - 1],
        "present_over_time" => 1.0,
        "stddev_over_time" => variance(values).sqrt(),
        "stdvar_over_time" => variance(values),
        "quantile_over_time" => quantile(param(w)?, &mut values.to_vec()),
        other => return Err(PromError::Unsupported(format!("the function {other}"))),
    }))
}

fn param(w: Window) -> Result<f64, PromError> {
    w.param.ok_or_else(|| PromError::BadData("quantile_over_time needs a quantile".into()))
}

/// Population variance, by Welford's method.
pub fn variance(values: &[f64]) -> f64 {
    let (mut mean, mut m2) = (0.0, 0.0);
    for (idx, v) in values.iter().enumerate() {
        let delta = v - mean;
        mean += delta / (idx + 1) as f64;
        m2 += delta * (v - mean);
    }
    m2 / values.len() as f64
}

/// Prometheus's φ-quantile of `values`, interpolated between the nearest ranks.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `irate` and `idelta`: the change between the last two samples.
fn instant_change(samples: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    let [.., (t0, v0), (t1, v1)] = samples else { return None };
    let change = if is_rate && v1 < v0 { *v1 } else { v1 - v0 };
    let seconds = (t1 - t0) as f64 / 1000.0;
    if seconds == 0.0 {
        return None;
    }
    Some(if is_rate { change / seconds } else { change })
}

/// Prometheus's `rate`, `increase` and `delta`: the change over the samples, counter resets
/// added back, extrapolated towards the window's edges.
fn extrapolated(samples: &[(i64, f64)], w: Window, is_counter: bool, is_rate: bool) -> Option<f64> {
    let [(first_t, first_v), .., (last_t, last_v)] = samples else { return None };
    let mut result = last_v - first_v;
    if is_counter {
        let mut previous = 0.0;
        for (_, v) in samples {
            if *v < previous {
                result += previous;
            }
            previous = *v;
        }
    }
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let average_gap = sampled / (samples.len() - 1) as f64;
    let threshold = average_gap * 1.1;
    let mut to_start = (first_t - w.from_ms) as f64 / 1000.0;
    let mut to_end = (w.to_ms - last_t) as f64 / 1000.0;
    if to_start >= threshold {
        to_start = average_gap / 2.0;
    }
    if is_counter && result > 0.0 && *first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_gap / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= w.seconds();
    }
    Some(result * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(from_ms: i64, to_ms: i64) -> Window {
        Window { from_ms, to_ms, param: None }
    }

    #[test]
    fn prometheus_rate_extrapolates_to_the_window_edges() {
        // A counter rising by 1 every 10 s, sampled at 5, 15, ... 295 in (0, 300].
        let samples: Vec<(i64, f64)> = (0..30).map(|i| (5_000 + i * 10_000, 100.0 + i as f64)).collect();
        let rate = extrapolated(&samples, w(0, 300_000), true, true).unwrap();
        assert!((rate - 0.1).abs() < 1e-12, "{rate}");
        // From zero, the start is not extrapolated past the counter's zero point.
        let from_zero: Vec<(i64, f64)> = samples.iter().map(|(t, v)| (*t, v - 100.0)).collect();
        let rate = extrapolated(&from_zero, w(0, 300_000), true, true).unwrap();
        assert!((rate - 29.5 / 300.0).abs() < 1e-12, "{rate}");
        // A reset is added back.
        let reset = [(10_000, 5.0), (20_000, 7.0), (30_000, 1.0)];
        let increase = extrapolated(&reset, w(5_000, 35_000), true, false).unwrap();
        assert!((increase - 3.0 * 30.0 / 20.0).abs() < 1e-9, "{increase}");
        assert_eq!(extrapolated(&reset[..1], w(0, 10_000), true, true), None, "one sample gives no rate");
    }

    #[test]
    fn quantiles_interpolate_between_ranks_as_prometheus() {
        assert_eq!(quantile(0.5, &mut [1.0, 2.0, 3.0, 4.0]), 2.5);
        assert_eq!(quantile(0.0, &mut [3.0, 1.0]), 1.0);
        assert_eq!(quantile(1.5, &mut [3.0, 1.0]), f64::INFINITY);
        assert!((variance(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn irate_reads_the_last_two_samples() {
        assert_eq!(instant_change(&[(0, 1.0), (10_000, 3.0), (20_000, 7.0)], true), Some(0.4));
        assert_eq!(instant_change(&[(0, 5.0), (10_000, 2.0)], true), Some(0.2), "a reset counts from zero");
        assert_eq!(instant_change(&[(0, 5.0), (10_000, 2.0)], false), Some(-3.0));
        assert_eq!(instant_change(&[(0, 5.0)], true), None);
    }
}
