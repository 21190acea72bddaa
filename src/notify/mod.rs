//! Notifications out: what a message says (`message`), how each kind of notifier delivers it
//! (`slack`, `log`), and the delivery actor that drains the SQLite outbox with retries,
//! back-off and per-notifier limits (`delivery`).

pub mod ack_link;
pub mod delivery;
mod log;
pub mod message;
mod slack;
pub mod webhook;

use std::time::Duration;

use self::message::Message;
use crate::config::{NotifierConfig, NotifierKind};

/// How one delivery attempt ended, as the receiver answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// The receiver asked to wait this long (HTTP 429 `Retry-After`).
    RetryAfter {
        wait: Duration,
        error: String,
    },
    /// Worth trying again later (5xx, timeout, connection refused).
    Retry(String),
    /// Will never succeed as sent (a 4xx such as `no_service` or `invalid_payload`).
    Failed(String),
}

/// Sends `message` (notification `id`, about `subject`) through notifier `name`.
pub async fn send(
    client: &reqwest::Client,
    name: &str,
    config: &NotifierConfig,
    id: &str,
    subject: &str,
    message: &Message,
) -> Outcome {
    let timeout = Duration::from_secs(config.delivery.timeout_s as u64);
    match &config.kind {
        NotifierKind::Slack { webhook_url } => slack::send(client, webhook_url, timeout, message).await,
        NotifierKind::Webhook { url, hmac_secret, headers } => {
            let target = webhook::Target { url, hmac_secret: hmac_secret.as_ref(), headers, receiver: name };
            webhook::send(client, &target, timeout, id, subject, message).await
        }
        NotifierKind::Log => log::send(id, message),
    }
}

/// A `Retry-After` given in seconds (the form Slack and most APIs use).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}
