//! Reads for queries, on a small pool of read-only connections. Each read runs inside one
//! transaction, so the flush sequence, watermarks and rows it sees belong to one snapshot.

use std::cell::OnceCell;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Transaction, params};
use tokio::sync::Semaphore;

use super::StoreError;
use super::codec::{ROLLUP_COLUMNS, decode_f64s};
use super::tiers::Tier;
use crate::model::{MetricKind, SeriesId};

#[derive(Clone)]
pub struct Reader {
    pool: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    layout: Arc<Layout>,
}

/// The tiers, and the statements that read them formatted once: a rule evaluation makes
/// tens of thousands of lookups.
pub(super) struct Layout {
    pub(super) tiers: Vec<Tier>,
    /// Per tier: its rows of a series in a range (tier 0: one interval of a series).
    pub(super) select: Vec<String>,
    /// Per tier: whether a series has a row in a range (tier 0: in one interval).
    pub(super) exists: Vec<String>,
    /// Tier 0's blocks of a series that may hold rows in a range.
    pub(super) sealed_select: String,
}

impl Layout {
    fn new(tiers: Vec<Tier>) -> Layout {
        let (select, exists) = tiers
            .iter()
            .enumerate()
            .map(|(idx, tier)| {
                if idx == 0 {
                    let table = tier.raw_table();
                    (
                        format!("SELECT {ROLLUP_COLUMNS} FROM {table} WHERE start_s = ?1 AND series_id = ?2"),
                        format!("SELECT 1 FROM {table} WHERE start_s = ?1 AND series_id = ?2"),
                    )
                } else {
                    let table = tier.table();
                    (
                        format!(
                            "SELECT start_s, {ROLLUP_COLUMNS} FROM {table} WHERE series_id = ?1 AND start_s >= ?2 AND start_s < ?3 ORDER BY start_s"
                        ),
                        format!(
                            "SELECT EXISTS (SELECT 1 FROM {table} WHERE series_id = ?1 AND start_s >= ?2 AND start_s < ?3)"
                        ),
                    )
                }
            })
            .unzip();
        let sealed_select = format!(
            "SELECT start_s, rows FROM {} WHERE series_id = ?1 AND start_s > ?2 AND start_s < ?3 ORDER BY start_s",
            tiers[0].sealed_table()
        );
        Layout { tiers, select, exists, sealed_select }
    }
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
    /// When it was last pushed, unix seconds.
    pub updated_s: i64,
}

/// One read transaction.
pub struct ReadTx<'c> {
    pub(super) tx: Transaction<'c>,
    pub(super) layout: &'c Layout,
    /// The first and last interval tier 0's raw table holds, read once per transaction.
    pub(super) raw_span: OnceCell<Option<(i64, i64)>>,
    /// Tier 0's sealed watermark (see `seal.rs`), read once per transaction.
    pub(super) sealed: OnceCell<Option<i64>>,
}

impl Reader {
    pub fn new(connections: Vec<Connection>, tiers: Vec<Tier>) -> Reader {
        let permits = Arc::new(Semaphore::new(connections.len()));
        Reader { pool: Arc::new(Mutex::new(connections)), permits, layout: Arc::new(Layout::new(tiers)) }
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.layout.tiers
    }

    /// Runs `read` on a pooled connection in a blocking thread, inside one transaction.
    pub async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.with_conn(move |conn| conn.read(read)).await
    }
}

/// A pooled connection lent to one blocking task, for work that needs several read
/// transactions in a row (rule evaluation takes a memory snapshot before each).
pub struct ReadConn<'c> {
    conn: &'c mut Connection,
    layout: &'c Layout,
}

impl ReadConn<'_> {
    pub fn read<T, E: From<StoreError>>(&mut self, read: impl FnOnce(&ReadTx<'_>) -> Result<T, E>) -> Result<T, E> {
        let tx = self.conn.transaction().map_err(|e| E::from(e.into()))?;
        let read_tx = ReadTx { tx, layout: self.layout, raw_span: OnceCell::new(), sealed: OnceCell::new() };
        let value = read(&read_tx)?;
        read_tx.tx.finish().map_err(|e| E::from(e.into()))?;
        Ok(value)
    }
}

impl Reader {
    /// Runs `work` on a pooled connection in a blocking thread; it opens its own transactions.
    ///
    /// A panic inside `work` is caught: its transaction rolls back, the connection goes back to
    /// the pool and the caller gets [`StoreError::ReadPanicked`], so one bad read cannot starve
    /// every later one.
    pub async fn with_conn<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut ReadConn<'_>) -> Result<T, E> + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| E::from(StoreError::WriterGone))?;
        let conn = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = conn.ok_or_else(|| E::from(StoreError::ReadPanicked("no pooled read connection left".into())))?;
        let mut lent = Lent { conn: Some(conn), pool: self.pool.clone(), _permit: permit };
        let layout = self.layout.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let conn = lent.conn.as_mut().expect("lent until dropped");
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut ReadConn { conn, layout: &layout })))
        })
        .await;
        match joined {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(E::from(StoreError::ReadPanicked(panic_message(panic.as_ref())))),
            Err(join) => Err(E::from(StoreError::ReadPanicked(join.to_string()))),
        }
    }
}

/// A pooled connection on loan: it goes back to the pool when dropped, also while unwinding.
struct Lent {
    conn: Option<Connection>,
    pool: Arc<Mutex<Vec<Connection>>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        }
    }
}

/// The text a panic was raised with, for the error that replaces it.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl ReadTx<'_> {
    pub fn tiers(&self) -> &[Tier] {
        &self.layout.tiers
    }

    /// The transaction, for the store's own read modules.
    pub(super) fn sql(&self) -> &Transaction<'_> {
        &self.tx
    }

    /// The database file's size in bytes (pages in use and free), without the WAL.
    pub fn database_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self.sql().query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = self.sql().query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages * page_size) as u64)
    }

    pub fn last_flush_seq(&self) -> Result<u64, StoreError> {
        Ok(self.meta("last_flush_seq")?.unwrap_or(0) as u64)
    }

    /// Per tier, the start of the first window not yet downsampled into it (tier 0: none).
    pub fn watermarks(&self) -> Result<Vec<Option<i64>>, StoreError> {
        let mut out = vec![None];
        for tier in &self.layout.tiers[1..] {
            out.push(self.meta(&tier.watermark_key())?);
        }
        Ok(out)
    }

    pub fn series_named(&self, name: &str) -> Result<Vec<StoredSeries>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT id, key, kind FROM series WHERE name = ?1")?;
        let rows = stmt.query_map([name], stored_series)?;
        Ok(rows.filter_map(Result::transpose).collect::<Result<_, _>>()?)
    }

    /// How many series named `name` are stored (series are never deleted).
    pub fn count_series_named(&self, name: &str) -> Result<usize, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT count(*) FROM series WHERE name = ?1")?;
        Ok(stmt.query_row([name], |r| r.get::<_, i64>(0))? as usize)
    }

    pub fn all_series(&self) -> Result<Vec<StoredSeries>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT id, key, kind FROM series")?;
        let rows = stmt.query_map([], stored_series)?;
        Ok(rows.filter_map(Result::transpose).collect::<Result<_, _>>()?)
    }

    /// Cumulative state pushed since `since_s`, the most recent first, at most `limit` of it.
    pub fn cumulative_state(&self, since_s: i64, limit: usize) -> Result<Vec<SavedCumulative>, StoreError> {
        let mut stmt = self.tx.prepare(
            "SELECT s.id, s.key, s.kind, p.grp, p.state, p.updated_s FROM push_state p JOIN series s ON s.id = p.series_id
             WHERE p.updated_s >= ?1 ORDER BY p.updated_s DESC LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![since_s, i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let Some(series) = stored_series(row)? else { continue };
            let blob: Vec<u8> = row.get(4)?;
            let (group, updated_s) = (row.get::<_, i64>(3)? as u64, row.get(5)?);
            out.push(SavedCumulative { series, group, values: decode_f64s(&blob), updated_s });
        }
        Ok(out)
    }

    pub(super) fn meta(&self, key: &str) -> Result<Option<i64>, StoreError> {
        super::meta::get_meta(&self.tx, key)
    }
}

/// A series row; `None` for a kind code this version does not know.
fn stored_series(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<StoredSeries>> {
    let Some(kind) = MetricKind::from_code(row.get(2)?) else { return Ok(None) };
    Ok(Some(StoredSeries { id: row.get::<_, i64>(0)? as u64, key: row.get(1)?, kind }))
}
