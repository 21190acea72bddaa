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
