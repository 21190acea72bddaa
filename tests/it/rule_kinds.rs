//! Every rule kind evaluated by a running daemon on real rollups: levels switching severity,
//! a ratio of counters per tier, a regression against an hour ago, an absent service, and a
//! restart in the middle of `for`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestDaemon, assert_within, wait_for};

async fn push(d: &TestDaemon, metrics: Value) {
    let (status, answer) = d.push_json(&json!({ "metrics": metrics })).await;
    assert_eq!((status, answer["rejected"].as_u64()), (200, Some(0)), "{answer}");
}

/// Instances of `rule` (pending and firing).
async fn instances(d: &TestDaemon, rule: &str) -> Vec<Value> {
    let (_, body) = d.get("/api/v1/alerts").await;
    body["alerts"].as_array().unwrap().iter().filter(|a| a["rule"] == rule).cloned().collect()
}

/// Pushes `metrics` every round until an instance of `rule` satisfies `want`.
async fn push_until(d: &TestDaemon, metrics: Value, rule: &str, want: impl Fn(&Value) -> bool) -> Value {
    wait_for(rule, Duration::from_secs(20), || async {
        push(d, metrics.clone()).await;
        instances(d, rule).await.into_iter().find(|a| want(a))
    })
    .await
}

async fn transitions(d: &TestDaemon, alert: &Value) -> Vec<String> {
    let (_, detail) = d.get(&format!("/api/v1/alerts/{}", alert["id"].as_str().unwrap())).await;
    detail["history"].as_array().unwrap().iter().map(|h| h["transition"].as_str().unwrap().to_owned()).collect()
}

fn timing(name: &str, value: f64) -> Value {
    json!([{"name": name, "type": "timing", "value": value}])
}

#[tokio::test]
async fn levels_move_the_severity_of_a_firing_alert_both_ways() {
    let d = TestDaemon::with_rules(
        "groups:\n  - name: api\n    interval: 1s\n    rules:\n      - alert: ApiLevels\n        metric: lat\n        stat: max\n        window: 2s\n        levels: {warning: 0.15, critical: 0.3}\n",
    )
    .await;
    let warning = push_until(&d, timing("lat", 0.2), "ApiLevels", |a| a["state"] == "firing").await;
    assert_eq!((warning["severity"].as_str(), warning["threshold"].as_f64()), (Some("warning"), Some(0.15)));
    let critical = push_until(&d, timing("lat", 0.5), "ApiLevels", |a| a["severity"] == "critical").await;
    assert_eq!((critical["threshold"].as_f64(), critical["value"].as_f64()), (Some(0.3), Some(0.5)));
    assert_eq!(critical["firing_since"], warning["firing_since"], "one episode");
    let back = push_until(&d, timing("lat", 0.2), "ApiLevels", |a| a["severity"] == "warning").await;
    assert_eq!(back["state"], "firing");
    assert_eq!(transitions(&d, &back).await, vec!["firing", "severity_changed", "severity_changed"]);
}

#[tokio::test]
async fn a_cache_tier_below_its_hit_ratio_fires_alone_with_the_exact_ratio() {
    let d = TestDaemon::with_rules(
        "groups:\n  - name: cache\n    interval: 1s\n    rules:\n      - alert: CacheTierHitRatioLow\n        ratio:\n          numerator: 'cache_requests_total{result=\"hit\"}'\n          denominator: cache_requests_total\n        group_by: [tier]\n        window: 3s\n        below: 0.85\n",
    )
    .await;
    let counter = |tier: &str, result: &str, n: u32| json!({"name": "cache_requests_total", "type": "counter", "value": n, "labels": {"tier": tier, "result": result}});
    // L1 hits 95 %, L2 only 60 %: every push keeps the ratios, whatever the window holds.
    let metrics = json!([
        counter("L1", "hit", 95),
        counter("L1", "miss", 5),
        counter("L2", "hit", 60),
        counter("L2", "miss", 40)
    ]);
    let l2 = push_until(&d, metrics.clone(), "CacheTierHitRatioLow", |a| a["state"] == "firing").await;
    assert_eq!(l2["labels"]["tier"], "L2");
    assert_within(l2["value"].as_f64().unwrap(), 0.6, 1e-12, "L2 hit ratio");
    assert_eq!(l2["threshold"].as_f64(), Some(0.85));
    // L1 was measured in the same evaluation and never breached: no instance at all.
    let (_, body) = d.get("/api/v1/alerts?state=all").await;
    let tiers: Vec<&Value> = body["alerts"].as_array().unwrap().iter().map(|a| &a["labels"]["tier"]).collect();
    assert_eq!(tiers, vec!["L2"], "{body}");
}

#[tokio::test]
async fn a_regression_against_an_hour_ago_fires_with_the_ratio() {
    let d = TestDaemon::with_rules(
        "groups:\n  - name: regressions\n    interval: 1s\n    rules:\n      - alert: LatencyRegression\n        metric: lat\n        stat: p99\n        window: 5s\n        group_by: [endpoint]\n        regression: {offset: 1h, factor: 2}\n        min_samples: 5\n",
    )
    .await;
    // An hour ago (and a few minutes either side, so the window finds it as time passes):
    // both endpoints at 100 ms.
    let now = perfwatch::clock::now_s();
    let history: Vec<Value> = (now - 3600 - 300..now - 3600 + 300)
        .flat_map(|t| {
            ["/vendors/:id", "/search"].map(|endpoint| {
                json!({"name": "lat", "type": "timing", "values": vec![0.1; 5], "labels": {"endpoint": endpoint}, "timestamp_ms": t * 1000})
            })
        })
        .collect();
    push(&d, json!(history)).await;
    let now_metrics = json!([
        {"name": "lat", "type": "timing", "values": vec![0.3; 5], "labels": {"endpoint": "/vendors/:id"}},
        {"name": "lat", "type": "timing", "values": vec![0.1; 5], "labels": {"endpoint": "/search"}},
    ]);
    let alert = push_until(&d, now_metrics, "LatencyRegression", |a| a["state"] == "firing").await;
    assert_eq!(alert["labels"]["endpoint"], "/vendors/:id");
    assert_within(alert["value"].as_f64().unwrap(), 3.0, 0.02, "p99 now / p99 an hour ago");
    assert_eq!(alert["threshold"].as_f64(), Some(2.0));
    assert_eq!(instances(&d, "LatencyRegression").await.len(), 1);
}

#[tokio::test]
async fn a_service_that_stops_pushing_is_reported_absent_by_name() {
    let d = TestDaemon::with_rules(
        "groups:\n  - name: availability\n    interval: 1s\n    rules:\n      - alert: ServiceStoppedPushing\n        metric: heartbeat\n        group_by: [service]\n        absent: true\n        window: 3s\n        severity: critical\n",
    )
    .await;
    let beat =
        |service: &str| json!({"name": "heartbeat", "type": "gauge", "value": 1, "labels": {"service": service}});
    push(&d, json!([beat("api"), beat("search")])).await;
    // search goes quiet; api keeps beating.
    let absent = push_until(&d, json!([beat("api")]), "ServiceStoppedPushing", |a| a["state"] == "firing").await;
    assert_eq!((absent["labels"]["service"].as_str(), absent["severity"].as_str()), (Some("search"), Some("critical")));
    assert_eq!(instances(&d, "ServiceStoppedPushing").await.len(), 1);
    // It comes back: resolved.
    let resolved = wait_for("search resolved", Duration::from_secs(20), || async {
        push(&d, json!([beat("api"), beat("search")])).await;
        let (_, body) = d.get(&format!("/api/v1/alerts/{}", absent["id"].as_str().unwrap())).await;
        (body["alert"]["state"] == "inactive").then_some(body)
    })
    .await;
    let history: Vec<&str> =
        resolved["history"].as_array().unwrap().iter().map(|h| h["transition"].as_str().unwrap()).collect();
    assert_eq!(history, vec!["firing", "resolved"]);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_for_keeps_the_pending_timer() {
    let d = TestDaemon::with_rules(
        "groups:\n  - name: api\n    interval: 1s\n    rules:\n      - alert: ApiSlow\n        metric: lat\n        stat: max\n        window: 2s\n        above: 0.2\n        for: 6s\n",
    )
    .await;
    let pending = push_until(&d, timing("lat", 0.5), "ApiSlow", |a| a["state"] == "pending").await;
    let d = d.restart_keeping_config().await;
    let firing = push_until(&d, timing("lat", 0.5), "ApiSlow", |a| a["state"] == "firing").await;
    // The timer began before the restart and was not started over.
    assert_eq!(firing["pending_since"], pending["pending_since"]);
    let held = firing["firing_since"].as_i64().unwrap() - firing["pending_since"].as_i64().unwrap();
    assert!(held >= 6, "fired after {held}s of a 6s for");
    assert_eq!(transitions(&d, &firing).await, vec!["pending", "firing"]);
}
