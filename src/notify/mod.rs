//! Notifications out: what a message says (`message`), how each kind of notifier delivers it
//! (`slack`, `webhook`, `email`, `log`), and the delivery actor that drains the SQLite outbox with retries,
//! back-off and per-notifier limits (`delivery`).

pub mod ack_link;
pub mod delivery;
mod email;
pub(crate) mod health;
mod log;
pub mod message;
pub(crate) mod settings;
mod slack;
pub(crate) mod slack_bot;
pub mod webhook;

use std::time::Duration;

use thiserror::Error;

use self::message::Message;
use self::settings::{NotifierConfig, NotifierKind, SlackTarget};

/// How one delivery attempt ended, as the receiver answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// Delivered, and the receiver's reference to it (Slack's `channel/ts`), kept so
    /// follow-ups can find it.
    DeliveredAs(String),
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

/// A notifier ready to send: its configuration and what it sends with (an HTTP client shared
/// by all, or its own SMTP connection pool).
pub struct Notifier {
    pub name: String,
    config: NotifierConfig,
    client: reqwest::Client,
    mailer: Option<email::Mailer>,
}

#[derive(Debug, Error)]
pub enum NotifierError {
    #[error("cannot set up the HTTP client for notifications: {0}")]
    Client(#[from] reqwest::Error),
    #[error("notifier {name}: cannot set up SMTP: {source}")]
    Smtp { name: String, source: lettre::transport::smtp::Error },
}

impl Notifier {
    pub fn new(name: &str, config: &NotifierConfig, client: reqwest::Client) -> Result<Notifier, NotifierError> {
        let mailer = match &config.kind {
            NotifierKind::Email(email) => Some(
                email::Mailer::new(email, config.delivery.timeout())
                    .map_err(|source| NotifierError::Smtp { name: name.to_owned(), source })?,
            ),
            _ => None,
        };
        Ok(Notifier { name: name.to_owned(), config: config.clone(), client, mailer })
    }

    pub fn config(&self) -> &NotifierConfig {
        &self.config
    }

    /// Whether follow-ups go to the page they follow up (and so wait for it to be delivered).
    pub fn follows_pages(&self) -> bool {
        matches!(self.config.kind, NotifierKind::Slack(SlackTarget::Bot { .. }))
    }

    /// Sends `message` (notification `id`, about `subject`); `page` is the receipt of the page
    /// it follows up, for notifiers that [`follow pages`](Self::follows_pages).
    pub async fn send(&self, id: &str, subject: &str, message: &Message, page: Option<&str>) -> Outcome {
        let timeout = self.config.delivery.timeout();
        match (&self.config.kind, &self.mailer) {
            (NotifierKind::Slack(SlackTarget::Webhook { url }), _) => {
                slack::send(&self.client, url, timeout, message).await
            }
            (NotifierKind::Slack(SlackTarget::Bot { token, channel, api_url }), _) => {
                let bot = slack_bot::Bot { token, channel, api_url };
                slack_bot::send(&self.client, &bot, timeout, message, page).await
            }
            (NotifierKind::Webhook { url, hmac_secret, headers }, _) => {
                let target = webhook::Target { url, hmac_secret: hmac_secret.as_ref(), headers, receiver: &self.name };
                webhook::send(&self.client, &target, timeout, id, subject, message).await
            }
            (NotifierKind::Email(_), Some(mailer)) => mailer.send(id, message).await,
            (NotifierKind::Email(_), None) => unreachable!("an email notifier is built with its mailer"),
            (NotifierKind::Log, _) => log::send(id, message),
        }
    }
}

/// How long to wait on a 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// An HTTP receiver's answer: status, `Retry-After` (or the default wait) and body.
struct Answer {
    status: u16,
    retry_after: Duration,
    body: String,
}

/// Sends `request` (to `receiver`, named in errors; never the URL, which may be a secret) and
/// reads the answer; a timeout, a refused connection or a broken body is an [`Outcome::Retry`].
async fn exchange(request: reqwest::RequestBuilder, timeout: Duration, receiver: &str) -> Result<Answer, Outcome> {
    let response = match request.timeout(timeout).send().await {
        Ok(response) => response,
        Err(err) if err.is_timeout() => {
            return Err(Outcome::Retry(format!("{receiver} did not answer within {timeout:?}")));
        }
        Err(err) => return Err(Outcome::Retry(format!("cannot reach {receiver}: {}", err.without_url()))),
    };
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers()).unwrap_or(DEFAULT_RETRY_AFTER);
    match response.text().await {
        Ok(body) => Ok(Answer { status, retry_after, body }),
        Err(err) => Err(Outcome::Retry(format!("reading {receiver}'s answer failed: {}", err.without_url()))),
    }
}

/// A `Retry-After` given in seconds (the form Slack and most APIs use).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// At most 200 characters of an answer's body, for error messages.
fn excerpt(body: &str) -> String {
    body.trim().chars().take(200).collect()
}
