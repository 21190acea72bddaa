//! What one flush hands the store: closed interval deltas, series seen for the first time in
//! this process, and the Pushgateway cumulative state that goes with those deltas.

use super::rollup::Rollup;
use crate::model::{MetricKind, SeriesId};

#[derive(Debug, Default)]
pub struct FlushBatch {
    /// Increasing per process and persisted with the batch, so a query can tell whether a batch
    /// it saw in flight has been committed already.
    pub seq: u64,
    /// The oldest interval start still accepting samples when this batch was drained: every
    /// interval before it is final once this batch commits (the downsampler's watermark).
    pub accept_floor_s: i64,
    /// When the batch was drained (unix seconds): the store's "now" for what it does with the
    /// batch (cumulative state's age, retention), so all of it runs on one clock.
    pub now_s: i64,
    /// Every interval before this was drained into this batch or an earlier one: once it
    /// commits, whatever was accepted for those intervals is on disk.
    pub upto_s: i64,
    pub new_series: Vec<NewSeries>,
    pub rollups: Vec<RollupDelta>,
    pub cumulative: Vec<CumulativeChange>,
}

#[derive(Debug, Clone)]
pub struct NewSeries {
    pub id: SeriesId,
    pub key: Box<str>,
    pub kind: MetricKind,
}

#[derive(Debug, Clone)]
pub struct RollupDelta {
    pub series: SeriesId,
    pub start_s: i64,
    pub rollup: Rollup,
}

/// The last cumulative values pushed for a series (`None`: the group was deleted).
#[derive(Debug, Clone)]
pub struct CumulativeChange {
    pub series: SeriesId,
    pub group: u64,
    pub values: Option<Vec<f64>>,
}

impl FlushBatch {
    pub fn is_empty(&self) -> bool {
        self.new_series.is_empty() && self.rollups.is_empty() && self.cumulative.is_empty()
    }

    /// About how much memory the batch holds, for the unflushed-bytes bound.
    pub fn heap_bytes(&self) -> usize {
        let rollups: usize =
            self.rollups.iter().map(|r| std::mem::size_of::<RollupDelta>() + r.rollup.heap_bytes()).sum();
        let series: usize = self.new_series.iter().map(|s| std::mem::size_of::<NewSeries>() + s.key.len()).sum();
        let cumulative: usize = self
            .cumulative
            .iter()
            .map(|c| std::mem::size_of::<CumulativeChange>() + c.values.as_ref().map_or(0, |v| v.len() * 8))
            .sum();
        rollups + series + cumulative
    }
}
