//! Retention: deletes each tier's rows older than its retention along the primary key (a
//! range of the time-major raw tier; series by series in the coarse ones), never scanning a
//! whole table.

use rusqlite::{Connection, params};

use super::StoreError;
use super::tiers::Tier;

/// Deletes rows past retention as of `now_s`; returns how many went.
pub fn expire(conn: &mut Connection, tiers: &[Tier], now_s: i64) -> Result<u64, StoreError> {
    let ids: Vec<i64> =
        conn.prepare("SELECT id FROM series")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut n_deleted = 0u64;
    // Tier 0 is time-major: one range delete.
    let raw = &tiers[0];
    n_deleted +=
        conn.execute(&format!("DELETE FROM {} WHERE start_s < ?1", raw.raw_table()), [now_s - raw.retention_s])? as u64;
    for tier in &tiers[1..] {
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
