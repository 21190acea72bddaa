//! A DDSketch: a mergeable quantile sketch with a guaranteed relative error of 1 %.
//!
//! Values (seconds, never negative) map to logarithmic bins `(γ^(i-1), γ^i]` with
//! `γ = (1+α)/(1-α)`; any quantile read back is within `α` of the true value at that rank, and
//! merging two sketches is adding their bins, so quantiles over windows and across series stay
//! exact to the same bound. Bins are one dense run of `u64` counts; values at or below
//! [`MIN_INDEXABLE`] share a zero bin. Written here rather than taken from a crate because the
//! store needs a compact, versioned blob and weighted inserts (StatsD sample rates).

use thiserror::Error;

/// The relative accuracy every quantile is guaranteed to.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this (1 ns) count as zero.
pub const MIN_INDEXABLE: f64 = 1e-9;
/// A bound on bins so hostile input cannot grow a sketch without limit; the lowest bins are
/// folded together past it (γ^4096 spans 35 decades, so real latencies never get there).
const MAX_BINS: usize = 4096;
/// Bin indices a stored sketch may hold: real values index between about -1,040 (1 ns) and
/// 35,500 (f64::MAX), so anything beyond this is a corrupt blob, and index arithmetic on the
/// valid range cannot overflow an i32.
const MAX_INDEX: i32 = 1 << 20;

const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);

fn ln_gamma() -> f64 {
    GAMMA.ln()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SketchError {
    #[error("sketch blob is truncated")]
    Truncated,
    #[error("sketch blob has unknown version {0}")]
    Version(u8),
    #[error("sketch blob has {0} bins, more than the {MAX_BINS} allowed")]
    TooManyBins(u64),
    #[error("sketch blob starts at bin {0}, beyond any value's bin")]
    OutOfRange(i32),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    /// Index of `bins[0]`.
    offset: i32,
    bins: Vec<u64>,
    zero: u64,
}

impl Sketch {
    pub fn new() -> Sketch {
        Sketch::default()
    }

    /// Total weight held.
    pub fn count(&self) -> u64 {
        self.bins.iter().fold(self.zero, |total, n| total.saturating_add(*n))
    }

    pub fn is_empty(&self) -> bool {
        self.zero == 0 && self.bins.is_empty()
    }

    /// Adds `value` with weight `n`. Negative and NaN values are the caller's to reject.
    #[inline]
    pub fn add(&mut self, value: f64, n: u64) {
        if n == 0 {
            return;
        }
        if value <= MIN_INDEXABLE || value.is_nan() {
            self.zero = self.zero.saturating_add(n);
            return;
        }
        let idx = bin_index(value);
        let slot = self.slot_for(idx);
        self.bins[slot] = self.bins[slot].saturating_add(n);
    }

    /// Adds every bin of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        self.zero = self.zero.saturating_add(other.zero);
        if other.bins.is_empty() {
            return;
        }
        let first = other.offset;
        let last = other.offset + other.bins.len() as i32 - 1;
        self.slot_for(last);
        self.slot_for(first);
        for (delta, count) in other.bins.iter().enumerate() {
            // Indices below the run were folded into its lowest bin.
            let idx = first + delta as i32;
            let slot = (idx - self.offset).max(0) as usize;
            self.bins[slot] = self.bins[slot].saturating_add(*count);
        }
    }

    /// The value at quantile `q` in `[0, 1]`, or `None` when empty: the nearest-rank
    /// definition, the `⌈q·n⌉`-th smallest value (so p99 of three requests is the slowest).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = nearest_rank(q, total);
        if rank < self.zero {
            return Some(0.0);
        }
        let mut seen = self.zero;
        for (delta, count) in self.bins.iter().enumerate() {
            seen = seen.saturating_add(*count);
            if seen > rank {
                return Some(bin_value(self.offset + delta as i32));
            }
        }
        self.bins.last().map(|_| bin_value(self.offset + self.bins.len() as i32 - 1))
    }

    /// The bins as they are held: the index of the first, their counts, and the zero bin's
    /// count (values at or below [`MIN_INDEXABLE`]).
    pub fn bins(&self) -> (i32, &[u64], u64) {
        (self.offset, &self.bins, self.zero)
    }

    /// Heap bytes held, for the memory gauge.
    pub fn heap_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<u64>()
    }

    /// The slot of bin `idx`, growing (or folding) the dense run to hold it.
    fn slot_for(&mut self, idx: i32) -> usize {
        if self.bins.is_empty() {
            self.offset = idx;
            self.bins.push(0);
            return 0;
        }
        let last = self.offset + self.bins.len() as i32 - 1;
        if idx >= self.offset && idx <= last {
            return (idx - self.offset) as usize;
        }
        if idx > last {
            let new_len = (idx - self.offset + 1) as usize;
            if new_len > MAX_BINS {
                self.fold_below(idx - MAX_BINS as i32 + 1);
            }
            let new_len = (idx - self.offset + 1) as usize;
            self.bins.resize(new_len, 0);
            return new_len - 1;
        }
        // idx below the run: grow at the front, or fold it into the lowest bin if too wide.
        let grow = (self.offset - idx) as usize;
        if self.bins.len() + grow > MAX_BINS {
            let room = MAX_BINS - self.bins.len();
            self.bins.splice(0..0, std::iter::repeat_n(0, room));
            self.offset -= room as i32;
            return 0;
        }
        self.bins.splice(0..0, std::iter::repeat_n(0, grow));
        self.offset = idx;
        0
    }

    /// Folds every bin below `new_offset` into the bin at `new_offset`, which becomes the first.
    fn fold_below(&mut self, new_offset: i32) {
        let n = ((new_offset - self.offset) as usize).min(self.bins.len());
        let folded = self.bins.drain(..n).fold(0u64, u64::saturating_add);
        self.offset = new_offset;
        if self.bins.is_empty() {
            self.bins.push(0);
        }
        self.bins[0] = self.bins[0].saturating_add(folded);
    }
}

/// The 0-based index of the `⌈q·n⌉`-th smallest of `n` values. A hair of tolerance keeps
/// `p99.9` (parsed as 0.9990000000000001) from skipping a rank when `q·n` is whole.
pub fn nearest_rank(q: f64, n: u64) -> u64 {
    ((q.clamp(0.0, 1.0) * n as f64 - 1e-9).ceil() as u64).clamp(1, n) - 1
}

#[inline]
fn bin_index(value: f64) -> i32 {
    // An infinite value (a histogram bucket bound of +Inf, say) goes to the top bin, whose
    // estimate is still finite, rather than to an index at the edge of i32, where arithmetic
    // overflows.
    let top = (f64::MAX.ln() / ln_gamma()).floor();
    (value.ln() / ln_gamma()).ceil().min(top) as i32
}

/// The values bin `idx` holds: `(γ^(idx-1), γ^idx]`.
pub fn bin_bounds(idx: i32) -> (f64, f64) {
    (GAMMA.powi(idx - 1), GAMMA.powi(idx))
}

/// The estimate for bin `idx`: within α of every value the bin holds.
pub fn bin_value(idx: i32) -> f64 {
    // γ^i · 2/(γ+1), in that order: the top bin's γ^i is near f64::MAX and 2·γ^i would overflow.
    GAMMA.powi(idx) * (2.0 / (GAMMA + 1.0))
}

mod blob;
#[cfg(test)]
mod tests;
