//! The `meta` table: named integers the store keeps about itself (the last flush committed,
//! each coarse tier's downsampling watermark).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The value under `key`, if one was set.
pub fn get_meta(conn: &Connection, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

/// Sets `key` to `value` (inside the caller's transaction).
pub fn set_meta(conn: &Connection, key: &str, value: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
