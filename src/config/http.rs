//! `http:` the listener, its tokens and the bounds on its connections.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Seconds, read_secret};
use crate::secret::Secret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawHttp {
    listen: SocketAddr,
    push_token_file: Option<PathBuf>,
    push_token_env: Option<String>,
    api_token_file: Option<PathBuf>,
    api_token_env: Option<String>,
    /// Serve a non-loopback address without tokens; off unless said explicitly.
    allow_unauthenticated: bool,
    /// How people reach this perfwatch, for links in notifications.
    public_url: Option<String>,
    /// Open connections at most; more are closed at once.
    max_connections: usize,
    /// How long a request's headers (and an idle keep-alive connection) may take.
    header_read_timeout: Seconds,
    /// How long a whole request, body included, may take to be answered.
    request_timeout: Seconds,
}

impl Default for RawHttp {
    fn default() -> RawHttp {
        RawHttp {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            push_token_file: None,
            push_token_env: None,
            api_token_file: None,
            api_token_env: None,
            allow_unauthenticated: false,
            public_url: None,
            max_connections: 10_000,
            header_read_timeout: Seconds(20),
            request_timeout: Seconds(60),
        }
    }
}

/// Bounds on the HTTP server's connections (see `api::server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_read_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
}

/// The `http:` section, validated.
pub(super) struct HttpSettings {
    pub listen: SocketAddr,
    pub limits: HttpLimits,
    pub push_token: Option<Secret>,
    pub api_token: Option<Secret>,
    pub public_url: Option<String>,
}

pub(super) fn validate(raw: RawHttp, problems: &mut Vec<String>) -> HttpSettings {
    let push_token =
        read_secret("http.push_token", raw.push_token_file.as_deref(), raw.push_token_env.as_deref(), problems);
    let api_token =
        read_secret("http.api_token", raw.api_token_file.as_deref(), raw.api_token_env.as_deref(), problems);
    if !raw.listen.ip().is_loopback() && (push_token.is_none() || api_token.is_none()) && !raw.allow_unauthenticated {
        problems.push(format!(
            "http.listen {} is not loopback but push and API tokens are not both set: set http.push_token_file and http.api_token_file (or *_env), or http.allow_unauthenticated: true",
            raw.listen
        ));
    }
    if let Some(url) = &raw.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        problems.push(format!("http.public_url {url:?} must start with https:// (or http://)"));
    }
    if raw.max_connections < 16 {
        problems.push(format!(
            "http.max_connections {} is too few to serve pushes, queries and health checks at once; allow at least 16",
            raw.max_connections
        ));
    }
    HttpSettings {
        listen: raw.listen,
        limits: HttpLimits {
            max_connections: raw.max_connections,
            header_read_timeout: std::time::Duration::from_secs(raw.header_read_timeout.0 as u64),
            request_timeout: std::time::Duration::from_secs(raw.request_timeout.0 as u64),
        },
        push_token,
        api_token,
        public_url: raw.public_url.map(|u| u.trim_end_matches('/').to_owned()),
    }
}
