//! Rule files → validated groups, every mistake reported as `file:line:column: message` with
//! what to write instead. Field-level checks (durations, selectors, stats, templates, severity
//! names) run while the YAML is read, so the parser points at the value; checks across fields
//! are placed at the rule (or the key) by `locate`, from the YAML parser's spans.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use super::locate::{Position, Positions};
use super::rule::{Condition, Direction, Group, Location, Measure, Rule};
use super::template::Template;
use crate::config::{Delay, Seconds};
use crate::model::Severity;
use crate::query::selector::Selector;
use crate::query::stat::Stat;

/// One mistake in a rule file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{location}: {message}")]
pub struct RuleError {
    pub location: Location,
    pub message: String,
}

/// Deserializes a string through `parse`, failing inside the visitor so the YAML parser
/// reports the value's own line and column.
fn parse_str<'de, D, T>(deserializer: D, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct StrVisitor<F>(F);

    impl<T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'_> for StrVisitor<F> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.0)(text).map_err(E::custom)
        }
    }

    deserializer.deserialize_str(StrVisitor(parse))
}

/// A selector checked while the YAML is read.
#[derive(Debug, Clone)]
struct SelectorField(Selector);

impl<'de> Deserialize<'de> for SelectorField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_str(deserializer, |text| {
            Selector::parse(text)
                .map(SelectorField)
                .map_err(|e| format!("bad selector {text:?}: {e}; write name{{label=\"value\"}}"))
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct StatField(Stat);

impl<'de> Deserialize<'de> for StatField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_str(deserializer, |text| Stat::parse(text).map(StatField).map_err(|e| e.to_string()))
    }
}

#[derive(Debug, Clone)]
struct TemplateField(Template);

impl<'de> Deserialize<'de> for TemplateField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_str(deserializer, |text| Template::parse(text).map(TemplateField).map_err(|e| e.to_string()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    interval: Option<Seconds>,
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevels {
    warning: f64,
    critical: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRatio {
    numerator: SelectorField,
    denominator: SelectorField,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegression {
    offset: Seconds,
    factor: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    alert: String,
    metric: Option<SelectorField>,
    stat: Option<StatField>,
    window: Option<Seconds>,
    #[serde(default)]
    group_by: Vec<String>,
    above: Option<f64>,
    below: Option<f64>,
    levels: Option<RawLevels>,
    direction: Option<Direction>,
    resolve_at: Option<f64>,
    ratio: Option<RawRatio>,
    regression: Option<RawRegression>,
    #[serde(default)]
    absent: bool,
    min_samples: Option<f64>,
    #[serde(rename = "for")]
    for_: Option<Delay>,
    keep_firing_for: Option<Delay>,
    severity: Option<Severity>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, TemplateField>,
    route: Option<String>,
}

/// Default evaluation interval of a group.
pub const DEFAULT_INTERVAL_S: i64 = 30;
/// Default window of a rule.
pub const DEFAULT_WINDOW_S: i64 = 300;

/// Every file matching `patterns` (globs; a plain path must exist), parsed and validated.
/// `routes`, when given, are the route names rules may name.
pub fn load_patterns(patterns: &[String], routes: Option<&[String]>) -> Result<Vec<Group>, Vec<RuleError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        let is_glob = pattern.contains(['*', '?', '[']);
        match glob::glob(pattern) {
            Ok(paths) => {
                let mut matched: Vec<_> = paths.filter_map(Result::ok).collect();
                matched.sort();
                if matched.is_empty() && !is_glob {
                    errors.push(file_error(pattern, "no such rule file; check rules.paths or the path given"));
                }
                files.extend(matched);
            }
            Err(e) => errors.push(file_error(pattern, &format!("bad glob pattern: {e}"))),
        }
    }
    let mut groups = Vec::new();
    for file in files {
        match load_file(&file, routes) {
            Ok(mut file_groups) => groups.append(&mut file_groups),
            Err(mut file_errors) => errors.append(&mut file_errors),
        }
    }
    if errors.is_empty() { Ok(groups) } else { Err(errors) }
}

pub fn load_file(path: &Path, routes: Option<&[String]>) -> Result<Vec<Group>, Vec<RuleError>> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![file_error(&origin, &format!("cannot read: {e}"))])?;
    parse(&text, &origin, routes)
}

/// Parses and validates one file's `text`; `origin` names it in messages.
pub fn parse(text: &str, origin: &str, routes: Option<&[String]>) -> Result<Vec<Group>, Vec<RuleError>> {
    let raw: RawFile = serde_yaml_ng::from_str(text).map_err(|err| {
        let (line, column) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
        let message = err.to_string();
        let message = message.rfind(" at line ").map_or(message.clone(), |idx| message[..idx].to_owned());
        vec![RuleError { location: Location { file: origin.to_owned(), line, column }, message }]
    })?;
    let positions = Positions::read(text);
    let location = |at: Option<Position>| {
        let (line, column) = at.unwrap_or((1, 1));
        Location { file: origin.to_owned(), line, column }
    };
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut group_names = HashSet::new();
    for (g, raw_group) in raw.groups.into_iter().enumerate() {
        let group_at = positions.group(g);
        if !group_names.insert(raw_group.name.clone()) {
            errors.push(RuleError {
                location: location(group_at),
                message: format!("group {:?} is defined twice in this file; rename one", raw_group.name),
            });
        }
        let mut rule_names = HashSet::new();
        let mut rules = Vec::new();
        for (r, raw_rule) in raw_group.rules.into_iter().enumerate() {
            let at = |key: Option<&str>| location(positions.rule(g, r, key).or(group_at));
            if !rule_names.insert(raw_rule.alert.clone()) {
                errors.push(RuleError {
                    location: at(None),
                    message: format!(
                        "alert {:?} appears twice in group {:?}; rename one",
                        raw_rule.alert, raw_group.name
                    ),
                });
                continue;
            }
            match validate(raw_rule, &raw_group.name, routes, &at) {
                Ok(rule) => rules.push(rule),
                Err(mut rule_errors) => errors.append(&mut rule_errors),
            }
        }
        groups.push(Group {
            name: raw_group.name,
            interval_s: raw_group.interval.map_or(DEFAULT_INTERVAL_S, |s| s.0),
            rules,
        });
    }
    if errors.is_empty() { Ok(groups) } else { Err(errors) }
}

/// One rule's mistakes, each placed at the rule or at one of its keys.
struct Problems<'a> {
    at: &'a dyn Fn(Option<&str>) -> Location,
    errors: Vec<RuleError>,
}

impl Problems<'_> {
    fn add(&mut self, key: Option<&str>, message: impl Into<String>) {
        self.errors.push(RuleError { location: (self.at)(key), message: message.into() });
    }
}

/// A raw rule → a rule, or every mistake in it.
fn validate(
    raw: RawRule,
    group: &str,
    routes: Option<&[String]>,
    at: &dyn Fn(Option<&str>) -> Location,
) -> Result<Rule, Vec<RuleError>> {
    let mut problems = Problems { at, errors: Vec::new() };
    let measure = measure(&raw, &mut problems);
    let stat = stat(&raw, &mut problems);
    let condition = condition(&raw, &mut problems);
    if let (Some(resolve_at), Some(condition)) = (raw.resolve_at, &condition) {
        check_resolve_at(resolve_at, condition, &mut problems);
    }
    check_names(&raw, routes, &mut problems);
    let window_s = window(&raw, &mut problems);
    let (Some(measure), Some(condition), true) = (measure, condition, problems.errors.is_empty()) else {
        return Err(problems.errors);
    };
    Ok(Rule {
        name: raw.alert,
        group: group.to_owned(),
        measure,
        stat,
        window_s,
        group_by: raw.group_by,
        condition,
        resolve_at: raw.resolve_at,
        min_samples: raw.min_samples.unwrap_or(0.0),
        for_s: raw.for_.map_or(0, |s| s.0),
        keep_firing_for_s: raw.keep_firing_for.map_or(0, |s| s.0),
        labels: raw.labels,
        annotations: raw.annotations.into_iter().map(|(k, v)| (k, v.0)).collect(),
        route: raw.route,
        location: at(None),
    })
}

/// What the rule measures: one kind (stat, ratio, regression, absent) and its series.
fn measure(raw: &RawRule, problems: &mut Problems) -> Option<Measure> {
    let kinds = [raw.ratio.is_some(), raw.regression.is_some(), raw.absent, raw.levels.is_some()];
    if kinds.iter().filter(|k| **k).count() > 1 {
        problems.add(None, "a rule is one kind: use only one of ratio, regression, absent and levels");
    }
    match (&raw.ratio, &raw.regression, raw.absent, &raw.metric) {
        (Some(_), _, _, Some(_)) => {
            problems.add(
                Some("metric"),
                "a ratio rule takes its series from ratio.numerator and ratio.denominator; remove metric",
            );
            None
        }
        (Some(ratio), _, _, None) => {
            Some(Measure::Ratio { numerator: ratio.numerator.0.clone(), denominator: ratio.denominator.0.clone() })
        }
        (None, _, _, None) => {
            problems
                .add(None, "missing metric: the selector this rule watches, e.g. metric: api_request_duration_seconds");
            None
        }
        (None, Some(regression), _, Some(metric)) => {
            Some(Measure::Regression { selector: metric.0.clone(), offset_s: regression.offset.0 })
        }
        (None, None, true, Some(metric)) => Some(Measure::Absent { selector: metric.0.clone() }),
        (None, None, false, Some(metric)) => Some(Measure::Stat { selector: metric.0.clone() }),
    }
}

/// The statistic computed over the window; absent and ratio rules have a default.
fn stat(raw: &RawRule, problems: &mut Problems) -> Stat {
    let default_stat = if raw.ratio.is_some() { Stat::Sum } else { Stat::Count };
    let stat = match raw.stat {
        Some(stat) => stat.0,
        None if raw.absent || raw.ratio.is_some() => default_stat,
        None => {
            problems.add(None, "missing stat: say what to compute, e.g. stat: p99 (or avg, max, rate, sum, last)");
            default_stat
        }
    };
    if raw.ratio.is_some() && matches!(stat, Stat::Quantile(_)) {
        problems.add(
            Some("stat"),
            format!(
                "a ratio of quantiles ({stat}) means nothing; use sum, count or rate for counters, avg or last for gauges"
            ),
        );
    }
    stat
}

/// When the rule breaches: on absence, at two levels, past a regression factor or past one
/// threshold.
fn condition(raw: &RawRule, problems: &mut Problems) -> Option<Condition> {
    let severity = raw.severity.unwrap_or(Severity::Warning);
    if raw.absent {
        if raw.above.is_some() || raw.below.is_some() {
            problems.add(None, "an absent rule fires on missing data; remove above/below");
        }
        Some(Condition::Absent { severity })
    } else if let Some(levels) = &raw.levels {
        Some(levels_condition(raw, levels, problems))
    } else if let Some(regression) = &raw.regression {
        if regression.factor.is_nan() || regression.factor <= 1.0 {
            problems.add(
                Some("regression"),
                format!("regression.factor {} must be above 1 (1.5 means 50 % worse)", regression.factor),
            );
        }
        Some(Condition::Threshold { direction: Direction::Above, threshold: regression.factor, severity })
    } else {
        match (raw.above, raw.below) {
            (Some(threshold), None) => Some(Condition::Threshold { direction: Direction::Above, threshold, severity }),
            (None, Some(threshold)) => Some(Condition::Threshold { direction: Direction::Below, threshold, severity }),
            (Some(_), Some(_)) => {
                problems.add(Some("below"), "set either above or below, not both");
                None
            }
            (None, None) => {
                problems.add(
                    None,
                    "missing threshold: add above: <value> or below: <value> (or levels, regression, absent)",
                );
                None
            }
        }
    }
}

fn levels_condition(raw: &RawRule, levels: &RawLevels, problems: &mut Problems) -> Condition {
    let direction = raw.direction.unwrap_or(Direction::Above);
    if raw.severity.is_some() {
        problems.add(Some("severity"), "levels set the severity (warning, critical); remove severity");
    }
    if raw.above.is_some() || raw.below.is_some() {
        problems.add(Some("levels"), "use levels with direction: above|below, not above/below thresholds");
    }
    if direction.breaches(levels.warning, levels.critical) || levels.warning == levels.critical {
        let want = if direction == Direction::Above { "below" } else { "above" };
        problems.add(
            Some("levels"),
            format!(
                "levels.warning ({}) must be {want} levels.critical ({}) for direction {direction:?}",
                levels.warning, levels.critical
            )
            .to_lowercase(),
        );
    }
    Condition::Levels { direction, warning: levels.warning, critical: levels.critical }
}

/// `resolve_at` must be on the good side of the trigger, or the alert could never resolve.
fn check_resolve_at(resolve_at: f64, condition: &Condition, problems: &mut Problems) {
    let (direction, trigger) = match condition {
        Condition::Threshold { direction, threshold, .. } => (*direction, *threshold),
        Condition::Levels { direction, warning, .. } => (*direction, *warning),
        Condition::Absent { .. } => (Direction::Above, f64::INFINITY),
    };
    if matches!(condition, Condition::Absent { .. }) || direction.breaches(resolve_at, trigger) {
        problems.add(
            Some("resolve_at"),
            format!("resolve_at ({resolve_at}) must be on the good side of the threshold ({trigger}) so the alert can resolve"),
        );
    }
}

/// Label names in `group_by` and `labels`, and the route (when the routes are known).
fn check_names(raw: &RawRule, routes: Option<&[String]>, problems: &mut Problems) {
    for label in &raw.group_by {
        if !crate::ingest::names::is_valid_label_name(label) {
            problems.add(Some("group_by"), format!("group_by label {label:?} is not a valid label name"));
        }
    }
    for label in raw.labels.keys() {
        if !crate::ingest::names::is_valid_label_name(label) {
            problems.add(Some("labels"), format!("label name {label:?} is not valid; use letters, digits and '_'"));
        }
    }
    if let (Some(route), Some(routes)) = (&raw.route, routes)
        && !routes.iter().any(|r| r == route)
    {
        problems.add(Some("route"), format!("unknown route {route:?}; configured routes: {}", routes.join(", ")));
    }
}

/// The window, which a regression's offset must not overlap.
fn window(raw: &RawRule, problems: &mut Problems) -> i64 {
    let window_s = raw.window.map_or(DEFAULT_WINDOW_S, |w| w.0);
    if let Some(regression) = &raw.regression
        && regression.offset.0 < window_s
    {
        problems.add(
            Some("regression"),
            format!(
                "regression.offset ({} s) must be at least the window ({window_s} s) so the two do not overlap",
                regression.offset.0
            ),
        );
    }
    window_s
}

fn file_error(file: &str, message: &str) -> RuleError {
    RuleError { location: Location { file: file.to_owned(), line: 1, column: 1 }, message: message.to_owned() }
}

#[cfg(test)]
mod tests;
