//! Reads for queries, on a small pool of read-only connections. Each read runs inside one
//! transaction, so the flush sequence, watermarks and rows it sees belong to one snapshot.

use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::Semaphore;

use super::StoreError;
use super::codec::{ROLLUP_COLUMNS, decode_f64s, read_rollup};
use super::tiers::{Tier, align_up};
use crate::aggregate::rollup::Rollup;
use crate::model::{MetricKind, SeriesId};

#[derive(Clone)]
pub struct Reader {
    pool: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    tiers: Arc<[Tier]>,
}

/// A stored series.
#[derive(Debug, Clone)]
pub struct StoredSeries {
    pub id: SeriesId,
    pub key: String,
    pub kind: MetricKind,
}

/// Cumulative state kept across restarts.
#[derive(Debug, Clone)]
pub struct SavedCumulative {
    pub series: StoredSeries,
    pub group: u64,
    pub values: Vec<f64>,
}

/// One read transaction.
pub struct ReadTx<'c> {
    tx: Transaction<'c>,
    tiers: &'c [Tier],
}

impl Reader {
    pub fn new(connections: Vec<Connection>, tiers: Vec<Tier>) -> Reader {
        let permits = Arc::new(Semaphore::new(connections.len()));
        Reader { pool: Arc::new(Mutex::new(connections)), permits, tiers: tiers.into() }
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// Runs `read` on a pooled connection in a blocking thread, inside one transaction.
    pub async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| StoreError::WriterGone)?;
        let mut conn = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop().expect("a connection per permit");
        let pool = self.pool.clone();
        let tiers = self.tiers.clone();
        tokio::task::spawn_blocking(move || {
            let result = (|| {
                let tx = conn.transaction()?;
                let read_tx = ReadTx { tx, tiers: &tiers };
                let value = read(&read_tx)?;
                read_tx.tx.finish()?;
                Ok(value)
            })();
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            result
        })
        .await
        .expect("a read panicked")
    }
}

/// A pooled connection lent to one blocking task, for work that needs several read
/// transactions in a row (rule evaluation takes a memory snapshot before each).
pub struct ReadConn<'c> {
    conn: &'c mut Connection,
    tiers: &'c [Tier],
}

impl ReadConn<'_> {
    pub fn read<T, E: From<StoreError>>(&mut self, read: impl FnOnce(&ReadTx<'_>) -> Result<T, E>) -> Result<T, E> {
        let tx = self.conn.transaction().map_err(|e| E::from(e.into()))?;
        let read_tx = ReadTx { tx, tiers: self.tiers };
        let value = read(&read_tx)?;
        read_tx.tx.finish().map_err(|e| E::from(e.into()))?;
        Ok(value)
    }
}

impl Reader {
    /// Runs `work` on a pooled connection in a blocking thread; it opens its own transactions.
    pub async fn with_conn<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut ReadConn<'_>) -> Result<T, E> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| E::from(StoreError::WriterGone))?;
        let mut conn = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop().expect("a connection per permit");
        let pool = self.pool.clone();
        let tiers = self.tiers.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&mut ReadConn { conn: &mut conn, tiers: &tiers });
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            result
        })
        .await
        .expect("a read panicked")
    }
}

impl ReadTx<'_> {
    pub fn tiers(&self) -> &[Tier] {
        self.tiers
    }

    /// The transaction, for the store's own read modules.
    pub(super) fn sql(&self) -> &Transaction<'_> {
        &self.tx
    }

    pub fn last_flush_seq(&self) -> Result<u64, StoreError> {
        Ok(self.meta("last_flush_seq")?.unwrap_or(0) as u64)
    }

    /// Per tier, the start of the first window not yet downsampled into it (tier 0: none).
    pub fn watermarks(&self) -> Result<Vec<Option<i64>>, StoreError> {
        let mut out = vec![None];
        for tier in &self.tiers[1..] {
            out.push(self.meta(&tier.watermark_key())?);
        }
        Ok(out)
    }

    pub fn series_named(&self, name: &str) -> Result<Vec<StoredSeries>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT id, key, kind FROM series WHERE name = ?1")?;
        let rows = stmt.query_map([name], stored_series)?;
        Ok(rows.filter_map(Result::transpose).collect::<Result<_, _>>()?)
    }

    pub fn all_series(&self) -> Result<Vec<StoredSeries>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT id, key, kind FROM series")?;
        let rows = stmt.query_map([], stored_series)?;
        Ok(rows.filter_map(Result::transpose).collect::<Result<_, _>>()?)
    }

    /// Rows of tier `tier` for `series` with `from_s <= start < to_s`, oldest first.
    pub fn rollups(
        &self,
        tier: usize,
        series: SeriesId,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<(i64, Rollup)>, StoreError> {
        if tier == 0 {
            return self.raw_rollups(series, from_s, to_s);
        }
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT start_s, {ROLLUP_COLUMNS} FROM {} WHERE series_id = ?1 AND start_s >= ?2 AND start_s < ?3 ORDER BY start_s",
            self.tiers[tier].table()
        ))?;
        let mut rows = stmt.query(params![series as i64, from_s, to_s])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((row.get(0)?, read_rollup(row, 1)?));
        }
        Ok(out)
    }

    /// Tier 0 is keyed by time first: one point lookup per interval in the range.
    fn raw_rollups(&self, series: SeriesId, from_s: i64, to_s: i64) -> Result<Vec<(i64, Rollup)>, StoreError> {
        let raw = &self.tiers[0];
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {ROLLUP_COLUMNS} FROM {} WHERE start_s = ?1 AND series_id = ?2",
            raw.raw_table()
        ))?;
        // Walk only where the table has rows (both ends are one seek on the time-major key).
        let (first, last): (Option<i64>, Option<i64>) =
            self.tx.query_row(&format!("SELECT min(start_s), max(start_s) FROM {}", raw.raw_table()), [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let (Some(first), Some(last)) = (first, last) else { return Ok(Vec::new()) };
        let to_s = to_s.min(last + 1);
        let mut out = Vec::new();
        let mut start = align_up(from_s.max(first), raw.resolution_s);
        while start < to_s {
            let mut rows = stmt.query(params![start, series as i64])?;
            if let Some(row) = rows.next()? {
                out.push((start, read_rollup(row, 0)?));
            }
            start += raw.resolution_s;
        }
        Ok(out)
    }

    pub fn cumulative_state(&self) -> Result<Vec<SavedCumulative>, StoreError> {
        let mut stmt = self.tx.prepare(
            "SELECT s.id, s.key, s.kind, p.grp, p.state FROM push_state p JOIN series s ON s.id = p.series_id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let Some(series) = stored_series(row)? else { continue };
            let blob: Vec<u8> = row.get(4)?;
            out.push(SavedCumulative { series, group: row.get::<_, i64>(3)? as u64, values: decode_f64s(&blob) });
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }
}

/// A series row; `None` for a kind code this version does not know.
fn stored_series(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<StoredSeries>> {
    let Some(kind) = MetricKind::from_code(row.get(2)?) else { return Ok(None) };
    Ok(Some(StoredSeries { id: row.get::<_, i64>(0)? as u64, key: row.get(1)?, kind }))
}
