//! The rule's measured value for one alert instance at each step of the chart's span, as the
//! scheduler would have measured it then: the rule narrowed to the instance's group labels,
//! evaluated through the same view of store and memory. For a ratio or a regression, also
//! the two values it compared.

use crate::api::ReadState;
use crate::model::Labels;
use crate::query::QueryError;
use crate::query::view::with_view;
use crate::rules::eval::measure;
use crate::rules::rule::{Measure, Rule, metric_names};

/// (time, value) points, oldest first.
pub type Points = Vec<(i64, f64)>;

/// What the chart draws.
#[derive(Debug, Default)]
pub struct Measured {
    /// (time, value) where the rule reached a value.
    pub values: Points,
    /// (time, numerator or now), (time, denominator or a period ago).
    pub parts: (Points, Points),
}

/// `rule` for the instance with `alert_labels` (its stored labels: the rule's, the group's
/// and `alertname`), at every `step_s` from `from_s` to `to_s`.
pub async fn over_span(
    reads: &ReadState,
    rule: &Rule,
    alert_labels: &Labels,
    from_s: i64,
    to_s: i64,
    step_s: i64,
) -> Result<Measured, QueryError> {
    let group_labels = Labels::new(
        alert_labels
            .iter()
            .filter(|(k, _)| rule.group_by.iter().any(|g| g == k))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let rule = rule.for_instance(&group_labels);
    let names = metric_names(std::iter::once(&rule));
    // On the step grid, and at `to_s` itself: the latest value is always drawn.
    let mut times: Vec<i64> =
        (1..).map(|k| from_s.div_euclid(step_s) * step_s + k * step_s).take_while(|t| *t < to_s).collect();
    times.push(to_s);
    with_view(&reads.reader, Some(&reads.aggregator), None, &names, move |view| {
        let mut out = Measured::default();
        for t in times {
            let found = measure(&rule, t, view)?.into_iter().find(|m| m.labels == group_labels);
            let Some(found) = found else { continue };
            if let Some(value) = found.value {
                out.values.push((t, value));
            }
            if let Some((a, b)) = found.parts {
                out.parts.0.push((t, a));
                out.parts.1.push((t, b));
            }
        }
        Ok(out)
    })
    .await
}

/// What the two parts are called, for a rule that has parts.
pub fn part_names(rule: &Rule) -> Option<(String, String)> {
    match &rule.measure {
        Measure::Ratio { numerator, denominator } => {
            Some((format!("{} of {numerator}", rule.stat), format!("{} of {denominator}", rule.stat)))
        }
        Measure::Regression { selector, offset_s } => Some((
            format!("{} of {selector} now", rule.stat),
            format!("the same {} ago", crate::clock::elapsed(*offset_s)),
        )),
        Measure::Stat { .. } | Measure::Absent { .. } => None,
    }
}
