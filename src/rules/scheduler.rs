//! The rule scheduler actor: evaluates each group on its interval against the same consistent
//! view as queries, steps every alert instance, commits changed instances and their
//! transitions in one transaction, and only then takes the new state as current. Pending and
//! firing instances are restored on start, so a restart neither loses a `for` timer nor
//! announces an alert that was already firing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The scheduler beats at least this often, idle or not (see `supervise`).
pub const BEAT_EVERY: Duration = Duration::from_secs(10);

use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::eval::{Measured, measure, reads, verdict};
use super::paging::Paging;
use super::rule::{Group, Rule, metric_names};
use crate::aggregate::Aggregator;
use crate::alert::routing::Routing;
use crate::alert::silence::active_silences;
use crate::alert::state::{AlertState, Instance, Timing, Transition, Verdict, step};
use crate::model::{Labels, SeriesKey, write_canonical_key};
use crate::notify::ack_link::AckLinks;
use crate::notify::delivery::DeliveryHandle;
use crate::query::QueryError;
use crate::query::view::{Catalog, with_view};
use crate::store::alerts::{AlertRow, HistoryRow};
use crate::store::tiers::align_up;
use crate::store::{Changes, Reader, StoreError, StoreHandle};
use crate::{clock, telemetry};

#[derive(Debug, Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// An instance the scheduler follows, with what identifies it.
#[derive(Debug, Clone)]
struct Tracked {
    rule: String,
    group: String,
    labels: Labels,
    instance: Instance,
}

/// Asks the scheduler to run a new set of rule groups.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<(Vec<Group>, oneshot::Sender<ReloadReport>)>,
    acks: mpsc::Sender<(String, String)>,
    running: watch::Receiver<Vec<Arc<Group>>>,
}

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadReport {
    pub n_rules: usize,
    /// Rules whose alert state carried over because their definition did not change.
    pub n_kept: usize,
}

impl SchedulerHandle {
    /// Replaces the running groups; returns once the scheduler has switched.
    pub async fn replace(&self, groups: Vec<Group>) -> Option<ReloadReport> {
        let (reply, done) = oneshot::channel();
        self.tx.send((groups, reply)).await.ok()?;
        done.await.ok()
    }

    /// The rule `name` of group `group` as it runs now (the alert page draws what it measures).
    pub fn rule(&self, group: &str, name: &str) -> Option<Rule> {
        let running = self.running.borrow();
        let group = running.iter().find(|g| g.name == group)?;
        group.rules.iter().find(|r| r.name == name).cloned()
    }

    /// Every group as it runs now.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        self.running.borrow().clone()
    }

    /// Tells the notification engine that `id` was acknowledged (already stored) by `by`, so
    /// escalation stops and those paged hear of it.
    pub async fn acked(&self, id: String, by: String) {
        let _ = self.acks.send((id, by)).await;
    }
}

pub struct Scheduler {
    reloads: mpsc::Receiver<(Vec<Group>, oneshot::Sender<ReloadReport>)>,
    groups: Vec<Arc<Group>>,
    /// The groups published for readers of the handle, replaced on each reload.
    running: watch::Sender<Vec<Arc<Group>>>,
    aggregator: Arc<Aggregator>,
    reader: Reader,
    store: StoreHandle,
    /// Pending and firing instances by alert id (inactive ones live only in the store).
    tracked: HashMap<String, Tracked>,
    /// Parsed series lists kept from one evaluation to the next.
    catalog: Arc<Catalog>,
    /// Grouping and escalation of what fires.
    paging: Paging,
    acks: mpsc::Receiver<(String, String)>,
}

/// The stable id of the instance of `rule` in `group` for `labels`.
pub fn alert_id(group: &str, rule: &str, labels: &Labels) -> String {
    let key = format!("{group}\0{rule}\0{}", canonical_labels(labels));
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()))
}

/// An alert's labels: its group's, the rule's own, and `alertname`.
pub fn alert_labels(rule: &Rule, group_labels: &Labels) -> Labels {
    let mut pairs: Vec<(String, String)> = rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.extend(group_labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
    pairs.push(("alertname".to_owned(), rule.name.clone()));
    Labels::new(pairs)
}

/// `{a="x",b="y"}` (empty for no labels), the form alerts are stored with.
pub fn canonical_labels(labels: &Labels) -> String {
    let pairs: Vec<(&str, &str)> = labels.iter().collect();
    let mut out = String::new();
    write_canonical_key("", &pairs, &mut Vec::new(), &mut out);
    out
}

impl Scheduler {
    /// A scheduler for `groups`, resuming the pending and firing instances the store holds.
    pub async fn new(
        groups: Vec<Group>,
        aggregator: Arc<Aggregator>,
        reader: Reader,
        store: StoreHandle,
        routing: Routing,
        delivery: DeliveryHandle,
        links: AckLinks,
    ) -> Result<(Scheduler, SchedulerHandle), StoreError> {
        let rows = reader.read(|tx| tx.alerts(&["pending", "firing"])).await?;
        let paging = Paging::restore(routing, delivery, links, &reader, &rows).await?;
        let tracked = rows
            .into_iter()
            .filter_map(|row| {
                let labels = SeriesKey::parse(&row.labels)?.labels;
                let state = if row.state == "firing" { AlertState::Firing } else { AlertState::Pending };
                let severity = row.severity.as_deref().and_then(crate::model::Severity::parse);
                let instance = Instance {
                    state,
                    severity,
                    value: row.value,
                    threshold: row.threshold,
                    pending_since_s: row.pending_since_s,
                    firing_since_s: row.firing_since_s,
                    last_breach_s: row.last_breach_s,
                };
                Some((row.id, Tracked { rule: row.rule, group: row.group, labels, instance }))
            })
            .collect();
        let (tx, reloads) = mpsc::channel(4);
        let (ack_tx, acks) = mpsc::channel(64);
        telemetry::rules_loaded(groups.iter().map(|g| g.rules.len()).sum());
        let groups: Vec<Arc<Group>> = groups.into_iter().map(Arc::new).collect();
        let (running, running_rx) = watch::channel(groups.clone());
        let scheduler = Scheduler {
            reloads,
            groups,
            running,
            aggregator,
            reader,
            store,
            tracked,
            catalog: Arc::default(),
            paging,
            acks,
        };
        Ok((scheduler, SchedulerHandle { tx, acks: ack_tx, running: running_rx }))
    }

    /// Switches to `groups`. Instances of rules that are gone or changed are reset to inactive
    /// (recorded as `reset_by_reload`); unchanged rules keep their state.
    async fn reload(&mut self, groups: Vec<Group>) -> ReloadReport {
        let old: HashMap<(String, String), String> = self
            .groups
            .iter()
            .flat_map(|g| g.rules.iter().map(|r| ((g.name.clone(), r.name.clone()), fingerprint(r))))
            .collect();
        let mut unchanged = std::collections::HashSet::new();
        for rule in groups.iter().flat_map(|g| g.rules.iter()) {
            let key = (rule.group.clone(), rule.name.clone());
            if old.get(&key) == Some(&fingerprint(rule)) {
                unchanged.insert(key);
            }
        }
        let now_s = clock::now_s();
        let mut rows = Vec::new();
        let mut history = Vec::new();
        let reset: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| !unchanged.contains(&(t.group.clone(), t.rule.clone())))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &reset {
            let tracked = &self.tracked[id];
            history.push(HistoryRow {
                alert_id: id.clone(),
                at_s: now_s,
                transition: "reset_by_reload".into(),
                state: "inactive".into(),
                severity: tracked.instance.severity.map(|s| s.as_str().to_owned()),
                value: tracked.instance.value,
                threshold: tracked.instance.threshold,
                actor: None,
                note: None,
            });
            rows.push(AlertRow {
                id: id.clone(),
                rule: tracked.rule.clone(),
                group: tracked.group.clone(),
                labels: canonical_labels(&tracked.labels),
                state: "inactive".into(),
                severity: None,
                value: tracked.instance.value,
                threshold: tracked.instance.threshold,
                pending_since_s: None,
                firing_since_s: None,
                last_breach_s: tracked.instance.last_breach_s,
                updated_s: now_s,
                ack: None,
            });
        }
        if !rows.is_empty() {
            let changes = Changes { alerts: rows, history, ..Changes::default() };
            if let Err(err) = self.store.commit(changes).await {
                tracing::error!(error = %err, "recording alerts reset by a reload failed");
            }
        }
        for id in reset {
            self.tracked.remove(&id);
        }
        let n_rules = groups.iter().map(|g| g.rules.len()).sum();
        telemetry::rules_loaded(n_rules);
        self.groups = groups.into_iter().map(Arc::new).collect();
        self.running.send_replace(self.groups.clone());
        ReloadReport { n_rules, n_kept: unchanged.len() }
    }

    /// Evaluates each group when it is due until `cancel`; switches rules when asked.
    /// Evaluates until `cancel`, beating `beat` at least every [`BEAT_EVERY`].
    pub async fn run(mut self, cancel: CancellationToken, beat: crate::supervise::Beat) {
        let schedule = |groups: &[Arc<Group>]| -> Vec<i64> {
            groups.iter().map(|g| align_up(clock::now_s(), g.interval_s)).collect()
        };
        let mut next_due = schedule(&self.groups);
        loop {
            beat.beat();
            // With no groups, wait for a reload, an ack, a notification timer or the end.
            let due = next_due.iter().min().copied().unwrap_or(i64::MAX / 2000);
            let page_at = self.paging.next_wake().map(|t| t.max(0)).unwrap_or(i64::MAX / 2000);
            let wait = Duration::from_millis(((due.min(page_at) * 1000) - clock::now_ms()).max(0) as u64);
            let wait = wait.min(BEAT_EVERY);
            tokio::select! {
                _ = cancel.cancelled() => break,
                ack = self.acks.recv() => {
                    if let Some((id, by)) = ack {
                        let now_s = clock::now_s();
                        self.paging.ack(&id, &by, now_s);
                        self.page(now_s).await;
                    }
                    continue;
                }
                reload = self.reloads.recv() => {
                    if let Some((groups, reply)) = reload {
                        let report = self.reload(groups).await;
                        next_due = schedule(&self.groups);
                        let _ = reply.send(report);
                    }
                    continue;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            let now_s = clock::now_s();
            if due > now_s && page_at > now_s {
                continue; // woke only to beat
            }
            if due > now_s {
                // Only a notification timer came due.
                self.page(now_s).await;
                continue;
            }
            let due: Vec<Arc<Group>> = self
                .groups
                .iter()
                .zip(next_due.iter_mut())
                .filter(|(_, due)| **due <= now_s)
                .map(|(group, due)| {
                    *due = align_up(now_s + 1, group.interval_s);
                    group.clone()
                })
                .collect();
            let started = Instant::now();
            match self.evaluate(&due, now_s).await {
                Ok(()) => telemetry::rules_evaluated(started.elapsed()),
                Err(err) => {
                    telemetry::rules_evaluation_failed();
                    let names: Vec<&str> = due.iter().map(|g| g.name.as_str()).collect();
                    tracing::error!(groups = ?names, error = %err, "rule evaluation failed; will retry next interval");
                }
            }
        }
        tracing::debug!("rule scheduler finished");
    }

    /// Evaluates every rule of `groups` at `now_s` against one view, and commits what changed
    /// (instances, transitions, notification groups and the notifications they queued)
    /// in one transaction before taking it as current.
    pub async fn evaluate(&mut self, groups: &[Arc<Group>], now_s: i64) -> Result<(), SchedulerError> {
        if groups.is_empty() {
            return Ok(());
        }
        let measured = self.measure(groups.to_vec(), now_s).await?;
        let silences = active_silences(self.reader.read(move |tx| tx.silences(now_s, false)).await?);
        let mut changes = Changes::default();
        let mut changed: HashMap<String, Tracked> = HashMap::new();
        for (group, measured) in groups.iter().zip(measured) {
            let first = changes.history.len();
            let group_changed = self.apply(group, measured, now_s, &mut changes);
            let instance_of =
                |id: &str| group_changed.get(id).map(|t| (t.rule.clone(), t.labels.clone(), t.instance.clone()));
            self.paging.transitions(group, &changes.history[first..], instance_of, &silences, now_s);
            changed.extend(group_changed);
        }
        self.paging.collect(now_s, &mut changes);
        self.commit(changes).await?;
        for (id, tracked) in changed {
            if tracked.instance.state == AlertState::Inactive {
                self.tracked.remove(&id);
            } else {
                self.tracked.insert(id, tracked);
            }
        }
        Ok(())
    }

    /// Sends what the notification engine has due at `now_s` (timers, acks).
    async fn page(&mut self, now_s: i64) {
        let mut changes = Changes::default();
        self.paging.collect(now_s, &mut changes);
        if let Err(err) = self.commit(changes).await {
            tracing::error!(error = %err, "saving notifications failed; will retry");
        }
    }

    /// Commits `changes`; on failure the engine starts again from what the database holds.
    async fn commit(&mut self, changes: Changes) -> Result<(), SchedulerError> {
        if changes.is_empty() {
            return Ok(());
        }
        let queued = !changes.outbox.is_empty();
        if let Err(err) = self.store.commit(changes).await {
            if let Err(reload) = self.paging.reload(&self.reader).await {
                tracing::error!(error = %reload, "cannot reload notification groups");
            }
            return Err(err.into());
        }
        if queued {
            self.paging.wake_delivery();
        }
        Ok(())
    }

    /// Steps the instances of `group` by what its rules measured into `changes`; returns the
    /// instances that changed (to be taken as current once committed).
    fn apply(
        &mut self,
        group: &Group,
        measured: Vec<Vec<Measured>>,
        now_s: i64,
        changes: &mut Changes,
    ) -> HashMap<String, Tracked> {
        let mut changed: HashMap<String, Tracked> = HashMap::new();
        let (rows, history) = (&mut changes.alerts, &mut changes.history);
        // The group's pending and firing instances by rule, found in one pass.
        let mut tracked_by_rule: HashMap<String, Vec<String>> = HashMap::new();
        for (id, t) in self.tracked.iter().filter(|(_, t)| t.group == group.name) {
            tracked_by_rule.entry(t.rule.clone()).or_default().push(id.clone());
        }
        for (rule, results) in group.rules.iter().zip(measured) {
            let mut seen = std::collections::HashSet::new();
            for result in results {
                let id = alert_id(&group.name, &rule.name, &result.labels);
                let current = self.tracked.get(&id).map(|t| t.instance.clone()).unwrap_or_default();
                let verdict = verdict(rule, &result, current.state == AlertState::Firing);
                seen.insert(id.clone());
                let labels = || alert_labels(rule, &result.labels);
                self.advance(rule, id, labels, current, verdict, now_s, &mut changed, rows, history);
            }
            // Instances whose group no longer has data: their breach is over.
            let gone: Vec<(String, Tracked)> = tracked_by_rule
                .remove(&rule.name)
                .unwrap_or_default()
                .into_iter()
                .filter(|id| !seen.contains(id))
                .filter_map(|id| self.tracked.get(&id).map(|t| (id.clone(), t.clone())))
                .collect();
            for (id, tracked) in gone {
                let verdict = Verdict::Clear { value: None };
                self.advance(
                    rule,
                    id,
                    || tracked.labels,
                    tracked.instance,
                    verdict,
                    now_s,
                    &mut changed,
                    rows,
                    history,
                );
            }
        }
        changed
    }

    /// Steps one instance; what changed goes into `changed`, `rows` and `history`.
    #[allow(clippy::too_many_arguments)]
    fn advance(
        &self,
        rule: &Rule,
        id: String,
        labels: impl FnOnce() -> Labels,
        current: Instance,
        verdict: Verdict,
        now_s: i64,
        changed: &mut HashMap<String, Tracked>,
        rows: &mut Vec<AlertRow>,
        history: &mut Vec<HistoryRow>,
    ) {
        let timing = Timing { for_s: rule.for_s, keep_firing_for_s: rule.keep_firing_for_s };
        let (next, transition) = step(&current, verdict, now_s, timing);
        // An instance that stays inactive is not stored: its value changes every evaluation and
        // writing it would be a row per group per rule per interval for nothing anyone reads.
        if next == current || (next.state == AlertState::Inactive && current.state == AlertState::Inactive) {
            return;
        }
        // Most evaluations change nothing; the labels are only built for those that do.
        let labels = labels();
        let severity = next.severity.map(|s| s.as_str().to_owned());
        if let Some(transition) = transition {
            history.push(HistoryRow {
                alert_id: id.clone(),
                at_s: now_s,
                transition: transition_name(transition).to_owned(),
                state: next.state.as_str().to_owned(),
                severity: severity.clone().or_else(|| current.severity.map(|s| s.as_str().to_owned())),
                value: next.value,
                threshold: next.threshold,
                actor: None,
                note: None,
            });
        }
        rows.push(AlertRow {
            id: id.clone(),
            rule: rule.name.clone(),
            group: rule.group.clone(),
            labels: canonical_labels(&labels),
            state: next.state.as_str().to_owned(),
            severity,
            value: next.value,
            threshold: next.threshold,
            pending_since_s: next.pending_since_s,
            firing_since_s: next.firing_since_s,
            last_breach_s: next.last_breach_s,
            updated_s: now_s,
            ack: None,
        });
        changed.insert(id, Tracked { rule: rule.name.clone(), group: rule.group.clone(), labels, instance: next });
    }

    /// Measures every rule of `groups` through one view: memory snapshotted for every metric
    /// they read, then one read transaction.
    async fn measure(&self, groups: Vec<Arc<Group>>, now_s: i64) -> Result<Vec<Vec<Vec<Measured>>>, SchedulerError> {
        let names = metric_names(groups.iter().flat_map(|g| &g.rules));
        let measured = with_view(&self.reader, Some(&self.aggregator), Some(&self.catalog), &names, move |view| {
            view.prefetch(&reads(groups.iter().flat_map(|g| &g.rules), now_s))?;
            groups.iter().map(|group| group.rules.iter().map(|rule| measure(rule, now_s, view)).collect()).collect()
        });
        Ok(measured.await?)
    }
}

/// A rule's definition without where it was written, to tell changed rules from moved ones.
fn fingerprint(rule: &Rule) -> String {
    let mut rule = rule.clone();
    rule.location = super::rule::Location { file: String::new(), line: 0, column: 0 };
    format!("{rule:?}")
}

fn transition_name(transition: Transition) -> &'static str {
    match transition {
        Transition::Pending => "pending",
        Transition::Firing => "firing",
        Transition::SeverityChanged { .. } => "severity_changed",
        Transition::Cancelled => "cancelled",
        Transition::Resolved => "resolved",
    }
}
