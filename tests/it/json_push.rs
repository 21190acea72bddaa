//! Native JSON push → query: exact counts and extremes, quantiles within 1 %, across series,
//! per-entry rejection with the good entries kept, gzip bodies.

use std::io::Write;

use serde_json::json;

use crate::support::{TestDaemon, assert_within, exact_quantile, latencies};

#[tokio::test]
async fn timings_query_back_exactly_and_quantiles_within_one_percent() {
    let d = TestDaemon::start("").await;
    let gateway = latencies(3000, 1, 0.040);
    let vendors = latencies(2000, 2, 0.120);
    for chunk in 0..10 {
        let body = json!({
            "labels": {"service": "api-gateway"},
            "metrics": [
                {"name": "api_request_duration_seconds", "type": "timing", "labels": {"endpoint": "/health"},
                 "values": gateway[chunk * 300..(chunk + 1) * 300]},
                {"name": "api_request_duration_seconds", "type": "timing", "labels": {"endpoint": "/vendors/:id"},
                 "values": vendors[chunk * 200..(chunk + 1) * 200]},
            ]
        });
        let (status, answer) = d.push_json(&body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], 2);
        assert_eq!(answer["rejected"], 0);
    }
    let both: Vec<f64> = gateway.iter().chain(&vendors).copied().collect();
    let metric = "api_request_duration_seconds";
    let one = |stat: &'static str| [("metric", metric), ("stat", stat), ("group_by", "")];
    assert_eq!(d.query_one(&one("count")).await, 5000.0);
    assert_within(d.query_one(&one("sum")).await, both.iter().sum::<f64>(), 1e-9, "sum");
    assert_eq!(d.query_one(&one("min")).await, both.iter().copied().fold(f64::INFINITY, f64::min));
    assert_eq!(d.query_one(&one("max")).await, both.iter().copied().fold(0.0, f64::max));
    for (stat, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999)] {
        assert_within(d.query_one(&one(stat)).await, exact_quantile(&both, q), 0.01, stat);
    }

    // Per series (no group_by), and narrowed by a matcher.
    let per_series = d.query(&[("metric", metric), ("stat", "p99")]).await;
    assert_eq!(per_series.len(), 2);
    let vendors_p99 =
        d.query_one(&[("metric", "api_request_duration_seconds{endpoint=\"/vendors/:id\"}"), ("stat", "p99")]).await;
    assert_within(vendors_p99, exact_quantile(&vendors, 0.99), 0.01, "vendors p99");

    // The same numbers after everything went to disk.
    d.flush().await;
    assert_eq!(d.query_one(&one("count")).await, 5000.0);
    assert_within(d.query_one(&one("p99")).await, exact_quantile(&both, 0.99), 0.01, "p99 from disk");
}

#[tokio::test]
async fn counters_and_gauges() {
    let d = TestDaemon::start("").await;
    let body = json!({"labels": {"service": "cache"}, "metrics": [
        {"name": "cache_requests_total", "type": "counter", "labels": {"tier": "l1", "result": "hit"}, "value": 42},
        {"name": "cache_requests_total", "type": "counter", "labels": {"tier": "l1", "result": "miss"}, "value": 8},
        {"name": "cache_requests_total", "type": "counter", "labels": {"tier": "l1", "result": "hit"}, "value": 8},
        {"name": "db_pool_connections_in_use", "type": "gauge", "labels": {"pool": "primary"}, "value": 17},
        {"name": "db_pool_connections_in_use", "type": "gauge", "labels": {"pool": "primary"}, "value": 12},
    ]});
    let (status, answer) = d.push_json(&body).await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(5)));
    let hits = d.query_one(&[("metric", "cache_requests_total{result=\"hit\"}"), ("stat", "sum")]).await;
    assert_eq!(hits, 50.0);
    let by_result = d.query(&[("metric", "cache_requests_total"), ("stat", "sum"), ("group_by", "result")]).await;
    assert_eq!(by_result.len(), 2);
    assert_eq!(by_result[0]["labels"], json!({"result": "hit"}));
    assert_eq!(by_result[1]["points"][0][1], 8.0);
    let pool = [("metric", "db_pool_connections_in_use"), ("group_by", "")];
    let stat = |s: &'static str| [pool[0], pool[1], ("stat", s)];
    assert_eq!(d.query_one(&stat("last")).await, 12.0);
    assert_eq!(d.query_one(&stat("max")).await, 17.0);
    assert_eq!(d.query_one(&stat("avg")).await, 14.5);
}

#[tokio::test]
async fn bad_entries_are_refused_one_by_one_and_good_ones_kept() {
    let d = TestDaemon::start("").await;
    let body = json!({"metrics": [
        {"name": "ok_total", "type": "counter", "value": 1},
        {"name": "ok_total", "type": "counter", "value": -1},
        {"name": "ok_total", "type": "countr", "value": 1},
        {"type": "gauge", "value": 1},
        {"name": "lat", "type": "timing", "values": [0.1, "x"]},
        {"name": "lat", "type": "timing", "values": [0.1, -0.5]},
        {"name": "ok_total", "type": "counter", "value": 2, "colour": "red"},
        {"name": "ok_total", "type": "counter", "value": 3, "timestamp_ms": 1000},
        {"name": "ok_total", "type": "counter", "value": 4},
    ]});
    let (status, answer) = d.push_json(&body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"], 7);
    let errors = answer["errors"].as_array().unwrap();
    let indexes: Vec<u64> = errors.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, vec![1, 2, 3, 4, 5, 6, 7]);
    let reason = |idx: usize| errors[idx]["reason"].as_str().unwrap().to_owned();
    assert!(reason(0).contains("non-negative"), "{}", reason(0));
    assert!(reason(1).contains("unknown type \"countr\""), "{}", reason(1));
    assert!(reason(2).contains("missing \"name\""), "{}", reason(2));
    assert!(reason(3).contains("invalid type"), "{}", reason(3));
    assert!(reason(5).contains("unknown field \"colour\""), "{}", reason(5));
    assert!(reason(6).contains("older than the allowed lateness"), "{}", reason(6));
    assert_eq!(d.query_one(&[("metric", "ok_total"), ("stat", "sum")]).await, 5.0);
    let (_, nothing) = d.get("/api/v1/query?metric=lat&stat=count").await;
    assert_eq!(nothing["series"], json!([]));

    // Nothing usable at all: 400, still itemised.
    let (status, answer) = d.push_json(&json!({"metrics": [{"name": "x", "type": "gauge"}]})).await;
    assert_eq!((status, answer["rejected"].as_u64()), (400, Some(1)));
    // Not a push body: refused whole.
    let (status, answer) = d.push_json(&json!({"metric": []})).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("unknown field `metric`"), "{answer}");
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let d = TestDaemon::start("").await;
    let body = json!({"metrics": [{"name": "zipped_total", "type": "counter", "value": 7}]}).to_string();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body.as_bytes()).unwrap();
    let response = d
        .client
        .post(format!("{}/api/v1/push", d.base))
        .header("content-encoding", "gzip")
        .header("content-type", "application/json")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(d.query_one(&[("metric", "zipped_total"), ("stat", "sum")]).await, 7.0);
    let response = d
        .client
        .post(format!("{}/api/v1/push", d.base))
        .header("content-encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn metrics_and_series_listings() {
    let d = TestDaemon::start("").await;
    d.push_json(&json!({"metrics": [
        {"name": "cache_requests_total", "type": "counter", "labels": {"tier": "l1"}, "value": 1},
        {"name": "cache_requests_total", "type": "counter", "labels": {"tier": "l2"}, "value": 1},
        {"name": "api_request_duration_seconds", "type": "timing", "value": 0.1},
    ]}))
    .await;
    d.flush().await;
    d.push_json(&json!({"metrics": [{"name": "cache_requests_total", "type": "counter", "labels": {"tier": "l3"}, "value": 1}]}))
        .await;
    let (status, metrics) = d.get("/api/v1/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        metrics["metrics"],
        json!([
            {"name": "api_request_duration_seconds", "kind": "timing", "series": 1},
            {"name": "cache_requests_total", "kind": "counter", "series": 3},
        ])
    );
    let (_, series) = d.get("/api/v1/series?metric=cache_requests_total%7Btier%21%3D%22l1%22%7D").await;
    let tiers: Vec<&str> =
        series["series"].as_array().unwrap().iter().map(|s| s["labels"]["tier"].as_str().unwrap()).collect();
    assert_eq!(tiers, vec!["l2", "l3"]);
}

#[tokio::test]
async fn health_and_readiness() {
    let d = TestDaemon::start("").await;
    let (status, body) = d.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("alive")));
    d.flush().await;
    let (status, body) = d.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["flush_lag_seconds"].as_f64().unwrap() < 5.0, "{body}");
}
