//! Downsampling: merges closed windows of each tier into the next coarser tier.
//!
//! Tier `i` is built from tier `i-1` up to a watermark kept in `meta`: windows before it are
//! complete in tier `i`, so queries read the coarse tier before the watermark and the finer
//! tiers after it. Tier 0 is final below the flush's accept floor (no sample may land there
//! any more).
//!
//! Tier 1 reads the time-major raw table one window at a time, sorted by series, and streams
//! merged rows out, so memory stays flat however many series there are. Coarser tiers read
//! series-major tables and visit only series written since their last run.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::StoreError;
use super::codec::{ROLLUP_COLUMNS, read_rollup};
use super::meta::{get_meta, set_meta};
use super::tiers::{Tier, align_down};
use super::upsert::RollupUpsert;
use crate::aggregate::rollup::Rollup;
use crate::model::SeriesId;

/// At most this many windows per tier in one run, so catching up after downtime does not hold
/// the writer (and so the flushes) for long.
const MAX_WINDOWS_PER_RUN: i64 = 60;

/// The rows of one series not yet downsampled: their first and last start.
#[derive(Debug, Clone, Copy)]
struct Span {
    earliest: i64,
    latest: i64,
}

fn widen(dirty: &mut HashMap<SeriesId, Span>, series: SeriesId, start_s: i64) {
    let span = dirty.entry(series).or_insert(Span { earliest: start_s, latest: start_s });
    span.earliest = span.earliest.min(start_s);
    span.latest = span.latest.max(start_s);
}

pub struct Downsampler {
    /// Per tier (index 0 unused): its watermark, if set yet.
    watermarks: Vec<Option<i64>>,
    /// Per tier (index 0 and 1 unused): series with source rows at or after the watermark.
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
            let wm = get_meta(conn, &tiers[idx].watermark_key())?;
            let mut tier_dirty = HashMap::new();
            if idx >= 2 {
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
            }
            watermarks.push(wm);
            dirty.push(tier_dirty);
        }
        Ok(Downsampler { watermarks, dirty })
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
            let Some(start) = self.start_of(conn, tiers, idx)? else { return Ok(()) };
            let resolution = tiers[idx].resolution_s;
            let end = align_down(source_final, resolution).min(start + MAX_WINDOWS_PER_RUN * resolution);
            if end <= start {
                self.watermarks[idx].get_or_insert(start);
                continue;
            }
            let written = if idx == 1 {
                merge_raw(conn, tiers, start, end)?
            } else {
                self.merge_series_major(conn, tiers, idx, start, end)?
            };
            if let Some(next) = self.dirty.get_mut(idx + 1) {
                for (series, window) in written {
                    widen(next, series, window);
                }
            }
            self.watermarks[idx] = Some(end);
        }
        Ok(())
    }

    /// Where tier `idx` continues from: its watermark, or on the first run the oldest window
    /// its source has rows in.
    fn start_of(&self, conn: &Connection, tiers: &[Tier], idx: usize) -> Result<Option<i64>, StoreError> {
        if let Some(wm) = self.watermarks[idx] {
            return Ok(Some(wm));
        }
        let earliest = if idx == 1 {
            conn.query_row(&format!("SELECT min(start_s) FROM {}", tiers[0].raw_table()), [], |r| r.get(0))?
        } else {
            self.dirty[idx].values().map(|span| span.earliest).min()
        };
        Ok(earliest.map(|e: i64| align_down(e, tiers[idx].resolution_s)))
    }

    /// Series-major source: per dirty series, its rows in `[start, end)`, merged per window.
    fn merge_series_major(
        &mut self,
        conn: &mut Connection,
        tiers: &[Tier],
        idx: usize,
        start: i64,
        end: i64,
    ) -> Result<Vec<(SeriesId, i64)>, StoreError> {
        let (source, target) = (&tiers[idx - 1], &tiers[idx]);
        let tx = conn.transaction()?;
        let mut written = Vec::new();
        let mut done = Vec::new();
        {
            let mut read = tx.prepare_cached(&format!(
                "SELECT start_s, {ROLLUP_COLUMNS} FROM {} WHERE series_id = ?1 AND start_s >= ?2 AND start_s < ?3 ORDER BY start_s",
                source.table()
            ))?;
            let mut upsert = RollupUpsert::new(&tx, &target.table())?;
            for (series, span) in &self.dirty[idx] {
                let mut windows: Vec<(i64, Rollup)> = Vec::new();
                let mut rows = read.query(params![*series as i64, start, end])?;
                while let Some(row) = rows.next()? {
                    let window = align_down(row.get(0)?, target.resolution_s);
                    let Some(rollup) = readable(read_rollup(row, 1), *series, window)? else { continue };
                    match windows.last_mut() {
                        Some((w, merged)) if *w == window => merged.merge(&rollup),
                        _ => windows.push((window, rollup)),
                    }
                }
                for (window, rollup) in &windows {
                    if written_or_skipped(upsert.merge(*series, *window, rollup), *series, *window)? {
                        written.push((*series, *window));
                    }
                }
                if span.latest < end {
                    done.push(*series);
                }
            }
        }
        set_meta(&tx, &target.watermark_key(), end)?;
        tx.commit()?;
        for series in done {
            self.dirty[idx].remove(&series);
        }
        for span in self.dirty[idx].values_mut() {
            span.earliest = span.earliest.max(end);
        }
        Ok(written)
    }
}

/// Time-major source (tier 0): each window's rows, sorted by series, merged as they stream by.
fn merge_raw(conn: &mut Connection, tiers: &[Tier], start: i64, end: i64) -> Result<Vec<(SeriesId, i64)>, StoreError> {
    let target = &tiers[1];
    let tx = conn.transaction()?;
    let mut written = Vec::new();
    {
        let mut read = tx.prepare_cached(&format!(
            "SELECT series_id, {ROLLUP_COLUMNS} FROM {} WHERE start_s >= ?1 AND start_s < ?2 ORDER BY series_id",
            tiers[0].raw_table()
        ))?;
        let mut upsert = RollupUpsert::new(&tx, &target.table())?;
        let mut window = start;
        while window < end {
            let mut current: Option<(SeriesId, Rollup)> = None;
            let mut rows = read.query(params![window, window + target.resolution_s])?;
            while let Some(row) = rows.next()? {
                let series = row.get::<_, i64>(0)? as SeriesId;
                let Some(rollup) = readable(read_rollup(row, 1), series, window)? else { continue };
                match &mut current {
                    Some((s, merged)) if *s == series => merged.merge(&rollup),
                    _ => {
                        if let Some((s, merged)) = current.replace((series, rollup))
                            && written_or_skipped(upsert.merge(s, window, &merged), s, window)?
                        {
                            written.push((s, window));
                        }
                    }
                }
            }
            if let Some((s, merged)) = current
                && written_or_skipped(upsert.merge(s, window, &merged), s, window)?
            {
                written.push((s, window));
            }
            window += target.resolution_s;
        }
    }
    set_meta(&tx, &target.watermark_key(), end)?;
    tx.commit()?;
    Ok(written)
}

/// A source row that does not read back (a corrupt sketch, a value SQLite cannot give as a
/// number) is left out of its window, logged and counted, so one bad row never stops the
/// coarse tiers; a failure retrying may cure (disk, I/O) still fails the run.
fn readable(read: Result<Rollup, StoreError>, series: SeriesId, window: i64) -> Result<Option<Rollup>, StoreError> {
    match read {
        Ok(rollup) => Ok(Some(rollup)),
        Err(err) if err.is_transient() => Err(err),
        Err(err) => {
            crate::telemetry::rollup_unreadable(series, window, &err.to_string());
            Ok(None)
        }
    }
}

/// Whether a merge into the coarse tier was written; a target row that does not read back is
/// left as it is, logged and counted, like an unreadable source row.
fn written_or_skipped(merged: Result<(), StoreError>, series: SeriesId, window: i64) -> Result<bool, StoreError> {
    match merged {
        Ok(()) => Ok(true),
        Err(err) if err.is_transient() => Err(err),
        Err(err) => {
            crate::telemetry::rollup_unreadable(series, window, &err.to_string());
            Ok(false)
        }
    }
}
