//! What the routes can reach: the tokens every route checks, and one handle per group of
//! routes (see `routes.rs`) holding only what that group's handlers use, so a handler's
//! signature says which subsystems it touches.

use std::sync::Arc;

use super::offload::CpuPool;
use crate::aggregate::Aggregator;
use crate::flusher::FlushHandle;
use crate::ingest::limits::Limits;
use crate::secret::Secret;
use crate::store::{Reader, StoreHandle};

pub struct ApiState {
    pub push_token: Option<Secret>,
    pub api_token: Option<Secret>,
    pub ingest: Arc<IngestState>,
    pub reads: Arc<ReadState>,
    pub oncall: Arc<OncallState>,
    pub notifications: Arc<NotificationState>,
    pub operations: Arc<OperationsState>,
}

/// Pushes in every protocol.
pub struct IngestState {
    pub aggregator: Arc<Aggregator>,
    pub limits: Limits,
    /// Which OTLP resource attributes become labels.
    pub otlp_labels: crate::ingest::otlp::ResourceLabels,
    /// Whether the store can take more: a push is refused with 503 past the backlog bound.
    pub flush: FlushHandle,
    /// Where large pushed bodies are inflated, parsed and aggregated: off the async workers.
    pub cpu: Arc<CpuPool>,
}

/// Queries, series lists, the CI gate and the status page.
pub struct ReadState {
    pub aggregator: Arc<Aggregator>,
    pub reader: Reader,
    pub limits: Limits,
    /// Bounds of one PromQL query (`query:`).
    pub promql_limits: crate::query::promql::Limits,
    pub cpu: Arc<CpuPool>,
    /// The status page's trends, kept between loads.
    pub(crate) trend_cache: super::status::TrendCache,
}

/// Alerts, acknowledgements, silences and the signed acknowledge links.
pub struct OncallState {
    pub reader: Reader,
    pub store: StoreHandle,
    /// The rule scheduler, told when someone acknowledges an alert so its escalation stops.
    pub scheduler: crate::rules::scheduler::SchedulerHandle,
    /// Verifies acknowledge links.
    pub ack_key: Arc<crate::notify::ack_link::AckKey>,
    /// Signs and checks the alert page's forms.
    pub csrf: Arc<super::csrf::CsrfKey>,
    /// `http.public_url`: a form posted through the proxy there comes from its origin.
    pub public_url: Option<String>,
}

/// The outbox's record and test messages through a notifier.
pub struct NotificationState {
    pub reader: Reader,
    pub store: StoreHandle,
    pub delivery: crate::notify::delivery::DeliveryHandle,
}

/// Health, readiness, /metrics, rule reloads and flushes.
pub struct OperationsState {
    pub aggregator: Arc<Aggregator>,
    pub reader: Reader,
    pub flush: FlushHandle,
    /// Reloads the rule files (`POST /-/reload`).
    pub reloader: crate::rules::reload::Reloader,
    /// The supervised tasks, for readiness.
    pub tasks: Arc<crate::supervise::Tasks>,
    /// perfwatch's own metrics: the exposition and the gauges refreshed for it.
    pub own: Arc<crate::own_metrics::OwnMetrics>,
    /// What /metrics re-exports of the pushed metrics.
    pub export: crate::export::ExportSettings,
    /// Whether perfwatch records its own metrics (`storage.record_own_metrics`).
    pub records_own_metrics: bool,
}
