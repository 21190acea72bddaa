//! Each kind of rule measured over hand-made rollups, and the breach rules with hysteresis.

use super::*;
use crate::model::MetricKind;
use crate::rules::parse;

fn rule(body: &str) -> Rule {
    let yaml = format!("groups:\n  - name: g\n    rules:\n      - alert: R\n{body}");
    parse(&yaml, "t.yaml", None).unwrap_or_else(|e| panic!("{e:?}")).remove(0).rules.remove(0)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn timing(group: &[(&str, &str)], values: &[f64]) -> GroupData {
    let mut rollup = Rollup::empty(true);
    for v in values {
        rollup.observe(*v, 1.0, 0);
    }
    GroupData { labels: labels(group), rollup, kind: MetricKind::Timing }
}

fn counter(group: &[(&str, &str)], total: f64) -> GroupData {
    let mut rollup = Rollup::empty(false);
    rollup.increment(total, 0);
    GroupData { labels: labels(group), rollup, kind: MetricKind::Counter }
}

const NOW: i64 = 1_764_000_000;

#[test]
fn stat_rules_measure_each_group_and_respect_min_samples() {
    let rule = rule(
        "        metric: lat\n        stat: max\n        group_by: [endpoint]\n        above: 0.2\n        min_samples: 3\n",
    );
    let mut fetch = |_: &Selector, from: i64, to: i64, group_by: &[String]| {
        assert_eq!((from, to, group_by.len()), (NOW - 300, NOW, 1));
        Ok::<_, ()>(vec![timing(&[("endpoint", "/a")], &[0.1, 0.3, 0.2]), timing(&[("endpoint", "/b")], &[0.9])])
    };
    let measured = measure(&rule, NOW, &mut fetch).unwrap();
    assert_eq!(measured[0].value, Some(0.3));
    assert_eq!(measured[1].value, None, "one sample is below min_samples");
    assert_eq!(breach(&rule, 0.3, false), Some((Severity::Warning, 0.2)));
    assert_eq!(breach(&rule, 0.2, false), None);
}

#[test]
fn ratio_rules_join_groups_and_count_missing_numerators_as_zero() {
    let rule = rule(
        "        ratio: {numerator: 'cache_requests_total{result=\"hit\"}', denominator: cache_requests_total}\n        group_by: [tier]\n        below: 0.85\n",
    );
    let mut fetch = |selector: &Selector, _: i64, _: i64, _: &[String]| {
        Ok::<_, ()>(if selector.matchers.is_empty() {
            vec![counter(&[("tier", "l1")], 100.0), counter(&[("tier", "l2")], 40.0), counter(&[("tier", "l3")], 0.0)]
        } else {
            vec![counter(&[("tier", "l1")], 90.0)]
        })
    };
    let measured = measure(&rule, NOW, &mut fetch).unwrap();
    let values: Vec<Option<f64>> = measured.iter().map(|m| m.value).collect();
    assert_eq!(values, vec![Some(0.9), Some(0.0), None], "l2 had no hits; l3 had no requests");
    assert_eq!(breach(&rule, 0.0, false), Some((Severity::Warning, 0.85)));
    assert_eq!(breach(&rule, 0.9, false), None);
}

#[test]
fn regression_rules_compare_with_the_same_window_an_offset_ago() {
    let rule = rule(
        "        metric: lat\n        stat: max\n        window: 1h\n        regression: {offset: 7d, factor: 1.5}\n",
    );
    let mut fetch = |_: &Selector, from: i64, _: i64, _: &[String]| {
        let last_week = from < NOW - 604_800;
        Ok::<_, ()>(vec![timing(&[], if last_week { &[0.1] } else { &[0.2] })])
    };
    let measured = measure(&rule, NOW, &mut fetch).unwrap();
    assert_eq!(measured[0].value, Some(2.0));
    assert_eq!(breach(&rule, 2.0, false), Some((Severity::Warning, 1.5)));
}

#[test]
fn absent_rules_fire_for_groups_that_stopped_pushing() {
    let rule = rule(
        "        metric: lat\n        group_by: [service]\n        absent: true\n        window: 10m\n        severity: critical\n",
    );
    let mut fetch = |_: &Selector, from: i64, _: i64, _: &[String]| {
        Ok::<_, ()>(if from == NOW - 600 {
            vec![timing(&[("service", "api")], &[0.1])]
        } else {
            vec![timing(&[("service", "api")], &[0.1]), timing(&[("service", "search")], &[0.1])]
        })
    };
    let measured = measure(&rule, NOW, &mut fetch).unwrap();
    let fired: Vec<(&str, Option<f64>)> =
        measured.iter().map(|m| (m.labels.get("service").unwrap(), m.value)).collect();
    assert_eq!(fired, vec![("api", Some(0.0)), ("search", Some(1.0))]);
    assert_eq!(breach(&rule, 1.0, false), Some((Severity::Critical, 0.0)));
    assert_eq!(breach(&rule, 0.0, true), None);
}

#[test]
fn levels_pick_the_worst_severity_and_hysteresis_holds_until_resolve_at() {
    let rule = rule(
        "        metric: lat\n        stat: p99\n        levels: {warning: 0.15, critical: 0.2}\n        resolve_at: 0.12\n",
    );
    assert_eq!(breach(&rule, 0.25, false), Some((Severity::Critical, 0.2)));
    assert_eq!(breach(&rule, 0.17, false), Some((Severity::Warning, 0.15)));
    assert_eq!(breach(&rule, 0.14, false), None);
    assert_eq!(breach(&rule, 0.14, true), Some((Severity::Warning, 0.15)), "firing: still above resolve_at");
    assert_eq!(breach(&rule, 0.12, true), None);
    let below = self::rule("        metric: hits\n        stat: avg\n        below: 0.85\n        resolve_at: 0.9\n");
    assert_eq!(breach(&below, 0.87, true), Some((Severity::Warning, 0.85)));
    assert_eq!(breach(&below, 0.91, true), None);
}
