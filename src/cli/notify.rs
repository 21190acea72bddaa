//! `perfwatch notify test NAME` (send a test notification and wait for the verdict) and
//! `perfwatch notifications` (the outbox as a table).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{CliError, ServerArgs, format_time, send_json};

#[derive(Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// Send a test notification through NAME and wait until it is delivered or fails.
    Test {
        name: String,
        /// Who is testing (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Give up waiting after this long (the notification stays queued).
        #[arg(long, default_value = "60s", value_parser = crate::query::time::parse_std_duration)]
        wait: Duration,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct NotificationsArgs {
    #[arg(long)]
    pub notifier: Option<String>,
    /// pending, sending, sent or failed.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn notify(command: NotifyCommand) -> Result<String, CliError> {
    let NotifyCommand::Test { name, by, wait, server } = command;
    let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "perfwatch".into());
    let client = crate::http_client::client();
    let request = server
        .request(&client, reqwest::Method::POST, &format!("/api/v1/notifiers/{name}/test"))?
        .json(&json!({ "by": by }));
    let queued = send_json(&server.url, request).await?;
    let id = queued["id"].as_str().unwrap_or_default().to_owned();
    eprintln!("queued {id} for {name}; waiting for delivery…");
    let started = Instant::now();
    loop {
        let request = server.request(&client, reqwest::Method::GET, &format!("/api/v1/notifications/{id}"))?;
        let body = send_json(&server.url, request).await?;
        let n = &body["notification"];
        match n["status"].as_str() {
            Some("sent") => return Ok(format!("delivered to {name} after {} attempt(s)", n["attempts"])),
            Some("failed") => {
                return Err(CliError::Usage(format!(
                    "{name} refused the test notification: {}",
                    n["last_error"].as_str().unwrap_or("no reason given")
                )));
            }
            _ if started.elapsed() >= wait => {
                return Err(CliError::Usage(format!(
                    "not delivered after {wait:?} ({} attempt(s), last error: {}); it stays queued — see perfwatch notifications",
                    n["attempts"],
                    n["last_error"].as_str().unwrap_or("none")
                )));
            }
            _ => {
                if let Some(error) = n["last_error"].as_str() {
                    eprintln!("attempt {} failed: {error}; retrying…", n["attempts"]);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

pub async fn list(args: NotificationsArgs) -> Result<String, CliError> {
    let mut params = vec![("limit", args.limit.to_string())];
    params.extend(args.notifier.clone().map(|v| ("notifier", v)));
    params.extend(args.status.clone().map(|v| ("status", v)));
    let client = crate::http_client::client();
    let request = args.server.request(&client, reqwest::Method::GET, "/api/v1/notifications")?.query(&params);
    let answer = send_json(&args.server.url, request).await?;
    Ok(table(&answer))
}

fn table(answer: &Value) -> String {
    let rows = answer["notifications"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return "no notifications".into();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<16} {:<10} {:<8} {:>8}  {:<20}  LAST ERROR",
        "ID", "NOTIFIER", "KIND", "STATUS", "ATTEMPTS", "CREATED (UTC)"
    );
    for n in rows {
        let _ = writeln!(
            out,
            "{:<24} {:<16} {:<10} {:<8} {:>8}  {:<20}  {}",
            n["id"].as_str().unwrap_or_default(),
            n["notifier"].as_str().unwrap_or_default(),
            n["kind"].as_str().unwrap_or_default(),
            n["status"].as_str().unwrap_or_default(),
            n["attempts"].as_i64().unwrap_or_default(),
            format_time(n["created"].as_i64().unwrap_or_default()),
            n["last_error"].as_str().unwrap_or("")
        );
    }
    out
}
