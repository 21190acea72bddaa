//! Downsampling: merges closed windows of each tier into the next coarser tier.
//!
//! Tier `i` is built from tier `i-1` up to a watermark kept in `meta`: windows before it are
//! complete in tier `i`, so queries read the coarse tier before the watermark and the finer
//! tiers after it. Tier 0 is final below the flush's accept floor (no sample may land there
//! any more). Only series written since their last downsampling are visited, so the work per
//! run follows the ingest rate, not the size of the database.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::codec::{ROLLUP_COLUMNS, read_rollup};
use super::tiers::{Tier, align_down};
use super::upsert::RollupUpsert;
use super::writer::set_meta;
use crate::aggregate::rollup::Rollup;
use crate::model::SeriesId;

/// At most this many source rows per series in one run, so catching up after downtime does not
/// hold the writer (and so the flushes) for long.
const MAX_SOURCE_ROWS_PER_RUN: i64 = 1440;

/// The source rows of one series not yet downsampled: their first and last start.
#[derive(Debug, Clone, Copy)]
struct Span {
    earliest: i64,
    latest: i64,
}

impl Span {
    fn widen(entry: &mut HashMap<SeriesId, Span>, series: SeriesId, start_s: i64) {
        let span = entry.entry(series).or_insert(Span { earliest: start_s, latest: start_s });
        span.earliest = span.earliest.min(start_s);
        span.latest = span.latest.max(start_s);
    }
}

pub struct Downsampler {
    /// Per tier (index 0 unused): its watermark, if set yet.
    watermarks: Vec<Option<i64>>,
    /// Per tier (index 0 unused): series with source rows at or after the watermark, with the
    /// earliest and latest such source start.
    dirty: Vec<HashMap<SeriesId, Span>>,
}

impl Downsampler {
    /// Reads the watermarks and finds series whose recent rows are not yet downsampled.
    pub fn load(conn: &Connection, tiers: &[Tier]) -> Result<Downsampler, StoreError> {
        let mut watermarks = vec![None];
        let mut dirty = vec![HashMap::new()];
        let ids: Vec<i64> =
            conn.prepare("SELECT id FROM series")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        for idx in 1..tiers.len() {
            let wm: Option<i64> = conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [tiers[idx].watermark_key()], |r| r.get(0))
                .optional()?;
            let mut tier_dirty = HashMap::new();
            let mut pending = conn.prepare(&format!(
                "SELECT min(start_s), max(start_s) FROM {} WHERE series_id = ?1 AND start_s >= ?2",
                tiers[idx - 1].table()
            ))?;
            for id in &ids {
                let span: (Option<i64>, Option<i64>) =
                    pending.query_row(params![id, wm.unwrap_or(i64::MIN)], |r| Ok((r.get(0)?, r.get(1)?)))?;
                if let (Some(earliest), Some(latest)) = span {
                    tier_dirty.insert(*id as u64, Span { earliest, latest });
                }
            }
            watermarks.push(wm);
            dirty.push(tier_dirty);
        }
        Ok(Downsampler { watermarks, dirty })
    }

    /// Notes that tier 0 got a row for `series` at `start_s`.
    pub fn source_written(&mut self, series: SeriesId, start_s: i64) {
        if let Some(tier_dirty) = self.dirty.get_mut(1) {
            Span::widen(tier_dirty, series, start_s);
        }
    }

    /// Downsamples every tier as far as its source is final.
    pub fn run(&mut self, conn: &mut Connection, tiers: &[Tier], accept_floor_s: i64) -> Result<(), StoreError> {
        for idx in 1..tiers.len() {
            let source_final = if idx == 1 {
                accept_floor_s
            } else {
                match self.watermarks[idx - 1] {
                    Some(wm) => wm,
                    None => return Ok(()),
                }
            };
            self.run_tier(conn, tiers, idx, source_final)?;
        }
        Ok(())
    }

    fn run_tier(
        &mut self,
        conn: &mut Connection,
        tiers: &[Tier],
        idx: usize,
        source_final: i64,
    ) -> Result<(), StoreError> {
        let (source, target) = (&tiers[idx - 1], &tiers[idx]);
        let end_limit = align_down(source_final, target.resolution_s);
        let start = match self.watermarks[idx] {
            Some(wm) => wm,
            None => {
                // First run: start at the oldest window any dirty series has data in.
                let earliest = self.dirty[idx].values().map(|span| span.earliest).min();
                let Some(earliest) = earliest else { return Ok(()) };
                align_down(earliest.min(end_limit), target.resolution_s)
            }
        };
        let max_span = (MAX_SOURCE_ROWS_PER_RUN * source.resolution_s).max(target.resolution_s);
        let end = end_limit.min(start + align_down(max_span, target.resolution_s));
        if end <= start {
            if self.watermarks[idx].is_none() {
                self.watermarks[idx] = Some(start);
            }
            return Ok(());
        }
        let tx = conn.transaction()?;
        let mut read = tx.prepare_cached(&format!(
            "SELECT start_s, {ROLLUP_COLUMNS} FROM {} WHERE series_id = ?1 AND start_s >= ?2 AND start_s < ?3 ORDER BY start_s",
            source.table()
        ))?;
        let mut upsert = RollupUpsert::new(&tx, &target.table())?;
        let mut done = Vec::new();
        let mut written = Vec::new();
        for (series, span) in &self.dirty[idx] {
            let mut windows: Vec<(i64, Rollup)> = Vec::new();
            let mut rows = read.query(params![*series as i64, start, end])?;
            while let Some(row) = rows.next()? {
                let window = align_down(row.get(0)?, target.resolution_s);
                let rollup = read_rollup(row, 1)?;
                match windows.last_mut() {
                    Some((w, merged)) if *w == window => merged.merge(&rollup),
                    _ => windows.push((window, rollup)),
                }
            }
            for (window, rollup) in &windows {
                upsert.merge(*series, *window, rollup)?;
                written.push((*series, *window));
            }
            if span.latest < end {
                done.push(*series);
            }
        }
        drop((read, upsert));
        set_meta(&tx, &target.watermark_key(), end)?;
        tx.commit()?;
        for series in done {
            self.dirty[idx].remove(&series);
        }
        for span in self.dirty[idx].values_mut() {
            span.earliest = span.earliest.max(end);
        }
        if let Some(next) = self.dirty.get_mut(idx + 1) {
            for (series, window) in written {
                Span::widen(next, series, window);
            }
        }
        self.watermarks[idx] = Some(end);
        Ok(())
    }
}
