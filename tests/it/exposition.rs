//! /metrics re-exports what was pushed: counters as `…_total` running totals, gauges at their
//! latest level, timings as summaries (window quantiles, `_sum`, `_count`) — the same before
//! and after a flush moves the data to SQLite — and the whole exposition passes promtool.

use serde_json::json;

use crate::support::{TestDaemon, assert_within, exact_quantile, program};

/// The value of the sample written exactly as `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.strip_prefix(series).is_some_and(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn metrics_text(d: &TestDaemon) -> String {
    let response = d.client.get(format!("{}/metrics", d.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn pushed_metrics_are_re_exported_for_prometheus() {
    let d = TestDaemon::start("").await;
    let latencies: Vec<f64> = (1..=100).map(|ms| ms as f64 / 1000.0).collect();
    for body in [
        json!({"metrics": [
            {"name": "cache_requests_total", "type": "counter", "value": 3, "labels": {"tier": "l1", "result": "hit"}},
            {"name": "page_views", "type": "counter", "value": 5},
            {"name": "db_pool_connections_in_use", "type": "gauge", "value": 7, "labels": {"pool": "primary"}},
            {"name": "api_request_duration_seconds", "type": "timing", "values": latencies, "labels": {"endpoint": "/vendors/:id"}},
        ]}),
        json!({"metrics": [
            {"name": "cache_requests_total", "type": "counter", "value": 4, "labels": {"tier": "l1", "result": "hit"}},
            {"name": "db_pool_connections_in_use", "type": "gauge", "value": 9, "labels": {"pool": "primary"}},
        ]}),
    ] {
        assert_eq!(d.push_json(&body).await.0, 200);
    }
    let before = metrics_text(&d).await;
    d.flush().await;
    let after = metrics_text(&d).await;
    for text in [&before, &after] {
        assert_eq!(sample(text, r#"cache_requests_total{result="hit",tier="l1"}"#), 7.0);
        assert_eq!(sample(text, "page_views_total"), 5.0, "counters are named …_total");
        assert_eq!(sample(text, r#"db_pool_connections_in_use{pool="primary"}"#), 9.0);
        let series = r#"api_request_duration_seconds_count{endpoint="/vendors/:id"}"#;
        assert_eq!(sample(text, series), 100.0);
        assert_within(sample(text, r#"api_request_duration_seconds_sum{endpoint="/vendors/:id"}"#), 5.05, 1e-9, "sum");
        for q in [0.5, 0.9, 0.99] {
            let got =
                sample(text, &format!(r#"api_request_duration_seconds{{endpoint="/vendors/:id",quantile="{q}"}}"#));
            assert_within(got, exact_quantile(&latencies, q), 0.02, &format!("p{q}"));
        }
        assert!(text.contains("# TYPE api_request_duration_seconds summary\n"), "{text}");
        assert!(text.contains("# TYPE cache_requests_total counter\n"));
        assert!(text.contains("# TYPE db_pool_connections_in_use gauge\n"));
    }

    if !program("promtool", &["--version"], "apt-get install prometheus") {
        return;
    }
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check.stdin.take().unwrap().write_all(after.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
