//! Writing rollups into a tier table: insert, or merge into the row a late sample (or an
//! earlier flush of an open interval) already created. Statements are prepared once per
//! transaction and the sketch blob buffer is reused, so a row costs no allocation.

use rusqlite::{CachedStatement, Transaction, params};

use super::StoreError;
use super::codec::{ROLLUP_COLUMNS, read_rollup};
use crate::aggregate::rollup::Rollup;
use crate::model::SeriesId;

pub struct RollupUpsert<'t> {
    insert: CachedStatement<'t>,
    select: CachedStatement<'t>,
    update: CachedStatement<'t>,
    blob: Vec<u8>,
}

impl<'t> RollupUpsert<'t> {
    pub fn new(tx: &'t Transaction<'_>, table: &str) -> Result<RollupUpsert<'t>, StoreError> {
        Ok(RollupUpsert {
            insert: tx.prepare_cached(&format!(
                "INSERT INTO {table} (series_id, start_s, {ROLLUP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT DO NOTHING"
            ))?,
            select: tx.prepare_cached(&format!(
                "SELECT {ROLLUP_COLUMNS} FROM {table} WHERE series_id = ?1 AND start_s = ?2"
            ))?,
            update: tx.prepare_cached(&format!(
                "UPDATE {table} SET count = ?3, sum = ?4, min = ?5, max = ?6, last = ?7, last_ms = ?8, sketch = ?9
                 WHERE series_id = ?1 AND start_s = ?2"
            ))?,
            blob: Vec::with_capacity(1024),
        })
    }

    /// Inserts `rollup` at (`series`, `start_s`), or merges it into the row already there.
    pub fn merge(&mut self, series: SeriesId, start_s: i64, rollup: &Rollup) -> Result<(), StoreError> {
        let sketch = encode_sketch(rollup, &mut self.blob);
        let r = rollup;
        let inserted = self.insert.execute(params![
            series as i64,
            start_s,
            r.count,
            r.sum,
            r.min,
            r.max,
            r.last,
            r.last_ms,
            sketch
        ])?;
        if inserted == 1 {
            return Ok(());
        }
        let mut merged = self.select.query_row(params![series as i64, start_s], |row| Ok(read_rollup(row, 0)))??;
        merged.merge(rollup);
        let sketch = encode_sketch(&merged, &mut self.blob);
        let m = &merged;
        self.update.execute(params![
            series as i64,
            start_s,
            m.count,
            m.sum,
            m.min,
            m.max,
            m.last,
            m.last_ms,
            sketch
        ])?;
        Ok(())
    }
}

fn encode_sketch<'b>(rollup: &Rollup, blob: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    blob.clear();
    let sketch = rollup.sketch.as_ref()?;
    sketch.encode(blob);
    Some(blob.as_slice())
}
