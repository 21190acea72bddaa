//! A timing's window histogram carried from step to step. A range query's windows overlap
//! (`rate(x[5m])` at 1 m steps shares four fifths of each window with the last), so a step
//! adds the intervals that entered and takes away those that left instead of merging the
//! whole window again: O(points) bin merges per series for the whole query instead of
//! O(steps × window). Bin counts are whole numbers held in f64, so taking away is exact; the
//! count, sum, min and max are read from the window's rollups each step.

use std::ops::Range;

use rustc_hash::FxHashMap;

use super::PromError;
use super::histogram::Histogram;
use super::range::{self, Window};
use super::source::{Points, Shape};
use super::value::{Sample, SeriesIdx};

/// One series' last window: which points it held and their bins.
pub struct Sliding {
    window: Range<usize>,
    bins: Histogram,
}

/// Per range-function node and series.
pub type SlidingCache = FxHashMap<(usize, SeriesIdx), Sliding>;

/// The merged histogram of `p`'s points in `window`, from the series' previous window at this
/// node when the two overlap.
pub fn window_histogram(cache: &mut SlidingCache, key: usize, p: &Points, window: Range<usize>) -> Histogram {
    let state = cache.entry((key, p.series)).or_insert_with(|| Sliding { window: 0..0, bins: Histogram::empty() });
    let previous = state.window.clone();
    if window.start < previous.start || window.start >= previous.end || window.end < previous.end {
        // Moved back (a subquery's next outer step) or past the old window: start over.
        state.bins = Histogram::empty();
        p.rollups[window.clone()].iter().for_each(|r| state.bins.add_bins_of(r, 1.0));
    } else {
        p.rollups[previous.start..window.start].iter().for_each(|r| state.bins.add_bins_of(r, -1.0));
        p.rollups[previous.end..window.end].iter().for_each(|r| state.bins.add_bins_of(r, 1.0));
    }
    state.window = window.clone();
    let rollups = &p.rollups[window];
    let mut out = state.bins.clone();
    out.set_totals(
        rollups.iter().map(|r| r.count).sum(),
        rollups.iter().map(|r| r.sum).sum(),
        rollups.iter().map(|r| r.min).fold(f64::INFINITY, f64::min),
        rollups.iter().map(|r| r.max).fold(f64::NEG_INFINITY, f64::max),
    );
    out
}

/// `rate` or `increase` (`func`) of each of `list`'s series over `window`: timings through
/// their carried windows, counters from their running totals.
pub fn increases(
    cache: &mut SlidingCache,
    key: usize,
    func: &str,
    list: &[Points],
    window: Window,
) -> Result<Vec<Sample>, PromError> {
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        let idx = p.window(window.from_ms, window.to_ms);
        let val = match p.shape {
            Shape::Timing if !idx.is_empty() => {
                Some(range::timing_increase(func, window_histogram(cache, key, p, idx), window))
            }
            _ => range::over_points(func, p, idx, window)?,
        };
        if let Some(val) = val {
            out.push(Sample { series: p.series, val });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::rollup::Rollup;

    #[test]
    fn a_slid_window_equals_the_window_merged_afresh() {
        let rollups: Vec<Rollup> = (0..40)
            .map(|i| {
                let mut r = Rollup::empty(true);
                for j in 0..5 {
                    r.observe(0.001 * (1 + (i * 7 + j * 13) % 97) as f64, 1.0, i * 10_000);
                }
                r
            })
            .collect();
        let p = Points {
            series: 0,
            shape: Shape::Timing,
            t: (0..40).map(|i| i * 10_000).collect(),
            rollups,
            totals: Vec::new(),
            before: 0.0,
            history: None,
        };
        let mut cache = SlidingCache::default();
        for window in [0..10, 2..12, 2..12, 5..20, 30..40, 1..4, 3..9] {
            let slid = window_histogram(&mut cache, 1, &p, window.clone());
            let mut fresh = Histogram::empty();
            p.rollups[window.clone()].iter().for_each(|r| fresh.add_rollup(r));
            for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0] {
                assert_eq!(slid.quantile(q), fresh.quantile(q), "{window:?} q={q}");
            }
            assert_eq!((slid.count(), slid.sum()), (fresh.count(), fresh.sum()), "{window:?}");
        }
    }
}
