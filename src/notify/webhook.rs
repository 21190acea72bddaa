//! Generic webhooks in Alertmanager's webhook payload (version 4), so anything that takes
//! Alertmanager notifications (an autoscaler, a runbook automation, a ticket bridge) takes
//! perfwatch's. Each request carries `X-Perfwatch-Idempotency-Key` (the notification id, the
//! same on a retry) and, with a secret configured, `X-Perfwatch-Signature: sha256=<hex HMAC of
//! the body>`. 2xx is delivered; 429 and 408 wait and retry, 5xx and timeouts retry, other 4xx
//! fail.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use ring::hmac;
use serde_json::{Value, json};

use super::Outcome;
use super::message::{Kind, Message};
use crate::secret::Secret;

pub struct Target<'a> {
    pub url: &'a str,
    pub hmac_secret: Option<&'a Secret>,
    pub headers: &'a BTreeMap<String, String>,
    pub receiver: &'a str,
}

pub async fn send(
    client: &reqwest::Client,
    target: &Target<'_>,
    timeout: Duration,
    id: &str,
    subject: &str,
    message: &Message,
) -> Outcome {
    let body = payload(target.receiver, subject, message).to_string();
    let mut request =
        client.post(target.url).header("content-type", "application/json").header("x-perfwatch-idempotency-key", id);
    for (name, value) in target.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(secret) = target.hmac_secret {
        request = request.header("x-perfwatch-signature", signature(secret, body.as_bytes()));
    }
    let answer = match super::exchange(request.body(body), timeout, "the webhook").await {
        Ok(answer) => answer,
        Err(outcome) => return outcome,
    };
    let (status, text) = (answer.status, super::excerpt(&answer.body));
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 => Outcome::RetryAfter {
            wait: answer.retry_after,
            error: format!("the webhook asked to wait ({status} {text})"),
        },
        400..=499 => Outcome::Failed(format!("the webhook refused the notification ({status} {text})")),
        _ => Outcome::Retry(format!("the webhook answered {status} {text}")),
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = hmac::sign(&key, body);
    let mut out = String::from("sha256=");
    for byte in tag.as_ref() {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Alertmanager's webhook body for `message`.
pub fn payload(receiver: &str, subject: &str, message: &Message) -> Value {
    let resolved = message.kind == Kind::Resolved;
    let alerts: Vec<Value> = message
        .alerts
        .iter()
        .map(|a| {
            json!({
                "status": if a.state == "firing" { "firing" } else { "resolved" },
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": crate::clock::rfc3339(a.since_s.unwrap_or_default()),
                "endsAt": if a.state == "firing" { "0001-01-01T00:00:00Z".to_owned() } else { crate::clock::rfc3339(crate::clock::now_s()) },
                "generatorURL": a.url.clone().unwrap_or_default(),
                "fingerprint": format!("{:016x}", xxhash_rust::xxh3::xxh3_64(format!("{:?}", a.labels).as_bytes())),
            })
        })
        .collect();
    let common =
        |get: &dyn Fn(&super::message::AlertSummary) -> &BTreeMap<String, String>| -> BTreeMap<String, String> {
            let mut iter = message.alerts.iter();
            let Some(first) = iter.next() else { return BTreeMap::new() };
            let mut common = get(first).clone();
            for alert in iter {
                common.retain(|k, v| get(alert).get(k) == Some(v));
            }
            common
        };
    json!({
        "version": "4",
        "groupKey": subject,
        "truncatedAlerts": 0,
        "status": if resolved { "resolved" } else { "firing" },
        "receiver": receiver,
        "groupLabels": message.group_labels,
        "commonLabels": common(&|a| &a.labels),
        "commonAnnotations": common(&|a| &a.annotations),
        "externalURL": message.links.get("ack").map(|l| l.split("/ack/").next().unwrap_or_default()).unwrap_or_default(),
        "alerts": alerts,
        "perfwatch": {"kind": message.kind.as_str(), "title": message.title, "links": message.links, "oncall": message.oncall},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let secret = Secret::new("Jefe".into());
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
