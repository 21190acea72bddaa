//! The flusher actor: at each interval boundary it drains closed intervals from the aggregator
//! and commits them through the store, in order, retrying a failed batch before newer ones.
//! It also answers on-demand flushes. When every [`FlushHandle`] is gone (ingest has stopped)
//! it drains *everything*, open intervals included, commits it and ends.
//!
//! While the store cannot take writes (a full disk, a read-only or failing one), batches wait
//! in memory up to `storage.max_unflushed_bytes`; [`FlushHealth`] tells ingest to refuse pushes
//! beyond that (503), and readiness and the watchdog what is wrong. At the end, a final flush
//! that finds the disk full releases the emergency ballast and tries again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::aggregate::Aggregator;
use crate::aggregate::batch::FlushBatch;
use crate::model::interval_start;
use crate::store::ballast::Ballast;
use crate::store::{StoreError, StoreHandle};
use crate::{clock, telemetry};

/// Flushes run this long after the interval boundary, so samples stamped just before it and
/// still in flight are in.
const AFTER_BOUNDARY: Duration = Duration::from_millis(250);
/// How long the final flush keeps trying (a disk may get room) before it gives up.
const FINAL_FLUSH_DEADLINE: Duration = Duration::from_secs(30);
/// How often a released ballast is allocated again while flushes commit.
const BALLAST_RETRY: Duration = Duration::from_secs(60);

/// How flushing goes, shared with ingest (admission), readiness and the watchdog.
pub struct FlushHealth {
    last_commit_ms: AtomicI64,
    /// The `upto_s` of the last committed batch: what was accepted for earlier intervals is
    /// on disk.
    durable_before_s: AtomicI64,
    /// When the last flush attempt ended, committed or not: the flusher is alive.
    last_attempt_ms: AtomicI64,
    unflushed_bytes: AtomicU64,
    max_unflushed_bytes: u64,
    /// Why the last attempt failed; `None` when it committed.
    failure: Mutex<Option<String>>,
}

/// Why a push is refused while the store cannot take writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlogged {
    pub unflushed_bytes: u64,
    pub max_unflushed_bytes: u64,
    pub failure: String,
}

impl std::fmt::Display for Backlogged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "perfwatch cannot write to its database ({}) and holds {} bytes not yet written, over storage.max_unflushed_bytes ({}); nothing of this request was taken, retry later",
            self.failure, self.unflushed_bytes, self.max_unflushed_bytes
        )
    }
}

impl FlushHealth {
    pub(crate) fn new(max_unflushed_bytes: u64) -> FlushHealth {
        let now = clock::now_ms();
        FlushHealth {
            last_commit_ms: AtomicI64::new(now),
            durable_before_s: AtomicI64::new(0),
            last_attempt_ms: AtomicI64::new(now),
            unflushed_bytes: AtomicU64::new(0),
            max_unflushed_bytes,
            failure: Mutex::new(None),
        }
    }

    /// A flush attempt ended at `now_ms`, leaving `unflushed_bytes` in memory; `failure` says
    /// why it did not commit.
    pub(crate) fn attempted(&self, now_ms: i64, unflushed_bytes: u64, failure: Option<String>) {
        self.unflushed_bytes.store(unflushed_bytes, Ordering::Relaxed);
        self.last_attempt_ms.store(now_ms, Ordering::Relaxed);
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = failure;
    }

    /// Unix ms of the last successful commit (the start time before any).
    pub fn last_commit_ms(&self) -> i64 {
        self.last_commit_ms.load(Ordering::Relaxed)
    }

    /// Samples accepted for intervals before this (unix seconds) are on disk.
    pub fn durable_before_s(&self) -> i64 {
        self.durable_before_s.load(Ordering::Relaxed)
    }

    /// Unix ms at which the last flush attempt ended, committed or failed.
    pub fn last_attempt_ms(&self) -> i64 {
        self.last_attempt_ms.load(Ordering::Relaxed)
    }

    /// Why the last flush failed, while it did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn unflushed_bytes(&self) -> u64 {
        self.unflushed_bytes.load(Ordering::Relaxed)
    }

    pub fn max_unflushed_bytes(&self) -> u64 {
        self.max_unflushed_bytes
    }

    /// Whether ingest may take more: refused only while flushes fail and what waits for the
    /// store is over the bound.
    pub fn admit(&self) -> Result<(), Backlogged> {
        let unflushed_bytes = self.unflushed_bytes();
        if unflushed_bytes <= self.max_unflushed_bytes {
            return Ok(());
        }
        match self.failure() {
            Some(failure) => {
                Err(Backlogged { unflushed_bytes, max_unflushed_bytes: self.max_unflushed_bytes, failure })
            }
            None => Ok(()),
        }
    }
}

/// Asks the flusher to commit everything in memory now.
#[derive(Clone)]
pub struct FlushHandle {
    tx: mpsc::Sender<oneshot::Sender<Result<u64, StoreError>>>,
    health: Arc<FlushHealth>,
}

impl FlushHandle {
    /// Drains all intervals, open ones included, and returns once they are committed.
    pub async fn flush_all(&self) -> Result<u64, StoreError> {
        let (reply, done) = oneshot::channel();
        self.tx.send(reply).await.map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    pub fn health(&self) -> &Arc<FlushHealth> {
        &self.health
    }
}

/// How the flusher ended: what it could not write, if anything.
#[derive(Debug, Default)]
pub struct FinalFlush {
    pub lost_rollups: usize,
    pub error: Option<String>,
}

pub struct Flusher {
    aggregator: Arc<Aggregator>,
    store: StoreHandle,
    pending: VecDeque<Arc<FlushBatch>>,
    health: Arc<FlushHealth>,
    ballast: Ballast,
    ballast_checked: Option<std::time::Instant>,
}

impl Flusher {
    pub fn new(
        aggregator: Arc<Aggregator>,
        store: StoreHandle,
        ballast: Ballast,
        max_unflushed_bytes: u64,
    ) -> (Flusher, FlushHandle, mpsc::Receiver<oneshot::Sender<Result<u64, StoreError>>>) {
        let (tx, rx) = mpsc::channel(16);
        let health = Arc::new(FlushHealth::new(max_unflushed_bytes));
        let handle = FlushHandle { tx, health: health.clone() };
        let flusher = Flusher { aggregator, store, pending: VecDeque::new(), health, ballast, ballast_checked: None };
        (flusher, handle, rx)
    }

    pub async fn run(mut self, mut requests: mpsc::Receiver<oneshot::Sender<Result<u64, StoreError>>>) -> FinalFlush {
        let interval_s = self.aggregator.settings().interval_s;
        loop {
            let now = clock::now_ms();
            let next_boundary = (interval_start(now, interval_s) + interval_s) * 1000;
            let wait = Duration::from_millis((next_boundary - now) as u64) + AFTER_BOUNDARY;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {
                    let now = clock::now_ms();
                    let upto = interval_start(now, interval_s);
                    let _ = self.flush(upto, now).await;
                }
                request = requests.recv() => match request {
                    Some(reply) => {
                        let result = self.flush(i64::MAX, clock::now_ms()).await;
                        let _ = reply.send(result);
                    }
                    None => break,
                },
            }
        }
        self.final_flush().await
    }

    /// Ingest has stopped: everything left goes to disk, retried until [`FINAL_FLUSH_DEADLINE`];
    /// a full disk gets the ballast's room.
    async fn final_flush(mut self) -> FinalFlush {
        let started = std::time::Instant::now();
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let err = match self.flush(i64::MAX, clock::now_ms()).await {
                Ok(_) => {
                    tracing::info!("flusher finished; everything accepted is on disk");
                    return FinalFlush::default();
                }
                Err(err) => err,
            };
            if err.is_transient() && self.ballast.release() {
                tracing::warn!(path = %self.ballast.path().display(), "the database cannot be written; released the emergency ballast to make room");
                continue;
            }
            let lost_rollups: usize = self.pending.iter().map(|b| b.rollups.len()).sum();
            if !err.is_transient() || started.elapsed() >= FINAL_FLUSH_DEADLINE {
                tracing::error!(
                    error = %err,
                    lost_rollups,
                    "the final flush failed; data accepted since the last commit is lost. Free disk space (or fix the error) before perfwatch stops next time"
                );
                return FinalFlush { lost_rollups, error: Some(err.to_string()) };
            }
            tracing::error!(attempt, error = %err, lost_rollups, "final flush failed; retrying until the deadline");
            tokio::time::sleep(Duration::from_millis(200 * attempt.min(10))).await;
        }
    }

    /// Drains intervals before `upto_s` and commits every pending batch in order; returns the
    /// number of rollups committed.
    async fn flush(&mut self, upto_s: i64, now_ms: i64) -> Result<u64, StoreError> {
        self.pending.push_back(self.aggregator.drain(upto_s, now_ms));
        telemetry::active_series(self.aggregator.n_series());
        let result = self.commit_pending(now_ms).await;
        let unflushed: usize = self.pending.iter().map(|b| b.heap_bytes()).sum();
        self.health.attempted(clock::now_ms(), unflushed as u64, result.as_ref().err().map(|e| e.to_string()));
        telemetry::unflushed_bytes(unflushed);
        if result.is_ok() {
            self.keep_ballast().await;
        }
        result
    }

    async fn commit_pending(&mut self, now_ms: i64) -> Result<u64, StoreError> {
        let mut n_rollups = 0;
        while let Some(batch) = self.pending.front().cloned() {
            match self.store.flush(batch.clone()).await {
                Ok(report) => {
                    self.aggregator.committed(batch.seq);
                    self.pending.pop_front();
                    n_rollups += report.n_rollups as u64;
                    let committed_at = crate::clock::now_ms();
                    self.health.last_commit_ms.store(committed_at, Ordering::Relaxed);
                    self.health.durable_before_s.fetch_max(batch.upto_s, Ordering::Relaxed);
                    // Writing a long backlog is progress too: the watchdog must not kill it.
                    self.health.last_attempt_ms.store(committed_at, Ordering::Relaxed);
                    telemetry::flush_lag((committed_at - now_ms) as f64 / 1000.0);
                }
                Err(err) => {
                    telemetry::flush_failed();
                    return Err(err);
                }
            }
        }
        Ok(n_rollups)
    }

    /// Allocates the ballast (again) once there is room, at most once a minute, off the async
    /// workers.
    async fn keep_ballast(&mut self) {
        if self.ballast_checked.is_some_and(|t| t.elapsed() < BALLAST_RETRY) {
            return;
        }
        self.ballast_checked = Some(std::time::Instant::now());
        let ballast = self.ballast.clone();
        let ensured = tokio::task::spawn_blocking(move || ballast.ensure()).await;
        if let Ok(Err(err)) = ensured {
            tracing::warn!(path = %self.ballast.path().display(), error = %err, "cannot allocate the emergency disk ballast");
        }
    }
}
