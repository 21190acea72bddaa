//! Task supervision. Every long-running task runs under [`supervise`]: a panic or an end
//! nobody asked for is logged at error with its cause and counted
//! (`perfwatch_task_restarts_total{task}`), and the task is started again (with back-off)
//! when its state allows, or else reported down. Tasks that loop beat ([`Beat::beat`]); one
//! that stops beating is reported stuck. `/readyz` answers 503 naming every task down or
//! stuck, and the systemd watchdog stops being fed, so systemd restarts the process.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::{clock, telemetry};

/// Whether a task can be started again after it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Its state lives elsewhere (sockets, the database): start it again.
    Yes,
    /// It owns state a new start would not have: report it down.
    No,
}

/// The supervised tasks and how each is doing.
#[derive(Default)]
pub struct Tasks {
    entries: Mutex<Vec<Arc<TaskState>>>,
}

struct TaskState {
    name: String,
    /// Why it is down, while it is.
    down: Mutex<Option<String>>,
    last_beat_ms: AtomicI64,
    /// Reported stuck without a beat for this long (`None`: it need not beat).
    stuck_after_ms: Option<i64>,
}

/// A task's handle for saying it is alive.
#[derive(Clone)]
pub struct Beat(Arc<TaskState>);

impl Beat {
    pub fn beat(&self) {
        self.0.last_beat_ms.store(clock::now_ms(), Ordering::Relaxed);
    }
}

impl Tasks {
    /// Adds task `name`; it is stuck when it has not beaten for `stuck_after`.
    pub fn register(&self, name: &str, stuck_after: Option<Duration>) -> Beat {
        let state = Arc::new(TaskState {
            name: name.to_owned(),
            down: Mutex::new(None),
            last_beat_ms: AtomicI64::new(clock::now_ms()),
            stuck_after_ms: stuck_after.map(|d| d.as_millis() as i64),
        });
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).push(state.clone());
        telemetry::task_up(name, true);
        Beat(state)
    }

    /// Every task down or stuck at `now_ms`, in words; empty when all are well.
    pub fn problems(&self, now_ms: i64) -> Vec<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().filter_map(|task| task.problem(now_ms)).collect()
    }
}

impl TaskState {
    fn problem(&self, now_ms: i64) -> Option<String> {
        if let Some(cause) = self.down.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Some(format!("task {} is down ({cause})", self.name));
        }
        let silent_ms = now_ms - self.last_beat_ms.load(Ordering::Relaxed);
        self.stuck_after_ms
            .filter(|after| silent_ms > *after)
            .map(|_| format!("task {} has made no progress for {} s", self.name, silent_ms / 1000))
    }

    fn set_down(&self, cause: Option<String>) {
        telemetry::task_up(&self.name, cause.is_none());
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = cause;
    }
}

/// The first wait before a failed task starts again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs the task `start` makes until `cancel`, under supervision as `beat`'s task (see the
/// module doc). Returns when cancelled, or when a task that cannot restart has failed.
pub async fn supervise<F, Fut>(beat: Beat, restart: Restart, cancel: CancellationToken, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let task = beat.0.clone();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let ended = std::panic::AssertUnwindSafe(start()).catch_unwind().await;
        if cancel.is_cancelled() {
            return;
        }
        let cause = match ended {
            Ok(()) => "it ended without being asked to".to_owned(),
            Err(panic) => format!("it panicked: {}", crate::store::reader::panic_message(panic.as_ref())),
        };
        telemetry::task_failed(&task.name, &cause, restart == Restart::Yes);
        if restart == Restart::No {
            task.set_down(Some(cause));
            return;
        }
        task.set_down(Some(format!("{cause}; starting again in {} s", backoff.as_secs())));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        task.set_down(None);
        beat.beat();
    }
}

/// Runs a task that cannot be started again (it owns what a new start would lack) to its
/// end: a panic is logged at error, counted and reports the task down, as [`supervise`] does
/// for [`Restart::No`], and comes back as the cause.
pub async fn watch<T>(beat: Beat, task: impl std::future::Future<Output = T>) -> Result<T, String> {
    match std::panic::AssertUnwindSafe(task).catch_unwind().await {
        Ok(value) => Ok(value),
        Err(panic) => {
            let cause = format!("it panicked: {}", crate::store::reader::panic_message(panic.as_ref()));
            telemetry::task_failed(&beat.0.name, &cause, false);
            beat.0.set_down(Some(cause.clone()));
            Err(cause)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_one_that_cannot_be_is_reported_down() {
        let tasks = Tasks::default();
        let cancel = CancellationToken::new();
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let beat = tasks.register("flaky", None);
        let stop = cancel.clone();
        let flaky = tokio::spawn(supervise(beat, Restart::Yes, cancel.clone(), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let stop = stop.clone();
            async move {
                if n < 2 {
                    panic!("bug number {n}");
                }
                stop.cancelled().await
            }
        }));
        let beat = tasks.register("owner", None);
        let owner = tokio::spawn(supervise(beat, Restart::No, cancel.clone(), || async { panic!("lost its state") }));
        owner.await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 3, "started again after each of two panics");
        let problems = tasks.problems(clock::now_ms());
        assert_eq!(problems, vec!["task owner is down (it panicked: lost its state)".to_owned()]);
        cancel.cancel();
        flaky.await.unwrap();
    }

    #[test]
    fn a_task_that_stops_beating_is_stuck() {
        let tasks = Tasks::default();
        let beat = tasks.register("loop", Some(Duration::from_secs(60)));
        beat.beat();
        let now = clock::now_ms();
        assert!(tasks.problems(now + 59_000).is_empty());
        assert_eq!(tasks.problems(now + 61_000), vec!["task loop has made no progress for 61 s".to_owned()]);
    }
}
