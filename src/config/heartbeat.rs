//! `heartbeat:` the dead man's switch. perfwatch requests a URL (healthchecks.io, Dead Man's
//! Snitch, Cronitor, an Opsgenie or PagerDuty heartbeat) every interval while it is well; the
//! service there pages when the requests stop, which covers perfwatch being down, stuck,
//! unable to store or unable to page.
//!
//! ```yaml
//! heartbeat:
//!   url_file: /etc/perfwatch/heartbeat-url   # or url_env; the URL usually holds a secret
//!   interval: 1m
//!   timeout: 10s
//!   method: GET                              # or POST (the body says "ok")
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Seconds, read_secret};
use crate::secret::Secret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHeartbeat {
    url_file: Option<PathBuf>,
    url_env: Option<String>,
    interval: Seconds,
    timeout: Seconds,
    method: String,
}

impl Default for RawHeartbeat {
    fn default() -> RawHeartbeat {
        RawHeartbeat {
            url_file: None,
            url_env: None,
            interval: Seconds(60),
            timeout: Seconds(10),
            method: "GET".into(),
        }
    }
}

/// A validated heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    pub url: Secret,
    pub interval: Duration,
    pub timeout: Duration,
    /// POST rather than GET.
    pub post: bool,
}

/// The heartbeat, if `heartbeat:` is configured; mistakes go to `problems`.
pub(super) fn validate(raw: Option<RawHeartbeat>, problems: &mut Vec<String>) -> Option<HeartbeatConfig> {
    let raw = raw?;
    let url = read_secret("heartbeat.url", raw.url_file.as_deref(), raw.url_env.as_deref(), problems);
    if url.is_none() && raw.url_file.is_none() && raw.url_env.is_none() {
        problems.push("heartbeat: set url_file (or url_env) to the URL to request while perfwatch is well".into());
    }
    if let Some(url) = &url
        && !(url.expose().starts_with("https://") || url.expose().starts_with("http://"))
    {
        problems.push("heartbeat.url must start with https:// (or http://)".into());
    }
    let post = match raw.method.to_ascii_uppercase().as_str() {
        "GET" => false,
        "POST" => true,
        other => {
            problems.push(format!("heartbeat.method {other:?} must be GET or POST"));
            false
        }
    };
    if raw.timeout.0 >= raw.interval.0 {
        problems.push(format!(
            "heartbeat.timeout ({}s) must be shorter than heartbeat.interval ({}s)",
            raw.timeout.0, raw.interval.0
        ));
    }
    Some(HeartbeatConfig {
        url: url?,
        interval: Duration::from_secs(raw.interval.0 as u64),
        timeout: Duration::from_secs(raw.timeout.0 as u64),
        post,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn a_heartbeat_needs_a_url_and_a_timeout_shorter_than_its_interval() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "https://hc-ping.com/5a1b\n").unwrap();
        let good = format!("heartbeat:\n  url_file: {}\n  interval: 30s\n", url.display());
        let heartbeat = Config::parse(&good, "t.yaml").unwrap().heartbeat.expect("configured");
        assert_eq!(
            (heartbeat.url.expose(), heartbeat.interval.as_secs(), heartbeat.post),
            ("https://hc-ping.com/5a1b", 30, false)
        );
        assert!(Config::parse("{}", "t.yaml").unwrap().heartbeat.is_none(), "off unless configured");

        let missing = Config::parse("heartbeat:\n  interval: 1m\n", "t.yaml").unwrap_err().to_string();
        assert!(missing.contains("heartbeat: set url_file (or url_env)"), "{missing}");
        let slow =
            format!("heartbeat:\n  url_file: {}\n  interval: 10s\n  timeout: 10s\n  method: PUT\n", url.display());
        let slow = Config::parse(&slow, "t.yaml").unwrap_err().to_string();
        assert!(slow.contains("heartbeat.timeout (10s) must be shorter than heartbeat.interval (10s)"), "{slow}");
        assert!(slow.contains("heartbeat.method \"PUT\" must be GET or POST"), "{slow}");
    }
}
