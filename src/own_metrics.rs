//! perfwatch watching itself: the gauges that are read rather than counted (outbox and alert
//! counts from the database, free disk space, the age of the last committed flush, the series
//! limit) are refreshed, and then the whole `/metrics` exposition is taken in each interval as
//! a Pushgateway push of the group `job="perfwatch"`, through the same parser and aggregator as
//! any push. So perfwatch's own health is queryable like any metric and the rules in
//! `rules/perfwatch-self.yaml` page on it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::aggregate::Aggregator;
use crate::flusher::FlushHealth;
use crate::ingest::limits::Limits;
use crate::ingest::parse::{PushOutcome, prom_text};
use crate::ingest::pushgateway::{GroupingKey, apply};
use crate::ingest::sink::{IngestBatch, Scratch};
use crate::store::{Reader, StoreError};
use crate::{clock, telemetry};

/// The Pushgateway grouping path perfwatch's own metrics are recorded under.
pub const GROUP: &str = "job/perfwatch";

/// What the refresh reads and where the recording goes.
pub struct OwnMetrics {
    /// The exposition; absent when no recorder is installed (library use, tests in-process).
    pub prometheus: Option<PrometheusHandle>,
    pub aggregator: Arc<Aggregator>,
    pub limits: Limits,
    pub reader: Reader,
    pub health: Arc<FlushHealth>,
    pub notifiers: Vec<String>,
    /// The database file: free space is that of its file system.
    pub db_path: PathBuf,
}

impl OwnMetrics {
    /// Sets the gauges that are read at this moment rather than counted as things happen.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let (outbox, alerts, db_bytes) =
            self.reader.read(|tx| Ok((tx.outbox_counts()?, tx.alert_counts()?, tx.database_bytes()?))).await?;
        telemetry::outbox_depth(&self.notifiers, &outbox);
        telemetry::alerts_active(&alerts);
        telemetry::database_bytes(db_bytes);
        let age_ms = clock::now_ms() - self.health.last_commit_ms();
        telemetry::flush_age(age_ms as f64 / 1000.0);
        telemetry::series_limit(self.aggregator.settings().max_series);
        telemetry::active_series(self.aggregator.n_series());
        let dir = self.db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        match disk_space(dir) {
            Ok((free, size)) => telemetry::storage_space(free, size),
            Err(err) => {
                tracing::warn!(error = %err, dir = %dir.display(), "cannot read the database disk's free space")
            }
        }
        Ok(())
    }

    /// The exposition taken in as a push of [`GROUP`]: counters become increases, gauges
    /// gauges and histograms timings, exactly as for any Pushgateway client.
    pub fn record(&self, now_ms: i64) -> Option<PushOutcome> {
        let text = self.prometheus.as_ref()?.render();
        let grouping = GroupingKey::parse(GROUP).ok()?;
        let pairs: Vec<(&str, &str)> = grouping.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let bump = bumpalo::Bump::new();
        let families = match prom_text::parse(&text, &bump) {
            Ok(families) => families,
            Err(err) => {
                tracing::error!(error = %err, "perfwatch's own exposition does not parse; not recorded");
                return None;
            }
        };
        let mut batch = IngestBatch::new(&self.aggregator, &self.limits, &bump, "self", now_ms, Scratch::default());
        let outcome = apply(&families, &pairs, grouping.hash, &mut batch);
        batch.finish();
        Some(outcome)
    }

    /// Refreshes and records every `interval` until `cancel`.
    pub async fn run(self: Arc<Self>, interval: Duration, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(err) = self.refresh().await {
                tracing::warn!(error = %err, "cannot read perfwatch's own gauges from the database; recording the rest");
            }
            let own = self.clone();
            let recorded = tokio::task::spawn_blocking(move || own.record(clock::now_ms())).await;
            if let Ok(Some(outcome)) = recorded
                && outcome.rejected > 0
            {
                let first = outcome.errors.first().map(|e| e.reason.as_str()).unwrap_or_default();
                tracing::warn!(rejected = outcome.rejected, first, "some of perfwatch's own metrics were not recorded");
            }
        }
    }
}

/// Free and total bytes of the file system holding `dir`, as an unprivileged user sees them.
pub fn disk_space(dir: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is a valid, writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = stat.f_frsize as u64;
    Ok((stat.f_bavail as u64 * block, stat.f_blocks as u64 * block))
}
