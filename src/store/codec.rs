//! Rollup rows in and out of SQLite: the column list, binding and reading.

use rusqlite::Row;

use super::StoreError;
use crate::aggregate::rollup::Rollup;
use crate::aggregate::sketch::Sketch;

pub const ROLLUP_COLUMNS: &str = "count, sum, min, max, last, last_ms, sketch";

/// Reads the seven rollup columns starting at column `first`.
pub fn read_rollup(row: &Row<'_>, first: usize) -> Result<Rollup, StoreError> {
    rollup_of(read_scalars(row, first)?, sketch_blob(row, first + 6)?)
}

/// Merges the rollup columns starting at `first` into `into`: how reads add up many rows.
pub fn merge_rollup(row: &Row<'_>, first: usize, into: &mut Option<Rollup>) -> Result<(), StoreError> {
    merge_parts(read_scalars(row, first)?, sketch_blob(row, first + 6)?, into)
}

/// A rollup from its scalars and its sketch's bytes.
pub fn rollup_of(mut scalars: Rollup, sketch: Option<&[u8]>) -> Result<Rollup, StoreError> {
    scalars.sketch = sketch.map(Sketch::decode).transpose()?;
    Ok(scalars)
}

/// Merges a rollup given as its scalars and its sketch's bytes into `into`, the sketch
/// straight from the bytes in place (no copy, no intermediate sketch).
pub fn merge_parts(scalars: Rollup, sketch: Option<&[u8]>, into: &mut Option<Rollup>) -> Result<(), StoreError> {
    let Some(merged) = into else {
        *into = Some(rollup_of(scalars, sketch)?);
        return Ok(());
    };
    merged.merge(&scalars);
    if let Some(blob) = sketch {
        match &mut merged.sketch {
            Some(sketch) => sketch.merge_encoded(blob)?,
            None => merged.sketch = Some(Sketch::decode(blob)?),
        }
    }
    Ok(())
}

/// The sketch column, borrowed from the row.
pub(super) fn sketch_blob<'r>(row: &'r Row<'_>, idx: usize) -> Result<Option<&'r [u8]>, StoreError> {
    let value = row.get_ref(idx)?;
    value
        .as_blob_or_null()
        .map_err(|e| StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(idx, value.data_type(), Box::new(e))))
}

/// The six scalar columns, without the sketch.
pub(super) fn read_scalars(row: &Row<'_>, first: usize) -> Result<Rollup, StoreError> {
    Ok(Rollup {
        count: row.get(first)?,
        sum: row.get(first + 1)?,
        min: row.get(first + 2)?,
        max: row.get(first + 3)?,
        last: row.get(first + 4)?,
        last_ms: row.get(first + 5)?,
        sketch: None,
    })
}

pub fn encode_f64s(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn decode_f64s(blob: &[u8]) -> Vec<f64> {
    blob.chunks_exact(8).map(|chunk| f64::from_le_bytes(chunk.try_into().expect("chunks of 8"))).collect()
}
