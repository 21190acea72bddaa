//! Rollup tiers: the resolutions data is kept at and for how long. Tier 0 is the flush
//! interval; each coarser tier is built from the one before it by merging rollups.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub resolution_s: i64,
    pub retention_s: i64,
}

impl Tier {
    /// The series-major table of a coarse tier: key (series_id, start_s), so one series' rows
    /// over time are together for queries.
    pub fn table(&self) -> String {
        format!("rollup_{}s", self.resolution_s)
    }

    /// The time-major table of tier 0: key (start_s, series_id), so a flush appends to a few
    /// contiguous pages instead of dirtying a page per series (which made WAL writes and
    /// checkpoints 70 % of a flush).
    pub fn raw_table(&self) -> String {
        format!("raw_{}s", self.resolution_s)
    }

    /// Tier 0's series-major blocks of final rows (see `seal.rs`): key (series_id, start_s).
    pub fn sealed_table(&self) -> String {
        format!("sealed_{}s", self.resolution_s)
    }

    /// The meta key of tier 0's sealed watermark: intervals before it are in the blocks.
    pub fn sealed_key(&self) -> String {
        format!("sealed_{}s", self.resolution_s)
    }

    /// The meta key of this tier's downsampling watermark: windows before it are complete.
    pub fn watermark_key(&self) -> String {
        format!("watermark_{}s", self.resolution_s)
    }
}

pub fn align_down(ts_s: i64, resolution_s: i64) -> i64 {
    ts_s - ts_s.rem_euclid(resolution_s)
}

pub fn align_up(ts_s: i64, resolution_s: i64) -> i64 {
    let down = align_down(ts_s, resolution_s);
    if down == ts_s { ts_s } else { down + resolution_s }
}
