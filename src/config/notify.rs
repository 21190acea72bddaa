//! The `notifiers:` section: named destinations for notifications, each with its secrets
//! (from a file or an environment variable, never inline) and its delivery limits.
//!
//! ```yaml
//! notifiers:
//!   platform-slack:
//!     type: slack
//!     webhook_url_file: /etc/perfwatch/slack-webhook
//!   stdout:
//!     type: log
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::email::{self, RawSmtp};
use super::{Seconds, read_secret};
use crate::notify::settings::{Delivery, NotifierConfig, NotifierKind, SlackTarget};

/// One notifier as written. A flat struct rather than a tagged enum: serde cannot refuse
/// unknown keys through `flatten`, and a misspelt key must be an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifier {
    #[serde(rename = "type")]
    kind: RawKind,
    webhook_url_file: Option<PathBuf>,
    webhook_url_env: Option<String>,
    /// slack: a bot token (`xoxb-…`) instead of a webhook, so acks and resolves edit the page.
    bot_token_file: Option<PathBuf>,
    bot_token_env: Option<String>,
    /// slack with a bot token: the channel ID to post in.
    channel: Option<String>,
    /// slack with a bot token: the Web API's base URL.
    api_url: Option<String>,
    /// webhook: where to POST (not a secret; put credentials in `hmac_secret_*`).
    url: Option<String>,
    hmac_secret_file: Option<PathBuf>,
    hmac_secret_env: Option<String>,
    /// webhook: extra request headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// email: the relay.
    smtp: Option<RawSmtp>,
    /// email: the sender and recipients.
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    timeout: Option<Seconds>,
    concurrency: Option<usize>,
    /// Sends per second at most (Slack allows about one per second per webhook).
    rate_per_second: Option<f64>,
    max_attempts: Option<u32>,
}

impl RawNotifier {
    /// Keys set here that belong to another type of notifier, with that type.
    fn foreign_keys(&self) -> Vec<(&'static str, &'static str)> {
        let set = [
            ("webhook_url_file", RawKind::Slack, self.webhook_url_file.is_some()),
            ("webhook_url_env", RawKind::Slack, self.webhook_url_env.is_some()),
            ("bot_token_file", RawKind::Slack, self.bot_token_file.is_some()),
            ("bot_token_env", RawKind::Slack, self.bot_token_env.is_some()),
            ("channel", RawKind::Slack, self.channel.is_some()),
            ("api_url", RawKind::Slack, self.api_url.is_some()),
            ("url", RawKind::Webhook, self.url.is_some()),
            ("hmac_secret_file", RawKind::Webhook, self.hmac_secret_file.is_some()),
            ("hmac_secret_env", RawKind::Webhook, self.hmac_secret_env.is_some()),
            ("headers", RawKind::Webhook, !self.headers.is_empty()),
            ("smtp", RawKind::Email, self.smtp.is_some()),
            ("from", RawKind::Email, self.from.is_some()),
            ("to", RawKind::Email, !self.to.is_empty()),
            ("cc", RawKind::Email, !self.cc.is_empty()),
        ];
        set.into_iter()
            .filter(|(_, owner, present)| *present && *owner != self.kind)
            .map(|(key, owner, _)| (key, owner.name()))
            .collect()
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Slack,
    Webhook,
    Email,
    Log,
}

impl RawKind {
    fn name(self) -> &'static str {
        match self {
            RawKind::Slack => "slack",
            RawKind::Webhook => "webhook",
            RawKind::Email => "email",
            RawKind::Log => "log",
        }
    }
}

pub(super) fn validate(
    raw: BTreeMap<String, RawNotifier>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, NotifierConfig> {
    let mut out = BTreeMap::new();
    for (name, mut notifier) in raw {
        let what = format!("notifiers.{name}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            problems.push(format!("{what}: name a notifier with letters, digits, '-' and '_'"));
        }
        for (key, owner) in notifier.foreign_keys() {
            problems.push(format!(
                "{what}.{key}: only a {owner} notifier takes this key (this one is type: {})",
                notifier.kind.name()
            ));
        }
        let (kind, default_rate) = match notifier.kind {
            RawKind::Slack => match slack(&what, &notifier, problems) {
                Some(target) => (NotifierKind::Slack(target), 1.0),
                None => continue,
            },
            RawKind::Webhook => {
                let url = notifier.url.clone().unwrap_or_default();
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    problems.push(format!("{what}.url: give the URL to POST to, starting with https:// (or http://)"));
                }
                let hmac_secret = read_secret(
                    &format!("{what}.hmac_secret"),
                    notifier.hmac_secret_file.as_deref(),
                    notifier.hmac_secret_env.as_deref(),
                    problems,
                );
                for name in notifier.headers.keys() {
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        problems.push(format!("{what}.headers: {name:?} is not a valid header name"));
                    }
                }
                (NotifierKind::Webhook { url, hmac_secret, headers: notifier.headers.clone() }, 0.0)
            }
            RawKind::Email => {
                let smtp = notifier.smtp.take();
                match email::validate(&what, smtp, notifier.from.as_deref(), &notifier.to, &notifier.cc, problems) {
                    Some(config) => (NotifierKind::Email(Box::new(config)), 0.0),
                    None => continue,
                }
            }
            RawKind::Log => (NotifierKind::Log, 0.0),
        };
        let delivery = notifier;
        let rate = delivery.rate_per_second.unwrap_or(default_rate);
        if !(rate >= 0.0 && rate.is_finite()) {
            problems.push(format!("{what}.rate_per_second must be 0 (no limit) or more"));
        }
        let concurrency = delivery.concurrency.unwrap_or(2);
        if concurrency == 0 {
            problems.push(format!("{what}.concurrency must be at least 1"));
        }
        let delivery = Delivery {
            timeout_s: delivery.timeout.map_or(10, |s| s.0).max(1),
            concurrency: concurrency.max(1),
            min_interval_ms: if rate > 0.0 { (1000.0 / rate) as u64 } else { 0 },
            max_attempts: delivery.max_attempts.unwrap_or(12).max(1),
        };
        out.insert(name, NotifierConfig { kind, delivery });
    }
    out
}

/// The notifier used when none is configured: `log`.
pub(super) fn default_log() -> BTreeMap<String, NotifierConfig> {
    let log = NotifierConfig {
        kind: NotifierKind::Log,
        delivery: Delivery { timeout_s: 10, concurrency: 1, min_interval_ms: 0, max_attempts: 1 },
    };
    [("log".to_owned(), log)].into()
}

/// A slack notifier's target: a webhook URL, or a bot token with a channel.
fn slack(what: &str, notifier: &RawNotifier, problems: &mut Vec<String>) -> Option<SlackTarget> {
    let webhook = notifier.webhook_url_file.is_some() || notifier.webhook_url_env.is_some();
    let bot = notifier.bot_token_file.is_some() || notifier.bot_token_env.is_some();
    if webhook == bot {
        problems.push(format!(
            "{what}: set either webhook_url_file/_env (an incoming webhook) or bot_token_file/_env with a channel"
        ));
        return None;
    }
    if webhook {
        let secret = format!("{what}.webhook_url");
        if notifier.channel.is_some() || notifier.api_url.is_some() {
            problems
                .push(format!("{what}: channel and api_url go with a bot token; a webhook posts to its own channel"));
        }
        let url =
            read_secret(&secret, notifier.webhook_url_file.as_deref(), notifier.webhook_url_env.as_deref(), problems)?;
        if !url.expose().starts_with("http://") && !url.expose().starts_with("https://") {
            problems.push(format!("{secret}: the webhook URL must start with https:// (or http://)"));
            return None;
        }
        return Some(SlackTarget::Webhook { url });
    }
    let token = read_secret(
        &format!("{what}.bot_token"),
        notifier.bot_token_file.as_deref(),
        notifier.bot_token_env.as_deref(),
        problems,
    );
    if token.as_ref().is_some_and(|t| !t.expose().starts_with("xoxb-") && !t.expose().starts_with("xoxp-")) {
        problems.push(format!("{what}.bot_token: a Slack bot token starts with xoxb- (a user token with xoxp-)"));
    }
    let Some(channel) = notifier.channel.clone().filter(|c| !c.trim().is_empty()) else {
        problems.push(format!("{what}.channel: name the channel to post in by its ID (like C0123456789)"));
        return None;
    };
    let api_url = notifier.api_url.clone().unwrap_or_else(|| "https://slack.com/api".into());
    // The token goes in a header: plain HTTP only to this machine (a local proxy or test).
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    if !api_url.starts_with("https://") && !loopback.iter().any(|l| api_url.starts_with(l)) {
        problems.push(format!("{what}.api_url must start with https:// (plain http:// only to this machine)"));
    }
    Some(SlackTarget::Bot { token: token?, channel, api_url: api_url.trim_end_matches('/').to_owned() })
}
