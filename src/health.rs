//! Whether perfwatch is well: the one judgement `/readyz` answers and the heartbeat pings on.
//! Pure: the flusher's health, the task registry and the time are given.

use crate::flusher::FlushHealth;
use crate::supervise::Tasks;

/// What `/readyz` reports when perfwatch is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// Milliseconds since the last flush committed.
    pub flush_lag_ms: i64,
    /// Samples accepted for intervals before this (unix seconds) are on disk.
    pub durable_before_s: i64,
}

/// Why perfwatch is not ready, in words for `/readyz` and the log; `Ok` when it is: the
/// database takes writes, every supervised task runs and beats, and the flusher finishes its
/// attempts in time.
pub fn readiness(flush: &FlushHealth, tasks: &Tasks, interval_s: i64, now_ms: i64) -> Result<Ready, String> {
    if let Some(failure) = flush.failure() {
        return Err(format!(
            "the database cannot be written since {} s ago ({failure}); {} of at most {} bytes (storage.max_unflushed_bytes) wait in memory, pushes beyond that are refused; free disk space or fix the error, perfwatch retries by itself",
            (now_ms - flush.last_commit_ms()) / 1000,
            flush.unflushed_bytes(),
            flush.max_unflushed_bytes()
        ));
    }
    let problems = tasks.problems(now_ms);
    if !problems.is_empty() {
        return Err(format!("{}; the log says why at error level", problems.join("; ")));
    }
    let stuck_ms = now_ms - flush.last_attempt_ms();
    if stuck_ms > crate::systemd::stalled_after_ms(interval_s) {
        return Err(format!(
            "the flusher has not finished a flush for {} s; check the database disk and the logs",
            stuck_ms / 1000
        ));
    }
    Ok(Ready { flush_lag_ms: now_ms - flush.last_commit_ms(), durable_before_s: flush.durable_before_s() })
}
