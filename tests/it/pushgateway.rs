//! Prometheus text on Pushgateway paths: cumulative totals become per-interval deltas (first
//! push counts whole, a decrease is a reset), histograms feed the sketch, a malformed push
//! changes nothing, DELETE forgets the group; driven raw and by PyPI's prometheus_client.

use serde_json::json;

use crate::support::{TestDaemon, assert_within, python_with, run_python};

async fn put(d: &TestDaemon, path: &str, body: &str) -> (u16, serde_json::Value) {
    let response = d.client.put(format!("{}{path}", d.base)).body(body.to_owned()).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

const FIRST: &str = "# TYPE orders_total counter
orders_total{status=\"paid\"} 10
# TYPE checkout_seconds histogram
checkout_seconds_bucket{le=\"0.1\"} 2
checkout_seconds_bucket{le=\"0.5\"} 5
checkout_seconds_bucket{le=\"+Inf\"} 6
checkout_seconds_sum 2.1
checkout_seconds_count 6
# TYPE queue_depth gauge
queue_depth{job=\"spoofed\"} 4
# TYPE rpc summary
rpc{quantile=\"0.99\"} 0.25
rpc_sum 12
rpc_count 40
";

const SECOND: &str = "# TYPE orders_total counter
orders_total{status=\"paid\"} 15
# TYPE checkout_seconds histogram
checkout_seconds_bucket{le=\"0.1\"} 2
checkout_seconds_bucket{le=\"0.5\"} 6
checkout_seconds_bucket{le=\"+Inf\"} 8
checkout_seconds_sum 3.0
checkout_seconds_count 8
# TYPE queue_depth gauge
queue_depth 7
# TYPE rpc summary
rpc{quantile=\"0.99\"} 0.3
rpc_sum 15
rpc_count 50
";

#[tokio::test]
async fn cumulative_pushes_become_deltas() {
    let d = TestDaemon::start("").await;
    let path = "/metrics/job/checkout/instance/web1";
    let (status, answer) = put(&d, path, FIRST).await;
    assert_eq!((status, answer["accepted"].as_u64(), answer["rejected"].as_u64()), (200, Some(6), Some(0)), "{answer}");
    assert_eq!(put(&d, path, SECOND).await.0, 200);
    // A sample the limits refuse is listed by line; the rest of the push is kept.
    let (status, answer) = put(&d, path, "# TYPE ok gauge\nok 1\n# TYPE neg_total counter\nneg_total -5\n").await;
    assert_eq!((status, answer["errors"][0]["line"].as_u64()), (200, Some(4)), "{answer}");
    // The job restarted: its counter went down, so the new total counts whole.
    let (status, answer) = put(&d, path, "# TYPE orders_total counter\norders_total{status=\"paid\"} 3\n").await;
    assert_eq!(status, 200, "{answer}");

    let sum = |metric: &'static str| [("metric", metric), ("stat", "sum"), ("group_by", "")];
    assert_eq!(d.query_one(&sum("orders_total")).await, 18.0);
    let series = d.query(&[("metric", "orders_total"), ("stat", "sum")]).await;
    assert_eq!(series[0]["labels"], json!({"instance": "web1", "job": "checkout", "status": "paid"}));
    assert_eq!(d.query_one(&[("metric", "checkout_seconds"), ("stat", "count")]).await, 8.0);
    assert_within(d.query_one(&sum("checkout_seconds")).await, 3.0, 1e-12, "histogram sum");
    // Observations: 2 in (0, 0.1], 4 in (0.1, 0.5], 2 above 0.5 — p50 is the middle bucket's 0.3.
    assert_within(d.query_one(&[("metric", "checkout_seconds"), ("stat", "p50")]).await, 0.3, 0.01, "p50");
    // Grouping labels win over pushed ones.
    let depth = d.query(&[("metric", "queue_depth"), ("stat", "last")]).await;
    assert_eq!(depth[0]["labels"]["job"], "checkout");
    assert_eq!(depth[0]["points"][0][1], 7.0);
    assert_eq!(d.query_one(&[("metric", "rpc{quantile=\"0.99\"}"), ("stat", "last")]).await, 0.3);
    assert_eq!(d.query_one(&sum("rpc_count")).await, 50.0);
    assert_eq!(d.query_one(&sum("rpc_sum")).await, 15.0);

    // DELETE forgets the totals: the next push counts whole again.
    let deleted = d.client.delete(format!("{}{path}", d.base)).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 202);
    put(&d, path, "# TYPE orders_total counter\norders_total{status=\"paid\"} 20\n").await;
    assert_eq!(d.query_one(&sum("orders_total")).await, 38.0);
}

#[tokio::test]
async fn cumulative_state_survives_a_restart() {
    let d = TestDaemon::start("").await;
    let path = "/metrics/job/nightly";
    put(&d, path, "# TYPE rows_total counter\nrows_total 100\n").await;
    let d = d.restart("").await;
    put(&d, path, "# TYPE rows_total counter\nrows_total 130\n").await;
    assert_eq!(d.query_one(&[("metric", "rows_total"), ("stat", "sum")]).await, 130.0);
}

#[tokio::test]
async fn malformed_pushes_change_nothing_and_name_the_line() {
    let d = TestDaemon::start("").await;
    let (status, answer) = put(&d, "/metrics/job/x", "# TYPE a_total counter\na_total 5\nbroken{ 1\n").await;
    assert_eq!(status, 400);
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("line 3"), "{message}");
    assert_eq!(d.query(&[("metric", "a_total"), ("stat", "sum")]).await, Vec::<serde_json::Value>::new());
    for (path, fragment) in
        [("/metrics/instance/x", "job"), ("/metrics/job/x/lonely", "no value"), ("/metrics/job@base64/%%%", "base64")]
    {
        let (status, answer) = put(&d, path, "a_total 1\n").await;
        assert_eq!(status, 400, "{path}");
        assert!(answer["error"].as_str().unwrap().contains(fragment), "{path}: {answer}");
    }
    let protobuf = d
        .client
        .post(format!("{}/metrics/job/x", d.base))
        .header(
            "content-type",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        )
        .body(vec![40u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(protobuf.status().as_u16(), 400);
    let message = protobuf.json::<serde_json::Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
    assert!(message.contains("protobuf parsing error in metric family 1"), "{message}");
}

#[tokio::test]
async fn python_prometheus_client_push_functions() {
    let Some(python) = python_with("prometheus_client", "prometheus-client") else { return };
    let d = TestDaemon::start("").await;
    let script = r#"
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import push_to_gateway, pushadd_to_gateway, delete_from_gateway
url = sys.argv[1]
reg = CollectorRegistry()
jobs = Counter('jobs_processed', 'Jobs done', ['queue'], registry=reg)
secs = Histogram('job_seconds', 'Job time', buckets=[0.1, 0.5, 1.0], registry=reg)
last = Gauge('last_success_unixtime', 'When', registry=reg)
jobs.labels('emails').inc(3)
secs.observe(0.05)
secs.observe(0.7)
last.set(123)
push_to_gateway(url, job='batch', registry=reg)
jobs.labels('emails').inc(2)
secs.observe(0.3)
pushadd_to_gateway(url, job='batch', grouping_key={'instance': 'worker/1'}, registry=reg)
push_to_gateway(url, job='batch', registry=reg)
# The batch job restarts: a new registry counts from zero.
reg2 = CollectorRegistry()
Counter('jobs_processed', 'Jobs done', ['queue'], registry=reg2).labels('emails').inc(1)
push_to_gateway(url, job='batch', registry=reg2)
delete_from_gateway(url, job='batch')
push_to_gateway(url, job='batch', registry=reg2)
"#;
    run_python(&python, script, &[&d.base]).await;
    let batch = "jobs_processed_total{job=\"batch\",instance=\"\",queue=\"emails\"}";
    // 3, then +2, then a reset to 1, then after DELETE 1 counts whole again.
    assert_eq!(d.query_one(&[("metric", batch), ("stat", "sum")]).await, 7.0);
    // The grouping key's instance (with a '/', sent base64-encoded) made its own series.
    let worker = "jobs_processed_total{instance=\"worker/1\"}";
    assert_eq!(d.query_one(&[("metric", worker), ("stat", "sum")]).await, 5.0);
    let secs = "job_seconds{instance=\"\"}";
    assert_eq!(d.query_one(&[("metric", secs), ("stat", "count")]).await, 3.0);
    assert_within(d.query_one(&[("metric", secs), ("stat", "sum")]).await, 1.05, 1e-9, "histogram sum");
    assert_eq!(d.query_one(&[("metric", "last_success_unixtime{instance=\"\"}"), ("stat", "last")]).await, 123.0);
}

/// Builds the Go pusher against Debian's client_golang (GOPATH mode, no network), or says
/// what to install.
fn go_pusher(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let gopath = "/usr/share/gocode";
    let available = std::process::Command::new("go").arg("version").output().is_ok_and(|o| o.status.success())
        && std::path::Path::new(gopath).join("src/github.com/prometheus/client_golang/prometheus/push").is_dir();
    if !available {
        crate::support::missing(
            "interop test needs Go and the Go Prometheus client: apt-get install golang-go golang-github-prometheus-client-golang-dev (or run .ci/run)",
        );
        return None;
    }
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/go_push/main.go");
    let binary = dir.join("go_push");
    let out = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(&source)
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOFLAGS", "")
        .output()
        .expect("go runs");
    assert!(out.status.success(), "go build failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(binary)
}

#[tokio::test]
async fn go_client_pushes_protobuf() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(pusher) = tokio::task::spawn_blocking({
        let dir = scratch.path().to_owned();
        move || go_pusher(&dir)
    })
    .await
    .unwrap() else {
        return;
    };
    let d = TestDaemon::start("").await;
    let out = tokio::process::Command::new(&pusher).arg(&d.base).output().await.unwrap();
    assert!(out.status.success(), "go pusher failed: {}", String::from_utf8_lossy(&out.stderr));
    let labels = "{job=\"gobatch\",instance=\"worker-1\"}";
    let jobs = format!("go_jobs_processed_total{labels}");
    // 3, then +2, then after DELETE the total of 5 counts whole again.
    assert_eq!(d.query_one(&[("metric", &jobs), ("stat", "sum")]).await, 10.0);
    let secs = format!("go_job_seconds{labels}");
    assert_eq!(d.query_one(&[("metric", &secs), ("stat", "count")]).await, 6.0);
    assert_within(d.query_one(&[("metric", &secs), ("stat", "sum")]).await, 2.1, 1e-9, "histogram sum");
    assert_eq!(d.query_one(&[("metric", &format!("go_last_success_unixtime{labels}")), ("stat", "last")]).await, 123.0);
}

#[tokio::test]
async fn idle_cumulative_state_expires_and_the_next_push_counts_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("perfwatch.db");
    let one_second = "  interval: 1s\n  tiers:\n    - {resolution: 1s, retention: 1d}\n";
    let d = TestDaemon::start_in(
        dir,
        &format!("{one_second}limits:\n  cumulative_idle_after: 2s\n  series_idle_after: 2s\n"),
    )
    .await;
    let body = "# TYPE jobs_total counter\njobs_total 5\n";
    assert_eq!(put(&d, "/metrics/job/nightly", body).await.0, 200);
    d.flush().await;
    let rows = || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("SELECT count(*) FROM push_state", [], |r| r.get::<_, i64>(0)).unwrap()
    };
    assert_eq!(rows(), 1);
    // Idle past the setting: the next flush forgets it, on disk too.
    crate::support::wait_for("the state to expire", std::time::Duration::from_secs(20), || async {
        d.flush().await;
        (rows() == 0).then_some(())
    })
    .await;
    assert_eq!(put(&d, "/metrics/job/nightly", body).await.0, 200);
    assert_eq!(d.query_one(&[("metric", "jobs_total"), ("stat", "sum"), ("from", "-1h")]).await, 10.0);
}

#[tokio::test]
async fn a_restart_restores_cumulative_state_within_half_the_series_limit() {
    let d = TestDaemon::start("limits:\n  max_series: 10\n").await;
    let body: String = (0..8).map(|n| format!("churn_total{{pod=\"p{n}\"}} 1\n")).collect();
    assert_eq!(put(&d, "/metrics/job/deploy", &format!("# TYPE churn_total counter\n{body}")).await.0, 200);
    let d = d.restart_keeping_config().await;
    // Five of the eight streams come back (half the limit); five new series still fit.
    let fresh: Vec<serde_json::Value> =
        (0..8).map(|n| serde_json::json!({"name": format!("fresh_{n}"), "type": "counter", "value": 1})).collect();
    let (status, answer) = d.push_json(&serde_json::json!({ "metrics": fresh })).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["accepted"], 5, "{answer}");
}
