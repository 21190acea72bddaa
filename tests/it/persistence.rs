//! Nothing acknowledged is lost: graceful shutdown flushes everything, and a restart reads it.

use serde_json::json;

use crate::support::TestDaemon;

#[tokio::test]
async fn shutdown_flushes_open_intervals_and_restart_keeps_them() {
    let d = TestDaemon::start("").await;
    let values: Vec<f64> = (1..=100).map(|i| i as f64 / 1000.0).collect();
    let (status, _) = d
        .push_json(&json!({"metrics": [
            {"name": "db_query_duration_seconds", "type": "timing", "labels": {"query": "vendor_by_id"}, "values": values},
            {"name": "http_5xx_total", "type": "counter", "value": 3},
        ]}))
        .await;
    assert_eq!(status, 200);
    // No flush: the data is only in the open interval when shutdown starts.
    let d = d.restart("").await;
    let count = d.query_one(&[("metric", "db_query_duration_seconds"), ("stat", "count")]).await;
    assert_eq!(count, 100.0);
    assert_eq!(d.query_one(&[("metric", "db_query_duration_seconds"), ("stat", "max")]).await, 0.1);
    assert_eq!(d.query_one(&[("metric", "http_5xx_total"), ("stat", "sum")]).await, 3.0);

    // More data in the same interval after the restart merges with what was flushed.
    d.push_json(&json!({"metrics": [{"name": "http_5xx_total", "type": "counter", "value": 2}]})).await;
    assert_eq!(d.query_one(&[("metric", "http_5xx_total"), ("stat", "sum")]).await, 5.0);
    d.flush().await;
    assert_eq!(d.query_one(&[("metric", "http_5xx_total"), ("stat", "sum")]).await, 5.0);
    let d = d.restart("").await;
    assert_eq!(d.query_one(&[("metric", "http_5xx_total"), ("stat", "sum")]).await, 5.0);
}
