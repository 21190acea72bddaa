//! systemd's service protocol: `READY=1` once the database is open and every listener is
//! bound, `RELOADING=1`/`READY=1` around a SIGHUP rules reload, `STOPPING=1` when shutdown
//! begins, and `WATCHDOG=1` pings from a task that pings only while flushes keep committing to
//! SQLite — the pipeline from ingest to disk is alive — so a wedged daemon is restarted.
//! Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::clock;
use crate::flusher::FlushHealth;
use crate::supervise::Tasks;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(error = %err, "cannot notify systemd");
    }
}

/// The daemon is serving; `status` is what `systemctl status` shows.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload began (systemd wants the monotonic time with it).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// Shutdown began.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping: flushing everything to disk")]);
}

/// The flush lag (ms) past which perfwatch counts as stalled: three intervals and 5 s.
pub fn stalled_after_ms(interval_s: i64) -> i64 {
    3 * interval_s * 1000 + 5_000
}

/// Whether the watchdog is pinged at `now_ms`; `Err` says why not: the flusher has not ended
/// an attempt in time, or a supervised task is down or stuck. A flush that fails (a full or
/// read-only disk) is no reason: a restart would lose what memory holds and cure nothing.
pub fn watchdog_verdict(flush: &FlushHealth, tasks: &Tasks, interval_s: i64, now_ms: i64) -> Result<(), String> {
    let lag_ms = now_ms - flush.last_attempt_ms();
    if lag_ms > stalled_after_ms(interval_s) {
        return Err(format!("the flusher has not ended a flush attempt for {} s", lag_ms / 1000));
    }
    let problems = tasks.problems(now_ms);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(())
}

/// Pings the watchdog at half its interval while the flusher keeps ending its attempts in
/// time; stops pinging (so systemd restarts perfwatch) when a flush hangs. A flush that
/// *fails* (a full disk) keeps the pings going: a restart would lose what memory holds and
/// cure nothing; `/readyz` says what is wrong instead. A supervised task down or stuck stops
/// the pings too. Runs until cancelled (idle when systemd asked for no watchdog).
pub async fn watchdog(flush: Arc<FlushHealth>, tasks: Arc<Tasks>, interval_s: i64, cancel: CancellationToken) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        // Nothing to ping; not a failure of this task.
        cancel.cancelled().await;
        return;
    };
    let every = (timeout / 2).max(Duration::from_millis(100));
    tracing::info!(?timeout, "systemd watchdog enabled");
    loop {
        match watchdog_verdict(&flush, &tasks, interval_s, clock::now_ms()) {
            Ok(()) => send(&[NotifyState::Watchdog]),
            Err(why) => tracing::error!(why, "not pinging the systemd watchdog, so systemd restarts perfwatch"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::{Restart, supervise};

    #[tokio::test]
    async fn the_watchdog_starves_while_a_task_is_down_or_the_flusher_stalls_but_not_on_a_full_disk() {
        let (flush, tasks) = (FlushHealth::new(1 << 20), Tasks::default());
        let now = clock::now_ms();
        assert_eq!(watchdog_verdict(&flush, &tasks, 10, now), Ok(()));

        flush.attempted(now, 4096, Some("database or disk is full".into()));
        assert_eq!(watchdog_verdict(&flush, &tasks, 10, now), Ok(()), "a failing flush keeps the pings");
        let stalled = now + stalled_after_ms(10) + 1_000;
        let why = watchdog_verdict(&flush, &tasks, 10, stalled).unwrap_err();
        assert!(why.contains("has not ended a flush attempt for 36 s"), "{why}");

        flush.attempted(now, 0, None);
        let beat = tasks.register("scheduler", None);
        supervise(beat, Restart::No, CancellationToken::new(), || async { panic!("evaluation bug") }).await;
        let why = watchdog_verdict(&flush, &tasks, 10, now).unwrap_err();
        assert!(why.contains("task scheduler is down (it panicked: evaluation bug)"), "{why}");
        let not_ready = crate::health::readiness(&flush, &tasks, 10, now).unwrap_err();
        assert!(not_ready.contains("task scheduler is down"), "/readyz names it too: {not_ready}");
    }
}
