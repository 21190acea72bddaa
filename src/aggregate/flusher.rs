//! The flusher actor: at each interval boundary it drains closed intervals from the aggregator
//! and commits them through the store, in order, retrying a failed batch before newer ones.
//! It also answers on-demand flushes. When every [`FlushHandle`] is gone (ingest has stopped)
//! it drains *everything*, open intervals included, commits it and ends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Aggregator;
use super::batch::FlushBatch;
use crate::model::interval_start;
use crate::store::{StoreError, StoreHandle};
use crate::{clock, telemetry};

/// Flushes run this long after the interval boundary, so samples stamped just before it and
/// still in flight are in.
const AFTER_BOUNDARY: Duration = Duration::from_millis(250);

/// Asks the flusher to commit everything in memory now.
#[derive(Clone)]
pub struct FlushHandle {
    tx: mpsc::Sender<oneshot::Sender<Result<u64, StoreError>>>,
    last_commit_ms: Arc<AtomicI64>,
}

impl FlushHandle {
    /// Drains all intervals, open ones included, and returns once they are committed.
    pub async fn flush_all(&self) -> Result<u64, StoreError> {
        let (reply, done) = oneshot::channel();
        self.tx.send(reply).await.map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Unix ms of the last successful commit (0: none yet).
    pub fn last_commit_ms(&self) -> i64 {
        self.last_commit_ms.load(Ordering::Relaxed)
    }
}

pub struct Flusher {
    aggregator: Arc<Aggregator>,
    store: StoreHandle,
    pending: VecDeque<Arc<FlushBatch>>,
    last_commit_ms: Arc<AtomicI64>,
}

impl Flusher {
    pub fn new(
        aggregator: Arc<Aggregator>,
        store: StoreHandle,
    ) -> (Flusher, FlushHandle, mpsc::Receiver<oneshot::Sender<Result<u64, StoreError>>>) {
        let (tx, rx) = mpsc::channel(16);
        let last_commit_ms = Arc::new(AtomicI64::new(clock::now_ms()));
        let handle = FlushHandle { tx, last_commit_ms: last_commit_ms.clone() };
        (Flusher { aggregator, store, pending: VecDeque::new(), last_commit_ms }, handle, rx)
    }

    pub async fn run(mut self, mut requests: mpsc::Receiver<oneshot::Sender<Result<u64, StoreError>>>) {
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
        // Ingest has stopped: everything left goes to disk, retried until the writer answers.
        for attempt in 1..=5 {
            match self.flush(i64::MAX, clock::now_ms()).await {
                Ok(_) => break,
                Err(err) => {
                    tracing::error!(attempt, error = %err, "final flush failed");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
            }
        }
        tracing::info!("flusher finished");
    }

    /// Drains intervals before `upto_s` and commits every pending batch in order; returns the
    /// number of rollups committed.
    async fn flush(&mut self, upto_s: i64, now_ms: i64) -> Result<u64, StoreError> {
        self.pending.push_back(self.aggregator.drain(upto_s, now_ms));
        telemetry::active_series(self.aggregator.n_series());
        let mut n_rollups = 0;
        while let Some(batch) = self.pending.front().cloned() {
            match self.store.flush(batch.clone()).await {
                Ok(report) => {
                    self.aggregator.committed(batch.seq);
                    self.pending.pop_front();
                    n_rollups += report.n_rollups as u64;
                    let committed_at = crate::clock::now_ms();
                    self.last_commit_ms.store(committed_at, Ordering::Relaxed);
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
}
