//! One series' summary over one interval: count, sum, min, max, last and, for timings, a sketch.
//! Rollups of any tier merge the same way, which is how downsampling and queries combine them.

use super::sketch::Sketch;

/// The largest magnitude a pushed value may have. Ingest refuses larger ones, so a single
/// value (or the difference of two cumulative totals) is always finite; sums saturate at
/// `±f64::MAX` instead of overflowing, so no rollup ever holds an infinity or NaN.
pub const MAX_MAGNITUDE: f64 = 1e300;

/// Whether ingest takes `v` as a value: finite and within [`MAX_MAGNITUDE`].
#[inline]
pub fn storable(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_MAGNITUDE
}

/// `a + b`, held at `±f64::MAX` where it would overflow (and `a` kept if `b` is NaN): a
/// rollup's count and sum stay finite however many intervals or series are merged.
#[inline]
pub fn saturating_add(a: f64, b: f64) -> f64 {
    let sum = a + b;
    if sum.is_finite() {
        sum
    } else if sum.is_nan() {
        if a.is_nan() { 0.0 } else { a }
    } else {
        f64::MAX.copysign(sum)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    /// Samples seen; weighted by the inverse sample rate for StatsD, so it may be fractional.
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// The value of the latest sample, and when it was taken (unix ms).
    pub last: f64,
    pub last_ms: i64,
    /// Present for timings only.
    pub sketch: Option<Sketch>,
}

impl Rollup {
    pub fn empty(with_sketch: bool) -> Rollup {
        Rollup {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: 0.0,
            last_ms: i64::MIN,
            sketch: with_sketch.then(Sketch::new),
        }
    }

    /// Records `value` observed `weight` times at `ts_ms`.
    #[inline]
    pub fn observe(&mut self, value: f64, weight: f64, ts_ms: i64) {
        self.count = saturating_add(self.count, weight);
        self.sum = saturating_add(self.sum, value * weight);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if ts_ms >= self.last_ms {
            self.last = value;
            self.last_ms = ts_ms;
        }
        if let Some(sketch) = &mut self.sketch {
            sketch.add(value, weight_to_bins(weight));
        }
    }

    /// Adds a counter increment: `sum` is the total, `count` the number of increments.
    #[inline]
    pub fn increment(&mut self, delta: f64, ts_ms: i64) {
        self.observe(delta, 1.0, ts_ms);
    }

    /// Adds a histogram's new observations: `count` and `sum` exactly, the sketch (and
    /// min/max) from each bucket's representative value and how many fell in it.
    pub fn observe_buckets(&mut self, count: f64, sum: f64, buckets: impl Iterator<Item = (f64, u64)>, ts_ms: i64) {
        if count <= 0.0 {
            return;
        }
        self.count = saturating_add(self.count, count);
        self.sum = saturating_add(self.sum, sum);
        for (value, n) in buckets.filter(|(_, n)| *n > 0) {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
            if let Some(sketch) = &mut self.sketch {
                sketch.add(value, n);
            }
        }
        if ts_ms >= self.last_ms {
            self.last = sum / count;
            self.last_ms = ts_ms;
        }
    }

    /// Folds `other` in; `other` wins ties on `last` because it was recorded later.
    pub fn merge(&mut self, other: &Rollup) {
        self.count = saturating_add(self.count, other.count);
        self.sum = saturating_add(self.sum, other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.last_ms >= self.last_ms {
            self.last = other.last;
            self.last_ms = other.last_ms;
        }
        match (&mut self.sketch, &other.sketch) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.sketch = Some(theirs.clone()),
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0.0 && self.sketch.as_ref().is_none_or(Sketch::is_empty)
    }

    pub fn heap_bytes(&self) -> usize {
        self.sketch.as_ref().map_or(0, Sketch::heap_bytes)
    }
}

/// Sketch bins count whole observations: a sample rate of 0.3 adds 3 (the rollup's `count`
/// keeps the exact 3.33).
#[inline]
fn weight_to_bins(weight: f64) -> u64 {
    (weight.round() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_matches_observing_everything_in_one() {
        let mut a = Rollup::empty(true);
        let mut b = Rollup::empty(true);
        let mut all = Rollup::empty(true);
        for (idx, v) in [0.2, 0.01, 0.5, 0.03].iter().enumerate() {
            let target = if idx % 2 == 0 { &mut a } else { &mut b };
            target.observe(*v, 1.0, idx as i64);
            all.observe(*v, 1.0, idx as i64);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.min, 0.01);
        assert_eq!(a.max, 0.5);
        assert_eq!(a.last, 0.03);
        assert_eq!(a.count, 4.0);
    }

    #[test]
    fn last_follows_the_timestamp_not_the_order() {
        let mut gauge = Rollup::empty(false);
        gauge.observe(5.0, 1.0, 2000);
        gauge.observe(9.0, 1.0, 1000);
        assert_eq!(gauge.last, 5.0);
        assert!(gauge.sketch.is_none());
        assert!(Rollup::empty(false).is_empty());
    }

    #[test]
    fn sums_saturate_instead_of_overflowing() {
        let mut a = Rollup::empty(true);
        a.observe(1e300, 1e9, 0);
        a.observe(1e300, 1e9, 1);
        assert_eq!(a.sum, f64::MAX);
        let mut b = Rollup::empty(false);
        b.observe(-1e300, 1e9, 0);
        b.observe(-1e300, 1e9, 0);
        assert_eq!(b.sum, -f64::MAX);
        // Both held at the bound: merging them gives 0, never MAX + -MAX = NaN.
        a.merge(&b);
        assert_eq!(a.sum, 0.0);
        a.observe(f64::NAN, 1.0, 2);
        assert!(a.sum.is_finite() && a.count.is_finite());
        assert_eq!(saturating_add(f64::MAX, f64::INFINITY), f64::MAX);
        assert_eq!(saturating_add(-1.0, f64::NEG_INFINITY), -f64::MAX);
    }
}

#[cfg(test)]
mod properties {
    //! Rollups merge the same way in any order: downsampling and queries rely on it.

    use proptest::prelude::*;

    use super::Rollup;

    proptest! {
        #[test]
        fn merging_parts_in_any_order_matches_observing_everything(
            parts in prop::collection::vec(prop::collection::vec((1e-4f64..10.0, 0i64..1_000_000), 1..20), 1..6),
            reverse in any::<bool>(),
        ) {
            let mut whole = Rollup::empty(true);
            for (value, ts) in parts.iter().flatten() {
                whole.observe(*value, 1.0, *ts);
            }
            let mut order: Vec<&Vec<(f64, i64)>> = parts.iter().collect();
            if reverse {
                order.reverse();
            }
            let mut merged = Rollup::empty(true);
            for part in order {
                let mut rollup = Rollup::empty(true);
                for (value, ts) in part {
                    rollup.observe(*value, 1.0, *ts);
                }
                merged.merge(&rollup);
            }
            prop_assert_eq!(merged.count, whole.count);
            prop_assert!((merged.sum - whole.sum).abs() <= whole.sum * 1e-12);
            prop_assert_eq!((merged.min, merged.max), (whole.min, whole.max));
            prop_assert_eq!(merged.last_ms, whole.last_ms);
            prop_assert_eq!(merged.sketch.as_ref().map(|s| s.count()), whole.sketch.as_ref().map(|s| s.count()));
        }
    }
}
