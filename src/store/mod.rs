//! The only module that touches SQLite. One writer thread owns the write connection and applies
//! each flush in one transaction, then downsamples and expires; readers use their own
//! connections from a small pool. The database runs in WAL mode so readers never block writes.

pub(crate) mod alerts;
pub(crate) mod ballast;
pub mod block;
mod codec;
mod downsample;
mod links;
mod meta;
pub mod outbox;
pub(crate) mod reader;
mod retention;
mod schema;
mod seal;
mod tier_read;
pub mod tiers;
mod upsert;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

pub use self::reader::Reader;
use self::tiers::Tier;
pub use self::writer::FlushReport;
use crate::aggregate::batch::FlushBatch;
use crate::aggregate::sketch::SketchError;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt sketch in the database: {0}")]
    Sketch(#[from] SketchError),
    #[error("corrupt data in the database: {0}")]
    Block(#[from] block::BlockError),
    #[error(
        "database schema version {found} is newer than this perfwatch knows ({known}); run a newer perfwatch or point at another database"
    )]
    NewerSchema { found: usize, known: usize },
    #[error("cannot open database {path}: {source}{}; check the path exists and is writable", cause(path))]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("{path} holds no perfwatch data; point at the storage.path of a perfwatch daemon")]
    NotPerfwatch { path: PathBuf },
    #[error("the store writer has stopped")]
    WriterGone,
    #[error("a read failed on an internal error ({0}); this is a bug in perfwatch, please report it with the log")]
    ReadPanicked(String),
    #[error("the rollup holds a value that is not a finite number")]
    NotFinite,
    #[error("cannot start the store writer thread: {0}")]
    Thread(std::io::Error),
}

/// What the file system says when the database (or its directory) is opened for writing: SQLite's
/// own message ("unable to open database file") does not say why.
fn cause(path: &Path) -> String {
    let probe = if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path).map(drop)
    } else {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        tempfile_probe(dir)
    };
    probe.err().map(|err| format!(" ({err})")).unwrap_or_default()
}

/// Whether a file can be created in `dir` (it is removed again).
fn tempfile_probe(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".perfwatch-probe-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    std::fs::remove_file(probe)
}

impl StoreError {
    /// Whether trying again later may succeed: the disk is full or failing, or the database
    /// is busy, read-only or unreachable for now. Anything else is a property of the data.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(err, _)) => matches!(
                err.code,
                DiskFull | SystemIoFailure | DatabaseBusy | DatabaseLocked | ReadOnly | CannotOpen | OutOfMemory
            ),
            StoreError::WriterGone | StoreError::Thread(_) => true,
            _ => false,
        }
    }
}

pub struct StoreSettings {
    pub path: PathBuf,
    pub tiers: Vec<Tier>,
    pub n_readers: usize,
}

/// What the writer was asked to do.
pub enum WriterMsg {
    Flush {
        batch: Arc<FlushBatch>,
        reply: oneshot::Sender<Result<FlushReport, StoreError>>,
    },
    /// Any other small write, run in one transaction on the writer thread (the job commits
    /// and replies itself).
    Write(Box<dyn FnOnce(&mut rusqlite::Connection) + Send>),
}

/// What one evaluation changed, committed together by [`StoreHandle::commit`].
#[derive(Debug, Default)]
pub struct Changes {
    pub alerts: Vec<alerts::AlertRow>,
    pub history: Vec<alerts::HistoryRow>,
    /// Notification groups by key: the new JSON state, or `None` when closed.
    pub groups: Vec<(String, Option<String>)>,
    pub outbox: Vec<outbox::OutboxRow>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.history.is_empty() && self.groups.is_empty() && self.outbox.is_empty()
    }
}

/// The sending side of the writer thread; dropping every handle ends the thread after it has
/// finished what it was sent.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<WriterMsg>,
}

impl StoreHandle {
    /// Commits `batch`; returns once it is durable in the database.
    pub async fn flush(&self, batch: Arc<FlushBatch>) -> Result<FlushReport, StoreError> {
        let (reply, done) = oneshot::channel();
        self.tx.send(WriterMsg::Flush { batch, reply }).await.map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Commits what an evaluation changed (alert instances, their transitions, notification
    /// groups and the notifications they queued) in one transaction: a crash keeps all or none.
    pub async fn commit(&self, changes: Changes) -> Result<(), StoreError> {
        self.write(move |tx| {
            alerts::save(tx, &changes.alerts, &changes.history)?;
            outbox::save_groups(tx, &changes.groups)?;
            outbox::enqueue(tx, &changes.outbox)?;
            Ok(())
        })
        .await
    }

    /// Acknowledges (or unacknowledges) an active alert; false when none is active by that id.
    pub async fn ack(&self, id: String, ack: Option<alerts::Ack>, now_s: i64) -> Result<bool, StoreError> {
        self.write(move |tx| alerts::set_ack(tx, &id, ack.as_ref(), now_s)).await
    }

    /// Creates a silence, or ends one early (same id, new end).
    pub async fn save_silence(&self, silence: alerts::SilenceRow) -> Result<(), StoreError> {
        self.write(move |tx| alerts::save_silence(tx, &silence)).await
    }

    /// Creates a silence ending with its alert's resolve; false (nothing saved) when the alert
    /// is no longer active.
    pub async fn save_silence_until_resolved(&self, silence: alerts::SilenceRow) -> Result<bool, StoreError> {
        self.write(move |tx| alerts::save_silence_until_resolved(tx, &silence)).await
    }

    /// Queues notifications; returns how many were new (an id already queued is kept as is).
    pub async fn enqueue(&self, rows: Vec<outbox::OutboxRow>) -> Result<usize, StoreError> {
        self.write(move |tx| outbox::enqueue(tx, &rows)).await
    }

    /// Claims up to `limit` due notifications of `notifier` for sending.
    pub async fn claim(
        &self,
        notifier: String,
        now_s: i64,
        limit: usize,
    ) -> Result<Vec<outbox::OutboxRow>, StoreError> {
        self.write(move |tx| outbox::claim(tx, &notifier, now_s, limit)).await
    }

    /// Records how an attempt ended.
    pub async fn finish_attempt(
        &self,
        id: String,
        result: outbox::AttemptResult,
        at_s: i64,
        latency_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(move |tx| outbox::finish(tx, &id, &result, at_s, latency_ms)).await
    }

    /// Puts notifications a crash (or a failed sender of `notifier`) left `sending` back in
    /// the queue, in doubt; returns how many.
    pub async fn recover_outbox(&self, notifier: Option<String>) -> Result<usize, StoreError> {
        self.write(move |tx| outbox::recover(tx, notifier.as_deref())).await
    }

    /// The secret named `name`, made and stored the first time it is asked for.
    pub async fn secret(&self, name: &'static str) -> Result<Vec<u8>, StoreError> {
        self.write(move |tx| links::secret(tx, name)).await
    }

    /// Marks ack link `nonce` used; `Some((by, at))` when it already was.
    pub async fn use_ack_link(
        &self,
        nonce: String,
        by: String,
        now_s: i64,
    ) -> Result<Option<(String, i64)>, StoreError> {
        self.write(move |tx| links::use_link(tx, &nonce, &by, now_s)).await
    }

    /// Deletes cumulative state last pushed before `before_s`; returns how many were deleted.
    pub async fn forget_push_state_before(&self, before_s: i64) -> Result<usize, StoreError> {
        self.write(move |tx| Ok(tx.execute("DELETE FROM push_state WHERE updated_s < ?1", [before_s])?)).await
    }

    /// Runs `work` in one transaction on the writer thread.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, done) = oneshot::channel();
        let job = Box::new(move |conn: &mut rusqlite::Connection| {
            let result = (|| {
                let tx = conn.transaction()?;
                let value = work(&tx)?;
                tx.commit()?;
                Ok(value)
            })();
            let _ = reply.send(result);
        });
        self.tx.send(WriterMsg::Write(job)).await.map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// An opened database: the writer's handle and thread, and the readers.
pub struct Store {
    pub handle: StoreHandle,
    pub reader: Reader,
    pub writer_thread: std::thread::JoinHandle<()>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database, and starts the writer thread.
    pub fn open(settings: StoreSettings) -> Result<Store, StoreError> {
        // Whatever fails while opening names the file: a read-only disk, a full one or a
        // directory without write permission all show up here first.
        let with_path = |err: StoreError| match err {
            StoreError::Sqlite(source) => StoreError::Open { path: settings.path.clone(), source },
            other => other,
        };
        let mut conn = open_connection(&settings.path, false)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| with_path(e.into()))?;
        schema::migrate(&mut conn, &settings.tiers).map_err(with_path)?;
        let writer = writer::Writer::new(conn, settings.tiers.clone()).map_err(with_path)?;
        let (tx, rx) = mpsc::channel(4);
        let writer_thread = std::thread::Builder::new()
            .name("perfwatch-store".into())
            .spawn(move || writer.run(rx))
            .map_err(StoreError::Thread)?;
        let readers = (0..settings.n_readers.max(1))
            .map(|_| open_connection(&settings.path, true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(with_path)?;
        Ok(Store { handle: StoreHandle { tx }, reader: Reader::new(readers, settings.tiers), writer_thread })
    }
}

/// A reader over a database file another perfwatch writes (or wrote), without its config:
/// the tiers come from the file's tables. For `perfwatch gate --db`.
pub fn open_history(path: &Path) -> Result<Reader, StoreError> {
    if !path.is_file() {
        let source = rusqlite::Error::InvalidPath(path.to_owned());
        return Err(StoreError::Open { path: path.to_owned(), source });
    }
    let conn = open_connection(path, true)?;
    let tiers = schema::stored_tiers(&conn)?.ok_or_else(|| StoreError::NotPerfwatch { path: path.to_owned() })?;
    Ok(Reader::new(vec![conn], tiers))
}

/// Page cache per connection, KiB (SQLite's default is 2 MiB).
const CACHE_KIB: i64 = 64 * 1024;
/// Memory-mapped reads, bytes: pages come from the OS cache without a copy or a syscall.
const MMAP_BYTES: i64 = 1 << 30;

pub(super) fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let open_error = |source| StoreError::Open { path: path.to_owned(), source };
    let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_error)?;
    if !read_only {
        // WAL + NORMAL: a committed flush survives a process crash; only an OS crash or power
        // cut can take back the last few commits.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_error)?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(open_error)?;
    }
    // Rows of one flush land on many pages (the key is series first); keep them cached.
    conn.pragma_update(None, "cache_size", -CACHE_KIB).map_err(open_error)?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES).map_err(open_error)?;
    Ok(conn)
}
