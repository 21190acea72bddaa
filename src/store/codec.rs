//! Rollup rows in and out of SQLite: the column list, binding and reading.

use rusqlite::Row;

use super::StoreError;
use crate::aggregate::rollup::Rollup;
use crate::aggregate::sketch::Sketch;

pub const ROLLUP_COLUMNS: &str = "count, sum, min, max, last, last_ms, sketch";

/// Reads the seven rollup columns starting at column `first`.
pub fn read_rollup(row: &Row<'_>, first: usize) -> Result<Rollup, StoreError> {
    let blob: Option<Vec<u8>> = row.get(first + 6)?;
    let sketch = blob.map(|b| Sketch::decode(&b)).transpose()?;
    Ok(Rollup {
        count: row.get(first)?,
        sum: row.get(first + 1)?,
        min: row.get(first + 2)?,
        max: row.get(first + 3)?,
        last: row.get(first + 4)?,
        last_ms: row.get(first + 5)?,
        sketch,
    })
}

pub fn encode_f64s(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn decode_f64s(blob: &[u8]) -> Vec<f64> {
    blob.chunks_exact(8).map(|chunk| f64::from_le_bytes(chunk.try_into().expect("chunks of 8"))).collect()
}
