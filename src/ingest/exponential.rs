//! OTLP exponential histograms into the sketch, pure. Bucket `i` at scale `s` holds values in
//! `(b^i, b^(i+1)]` with `b = 2^(2^-s)`; each bucket's observations go into the sketch at
//! `2·lo·hi/(lo+hi)`, the point whose relative distance to both ends is equal, so a value is
//! off by at most `(b-1)/(b+1)` relative (0.14 % at scale 8, 1.1 % at scale 5; SDKs pick the finest scale that
//! fits their bucket limit), before the sketch's own ≤ 1 %. Zero-bucket observations count as 0.
//!
//! Cumulative points turn into deltas: the previous point is brought to the current scale
//! (an SDK only ever downscales a stream: bucket `j` becomes `j >> d`), then subtracted bucket
//! by bucket; a total that went down is a reset and the point counts whole.

/// The scales the OpenTelemetry data model allows (finer ones would not fit a float).
pub const SCALES: std::ops::RangeInclusive<i32> = -10..=20;

/// A point's state as one vector (kept between exports):
/// `[count, sum, zero_count, scale, offset, counts…]`, values already in seconds.
pub fn state(count: f64, sum: f64, zero_count: f64, scale: i32, offset: i32, counts: &[u64], out: &mut Vec<f64>) {
    out.clear();
    out.extend([count, sum, zero_count, f64::from(scale), f64::from(offset)]);
    out.extend(counts.iter().map(|c| *c as f64));
}

/// What `current` adds over `previous`: `(count, sum)`, and each bucket's gain as
/// `(value, n)` into `buckets` (emptied first), values scaled by `unit` (seconds per unit).
/// `previous` is `None` for the first point of a stream. Allocates nothing beyond `buckets`.
pub fn gained(previous: Option<&[f64]>, current: &[f64], unit: f64, buckets: &mut Vec<(f64, u64)>) -> (f64, f64) {
    let (scale, offset) = (current[3] as i32, current[4] as i64);
    // The previous point counts only when it is a whole state, can be brought to this scale
    // and nothing went down.
    let base = previous
        .filter(|p| is_exponential_state(p))
        .and_then(|p| Some((p, (p[3] as i32).checked_sub(scale).filter(|d| (0..64).contains(d))?)))
        .filter(|(p, _)| !went_down(p, current));
    buckets.clear();
    let zero = current[2] - base.map_or(0.0, |(p, _)| p[2]);
    if zero > 0.0 {
        buckets.push((0.0, zero.round() as u64));
    }
    // Previous buckets in order, at this scale (index >> shift), walked alongside the current ones.
    let mut k = 0;
    for (j, n) in current[5..].iter().enumerate() {
        let index = offset + j as i64;
        let mut before = 0.0;
        if let Some((p, shift)) = base {
            let (prev_offset, counts) = (p[4] as i64, &p[5..]);
            let at = |k: usize| (prev_offset + k as i64) >> shift;
            while k < counts.len() && at(k) < index {
                k += 1;
            }
            while k < counts.len() && at(k) == index {
                before += counts[k];
                k += 1;
            }
        }
        let n = (n - before).max(0.0).round() as u64;
        if n > 0 {
            buckets.push((representative(index, scale) * unit, n));
        }
    }
    match base {
        Some((p, _)) => (current[0] - p[0], current[1] - p[1]),
        None => (current[0], current[1]),
    }
}

/// Whether `state` has the shape [`state`] writes: another kind of histogram's state (a stream
/// that switched kinds under the same start time) or a damaged one is no base to diff against.
/// An explicit histogram's state always holds its `+Inf` bound, which no exponential one does.
fn is_exponential_state(state: &[f64]) -> bool {
    let integral_in = |v: f64, range: std::ops::RangeInclusive<f64>| v.fract() == 0.0 && range.contains(&v);
    state.len() >= 5
        && integral_in(state[3], f64::from(*SCALES.start())..=f64::from(*SCALES.end()))
        && integral_in(state[4], f64::from(i32::MIN)..=f64::from(i32::MAX))
        && state.iter().all(|v| v.is_finite())
        && [state[0], state[2]].iter().chain(&state[5..]).all(|n| *n >= 0.0)
}

fn went_down(previous: &[f64], current: &[f64]) -> bool {
    current[0] < previous[0] || current[2] < previous[2]
}

/// The value a bucket's observations stand for (in the histogram's unit).
pub fn representative(index: i64, scale: i32) -> f64 {
    // 2·lo·hi/(lo+hi) = b^i · 2b/(1+b), in logarithms: at scale -10 the base b is 2^1024,
    // which is no f64, and a large index overflows b^i long before the value itself does.
    // The result may still be infinite (or 0) for an index beyond any f64; callers refuse it.
    let ln_base = 2f64.powi(-scale) * std::f64::consts::LN_2;
    let ln_factor = std::f64::consts::LN_2 - (-ln_base).exp().ln_1p();
    (index as f64 * ln_base + ln_factor).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest relative error [`representative`] makes at `scale`.
    fn relative_error(scale: i32) -> f64 {
        let base = 2f64.powf(2f64.powi(-scale));
        (base - 1.0) / (base + 1.0)
    }

    #[test]
    fn representatives_stay_within_the_stated_bound_of_their_bucket() {
        for scale in [0, 3, 8] {
            let bound = relative_error(scale);
            let base = 2f64.powf(2f64.powi(-scale));
            for index in [-40_i64, -1, 0, 1, 17, 300] {
                let (lo, hi) = (base.powf(index as f64), base.powf(index as f64 + 1.0));
                let r = representative(index, scale);
                assert!(lo < r && r <= hi, "scale {scale} index {index}");
                assert!(((r - lo) / lo).abs() <= bound * (1.0 + 1e-9) && ((hi - r) / hi).abs() <= bound * (1.0 + 1e-9));
            }
        }
        assert!((relative_error(8) - 0.00135).abs() < 1e-5 && (relative_error(5) - 0.0108).abs() < 1e-4);
    }

    #[test]
    fn representatives_at_the_extreme_scales_are_numbers() {
        // Scale -10: base 2^1024, no f64; bucket 0 is (1, 2^1024] and stands for 2 (2b/(1+b)).
        assert!((representative(0, -10) - 2.0).abs() < 1e-12, "{}", representative(0, -10));
        // Far beyond any f64: infinite, never NaN (callers refuse it).
        assert_eq!(representative(1100, 0), f64::INFINITY);
        assert!(representative(-1100, 20) >= 0.0);
    }

    #[test]
    fn cumulative_points_turn_into_deltas_across_a_downscale() {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        // Scale 1: buckets 4 and 5 hold 2 and 1; then the SDK downscaled to 0 (4,5 → 2) and
        // added one observation to bucket 2 and one to bucket 3, and one zero.
        state(3.0, 9.0, 0.0, 1, 4, &[2, 1], &mut first);
        state(6.0, 20.0, 1.0, 0, 2, &[4, 1], &mut second);
        let mut buckets = Vec::new();
        assert_eq!(gained(Some(&first), &second, 1.0, &mut buckets), (3.0, 11.0));
        assert_eq!(buckets, vec![(0.0, 1), (representative(2, 0), 1), (representative(3, 0), 1)]);
        // A re-sent point adds nothing; a total that went down counts whole.
        assert_eq!(gained(Some(&second), &second, 1.0, &mut buckets), (0.0, 0.0));
        assert_eq!(buckets, vec![]);
        let mut lower = Vec::new();
        state(2.0, 5.0, 0.0, 0, 2, &[1, 1], &mut lower);
        assert_eq!(gained(Some(&second), &lower, 1.0, &mut buckets), (2.0, 5.0));
        assert_eq!(buckets, vec![(representative(2, 0), 1), (representative(3, 0), 1)]);
        // A previous state that is not an exponential histogram's counts as none.
        assert_eq!(gained(Some(&[3.0, 1.0]), &second, 1.0, &mut buckets), (6.0, 20.0));
        // A finer scale than before (not something an SDK does within a stream) counts whole.
        assert_eq!(gained(Some(&second), &first, 1.0, &mut buckets), (3.0, 9.0));
        assert_eq!(buckets, vec![(representative(4, 1), 2), (representative(5, 1), 1)]);
    }
}
