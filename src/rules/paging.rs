//! Between the scheduler and the notification-group engine: turns alert transitions into
//! dispatcher input (skipping silenced alerts), and what the dispatcher queues into outbox rows
//! and saved group states for the scheduler's one commit. On start it restores the groups and
//! re-applies acknowledgements the alerts table holds, so an ack is never lost to a crash.

use super::rule::{Group, Rule};
use crate::alert::dispatch::{AlertChange, Dispatcher};
use crate::alert::routing::Routing;
use crate::alert::silence::{Silence, matching};
use crate::alert::state::Instance;
use crate::model::Labels;
use crate::notify::ack_link::AckLinks;
use crate::notify::delivery::DeliveryHandle;
use crate::notify::message::{AlertSummary, Kind, Message};
use crate::store::alerts::{AlertRow, HistoryRow};
use crate::store::outbox::OutboxRow;
use crate::store::{Changes, Reader, StoreError};

pub struct Paging {
    routing: Routing,
    dispatcher: Dispatcher,
    delivery: DeliveryHandle,
    links: AckLinks,
}

impl Paging {
    /// The saved groups, with the acknowledgements of `active` alerts applied again.
    pub async fn restore(
        routing: Routing,
        delivery: DeliveryHandle,
        links: AckLinks,
        reader: &Reader,
        active: &[AlertRow],
    ) -> Result<Paging, StoreError> {
        let dispatcher = load(&routing, reader, active).await?;
        Ok(Paging { routing, dispatcher, delivery, links })
    }

    /// After a failed commit the engine is ahead of the database; start again from it.
    pub async fn reload(&mut self, reader: &Reader) -> Result<(), StoreError> {
        let active = reader.read(|tx| tx.alerts(&["pending", "firing"])).await?;
        self.dispatcher = load(&self.routing, reader, &active).await?;
        Ok(())
    }

    /// Feeds the transitions in `history` (the instances in `tracked` by alert id).
    pub fn transitions(
        &mut self,
        group: &Group,
        history: &[HistoryRow],
        instance_of: impl Fn(&str) -> Option<(String, Labels, Instance)>,
        silences: &[Silence],
        now_s: i64,
    ) {
        for row in history {
            let firing = match row.transition.as_str() {
                "firing" | "severity_changed" => true,
                "resolved" => false,
                _ => continue,
            };
            let Some((rule_name, labels, instance)) = instance_of(&row.alert_id) else { continue };
            let Some(rule) = group.rules.iter().find(|r| r.name == rule_name) else { continue };
            let severity = row.severity.clone();
            if firing && !matching(silences, &labels, severity.as_deref(), now_s).is_empty() {
                continue; // silenced: keeps its state, pages nobody
            }
            let mut summary = summary(rule, &labels, &instance, severity.clone(), firing);
            summary.url = Some(self.links.alert_page(&row.alert_id));
            if let Some(severity) = &severity {
                summary.labels.insert("severity".into(), severity.clone());
            }
            let labels = summary.labels.clone();
            let change = AlertChange { id: row.alert_id.clone(), route: rule.route.clone(), labels, summary, firing };
            self.dispatcher.alert(change, now_s);
        }
    }

    pub fn ack(&mut self, alert_id: &str, by: &str, now_s: i64) -> bool {
        self.dispatcher.ack(alert_id, by, now_s)
    }

    /// Adds what is due at `now_s` (notifications and group states) to `changes`.
    pub fn collect(&mut self, now_s: i64, changes: &mut Changes) {
        for mut out in self.dispatcher.tick(now_s) {
            add_links(&mut out.message, &out.subject, out.episode_s, &self.links, now_s);
            let payload = serde_json::to_string(&out.message).expect("a message serialises");
            let kind = out.message.kind.as_str().to_owned();
            let mut row = OutboxRow::new(out.id, out.notifier, out.subject, kind, payload, now_s);
            row.alert_ids = out.alert_ids;
            changes.outbox.push(row);
        }
        for (key, group) in self.dispatcher.take_changes() {
            let state = group.map(|g| serde_json::to_string(&g).expect("a group serialises"));
            changes.groups.push((key, state));
        }
    }

    /// When the engine next has something to do.
    pub fn next_wake(&self) -> Option<i64> {
        self.dispatcher.next_wake()
    }

    /// Tells the senders that rows were queued.
    pub fn wake_delivery(&self) {
        self.delivery.wake();
    }
}

/// An acknowledge link while there is something to acknowledge, the alert's page when the
/// message is about one alert, and the runbook and dashboard the first alert's annotations name.
fn add_links(message: &mut Message, subject: &str, episode_s: i64, links: &AckLinks, now_s: i64) {
    if matches!(message.kind, Kind::Firing | Kind::Escalated | Kind::Repeat) {
        message.links.insert("ack".into(), links.link(subject, episode_s, now_s));
    }
    if let [alert] = message.alerts.as_slice()
        && let Some(url) = &alert.url
    {
        message.links.insert("alert".into(), url.clone());
    }
    for name in ["runbook", "dashboard"] {
        let url = message.alerts.iter().find_map(|a| a.annotations.get(name).filter(|u| u.starts_with("http")));
        if let Some(url) = url.cloned() {
            message.links.insert(name.into(), url);
        }
    }
}

async fn load(routing: &Routing, reader: &Reader, active: &[AlertRow]) -> Result<Dispatcher, StoreError> {
    let saved = reader.read(|tx| tx.notify_groups()).await?;
    let groups = saved
        .into_iter()
        .filter_map(|(key, json)| match serde_json::from_str(&json) {
            Ok(group) => Some((key, group)),
            Err(err) => {
                tracing::error!(%key, error = %err, "a saved notification group does not parse; dropping it");
                None
            }
        })
        .collect();
    let mut dispatcher = Dispatcher::new(routing.clone(), groups);
    for row in active {
        if let Some(ack) = &row.ack {
            dispatcher.ack(&row.id, &ack.by, ack.at_s);
        }
    }
    Ok(dispatcher)
}

/// An alert as a message shows it, annotations rendered.
fn summary(rule: &Rule, labels: &Labels, instance: &Instance, severity: Option<String>, firing: bool) -> AlertSummary {
    let annotations =
        rule.annotations_for(labels, instance.value, instance.threshold, severity.as_deref().unwrap_or(""));
    AlertSummary {
        rule: rule.name.clone(),
        state: if firing { "firing" } else { "resolved" }.into(),
        severity: severity.clone(),
        labels: labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        value: instance.value,
        threshold: instance.threshold,
        annotations,
        since_s: instance.firing_since_s,
        url: None,
    }
}
