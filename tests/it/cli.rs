//! The command line: push and query against a running daemon, config checking, and the load
//! generator, whose reported count must match what the daemon stored exactly.

use std::process::Command;

use crate::support::{BIN, TestDaemon};

fn perfwatch(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("perfwatch runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn push_then_query_from_the_shell() {
    let d = TestDaemon::start("").await;
    let base = d.base.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let pushed = perfwatch(&[
            "push",
            "--url",
            &base,
            "backup_duration_seconds",
            "42.5",
            "17.5",
            "-t",
            "timing",
            "-l",
            "job=backup",
        ]);
        assert!(pushed.0, "push failed: {}", pushed.2);
        perfwatch(&["query", "--url", &base, "backup_duration_seconds", "--stat", "max"])
    })
    .await
    .unwrap();
    assert!(ok, "query failed: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[1].contains("{job=backup}") && lines[1].trim_end().ends_with("42.500000"), "{stdout}");
    assert_eq!(d.query_one(&[("metric", "backup_duration_seconds"), ("stat", "count")]).await, 2.0);

    let base = d.base.clone();
    let refused =
        tokio::task::spawn_blocking(move || perfwatch(&["push", "--url", &base, "c_total", "-1", "-t", "counter"]))
            .await
            .unwrap();
    assert!(!refused.0);
    assert!(refused.2.contains("non-negative"), "{}", refused.2);
}

#[test]
fn unreachable_daemon_says_what_to_do() {
    let (ok, _, stderr) = perfwatch(&["query", "--url", "http://127.0.0.1:9", "m"]);
    assert!(!ok);
    assert!(stderr.contains("is the daemon running"), "{stderr}");
}

#[test]
fn check_reports_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "storage:\n  interval: 10s\n").unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, "groups:\n  - name: api\n    rules:\n      - alert: Slow\n        metric: lat\n        stat: p99\n        above: 0.2\n").unwrap();
    let (ok, stdout, stderr) = perfwatch(&["check", "--config", good.to_str().unwrap(), rules.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1 rule groups, 1 rules"), "{stdout}");
    let bad_rules = dir.path().join("bad-rules.yaml");
    std::fs::write(&bad_rules, "groups:\n  - name: api\n    rules:\n      - alert: Slow\n        metric: lat\n        stat: p99.9.9\n        above: 0.2\n").unwrap();
    let (ok, _, stderr) = perfwatch(&["check", bad_rules.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains(&format!("{}:6:15: ", bad_rules.display())) && stderr.contains("unknown stat"), "{stderr}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "http:\n  listen: 127.0.0.1:9464\n  lisen: x\n").unwrap();
    let (ok, _, stderr) = perfwatch(&["check", "--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains(&format!("{}:3:", bad.display())) && stderr.contains("unknown field `lisen`"), "{stderr}");
}

#[tokio::test]
async fn loadgen_counts_match_what_was_stored() {
    for format in ["json", "otlp", "influx"] {
        let d = TestDaemon::start("").await;
        let base = d.base.clone();
        // The JSON run also probes /healthz meanwhile; the Influx run holds idle and slow
        // connections beside its load.
        let extra: &[&str] = match format {
            "json" => &["--probe-health"],
            "influx" => &["--idle-connections", "5", "--slow-connections", "3"],
            _ => &[],
        };
        let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "loadgen",
                "--url",
                &base,
                "--format",
                format,
                "--duration",
                "2s",
                "--rate",
                "20000",
                "--series",
                "60",
                "--values-per-entry",
                "10",
                "--observations-per-request",
                "200",
                "--connections",
                "2",
            ];
            args.extend(extra);
            perfwatch(&args)
        })
        .await
        .unwrap();
        assert!(ok, "loadgen --format {format} failed: {stderr}");
        assert!(stderr.contains("obs/s"), "a progress line is shown: {stderr}");
        let sent: f64 =
            stdout.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("summary starts with the count");
        assert!(sent > 0.0 && stdout.contains(" 0 errors"), "{format}: {stdout}");
        if format == "json" {
            // ~100 probes in 2 s at one per 20 ms; all answered.
            let probes: usize = stdout
                .split(" over ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next()?.parse().ok())
                .unwrap_or_else(|| panic!("the summary reports the probe: {stdout}"));
            assert!(stdout.contains("/healthz p50 ") && probes >= 20, "{stdout}");
            assert!(stdout.contains(" probes, 0 failed"), "{stdout}");
        }
        if format == "influx" {
            assert!(stdout.contains("held 5 idle and 3 slow connections (8 opened, 0 closed"), "{stdout}");
        }
        // Every observation sent is stored: the counts of every metric add up to it.
        let metrics = d.get("/api/v1/metrics").await.1;
        let mut stored = 0.0;
        let mut n_series = 0;
        for metric in metrics["metrics"].as_array().unwrap() {
            n_series += metric["series"].as_u64().unwrap();
            let name = metric["name"].as_str().unwrap();
            stored += d.query_one(&[("metric", name), ("stat", "count"), ("group_by", "")]).await;
        }
        assert_eq!(stored, sent, "{format}: {stdout}");
        assert_eq!(n_series, 60, "{format}: one series per workload series");
    }
}

const RULE_FILE: &str = r#"groups:
  - name: api
    interval: 30s
    rules:
      - alert: ApiP99High
        metric: api_request_duration_seconds
        stat: p99
        window: 2m
        group_by: [endpoint]
        levels: {warning: 0.15, critical: 0.2}
        for: 1m
        annotations:
          summary: "p99 of {{ labels.endpoint }} is {{ value | duration }}"
      - alert: CacheHitRatioLow
        ratio:
          numerator: 'cache_requests_total{result="hit"}'
          denominator: cache_requests_total
        group_by: [tier]
        window: 2m
        below: 0.85
"#;

const TEST_FILE: &str = r#"rule_files: [rules.yaml]
tests:
  - name: slow vendor page, then very slow
    interval: 10s
    input_series:
      - series: 'api_request_duration_seconds{endpoint="/vendors/:id"}'
        values: '0.05x20 0.18x12 0.3x12'
      - series: 'api_request_duration_seconds{endpoint="/health"}'
        values: '0.002x44'
      - series: 'cache_requests_total{tier="l1",result="hit"}'
        type: counter
        values: '0+90x44'
      - series: 'cache_requests_total{tier="l1",result="miss"}'
        type: counter
        values: '0+10x20 200+40x23'
    alert_rule_test:
      - eval_time: 3m
        alertname: ApiP99High
      - eval_time: 4m
        alertname: ApiP99High
        exp_alerts:
          - labels: {endpoint: /vendors/:id, severity: warning}
            state: pending
            annotations: {summary: "p99 of /vendors/:id is 180 ms"}
      - eval_time: 7m
        alertname: ApiP99High
        exp_alerts:
          - labels: {endpoint: /vendors/:id, severity: critical}
            annotations: {summary: "p99 of /vendors/:id is 298.17 ms"}
      - eval_time: 2m
        alertname: CacheHitRatioLow
      - eval_time: 6m
        alertname: CacheHitRatioLow
        exp_alerts:
          - labels: {tier: l1, severity: warning}
"#;

#[test]
fn test_rules_passes_and_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULE_FILE).unwrap();
    let good = dir.path().join("good_test.yaml");
    std::fs::write(&good, TEST_FILE).unwrap();
    let (ok, stdout, stderr) = perfwatch(&["test-rules", good.to_str().unwrap()]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("PASS") && stdout.contains("1 passed, 0 failed"), "{stdout}");

    let bad = dir.path().join("bad_test.yaml");
    std::fs::write(&bad, TEST_FILE.replace("severity: critical}", "severity: warning}")).unwrap();
    let (ok, stdout, _) = perfwatch(&["test-rules", bad.to_str().unwrap()]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("FAIL") && stdout.contains("at 420s, alert ApiP99High"), "{stdout}");
    assert!(stdout.contains("expected: firing") && stdout.contains("\"severity\": \"critical\""), "{stdout}");
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

/// The shipped rules pass their own rule tests (the README's test command runs this).
#[test]
fn shipped_rules_pass_their_tests() {
    let root = env!("CARGO_MANIFEST_DIR");
    let (ok, _, stderr) = perfwatch(&["check", &format!("{root}/rules/*.yaml")]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = perfwatch(&["test-rules", &format!("{root}/rules/tests/*.yaml")]);
    assert!(ok, "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

#[tokio::test]
async fn query_takes_relative_times_as_the_readme_writes_them() {
    let d = TestDaemon::start("").await;
    d.push_json(&serde_json::json!({"metrics": [{"name": "lat", "type": "timing", "values": [0.1, 0.3]}]})).await;
    let base = d.base.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        perfwatch(&["query", "--url", &base, "lat", "--stat", "max", "--from", "-5m"])
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.lines().nth(1).is_some_and(|l| l.trim_end().ends_with("0.300000")), "{stdout}");
}

#[test]
fn oncall_shows_who_is_on_call_across_a_dst_change_with_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("perfwatch.yaml");
    std::fs::write(
        &config,
        "notifiers:\n  slack: {type: slack, webhook_url_file: /nonexistent/slack-webhook}\n\
people:\n  ana: {name: Ana Silva, slack: U012ABCDEF, email: ana@wedding.example}\n  ben: {name: Ben Okoro, email: ben@wedding.example}\n  cara: {name: Cara Diaz, slack: U03CDEFGHI}\n\
schedules:\n  platform:\n    time_zone: Europe/London\n    rotation: [ana, ben, cara]\n    start: 2026-10-22\n    handoff: '09:00'\n    shift: 1d\n    overrides:\n      - {person: ana, from: '2026-10-26 18:00', until: '2026-10-27 09:00'}\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // The secret file does not exist here: `oncall` reads only people and schedules.
    // 25 October 2026: the clocks go back at 02:00 BST. Cara's shift began 09:00 BST on the 24th
    // (08:00 UTC) and ends 09:00 GMT on the 25th (09:00 UTC): 25 hours.
    let (ok, out, err) = perfwatch(&["oncall", "--config", config, "--at", "2026-10-25T08:30:00Z"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "platform (Europe/London, 1d shifts from 09:00) at Sun 2026-10-25 08:30 GMT");
    assert_eq!(lines[1], "  on call:      Cara Diaz  <@U03CDEFGHI>  until Sun 2026-10-25 09:00 GMT (in 30m)");
    assert_eq!(lines[2], "  next in line: Ana Silva  <@U012ABCDEF>  ana@wedding.example");
    assert_eq!(lines[4], "    Sun 2026-10-25 09:00 GMT  Ana Silva", "{out}");
    assert_eq!(lines[5], "    Mon 2026-10-26 09:00 GMT  Ben Okoro", "{out}");
    assert!(out.contains("Mon 2026-10-26 18:00 GMT → Tue 2026-10-27 09:00 GMT  Ana Silva"), "{out}");
    // A local time is read in the schedule's zone: inside the override.
    let (ok, out, _) = perfwatch(&["oncall", "platform", "--config", config, "--at", "2026-10-26 20:00"]);
    assert!(ok);
    assert!(
        out.lines().nth(1).unwrap().starts_with("  on call:      Ana Silva") && out.contains(", override"),
        "{out}"
    );
    let (ok, _, err) = perfwatch(&["oncall", "pager", "--config", config]);
    assert!(!ok && err.contains("no schedule \"pager\"; schedules: platform"), "{err}");
    let (ok, _, err) = perfwatch(&["oncall", "--config", config, "--at", "yesterday"]);
    assert!(!ok && err.contains("--at \"yesterday\" is not a time"), "{err}");
}
