//! `perfwatch test-rules`: rule unit tests in YAML, run without a daemon or a database. Input
//! series (promtool notation) become per-interval rollups in memory, served to the same
//! evaluation and state machine the daemon uses; at each `eval_time` the pending and firing
//! alerts of a rule are compared with the expected ones, and a mismatch prints both.
//!
//! ```yaml
//! rule_files: [../api.yaml]          # relative to this file
//! tests:
//!   - name: slow vendor page pages on-call
//!     interval: 10s                  # spacing of the input samples
//!     input_series:
//!       - series: 'api_request_duration_seconds{endpoint="/vendors/:id"}'
//!         type: timing               # timing (default), counter (values are totals), gauge
//!         values: '0.05x30 0.4x30'
//!     alert_rule_test:
//!       - eval_time: 8m
//!         alertname: ApiP99High
//!         exp_alerts:
//!           - labels: {endpoint: /vendors/:id, severity: critical}
//!             annotations: {summary: "…"}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::eval::GroupData;
use super::replay::{self, Replay};
use super::rule::{Group, Rule};
use super::series::expand;
use crate::aggregate::rollup::Rollup;
use crate::alert::state::Instance;
use crate::config::Seconds;
use crate::model::{Labels, MetricKind};
use crate::query::selector::Selector;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: Option<Seconds>,
    tests: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    #[serde(default)]
    name: String,
    interval: Option<Seconds>,
    input_series: Vec<InputSeries>,
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(rename = "type", default = "default_type")]
    kind: String,
    values: String,
}

fn default_type() -> String {
    "timing".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: Seconds,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord, Clone)]
#[serde(deny_unknown_fields)]
struct ExpectedAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    /// `firing` unless said.
    #[serde(default = "firing")]
    state: String,
}

fn firing() -> String {
    "firing".into()
}

/// One input series expanded: its name, labels, kind and samples.
struct Series {
    name: String,
    labels: Labels,
    kind: MetricKind,
    values: Vec<Option<f64>>,
}

/// The outcome of one file: lines to print, and how many checks failed.
pub struct FileReport {
    pub lines: Vec<String>,
    pub n_failed: usize,
    pub n_passed: usize,
}

/// Runs every test in the file at `path`.
pub fn run_file(path: &Path) -> Result<FileReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let file: TestFile = serde_yaml_ng::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        format!("{}:{line}:{column}: {e}", path.display())
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut groups = Vec::new();
    for rule_file in &file.rule_files {
        let rule_path: PathBuf = base.join(rule_file);
        let mut loaded = super::load_file(&rule_path, None)
            .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))?;
        groups.append(&mut loaded);
    }
    let mut report = FileReport { lines: Vec::new(), n_failed: 0, n_passed: 0 };
    for (idx, case) in file.tests.iter().enumerate() {
        let name = if case.name.is_empty() { format!("test {}", idx + 1) } else { case.name.clone() };
        let eval_every = file.evaluation_interval.map(|s| s.0);
        match run_case(case, &groups, eval_every) {
            Ok(failures) if failures.is_empty() => {
                report.n_passed += 1;
                report.lines.push(format!("PASS {}: {name}", path.display()));
            }
            Ok(failures) => {
                report.n_failed += 1;
                report.lines.push(format!("FAIL {}: {name}", path.display()));
                report.lines.extend(failures);
            }
            Err(message) => {
                report.n_failed += 1;
                report.lines.push(format!("FAIL {}: {name}: {message}", path.display()));
            }
        }
    }
    Ok(report)
}

/// Runs one case; returns a description of each mismatch.
fn run_case(case: &TestCase, groups: &[Group], eval_every: Option<i64>) -> Result<Vec<String>, String> {
    let interval = case.interval.map_or(60, |s| s.0);
    let series = case
        .input_series
        .iter()
        .map(|input| {
            let selector = Selector::parse(&input.series).map_err(|e| format!("series {:?}: {e}", input.series))?;
            let labels = Labels::new(selector.matchers.iter().map(|m| (m.label.clone(), m.value.clone())).collect());
            let kind = MetricKind::parse(&input.kind)
                .ok_or_else(|| format!("type {:?}: use timing, counter or gauge", input.kind))?;
            Ok(Series { name: selector.name, labels, kind, values: expand(&input.values)? })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let end = case.alert_rule_test.iter().map(|t| t.eval_time.0).max().unwrap_or(0);
    let mut checks: BTreeMap<i64, Vec<&AlertTest>> = BTreeMap::new();
    for check in &case.alert_rule_test {
        checks.entry(check.eval_time.0).or_default().push(check);
    }
    let mut replay = Replay::default();
    let mut failures = Vec::new();
    let mut fetch = |selector: &Selector, from: i64, to: i64, group_by: &[String]| {
        Ok::<_, String>(fetch_series(&series, interval, selector, from, to, group_by))
    };
    let rules: Vec<&Rule> = groups.iter().flat_map(|g| g.rules.iter()).collect();
    // Evaluate every group on its own interval (or the file's) from 0 to the last eval_time,
    // plus exactly at each eval_time.
    let mut times: Vec<i64> = checks.keys().copied().collect();
    for group in groups {
        let every = eval_every.unwrap_or(group.interval_s).max(1);
        times.extend((0..=end).step_by(every as usize));
    }
    times.sort_unstable();
    times.dedup();
    for now in times {
        for group in groups {
            replay.evaluate(group, now, &mut fetch)?;
        }
        for check in checks.get(&now).into_iter().flatten() {
            let Some(rule) = rules.iter().find(|r| r.name == check.alertname) else {
                failures.push(format!("  at {now}s: no rule named {:?} in the rule files", check.alertname));
                continue;
            };
            let mut got: Vec<ExpectedAlert> = replay
                .active()
                .filter(|(key, _)| key.rule == rule.name)
                .map(|(key, instance)| describe(rule, &key.labels, instance))
                .collect();
            // Annotations are compared when the test gives some (a p99 in an annotation is
            // a sketch estimate, which a test may not want to spell out).
            if check.exp_alerts.iter().all(|a| a.annotations.is_empty()) {
                got.iter_mut().for_each(|a| a.annotations.clear());
            }
            got.sort();
            let mut want = check.exp_alerts.clone();
            want.sort();
            if got != want {
                failures.push(format!(
                    "  at {now}s, alert {}:\n    expected: {}\n    got:      {}",
                    check.alertname,
                    show(&want),
                    show(&got)
                ));
            }
        }
    }
    Ok(failures)
}

/// Merged rollups per group over `[from, to)` from the expanded input.
fn fetch_series(
    series: &[Series],
    interval: i64,
    selector: &Selector,
    from: i64,
    to: i64,
    group_by: &[String],
) -> Vec<GroupData> {
    let mut groups: BTreeMap<Labels, GroupData> = BTreeMap::new();
    for s in series.iter().filter(|s| s.name == selector.name && selector.matches(&s.labels)) {
        let mut rollup = Rollup::empty(s.kind == MetricKind::Timing);
        // Only the window's samples (and, for counter increases, the one before it).
        let first = usize::try_from(from.div_euclid(interval)).unwrap_or(0).min(s.values.len());
        let last = usize::try_from((to + interval - 1).div_euclid(interval)).unwrap_or(0).min(s.values.len());
        let mut previous: Option<f64> = s.values[..first].iter().rev().find_map(|v| *v);
        for (idx, value) in s.values.iter().enumerate().take(last).skip(first) {
            let t = idx as i64 * interval;
            let Some(value) = *value else { continue };
            // Counter values are totals, as Prometheus writes them: the increase counts.
            let delta = match previous {
                Some(p) if value >= p => value - p,
                _ => value,
            };
            previous = Some(value);
            if t < from || t >= to {
                continue;
            }
            match s.kind {
                MetricKind::Counter => rollup.increment(delta, t * 1000),
                _ => rollup.observe(value, 1.0, t * 1000),
            }
        }
        if rollup.count == 0.0 {
            continue;
        }
        let labels = s.labels.project(group_by);
        match groups.get_mut(&labels) {
            Some(group) => group.rollup.merge(&rollup),
            None => {
                groups.insert(labels.clone(), GroupData { labels, rollup, kind: s.kind });
            }
        }
    }
    groups.into_values().collect()
}

fn describe(rule: &Rule, group_labels: &Labels, instance: &Instance) -> ExpectedAlert {
    let (mut labels, annotations) = replay::describe(rule, group_labels, instance);
    labels.remove("alertname");
    ExpectedAlert { labels, annotations, state: instance.state.as_str().to_owned() }
}

fn show(alerts: &[ExpectedAlert]) -> String {
    if alerts.is_empty() {
        return "(none)".into();
    }
    alerts
        .iter()
        .map(|a| format!("{} {:?} {:?}", a.state, a.labels, a.annotations))
        .collect::<Vec<_>>()
        .join("\n              ")
}

/// Test files named by `patterns` (globs), in order.
pub fn files(patterns: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for pattern in patterns {
        let matched: Vec<PathBuf> =
            glob::glob(pattern).map_err(|e| format!("{pattern}: {e}"))?.filter_map(Result::ok).collect();
        if matched.is_empty() {
            return Err(format!("{pattern}: no file matches"));
        }
        out.extend(matched);
    }
    Ok(out)
}
