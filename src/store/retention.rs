//! Retention: deletes each tier's rows older than its retention, series by series along the
//! primary key so the work never scans a whole table.

use rusqlite::{Connection, params};

use super::StoreError;
use super::tiers::Tier;

/// Deletes rows past retention as of `now_s`; returns how many went.
pub fn expire(conn: &mut Connection, tiers: &[Tier], now_s: i64) -> Result<u64, StoreError> {
    let ids: Vec<i64> =
        conn.prepare("SELECT id FROM series")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut n_deleted = 0u64;
    for tier in tiers {
        let cutoff = now_s - tier.retention_s;
        let tx = conn.transaction()?;
        {
            let mut delete =
                tx.prepare_cached(&format!("DELETE FROM {} WHERE series_id = ?1 AND start_s < ?2", tier.table()))?;
            for id in &ids {
                n_deleted += delete.execute(params![id, cutoff])? as u64;
            }
        }
        tx.commit()?;
    }
    Ok(n_deleted)
}
