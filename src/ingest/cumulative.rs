//! Cumulative totals (what Prometheus clients push) turned into per-interval deltas. The first
//! value of a series counts whole, as a counter starts at 0; a decrease is a reset, after
//! which the new total counts whole again. Pure functions, called under the series' lock.

use crate::aggregate::rollup::Rollup;

/// The increment from `previous` to `current` total.
pub fn counter_delta(previous: Option<&[f64]>, current: f64) -> f64 {
    match previous {
        Some([before]) if current >= *before => current - before,
        _ => current,
    }
}

/// A histogram's state as one vector: `[count, sum, le₁, cum₁, le₂, cum₂, …]`, buckets in
/// ascending order of `le`, the last one `+Inf`.
pub fn histogram_state(count: f64, sum: f64, buckets: &[(f64, f64)], out: &mut Vec<f64>) {
    out.clear();
    out.extend([count, sum]);
    for (le, cumulative) in buckets {
        out.extend([*le, *cumulative]);
    }
}

/// Adds to `rollup` what a histogram gained between `previous` and `current` states.
pub fn apply_histogram(previous: Option<&[f64]>, current: &[f64], rollup: &mut Rollup, ts_ms: i64) {
    let base = previous.filter(|prev| !is_reset(prev, current));
    let before = |idx: usize| base.map_or(0.0, |b| b[idx]);
    let count = current[0] - before(0);
    let sum = current[1] - before(1);
    let n_buckets = (current.len() - 2) / 2;
    let bucket_gain = |i: usize| {
        let at = |state: Option<&[f64]>, b: usize| state.map_or(0.0, |s| s[3 + 2 * b]);
        let now = at(Some(current), i) - if i == 0 { 0.0 } else { at(Some(current), i - 1) };
        let then = at(base, i) - if i == 0 { 0.0 } else { at(base, i - 1) };
        (now - then).max(0.0).round() as u64
    };
    let buckets = (0..n_buckets).map(|i| (representative(current, i), bucket_gain(i)));
    rollup.observe_buckets(count, sum, buckets, ts_ms);
}

/// A reset: the layout or bounds changed, or any total went down.
fn is_reset(previous: &[f64], current: &[f64]) -> bool {
    if previous.len() != current.len() || current[0] < previous[0] {
        return true;
    }
    let n_buckets = (current.len() - 2) / 2;
    (0..n_buckets).any(|b| previous[2 + 2 * b] != current[2 + 2 * b] || current[3 + 2 * b] < previous[3 + 2 * b])
}

/// The value a bucket's observations stand for: the middle of `(lower, upper]`, or the lower
/// bound for `+Inf`. The error this adds is bounded by the bucket's width.
fn representative(state: &[f64], bucket: usize) -> f64 {
    let upper = state[2 + 2 * bucket];
    let lower = if bucket == 0 { 0.0_f64.min(upper) } else { state[2 + 2 * (bucket - 1)] };
    if upper.is_infinite() { lower } else { (lower + upper) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_whole_first_then_deltas_then_resets() {
        assert_eq!(counter_delta(None, 5.0), 5.0);
        assert_eq!(counter_delta(Some(&[5.0]), 8.0), 3.0);
        assert_eq!(counter_delta(Some(&[8.0]), 2.0), 2.0);
    }

    fn state(count: f64, sum: f64, buckets: &[(f64, f64)]) -> Vec<f64> {
        let mut out = Vec::new();
        histogram_state(count, sum, buckets, &mut out);
        out
    }

    #[test]
    fn histogram_gains_land_in_their_buckets() {
        let first = state(3.0, 0.35, &[(0.1, 1.0), (0.5, 3.0), (f64::INFINITY, 3.0)]);
        let second = state(5.0, 2.35, &[(0.1, 1.0), (0.5, 3.0), (f64::INFINITY, 5.0)]);
        let mut rollup = Rollup::empty(true);
        apply_histogram(None, &first, &mut rollup, 1);
        assert_eq!((rollup.count, rollup.sum), (3.0, 0.35));
        assert_eq!(rollup.sketch.as_ref().unwrap().count(), 3);
        assert_eq!((rollup.min, rollup.max), (0.05, 0.3));
        let mut later = Rollup::empty(true);
        apply_histogram(Some(&first), &second, &mut later, 2);
        assert_eq!((later.count, later.sum), (2.0, 2.0));
        // Both new observations were above 0.5: the +Inf bucket stands for its lower bound.
        assert_eq!((later.min, later.max), (0.5, 0.5));
        // A reset (count went down) counts the new totals whole.
        let reset = state(1.0, 0.05, &[(0.1, 1.0), (0.5, 1.0), (f64::INFINITY, 1.0)]);
        let mut after_reset = Rollup::empty(true);
        apply_histogram(Some(&second), &reset, &mut after_reset, 3);
        assert_eq!(after_reset.count, 1.0);
    }
}
