//! Reading the tiers' rows of a series. Coarse tiers are series-major tables: one range seek.
//! Tier 0 is two parts split at the sealed watermark (see `seal.rs`): series-major blocks
//! before it (one range seek per series), and the time-major raw table's short head after it
//! (a point lookup per interval, or one scan when many series are wanted).

use rusqlite::params;
use rustc_hash::{FxHashMap, FxHashSet};

use super::StoreError;
use super::block::{self, BLOCK_INTERVALS};
use super::codec::{ROLLUP_COLUMNS, merge_parts, read_rollup, read_scalars, rollup_of, sketch_blob};
use super::reader::ReadTx;
use super::tiers::align_up;
use crate::aggregate::rollup::Rollup;
use crate::model::SeriesId;

/// What one point lookup in the raw table costs, in rows a scan of it steps over (SQLite reads
/// every selected column of a scanned row, wanted or not).
const SEEK_COST_IN_ROWS: usize = 4;

/// Called with each row read: its interval's start, its scalars and its sketch's bytes.
type EachRow<'f> = dyn FnMut(i64, Rollup, Option<&[u8]>) -> Result<(), StoreError> + 'f;

/// [`EachRow`] with the row's series first.
type EachSeriesRow<'f> = dyn FnMut(SeriesId, i64, Rollup, Option<&[u8]>) -> Result<(), StoreError> + 'f;

impl ReadTx<'_> {
    /// Rows of tier `tier` for `series` with `from_s <= start < to_s`, oldest first.
    pub fn rollups(
        &self,
        tier: usize,
        series: SeriesId,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<(i64, Rollup)>, StoreError> {
        let mut out = Vec::new();
        if tier == 0 {
            self.each_tier0_row(series, from_s, to_s, &mut |start, scalars, sketch| {
                out.push((start, rollup_of(scalars, sketch)?));
                Ok(())
            })?;
            return Ok(out);
        }
        let mut stmt = self.tx.prepare_cached(&self.layout.select[tier])?;
        let mut rows = stmt.query(params![series as i64, from_s, to_s])?;
        while let Some(row) = rows.next()? {
            out.push((row.get(0)?, read_rollup(row, 1)?));
        }
        Ok(out)
    }

    /// Whether tier `tier` holds any row of `series` with `from_s <= start < to_s`.
    pub fn has_rows(&self, tier: usize, series: SeriesId, from_s: i64, to_s: i64) -> Result<bool, StoreError> {
        if tier > 0 {
            let mut stmt = self.tx.prepare_cached(&self.layout.exists[tier])?;
            return Ok(stmt.query_row(params![series as i64, from_s, to_s], |r| r.get(0))?);
        }
        let mut found = false;
        self.each_sealed_row(series, from_s, to_s, &mut |_, _, _| {
            found = true;
            Ok(())
        })?;
        if found {
            return Ok(true);
        }
        let raw = &self.layout.tiers[0];
        let Some((first, last)) = self.raw_span()? else { return Ok(false) };
        let mut stmt = self.tx.prepare_cached(&self.layout.exists[0])?;
        let mut start = align_up(from_s.max(first).max(self.head_from()?), raw.resolution_s);
        while start < to_s.min(last + 1) {
            if stmt.exists(params![start, series as i64])? {
                return Ok(true);
            }
            start += raw.resolution_s;
        }
        Ok(false)
    }

    /// Merges tier `tier`'s rows of `series` with `from_s <= start < to_s` into `into`.
    pub fn merge_rollups(
        &self,
        tier: usize,
        series: SeriesId,
        from_s: i64,
        to_s: i64,
        into: &mut Option<Rollup>,
    ) -> Result<(), StoreError> {
        if tier == 0 {
            return self
                .each_tier0_row(series, from_s, to_s, &mut |_, scalars, sketch| merge_parts(scalars, sketch, into));
        }
        let mut stmt = self.tx.prepare_cached(&self.layout.select[tier])?;
        let mut rows = stmt.query(params![series as i64, from_s, to_s])?;
        while let Some(row) = rows.next()? {
            super::codec::merge_rollup(row, 1, into)?;
        }
        Ok(())
    }

    /// Tier 0's rows with `from_s <= start < to_s` of the series in `wanted`, merged per
    /// series: blocks per series, and the raw head in one scan (rows of other series skipped
    /// undecoded). For many series; [`ReadTx::raw_scan_pays`] says when.
    pub fn raw_range(
        &self,
        from_s: i64,
        to_s: i64,
        wanted: &FxHashSet<SeriesId>,
    ) -> Result<FxHashMap<SeriesId, Rollup>, StoreError> {
        let mut out: FxHashMap<SeriesId, Option<Rollup>> = FxHashMap::default();
        for id in wanted {
            let into = out.entry(*id).or_default();
            self.each_sealed_row(*id, from_s, to_s, &mut |_, scalars, sketch| merge_parts(scalars, sketch, into))?;
        }
        self.scan_head(from_s, to_s, wanted, &mut |series, _, scalars, sketch| {
            merge_parts(scalars, sketch, out.entry(series).or_default())
        })?;
        Ok(out.into_iter().filter_map(|(id, r)| Some((id, r?))).collect())
    }

    /// Every tier-0 row with `from_s <= start < to_s` of the series in `wanted`, by series and
    /// oldest first ([`ReadTx::raw_range`] without the merging).
    pub fn raw_rows(
        &self,
        from_s: i64,
        to_s: i64,
        wanted: &FxHashSet<SeriesId>,
    ) -> Result<FxHashMap<SeriesId, Vec<(i64, Rollup)>>, StoreError> {
        let mut out: FxHashMap<SeriesId, Vec<(i64, Rollup)>> = FxHashMap::default();
        for id in wanted {
            let mut rows = Vec::new();
            self.each_sealed_row(*id, from_s, to_s, &mut |start, scalars, sketch| {
                rows.push((start, rollup_of(scalars, sketch)?));
                Ok(())
            })?;
            if !rows.is_empty() {
                out.insert(*id, rows);
            }
        }
        self.scan_head(from_s, to_s, wanted, &mut |series, start, scalars, sketch| {
            out.entry(series).or_default().push((start, rollup_of(scalars, sketch)?));
            Ok(())
        })?;
        Ok(out)
    }

    /// Whether reading `series` series' tier-0 rows is cheaper with [`ReadTx::raw_rows`] or
    /// [`ReadTx::raw_range`] (one scan of the raw head) than with a point lookup per interval
    /// and series.
    pub fn raw_scan_pays(&self, series: usize) -> Result<bool, StoreError> {
        Ok(series * SEEK_COST_IN_ROWS >= self.raw_rows_per_interval()?.max(1))
    }

    /// How many rows the raw table's latest interval holds: about how many series are active.
    fn raw_rows_per_interval(&self) -> Result<usize, StoreError> {
        let Some((_, last)) = self.raw_span()? else { return Ok(0) };
        let mut stmt = self
            .tx
            .prepare_cached(&format!("SELECT count(*) FROM {} WHERE start_s = ?1", self.layout.tiers[0].raw_table()))?;
        Ok(stmt.query_row([last], |r| r.get::<_, i64>(0))? as usize)
    }

    /// Calls `each` for every tier-0 row of `series` in the range, oldest first: from the
    /// blocks, then the raw head by point lookups.
    fn each_tier0_row(
        &self,
        series: SeriesId,
        from_s: i64,
        to_s: i64,
        each: &mut EachRow<'_>,
    ) -> Result<(), StoreError> {
        self.each_sealed_row(series, from_s, to_s, each)?;
        let raw = &self.layout.tiers[0];
        let mut stmt = self.tx.prepare_cached(&self.layout.select[0])?;
        let Some((first, last)) = self.raw_span()? else { return Ok(()) };
        let to_s = to_s.min(last + 1);
        let mut start = align_up(from_s.max(first).max(self.head_from()?), raw.resolution_s);
        while start < to_s {
            let mut rows = stmt.query(params![start, series as i64])?;
            if let Some(row) = rows.next()? {
                each(start, read_scalars(row, 0)?, sketch_blob(row, 6)?)?;
            }
            start += raw.resolution_s;
        }
        Ok(())
    }

    /// Calls `each` for every sealed row of `series` with `from_s <= start < to_s`, oldest
    /// first: one range seek over its blocks.
    fn each_sealed_row(
        &self,
        series: SeriesId,
        from_s: i64,
        to_s: i64,
        each: &mut EachRow<'_>,
    ) -> Result<(), StoreError> {
        let Some(sealed) = self.sealed_watermark()? else { return Ok(()) };
        let raw = &self.layout.tiers[0];
        let span = raw.resolution_s * BLOCK_INTERVALS;
        let upto = to_s.min(sealed);
        if from_s >= upto {
            return Ok(());
        }
        let mut stmt = self.tx.prepare_cached(&self.layout.sealed_select)?;
        let mut blocks = stmt.query(params![series as i64, from_s - span, upto])?;
        while let Some(row) = blocks.next()? {
            let block_start: i64 = row.get(0)?;
            let blob = row
                .get_ref(1)?
                .as_blob()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, Box::new(e)))?;
            for decoded in block::rows(blob, block_start, raw.resolution_s) {
                let decoded = decoded?;
                if decoded.start_s >= from_s && decoded.start_s < upto {
                    each(decoded.start_s, decoded.scalars, decoded.sketch)?;
                }
            }
        }
        Ok(())
    }

    /// Calls `each` for every raw-head row with `from_s <= start < to_s` of the series in
    /// `wanted`, in one scan of the time-major key.
    fn scan_head(
        &self,
        from_s: i64,
        to_s: i64,
        wanted: &FxHashSet<SeriesId>,
        each: &mut EachSeriesRow<'_>,
    ) -> Result<(), StoreError> {
        let from_s = from_s.max(self.head_from()?);
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT series_id, start_s, {ROLLUP_COLUMNS} FROM {} WHERE start_s >= ?1 AND start_s < ?2",
            self.layout.tiers[0].raw_table()
        ))?;
        let mut rows = stmt.query(params![from_s, to_s])?;
        while let Some(row) = rows.next()? {
            let series = row.get::<_, i64>(0)? as SeriesId;
            if wanted.contains(&series) {
                each(series, row.get(1)?, read_scalars(row, 2)?, sketch_blob(row, 8)?)?;
            }
        }
        Ok(())
    }

    /// Where the raw table has rows, so a read walks only those intervals. Each end is one
    /// seek on the time-major key as a subquery of its own (`SELECT min(x), max(x)` together
    /// scans the whole table).
    fn raw_span(&self) -> Result<Option<(i64, i64)>, StoreError> {
        if let Some(span) = self.raw_span.get() {
            return Ok(*span);
        }
        let table = self.layout.tiers[0].raw_table();
        let (first, last): (Option<i64>, Option<i64>) = self.tx.query_row(
            &format!("SELECT (SELECT min(start_s) FROM {table}), (SELECT max(start_s) FROM {table})"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let span = first.zip(last);
        let _ = self.raw_span.set(span);
        Ok(span)
    }

    /// Where the raw table's rows begin to count: the sealed watermark (the writer merges
    /// anything older into its block, so this only keeps reads exact by construction).
    fn head_from(&self) -> Result<i64, StoreError> {
        Ok(self.sealed_watermark()?.unwrap_or(i64::MIN))
    }

    /// Tier 0's sealed watermark: intervals before it are in the blocks.
    fn sealed_watermark(&self) -> Result<Option<i64>, StoreError> {
        if let Some(sealed) = self.sealed.get() {
            return Ok(*sealed);
        }
        let sealed = self.meta(&self.layout.tiers[0].sealed_key())?;
        let _ = self.sealed.set(sealed);
        Ok(sealed)
    }
}
