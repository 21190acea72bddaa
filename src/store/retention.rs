//! Retention: deletes each tier's rows older than its retention along the primary key (a
//! range of the time-major raw tier; series by series in the coarse ones), never scanning a
//! whole table.

use rusqlite::Connection;

use super::StoreError;
use super::tiers::Tier;

/// Deletes rows past retention as of `now_s`, then the series nothing refers to any more;
/// returns how many rows went.
pub fn expire(conn: &mut Connection, tiers: &[Tier], now_s: i64) -> Result<u64, StoreError> {
    let n_deleted = expire_rows(conn, tiers, now_s)?;
    let n_series = forget_series(conn, tiers, now_s)?;
    if n_series > 0 {
        tracing::info!(n_series, "forgot series whose data all expired");
    }
    Ok(n_deleted + n_series)
}

/// Deletes the series (months of label churn leave many) that came into memory last before the
/// longest retention, have no cumulative state and no row left in any coarse tier. A series
/// that is in memory now came in within that time, or has been there since and so has a row
/// in the latest closed window of the coarsest tier: it is never forgotten. With a single tier
/// nothing is forgotten (the time-major raw tier cannot tell cheaply what a series holds).
fn forget_series(conn: &mut Connection, tiers: &[Tier], now_s: i64) -> Result<u64, StoreError> {
    let Some(longest) = tiers.iter().map(|t| t.retention_s + t.resolution_s).max().filter(|_| tiers.len() > 1) else {
        return Ok(0);
    };
    let no_rows: Vec<String> = tiers[1..]
        .iter()
        .map(|t| format!("NOT EXISTS (SELECT 1 FROM {} WHERE series_id = series.id)", t.table()))
        .collect();
    let sql = format!(
        "DELETE FROM series WHERE created_s < ?1
           AND NOT EXISTS (SELECT 1 FROM push_state WHERE series_id = series.id) AND {}",
        no_rows.join(" AND ")
    );
    Ok(conn.execute(&sql, [now_s - longest])? as u64)
}

fn expire_rows(conn: &mut Connection, tiers: &[Tier], now_s: i64) -> Result<u64, StoreError> {
    let mut n_deleted = 0u64;
    // Tier 0 is time-major: one range delete.
    let raw = &tiers[0];
    n_deleted +=
        conn.execute(&format!("DELETE FROM {} WHERE start_s < ?1", raw.raw_table()), [now_s - raw.retention_s])? as u64;
    // The coarse tiers are series-major: a range delete per series, which SQLite runs for each
    // id of the IN list along the primary key (one statement, no per-series round trip).
    for tier in &tiers[1..] {
        let sql = format!("DELETE FROM {} WHERE series_id IN (SELECT id FROM series) AND start_s < ?1", tier.table());
        n_deleted += conn.execute(&sql, [now_s - tier.retention_s])? as u64;
    }
    Ok(n_deleted)
}
