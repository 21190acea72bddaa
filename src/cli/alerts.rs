//! `perfwatch alerts`, `perfwatch ack` and `perfwatch silence`: the alerts API from a shell.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{CliError, ServerArgs, format_time, send_json};

#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    /// pending, firing, inactive or all (default: pending and firing).
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub severity: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Args)]
pub struct AckArgs {
    /// The alert id (from `perfwatch alerts`).
    pub id: String,
    /// Who acknowledges (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Take the acknowledgement back.
    #[arg(long)]
    pub undo: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum SilenceCommand {
    /// Silence alerts whose labels match, e.g. --match '{team="platform",severity="critical"}'.
    Add {
        #[arg(long = "match")]
        matchers: String,
        /// How long, e.g. 2h (or give --ends-at).
        #[arg(long)]
        duration: Option<String>,
        #[arg(long)]
        ends_at: Option<String>,
        #[arg(long)]
        author: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Active and future silences (--all for ended ones too).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// End a silence now.
    Expire {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn list(args: AlertsArgs) -> Result<String, CliError> {
    let mut params = Vec::new();
    params.extend(args.state.map(|s| ("state", s)));
    params.extend(args.severity.map(|s| ("severity", s)));
    let client = crate::http_client::client();
    let request = args.server.request(&client, reqwest::Method::GET, "/api/v1/alerts")?.query(&params);
    let answer = send_json(&args.server.url, request).await?;
    Ok(alerts_table(&answer))
}

/// Renders `/api/v1/alerts` as aligned columns.
pub fn alerts_table(answer: &Value) -> String {
    let alerts = answer["alerts"].as_array().cloned().unwrap_or_default();
    if alerts.is_empty() {
        return "no alerts".into();
    }
    let mut rows = vec![["ID", "STATE", "SEVERITY", "ALERT", "VALUE", "SINCE", "MARKS", "LABELS"].map(String::from)];
    for alert in &alerts {
        let labels = alert["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| *k != "alertname")
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let mut marks = Vec::new();
        if let Some(by) = alert["acked"]["by"].as_str() {
            marks.push(format!("acked by {by}"));
        }
        if alert["silenced"].as_bool() == Some(true) {
            marks.push("silenced".to_owned());
        }
        let since =
            alert["firing_since"].as_i64().or(alert["pending_since"].as_i64()).map(format_time).unwrap_or_default();
        rows.push([
            text(&alert["id"]),
            text(&alert["state"]),
            text(&alert["severity"]),
            text(&alert["rule"]),
            alert["value"].as_f64().map(|v| format!("{v:.4}")).unwrap_or_default(),
            since,
            marks.join(", "),
            labels,
        ]);
    }
    let widths: Vec<usize> = (0..8).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        for (col, cell) in row.iter().enumerate() {
            let _ = write!(out, "{cell:<width$}  ", width = widths[col]);
        }
        out = out.trim_end().to_owned();
        out.push('\n');
    }
    out
}

pub async fn ack(args: AckArgs) -> Result<String, CliError> {
    let client = crate::http_client::client();
    let (path, body) = if args.undo {
        (format!("/api/v1/alerts/{}/unack", args.id), json!({}))
    } else {
        let by = args
            .by
            .or_else(|| std::env::var("USER").ok())
            .ok_or_else(|| CliError::Usage("say who acknowledges with --by".into()))?;
        (format!("/api/v1/alerts/{}/ack", args.id), json!({"by": by, "comment": args.comment}))
    };
    let request = args.server.request(&client, reqwest::Method::POST, &path)?.json(&body);
    send_json(&args.server.url, request).await?;
    Ok(if args.undo {
        format!("{}: acknowledgement taken back", args.id)
    } else {
        format!("{}: acknowledged", args.id)
    })
}

pub async fn silence(command: SilenceCommand) -> Result<String, CliError> {
    let client = crate::http_client::client();
    match command {
        SilenceCommand::Add { matchers, duration, ends_at, author, comment, server } => {
            let author = author
                .or_else(|| std::env::var("USER").ok())
                .ok_or_else(|| CliError::Usage("say who silences with --author".into()))?;
            let mut body = json!({"match": matchers, "author": author, "comment": comment});
            if let Some(duration) = duration {
                body["duration"] = json!(duration);
            }
            if let Some(ends_at) = ends_at {
                body["ends_at"] = json!(ends_at);
            }
            let request = server.request(&client, reqwest::Method::POST, "/api/v1/silences")?.json(&body);
            let answer = send_json(&server.url, request).await?;
            Ok(format!("silence {} created", text(&answer["id"])))
        }
        SilenceCommand::List { all, server } => {
            let request =
                server.request(&client, reqwest::Method::GET, "/api/v1/silences")?.query(&[("all", all.to_string())]);
            let answer = send_json(&server.url, request).await?;
            let silences = answer["silences"].as_array().cloned().unwrap_or_default();
            if silences.is_empty() {
                return Ok("no silences".into());
            }
            Ok(silences
                .iter()
                .map(|s| {
                    format!(
                        "{}  {}  until {}  by {}  {}  {}",
                        text(&s["id"]),
                        if s["active"].as_bool() == Some(true) { "active" } else { "inactive" },
                        s["ends_at"].as_i64().map(format_time).unwrap_or_default(),
                        text(&s["author"]),
                        text(&s["match"]),
                        text(&s["comment"])
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        SilenceCommand::Expire { id, server } => {
            let request = server.request(&client, reqwest::Method::DELETE, &format!("/api/v1/silences/{id}"))?;
            send_json(&server.url, request).await?;
            Ok(format!("silence {id} ended"))
        }
    }
}

fn text(value: &Value) -> String {
    value.as_str().map(str::to_owned).unwrap_or_default()
}
