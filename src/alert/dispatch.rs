//! Notification groups and escalation, pure. Firing alerts join a group per route and
//! `group_by` labels (one message per group, not per alert). A new group waits `group_wait`
//! to gather its alerts, then pages its policy's first step; later steps page as their `after`
//! comes due; alerts joining a notified group go out batched at most every `group_interval`;
//! a group still firing is re-sent after `repeat_interval` (or the policy's `repeat`, to the
//! last step). An acknowledgement stops all of that and is announced to everyone paged; when
//! every alert has resolved, everyone paged is told and the group closes.
//!
//! Time is a parameter. The caller persists the groups `take_changes` returns together with
//! the outbox rows `tick` produced, in one transaction; notification ids derive from the
//! group and its sequence number, so a replay after a crash queues nothing twice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::alert::routing::{OnCallTarget, Policy, Route, Routing, Step};
use crate::model::Labels;
use crate::notify::message::{AlertSummary, Kind, Message, OnCallMention};
use crate::oncall::Schedule;

/// An alert that started or stopped firing, as the scheduler reports it.
#[derive(Debug, Clone)]
pub struct AlertChange {
    pub id: String,
    /// The route the rule names (`route:`), which wins over matching.
    pub route: Option<String>,
    /// Every label of the alert, `alertname` and `severity` included.
    pub labels: BTreeMap<String, String>,
    pub summary: AlertSummary,
    pub firing: bool,
}

/// One notification group's state, persisted as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub route: String,
    pub labels: BTreeMap<String, String>,
    /// The group's alerts by id; `state` is firing or resolved.
    pub alerts: BTreeMap<String, AlertSummary>,
    pub started_s: i64,
    /// Alerts that joined wait until then to go out together.
    pub flush_at_s: Option<i64>,
    pub last_sent_s: Option<i64>,
    /// Escalation steps already paged.
    pub steps_done: usize,
    /// Who acknowledged, and when.
    pub acked: Option<(String, i64)>,
    pub ack_announced: bool,
    /// Every notifier paged so far (told about acks and the resolve).
    pub paged: BTreeSet<String>,
    /// Notifications made so far; part of each notification's id.
    pub seq: u64,
    /// The first notification each notifier got in this episode, which later ones follow up
    /// (mail threads under it).
    #[serde(default)]
    pub threads: BTreeMap<String, String>,
    /// The policy window this episode follows (chosen when it started), if any.
    #[serde(default)]
    pub window: Option<String>,
    /// On-call people paged so far; follow-ups (ack, resolve) reach them too.
    #[serde(default)]
    pub people: Vec<OnCallMention>,
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: String,
    pub notifier: String,
    /// The group's key.
    pub subject: String,
    /// When the group's episode started: an acknowledge link is for this episode only.
    pub episode_s: i64,
    /// The alerts the message is about.
    pub alert_ids: Vec<String>,
    pub message: Message,
}

pub struct Dispatcher {
    routing: Routing,
    groups: BTreeMap<String, Group>,
    changed: BTreeSet<String>,
}

impl Dispatcher {
    pub fn new(routing: Routing, groups: Vec<(String, Group)>) -> Dispatcher {
        Dispatcher { routing, groups: groups.into_iter().collect(), changed: BTreeSet::new() }
    }

    /// The route an alert goes to: the one its rule names, else the first that matches.
    fn route_for(&self, change: &AlertChange) -> Option<&Route> {
        if let Some(name) = &change.route
            && let Some(route) = self.routing.routes.iter().find(|r| &r.name == name)
        {
            return Some(route);
        }
        let labels = Labels::new(change.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        self.routing.routes.iter().find(|r| r.matchers.iter().all(|m| m.matches(&labels)))
    }

    /// Takes an alert that started firing (or changed while firing) or resolved.
    pub fn alert(&mut self, change: AlertChange, now_s: i64) {
        let Some(route) = self.route_for(&change) else { return };
        let labels: BTreeMap<String, String> = route
            .group_by
            .iter()
            .filter_map(|name| change.labels.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        let key = group_key(&route.name, &labels);
        let (group_wait_s, group_interval_s, route_name) =
            (route.group_wait_s, route.group_interval_s, route.name.clone());
        let window = self.routing.policies.get(&route.policy).and_then(|p| p.window_at(now_s)).map(|w| w.name.clone());
        if !change.firing {
            if let Some(group) = self.groups.get_mut(&key)
                && let Some(alert) = group.alerts.get_mut(&change.id)
            {
                *alert = AlertSummary { state: "resolved".into(), ..change.summary };
                self.changed.insert(key);
            }
            return;
        }
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            route: route_name,
            labels,
            alerts: BTreeMap::new(),
            started_s: now_s,
            flush_at_s: Some(now_s + group_wait_s),
            last_sent_s: None,
            steps_done: 0,
            acked: None,
            ack_announced: false,
            paged: BTreeSet::new(),
            seq: 0,
            threads: BTreeMap::new(),
            window,
            people: Vec::new(),
        });
        let joined = group.alerts.get(&change.id).is_none_or(|a| a.state != "firing");
        group.alerts.insert(change.id, change.summary);
        if joined && let Some(last) = group.last_sent_s {
            let at = now_s.max(last + group_interval_s);
            group.flush_at_s = Some(group.flush_at_s.map_or(at, |f| f.min(at)));
        }
        self.changed.insert(key);
    }

    /// Acknowledges every group holding `alert_id`; false when none does.
    pub fn ack(&mut self, alert_id: &str, by: &str, now_s: i64) -> bool {
        let mut found = false;
        for (key, group) in self.groups.iter_mut().filter(|(_, g)| g.alerts.contains_key(alert_id)) {
            found = true;
            if group.acked.is_none() {
                group.acked = Some((by.to_owned(), now_s));
                self.changed.insert(key.clone());
            }
        }
        found
    }

    /// The notifications due at `now_s`.
    pub fn tick(&mut self, now_s: i64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let keys: Vec<String> = self.groups.keys().cloned().collect();
        for key in keys {
            let Some(route) = self.routing.routes.iter().find(|r| r.name == self.groups[&key].route) else { continue };
            let Some(policy) = self.routing.policies.get(&route.policy) else { continue };
            let group = self.groups.get_mut(&key).expect("a listed group");
            let (steps, _) = policy.steps_for(group.window.as_deref());
            let schedules = &self.routing.schedules;
            let firing = group.alerts.values().filter(|a| a.state == "firing").count();
            let paged = |group: &Group| -> Vec<String> { group.paged.iter().cloned().collect() };
            // Re-sends to everyone paged name whoever the last step paged would reach now (a
            // handoff since then moves the @mention to the new on-call).
            let on_call_now = |group: &Group| -> Vec<OnCallMention> {
                let last = group.steps_done.checked_sub(1).and_then(|i| steps.get(i));
                last.map(|step| mentions(schedules, &step.oncall, now_s)).unwrap_or_default()
            };
            let mut sends: Vec<Sending> = Vec::new();
            if firing == 0 {
                if !group.paged.is_empty() {
                    sends.push((paged(group), Kind::Resolved, group.people.clone()));
                }
            } else if let Some((_, _)) = &group.acked {
                if !group.ack_announced {
                    group.ack_announced = true;
                    self.changed.insert(key.clone());
                    if !group.paged.is_empty() {
                        sends.push((paged(group), Kind::Acked, group.people.clone()));
                    }
                }
            } else {
                while let Some(step) = steps.get(group.steps_done) {
                    if group.started_s + step.after_s.max(route.group_wait_s) > now_s {
                        break;
                    }
                    let kind = if group.steps_done == 0 { Kind::Firing } else { Kind::Escalated };
                    sends.push((step.notify.clone(), kind, mentions(schedules, &step.oncall, now_s)));
                    group.steps_done += 1;
                }
                if group.flush_at_s.is_some_and(|at| at <= now_s) {
                    group.flush_at_s = None;
                    self.changed.insert(key.clone());
                    if sends.is_empty() && !group.paged.is_empty() {
                        sends.push((paged(group), Kind::Firing, on_call_now(group)));
                    }
                }
                if sends.is_empty()
                    && let Some((repeat, _)) = repeat_due(group, route, policy, now_s)
                {
                    let sent = match repeat {
                        Repeat::LastStep(step) => (step.notify.clone(), mentions(schedules, &step.oncall, now_s)),
                        Repeat::Paged => (paged(group), on_call_now(group)),
                    };
                    sends.push((sent.0, Kind::Repeat, sent.1));
                }
            }
            if !sends.is_empty() {
                out.extend(outgoing(&key, group, sends, now_s));
                self.changed.insert(key.clone());
            }
            if firing == 0 {
                self.groups.remove(&key);
                self.changed.insert(key);
            }
        }
        out
    }

    /// When `tick` next has something to do, if ever.
    pub fn next_wake(&self) -> Option<i64> {
        let mut wake: Option<i64> = None;
        let mut at = |t: i64| wake = Some(wake.map_or(t, |w| w.min(t)));
        for group in self.groups.values() {
            let Some(route) = self.routing.routes.iter().find(|r| r.name == group.route) else { continue };
            let Some(policy) = self.routing.policies.get(&route.policy) else { continue };
            if !group.alerts.values().any(|a| a.state == "firing") || (group.acked.is_some() && !group.ack_announced) {
                at(i64::MIN);
                continue;
            }
            if group.acked.is_some() {
                continue;
            }
            if let Some(step) = policy.steps_for(group.window.as_deref()).0.get(group.steps_done) {
                at(group.started_s + step.after_s.max(route.group_wait_s));
            }
            if let Some(flush) = group.flush_at_s {
                at(flush);
            }
            if let Some((_, due)) = repeat_due(group, route, policy, i64::MAX) {
                at(due);
            }
        }
        wake
    }

    /// Groups changed since the last call: the new state, or `None` for a closed group.
    pub fn take_changes(&mut self) -> Vec<(String, Option<Group>)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|key| {
                let group = self.groups.get(&key).cloned();
                (key, group)
            })
            .collect()
    }
}

/// Who a repeat goes to.
enum Repeat<'a> {
    /// The policy's `repeat`: the last step again.
    LastStep(&'a Step),
    /// The route's `repeat_interval`: everyone paged so far.
    Paged,
}

/// A message to send: the notifiers, its kind, and the on-call people it is for.
type Sending = (Vec<String>, Kind, Vec<OnCallMention>);

/// The notifications for `sends` of the group `key`, one per notifier, each with an id that
/// names the episode and the group's message sequence; records who was paged and when.
fn outgoing(key: &str, group: &mut Group, sends: Vec<Sending>, now_s: i64) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for (notifiers, kind, people) in sends {
        group.seq += 1;
        for person in &people {
            if !group.people.iter().any(|p| p.person.id == person.person.id) {
                group.people.push(person.clone());
            }
        }
        let message = Message { oncall: people, ..message(group, kind, now_s) };
        let alert_ids: Vec<String> = group
            .alerts
            .iter()
            .filter(|(_, a)| kind == Kind::Resolved || a.state == "firing")
            .map(|(id, _)| id.clone())
            .collect();
        for notifier in notifiers {
            group.paged.insert(notifier.clone());
            // The episode's start is part of the id: a group that resolves and fires
            // again later must not collide with the ids it used before.
            let id = format!(
                "{:016x}-{}-{}-{notifier}",
                xxhash_rust::xxh3::xxh3_64(key.as_bytes()),
                group.started_s,
                group.seq
            );
            let thread = group.threads.entry(notifier.clone()).or_insert_with(|| id.clone());
            let message = Message { thread: Some(thread.clone()).filter(|t| *t != id), ..message.clone() };
            let (subject, episode_s, alert_ids) = (key.to_owned(), group.started_s, alert_ids.clone());
            out.push(Outgoing { id, notifier, subject, episode_s, alert_ids, message });
        }
        group.last_sent_s = Some(now_s);
    }
    out
}

/// The repeat due by `now_s`, if any, and when it fell due.
fn repeat_due<'a>(group: &Group, route: &Route, policy: &'a Policy, now_s: i64) -> Option<(Repeat<'a>, i64)> {
    let last = group.last_sent_s?;
    let (steps, repeat_s) = policy.steps_for(group.window.as_deref());
    let (repeat, due) = match (repeat_s, steps.last()) {
        (Some(every), Some(step)) if group.steps_done == steps.len() => (Repeat::LastStep(step), last + every),
        _ if group.paged.is_empty() => return None,
        _ => (Repeat::Paged, last + route.repeat_interval_s),
    };
    (due <= now_s).then_some((repeat, due))
}

/// The people `targets` name at `now_s`: each schedule's current on-call or next in line.
fn mentions(schedules: &BTreeMap<String, Schedule>, targets: &[OnCallTarget], now_s: i64) -> Vec<OnCallMention> {
    let Ok(at) = jiff::Timestamp::from_second(now_s) else { return Vec::new() };
    targets
        .iter()
        .filter_map(|target| {
            let on_call = schedules.get(&target.schedule)?.on_call(at);
            let person = if target.next { on_call.next? } else { on_call.person };
            Some(OnCallMention { schedule: target.schedule.clone(), next: target.next, person: person.clone() })
        })
        .collect()
}

/// `route{label="value",…}`: a group's key.
fn group_key(route: &str, labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{route}{{{}}}", pairs.join(","))
}

/// The message for `group` as it stands.
fn message(group: &Group, kind: Kind, now_s: i64) -> Message {
    let firing: Vec<&AlertSummary> = group.alerts.values().filter(|a| a.state == "firing").collect();
    let mut names: Vec<&str> = group.alerts.values().map(|a| a.rule.as_str()).collect();
    names.dedup();
    let labels: Vec<String> =
        group.labels.iter().filter(|(k, _)| k.as_str() != "alertname").map(|(k, v)| format!("{k}={v}")).collect();
    let scope =
        if labels.is_empty() { names.join(", ") } else { format!("{} ({})", names.join(", "), labels.join(", ")) };
    let severity = firing.iter().filter_map(|a| a.severity.clone()).max_by_key(|s| severity_rank(s));
    let (title, text, severity, alerts) = match kind {
        Kind::Resolved => (
            format!("[RESOLVED] {scope}"),
            Some("All clear.".to_owned()),
            Some("resolved".to_owned()),
            group.alerts.values().cloned().collect(),
        ),
        Kind::Acked => {
            let by = group.acked.as_ref().map_or("someone", |(by, _)| by.as_str());
            (
                format!("[ACKED] {scope}"),
                Some(format!("Acknowledged by {by}; no further escalation.")),
                severity,
                firing.into_iter().cloned().collect(),
            )
        }
        Kind::Escalated => {
            let waited = crate::clock::elapsed(now_s - group.started_s);
            (
                format!("[FIRING:{}] {scope}", firing.len()),
                Some(format!("Escalated: not acknowledged after {waited}.")),
                severity,
                firing.into_iter().cloned().collect(),
            )
        }
        _ => (format!("[FIRING:{}] {scope}", firing.len()), None, severity, firing.into_iter().cloned().collect()),
    };
    Message {
        kind,
        title,
        severity,
        text,
        alerts,
        links: BTreeMap::new(),
        group_labels: group.labels.clone(),
        thread: None,
        oncall: Vec::new(),
    }
}

fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 3,
        "warning" => 2,
        "info" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
