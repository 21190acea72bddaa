//! A timing as PromQL sees it: a native histogram whose buckets are the DDSketch's bins
//! (`(γ^(i-1), γ^i]`, γ from the sketch's 1 % relative accuracy) plus a zero bucket, with the
//! exact count, sum, min and max of the rollups merged into it.
//!
//! Counts stay whole while histograms are merged (`sum`, `increase`, windows): `rate` only sets
//! a `factor` every reported count is multiplied by, so a quantile is ranked on the real
//! observations and comes out exactly as the merged sketch's own, within 1 % of the true value.

use crate::aggregate::rollup::Rollup;
use crate::aggregate::sketch::{MIN_INDEXABLE, bin_bounds, bin_value, nearest_rank};

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Observations and their sum, before `factor`.
    count: f64,
    sum: f64,
    /// Exact extremes of what was observed: quantiles are clamped to them.
    min: f64,
    max: f64,
    zero: f64,
    offset: i32,
    bins: Vec<f64>,
    /// What every reported count and the sum are multiplied by (`1/range` after `rate`).
    factor: f64,
}

impl Histogram {
    /// An empty histogram (the identity of `add`).
    pub fn empty() -> Histogram {
        Histogram {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zero: 0.0,
            offset: 0,
            bins: Vec::new(),
            factor: 1.0,
        }
    }

    /// Folds a timing's rollup in (one without a sketch adds its count and sum only).
    pub fn add_rollup(&mut self, rollup: &Rollup) {
        self.normalise_if(1.0);
        self.count += rollup.count;
        self.sum += rollup.sum;
        self.min = self.min.min(rollup.min);
        self.max = self.max.max(rollup.max);
        if let Some(sketch) = &rollup.sketch {
            let (offset, bins, zero) = sketch.bins();
            self.zero += zero as f64;
            self.add_bins(offset, bins.iter().map(|n| *n as f64), bins.len());
        }
    }

    /// Adds (`sign` 1) or takes away (`sign` -1) a timing rollup's sketch bins only; the
    /// count, sum and extremes are set by [`Histogram::set_totals`]. Counts stay whole numbers,
    /// so taking away what was added is exact.
    pub fn add_bins_of(&mut self, rollup: &Rollup, sign: f64) {
        self.normalise_if(1.0);
        if let Some(sketch) = &rollup.sketch {
            let (offset, bins, zero) = sketch.bins();
            self.zero += sign * zero as f64;
            self.add_bins(offset, bins.iter().map(|n| sign * *n as f64), bins.len());
        }
    }

    /// Sets the observations' count, sum and extremes (before any factor).
    pub fn set_totals(&mut self, count: f64, sum: f64, min: f64, max: f64) {
        (self.count, self.sum, self.min, self.max) = (count, sum, min, max);
    }

    /// Adds `other`'s observations.
    pub fn add(&mut self, other: &Histogram) {
        if self.count == 0.0 && self.bins.is_empty() && self.zero == 0.0 {
            *self = other.clone();
            return;
        }
        if other.factor != self.factor {
            self.normalise_if(other.factor);
            let mut other = other.clone();
            other.normalise_if(self.factor);
            return self.add(&other);
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero += other.zero;
        self.add_bins(other.offset, other.bins.iter().copied(), other.bins.len());
    }

    /// Multiplies every count and the sum by `by` (`rate`, `* scalar`).
    pub fn scale(&mut self, by: f64) {
        self.factor *= by;
    }

    pub fn count(&self) -> f64 {
        self.count * self.factor
    }

    pub fn sum(&self) -> f64 {
        self.sum * self.factor
    }

    /// The value at quantile `q`: the sketch's estimate for the `⌈q·n⌉`-th smallest
    /// observation, clamped to the exact min and max. Out-of-range `q` answers as Prometheus.
    pub fn quantile(&self, q: f64) -> f64 {
        if q.is_nan() || self.count() <= 0.0 {
            return f64::NAN;
        }
        if q < 0.0 {
            return f64::NEG_INFINITY;
        }
        if q > 1.0 {
            return f64::INFINITY;
        }
        let total = self.zero + self.bins.iter().sum::<f64>();
        if total <= 0.0 {
            return f64::NAN;
        }
        let estimate = self.rank_value(q, total);
        if self.min <= self.max { estimate.clamp(self.min, self.max) } else { estimate }
    }

    /// The share of observations in `[lower, upper]`, interpolated log-linearly inside the
    /// bins the bounds cut.
    pub fn fraction(&self, lower: f64, upper: f64) -> f64 {
        let total = self.zero + self.bins.iter().sum::<f64>();
        if total <= 0.0 || lower.is_nan() || upper.is_nan() {
            return f64::NAN;
        }
        if lower >= upper {
            return 0.0;
        }
        let below = |x: f64| self.weight_at_or_below(x);
        ((below(upper) - below(lower)) / total).clamp(0.0, 1.0)
    }

    /// `(boundary rule, lower, upper, count)` of each non-empty bucket, lowest first, with
    /// Prometheus's boundary rules: 3 (both closed) for the zero bucket, 0 (open left) else.
    pub fn buckets(&self) -> impl Iterator<Item = (u8, f64, f64, f64)> + '_ {
        let zero = (self.zero > 0.0).then_some((3, 0.0, MIN_INDEXABLE, self.zero * self.factor));
        let bins = self.bins.iter().enumerate().filter(|(_, n)| **n > 0.0).map(|(delta, n)| {
            let (lower, upper) = bin_bounds(self.offset + delta as i32);
            (0, lower, upper, n * self.factor)
        });
        zero.into_iter().chain(bins)
    }

    fn rank_value(&self, q: f64, total: f64) -> f64 {
        // Whole counts (no factor folded in): the sketch's nearest rank, to the observation.
        let whole = total.fract() == 0.0 && total < 9.0e15;
        let target =
            if whole { nearest_rank(q, total as u64) as f64 + 0.5 } else { (q * total).max(f64::MIN_POSITIVE) };
        if target <= self.zero {
            return 0.0;
        }
        let mut seen = self.zero;
        for (delta, n) in self.bins.iter().enumerate() {
            seen += n;
            if seen >= target {
                return bin_value(self.offset + delta as i32);
            }
        }
        self.bins.len().checked_sub(1).map_or(0.0, |last| bin_value(self.offset + last as i32))
    }

    /// Observations at or below `x` (none at or below 0), a cut bin counted by where `x` falls in
    /// it on a log scale.
    fn weight_at_or_below(&self, x: f64) -> f64 {
        // Nothing lies below zero: a fraction from 0 counts the zero bucket.
        if x <= 0.0 {
            return 0.0;
        }
        let mut seen = self.zero;
        for (delta, n) in self.bins.iter().enumerate() {
            let (lower, upper) = bin_bounds(self.offset + delta as i32);
            if x >= upper {
                seen += n;
            } else {
                if x > lower {
                    seen += n * (x / lower).ln() / (upper / lower).ln();
                }
                break;
            }
        }
        seen
    }

    /// Folds `factor` into the counts when it is not `target`, so two histograms can add.
    fn normalise_if(&mut self, target: f64) {
        if self.factor == target {
            return;
        }
        let f = self.factor;
        self.count *= f;
        self.sum *= f;
        self.zero *= f;
        self.bins.iter_mut().for_each(|n| *n *= f);
        self.factor = 1.0;
    }

    fn add_bins(&mut self, offset: i32, counts: impl Iterator<Item = f64>, len: usize) {
        if len == 0 {
            return;
        }
        if self.bins.is_empty() {
            self.offset = offset;
        }
        let first = self.offset.min(offset);
        let last = (self.offset + self.bins.len() as i32).max(offset + len as i32);
        if first < self.offset {
            let grow = (self.offset - first) as usize;
            self.bins.splice(0..0, std::iter::repeat_n(0.0, grow));
            self.offset = first;
        }
        self.bins.resize((last - self.offset) as usize, 0.0);
        let start = (offset - self.offset) as usize;
        for (slot, n) in self.bins[start..].iter_mut().zip(counts) {
            *slot += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::sketch::Sketch;

    fn rollup_of(values: &[f64]) -> Rollup {
        let mut rollup = Rollup::empty(true);
        for (idx, v) in values.iter().enumerate() {
            rollup.observe(*v, 1.0, idx as i64);
        }
        rollup
    }

    #[test]
    fn quantiles_are_the_merged_sketchs_own_and_survive_rate() {
        let (a, b): (Vec<f64>, Vec<f64>) =
            ((1..=500).map(|i| i as f64 / 1000.0).collect(), (1..=300).map(|i| i as f64 / 100.0).collect());
        let mut merged = Sketch::new();
        a.iter().chain(&b).for_each(|v| merged.add(*v, 1));
        let mut h = Histogram::empty();
        h.add_rollup(&rollup_of(&a));
        let mut other = Histogram::empty();
        other.add_rollup(&rollup_of(&b));
        h.add(&other);
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            let expected = merged.quantile(q).unwrap().clamp(0.001, 3.0);
            assert_eq!(h.quantile(q), expected, "q={q}");
            let mut rate = h.clone();
            rate.scale(1.0 / 300.0);
            assert_eq!(rate.quantile(q), expected, "q={q} after rate");
        }
        assert_eq!(h.count(), 800.0);
        h.scale(0.5);
        assert_eq!(h.count(), 400.0);
        assert!((h.sum() - (a.iter().sum::<f64>() + b.iter().sum::<f64>()) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn histograms_with_different_factors_add_as_counts() {
        let mut a = Histogram::empty();
        a.add_rollup(&rollup_of(&[0.1, 0.2]));
        a.scale(0.5);
        let mut b = Histogram::empty();
        b.add_rollup(&rollup_of(&[0.3, 0.4]));
        a.add(&b);
        assert_eq!(a.count(), 3.0);
        let counted: f64 = a.buckets().map(|(_, _, _, n)| n).sum();
        assert!((counted - 3.0).abs() < 1e-12);
    }

    #[test]
    fn out_of_range_quantiles_and_empty_histograms_answer_as_prometheus() {
        let mut h = Histogram::empty();
        assert!(h.quantile(0.5).is_nan());
        h.add_rollup(&rollup_of(&[0.5]));
        assert_eq!(h.quantile(-0.1), f64::NEG_INFINITY);
        assert_eq!(h.quantile(1.5), f64::INFINITY);
        assert!(h.quantile(f64::NAN).is_nan());
    }

    #[test]
    fn fractions_count_whole_bins_and_interpolate_cut_ones() {
        let mut h = Histogram::empty();
        h.add_rollup(&rollup_of(&[0.0, 0.01, 0.1, 1.0]));
        assert_eq!(h.fraction(0.0, 10.0), 1.0);
        assert_eq!(h.fraction(0.5, 0.2), 0.0);
        let below_half = h.fraction(0.0, 0.5);
        assert!((below_half - 0.75).abs() < 1e-9, "{below_half}");
    }
}
