//! `perfwatch push NAME VALUE…`: one metric from a shell script or cron job, e.g.
//! `perfwatch push backup_duration_seconds 42.5 --type timing -l job=backup`.

use super::{CliError, ServerArgs, send_json};

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Metric name.
    pub name: String,
    /// One or more values (timings in seconds; a counter's value is an increment).
    #[arg(required = true, allow_negative_numbers = true)]
    pub values: Vec<f64>,
    /// counter, gauge or timing.
    #[arg(long = "type", short = 't', default_value = "gauge")]
    pub kind: String,
    /// Labels as name=value; repeat for more.
    #[arg(long = "label", short = 'l')]
    pub labels: Vec<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Builds the JSON push body for the arguments (pure, for tests).
pub fn body(args: &PushArgs) -> Result<serde_json::Value, CliError> {
    let mut labels = serde_json::Map::new();
    for pair in &args.labels {
        let (name, value) =
            pair.split_once('=').ok_or_else(|| CliError::Usage(format!("label {pair:?} must be name=value")))?;
        labels.insert(name.to_owned(), value.into());
    }
    let entries: Vec<serde_json::Value> = match args.kind.as_str() {
        "timing" => {
            vec![serde_json::json!({"name": args.name, "type": "timing", "labels": labels, "values": args.values})]
        }
        "counter" | "gauge" => args
            .values
            .iter()
            .map(|v| serde_json::json!({"name": args.name, "type": args.kind, "labels": labels, "value": v}))
            .collect(),
        other => return Err(CliError::Usage(format!("--type {other:?}: use counter, gauge or timing"))),
    };
    Ok(serde_json::json!({ "metrics": entries }))
}

pub async fn run(args: PushArgs) -> Result<String, CliError> {
    let body = body(&args)?;
    let client = crate::http_client::client();
    let request = args.server.request(&client, reqwest::Method::POST, "/api/v1/push")?.json(&body);
    let answer = send_json(&args.server.url, request).await?;
    if let Some(reason) = answer["errors"].get(0).and_then(|e| e["reason"].as_str()) {
        return Err(CliError::Refused { status: 400, message: reason.to_owned() });
    }
    Ok(format!("accepted {}", answer["accepted"]))
}
