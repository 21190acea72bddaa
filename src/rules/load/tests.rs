//! Rule files: every kind loads; every kind of mistake is reported at its line and column
//! with a message that says what to write.

use super::*;

const VALID: &str = r#"groups:
  - name: api
    interval: 15s
    rules:
      - alert: ApiP99High
        metric: api_request_duration_seconds{service="api-gateway"}
        stat: p99
        window: 5m
        group_by: [endpoint]
        above: 0.2
        resolve_at: 0.18
        min_samples: 50
        for: 2m
        keep_firing_for: 5m
        severity: critical
        labels: {team: platform}
        annotations:
          summary: "p99 of {{ labels.endpoint }} is {{ value | duration }} (limit {{ threshold | duration }})"
        route: pager
      - alert: ApiP99Levels
        metric: api_request_duration_seconds
        stat: p99
        levels: {warning: 0.15, critical: 0.2}
      - alert: CacheHitRatioLow
        ratio:
          numerator: cache_requests_total{result="hit"}
          denominator: cache_requests_total
        group_by: [tier]
        window: 10m
        below: 0.85
      - alert: ApiP99Regression
        metric: api_request_duration_seconds
        stat: p99
        window: 1h
        regression: {offset: 7d, factor: 1.5}
      - alert: ServiceStoppedPushing
        metric: api_request_duration_seconds
        group_by: [service]
        absent: true
        window: 10m
        severity: critical
"#;

#[test]
fn every_kind_loads() {
    let routes = vec!["pager".to_owned()];
    let groups = parse(VALID, "api.yaml", Some(&routes)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!((group.name.as_str(), group.interval_s, group.rules.len()), ("api", 15, 5));
    let first = &group.rules[0];
    assert_eq!((first.window_s, first.for_s, first.keep_firing_for_s, first.min_samples), (300, 120, 300, 50.0));
    assert_eq!(
        first.condition,
        Condition::Threshold { direction: Direction::Above, threshold: 0.2, severity: Severity::Critical }
    );
    assert_eq!(first.resolve_at, Some(0.18));
    assert_eq!((first.location.line, first.location.column), (5, 9));
    assert!(matches!(group.rules[1].condition, Condition::Levels { warning: 0.15, critical: 0.2, .. }));
    assert!(matches!(group.rules[2].measure, Measure::Ratio { .. }));
    assert_eq!(group.rules[2].stat, Stat::Sum);
    assert!(matches!(group.rules[3].measure, Measure::Regression { offset_s: 604_800, .. }));
    assert!(matches!(group.rules[4].condition, Condition::Absent { severity: Severity::Critical }));
}

/// Loads `yaml` and expects exactly these (line, column, fragment of the message) errors.
fn check(yaml: &str, expected: &[(usize, usize, &str)]) {
    let routes = vec!["pager".to_owned()];
    let errors = parse(yaml, "r.yaml", Some(&routes)).expect_err("the file has mistakes");
    let got: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), expected.len(), "{got:#?}");
    for (error, (line, column, fragment)) in errors.iter().zip(expected) {
        let text = error.to_string();
        assert!(text.starts_with(&format!("r.yaml:{line}:{column}: ")), "want {line}:{column}, got {text}");
        assert!(text.contains(fragment), "want {fragment:?} in {text}");
    }
}

fn rule(body: &str) -> String {
    format!("groups:\n  - name: g\n    rules:\n      - alert: A\n{body}")
}

#[test]
fn mistakes_are_placed_and_explained() {
    // 1. YAML syntax.
    check("groups:\n  - name: g\n    rules: [\n", &[(4, 1, "did not find expected")]);
    // 2. A misspelt key.
    check(&rule("        metric: m\n        stat: p99\n        treshold: 1\n"), &[(7, 9, "unknown field `treshold`")]);
    // 3. A bad duration.
    check(
        &rule("        metric: m\n        stat: p99\n        above: 1\n        window: 5x\n"),
        &[(8, 17, "is not a positive duration")],
    );
    // 4. A bad selector.
    check(&rule("        metric: m{x=1}\n        stat: p99\n        above: 1\n"), &[(5, 17, "bad selector")]);
    // 5. A bad stat.
    check(&rule("        metric: m\n        stat: median\n        above: 1\n"), &[(6, 15, "unknown stat \"median\"")]);
    // 6. A template mistake.
    check(
        &rule(
            "        metric: m\n        stat: p99\n        above: 1\n        annotations:\n          summary: \"{{ valeu }}\"\n",
        ),
        &[(9, 20, "unknown template variable \"valeu\"")],
    );
    // 7. An unknown severity.
    check(
        &rule("        metric: m\n        stat: p99\n        above: 1\n        severity: urgent\n"),
        &[(8, 19, "unknown variant `urgent`")],
    );
    // 8. No threshold.
    check(&rule("        metric: m\n        stat: p99\n"), &[(4, 9, "missing threshold")]);
    // 9. Levels in the wrong order.
    check(
        &rule("        metric: m\n        stat: p99\n        levels: {warning: 0.3, critical: 0.2}\n"),
        &[(7, 9, "must be below levels.critical")],
    );
    // 10. Hysteresis on the wrong side.
    check(
        &rule("        metric: m\n        stat: p99\n        above: 0.2\n        resolve_at: 0.3\n"),
        &[(8, 9, "resolve_at (0.3) must be on the good side")],
    );
    // 11. An unknown route.
    check(
        &rule("        metric: m\n        stat: p99\n        above: 1\n        route: pagr\n"),
        &[(8, 9, "unknown route \"pagr\"")],
    );
    // 12. A ratio of percentiles.
    check(
        &rule("        ratio: {numerator: a, denominator: b}\n        stat: p99\n        below: 0.9\n"),
        &[(6, 9, "a ratio of quantiles")],
    );
    // 13. Two rules with one name (placed at the second, the one left out), and both above and
    // below.
    check(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        metric: m\n        stat: avg\n        above: 1\n        below: 0\n      - alert: B\n        metric: m\n        stat: avg\n        above: 1\n      - alert: B\n        metric: m\n        stat: avg\n        above: 2\n",
        &[(8, 9, "either above or below"), (13, 9, "appears twice")],
    );
    // 14. Missing stat and metric.
    check(&rule("        above: 1\n"), &[(4, 9, "missing metric"), (4, 9, "missing stat")]);
    // 15. A regression that compares a window with itself.
    check(
        &rule(
            "        metric: m\n        stat: p99\n        window: 2h\n        regression: {offset: 1h, factor: 1.5}\n",
        ),
        &[(8, 9, "must be at least the window")],
    );
}

#[test]
fn globs_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), VALID.replace("route: pager", "")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), rule("        metric: m\n")).unwrap();
    let pattern = format!("{}/*.yaml", dir.path().display());
    let errors = load_patterns(&[pattern], None).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.location.file.ends_with("b.yaml")));
    let missing = load_patterns(&[format!("{}/nope.yaml", dir.path().display())], None).unwrap_err();
    assert!(missing[0].message.contains("no such rule file"));
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    let groups = load_patterns(&[format!("{}/*.yaml", dir.path().display())], None).unwrap();
    assert_eq!(groups[0].rules.len(), 5);
}

#[test]
fn for_zero_fires_at_once_as_in_prometheus() {
    let groups = parse(
        &rule("        metric: m\n        stat: max\n        above: 1\n        for: 0s\n        keep_firing_for: 0s\n"),
        "z.yaml",
        None,
    )
    .unwrap();
    assert_eq!((groups[0].rules[0].for_s, groups[0].rules[0].keep_firing_for_s), (0, 0));
    check(
        &rule("        metric: m\n        stat: max\n        above: 1\n        window: 0s\n"),
        &[(8, 17, "is not a positive duration")],
    );
}
