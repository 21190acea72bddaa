//! perfwatch's own health: metric names in one place and one function per internal event, so
//! every event is counted the same way wherever it happens. Label values are bounded sets.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

pub const SAMPLES_ACCEPTED: &str = "perfwatch_samples_accepted_total";
pub const SAMPLES_REJECTED: &str = "perfwatch_samples_rejected_total";
pub const ACTIVE_SERIES: &str = "perfwatch_active_series";
pub const FLUSH_DURATION: &str = "perfwatch_flush_duration_seconds";
pub const FLUSH_ROLLUPS: &str = "perfwatch_flush_rollups_total";
pub const FLUSH_FAILURES: &str = "perfwatch_flush_failures_total";
pub const FLUSH_LAG: &str = "perfwatch_flush_lag_seconds";
pub const HTTP_REQUESTS: &str = "perfwatch_http_requests_total";
pub const STATSD_DATAGRAMS: &str = "perfwatch_statsd_datagrams_total";
pub const BUILD_INFO: &str = "perfwatch_build_info";
pub const RULE_EVALUATION_DURATION: &str = "perfwatch_rule_evaluation_duration_seconds";
pub const RULE_EVALUATION_FAILURES: &str = "perfwatch_rule_evaluation_failures_total";
pub const RULES_LOADED: &str = "perfwatch_rules_loaded";
pub const RULE_RELOADS: &str = "perfwatch_rule_reloads_total";
pub const NOTIFICATIONS: &str = "perfwatch_notifications_total";
pub const OUTBOX: &str = "perfwatch_outbox_notifications";
pub const ALERTS: &str = "perfwatch_alerts";
pub const NOTIFICATION_LATENCY: &str = "perfwatch_notification_delivery_seconds";
pub const DATABASE_BYTES: &str = "perfwatch_database_bytes";
pub const STORE_WRITE_DURATION: &str = "perfwatch_store_write_duration_seconds";
pub const PANICS: &str = "perfwatch_panics_total";
pub const TASK_RESTARTS: &str = "perfwatch_task_restarts_total";
pub const TASK_UP: &str = "perfwatch_task_up";
pub const UNFLUSHED_BYTES: &str = "perfwatch_unflushed_bytes";
pub const ROLLUPS_QUARANTINED: &str = "perfwatch_rollups_quarantined_total";
pub const ROLLUPS_UNREADABLE: &str = "perfwatch_rollups_unreadable_total";
pub const HTTP_CONNECTIONS: &str = "perfwatch_http_connections";
pub const HTTP_CONNECTIONS_REFUSED: &str = "perfwatch_http_connections_refused_total";
pub const HTTP_ACCEPT_FAILURES: &str = "perfwatch_http_accept_failures_total";
pub const FLUSH_AGE: &str = "perfwatch_flush_age_seconds";
pub const HEARTBEATS: &str = "perfwatch_heartbeats_total";
pub const SERIES_LIMIT: &str = "perfwatch_series_limit";
pub const STORAGE_FREE: &str = "perfwatch_storage_free_bytes";
pub const STORAGE_SIZE: &str = "perfwatch_storage_size_bytes";

/// HELP text for every family, so the exposition passes `promtool check metrics`.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(SAMPLES_ACCEPTED, "Samples (or entries) taken, by protocol.");
    describe_counter!(SAMPLES_REJECTED, "Samples refused, by protocol and reason.");
    describe_gauge!(ACTIVE_SERIES, "Series held in memory.");
    describe_histogram!(FLUSH_DURATION, "Seconds a flush of rollups to SQLite took.");
    describe_counter!(FLUSH_ROLLUPS, "Rollups committed to SQLite.");
    describe_counter!(FLUSH_FAILURES, "Flushes that failed (retried before newer ones).");
    describe_gauge!(FLUSH_LAG, "Seconds from an interval's end to its commit, at the last flush.");
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route and status class.");
    describe_counter!(STATSD_DATAGRAMS, "StatsD datagrams received.");
    describe_gauge!(BUILD_INFO, "Always 1; the version label says which perfwatch runs.");
    describe_histogram!(RULE_EVALUATION_DURATION, "Seconds one evaluation of all due rule groups took.");
    describe_counter!(RULE_EVALUATION_FAILURES, "Rule evaluations that failed.");
    describe_gauge!(RULES_LOADED, "Rules loaded.");
    describe_counter!(RULE_RELOADS, "Rule reloads, by result.");
    describe_counter!(NOTIFICATIONS, "Notification delivery attempts, by notifier and result (sent, retried, failed).");
    describe_gauge!(OUTBOX, "Notifications in the outbox, by notifier and status (pending is the queue).");
    describe_gauge!(ALERTS, "Pending and firing alerts, by state and severity.");
    describe_histogram!(NOTIFICATION_LATENCY, "Seconds a notification delivery attempt took, by notifier.");
    describe_gauge!(DATABASE_BYTES, "Size of the SQLite database file in bytes (without its WAL).");
    describe_histogram!(STORE_WRITE_DURATION, "Seconds a store write transaction took, by job.");
    describe_counter!(
        ROLLUPS_UNREADABLE,
        "Stored rollups downsampling could not read, left out of their coarse window."
    );
    describe_counter!(ROLLUPS_QUARANTINED, "Rollups a flush could not store, set aside in the quarantine table.");
    describe_gauge!(UNFLUSHED_BYTES, "Bytes of drained rollups waiting for the database (grows while flushes fail).");
    describe_counter!(
        TASK_RESTARTS,
        "Supervised tasks that panicked or ended unasked, by task (started again where they can be)."
    );
    describe_gauge!(TASK_UP, "1 while a supervised task runs, 0 while it is down.");
    describe_counter!(PANICS, "Panics caught (bugs: each is logged at error with an id), by where.");
    describe_gauge!(HTTP_CONNECTIONS, "HTTP connections open.");
    describe_counter!(HTTP_CONNECTIONS_REFUSED, "HTTP connections closed at once: http.max_connections were open.");
    describe_counter!(HTTP_ACCEPT_FAILURES, "Failed accepts of HTTP connections (e.g. out of file descriptors).");
    describe_counter!(HEARTBEATS, "Heartbeats (dead man's switch), by result: sent, failed, skipped (not well).");
    describe_gauge!(FLUSH_AGE, "Seconds since the last flush committed to the database.");
    describe_gauge!(SERIES_LIMIT, "The active series limit (limits.max_series).");
    describe_gauge!(STORAGE_FREE, "Bytes free to perfwatch on the database's file system.");
    describe_gauge!(STORAGE_SIZE, "Size in bytes of the database's file system.");
}

/// `protocol` is one of json, prometheus, statsd; `n` samples (or entries) were taken.
pub fn samples_accepted(protocol: &'static str, n: u64) {
    if n > 0 {
        counter!(SAMPLES_ACCEPTED, "protocol" => protocol).increment(n);
    }
}

pub fn sample_rejected(protocol: &'static str, reason: &'static str) {
    counter!(SAMPLES_REJECTED, "protocol" => protocol, "reason" => reason).increment(1);
}

pub fn flush_committed(n_rollups: usize, duration: Duration) {
    histogram!(FLUSH_DURATION).record(duration.as_secs_f64());
    counter!(FLUSH_ROLLUPS).increment(n_rollups as u64);
}

pub fn flush_failed() {
    counter!(FLUSH_FAILURES).increment(1);
}

pub fn flush_lag(seconds: f64) {
    gauge!(FLUSH_LAG).set(seconds);
}

/// `result`: sent, failed (the request did), skipped (perfwatch is not well).
pub fn heartbeat(result: &'static str) {
    counter!(HEARTBEATS, "result" => result).increment(1);
}

pub fn flush_age(seconds: f64) {
    gauge!(FLUSH_AGE).set(seconds);
}

pub fn series_limit(n: usize) {
    gauge!(SERIES_LIMIT).set(n as f64);
}

pub fn storage_space(free_bytes: u64, size_bytes: u64) {
    gauge!(STORAGE_FREE).set(free_bytes as f64);
    gauge!(STORAGE_SIZE).set(size_bytes as f64);
}

pub fn active_series(n: usize) {
    gauge!(ACTIVE_SERIES).set(n as f64);
}

pub fn http_request(route: &'static str, status: u16) {
    counter!(HTTP_REQUESTS, "route" => route, "status" => status_class(status)).increment(1);
}

pub fn statsd_datagram() {
    counter!(STATSD_DATAGRAMS).increment(1);
}

/// One evaluation: every rule group due at that moment, read through one shared view.
pub fn rules_evaluated(duration: Duration) {
    histogram!(RULE_EVALUATION_DURATION).record(duration.as_secs_f64());
}

pub fn rules_evaluation_failed() {
    counter!(RULE_EVALUATION_FAILURES).increment(1);
}

pub fn rules_loaded(n: usize) {
    gauge!(RULES_LOADED).set(n as f64);
}

/// `ok` says whether the reload was applied.
pub fn rule_reload(ok: bool) {
    counter!(RULE_RELOADS, "result" => if ok { "success" } else { "failure" }).increment(1);
}

/// One delivery attempt by `notifier`: `result` is sent, retried or failed.
pub fn notification_attempt(notifier: &str, result: &'static str, latency: Duration) {
    counter!(NOTIFICATIONS, "notifier" => notifier.to_owned(), "result" => result).increment(1);
    histogram!(NOTIFICATION_LATENCY, "notifier" => notifier.to_owned()).record(latency.as_secs_f64());
}

/// Notifications in the outbox by notifier and status (pending is the queue's depth), set at
/// scrape time from the database; every notifier × status is set, zeros included.
pub fn outbox_depth(notifiers: &[String], counts: &[(String, String, u64)]) {
    for notifier in notifiers {
        for status in ["pending", "sending", "sent", "failed"] {
            let n = counts.iter().find(|(n, s, _)| n == notifier && s == status).map_or(0, |c| c.2);
            gauge!(OUTBOX, "notifier" => notifier.clone(), "status" => status).set(n as f64);
        }
    }
}

/// Pending and firing alerts by state and severity, set at scrape time, zeros included.
pub fn alerts_active(counts: &[(String, String, u64)]) {
    for state in ["pending", "firing"] {
        for severity in ["info", "warning", "critical"] {
            let n = counts.iter().find(|(st, sv, _)| st == state && sv == severity).map_or(0, |c| c.2);
            gauge!(ALERTS, "state" => state, "severity" => severity).set(n as f64);
        }
    }
}

pub fn build_info() {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        401 => "401",
        413 => "413",
        429 => "429",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

pub fn database_bytes(bytes: u64) {
    gauge!(DATABASE_BYTES).set(bytes as f64);
}

/// One write transaction of the store: `job` is flush, expire or write.
pub fn store_write(job: &'static str, duration: Duration) {
    histogram!(STORE_WRITE_DURATION, "job" => job).record(duration.as_secs_f64());
}

/// A request handler panicked on `route`; it was answered 500 with `id`.
pub fn handler_panicked(route: &'static str, id: &str, message: &str) {
    tracing::error!(route, id, panic = message, "request handler panicked; answered 500 (a bug: please report it)");
    counter!(PANICS, "where" => route).increment(1);
}

pub fn http_connections_open(n: usize) {
    gauge!(HTTP_CONNECTIONS).set(n as f64);
}

pub fn http_connection_refused() {
    counter!(HTTP_CONNECTIONS_REFUSED).increment(1);
}

pub fn http_accept_failed() {
    counter!(HTTP_ACCEPT_FAILURES).increment(1);
}

/// A rollup of `series` at `start_s` could not be stored and was set aside.
pub fn rollup_quarantined(series: u64, start_s: i64, why: &str) {
    tracing::error!(series, start_s, reason = why, "rollup set aside in the quarantine table; the flush went on");
    counter!(ROLLUPS_QUARANTINED).increment(1);
}

pub fn unflushed_bytes(bytes: usize) {
    gauge!(UNFLUSHED_BYTES).set(bytes as f64);
}

/// Supervised `task` failed with `cause`; `restarting` says whether it starts again.
pub fn task_failed(task: &str, cause: &str, restarting: bool) {
    if restarting {
        tracing::error!(task, cause, "task failed; starting it again");
    } else {
        tracing::error!(
            task,
            cause,
            "task failed and cannot be started again; /readyz reports it and the watchdog stops"
        );
    }
    counter!(TASK_RESTARTS, "task" => task.to_owned()).increment(1);
}

pub fn task_up(task: &str, up: bool) {
    gauge!(TASK_UP, "task" => task.to_owned()).set(if up { 1.0 } else { 0.0 });
}

/// A stored rollup of `series` in the window at `window_s` could not be read while downsampling.
pub fn rollup_unreadable(series: u64, window_s: i64, why: &str) {
    tracing::error!(
        series,
        window_s,
        reason = why,
        "a stored rollup does not read back; downsampling goes on without it"
    );
    counter!(ROLLUPS_UNREADABLE).increment(1);
}
