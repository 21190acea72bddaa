//! `perfwatch query METRIC --stat p99`: reads the query API and prints a table.

use std::fmt::Write as _;

use super::{CliError, ServerArgs, send_json};

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// A selector: name or name{label="value",other=~"re.*"}.
    pub metric: String,
    /// count, sum, avg, min, max, last, rate or a quantile such as p99.
    #[arg(long, short, default_value = "p99")]
    pub stat: String,
    #[arg(long, default_value = "-1h", allow_hyphen_values = true)]
    pub from: String,
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// One row per step (e.g. 1m); without it one row per series for the whole window.
    #[arg(long)]
    pub step: Option<String>,
    /// Merge series per these labels (comma-separated; empty merges all).
    #[arg(long)]
    pub group_by: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(args: QueryArgs) -> Result<String, CliError> {
    let mut params = vec![("metric", args.metric.clone()), ("stat", args.stat.clone()), ("from", args.from.clone())];
    params.extend(args.to.clone().map(|v| ("to", v)));
    params.extend(args.step.clone().map(|v| ("step", v)));
    params.extend(args.group_by.clone().map(|v| ("group_by", v)));
    let client = crate::http_client::client();
    let request = args.server.request(&client, reqwest::Method::GET, "/api/v1/query")?.query(&params);
    let answer = send_json(&args.server.url, request).await?;
    Ok(table(&answer, &args.stat))
}

/// Renders a query answer as aligned columns: labels, time (UTC), value.
pub fn table(answer: &serde_json::Value, stat: &str) -> String {
    let mut rows: Vec<[String; 3]> = vec![["SERIES".into(), "TIME (UTC)".into(), stat.to_uppercase()]];
    for series in answer["series"].as_array().into_iter().flatten() {
        let labels = series["labels"]
            .as_object()
            .map(|map| {
                map.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join(",")
            })
            .unwrap_or_default();
        for point in series["points"].as_array().into_iter().flatten() {
            let ts = point[0].as_i64().unwrap_or_default();
            let time = super::format_time(ts);
            let value = point[1].as_f64().map_or_else(String::new, format_value);
            rows.push([format!("{{{labels}}}"), time, value]);
        }
    }
    if rows.len() == 1 {
        return "no data in that window".into();
    }
    let widths: Vec<usize> = (0..3).map(|col| rows.iter().map(|r| r[col].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>w2$}",
            row[0],
            row[1],
            row[2],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    out
}

pub fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.6}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_rows() {
        let answer = serde_json::json!({"series": [
            {"labels": {"tier": "l1"}, "points": [[1764000000, 0.25]]},
            {"labels": {"tier": "l2"}, "points": [[1764000000, 12.0]]}]});
        let text = table(&answer, "p99");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("SERIES") && lines[0].ends_with("P99"), "{text}");
        assert!(
            lines[1].contains("{tier=l1}")
                && lines[1].contains("2025-11-24T16:00:00Z")
                && lines[1].ends_with("0.250000")
        );
        assert!(lines[2].ends_with("12"), "{text}");
        assert_eq!(table(&serde_json::json!({"series": []}), "p99"), "no data in that window");
    }
}
