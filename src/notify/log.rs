//! The `log` notifier: one structured log line per notification, the default when no
//! notifier is configured (and useful next to real ones).

use super::Outcome;
use super::message::Message;

pub fn send(id: &str, message: &Message) -> Outcome {
    let alerts: Vec<String> = message.alerts.iter().map(|a| format!("{} {}", a.rule, a.state)).collect();
    let oncall = message.oncall_lines(|p| p.name.clone());
    tracing::warn!(
        target: "perfwatch::notification",
        id,
        kind = message.kind.as_str(),
        severity = message.severity.as_deref().unwrap_or(""),
        alerts = ?alerts,
        oncall = ?oncall,
        "{}",
        message.title
    );
    Outcome::Delivered
}
