//! Sealing: moves tier 0's final rows from the time-major raw table, where flushes append
//! cheaply, into series-major blocks (see `block.rs`), where a query reads one series' hours
//! with one seek. The raw table keeps only the unsealed head: the last few minutes.
//!
//! The sealed watermark (meta `sealed_<res>s`) splits tier 0: every interval before it is in
//! the blocks table and none in the raw table, every interval at or after it the other way
//! round. A block is sealed in one transaction (blocks written, raw rows deleted, watermark
//! moved), so a reader's snapshot always sees each row exactly once. Only rows that can no
//! longer change are sealed: before the flush's accept floor, and before tier 1's watermark
//! (tier 1 is built from the raw table).

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rustc_hash::FxHashMap;

use super::StoreError;
use super::block::{self, BLOCK_INTERVALS, BlockWriter};
use super::codec::{ROLLUP_COLUMNS, read_scalars, sketch_blob};
use super::meta::{get_meta, set_meta};
use super::tiers::{Tier, align_down};
use crate::model::SeriesId;

/// Blocks sealed per run (after each flush) at most, so catching up after downtime does not
/// hold the writer: one block is 30 intervals, so it still catches up 30 times faster than
/// time passes. A block is one transaction over every active series' rows of those intervals
/// (about 0.3 M rows at 10,000 series).
const MAX_BLOCKS_PER_RUN: usize = 1;

/// Rows read per pass over a block's intervals, bounding memory however many series there are.
const ROWS_PER_PASS: i64 = 256 * 1024;

/// Seals the blocks before tier 0's final point; the new sealed watermark, if it moved.
pub fn run(conn: &mut Connection, tiers: &[Tier], accept_floor_s: i64) -> Result<Option<i64>, StoreError> {
    if run_in_passes(conn, tiers, accept_floor_s, ROWS_PER_PASS)? == 0 {
        return Ok(None);
    }
    get_meta(conn, &tiers[0].sealed_key())
}

fn run_in_passes(
    conn: &mut Connection,
    tiers: &[Tier],
    accept_floor_s: i64,
    rows_per_pass: i64,
) -> Result<usize, StoreError> {
    let raw = &tiers[0];
    let span = raw.resolution_s * BLOCK_INTERVALS;
    let mut final_s = accept_floor_s;
    if let Some(tier1) = tiers.get(1) {
        match get_meta(conn, &tier1.watermark_key())? {
            Some(wm) => final_s = final_s.min(wm),
            None => return Ok(0),
        }
    }
    let mut sealed = 0;
    while sealed < MAX_BLOCKS_PER_RUN {
        let Some(start) = next_block(conn, raw, span)? else { break };
        if start + span > final_s {
            break;
        }
        let tx = conn.transaction()?;
        seal_block(&tx, raw, start, span, rows_per_pass)?;
        tx.commit()?;
        sealed += 1;
    }
    Ok(sealed)
}

/// The next block to seal: from the watermark, or where the raw table's rows begin when that
/// is later (nothing was stored in between).
fn next_block(conn: &Connection, raw: &Tier, span: i64) -> Result<Option<i64>, StoreError> {
    let first: Option<i64> =
        conn.query_row(&format!("SELECT min(start_s) FROM {}", raw.raw_table()), [], |r| r.get(0))?;
    let Some(first) = first else { return Ok(None) };
    let watermark = get_meta(conn, &raw.sealed_key())?;
    Ok(Some(align_down(first, span).max(watermark.unwrap_or(i64::MIN))))
}

/// Moves the raw rows of `[start, start + span)` into blocks and the watermark past them.
/// Series ids are hashes, spread evenly over the id space: each pass reads the series of one
/// slice of it, so a pass holds about `rows_per_pass` rows.
fn seal_block(tx: &Transaction<'_>, raw: &Tier, start: i64, span: i64, rows_per_pass: i64) -> Result<(), StoreError> {
    let table = raw.raw_table();
    let end = start + span;
    let rows: i64 = tx.query_row(
        &format!("SELECT count(*) FROM {table} WHERE start_s >= ?1 AND start_s < ?2"),
        [start, end],
        |r| r.get(0),
    )?;
    let mut read = tx.prepare_cached(&format!(
        "SELECT series_id, {ROLLUP_COLUMNS} FROM {table} WHERE start_s = ?1 AND series_id >= ?2 AND series_id <= ?3"
    ))?;
    // Rows that do not read back go to the quarantine table, as a flush's bad rows do.
    let mut unreadable = Vec::new();
    for (low, high) in id_slices(rows / rows_per_pass.max(1) + 1) {
        let mut writers: FxHashMap<SeriesId, BlockWriter> = FxHashMap::default();
        for interval in (start..end).step_by(raw.resolution_s as usize) {
            let mut rows = read.query(params![interval, low, high])?;
            while let Some(row) = rows.next()? {
                let series = row.get::<_, i64>(0)? as SeriesId;
                let writer = writers.entry(series).or_insert_with(|| BlockWriter::new(start, raw.resolution_s));
                let pushed = read_scalars(row, 1)
                    .and_then(|scalars| Ok(writer.push(interval, &scalars, sketch_blob(row, 7)?)?));
                match pushed {
                    Ok(()) => {}
                    Err(err) if err.is_transient() => return Err(err),
                    Err(err) => unreadable.push((series, interval, err.to_string())),
                }
            }
        }
        for (series, writer) in writers.into_iter().filter(|(_, w)| !w.is_empty()) {
            write_block(tx, raw, series, start, writer.finish())?;
        }
    }
    for (series, interval, why) in &unreadable {
        tx.execute(
            &format!(
                "INSERT INTO quarantine (at_s, flush_seq, series_id, start_s, reason, {ROLLUP_COLUMNS})
                 SELECT ?1, 0, series_id, start_s, ?2, {ROLLUP_COLUMNS} FROM {table} WHERE start_s = ?3 AND series_id = ?4"
            ),
            params![crate::clock::now_s(), format!("sealing: {why}"), interval, *series as i64],
        )?;
        crate::telemetry::rollup_quarantined(*series, *interval, why);
    }
    tx.execute(&format!("DELETE FROM {table} WHERE start_s >= ?1 AND start_s < ?2"), params![start, end])?;
    set_meta(tx, &raw.sealed_key(), end)?;
    Ok(())
}

/// The stored id space (`i64`) cut into `n` slices, as inclusive bounds.
fn id_slices(n: i64) -> impl Iterator<Item = (i64, i64)> {
    let width = (1i128 << 64) / i128::from(n.max(1));
    let bound = move |k: i64| (i128::from(i64::MIN) + i128::from(k) * width) as i64;
    (0..n.max(1)).map(move |k| (bound(k), if k == n.max(1) - 1 { i64::MAX } else { bound(k + 1) - 1 }))
}

/// Merges a rollup of an interval already sealed (a late sample after the clock stepped back,
/// which the accept floor does not survive across a restart) into its block, so no raw row is
/// ever left below the watermark.
pub fn merge_into_block(
    tx: &Transaction<'_>,
    raw: &Tier,
    series: SeriesId,
    start_s: i64,
    rollup: &crate::aggregate::rollup::Rollup,
) -> Result<(), StoreError> {
    let block_start = align_down(start_s, raw.resolution_s * BLOCK_INTERVALS);
    let mut writer = BlockWriter::new(block_start, raw.resolution_s);
    let sketch = rollup.sketch.as_ref().map(|s| s.to_blob());
    writer.push(start_s, rollup, sketch.as_deref())?;
    write_block(tx, raw, series, block_start, writer.finish())
}

/// Stores a series' block; should one be there already, their rows are merged.
fn write_block(
    tx: &Transaction<'_>,
    raw: &Tier,
    series: SeriesId,
    start: i64,
    blob: Vec<u8>,
) -> Result<(), StoreError> {
    let table = raw.sealed_table();
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO {table} (series_id, start_s, rows) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"
    ))?;
    if insert.execute(params![series as i64, start, blob])? == 1 {
        return Ok(());
    }
    let existing: Vec<u8> = tx.query_row(
        &format!("SELECT rows FROM {table} WHERE series_id = ?1 AND start_s = ?2"),
        params![series as i64, start],
        |r| r.get(0),
    )?;
    let merged = merge_blocks(&existing, &blob, start, raw.resolution_s)?;
    tx.execute(
        &format!("UPDATE {table} SET rows = ?3 WHERE series_id = ?1 AND start_s = ?2"),
        params![series as i64, start, merged],
    )?;
    Ok(())
}

/// Two blocks of one series as one: rows of the same interval merged.
fn merge_blocks(a: &[u8], b: &[u8], start: i64, resolution_s: i64) -> Result<Vec<u8>, StoreError> {
    let mut rows: std::collections::BTreeMap<i64, crate::aggregate::rollup::Rollup> = Default::default();
    for row in block::rows(a, start, resolution_s).chain(block::rows(b, start, resolution_s)) {
        let row = row?;
        let mut rollup = row.scalars;
        rollup.sketch = row.sketch.map(crate::aggregate::sketch::Sketch::decode).transpose()?;
        match rows.get_mut(&row.start_s) {
            Some(merged) => merged.merge(&rollup),
            None => {
                rows.insert(row.start_s, rollup);
            }
        }
    }
    let mut writer = BlockWriter::new(start, resolution_s);
    for (start_s, rollup) in &rows {
        let sketch = rollup.sketch.as_ref().map(|s| s.to_blob());
        writer.push(*start_s, rollup, sketch.as_deref())?;
    }
    Ok(writer.finish())
}

/// Moves every block back into the raw table: for a store whose tier 1 is new (added to the
/// config), which is built from the raw table and must see all of tier 0.
pub fn unseal_all(tx: &Transaction<'_>, raw: &Tier) -> Result<u64, StoreError> {
    let Some(_) = get_meta(tx, &raw.sealed_key())? else { return Ok(0) };
    let mut moved = 0;
    {
        let mut blocks = tx.prepare(&format!("SELECT series_id, start_s, rows FROM {}", raw.sealed_table()))?;
        let mut insert = tx.prepare(&format!(
            "INSERT OR IGNORE INTO {} (series_id, start_s, {ROLLUP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            raw.raw_table()
        ))?;
        let mut rows = blocks.query([])?;
        while let Some(row) = rows.next()? {
            let (series, start): (i64, i64) = (row.get(0)?, row.get(1)?);
            let blob: Vec<u8> = row.get(2)?;
            for decoded in block::rows(&blob, start, raw.resolution_s) {
                // A corrupt block keeps the rows before the damage; the start goes on.
                let r = match decoded {
                    Ok(r) => r,
                    Err(err) => {
                        crate::telemetry::rollup_unreadable(series as SeriesId, start, &err.to_string());
                        break;
                    }
                };
                let s = &r.scalars;
                insert
                    .execute(params![series, r.start_s, s.count, s.sum, s.min, s.max, s.last, s.last_ms, r.sketch])?;
                moved += 1;
            }
        }
    }
    tx.execute(&format!("DELETE FROM {}", raw.sealed_table()), [])?;
    tx.execute("DELETE FROM meta WHERE key = ?1", [raw.sealed_key()])?;
    Ok(moved)
}

/// Whether tier 1 (as the config now has it) may lack rows that are sealed: its table is new,
/// or its watermark is missing or behind the sealed one (tier 1 was removed and added back, or
/// a tier in between was dropped). Asked before the tier tables are created.
pub fn tier1_is_behind(tx: &Transaction<'_>, tiers: &[Tier]) -> Result<bool, StoreError> {
    let Some(tier1) = tiers.get(1) else { return Ok(false) };
    let has_sealed = tx
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'", [], |r| r.get::<_, i64>(0))
        .optional()?
        .is_some();
    let Some(sealed) = (if has_sealed { get_meta(tx, &tiers[0].sealed_key())? } else { None }) else {
        return Ok(false);
    };
    let exists: Option<i64> = tx
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [tier1.table()], |r| r.get(0))
        .optional()?;
    Ok(exists.is_none() || get_meta(tx, &tier1.watermark_key())?.is_none_or(|wm| wm < sealed))
}

#[cfg(test)]
mod tests {
    use rustc_hash::FxHashSet;

    use super::*;
    use crate::aggregate::rollup::Rollup;
    use crate::store::reader::Reader;
    use crate::store::upsert::RollupUpsert;

    fn rollup(series: u64, start: i64) -> Rollup {
        let mut r = Rollup::empty(series % 2 == 0);
        for n in 0..(1 + (series % 7) as i64 + start % 4) {
            r.observe(0.001 * (series % 1000) as f64 * (start + n) as f64, 1.0, start * 1000 + n * 7);
        }
        r
    }

    /// Series ids as the store has them: hashes over the whole id space.
    fn ids() -> Vec<u64> {
        let ids: Vec<u64> = (1..=6).map(|n| crate::model::series_id(&format!("s{{n=\"{n}\"}}"))).collect();
        assert!(ids.iter().any(|id| (*id as i64) < 0) && ids.iter().any(|id| (*id as i64) > 0), "{ids:?}");
        ids
    }

    #[test]
    fn id_slices_cover_the_id_space_once() {
        for n in [1, 2, 3, 7] {
            let slices: Vec<_> = id_slices(n).collect();
            assert_eq!(slices.len() as i64, n);
            assert_eq!(slices[0].0, i64::MIN);
            assert_eq!(slices.last().unwrap().1, i64::MAX);
            assert!(slices.windows(2).all(|w| w[0].1 + 1 == w[1].0 && w[0].0 < w[0].1), "{slices:?}");
        }
    }

    /// Every tier-0 read a query makes, over ranges that cut blocks, the watermark and the head.
    async fn reads(reader: &Reader, ids: Vec<u64>) -> Vec<String> {
        reader
            .read(move |tx| {
                let mut out = Vec::new();
                let wanted: FxHashSet<u64> = ids.iter().copied().collect();
                for (from, to) in [(0, 2_000), (95, 305), (300, 600), (455, 1_200), (1_190, 1_900)] {
                    for id in &ids {
                        out.push(format!("{id} {from} {to} {:?}", tx.rollups(0, *id, from, to)?));
                        out.push(format!("{:?}", tx.has_rows(0, *id, from, to)?));
                        let mut merged = None;
                        tx.merge_rollups(0, *id, from, to, &mut merged)?;
                        out.push(format!("{merged:?}"));
                    }
                    let mut rows: Vec<_> = tx.raw_rows(from, to, &wanted)?.into_iter().collect();
                    rows.sort_by_key(|(id, _)| *id);
                    out.push(format!("{rows:?}"));
                    let mut merged: Vec<_> = tx.raw_range(from, to, &wanted)?.into_iter().collect();
                    merged.sort_by_key(|(id, _)| *id);
                    out.push(format!("{merged:?}"));
                }
                Ok(out)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sealed_blocks_read_back_as_the_raw_rows_did_and_leave_the_raw_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let tiers =
            vec![Tier { resolution_s: 10, retention_s: 100_000 }, Tier { resolution_s: 60, retention_s: 100_000 }];
        let mut conn = crate::store::open_connection(&path, false).unwrap();
        crate::store::schema::migrate(&mut conn, &tiers).unwrap();
        // Five series over 0..1,500 s with gaps: the third skips every third interval, the
        // fifth starts late, the sixth has no rows; the tier-1 watermark lets sealing reach
        // 1,200 s.
        let ids = ids();
        {
            let tx = conn.transaction().unwrap();
            let mut upsert = RollupUpsert::new(&tx, &tiers[0].raw_table()).unwrap();
            for start in (0..1_500).step_by(10) {
                for (n, series) in ids[..5].iter().enumerate() {
                    if (n == 2 && start % 30 == 0) || (n == 4 && start < 700) {
                        continue;
                    }
                    upsert.merge(*series, start, &rollup(*series, start)).unwrap();
                }
            }
            drop(upsert);
            set_meta(&tx, &tiers[1].watermark_key(), 1_200).unwrap();
            tx.commit().unwrap();
        }
        let reader = Reader::new(vec![crate::store::open_connection(&path, true).unwrap()], tiers.clone());
        let before = reads(&reader, ids.clone()).await;
        assert!(before.iter().filter(|r| r.contains("sketch: Some")).count() > 10, "reads see timings' rows");

        // One block per run, in passes of about 40 rows (several slices of the id space); the
        // accept floor at 1,490 s leaves tier 1's watermark the limit.
        assert_eq!(run_in_passes(&mut conn, &tiers, 1_490, 40).unwrap(), 1);
        assert_eq!(run_in_passes(&mut conn, &tiers, 1_490, 40).unwrap(), 1);
        assert_eq!(run(&mut conn, &tiers, 1_490).unwrap(), Some(900));
        assert_eq!(run(&mut conn, &tiers, 1_490).unwrap(), Some(1_200));
        assert_eq!(run(&mut conn, &tiers, 1_490).unwrap(), None, "1,200 s is as far as tier 1 has gone");
        assert_eq!(get_meta(&conn, &tiers[0].sealed_key()).unwrap(), Some(1_200));
        let raw_left: i64 = conn.query_row("SELECT min(start_s) FROM raw_10s", [], |r| r.get(0)).unwrap();
        assert_eq!(raw_left, 1_200);
        let blocks: i64 = conn.query_row("SELECT count(*) FROM sealed_10s", [], |r| r.get(0)).unwrap();
        assert_eq!(blocks, 4 * 4 + 2, "series 1-4 in four blocks, series 5 from 700 s in two");

        assert_eq!(reads(&reader, ids).await, before);
    }

    #[test]
    fn a_first_coarse_tier_new_or_behind_moves_the_blocks_back_to_be_downsampled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.db");
        let only_raw = vec![Tier { resolution_s: 10, retention_s: 100_000 }];
        let mut conn = crate::store::open_connection(&path, false).unwrap();
        crate::store::schema::migrate(&mut conn, &only_raw).unwrap();
        {
            let tx = conn.transaction().unwrap();
            let mut upsert = RollupUpsert::new(&tx, &only_raw[0].raw_table()).unwrap();
            for start in (0..600).step_by(10) {
                upsert.merge(ids()[0], start, &rollup(ids()[0], start)).unwrap();
            }
            drop(upsert);
            tx.commit().unwrap();
        }
        assert_eq!(run(&mut conn, &only_raw, 600).unwrap(), Some(300));
        assert_eq!(run(&mut conn, &only_raw, 600).unwrap(), Some(600), "no coarse tier: sealed up to the accept floor");
        let raw_rows =
            |conn: &Connection| conn.query_row("SELECT count(*) FROM raw_10s", [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(raw_rows(&conn), 0);

        let with_minutes = vec![only_raw[0].clone(), Tier { resolution_s: 60, retention_s: 100_000 }];
        crate::store::schema::migrate(&mut conn, &with_minutes).unwrap();
        assert_eq!(raw_rows(&conn), 60);
        assert_eq!(get_meta(&conn, &only_raw[0].sealed_key()).unwrap(), None);
        assert_eq!(run(&mut conn, &with_minutes, 600).unwrap(), None, "not before tier 1 has a watermark");

        // Tier 1 caught up: sealed again, and a restart with the same tiers keeps the blocks.
        set_meta(&conn, &with_minutes[1].watermark_key(), 600).unwrap();
        assert_eq!(run(&mut conn, &with_minutes, 600).unwrap(), Some(300));
        assert_eq!(run(&mut conn, &with_minutes, 600).unwrap(), Some(600));
        crate::store::schema::migrate(&mut conn, &with_minutes).unwrap();
        assert_eq!((raw_rows(&conn), get_meta(&conn, &only_raw[0].sealed_key()).unwrap()), (0, Some(600)));

        // Tier 1's watermark behind the blocks (a tier in between dropped, say): moved back.
        set_meta(&conn, &with_minutes[1].watermark_key(), 300).unwrap();
        crate::store::schema::migrate(&mut conn, &with_minutes).unwrap();
        assert_eq!((raw_rows(&conn), get_meta(&conn, &only_raw[0].sealed_key()).unwrap()), (60, None));
    }
}
