//! Every limit answers with the right status and a message naming it, and loses nothing else.

use serde_json::json;

use crate::support::TestDaemon;

#[tokio::test]
async fn body_size_limit_is_413_and_names_the_limit() {
    let d = TestDaemon::start("limits:\n  max_body_bytes: 1000\n").await;
    let values: Vec<f64> = vec![0.001; 400];
    let (status, answer) =
        d.push_json(&json!({"metrics": [{"name": "big", "type": "timing", "values": values}]})).await;
    assert_eq!(status, 413);
    assert!(answer["error"].as_str().unwrap().contains("limits.max_body_bytes (1000 bytes)"), "{answer}");
    let (status, _) = d.push_json(&json!({"metrics": [{"name": "small", "type": "timing", "values": [0.1]}]})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn label_and_name_limits_are_400_per_entry() {
    let d = TestDaemon::start("limits:\n  max_labels: 3\n  max_name_len: 20\n  max_label_value_len: 10\n").await;
    let (status, answer) = d
        .push_json(&json!({"labels": {"service": "api", "env": "prod"}, "metrics": [
            {"name": "fine", "type": "gauge", "labels": {"pool": "main"}, "value": 1},
            {"name": "crowded", "type": "gauge", "labels": {"pool": "main", "shard": "3"}, "value": 1},
            {"name": "a_name_that_is_far_too_long", "type": "gauge", "value": 1},
            {"name": "wordy", "type": "gauge", "labels": {"pool": "a-very-long-value"}, "value": 1},
            {"name": "reserved", "type": "gauge", "labels": {"__name__": "x"}, "value": 1},
        ]}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["accepted"].as_u64(), answer["rejected"].as_u64()), (Some(1), Some(4)));
    let reasons: Vec<&str> =
        answer["errors"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("limits.max_labels (3)"), "{}", reasons[0]);
    assert!(reasons[1].contains("limits.max_name_len (20)"), "{}", reasons[1]);
    assert!(reasons[2].contains("limits.max_label_value_len (10)"), "{}", reasons[2]);
    assert!(reasons[3].contains("reserved"), "{}", reasons[3]);
    assert_eq!(d.query_one(&[("metric", "fine"), ("stat", "last")]).await, 1.0);
}

#[tokio::test]
async fn series_limit_is_429_for_new_series_and_existing_ones_keep_working() {
    let d = TestDaemon::start("limits:\n  max_series: 2\n").await;
    let push = |tier: &'static str| json!({"metrics": [{"name": "cache_hits_total", "type": "counter", "labels": {"tier": tier}, "value": 1}]});
    assert_eq!(d.push_json(&push("l1")).await.0, 200);
    assert_eq!(d.push_json(&push("l2")).await.0, 200);
    let (status, answer) = d.push_json(&push("l3")).await;
    assert_eq!(status, 429);
    assert!(answer["errors"][0]["reason"].as_str().unwrap().contains("limits.max_series"), "{answer}");
    assert_eq!(d.push_json(&push("l1")).await.0, 200);
    let sums = d.query(&[("metric", "cache_hits_total"), ("stat", "sum"), ("group_by", "tier")]).await;
    let got: Vec<(String, f64)> = sums
        .iter()
        .map(|s| (s["labels"]["tier"].as_str().unwrap().to_owned(), s["points"][0][1].as_f64().unwrap()))
        .collect();
    assert_eq!(got, vec![("l1".to_owned(), 2.0), ("l2".to_owned(), 1.0)]);
}

#[tokio::test]
async fn tokens_guard_push_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = crate::support::daemon_with_tokens(dir.path(), "push-secret", Some("api-secret")).await;
    let client = perfwatch::http_client::client();
    let body = json!({"metrics": [{"name": "t_total", "type": "counter", "value": 1}]});
    let anonymous = client.post(format!("{base}/api/v1/push")).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = client.post(format!("{base}/api/v1/push")).bearer_auth("api-secret").json(&body).send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = client.post(format!("{base}/api/v1/push")).bearer_auth("push-secret").json(&body).send().await.unwrap();
    assert_eq!(right.status().as_u16(), 200);
    let query = format!("{base}/api/v1/query?metric=t_total&stat=sum");
    assert_eq!(client.get(&query).send().await.unwrap().status().as_u16(), 401);
    let ok = client.get(&query).bearer_auth("api-secret").send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status().as_u16(), 200);
    daemon.shutdown().await;
}

#[tokio::test]
async fn bad_queries_say_what_to_write() {
    let d = TestDaemon::start("").await;
    d.push_json(&json!({"metrics": [{"name": "c_total", "type": "counter", "value": 1}]})).await;
    for (query, expected) in [
        ("/api/v1/query?stat=sum", "metric is required"),
        ("/api/v1/query?metric=c_total", "stat is required"),
        ("/api/v1/query?metric=c_total&stat=p101", "unknown stat"),
        ("/api/v1/query?metric=c_total&stat=p99", "needs a timing metric"),
        ("/api/v1/query?metric=c_total&stat=sum&from=yesterday", "RFC 3339"),
        ("/api/v1/query?metric=c_total&stat=sum&from=-1h&to=-2h", "must be before"),
        ("/api/v1/query?metric=c_total&stat=sum&from=-30d&step=1s", "use a larger step"),
        ("/api/v1/query?metric=c_total%7Bx%3D%7D&stat=sum", "double-quoted"),
    ] {
        let (status, answer) = d.get(query).await;
        assert_eq!(status, 400, "{query}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{query}: {message}");
    }
    let (status, _) = d.get("/no/such/route").await;
    assert_eq!(status, 404);
}
