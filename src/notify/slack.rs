//! Slack incoming webhooks: a Block Kit message under a severity-coloured bar, answered as
//! Slack documents: `200 ok`; `429` with `Retry-After` (wait that long); 4xx bodies such as
//! `invalid_payload`, `no_service`, `channel_not_found`, `action_prohibited` are permanent;
//! 5xx and timeouts are retried. The webhook URL is a secret: errors never include it.

use std::time::Duration;

use serde_json::{Value, json};

use super::Outcome;
use super::message::Message;
use crate::oncall::Person;
use crate::secret::Secret;

/// Alerts listed in one message; Slack allows 50 blocks.
const MAX_ALERTS_SHOWN: usize = 10;
pub async fn send(client: &reqwest::Client, url: &Secret, timeout: Duration, message: &Message) -> Outcome {
    let request = client.post(url.expose()).json(&payload(message));
    match super::exchange(request, timeout, "Slack").await {
        Ok(answer) => classify(answer.status, answer.retry_after, &super::excerpt(&answer.body)),
        Err(outcome) => outcome,
    }
}

/// What Slack's answer means for this notification.
fn classify(status: u16, retry_after: Duration, body: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        429 => Outcome::RetryAfter { wait: retry_after, error: format!("Slack rate-limited the webhook (429 {body})") },
        400..=499 => Outcome::Failed(format!("Slack refused the message ({status} {body}): {}", hint(body))),
        _ => Outcome::Retry(format!("Slack answered {status} {body}")),
    }
}

fn hint(body: &str) -> &'static str {
    match body {
        "no_service" | "invalid_token" | "no_active_hooks" => {
            "the webhook was revoked or its app removed; create a new incoming webhook and update the secret"
        }
        "channel_not_found" | "channel_is_archived" => {
            "the webhook's channel is gone; create a webhook for a live channel"
        }
        "action_prohibited" | "posting_to_general_channel_denied" => {
            "a workspace admin restricts posting there; ask them or use another channel"
        }
        "invalid_payload" | "no_text" | "too_many_attachments" => {
            "perfwatch sent a message Slack rejects; please report it"
        }
        _ => "Slack will not accept this message as sent",
    }
}

/// The Block Kit message: header, text, a section per alert (value against threshold,
/// labels, annotations), and link buttons (acknowledge, runbook, dashboard).
pub fn payload(message: &Message) -> Value {
    let mut blocks =
        vec![json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&message.title, 150)}})];
    if let Some(text) = &message.text {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}));
    }
    // Who is paged: an @mention while paging, their name in follow-ups (no second ping).
    let mention = |p: &Person| match &p.slack {
        Some(id) if message.pages() => format!("<@{id}>"),
        _ => p.name.clone(),
    };
    let oncall = message.oncall_lines(mention);
    if !oncall.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&oncall.join("\n"), 3000)}}));
    }
    for alert in message.alerts.iter().take(MAX_ALERTS_SHOWN) {
        let value = alert.value_text();
        let mut fields = vec![
            json!({"type": "mrkdwn", "text": match &alert.url {
                Some(url) => format!("*<{url}|{}>* — {}", alert.rule, alert.state),
                None => format!("*{}* — {}", alert.rule, alert.state),
            }}),
            json!({"type": "mrkdwn", "text": format!("*Value*\n{value}")}),
        ];
        if let Some(summary) = alert.annotations.get("summary") {
            fields.push(json!({"type": "mrkdwn", "text": truncate(summary, 1900)}));
        }
        blocks.push(json!({"type": "section", "fields": fields}));
        let labels: Vec<String> =
            alert.labels.iter().filter(|(k, _)| k.as_str() != "alertname").map(|(k, v)| format!("`{k}={v}`")).collect();
        if !labels.is_empty() {
            blocks.push(
                json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&labels.join(" "), 3000)}]}),
            );
        }
    }
    if message.alerts.len() > MAX_ALERTS_SHOWN {
        let more = message.alerts.len() - MAX_ALERTS_SHOWN;
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("…and {more} more")}]}));
    }
    let buttons: Vec<Value> = message
        .ordered_links()
        .map(|(label, url)| json!({"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}))
        .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    // Mentions in the top-level text notify for sure (in attachments, not always).
    let mentions: Vec<String> =
        message.oncall.iter().filter_map(|m| m.person.slack.as_ref()).map(|id| format!("<@{id}>")).collect();
    let text = if message.pages() && !mentions.is_empty() {
        format!("{} {}", mentions.join(" "), message.title)
    } else {
        message.title.clone()
    };
    json!({
        "text": truncate(&text, 3000),
        "attachments": [{"color": message.colour(), "blocks": blocks}],
    })
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    text.chars().take(max_chars - 1).collect::<String>() + "…"
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::notify::DEFAULT_RETRY_AFTER;

    #[test]
    fn answers_are_classified_as_slack_documents_them() {
        assert_eq!(classify(200, DEFAULT_RETRY_AFTER, "ok"), Outcome::Delivered);
        assert!(matches!(classify(429, Duration::from_secs(7), "rate_limited"),
            Outcome::RetryAfter { wait, .. } if wait == Duration::from_secs(7)));
        assert!(
            matches!(classify(429, DEFAULT_RETRY_AFTER, ""), Outcome::RetryAfter { wait, .. } if wait == DEFAULT_RETRY_AFTER)
        );
        assert!(matches!(classify(500, DEFAULT_RETRY_AFTER, "oops"), Outcome::Retry(_)));
        assert!(matches!(classify(503, DEFAULT_RETRY_AFTER, ""), Outcome::Retry(_)));
        match classify(404, DEFAULT_RETRY_AFTER, "no_service") {
            Outcome::Failed(message) => assert!(message.contains("revoked"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(classify(403, DEFAULT_RETRY_AFTER, "action_prohibited"), Outcome::Failed(_)));
        assert!(matches!(classify(400, DEFAULT_RETRY_AFTER, "invalid_payload"), Outcome::Failed(_)));
    }

    #[test]
    fn a_message_renders_as_blocks_with_colour_value_and_buttons() {
        let mut message = Message::test("slack", "ana");
        message.severity = Some("critical".into());
        message.alerts.push(crate::notify::message::AlertSummary {
            rule: "ApiLatencyP99".into(),
            state: "firing".into(),
            severity: Some("critical".into()),
            labels: [("endpoint".to_owned(), "/vendors/:id".to_owned())].into(),
            value: Some(0.41),
            threshold: Some(0.2),
            annotations: [("summary".to_owned(), "p99 410 ms".to_owned())].into(),
            since_s: None,
            url: None,
        });
        message.links.insert("ack".into(), "https://perfwatch.example/ack/t".into());
        let payload = payload(&message);
        let attachment = &payload["attachments"][0];
        assert_eq!(attachment["color"], "#d93025");
        message.severity = Some("resolved".into());
        assert_eq!(super::payload(&message)["attachments"][0]["color"], "#2e7d32", "resolved is green");
        let text = attachment["blocks"].to_string();
        assert!(text.contains("0.4100 (threshold 0.2000)"), "{text}");
        assert!(text.contains("`endpoint=/vendors/:id`") && text.contains("p99 410 ms"), "{text}");
        assert!(text.contains("\"url\":\"https://perfwatch.example/ack/t\""), "{text}");
    }

    #[test]
    fn pages_mention_the_on_call_and_follow_ups_only_name_them() {
        use crate::notify::message::{Kind, OnCallMention};
        let mut message = Message::test("slack", "ana");
        message.kind = Kind::Escalated;
        message.title = "[FIRING:1] ApiLatencyP99".into();
        let person = |id: &str, slack: Option<&str>| Person {
            id: id.into(),
            name: id.to_uppercase(),
            slack: slack.map(str::to_owned),
            email: None,
        };
        message.oncall = vec![
            OnCallMention { schedule: "platform".into(), next: false, person: person("ana", Some("U012ABCDEF")) },
            OnCallMention { schedule: "platform".into(), next: true, person: person("ben", None) },
        ];
        let paged = payload(&message);
        assert_eq!(paged["text"], "<@U012ABCDEF> [FIRING:1] ApiLatencyP99");
        let blocks = paged["attachments"][0]["blocks"].to_string();
        assert!(blocks.contains("On call (platform): <@U012ABCDEF>\\nNext in line (platform): BEN"), "{blocks}");
        message.kind = Kind::Resolved;
        let resolved = payload(&message);
        assert_eq!(resolved["text"], "[FIRING:1] ApiLatencyP99", "no second ping");
        assert!(!resolved["attachments"][0]["blocks"].to_string().contains("<@"));
    }
}
