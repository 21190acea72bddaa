//! perfwatch: performance metrics in, alerts out, in one process.
//!
//! ```text
//!  HTTP push (JSON, Pushgateway text/protobuf, OTLP, Influx)   StatsD/DogStatsD UDP
//!            │                                                  │
//!            └──────────► ingest (parse → normalise → limits) ◄─┘
//!                              │
//!                      aggregate (sharded series map, per-interval delta rollups + DDSketch)
//!                              │  flusher: at each interval boundary, closed intervals
//!                      store (SQLite WAL: one writer thread, tiers 10s→1m→1h→1d, retention)
//!                              │
//!                      query (tier plan + memory snapshot) ──► api (warp routes, JSON, pages)
//!                              │
//!                      rules (YAML groups, evaluated on schedule) → alert (state machine,
//!                      silences, acks) → notify (groups, escalation, outbox → Slack, email,
//!                      webhooks)
//! ```
//!
//! [`Daemon::start`] validates nothing (that is [`config`]'s job) but opens the database and
//! binds the listeners, then runs until [`Daemon::shutdown`]: listeners stop first, the
//! flusher then drains everything to disk, and the store writer ends when its input closes.

pub mod aggregate;
pub(crate) mod alert;
pub(crate) mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub(crate) mod export;
pub(crate) mod flusher;
pub(crate) mod health;
pub(crate) mod heartbeat;
pub(crate) mod html;
pub mod http_client;
pub mod ingest;
pub mod loadgen;
pub mod model;
pub mod notify;
pub mod oncall;
pub mod own_metrics;
pub mod query;
pub mod rules;
pub mod secret;
pub mod shutdown;
pub mod store;
pub mod supervise;
pub(crate) mod systemd;
pub(crate) mod telemetry;
mod varint;

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::aggregate::Aggregator;
use crate::api::ApiState;
use crate::config::Config;
use crate::flusher::{FinalFlush, FlushHandle, Flusher};
use crate::model::SeriesKey;
use crate::store::{Store, StoreError, StoreSettings};
use crate::supervise::Restart;

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rule files have mistakes (`perfwatch check` lists the same):\n{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<rules::RuleError>),
    #[error(
        "cannot listen on {addr} ({what}): {source}; is another perfwatch running? set {setting} to another address"
    )]
    Bind { what: &'static str, setting: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Notifier(#[from] notify::NotifierError),
}

/// A running perfwatch.
pub struct Daemon {
    pub http_addr: SocketAddr,
    pub statsd_addr: Option<SocketAddr>,
    cancel: CancellationToken,
    http: JoinHandle<()>,
    statsd: Vec<JoinHandle<()>>,
    scheduler: JoinHandle<()>,
    delivery: JoinHandle<()>,
    sighup: JoinHandle<()>,
    watchdog: JoinHandle<()>,
    own_metrics: Option<JoinHandle<()>>,
    heartbeat: Option<JoinHandle<()>>,
    /// Keeps the status page's trends computed, so the page loads fast whenever opened.
    page_warmer: Option<JoinHandle<()>>,
    flush: Option<FlushHandle>,
    flusher: JoinHandle<Result<FinalFlush, String>>,
    writer_thread: std::thread::JoinHandle<()>,
}

impl Daemon {
    /// Opens the store, restores state, binds the listeners and starts every task.
    pub async fn start(config: Config, prometheus: Option<PrometheusHandle>) -> Result<Daemon, StartError> {
        let groups =
            rules::load_patterns(&config.rule_paths, Some(&config.routing.route_names())).map_err(StartError::Rules)?;
        let (store, aggregator) = open_store(&config).await?;

        let (listener, statsd_socket) = bind(&config).await?;
        let http_addr = listener.local_addr().expect("a bound socket has an address");
        let statsd_addr = statsd_socket.as_ref().map(|s| s.local_addr().expect("a bound socket has an address"));

        let ballast = store::ballast::Ballast::beside(&config.db_path, config.ballast_bytes);
        let (flusher, flush, flush_requests) =
            Flusher::new(aggregator.clone(), store.handle.clone(), ballast, config.max_unflushed_bytes);
        let cancel = CancellationToken::new();
        let tasks = Arc::new(supervise::Tasks::default());
        let keeper = Keeper { tasks: tasks.clone(), cancel: cancel.clone() };
        // The flusher owns the memory's way to disk and the final flush: it cannot start again.
        // A stall shows as the flush age (`health::readiness`), a panic as the task down.
        let flusher = tokio::spawn(supervise::watch(tasks.register("flusher", None), flusher.run(flush_requests)));
        let alerting = start_alerting(&config, groups, &store, &aggregator, &keeper, http_addr).await?;
        let own = Arc::new(own_metrics::OwnMetrics {
            prometheus,
            aggregator: aggregator.clone(),
            limits: config.limits.clone(),
            reader: store.reader.clone(),
            health: flush.health().clone(),
            notifiers: alerting.delivery_handle.notifier_names().map(str::to_owned).collect(),
            db_path: config.db_path.clone(),
        });
        let own_task = config.record_own_metrics.then(|| keeper.own_metrics(&own, config.aggregator.interval_s));
        let heartbeat = match config.heartbeat.clone() {
            Some(heartbeat_config) => Some(keeper.heartbeat(heartbeat::Heartbeat {
                config: heartbeat_config,
                flush: flush.health().clone(),
                tasks: tasks.clone(),
                delivery: alerting.delivery_handle.health().clone(),
                interval_s: config.aggregator.interval_s,
            })?),
            None => None,
        };
        let state = api_state(&config, &store, &aggregator, &flush, &tasks, &alerting, own);
        let Alerting { delivery, scheduler, sighup, .. } = alerting;
        let statsd = match statsd_socket {
            Some(socket) => keeper.statsd(socket, &aggregator, &config.limits, flush.health()),
            None => Vec::new(),
        };
        drop(store.handle);
        let page_warmer = Some(keeper.page_warmer(&state.reads));
        let http = keeper.http(listener, state, config.http_limits);
        let watchdog = keeper.watchdog(flush.health(), config.aggregator.interval_s);
        announce(http_addr, statsd_addr, &config.db_path);
        Ok(Daemon {
            http_addr,
            statsd_addr,
            cancel,
            http,
            statsd,
            scheduler,
            delivery,
            sighup,
            watchdog,
            own_metrics: own_task,
            heartbeat,
            page_warmer,
            flush: Some(flush),
            flusher,
            writer_thread: store.writer_thread,
        })
    }

    /// A token that stops the daemon when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops accepting, answers what is in flight, flushes everything and waits for the store;
    /// says what could not be written, if anything.
    pub async fn shutdown(mut self) -> FinalFlush {
        systemd::stopping();
        self.cancel.cancel();
        let _ = self.http.await;
        for task in self.statsd.drain(..) {
            let _ = task.await;
        }
        let _ = (&mut self.scheduler).await;
        let _ = (&mut self.delivery).await;
        let _ = (&mut self.sighup).await;
        let _ = (&mut self.watchdog).await;
        for task in [self.own_metrics.take(), self.heartbeat.take(), self.page_warmer.take()].into_iter().flatten() {
            let _ = task.await;
        }
        // Ingest has stopped; the flusher sees its last handle go and drains everything.
        self.flush.take();
        let final_flush = match self.flusher.await {
            Ok(Ok(final_flush)) => final_flush,
            Ok(Err(cause)) => FinalFlush { lost_rollups: 0, error: Some(format!("the flusher failed: {cause}")) },
            Err(err) => FinalFlush { lost_rollups: 0, error: Some(format!("the flusher task failed: {err}")) },
        };
        let _ = tokio::task::spawn_blocking(move || self.writer_thread.join()).await;
        match &final_flush.error {
            None => tracing::info!("perfwatch stopped; everything accepted is on disk"),
            Some(error) => tracing::error!(
                %error,
                lost_rollups = final_flush.lost_rollups,
                "perfwatch stopped WITHOUT writing everything it accepted"
            ),
        }
        final_flush
    }

    /// Runs until `signal` completes, then shuts down (see [`Daemon::shutdown`]).
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) -> FinalFlush {
        let cancel = self.cancel.clone();
        tokio::select! {
            _ = signal => {}
            _ = cancel.cancelled() => {}
        }
        self.shutdown().await
    }
}

/// The scheduler beats every 10 s; an evaluation of every due group may take a while more.
const SCHEDULER_STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// File descriptors kept for everything but HTTP connections: the database and its readers,
/// StatsD sockets, outgoing notifications.
const RESERVED_FDS: u64 = 256;

/// `limits` with `max_connections` lowered, if need be, below the open-file limit (raised to its
/// hard limit first), so connections can never take the last file descriptor.
fn connection_limits(mut limits: config::HttpLimits) -> config::HttpLimits {
    let Some(open_files) = api::server::raise_open_files_limit() else { return limits };
    let fits = usize::try_from(open_files.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX).max(16);
    if limits.max_connections > fits {
        tracing::warn!(
            configured = limits.max_connections,
            open_files,
            used = fits,
            "http.max_connections is above what the open-file limit allows; raise LimitNOFILE to allow more"
        );
        limits.max_connections = fits;
    }
    limits
}

/// The database, and the aggregator picking up where the last flush left off.
async fn open_store(config: &Config) -> Result<(Store, Arc<Aggregator>), StartError> {
    let store = Store::open(StoreSettings { path: config.db_path.clone(), tiers: config.tiers.clone(), n_readers: 4 })?;
    let last_seq = store.reader.read(|tx| tx.last_flush_seq()).await?;
    let aggregator = Arc::new(Aggregator::new(config.aggregator.clone(), last_seq));
    restore_cumulative(&store, &aggregator).await?;
    Ok((store, aggregator))
}

/// What the HTTP routes reach, one handle per group of routes (see `api::state`).
fn api_state(
    config: &Config,
    store: &Store,
    aggregator: &Arc<Aggregator>,
    flush: &FlushHandle,
    tasks: &Arc<supervise::Tasks>,
    alerting: &Alerting,
    own: Arc<own_metrics::OwnMetrics>,
) -> Arc<ApiState> {
    let cpu = Arc::new(api::CpuPool::new(std::thread::available_parallelism().map_or(2, |n| n.get())));
    Arc::new(ApiState {
        push_token: config.push_token.clone(),
        api_token: config.api_token.clone(),
        ingest: Arc::new(api::IngestState {
            aggregator: aggregator.clone(),
            limits: config.limits.clone(),
            otlp_labels: config.otlp_labels.clone(),
            flush: flush.clone(),
            cpu: cpu.clone(),
        }),
        reads: Arc::new(api::ReadState {
            aggregator: aggregator.clone(),
            reader: store.reader.clone(),
            limits: config.limits.clone(),
            promql_limits: config.query_limits,
            cpu,
            trend_cache: Default::default(),
        }),
        oncall: Arc::new(api::OncallState {
            reader: store.reader.clone(),
            store: store.handle.clone(),
            scheduler: alerting.scheduler_handle.clone(),
            ack_key: alerting.ack_key.clone(),
            csrf: alerting.csrf_key.clone(),
            public_url: config.public_url.clone(),
        }),
        notifications: Arc::new(api::NotificationState {
            reader: store.reader.clone(),
            store: store.handle.clone(),
            delivery: alerting.delivery_handle.clone(),
        }),
        operations: Arc::new(api::OperationsState {
            aggregator: aggregator.clone(),
            reader: store.reader.clone(),
            flush: flush.clone(),
            reloader: alerting.reloader.clone(),
            tasks: tasks.clone(),
            own,
            export: config.export.clone(),
            records_own_metrics: config.record_own_metrics,
        }),
    })
}

/// The alerting side, running: notification delivery, the rule scheduler and its reloads.
struct Alerting {
    delivery: JoinHandle<()>,
    delivery_handle: notify::delivery::DeliveryHandle,
    scheduler: JoinHandle<()>,
    scheduler_handle: rules::scheduler::SchedulerHandle,
    reloader: rules::reload::Reloader,
    sighup: JoinHandle<()>,
    ack_key: Arc<notify::ack_link::AckKey>,
    /// Signs the pages' forms.
    csrf_key: Arc<api::CsrfKey>,
}

async fn start_alerting(
    config: &Config,
    groups: Vec<rules::rule::Group>,
    store: &Store,
    aggregator: &Arc<Aggregator>,
    keeper: &Keeper,
    http_addr: SocketAddr,
) -> Result<Alerting, StartError> {
    let (tasks, cancel) = (&keeper.tasks, &keeper.cancel);
    let (delivery, delivery_handle) =
        notify::delivery::Delivery::new(store.handle.clone(), store.reader.clone(), config.notifiers.clone())?;
    let ack_key = Arc::new(notify::ack_link::AckKey::new(&store.handle.secret("ack_link").await?));
    let csrf_key = Arc::new(api::CsrfKey::new(&store.handle.secret("csrf").await?));
    let base = config.public_url.clone().unwrap_or_else(|| format!("http://{http_addr}"));
    let links = notify::ack_link::AckLinks { key: ack_key.clone(), base };
    let (scheduler, scheduler_handle) = rules::scheduler::Scheduler::new(
        groups,
        aggregator.clone(),
        store.reader.clone(),
        store.handle.clone(),
        config.routing.clone(),
        delivery_handle.clone(),
        links,
    )
    .await?;
    // The scheduler owns the channels its handles send on: it cannot start again, so a
    // failure reports it down (and the watchdog restarts the process).
    let beat = tasks.register("scheduler", Some(SCHEDULER_STUCK_AFTER));
    let mut scheduler = Some(scheduler);
    let (stop, scheduler_beat) = (cancel.clone(), beat.clone());
    let scheduler = tokio::spawn(supervise::supervise(beat, Restart::No, cancel.clone(), move || {
        let (scheduler, stop, beat) = (scheduler.take(), stop.clone(), scheduler_beat.clone());
        async move {
            if let Some(scheduler) = scheduler {
                scheduler.run(stop, beat).await;
            }
        }
    }));
    let reloader = rules::reload::Reloader {
        paths: config.rule_paths.clone(),
        routes: config.routing.route_names(),
        scheduler: scheduler_handle.clone(),
    };
    let (sighup_reloader, stop) = (reloader.clone(), cancel.clone());
    let sighup = keeper.keep("sighup", move || shutdown::reload_on_sighup(sighup_reloader.clone(), stop.clone()));
    let delivery = tokio::spawn(delivery.run(cancel.clone(), tasks.clone()));
    Ok(Alerting { delivery, delivery_handle, scheduler, scheduler_handle, reloader, sighup, ack_key, csrf_key })
}

/// Says perfwatch is up: the log, and systemd's notify socket.
fn announce(http_addr: SocketAddr, statsd_addr: Option<SocketAddr>, db_path: &std::path::Path) {
    telemetry::describe();
    telemetry::build_info();
    tracing::info!(http = %http_addr, statsd = ?statsd_addr, db = %db_path.display(), "perfwatch started");
    systemd::ready(&format!(
        "serving HTTP on {http_addr}{}; database {}",
        statsd_addr.map(|a| format!(", StatsD on {a}")).unwrap_or_default(),
        db_path.display()
    ));
}

/// The HTTP listener and the StatsD socket (if configured), bound before any task starts so
/// a taken port stops the start with the setting to change.
async fn bind(config: &Config) -> Result<(tokio::net::TcpListener, Option<Arc<tokio::net::UdpSocket>>), StartError> {
    let listener = tokio::net::TcpListener::bind(config.http_listen).await.map_err(|source| StartError::Bind {
        what: "HTTP",
        setting: "http.listen",
        addr: config.http_listen,
        source,
    })?;
    let statsd = match config.statsd_listen {
        Some(addr) => Some(Arc::new(
            ingest::statsd::bind(addr, config.statsd_receive_buffer).map_err(|source| StartError::Bind {
                what: "StatsD",
                setting: "statsd.listen",
                addr,
                source,
            })?,
        )),
        None => None,
    };
    Ok((listener, statsd))
}

/// Starts tasks that are restarted when they fail (counted, logged, shown down meanwhile)
/// until the daemon stops.
struct Keeper {
    tasks: Arc<supervise::Tasks>,
    cancel: CancellationToken,
}

impl Keeper {
    fn keep<F, Fut>(&self, name: &str, start: F) -> JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(supervise::supervise(self.tasks.register(name, None), Restart::Yes, self.cancel.clone(), start))
    }

    /// The HTTP server on the bound listener, within the connection limits.
    fn http(
        &self,
        listener: tokio::net::TcpListener,
        state: Arc<ApiState>,
        limits: config::HttpLimits,
    ) -> JoinHandle<()> {
        let routes = api::routes(state);
        let limits = connection_limits(limits);
        let (listener, stop) = (Arc::new(listener), self.cancel.clone());
        self.keep("http", move || api::server::serve(listener.clone(), routes.clone(), limits, stop.clone()))
    }

    /// The systemd watchdog, fed while flushes commit and no task is down.
    fn watchdog(&self, health: &Arc<flusher::FlushHealth>, interval_s: i64) -> JoinHandle<()> {
        let (health, watched, stop) = (health.clone(), self.tasks.clone(), self.cancel.clone());
        self.keep("watchdog", move || systemd::watchdog(health.clone(), watched.clone(), interval_s, stop.clone()))
    }

    /// The status page's trends, computed once a minute whether or not anyone looks.
    fn page_warmer(&self, reads: &Arc<api::ReadState>) -> JoinHandle<()> {
        let (reads, stop) = (reads.clone(), self.cancel.clone());
        self.keep("status_page", move || api::keep_status_page_warm(reads.clone(), stop.clone()))
    }

    /// perfwatch's own metrics, recorded as a push each interval.
    fn own_metrics(&self, own: &Arc<own_metrics::OwnMetrics>, interval_s: i64) -> JoinHandle<()> {
        let (recorder, stop) = (own.clone(), self.cancel.clone());
        let interval = std::time::Duration::from_secs(interval_s as u64);
        self.keep("own_metrics", move || recorder.clone().run(interval, stop.clone()))
    }

    /// One StatsD receiver per core on the shared socket.
    fn statsd(
        &self,
        socket: Arc<tokio::net::UdpSocket>,
        aggregator: &Arc<Aggregator>,
        limits: &ingest::limits::Limits,
        health: &Arc<flusher::FlushHealth>,
    ) -> Vec<JoinHandle<()>> {
        let limits = Arc::new(limits.clone());
        let n_tasks = std::thread::available_parallelism().map_or(2, |n| n.get());
        (0..n_tasks)
            .map(|n| {
                let (socket, aggregator, limits) = (socket.clone(), aggregator.clone(), limits.clone());
                let (health, stop) = (health.clone(), self.cancel.clone());
                self.keep(&format!("statsd/{n}"), move || {
                    let (socket, aggregator, limits) = (socket.clone(), aggregator.clone(), limits.clone());
                    ingest::statsd::serve(socket, aggregator, limits, health.clone(), stop.clone())
                })
            })
            .collect()
    }

    /// The dead man's switch, pinging while every stage is healthy.
    fn heartbeat(&self, heartbeat: heartbeat::Heartbeat) -> Result<JoinHandle<()>, StartError> {
        let heartbeat = Arc::new(heartbeat);
        let client = http_client::builder().build().map_err(notify::NotifierError::from)?;
        let stop = self.cancel.clone();
        Ok(self.keep("heartbeat", move || heartbeat.clone().run(client.clone(), stop.clone())))
    }
}

/// Puts back the cumulative state pushed within `limits.cumulative_idle_after`, the most
/// recent first and at most half the series limit, so a restart after months of churn neither
/// revives dead streams nor fills the limit before new series arrive. Older state is deleted.
async fn restore_cumulative(store: &Store, aggregator: &Aggregator) -> Result<(), StoreError> {
    let since_s = clock::now_s() - aggregator.settings().cumulative_idle_after_s;
    // Best effort: a full disk must not keep perfwatch from starting; the rows stay until a
    // later start can delete them.
    let n_forgotten = store.handle.forget_push_state_before(since_s).await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "cannot delete expired cumulative state; keeping it for now");
        0
    });
    let limit = aggregator.settings().max_series / 2;
    let saved = store.reader.read(move |tx| tx.cumulative_state(since_s, limit)).await?;
    let n_restored = saved.len();
    for entry in saved {
        if SeriesKey::parse(&entry.series.key).is_none() {
            continue;
        }
        let series = aggregate::SeriesRef { key: &entry.series.key, id: entry.series.id, kind: entry.series.kind };
        aggregator.restore_cumulative(series, entry.group, entry.values, entry.updated_s);
    }
    tracing::info!(n_restored, n_forgotten, "cumulative state restored");
    Ok(())
}
