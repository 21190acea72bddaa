//! The dead man's switch: every `heartbeat.interval`, while perfwatch is well, a request to the
//! configured URL. Well means what `/readyz` says (the database takes writes, every task runs
//! and beats, flushes finish in time) and, beyond it, that every notifier is delivering: the
//! service watching the heartbeat pages when perfwatch cannot. When perfwatch is not well the
//! ping is skipped, and the reason logged at error and counted.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::HeartbeatConfig;
use crate::flusher::FlushHealth;
use crate::notify::health::DeliveryHealth;
use crate::supervise::Tasks;
use crate::{clock, telemetry};

/// What the heartbeat judges perfwatch by.
pub struct Heartbeat {
    pub config: HeartbeatConfig,
    pub flush: Arc<FlushHealth>,
    pub tasks: Arc<Tasks>,
    pub delivery: Arc<DeliveryHealth>,
    pub interval_s: i64,
}

impl Heartbeat {
    /// Why no heartbeat should go out now, or `None` when perfwatch is well.
    pub fn unwell(&self, now_ms: i64) -> Option<String> {
        let mut problems: Vec<String> =
            crate::health::readiness(&self.flush, &self.tasks, self.interval_s, now_ms).err().into_iter().collect();
        problems.extend(self.delivery.problems(now_ms));
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// Pings every interval (the first at once) until `cancel`.
    pub async fn run(self: Arc<Self>, client: reqwest::Client, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Some(why) = self.unwell(clock::now_ms()) {
                telemetry::heartbeat("skipped");
                tracing::error!(reason = %why, "perfwatch is not well; heartbeat not sent, so its watcher will page");
                continue;
            }
            match self.ping(&client).await {
                Ok(()) => telemetry::heartbeat("sent"),
                Err(why) => {
                    telemetry::heartbeat("failed");
                    tracing::warn!(error = %why, "the heartbeat request failed; trying again next interval");
                }
            }
        }
    }

    async fn ping(&self, client: &reqwest::Client) -> Result<(), String> {
        let url = self.config.url.expose();
        let request = if self.config.post { client.post(url).body("ok") } else { client.get(url) };
        // The error can name the URL, which holds a secret: say what failed, not where.
        let response = request.timeout(self.config.timeout).send().await.map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(format!("the heartbeat URL answered {status}")) }
    }
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "no answer within heartbeat.timeout".into()
    } else if err.is_connect() {
        "cannot connect to the heartbeat URL's host".into()
    } else {
        "the request to the heartbeat URL failed".into()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secret::Secret;
    use crate::supervise::{Restart, supervise};

    fn heartbeat() -> Heartbeat {
        Heartbeat {
            config: HeartbeatConfig {
                url: Secret::new("http://127.0.0.1:9/ping".into()),
                interval: Duration::from_secs(60),
                timeout: Duration::from_secs(5),
                post: false,
            },
            flush: Arc::new(FlushHealth::new(1 << 20)),
            tasks: Arc::new(Tasks::default()),
            delivery: Arc::new(DeliveryHealth::default()),
            interval_s: 10,
        }
    }

    /// Every way perfwatch can be unwell skips the ping, saying why: writes failing, the
    /// flusher stalled, a task down (a notifier that cannot deliver is the integration test's).
    #[tokio::test]
    async fn no_ping_while_writes_fail_the_flusher_stalls_or_a_task_is_down() {
        let now = clock::now_ms();
        let beat = heartbeat();
        assert_eq!(beat.unwell(now), None, "well: ping");

        beat.flush.attempted(now, 512, Some("disk I/O error".into()));
        assert!(
            beat.unwell(now).is_some_and(|why| why.contains("cannot be written") && why.contains("disk I/O error"))
        );
        beat.flush.attempted(now, 0, None);
        assert_eq!(beat.unwell(now), None, "well again once a flush commits");

        let stalled = now + crate::systemd::stalled_after_ms(10) + 1;
        assert!(beat.unwell(stalled).is_some_and(|why| why.contains("has not finished a flush")));

        let down = beat.tasks.register("delivery", None);
        supervise(down, Restart::No, CancellationToken::new(), || async {}).await;
        let why = beat.unwell(now).expect("a task is down");
        assert!(why.contains("task delivery is down (it ended without being asked to)"), "{why}");
    }
}
