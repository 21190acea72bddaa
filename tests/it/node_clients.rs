//! The Node.js client libraries a TypeScript platform already uses, from the npm registry
//! (installed by .ci/run with `npm ci`): prom-client's Pushgateway, hot-shots (DogStatsD over
//! UDP) and the InfluxDB client, each run against a live perfwatch, their data queried back
//! exactly.

use std::path::Path;
use std::time::Duration;

use crate::support::{TestDaemon, missing, program, wait_for};

const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/node");

/// Whether Node.js and the installed packages are there (else skipped, or failed in CI).
fn node_ready() -> bool {
    if !program("node", &["--version"], "install Node.js") {
        return false;
    }
    let installed = Path::new(NODE_DIR).join("node_modules/prom-client").is_dir();
    if !installed {
        missing("interop test needs the npm packages: npm ci --prefix tests/interop/node (or run .ci/run)");
    }
    installed
}

async fn run_node(script: &str, args: &[&str]) {
    let out = tokio::process::Command::new("node")
        .arg(Path::new(NODE_DIR).join(script))
        .args(args)
        .output()
        .await
        .expect("node runs");
    assert!(
        out.status.success(),
        "node {script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn prom_client_pushgateway_push_add_push_and_delete() {
    if !node_ready() {
        return;
    }
    let d = TestDaemon::start("").await;
    run_node("prom_client_push.js", &[&d.base]).await;
    // pushAdd with the counter at 3, push at 5: cumulative values become 3 + 2. After the
    // delete, the group starts afresh: pushing 5 again adds 5.
    let orders = "orders_total{job=\"checkout\",instance=\"node-1\",shop=\"bride\"}";
    assert_eq!(d.query_one(&[("metric", orders), ("stat", "sum")]).await, 10.0);
    assert_eq!(d.query_one(&[("metric", "queue_depth{job=\"checkout\"}"), ("stat", "last")]).await, 4.0);
    assert_eq!(
        d.query_one(&[("metric", "checkout_seconds{job=\"checkout\"}"), ("stat", "count")]).await,
        6.0,
        "3, then 3 anew"
    );
    // The histogram's buckets fed the sketch: p50 of 0.05, 0.2, 0.3 (twice) is in the (0.1, 0.25] bucket.
    let p50 = d.query_one(&[("metric", "checkout_seconds{job=\"checkout\"}"), ("stat", "p50")]).await;
    assert!(p50 > 0.1 && p50 <= 0.25, "p50 {p50}");
}

#[tokio::test]
async fn hot_shots_dogstatsd_types_tags_and_sample_rates() {
    if !node_ready() {
        return;
    }
    let d = TestDaemon::start("").await;
    let port = d.daemon.as_ref().unwrap().statsd_addr.unwrap().port().to_string();
    run_node("hot_shots.js", &[&port]).await;
    let checkout = "checkout_duration{env=\"test\",shop=\"bride\"}";
    // UDP: wait until the last line (the third set member) has been taken.
    wait_for("hot-shots' lines", Duration::from_secs(10), || async {
        let visitors = d.query(&[("metric", "visitors{env=\"test\"}"), ("stat", "sum")]).await;
        (visitors.first()?["points"][0][1].as_f64() == Some(2.0)).then_some(())
    })
    .await;
    // One timing at rate 1 and one at 0.5 (counted twice); milliseconds stored as seconds.
    assert_eq!(d.query_one(&[("metric", checkout), ("stat", "count")]).await, 3.0);
    let sum = d.query_one(&[("metric", checkout), ("stat", "sum")]).await;
    assert!((sum - 0.28).abs() < 1e-9, "0.120 + 2 × 0.080 s, got {sum}");
    assert_eq!(d.query_one(&[("metric", "payload_bytes{shop=\"bride\"}"), ("stat", "max")]).await, 512.0);
    assert_eq!(d.query_one(&[("metric", "render_seconds{env=\"test\"}"), ("stat", "p99")]).await, 0.25);
    assert_eq!(d.query_one(&[("metric", "orders{shop=\"bride\"}"), ("stat", "sum")]).await, 7.0, "3 + 1 at rate 0.25");
    assert_eq!(d.query_one(&[("metric", "queue_depth{env=\"test\"}"), ("stat", "last")]).await, 7.0);
}

#[tokio::test]
async fn the_influxdb_client_writes_line_protocol() {
    if !node_ready() {
        return;
    }
    let d = TestDaemon::start("").await;
    run_node("influx_write.js", &[&d.base, "any-token"]).await;
    let primary = "db_pool_in_use{pool=\"primary\",region=\"eu\"}";
    assert_eq!(d.query_one(&[("metric", primary), ("stat", "last")]).await, 48.0);
    assert_eq!(d.query_one(&[("metric", "db_pool_utilisation{pool=\"replica\"}"), ("stat", "last")]).await, 0.4);
    assert_eq!(d.query_one(&[("metric", "cache_hit_ratio{tier=\"l1\"}"), ("stat", "last")]).await, 0.9);
}

#[tokio::test]
async fn the_opentelemetry_sdk_exports_over_http_json_and_protobuf_in_both_temporalities() {
    if !node_ready() {
        return;
    }
    let d = TestDaemon::start("").await;
    let runs = [
        ("json-cumulative", "http", "cumulative", "explicit"),
        ("proto-delta", "proto", "delta", "explicit"),
        ("json-delta-exp", "http", "delta", "exponential"),
        ("proto-cumulative-exp", "proto", "cumulative", "exponential"),
    ];
    for (service, protocol, temporality, histograms) in runs {
        run_node("otel.js", &[&d.base, protocol, temporality, histograms, service]).await;
    }
    // Each run recorded 10, 20, … 100 ms twice, added 3 then 2 orders, moved sessions to 3
    // then 4, and observed a pool at 42.
    let latencies: Vec<f64> = (1..=10).flat_map(|i| [i as f64 / 100.0; 2]).collect();
    for (service, _, _, histograms) in runs {
        let at = |metric: &str| format!("{metric}{{service=\"{service}\"}}");
        assert_eq!(d.query_one(&[("metric", &at("orders")), ("stat", "sum")]).await, 5.0, "{service}");
        assert_eq!(d.query_one(&[("metric", &at("active_sessions")), ("stat", "last")]).await, 4.0, "{service}");
        assert_eq!(d.query_one(&[("metric", &at("pool_in_use")), ("stat", "last")]).await, 42.0, "{service}");
        let duration = at("checkout_duration");
        assert_eq!(d.query_one(&[("metric", &duration), ("stat", "count")]).await, 20.0, "{service}");
        let sum = d.query_one(&[("metric", &duration), ("stat", "sum")]).await;
        assert!((sum - 1.1).abs() < 1e-9, "{service}: milliseconds as seconds, {sum}");
        for q in [0.5, 0.99] {
            let got = d.query_one(&[("metric", &duration), ("stat", if q == 0.5 { "p50" } else { "p99" })]).await;
            let exact = crate::support::exact_quantile(&latencies, q);
            if histograms == "exponential" {
                // The bucket's representative (≤ 1.1 % at the SDK's scale) and the sketch (≤ 1 %).
                crate::support::assert_within(got, exact, 0.022, &format!("{service} p{q}"));
            } else {
                // Explicit buckets (the SDK's default bounds) bound the error by the bucket.
                let bounds = [0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25];
                let bucket = bounds.windows(2).find(|w| exact > w[0] && exact <= w[1]).unwrap();
                assert!(got >= bucket[0] && got <= bucket[1] * 1.01, "{service} p{q}: {got} outside {bucket:?}");
            }
        }
    }
}
