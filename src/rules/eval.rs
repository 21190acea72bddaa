//! Evaluation: what a rule measures per group at `now`, from merged rollups handed in by a
//! fetch function (the scheduler reads the store; tests hand in data). No IO here.

use std::collections::BTreeMap;

use super::rule::{Condition, Direction, Measure, Rule};
use crate::aggregate::rollup::Rollup;
use crate::alert::state::Verdict;
use crate::model::Labels;
use crate::model::Severity;
use crate::query::selector::Selector;
use crate::query::view::Request;

/// One group's merged rollup over a window, as a fetch returns it.
pub use crate::query::GroupRollup as GroupData;

/// What a rule saw for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub labels: Labels,
    /// `None`: no verdict this time (too few samples, or a zero denominator).
    pub value: Option<f64>,
    /// Observations behind the value.
    pub samples: f64,
    /// What a ratio or a regression compared: (numerator, denominator), or (now, then).
    pub parts: Option<(f64, f64)>,
}

/// Where evaluation reads: merged rollups per group of `group_by` for a selector over
/// `[from, to)`, and which groups have any data there (absent rules' lookback needs no more).
pub trait Source {
    type Error;

    fn rollups(
        &mut self,
        selector: &Selector,
        from_s: i64,
        to_s: i64,
        group_by: &[String],
    ) -> Result<Vec<GroupData>, Self::Error>;

    fn present(
        &mut self,
        selector: &Selector,
        from_s: i64,
        to_s: i64,
        group_by: &[String],
    ) -> Result<Vec<Labels>, Self::Error> {
        Ok(self.rollups(selector, from_s, to_s, group_by)?.into_iter().map(|g| g.labels).collect())
    }
}

/// A closure that reads rollups is a source (rule unit tests and unit tests hand in data).
impl<E, F> Source for F
where
    F: FnMut(&Selector, i64, i64, &[String]) -> Result<Vec<GroupData>, E>,
{
    type Error = E;

    fn rollups(
        &mut self,
        selector: &Selector,
        from_s: i64,
        to_s: i64,
        group_by: &[String],
    ) -> Result<Vec<GroupData>, E> {
        self(selector, from_s, to_s, group_by)
    }
}

/// The daemon's and the gate's source: a shared view of the store and memory.
impl Source for crate::query::view::View<'_, '_> {
    type Error = crate::query::QueryError;

    fn rollups(
        &mut self,
        selector: &Selector,
        from_s: i64,
        to_s: i64,
        group_by: &[String],
    ) -> Result<Vec<GroupData>, Self::Error> {
        self.fetch(selector, from_s, to_s, group_by)
    }

    fn present(
        &mut self,
        selector: &Selector,
        from_s: i64,
        to_s: i64,
        group_by: &[String],
    ) -> Result<Vec<Labels>, Self::Error> {
        crate::query::view::View::present(self, selector, from_s, to_s, group_by)
    }
}

/// What `rules` will read at `now_s`, for [`crate::query::view::View::prefetch`]. What a rule
/// reads never depends on what it found, so a dry run with no data finds every read.
pub fn reads<'r>(rules: impl Iterator<Item = &'r Rule>, now_s: i64) -> Vec<Request> {
    /// Records rollup reads and answers nothing; presence checks need no prefetch.
    struct Recorder(Vec<Request>);
    impl Source for Recorder {
        type Error = std::convert::Infallible;

        fn rollups(
            &mut self,
            selector: &Selector,
            from_s: i64,
            to_s: i64,
            _: &[String],
        ) -> Result<Vec<GroupData>, Self::Error> {
            self.0.push(Request { selector: selector.clone(), from_s, to_s });
            Ok(Vec::new())
        }

        fn present(&mut self, _: &Selector, _: i64, _: i64, _: &[String]) -> Result<Vec<Labels>, Self::Error> {
            Ok(Vec::new())
        }
    }
    let mut recorder = Recorder(Vec::new());
    for rule in rules {
        let Ok(_) = measure(rule, now_s, &mut recorder);
    }
    recorder.0
}

/// How long before the window an absent rule looks for groups that used to push.
pub const ABSENT_LOOKBACK_S: i64 = 3600;

/// Measures `rule` at `now_s` from `source`.
pub fn measure<S: Source + ?Sized>(rule: &Rule, now_s: i64, source: &mut S) -> Result<Vec<Measured>, S::Error> {
    let (from, to) = (now_s - rule.window_s, now_s);
    let seconds = rule.window_s as f64;
    let enough = |rollup: &Rollup| rollup.count >= rule.min_samples;
    Ok(match &rule.measure {
        Measure::Stat { selector } => source
            .rollups(selector, from, to, &rule.group_by)?
            .into_iter()
            .map(|g| Measured {
                value: enough(&g.rollup).then(|| rule.stat.evaluate(&g.rollup, g.kind, seconds)).flatten(),
                samples: g.rollup.count,
                labels: g.labels,
                parts: None,
            })
            .collect(),
        Measure::Ratio { numerator, denominator } => {
            let numerators = by_labels(source.rollups(numerator, from, to, &rule.group_by)?);
            source
                .rollups(denominator, from, to, &rule.group_by)?
                .into_iter()
                .map(|den| {
                    let den_value = rule.stat.evaluate(&den.rollup, den.kind, seconds).filter(|v| *v != 0.0);
                    // A group with no numerator samples has a numerator of zero (no hits).
                    let num_value = numerators
                        .get(&den.labels)
                        .map_or(Some(0.0), |num| rule.stat.evaluate(&num.rollup, num.kind, seconds).or(Some(0.0)));
                    let parts = match (num_value, den_value) {
                        (Some(n), Some(d)) if enough(&den.rollup) => Some((n, d)),
                        _ => None,
                    };
                    Measured { value: parts.map(|(n, d)| n / d), samples: den.rollup.count, labels: den.labels, parts }
                })
                .collect()
        }
        Measure::Regression { selector, offset_s } => {
            let before = by_labels(source.rollups(selector, from - offset_s, to - offset_s, &rule.group_by)?);
            source
                .rollups(selector, from, to, &rule.group_by)?
                .into_iter()
                .map(|now| {
                    let then = before.get(&now.labels).filter(|t| enough(&t.rollup));
                    let parts = match then {
                        Some(then) if enough(&now.rollup) => {
                            let current = rule.stat.evaluate(&now.rollup, now.kind, seconds);
                            let past = rule.stat.evaluate(&then.rollup, then.kind, seconds).filter(|v| *v > 0.0);
                            current.zip(past)
                        }
                        _ => None,
                    };
                    Measured { value: parts.map(|(c, p)| c / p), samples: now.rollup.count, labels: now.labels, parts }
                })
                .collect()
        }
        Measure::Absent { selector } => {
            let present = by_labels(source.rollups(selector, from, to, &rule.group_by)?);
            if rule.group_by.is_empty() {
                let samples = present.values().map(|g| g.rollup.count).sum::<f64>();
                vec![Measured {
                    labels: Labels::default(),
                    value: Some(if samples > 0.0 { 0.0 } else { 1.0 }),
                    samples,
                    parts: None,
                }]
            } else {
                // Groups that pushed in the hour before the window but not in it.
                let earlier = source.present(selector, from - ABSENT_LOOKBACK_S, from, &rule.group_by)?;
                let mut out: Vec<Measured> = present
                    .iter()
                    .map(|(labels, g)| Measured {
                        labels: labels.clone(),
                        value: Some(0.0),
                        samples: g.rollup.count,
                        parts: None,
                    })
                    .collect();
                out.extend(earlier.into_iter().filter(|labels| !present.contains_key(labels)).map(|labels| Measured {
                    labels,
                    value: Some(1.0),
                    samples: 0.0,
                    parts: None,
                }));
                out
            }
        }
    })
}

fn by_labels(groups: Vec<GroupData>) -> BTreeMap<Labels, GroupData> {
    groups.into_iter().map(|g| (g.labels.clone(), g)).collect()
}

/// What one measurement means for an instance that is `firing` (or not) now.
pub fn verdict(rule: &Rule, measured: &Measured, firing: bool) -> Verdict {
    match measured.value {
        None => Verdict::Undecided,
        Some(value) => match breach(rule, value, firing) {
            Some((severity, threshold)) => Verdict::Breach { severity, value, threshold },
            None => Verdict::Clear { value: Some(value) },
        },
    }
}

/// The severity `value` breaches at, or `None`. While `firing`, a rule with `resolve_at`
/// keeps breaching until the value is back past it (hysteresis).
pub fn breach(rule: &Rule, value: f64, firing: bool) -> Option<(Severity, f64)> {
    let (direction, levels): (Direction, Vec<(Severity, f64)>) = match &rule.condition {
        Condition::Threshold { direction, threshold, severity } => (*direction, vec![(*severity, *threshold)]),
        Condition::Levels { direction, warning, critical } => {
            (*direction, vec![(Severity::Critical, *critical), (Severity::Warning, *warning)])
        }
        Condition::Absent { severity } => return (value > 0.0).then_some((*severity, 0.0)),
    };
    if let Some(hit) = levels.iter().find(|(_, threshold)| direction.breaches(value, *threshold)) {
        return Some(*hit);
    }
    let (lowest_severity, lowest_threshold) = *levels.last().expect("a condition has a level");
    match rule.resolve_at {
        Some(resolve_at) if firing && !past_resolve(direction, value, resolve_at) => {
            Some((lowest_severity, lowest_threshold))
        }
        _ => None,
    }
}

/// Whether `value` is back on the good side of `resolve_at`.
fn past_resolve(direction: Direction, value: f64, resolve_at: f64) -> bool {
    match direction {
        Direction::Above => value <= resolve_at,
        Direction::Below => value >= resolve_at,
    }
}

#[cfg(test)]
mod tests;
