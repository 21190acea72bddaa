//! The small clients behind `perfwatch push` and `perfwatch query`: they talk to a running
//! daemon's HTTP API and print what came back.

pub mod alerts;
pub mod gate;
pub mod notify;
pub mod oncall;
pub mod push;
pub mod query;

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error("cannot reach perfwatch at {url}: {source}; is the daemon running (perfwatch run)?")]
    Connect { url: String, source: reqwest::Error },
    #[error("perfwatch answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("cannot read the token file {path}: {source}")]
    TokenFile { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Usage(String),
}

/// Where the daemon is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Base URL of the daemon.
    #[arg(long, default_value = "http://127.0.0.1:9464", env = "PERFWATCH_URL")]
    pub url: String,
    /// File holding the bearer token (else $PERFWATCH_TOKEN, if set).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl ServerArgs {
    pub fn token(&self) -> Result<Option<String>, CliError> {
        if let Some(path) = &self.token_file {
            let text =
                std::fs::read_to_string(path).map_err(|source| CliError::TokenFile { path: path.clone(), source })?;
            return Ok(Some(text.trim().to_owned()));
        }
        Ok(std::env::var("PERFWATCH_TOKEN").ok().filter(|t| !t.is_empty()))
    }

    pub fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, CliError> {
        let request = client.request(method, format!("{}{path}", self.url.trim_end_matches('/')));
        Ok(match self.token()? {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
    }
}

/// Unix seconds as RFC 3339 UTC, for tables.
pub fn format_time(ts: i64) -> String {
    crate::clock::rfc3339(ts)
}

/// Sends `request` and returns the JSON body of a 2xx answer, or the daemon's error message.
pub async fn send_json(url: &str, request: reqwest::RequestBuilder) -> Result<serde_json::Value, CliError> {
    let response = request.send().await.map_err(|source| CliError::Connect { url: url.to_owned(), source })?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|source| CliError::Connect { url: url.to_owned(), source })?;
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let message = body.get("error").and_then(|e| e.as_str()).map(str::to_owned).unwrap_or_else(|| body.to_string());
    Err(CliError::Refused { status, message })
}
