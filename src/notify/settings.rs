//! What each notifier is configured to do, as `config` validated it: where it sends (Slack,
//! webhook, email, the log) and how it delivers (timeout, concurrency, pacing, attempts).

use std::collections::BTreeMap;

use lettre::message::Mailbox;
use serde::Deserialize;

use crate::secret::Secret;

/// A validated notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierConfig {
    pub kind: NotifierKind,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotifierKind {
    Slack(SlackTarget),
    /// Alertmanager's webhook payload, optionally signed.
    Webhook {
        url: String,
        hmac_secret: Option<Secret>,
        headers: BTreeMap<String, String>,
    },
    Email(Box<EmailConfig>),
    Log,
}

/// How perfwatch posts to Slack.
#[derive(Debug, Clone, PartialEq)]
pub enum SlackTarget {
    /// An incoming webhook: each notification is a new message.
    Webhook { url: Secret },
    /// A bot token and a channel (Web API): follow-ups reply in the page's thread, and the
    /// ack and the resolve edit the page itself.
    Bot { token: Secret, channel: String, api_url: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub timeout_s: i64,
    pub concurrency: usize,
    /// At least this long between two sends.
    pub min_interval_ms: u64,
    pub max_attempts: u32,
}

impl Delivery {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_s as u64)
    }
}

/// How the connection to the relay is protected.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on the same host or a trusted network.
    None,
    /// Upgrade with STARTTLS and refuse to go on without it.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl SmtpTls {
    /// The port a relay listens on for this protection, when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// A validated email notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// AUTH user name and password.
    pub credentials: Option<(String, Secret)>,
    /// Extra trusted certificate(s), PEM.
    pub ca_pem: Option<Vec<u8>>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
}
