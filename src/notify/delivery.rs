//! The delivery actor: one task per notifier drains that notifier's due outbox rows. A row is
//! claimed (`sending`, durably) before it is sent and its attempt recorded after; failures are
//! retried with exponential back-off and jitter, a 429's `Retry-After` is honoured exactly,
//! and a notifier never has more than `concurrency` sends in flight or sends faster than its
//! rate. Idle tasks sleep until the next row is due or an enqueue wakes them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::health::{Attempt, DeliveryHealth};
use super::message::Message;
use super::settings::NotifierConfig;
use super::{Notifier, NotifierError, Outcome};
use crate::store::outbox::{AttemptResult, OutboxRow};
use crate::store::{Reader, StoreHandle};
use crate::supervise::{Beat, Restart, Tasks, supervise};
use crate::{clock, telemetry};

/// Back-off after the first failure; doubles per attempt up to [`MAX_BACKOFF_S`].
const BASE_BACKOFF_S: f64 = 2.0;
const MAX_BACKOFF_S: f64 = 600.0;
/// An idle notifier with nothing queued still looks this often (a safety net, not the path).
const IDLE_RECHECK: Duration = Duration::from_secs(60);

/// Wakes the delivery tasks after something was queued.
#[derive(Clone)]
pub struct DeliveryHandle {
    wake: Arc<Notify>,
    notifiers: Arc<BTreeMap<String, NotifierConfig>>,
    health: Arc<DeliveryHealth>,
}

impl DeliveryHandle {
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    pub fn notifier_names(&self) -> impl Iterator<Item = &str> {
        self.notifiers.keys().map(String::as_str)
    }

    /// Whether each notifier is delivering.
    pub fn health(&self) -> &Arc<DeliveryHealth> {
        &self.health
    }
}

pub struct Delivery {
    store: StoreHandle,
    reader: Reader,
    senders: Vec<Arc<Notifier>>,
    wake: Arc<Notify>,
    health: Arc<DeliveryHealth>,
}

impl Delivery {
    pub fn new(
        store: StoreHandle,
        reader: Reader,
        notifiers: BTreeMap<String, NotifierConfig>,
    ) -> Result<(Delivery, DeliveryHandle), NotifierError> {
        let client = crate::http_client::builder().build()?;
        let senders = notifiers
            .iter()
            .map(|(name, config)| Notifier::new(name, config, client.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let wake = Arc::new(Notify::new());
        let health = Arc::new(DeliveryHealth::default());
        let handle = DeliveryHandle { wake: wake.clone(), notifiers: Arc::new(notifiers), health: health.clone() };
        Ok((Delivery { store, reader, senders, wake, health }, handle))
    }

    /// Puts in-doubt rows back in the queue, then drains every notifier until `cancel`.
    /// Sends until `cancel`: one supervised task per notifier, started again if it fails (a
    /// failed one's claimed rows are put back, in doubt, before it starts again).
    pub async fn run(self, cancel: CancellationToken, tasks: Arc<Tasks>) {
        match self.store.recover_outbox(None).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(n, "notifications were being sent when perfwatch stopped; sending them again"),
            Err(err) => tracing::error!(error = %err, "cannot recover the outbox"),
        }
        let mut drainers = tokio::task::JoinSet::new();
        for notifier in self.senders {
            let beat = tasks.register(&format!("delivery/{}", notifier.name), Some(STUCK_AFTER));
            let drain = Drainer {
                notifier,
                store: self.store.clone(),
                reader: self.reader.clone(),
                wake: self.wake.clone(),
                beat: beat.clone(),
                health: self.health.clone(),
            };
            let stop = cancel.clone();
            let mut starts = 0u64;
            let start = move || {
                starts += 1;
                let (drain, stop, again) = (drain.clone(), stop.clone(), starts > 1);
                async move {
                    if again {
                        drain.recover().await;
                    }
                    drain.run(stop).await
                }
            };
            drainers.spawn(supervise(beat, Restart::Yes, cancel.clone(), start));
        }
        while drainers.join_next().await.is_some() {}
        tracing::debug!("notification delivery finished");
    }
}

/// A notifier's sender that has not beaten for this long is reported stuck (it beats at least
/// every [`IDLE_RECHECK`], and a batch of sends is bounded by the notifier's timeouts).
const STUCK_AFTER: Duration = Duration::from_secs(300);

/// One notifier's queue.
#[derive(Clone)]
struct Drainer {
    notifier: Arc<Notifier>,
    store: StoreHandle,
    reader: Reader,
    wake: Arc<Notify>,
    beat: Beat,
    health: Arc<DeliveryHealth>,
}

impl Drainer {
    /// Puts this notifier's rows a failed run left `sending` back in the queue, in doubt.
    async fn recover(&self) {
        match self.store.recover_outbox(Some(self.notifier.name.clone())).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(notifier = %self.notifier.name, n, "sending again what the failed sender had claimed")
            }
            Err(err) => tracing::error!(notifier = %self.notifier.name, error = %err, "cannot recover the outbox"),
        }
    }

    async fn run(self, cancel: CancellationToken) {
        let mut next_send = tokio::time::Instant::now();
        while !cancel.is_cancelled() {
            self.beat.beat();
            // Registered before looking, so an enqueue between the look and the wait still wakes us.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now_s = clock::now_s();
            let name = self.notifier.name.clone();
            let wait = match self.reader.read(move |tx| tx.next_due(&name)).await {
                Ok(Some(due)) if due <= now_s => None,
                Ok(Some(due)) => Some(Duration::from_millis(((due * 1000) - clock::now_ms()).max(1) as u64)),
                Ok(None) => Some(IDLE_RECHECK),
                Err(err) => {
                    tracing::error!(notifier = %self.notifier.name, error = %err, "cannot read the outbox");
                    Some(Duration::from_secs(1))
                }
            };
            if let Some(wait) = wait {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = &mut woken => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let rows = match self
                .store
                .claim(self.notifier.name.clone(), now_s, self.notifier.config().delivery.concurrency)
                .await
            {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::error!(notifier = %self.notifier.name, error = %err, "cannot claim notifications");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut sends = FuturesUnordered::new();
            for row in rows {
                // Sends already started keep going while this one waits for its slot.
                let slot = tokio::time::sleep_until(next_send);
                tokio::pin!(slot);
                loop {
                    tokio::select! {
                        _ = &mut slot => break,
                        Some(()) = sends.next(), if !sends.is_empty() => {}
                    }
                }
                next_send = tokio::time::Instant::now()
                    + Duration::from_millis(self.notifier.config().delivery.min_interval_ms);
                sends.push(self.deliver(row));
            }
            while sends.next().await.is_some() {}
        }
    }

    /// Sends one claimed row and records how it went.
    async fn deliver(&self, row: OutboxRow) {
        let started = Instant::now();
        let outcome = match serde_json::from_str::<Message>(&row.payload) {
            Ok(message) => {
                let page = match &message.thread {
                    Some(first) if self.notifier.follows_pages() => match self.page(&row.id, first).await {
                        Ok(receipt) => receipt,
                        Err(due_s) => return self.defer(&row, due_s).await,
                    },
                    _ => None,
                };
                self.notifier.send(&row.id, &row.subject, &message, page.as_deref()).await
            }
            Err(err) => Outcome::Failed(format!("the stored message cannot be read: {err}")),
        };
        let latency = started.elapsed();
        let result = self.result(&row, outcome);
        let label = match &result {
            AttemptResult::Sent { .. } => "sent",
            AttemptResult::Retry { .. } | AttemptResult::Deferred { .. } => "retried",
            AttemptResult::Failed { .. } => "failed",
        };
        telemetry::notification_attempt(&self.notifier.name, label, latency);
        let name = &self.notifier.name;
        let now_ms = clock::now_ms();
        match &result {
            AttemptResult::Sent { .. } => {
                self.health.record(name, Attempt::Sent, "", now_ms);
                tracing::info!(notifier = %name, id = %row.id, kind = %row.kind, "notification sent")
            }
            AttemptResult::Retry { error, retry_at_s } | AttemptResult::Deferred { reason: error, retry_at_s } => {
                if matches!(result, AttemptResult::Retry { .. }) {
                    self.health.record(name, Attempt::Retried, error, now_ms);
                }
                tracing::warn!(notifier = %name, id = %row.id, %error, retry_at_s, "notification not delivered; will retry")
            }
            AttemptResult::Failed { error } => {
                self.health.record(name, Attempt::GaveUp, error, now_ms);
                tracing::error!(notifier = %name, id = %row.id, %error, "notification failed for good")
            }
        }
        self.finish(&row, result, latency).await;
    }

    /// Puts a follow-up back until its page is delivered; waiting is not an attempt.
    async fn defer(&self, row: &OutboxRow, page_due_s: i64) {
        let retry_at_s = page_due_s.max(clock::now_s() + 1);
        tracing::debug!(notifier = %self.notifier.name, id = %row.id, retry_at_s, "waiting for the page this follows up");
        let reason = "waiting for the page it follows up to be delivered".to_owned();
        self.finish(row, AttemptResult::Deferred { reason, retry_at_s }, Duration::ZERO).await;
    }

    async fn finish(&self, row: &OutboxRow, result: AttemptResult, latency: Duration) {
        if let Err(err) =
            self.store.finish_attempt(row.id.clone(), result, clock::now_s(), latency.as_millis() as i64).await
        {
            tracing::error!(notifier = %self.notifier.name, id = %row.id, error = %err, "cannot record a delivery attempt");
        }
    }

    /// The receipt of the page (notification `first`) that follow-up `id` edits or replies
    /// to, `None` if it has none (failed, or sent without one); or, as the error, when to look
    /// again because the page or an earlier follow-up is not delivered yet (so edits land in
    /// order: an ack never overwrites the resolve).
    async fn page(&self, id: &str, first: &str) -> Result<Option<String>, i64> {
        let (id, first) = (id.to_owned(), first.to_owned());
        let looked = self
            .reader
            .read(move |tx| Ok((tx.waiting_on(&id)?, tx.notification(&first)?.filter(|p| p.status == "sent"))))
            .await;
        match looked {
            Ok((Some(due_s), _)) => Err(due_s),
            Ok((None, page)) => Ok(page.and_then(|p| p.receipt)),
            Err(err) => {
                tracing::error!(notifier = %self.notifier.name, error = %err, "cannot read the outbox");
                Err(clock::now_s() + 1)
            }
        }
    }

    fn result(&self, row: &OutboxRow, outcome: Outcome) -> AttemptResult {
        let exhausted = row.attempts >= i64::from(self.notifier.config().delivery.max_attempts);
        let retry = |error: String, wait: Duration| {
            if exhausted {
                AttemptResult::Failed { error: format!("gave up after {} attempts: {error}", row.attempts) }
            } else {
                // Rounded up to the second: never earlier than the wait.
                let retry_at_s = (clock::now_ms() + wait.as_millis() as i64 + 999) / 1000;
                AttemptResult::Retry { error, retry_at_s }
            }
        };
        match outcome {
            Outcome::Delivered => AttemptResult::Sent { receipt: None },
            Outcome::DeliveredAs(receipt) => AttemptResult::Sent { receipt: Some(receipt) },
            Outcome::RetryAfter { wait, error } => retry(error, wait),
            Outcome::Retry(error) => retry(error, backoff(row.attempts)),
            Outcome::Failed(error) => AttemptResult::Failed { error },
        }
    }
}

/// Exponential back-off with jitter: 2 s, 4 s, 8 s … up to 10 min, each scaled by a random
/// factor in [0.5, 1) so notifiers retrying together spread out.
fn backoff(attempts: i64) -> Duration {
    let exp = BASE_BACKOFF_S * 2f64.powi((attempts.max(1) - 1).min(20) as i32);
    let jitter = 0.5 + rand::random::<f64>() * 0.5;
    Duration::from_secs_f64(exp.min(MAX_BACKOFF_S) * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        for attempts in 1..30 {
            let wait = backoff(attempts).as_secs_f64();
            let full = (2.0 * 2f64.powi(attempts as i32 - 1)).min(600.0);
            assert!(wait >= full * 0.5 && wait < full, "attempt {attempts}: {wait}");
        }
    }
}
