//! `perfwatch gate --rules FILE…`: the deploy gate. Evaluates rules once against a running
//! perfwatch (`--url`) or a database file (`--db`) and says whether any would fire, so a
//! pipeline can roll a release back. Exit 0: pass; 1: a rule would fire (or has no data, with
//! `--require-data`); 2: the gate could not judge (unreachable daemon, bad rule file, …).

use std::fmt::Write as _;
use std::path::PathBuf;

use super::query::format_value;
use super::{CliError, ServerArgs, format_time, send_json};
use crate::query::time::parse_time;
use crate::query::view::with_view;
use crate::rules::gate::{GateReport, Outcome};
use crate::{clock, rules, store};

#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Rule files to judge by (globs allowed).
    #[arg(long, required = true, num_args = 1..)]
    pub rules: Vec<String>,
    /// Read this database file (a daemon's storage.path) instead of asking a running daemon.
    #[arg(long, conflicts_with = "url")]
    pub db: Option<PathBuf>,
    /// When to judge: RFC 3339, unix seconds, now, or relative such as -10m.
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    pub at: String,
    /// Fail also when a rule has nothing to judge (no samples, or fewer than min_samples).
    #[arg(long)]
    pub require_data: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// What the gate printed and whether the release passes.
pub struct GateVerdict {
    pub text: String,
    pub pass: bool,
}

pub async fn run(args: GateArgs) -> Result<GateVerdict, CliError> {
    let paths = rules::rule_test::files(&args.rules).map_err(CliError::Usage)?;
    let report = match &args.db {
        Some(db) => judge_file(db, &paths, &args.at).await?,
        None => judge_remote(&args.server, &paths, &args.at).await?,
    };
    Ok(render(&report, args.require_data))
}

/// Against a database file, in this process.
async fn judge_file(db: &std::path::Path, paths: &[PathBuf], at: &str) -> Result<GateReport, CliError> {
    let at_s = parse_time(at, clock::now_s()).map_err(|e| CliError::Usage(format!("--at: {e}")))?;
    let mut groups = Vec::new();
    for path in paths {
        let mut loaded = rules::load_file(path, None)
            .map_err(|errors| CliError::Usage(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")))?;
        groups.append(&mut loaded);
    }
    let reader = store::open_history(db).map_err(|e| CliError::Usage(e.to_string()))?;
    with_view(&reader, None, None, &[], move |view| rules::gate::evaluate(&groups, at_s, view))
        .await
        .map_err(|e| CliError::Usage(format!("reading {}: {e}", db.display())))
}

/// Against a running daemon: the files go to `POST /api/v1/gate`, so memory not yet flushed
/// counts too.
async fn judge_remote(server: &ServerArgs, paths: &[PathBuf], at: &str) -> Result<GateReport, CliError> {
    let mut files = Vec::new();
    for path in paths {
        let content = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("{}: cannot read: {e}", path.display())))?;
        files.push(serde_json::json!({ "name": path.display().to_string(), "content": content }));
    }
    let client = crate::http_client::client();
    let request = server
        .request(&client, reqwest::Method::POST, "/api/v1/gate")?
        .json(&serde_json::json!({ "files": files, "at": at }));
    let answer = send_json(&server.url, request).await?;
    serde_json::from_value(answer).map_err(|e| {
        CliError::Usage(format!("the daemon's answer is not a gate report ({e}); is it the same version?"))
    })
}

/// One line per rule, the alerts of firing and pending rules under it, and a summary.
pub fn render(report: &GateReport, require_data: bool) -> GateVerdict {
    let mut out = String::new();
    for rule in &report.rules {
        let tag = match rule.outcome {
            Outcome::Firing => "FIRING",
            Outcome::Pending => "pending",
            Outcome::Ok => "ok",
            Outcome::NoData if require_data => "NO DATA",
            Outcome::NoData => "no data",
        };
        let _ = write!(out, "{tag:<8} {}/{}", rule.group, rule.rule);
        match rule.outcome {
            Outcome::Ok => {
                let _ = writeln!(out, " ({} measured)", rule.measured);
            }
            Outcome::NoData => {
                let _ = writeln!(out, " ({}: nothing to judge in the window)", rule.location);
            }
            Outcome::Firing | Outcome::Pending => {
                let _ = writeln!(out, " ({})", rule.location);
            }
        }
        for alert in &rule.alerts {
            let labels: Vec<String> = alert
                .labels
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity"))
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            let value = alert.value.map_or("-".into(), format_value);
            let threshold = alert.threshold.map_or("-".into(), format_value);
            let comparison = match rule.condition.as_str() {
                "absent" => "no data".to_owned(),
                direction => format!("value {value} {direction} threshold {threshold}"),
            };
            let _ =
                writeln!(out, "         {} {} {{{}}}: {comparison}", alert.state, alert.severity, labels.join(", "));
            for (name, text) in &alert.annotations {
                let _ = writeln!(out, "           {name}: {text}");
            }
        }
    }
    let n_firing = report.firing().count();
    let n_no_data = report.rules.iter().filter(|r| r.outcome == Outcome::NoData).count();
    let pass = n_firing == 0 && !(require_data && n_no_data > 0);
    let _ = write!(
        out,
        "gate at {}: {n_firing} of {} rules would fire, {n_no_data} had no data: {}",
        format_time(report.at_s),
        report.rules.len(),
        if pass { "pass" } else { "FAIL" }
    );
    GateVerdict { text: out, pass }
}
