//! The deploy gate end to end: `perfwatch gate` against a running daemon (memory included) and
//! against its database file, a regression vs the hour before, `for` replayed, exit codes.

use serde_json::json;

use crate::support::{BIN, TestDaemon};

const GATE_RULES: &str = r#"groups:
  - name: deploy
    interval: 10s
    rules:
      - alert: P99RegressedSinceHourBefore
        metric: api_request_duration_seconds
        stat: p99
        window: 10m
        group_by: [endpoint]
        regression: {offset: 1h, factor: 1.5}
        min_samples: 50
        severity: critical
        annotations:
          summary: "{{ labels.endpoint }}: p99 is {{ value }}x the hour before"
      - alert: P99Above100msFor5m
        metric: api_request_duration_seconds
        stat: p99
        window: 1m
        group_by: [endpoint]
        above: 0.1
        for: 5m
        severity: warning
      - alert: P99Above100msFor30m
        metric: api_request_duration_seconds
        stat: p99
        window: 1m
        group_by: [endpoint]
        above: 0.1
        for: 30m
        severity: warning
"#;

const PASSING_RULES: &str = r#"groups:
  - name: generous
    interval: 1m
    rules:
      - alert: P99AboveOneSecond
        metric: api_request_duration_seconds
        stat: p99
        window: 10m
        above: 1.0
        severity: critical
"#;

async fn gate(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(BIN).arg("gate").args(&args).output().expect("perfwatch runs");
        (
            out.status.code().expect("exited"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Twenty requests per 10 s for `endpoint` over `[from_s, to_s)`, each `seconds` long.
async fn push_latency(d: &TestDaemon, endpoint: &str, from_s: i64, to_s: i64, seconds: f64) {
    let metrics: Vec<_> = (from_s..to_s)
        .step_by(10)
        .map(|t| {
            json!({"name": "api_request_duration_seconds", "type": "timing", "labels": {"endpoint": endpoint},
                   "values": vec![seconds; 20], "timestamp_ms": t * 1000})
        })
        .collect();
    let (status, answer) = d.push_json(&json!({ "metrics": metrics })).await;
    assert_eq!((status, answer["rejected"].as_u64()), (200, Some(0)), "{answer}");
}

/// The number after `word` on `line`.
fn number_after(line: &str, word: &str) -> f64 {
    let rest = &line[line.find(word).unwrap_or_else(|| panic!("{word:?} in {line:?}")) + word.len()..];
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_release_that_slowed_an_endpoint_fails_the_gate_from_the_daemon_and_from_its_file() {
    let d = TestDaemon::start("  lateness_intervals: 100000\n").await;
    let dir = d.dir.as_ref().unwrap().path().to_owned();
    let rules = dir.join("gate.yaml");
    std::fs::write(&rules, GATE_RULES).unwrap();
    let now = perfwatch::clock::now_s() / 10 * 10;
    // The hour before: both endpoints at 50 ms. The last 10 minutes: /vendors/:id at 150 ms.
    push_latency(&d, "/vendors/:id", now - 3600 - 600, now - 3600, 0.05).await;
    push_latency(&d, "/search", now - 3600 - 600, now - 3600, 0.05).await;
    push_latency(&d, "/vendors/:id", now - 600, now, 0.15).await;
    push_latency(&d, "/search", now - 600, now, 0.05).await;

    let at = now.to_string();
    let args = |target: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec!["--rules".into(), rules.display().to_string(), "--at".into(), at.clone()];
        args.extend(target.iter().map(|s| s.to_string()));
        args
    };
    let (code, from_daemon, stderr) = gate(args(&["--url", &d.base])).await;
    assert_eq!(code, 1, "{from_daemon}{stderr}");
    let lines: Vec<&str> = from_daemon.lines().collect();
    let firing: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FIRING")).collect();
    assert_eq!(firing.len(), 2, "{from_daemon}");
    assert!(firing[0].contains("deploy/P99RegressedSinceHourBefore"), "{from_daemon}");
    assert!(firing[1].contains("deploy/P99Above100msFor5m"), "{from_daemon}");
    // A 30m `for` has not held yet: pending, which does not fail a release.
    assert!(lines.iter().any(|l| l.starts_with("pending  deploy/P99Above100msFor30m")), "{from_daemon}");
    // Only the slowed endpoint, with its value (150/50 within the sketch's 1 %) and threshold.
    let regression = lines.iter().find(|l| l.contains("firing critical")).expect("the regression alert");
    assert!(regression.contains(r#"endpoint="/vendors/:id""#), "{from_daemon}");
    let ratio = number_after(regression, "value");
    assert!((ratio - 3.0).abs() < 0.06, "ratio {ratio}: {from_daemon}");
    assert_eq!(number_after(regression, "threshold"), 1.5);
    assert!(!from_daemon.contains("/search"), "{from_daemon}");
    assert!(from_daemon.contains("summary: /vendors/:id: p99 is "), "{from_daemon}");
    assert!(from_daemon.trim_end().ends_with("2 of 3 rules would fire, 0 had no data: FAIL"), "{from_daemon}");

    // The same judgement from the database file once everything is flushed.
    d.flush().await;
    let db = dir.join("perfwatch.db");
    let (code, from_file, stderr) = gate(args(&["--db", db.to_str().unwrap()])).await;
    assert_eq!(code, 1, "{from_file}{stderr}");
    assert_eq!(from_file, from_daemon);

    // Before the release the regression rule had no earlier hour to compare with: no data,
    // which passes unless the pipeline demands data.
    let before = (now - 3600).to_string();
    let early = |extra: &[&str]| {
        let mut a = vec!["--rules".to_string(), rules.display().to_string(), "--at".into(), before.clone()];
        a.extend(["--db".to_string(), db.display().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (code, out, _) = gate(early(&[])).await;
    assert_eq!(code, 0, "{out}");
    let no_data = format!("no data  deploy/P99RegressedSinceHourBefore ({}:5:", rules.display());
    assert!(out.contains(&no_data), "{out}");
    assert!(out.trim_end().ends_with("0 of 3 rules would fire, 1 had no data: pass"), "{out}");
    let (code, out, _) = gate(early(&["--require-data"])).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.trim_end().ends_with(": FAIL"), "{out}");

    // Rules the release meets pass.
    let passing = dir.join("pass.yaml");
    std::fs::write(&passing, PASSING_RULES).unwrap();
    let (code, out, _) =
        gate(vec!["--rules".into(), passing.display().to_string(), "--url".into(), d.base.clone()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok       generous/P99AboveOneSecond (1 measured)"), "{out}");
}

#[tokio::test]
async fn a_gate_that_cannot_judge_exits_2_and_says_why() {
    let d = TestDaemon::start("").await;
    let dir = d.dir.as_ref().unwrap().path().to_owned();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        metric: m\n        stat: p99\n        abov: 1\n",
    )
    .unwrap();
    let rules_arg = bad.display().to_string();
    let (code, _, stderr) = gate(vec!["--rules".into(), rules_arg.clone(), "--url".into(), d.base.clone()]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("{}:7:9", bad.display())), "{stderr}");

    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(&good, PASSING_RULES).unwrap();
    let (code, _, stderr) =
        gate(vec!["--rules".into(), good.display().to_string(), "--db".into(), empty.display().to_string()]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no perfwatch data"), "{stderr}");

    let (code, _, stderr) =
        gate(vec!["--rules".into(), good.display().to_string(), "--url".into(), "http://127.0.0.1:9".into()]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is the daemon running"), "{stderr}");
}
