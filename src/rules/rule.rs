//! Validated rules: what each kind of rule measures, the condition it fires on, and everything
//! an alert instance carries. Plain data; built by `load`, read by `eval` and the scheduler.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::template::{Context, Template};
use crate::model::{Labels, Severity};
use crate::query::selector::{Matcher, Selector};
use crate::query::stat::Stat;

/// Which side of a threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Above,
    Below,
}

impl Direction {
    /// Whether `value` is past `threshold` on the bad side.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Direction::Above => value > threshold,
            Direction::Below => value < threshold,
        }
    }
}

/// What a rule computes per group.
#[derive(Debug, Clone)]
pub enum Measure {
    /// `stat` of the selected series over the window.
    Stat { selector: Selector },
    /// `stat(numerator) / stat(denominator)` over the window (hit ratios, error ratios).
    Ratio { numerator: Selector, denominator: Selector },
    /// `stat` now divided by `stat` over the same window `offset_s` ago.
    Regression { selector: Selector, offset_s: i64 },
    /// Whether the selected series sent nothing over the window.
    Absent { selector: Selector },
}

/// When a measured value is bad, and how bad.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Threshold { direction: Direction, threshold: f64, severity: Severity },
    Levels { direction: Direction, warning: f64, critical: f64 },
    Absent { severity: Severity },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub group: String,
    pub measure: Measure,
    pub stat: Stat,
    pub window_s: i64,
    pub group_by: Vec<String>,
    pub condition: Condition,
    /// Once firing, the value must come back past this to resolve (hysteresis).
    pub resolve_at: Option<f64>,
    /// Fewer observations than this in the window: no verdict (no p99 of 3 samples).
    pub min_samples: f64,
    pub for_s: i64,
    pub keep_firing_for_s: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, Template>,
    pub route: Option<String>,
    pub location: Location,
}

impl Rule {
    /// Every selector the rule reads.
    pub fn selectors(&self) -> Vec<&Selector> {
        match &self.measure {
            Measure::Stat { selector } | Measure::Regression { selector, .. } | Measure::Absent { selector } => {
                vec![selector]
            }
            Measure::Ratio { numerator, denominator } => vec![numerator, denominator],
        }
    }

    /// Its annotations rendered for an instance with `labels` (every label: the rule's, the
    /// group's, `alertname`), its value, threshold and severity.
    pub fn annotations_for(
        &self,
        labels: &Labels,
        value: Option<f64>,
        threshold: Option<f64>,
        severity: &str,
    ) -> BTreeMap<String, String> {
        let lookup = |name: &str| labels.get(name).map(str::to_owned);
        let context = Context { labels: &lookup, value, threshold, rule: &self.name, severity };
        self.annotations.iter().map(|(k, t)| (k.clone(), t.render(&context))).collect()
    }

    /// The rule narrowed to one of its instances: every selector also requires the instance's
    /// group labels, so measuring it reads that group's series only.
    pub fn for_instance(&self, group_labels: &Labels) -> Rule {
        let mut rule = self.clone();
        let narrow = |selector: &mut Selector| {
            for (label, value) in group_labels.iter() {
                selector.matchers.push(Matcher::equal(label, value));
            }
        };
        match &mut rule.measure {
            Measure::Stat { selector } | Measure::Regression { selector, .. } | Measure::Absent { selector } => {
                narrow(selector)
            }
            Measure::Ratio { numerator, denominator } => {
                narrow(numerator);
                narrow(denominator);
            }
        }
        rule
    }
}

/// The metrics `rules` read, each once.
pub fn metric_names<'r>(rules: impl Iterator<Item = &'r Rule>) -> Vec<String> {
    let mut names: Vec<String> = rules.flat_map(|r| r.selectors()).map(|s| s.name.clone()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub interval_s: i64,
    pub rules: Vec<Rule>,
}
