//! The episode's timeline, pure: its transitions, each notification with whom it was for and
//! how its attempts went, acks with who and why, and the silences that covered it — in time
//! order, as the alert page lists them.

use crate::alert::silence::Silence;
use crate::clock;
use crate::model::Labels;
use crate::notify::message::Message;
use crate::store::alerts::{HistoryRow, SilenceRow};
use crate::store::outbox::{AttemptRow, OutboxRow};

use super::episode::{Episode, transition_class, words};

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at_s: i64,
    /// CSS class (a fixed word, not escaped).
    pub class: &'static str,
    /// What happened, in a few words.
    pub what: String,
    /// Details: value, who, how delivery went.
    pub detail: String,
    /// Each delivery attempt: when, how it ended, the error.
    pub attempts: Vec<String>,
    /// The notification's id (the mail's `X-Perfwatch-Notification`), for a notification.
    pub notification: Option<String>,
}

/// A notification and its attempts, oldest attempt first.
pub type Notification = (OutboxRow, Vec<AttemptRow>);

/// What went into the timeline, for one episode.
pub struct Sources<'a> {
    pub alert_id: &'a str,
    pub episode: Episode,
    pub history: &'a [HistoryRow],
    pub notifications: &'a [Notification],
    pub silences: &'a [SilenceRow],
    /// The alert's labels with its severity, as silences match them.
    pub labels: &'a Labels,
    /// A value as the page writes it (with the rule's unit).
    pub show: &'a dyn Fn(f64) -> String,
}

/// The timeline, oldest first.
pub fn build(sources: &Sources<'_>) -> Vec<Entry> {
    let mut out: Vec<Entry> = sources
        .history
        .iter()
        .filter(|row| sources.episode.holds(row.at_s))
        .map(|row| transition(row, sources.show))
        .collect();
    out.extend(sources.notifications.iter().filter(|(row, _)| about_episode(row, sources)).map(notification));
    out.extend(covering(sources).map(|row| silence(row, sources.episode.start_s)));
    // Stable: at the same second, transitions come before what they caused.
    out.sort_by_key(|entry| entry.at_s);
    out
}

fn transition(row: &HistoryRow, show: &dyn Fn(f64) -> String) -> Entry {
    let value = row.value.map(show);
    let threshold = row.threshold.map(show);
    let detail = match (row.transition.as_str(), &row.actor) {
        ("acked", Some(by)) => match row.note.as_deref().filter(|n| !n.is_empty()) {
            Some(note) => format!("by {by}: “{note}”"),
            None => format!("by {by}"),
        },
        ("severity_changed", _) => format!("now {}", row.severity.as_deref().unwrap_or("none")),
        _ => match (value, threshold) {
            (Some(v), Some(t)) if row.state != "inactive" => format!("value {v}, threshold {t}"),
            (Some(v), _) => format!("value {v}"),
            _ => String::new(),
        },
    };
    Entry {
        at_s: row.at_s,
        class: transition_class(&row.transition),
        what: capitalised(words(&row.transition)),
        detail,
        attempts: Vec::new(),
        notification: None,
    }
}

/// Whether a notification about this alert belongs to the episode: sent since it began, and
/// (a group's message lists every alert it ever held) saying this alert fired in it — a
/// group's resolve can still carry this alert's summary from an earlier episode.
fn about_episode(row: &OutboxRow, sources: &Sources<'_>) -> bool {
    if row.created_s < sources.episode.start_s {
        return false;
    }
    let Ok(message) = serde_json::from_str::<Message>(&row.payload) else { return true };
    let page = format!("/alerts/{}", sources.alert_id);
    match message.alerts.iter().find(|a| a.url.as_deref().is_some_and(|u| u.ends_with(&page))) {
        Some(summary) => summary.since_s.is_none_or(|since| since >= sources.episode.start_s),
        // Sent before messages linked their alerts: the time is all there is to go by.
        None => true,
    }
}

/// "Slack paged (firing), for Ana Silva (on call, platform): delivered after 2 attempts".
fn notification((row, attempts): &Notification) -> Entry {
    let people: Vec<String> = serde_json::from_str::<Message>(&row.payload)
        .map(|m| {
            m.oncall
                .iter()
                .map(|p| format!("{} ({}, {})", p.person.name, if p.next { "next" } else { "on call" }, p.schedule))
                .collect()
        })
        .unwrap_or_default();
    let tried = attempts.len();
    let outcome = match row.status.as_str() {
        "sent" if row.in_doubt => "delivered (sent again after a restart; it may have arrived twice)".to_owned(),
        "sent" if tried > 1 => format!("delivered after {tried} attempts"),
        "sent" => "delivered".to_owned(),
        "failed" => format!("failed after {tried} attempt{}", if tried == 1 { "" } else { "s" }),
        "sending" => "being sent".to_owned(),
        _ if tried > 0 => format!("retrying at {} UTC after {tried} failed", clock::hh_mm(row.due_s)),
        _ => "waiting to be sent".to_owned(),
    };
    let detail = if people.is_empty() { outcome } else { format!("for {}: {outcome}", people.join(", ")) };
    Entry {
        at_s: row.created_s,
        class: if row.status == "failed" { "failed" } else { "notified" },
        what: format!("{} notified ({})", row.notifier, row.kind),
        detail,
        attempts: attempts
            .iter()
            .map(|a| {
                let error = a.error.as_deref().map_or(String::new(), |e| format!(": {e}"));
                format!("{} UTC {} in {} ms{error}", hh_mm_ss(a.at_s), a.status, a.latency_ms)
            })
            .collect(),
        notification: Some(row.id.clone()),
    }
}

/// Silences that matched the alert at some time during the episode.
fn covering<'a>(sources: &'a Sources<'a>) -> impl Iterator<Item = &'a SilenceRow> {
    let (start, end) = (sources.episode.start_s, sources.episode.end_s.unwrap_or(i64::MAX));
    sources.silences.iter().filter(move |row| {
        row.starts_s <= end
            && row.ends_s > start
            && Silence::new(row.id.clone(), &row.matchers, row.starts_s, row.ends_s)
                .is_ok_and(|s| s.covers(sources.labels))
    })
}

/// A silence, at the episode's start when it began before (with its own start said).
fn silence(row: &SilenceRow, episode_start_s: i64) -> Entry {
    let comment = if row.comment.is_empty() { String::new() } else { format!(": “{}”", row.comment) };
    let since = if row.starts_s < episode_start_s {
        format!("since {}, ", clock::rfc3339(row.starts_s))
    } else {
        String::new()
    };
    Entry {
        at_s: row.starts_s.max(episode_start_s),
        class: "silenced",
        what: "Silenced".into(),
        detail: format!("{since}by {} until {}{comment}", row.author, clock::rfc3339(row.ends_s)),
        attempts: Vec::new(),
        notification: None,
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |first| first.to_uppercase().chain(chars).collect())
}

/// `02:13:05`, UTC.
pub fn hh_mm_ss(ts_s: i64) -> String {
    let s = ts_s.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at_s: i64, transition: &str, state: &str) -> HistoryRow {
        HistoryRow {
            alert_id: "a".into(),
            at_s,
            transition: transition.into(),
            state: state.into(),
            severity: Some("critical".into()),
            value: Some(0.41),
            threshold: Some(0.2),
            actor: None,
            note: None,
        }
    }

    fn silence(id: &str, matchers: &str, starts_s: i64, ends_s: i64) -> SilenceRow {
        SilenceRow {
            id: id.into(),
            matchers: matchers.into(),
            starts_s,
            ends_s,
            author: "bo".into(),
            comment: "failover".into(),
            created_s: starts_s,
            until_resolved: None,
        }
    }

    #[test]
    fn one_episode_in_time_order_with_who_and_how_delivery_went() {
        let mut acked = row(1100, "acked", "firing");
        (acked.actor, acked.note) = (Some("ana".into()), Some("on it".into()));
        let history = vec![
            row(10, "resolved", "inactive"),
            row(1000, "pending", "pending"),
            row(1060, "firing", "firing"),
            acked,
        ];
        let payload = r#"{"kind":"firing","title":"t","severity":"critical","oncall":[{"schedule":"platform","person":{"id":"ana","name":"Ana Silva"}}]}"#;
        let mut page = OutboxRow::new("n1".into(), "slack".into(), "g".into(), "firing".into(), payload.into(), 1060);
        page.status = "sent".into();
        let attempts = vec![
            AttemptRow { at_s: 1061, status: "retry".into(), error: Some("HTTP 500".into()), latency_ms: 12 },
            AttemptRow { at_s: 1071, status: "sent".into(), error: None, latency_ms: 9 },
        ];
        let earlier = OutboxRow::new("n0".into(), "mail".into(), "g".into(), "firing".into(), "{}".into(), 5);
        // A group's resolve sent during this episode, still listing this alert as it was in the
        // episode before: not this episode's.
        let stale = r#"{"kind":"resolved","title":"t","alerts":[{"rule":"ApiSlow","state":"resolved","labels":{},"value":null,"threshold":null,"since_s":5,"url":"https://pw.example/alerts/a1"}]}"#;
        let resolve = OutboxRow::new("n2".into(), "slack".into(), "g".into(), "resolved".into(), stale.into(), 1090);
        let notifications = vec![(page, attempts), (earlier, Vec::new()), (resolve, Vec::new())];
        let silences = vec![
            silence("s1", r#"{team="platform"}"#, 1080, 5000),
            silence("s2", r#"{team="db"}"#, 1080, 5000),
            silence("s3", r#"{team="platform"}"#, 100, 900),
        ];
        let labels = Labels::new(vec![("team".into(), "platform".into()), ("severity".into(), "critical".into())]);
        let show = |v: f64| format!("{v:.2}");
        let sources = Sources {
            alert_id: "a1",
            episode: Episode { start_s: 1000, end_s: None },
            history: &history,
            notifications: &notifications,
            silences: &silences,
            labels: &labels,
            show: &show,
        };
        let entries = build(&sources);
        let lines: Vec<(i64, &str, &str)> =
            entries.iter().map(|e| (e.at_s, e.what.as_str(), e.detail.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (1000, "Pending", "value 0.41, threshold 0.20"),
                (1060, "Firing", "value 0.41, threshold 0.20"),
                (1060, "slack notified (firing)", "for Ana Silva (on call, platform): delivered after 2 attempts"),
                (1080, "Silenced", "by bo until 1970-01-01T01:23:20Z: “failover”"),
                (1100, "Acknowledged", "by ana: “on it”"),
            ]
        );
        assert_eq!(entries[2].notification.as_deref(), Some("n1"));
        assert_eq!(entries[2].attempts, vec!["00:17:41 UTC retry in 12 ms: HTTP 500", "00:17:51 UTC sent in 9 ms"]);
    }
}
