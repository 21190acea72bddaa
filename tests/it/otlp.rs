//! OTLP/HTTP metrics at `/v1/metrics`, protobuf and JSON: sums in both temporalities and
//! monotonicities, gauges, explicit-bucket histograms (with units), cumulative streams turned
//! into deltas (re-sends add nothing, a new start time resets), resource attributes mapped to
//! labels, partial success and bad requests answered as the specification says.

use std::io::Write;

use perfwatch::ingest::parse::otlp_messages::*;
use prost::Message;
use serde_json::{Value, json};

use crate::support::TestDaemon;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { string_value: Some(value.into()), ..Default::default() }) }
}

fn now_ns() -> u64 {
    perfwatch::clock::now_ms() as u64 * 1_000_000
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "checkout"), kv("telemetry.sdk.language", "nodejs")],
            }),
            scope_metrics: vec![ScopeMetrics { scope: None, metrics }],
        }],
    }
}

fn sum(name: &str, temporality: i32, monotonic: bool, start: u64, value: f64) -> Metric {
    Metric {
        name: name.into(),
        sum: Some(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("http.route", "/vendors")],
                start_time_unix_nano: start,
                time_unix_nano: now_ns(),
                as_double: Some(value),
                ..Default::default()
            }],
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        }),
        ..Default::default()
    }
}

fn histogram(name: &str, unit: &str, temporality: i32, bounds: &[f64], counts: &[u64], sum: f64) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        histogram: Some(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: 1,
                time_unix_nano: now_ns(),
                count: counts.iter().sum(),
                sum: Some(sum),
                bucket_counts: counts.to_vec(),
                explicit_bounds: bounds.to_vec(),
                ..Default::default()
            }],
            aggregation_temporality: temporality,
        }),
        ..Default::default()
    }
}

async fn export(d: &TestDaemon, request: &ExportMetricsServiceRequest) -> ExportMetricsServiceResponse {
    let response = d
        .client
        .post(format!("{}/v1/metrics", d.base))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    ExportMetricsServiceResponse::decode(response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn protobuf_sums_gauges_and_histograms_become_series_with_cumulative_streams_as_deltas() {
    let d = TestDaemon::start("").await;
    let start = now_ns() - 60_000_000_000;
    let gauge = Metric {
        name: "db.pool.in_use".into(),
        gauge: Some(Gauge {
            data_points: vec![NumberDataPoint { as_int: Some(7), time_unix_nano: now_ns(), ..Default::default() }],
        }),
        ..Default::default()
    };
    let first = request(vec![
        sum("http.server.requests", CUMULATIVE, true, start, 10.0),
        sum("orders", DELTA, true, 0, 2.0),
        sum("queue.depth", CUMULATIVE, false, start, 4.0),
        gauge,
        histogram("http.server.duration", "ms", CUMULATIVE, &[100.0, 250.0, 500.0], &[1, 2, 1, 0], 700.0),
        histogram("render", "s", DELTA, &[0.1], &[3, 1], 0.5),
    ]);
    assert_eq!(export(&d, &first).await.partial_success, None);
    let second = request(vec![
        sum("http.server.requests", CUMULATIVE, true, start, 15.0),
        sum("orders", DELTA, true, 0, 3.0),
        histogram("http.server.duration", "ms", CUMULATIVE, &[100.0, 250.0, 500.0], &[1, 3, 1, 0], 900.0),
    ]);
    export(&d, &second).await;
    export(&d, &second).await; // re-sent: the cumulative points add nothing
    // The counter's stream restarted (a new start time): its 3 counts whole.
    export(&d, &request(vec![sum("http.server.requests", CUMULATIVE, true, start + 1_000, 3.0)])).await;

    let requests = "http_server_requests{service=\"checkout\",http_route=\"/vendors\"}";
    assert_eq!(d.query_one(&[("metric", requests), ("stat", "sum")]).await, 18.0, "10 + 5 + 0 + 3");
    let series = d
        .query(&[
            ("metric", "http_server_requests"),
            ("stat", "sum"),
            ("group_by", "service,http_route,telemetry_sdk_language"),
        ])
        .await;
    assert_eq!(series.len(), 1, "only mapped resource attributes become labels: {series:?}");
    assert_eq!(
        d.query_one(&[("metric", "orders"), ("stat", "sum")]).await,
        8.0,
        "2 + 3 + 3: a re-sent delta counts again"
    );
    assert_eq!(d.query_one(&[("metric", "queue_depth"), ("stat", "last")]).await, 4.0, "an up-down counter is a level");
    assert_eq!(d.query_one(&[("metric", "db_pool_in_use"), ("stat", "last")]).await, 7.0);
    let duration = [("metric", "http_server_duration{service=\"checkout\"}")];
    assert_eq!(d.query_one(&[duration[0], ("stat", "count")]).await, 5.0, "4, then 1 more, re-send none");
    let seconds = d.query_one(&[duration[0], ("stat", "sum")]).await;
    assert!((seconds - 0.9).abs() < 1e-9, "milliseconds stored as seconds: {seconds}");
    let p50 = d.query_one(&[duration[0], ("stat", "p50")]).await;
    assert!(p50 > 0.1 && p50 <= 0.25, "the median is in the (100, 250] ms bucket: {p50}");
    assert_eq!(d.query_one(&[("metric", "render"), ("stat", "count")]).await, 4.0, "a delta histogram, once");
}

#[tokio::test]
async fn json_exports_partial_success_and_bad_requests() {
    let d = TestDaemon::start("").await;
    let now = now_ns().to_string();
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "search"}}]},
        "scopeMetrics": [{"scope": {"name": "app"}, "metrics": [
            {"name": "cache.hit_ratio", "gauge": {"dataPoints": [{"timeUnixNano": now, "asDouble": 0.9,
                "attributes": [{"key": "tier", "value": {"stringValue": "l1"}}]}]}},
            {"name": "jobs", "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
                {"startTimeUnixNano": "1", "timeUnixNano": now, "asInt": "5"}]}},
            {"name": "legacy.latency", "summary": {"dataPoints": [{"count": "3", "sum": 1.5}]}},
            {"name": "bad.sum", "sum": {"isMonotonic": true, "dataPoints": [{"asDouble": 1}]}},
            {"name": "unknown.future.field", "gauge": {"dataPoints": [{"asDouble": 2, "flags": 0, "exemplars": []}]}, "metadata": []},
            {"name": "signed.latency", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
                {"count": "2", "scale": 3, "positive": {"offset": 1, "bucketCounts": ["1"]},
                 "negative": {"offset": 0, "bucketCounts": ["0", "1"]}}]}},
            {"name": "fine.latency", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
                {"count": "1", "scale": 40, "positive": {"offset": 1, "bucketCounts": ["1"]}}]}},
            // Two kinds where OTLP allows one: the first, as perfwatch always read them.
            {"name": "pool.in_use", "gauge": {"dataPoints": [{"asDouble": 3, "asInt": "9"}]},
             "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [{"asDouble": 4}]}}
        ]}]
    }]});
    let response = d.client.post(format!("{}/v1/metrics", d.base)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedDataPoints"], "4", "{answer}");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(message.contains("summaries") && message.contains("aggregation_temporality"), "{message}");
    assert!(message.contains("negative values") && message.contains("scale must be within"), "{message}");
    assert_eq!(d.query_one(&[("metric", "pool_in_use"), ("stat", "last")]).await, 3.0);
    assert_eq!(
        d.query_one(&[("metric", "cache_hit_ratio{service=\"search\",tier=\"l1\"}"), ("stat", "last")]).await,
        0.9
    );
    assert_eq!(d.query_one(&[("metric", "jobs"), ("stat", "sum")]).await, 5.0);
    assert_eq!(
        d.query_one(&[("metric", "unknown_future_field"), ("stat", "last")]).await,
        2.0,
        "unknown fields ignored"
    );

    // gzip, all good: an empty answer.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(serde_json::to_vec(&json!({"resourceMetrics": []})).unwrap().as_slice()).unwrap();
    let zipped = d
        .client
        .post(format!("{}/v1/metrics", d.base))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.status(), 200);
    assert_eq!(zipped.json::<Value>().await.unwrap(), json!({}));

    let garbage = d
        .client
        .post(format!("{}/v1/metrics", d.base))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let status = Status::decode(garbage.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(status.message.contains("not an OTLP metrics export"), "{}", status.message);
    let bad_json = d
        .client
        .post(format!("{}/v1/metrics", d.base))
        .header("content-type", "application/json")
        .body("{\"resourceMetrics\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let text = d
        .client
        .post(format!("{}/v1/metrics", d.base))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
}

#[tokio::test]
async fn a_cumulative_stream_survives_a_restart_without_counting_twice() {
    let d = TestDaemon::start("").await;
    let start = now_ns() - 60_000_000_000;
    export(&d, &request(vec![sum("http.server.requests", CUMULATIVE, true, start, 10.0)])).await;
    let d = d.restart_keeping_config().await;
    // The SDK sends its running total again after perfwatch restarted: only the growth counts.
    export(&d, &request(vec![sum("http.server.requests", CUMULATIVE, true, start, 12.0)])).await;
    assert_eq!(d.query_one(&[("metric", "http_server_requests"), ("stat", "sum")]).await, 12.0);
}

#[tokio::test]
async fn one_metric_over_statsd_pushgateway_influx_otlp_and_json_lands_in_one_series() {
    let d = TestDaemon::start("").await;
    // `db.pool.in_use` with pool=primary and job=checkout, one sample per protocol.
    let statsd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let statsd_addr = d.daemon.as_ref().unwrap().statsd_addr.unwrap();
    statsd.send_to(b"db.pool.in_use:41|g|#pool:primary,job:checkout", statsd_addr).unwrap();
    let text = "# TYPE db_pool_in_use gauge\ndb_pool_in_use{pool=\"primary\"} 42\n";
    let pushed = d.client.put(format!("{}/metrics/job/checkout", d.base)).body(text).send().await.unwrap();
    assert!(pushed.status().is_success());
    let influx = d
        .client
        .post(format!("{}/api/v2/write", d.base))
        .body("db.pool,pool=primary,job=checkout in_use=43")
        .send()
        .await
        .unwrap();
    assert_eq!(influx.status(), 204);
    let gauge = Metric {
        name: "db.pool.in_use".into(),
        gauge: Some(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("pool", "primary"), kv("job", "checkout")],
                as_double: Some(44.0),
                ..Default::default()
            }],
        }),
        ..Default::default()
    };
    let otlp = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics { scope: None, metrics: vec![gauge] }],
        }],
    };
    export(&d, &otlp).await;
    let json = json!({"metrics": [{"name": "db.pool.in_use", "type": "gauge", "value": 45, "labels": {"pool": "primary", "job": "checkout"}}]});
    assert_eq!(d.push_json(&json).await.0, 200);

    let series = crate::support::wait_for("all five samples", std::time::Duration::from_secs(10), || async {
        let series = d.query(&[("metric", "db_pool_in_use"), ("stat", "count"), ("group_by", "pool,job")]).await;
        (series.len() == 1 && series[0]["points"][0][1].as_f64() == Some(5.0)).then_some(series)
    })
    .await;
    assert_eq!(series[0]["labels"], json!({"job": "checkout", "pool": "primary"}));
    let all = d.get("/api/v1/series?metric=db_pool_in_use").await.1;
    assert_eq!(all["series"].as_array().unwrap().len(), 1, "one series: {all}");
}
