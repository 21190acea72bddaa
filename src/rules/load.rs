//! Rule files → validated groups, every mistake reported as `file:line:column: message` with
//! what to write instead. Field-level checks (durations, selectors, stats, templates, severity
//! names) run while the YAML is read, so the parser points at the value; checks across fields
//! are placed at the rule (or the key) by `locate`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use super::locate::rule_position;
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
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut group_names = HashSet::new();
    for raw_group in raw.groups {
        let group_location = locate_group(text, origin, &raw_group.name);
        if !group_names.insert(raw_group.name.clone()) {
            errors.push(RuleError {
                location: group_location.clone(),
                message: format!("group {:?} is defined twice in this file; rename one", raw_group.name),
            });
        }
        let mut rule_names = HashSet::new();
        let mut rules = Vec::new();
        for raw_rule in raw_group.rules {
            let alert = raw_rule.alert.clone();
            let at = |key: Option<&str>| {
                let (line, column) =
                    rule_position(text, &alert, key).unwrap_or((group_location.line, group_location.column));
                Location { file: origin.to_owned(), line, column }
            };
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

fn validate(
    raw: RawRule,
    group: &str,
    routes: Option<&[String]>,
    at: &dyn Fn(Option<&str>) -> Location,
) -> Result<Rule, Vec<RuleError>> {
    let mut errors = Vec::new();
    let mut problem = |key: Option<&str>, message: String| errors.push(RuleError { location: at(key), message });

    let kinds = [raw.ratio.is_some(), raw.regression.is_some(), raw.absent, raw.levels.is_some()];
    if kinds.iter().filter(|k| **k).count() > 1 {
        problem(None, "a rule is one kind: use only one of ratio, regression, absent and levels".into());
    }
    let measure = match (&raw.ratio, &raw.regression, raw.absent, &raw.metric) {
        (Some(_), _, _, Some(_)) => {
            problem(
                Some("metric"),
                "a ratio rule takes its series from ratio.numerator and ratio.denominator; remove metric".into(),
            );
            None
        }
        (Some(ratio), _, _, None) => {
            Some(Measure::Ratio { numerator: ratio.numerator.0.clone(), denominator: ratio.denominator.0.clone() })
        }
        (None, _, _, None) => {
            problem(
                None,
                "missing metric: the selector this rule watches, e.g. metric: api_request_duration_seconds".into(),
            );
            None
        }
        (None, Some(regression), _, Some(metric)) => {
            Some(Measure::Regression { selector: metric.0.clone(), offset_s: regression.offset.0 })
        }
        (None, None, true, Some(metric)) => Some(Measure::Absent { selector: metric.0.clone() }),
        (None, None, false, Some(metric)) => Some(Measure::Stat { selector: metric.0.clone() }),
    };

    let default_stat = if raw.ratio.is_some() { Stat::Sum } else { Stat::Count };
    let stat = match raw.stat {
        Some(stat) => stat.0,
        None if raw.absent || raw.ratio.is_some() => default_stat,
        None => {
            problem(None, "missing stat: say what to compute, e.g. stat: p99 (or avg, max, rate, sum, last)".into());
            default_stat
        }
    };
    if raw.ratio.is_some() && matches!(stat, Stat::Quantile(_)) {
        problem(
            Some("stat"),
            format!(
                "a ratio of quantiles ({stat}) means nothing; use sum, count or rate for counters, avg or last for gauges"
            ),
        );
    }

    let severity = raw.severity.unwrap_or(Severity::Warning);
    let condition = if raw.absent {
        if raw.above.is_some() || raw.below.is_some() {
            problem(None, "an absent rule fires on missing data; remove above/below".into());
        }
        Some(Condition::Absent { severity })
    } else if let Some(levels) = &raw.levels {
        let direction = raw.direction.unwrap_or(Direction::Above);
        if raw.severity.is_some() {
            problem(Some("severity"), "levels set the severity (warning, critical); remove severity".into());
        }
        if raw.above.is_some() || raw.below.is_some() {
            problem(Some("levels"), "use levels with direction: above|below, not above/below thresholds".into());
        }
        if direction.breaches(levels.warning, levels.critical) || levels.warning == levels.critical {
            let want = if direction == Direction::Above { "below" } else { "above" };
            problem(
                Some("levels"),
                format!(
                    "levels.warning ({}) must be {want} levels.critical ({}) for direction {direction:?}",
                    levels.warning, levels.critical
                )
                .to_lowercase(),
            );
        }
        Some(Condition::Levels { direction, warning: levels.warning, critical: levels.critical })
    } else if let Some(regression) = &raw.regression {
        if regression.factor.is_nan() || regression.factor <= 1.0 {
            problem(
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
                problem(Some("below"), "set either above or below, not both".into());
                None
            }
            (None, None) => {
                problem(
                    None,
                    "missing threshold: add above: <value> or below: <value> (or levels, regression, absent)".into(),
                );
                None
            }
        }
    };

    if let (Some(resolve_at), Some(condition)) = (raw.resolve_at, &condition) {
        let (direction, trigger) = match condition {
            Condition::Threshold { direction, threshold, .. } => (*direction, *threshold),
            Condition::Levels { direction, warning, .. } => (*direction, *warning),
            Condition::Absent { .. } => (Direction::Above, f64::INFINITY),
        };
        if matches!(condition, Condition::Absent { .. }) || direction.breaches(resolve_at, trigger) {
            problem(
                Some("resolve_at"),
                format!(
                    "resolve_at ({resolve_at}) must be on the good side of the threshold ({trigger}) so the alert can resolve"
                ),
            );
        }
    }
    for label in &raw.group_by {
        if !crate::ingest::names::is_valid_label_name(label) {
            problem(Some("group_by"), format!("group_by label {label:?} is not a valid label name"));
        }
    }
    for label in raw.labels.keys() {
        if !crate::ingest::names::is_valid_label_name(label) {
            problem(Some("labels"), format!("label name {label:?} is not valid; use letters, digits and '_'"));
        }
    }
    if let (Some(route), Some(routes)) = (&raw.route, routes)
        && !routes.iter().any(|r| r == route)
    {
        problem(Some("route"), format!("unknown route {route:?}; configured routes: {}", routes.join(", ")));
    }
    let window_s = raw.window.map_or(DEFAULT_WINDOW_S, |w| w.0);
    if let Some(regression) = &raw.regression
        && regression.offset.0 < window_s
    {
        problem(
            Some("regression"),
            format!(
                "regression.offset ({} s) must be at least the window ({window_s} s) so the two do not overlap",
                regression.offset.0
            ),
        );
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Rule {
        name: raw.alert,
        group: group.to_owned(),
        measure: measure.expect("no errors means a measure"),
        stat,
        window_s,
        group_by: raw.group_by,
        condition: condition.expect("no errors means a condition"),
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

fn locate_group(text: &str, origin: &str, name: &str) -> Location {
    let (line, column) = text
        .lines()
        .enumerate()
        .find_map(|(idx, line)| {
            let col = line.find("name:")?;
            (line[col + 5..].trim().trim_matches(['"', '\'']) == name).then_some((idx + 1, col + 1))
        })
        .unwrap_or((1, 1));
    Location { file: origin.to_owned(), line, column }
}

fn file_error(file: &str, message: &str) -> RuleError {
    RuleError { location: Location { file: file.to_owned(), line: 1, column: 1 }, message: message.to_owned() }
}

#[cfg(test)]
mod tests;
