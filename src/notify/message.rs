//! What a notification says, independent of where it goes: stored as JSON in the outbox and
//! rendered by each notifier (Slack blocks, mail parts, a log line).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::oncall::Person;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Firing,
    Escalated,
    Repeat,
    Acked,
    Resolved,
    /// `perfwatch notify test`: proves a notifier's configuration end to end.
    Test,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Firing => "firing",
            Kind::Escalated => "escalated",
            Kind::Repeat => "repeat",
            Kind::Acked => "acked",
            Kind::Resolved => "resolved",
            Kind::Test => "test",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub kind: Kind,
    pub title: String,
    /// info, warning or critical; sets the colour.
    pub severity: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub alerts: Vec<AlertSummary>,
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// The labels the group is formed by.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// The notification this one follows up: the first its notifier got about the same
    /// group and episode (mail sets `In-Reply-To` to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// On-call people this message is for: mentioned in Slack, mailed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oncall: Vec<OnCallMention>,
}

/// An on-call person a message names, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnCallMention {
    pub schedule: String,
    /// The next in line rather than the current on-call.
    #[serde(default)]
    pub next: bool,
    pub person: Person,
}

impl AlertSummary {
    /// "0.4100 (threshold 0.2000)", or "no data".
    pub fn value_text(&self) -> String {
        match (self.value, self.threshold) {
            (Some(v), Some(t)) => format!("{} (threshold {})", number(v), number(t)),
            (Some(v), None) => number(v),
            _ => "no data".into(),
        }
    }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.4}") }
}

/// One alert in a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSummary {
    pub rule: String,
    pub state: String,
    pub severity: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    #[serde(default)]
    pub since_s: Option<i64>,
    /// Its page in perfwatch (`{http.public_url}/alerts/{id}`), which every message links to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Message {
    /// The colour of its severity (green once resolved).
    pub fn colour(&self) -> &'static str {
        match self.severity.as_deref() {
            Some("critical") => "#d93025",
            Some("warning") => "#f9a825",
            Some("resolved") => "#2e7d32",
            _ => "#1e88e5",
        }
    }

    /// Whether this message pages (and so @mentions its on-call people) rather than informs.
    pub fn pages(&self) -> bool {
        matches!(self.kind, Kind::Firing | Kind::Escalated | Kind::Repeat | Kind::Test)
    }

    /// "On call (platform): Ana Silva" lines, one per person named.
    pub fn oncall_lines(&self, name: impl Fn(&Person) -> String) -> Vec<String> {
        self.oncall
            .iter()
            .map(|m| {
                let role = if m.next { "Next in line" } else { "On call" };
                format!("{role} ({}): {}", m.schedule, name(&m.person))
            })
            .collect()
    }

    /// Named links in the order messages show them: acknowledge, the alert's page (when the
    /// message is about one alert), runbook, dashboard.
    pub fn ordered_links(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("ack", "Acknowledge"), ("alert", "Alert page"), ("runbook", "Runbook"), ("dashboard", "Dashboard")]
            .into_iter()
            .filter_map(|(key, label)| Some((label, self.links.get(key)?.as_str())))
    }

    /// The test message `perfwatch notify test` sends.
    pub fn test(notifier: &str, by: &str) -> Message {
        Message {
            kind: Kind::Test,
            title: format!("perfwatch test notification to {notifier}"),
            severity: Some("info".into()),
            text: Some(format!("Sent by {by} to check that {notifier} reaches you. Nothing is wrong.")),
            alerts: Vec::new(),
            links: BTreeMap::new(),
            group_labels: BTreeMap::new(),
            thread: None,
            oncall: Vec::new(),
        }
    }
}
