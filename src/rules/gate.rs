//! The deploy gate: rules evaluated once at a moment against stored history, to tell a
//! deployment pipeline whether any would fire. A rule with `for` is replayed on its group's
//! interval over the `for` (and `keep_firing_for`) before that moment, so the gate fires exactly
//! when the daemon would have; a breach younger than `for` is reported as pending.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::eval::Source;
use super::replay::{Replay, describe};
use super::rule::{Condition, Direction, Group, Rule};
use crate::alert::state::AlertState;

/// Most evaluations replayed per group; a longer `for` is replayed on a coarser step.
const MAX_STEPS: i64 = 720;

/// What the gate concluded for every rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateReport {
    pub at_s: i64,
    pub rules: Vec<RuleOutcome>,
}

impl GateReport {
    /// The rules that would fire.
    pub fn firing(&self) -> impl Iterator<Item = &RuleOutcome> {
        self.rules.iter().filter(|r| r.outcome == Outcome::Firing)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// At least one instance fires.
    Firing,
    /// A breach has begun but not lasted `for` yet.
    Pending,
    /// Measured and within thresholds.
    Ok,
    /// Nothing to judge: no samples, or fewer than `min_samples`.
    NoData,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleOutcome {
    pub group: String,
    pub rule: String,
    /// file:line:column of the rule.
    pub location: String,
    pub outcome: Outcome,
    /// `above`, `below` or `absent`.
    pub condition: String,
    /// Groups of `group_by` that had a value at the gate's moment.
    pub measured: usize,
    /// The pending and firing instances.
    pub alerts: Vec<GateAlert>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateAlert {
    pub state: String,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub annotations: BTreeMap<String, String>,
}

/// Evaluates every rule of `groups` at `at_s`, replaying each group over its longest
/// `for` + `keep_firing_for`.
pub fn evaluate<S: Source + ?Sized>(groups: &[Group], at_s: i64, source: &mut S) -> Result<GateReport, S::Error> {
    let mut rules = Vec::new();
    for group in groups {
        let span = group.rules.iter().map(|r| r.for_s + r.keep_firing_for_s).max().unwrap_or(0);
        let interval = group.interval_s.max(1);
        let step = interval.max((span + MAX_STEPS - 1) / MAX_STEPS);
        let n_steps = (span + step - 1) / step;
        let mut replay = Replay::default();
        let mut last = Vec::new();
        for k in (0..=n_steps).rev() {
            last = replay.evaluate(group, at_s - k * step, source)?;
        }
        for (rule, measured) in group.rules.iter().zip(last) {
            let alerts: Vec<GateAlert> = replay
                .active()
                .filter(|(key, _)| key.group == group.name && key.rule == rule.name)
                .map(|(key, instance)| {
                    let (labels, annotations) = describe(rule, &key.labels, instance);
                    GateAlert {
                        state: instance.state.as_str().to_owned(),
                        severity: instance.severity.map_or("", |s| s.as_str()).to_owned(),
                        labels,
                        value: instance.value,
                        threshold: instance.threshold,
                        annotations,
                    }
                })
                .collect();
            let n_measured = measured.iter().filter(|m| m.value.is_some()).count();
            let outcome = if alerts.iter().any(|a| a.state == AlertState::Firing.as_str()) {
                Outcome::Firing
            } else if !alerts.is_empty() {
                Outcome::Pending
            } else if n_measured == 0 {
                Outcome::NoData
            } else {
                Outcome::Ok
            };
            rules.push(RuleOutcome {
                group: group.name.clone(),
                rule: rule.name.clone(),
                location: rule.location.to_string(),
                outcome,
                condition: condition_name(rule).to_owned(),
                measured: n_measured,
                alerts,
            });
        }
    }
    Ok(GateReport { at_s, rules })
}

fn condition_name(rule: &Rule) -> &'static str {
    match &rule.condition {
        Condition::Threshold { direction, .. } | Condition::Levels { direction, .. } => match direction {
            Direction::Above => "above",
            Direction::Below => "below",
        },
        Condition::Absent { .. } => "absent",
    }
}
