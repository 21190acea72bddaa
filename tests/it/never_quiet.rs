//! Issue 13's defects, one regression test each: input that used to panic a handler, starve the
//! read pool, hang a connection, poison storage or cost good data beside it. Each test failed on
//! the main it was written against.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestDaemon, daemon_with_tokens, wait_for};

/// Sends `head` (request line and headers, and at most part of a body) over raw TCP and returns
/// the status line the daemon answers with, or panics after `deadline`.
async fn answer_without_body(base: &str, head: &str, deadline: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(deadline.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Ok(Err(err)) => panic!("connection failed after {:?}: {err}", started.elapsed()),
            Err(_) => panic!("no answer within {deadline:?}"),
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn queries_whose_arithmetic_would_overflow_are_refused_and_later_queries_answer() {
    let d = TestDaemon::start("").await;
    let (status, _) = d.push_json(&json!({"metrics": [{"name": "x_seconds", "type": "timing", "value": 0.25}]})).await;
    assert_eq!(status, 200);
    let hostile =
        "/api/v1/query?metric=x_seconds&stat=count&from=-290000000000y&to=9000000000000000000&step=100000000000000000";
    // More than the pool's four read connections: each used to panic and lose one.
    for _ in 0..6 {
        let (status, body) = d.get(hostile).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap().starts_with("from: cannot read time"), "{body}");
    }
    for hostile in [
        "/api/v1/query?metric=x_seconds&stat=count&from=-1h&step=9223372036854775807",
        "/api/v1/query?metric=x_seconds&stat=count&from=NaN",
        "/api/v1/query?metric=x_seconds&stat=count&from=-9223372036854775807s",
    ] {
        let (status, body) = d.get(hostile).await;
        assert_eq!(status, 400, "{hostile}: {body}");
    }
    assert_eq!(d.query_one(&[("metric", "x_seconds"), ("stat", "count")]).await, 1.0);
    let (status, _) = d.get("/readyz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_read_that_panics_gives_its_connection_back() {
    use perfwatch::store::{Store, StoreError, StoreSettings};
    let dir = tempfile::tempdir().unwrap();
    let tiers = perfwatch::config::Config::parse("storage:\n  path: x.db\n", "t.yaml").unwrap().tiers;
    let store = Store::open(StoreSettings { path: dir.path().join("t.db"), tiers, n_readers: 2 }).unwrap();
    for _ in 0..5 {
        let failed = store.reader.read(|_| -> Result<(), StoreError> { panic!("a bug in a read") }).await;
        assert!(matches!(&failed, Err(StoreError::ReadPanicked(m)) if m == "a bug in a read"), "{failed:?}");
    }
    let answered = tokio::time::timeout(Duration::from_secs(10), store.reader.read(|tx| tx.last_flush_seq())).await;
    assert_eq!(answered.expect("a connection is free").unwrap(), 0);
}

#[tokio::test]
async fn admin_bodies_are_refused_by_token_and_size_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = daemon_with_tokens(dir.path(), "push-secret", Some("api-secret")).await;
    let deadline = Duration::from_secs(10);
    for path in ["/api/v1/silences", "/api/v1/alerts/abc/ack"] {
        // No token: 401 without waiting for the 100 MB the request says are coming.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        );
        assert!(answer_without_body(&base, &head, deadline).await.contains(" 401 "), "{path} without a token");
        // The right token, a body over the route's limit: 413 at once.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer api-secret\r\nContent-Length: 100000000\r\n\r\n"
        );
        assert!(answer_without_body(&base, &head, deadline).await.contains(" 413 "), "{path} too large");
    }
    // A body over the limit sent chunked (no Content-Length) is cut off at the limit.
    let head = "POST /api/v1/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer api-secret\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut chunked = head.to_owned();
    for _ in 0..10 {
        chunked.push_str(&format!("2000\r\n{}\r\n", " ".repeat(8192)));
    }
    assert!(answer_without_body(&base, &chunked, deadline).await.contains(" 413 "), "chunked body over the limit");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_answered_413_before_it_arrives() {
    let d = TestDaemon::start("").await;
    // Every route that reads a body: pushes, and the small JSON and form documents.
    for path in [
        "/api/v1/push",
        "/write",
        "/api/v2/write",
        "/v1/metrics",
        "/metrics/job/x",
        "/api/v1/gate",
        "/api/v1/silences",
        "/api/v1/alerts/x/ack",
        "/api/v1/notifiers/x/test",
        "/ack/some-token",
    ] {
        let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 4294967296\r\n\r\n");
        let status = answer_without_body(&d.base, &head, Duration::from_secs(10)).await;
        assert!(status.contains(" 413 "), "{path}: {status}");
    }
}

/// Headers are bounded: more than 100, or more bytes than hyper's read buffer holds, get 431
/// at once instead of a buffer that grows with what a client sends.
#[tokio::test]
async fn oversized_headers_are_answered_431() {
    let d = TestDaemon::start("").await;
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge = format!("X-Big: {}\r\n", "a".repeat(600 * 1024));
    for (what, headers) in [("101 headers", many), ("a 600 KiB header", huge)] {
        let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let status = answer_without_body(&d.base, &head, Duration::from_secs(10)).await;
        assert!(status.contains(" 431 "), "{what}: {status}");
    }
    assert_eq!(d.get("/healthz").await.0, 200, "and the next client is served");
}

/// The token is checked before a byte of the body is read, on every push route: a client
/// that asks `Expect: 100-continue` without a token gets 401, never "100 Continue".
#[tokio::test]
async fn push_routes_check_the_token_before_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = daemon_with_tokens(dir.path(), "push-secret", None).await;
    for path in ["/api/v1/push", "/write", "/api/v2/write", "/v1/metrics", "/metrics/job/x"] {
        let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n");
        let status = answer_without_body(&base, &head, Duration::from_secs(10)).await;
        assert!(status.contains(" 401 "), "{path}: {status}");
    }
    daemon.shutdown().await;
}

#[tokio::test]
async fn silence_bodies_get_400_with_the_reason_and_401_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = daemon_with_tokens(dir.path(), "push-secret", Some("api-secret")).await;
    let client = perfwatch::http_client::client();
    let post = |body: &'static str, content_type: &'static str, token: Option<&'static str>| {
        let mut request =
            client.post(format!("{base}/api/v1/silences")).header("content-type", content_type).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let form = "match=%7Bservice%3D%22api%22%7D&author=ana";
    let (status, body) = post(form, "application/x-www-form-urlencoded", Some("api-secret")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("must be JSON"), "{body}");
    let (status, body) = post("{\"match\": \"{service=\\\"api\\\"}\",", "application/json", Some("api-secret")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("line 1 column"), "{body}");
    let without_comment = "{\"match\": \"{service=\\\"api\\\"}\", \"author\": \"ana\", \"duration\": \"1h\"}";
    let (status, body) = post(without_comment, "application/json", Some("api-secret")).await;
    assert_eq!(status, 201, "a comment is optional: {body}");
    for bad in [form, "{", without_comment] {
        let (status, body) = post(bad, "application/json", None).await;
        assert_eq!(status, 401, "no token is 401 whatever the body: {body}");
    }
    daemon.shutdown().await;
}

fn send_statsd(d: &TestDaemon, datagram: &[u8]) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = d.daemon.as_ref().unwrap().statsd_addr.expect("statsd listens");
    socket.send_to(datagram, addr).unwrap();
}

async fn wait_value(d: &TestDaemon, metric: &str, stat: &str, want: f64) {
    wait_for(&format!("{stat} of {metric} to be {want}"), Duration::from_secs(10), || async {
        let series = d.query(&[("metric", metric), ("stat", stat)]).await;
        let got = series.first().and_then(|s| s["points"][0][1].as_f64());
        (got == Some(want)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_statsd_line_of_bad_bytes_costs_only_itself() {
    let d = TestDaemon::start("").await;
    send_statsd(&d, b"\x00\xff garbage|||\nsd_a:4|c\n");
    wait_value(&d, "sd_a", "sum", 4.0).await;
}

#[tokio::test]
async fn weights_and_timestamps_that_would_overflow_are_refused() {
    let d = TestDaemon::start("").await;
    // Sample rates below one in a million, and a timestamp whose milliseconds overflow.
    let huge_ts = i64::MAX / 10;
    send_statsd(&d, format!("sd_w:1|ms|@1e-300\nsd_w:2|c|T{huge_ts}\nsd_w_ok:0.5|ms|@0.5\n").as_bytes());
    wait_value(&d, "sd_w_ok", "count", 2.0).await;
    assert!(d.query(&[("metric", "sd_w"), ("stat", "count")]).await.is_empty(), "both bad lines refused");
}

#[tokio::test]
async fn values_that_would_overflow_a_sum_are_refused_and_flushes_go_on() {
    let d = TestDaemon::start("").await;
    let ts = perfwatch::clock::now_ms();
    let gauge = |value: f64| json!({"name": "g_huge", "type": "gauge", "value": value, "timestamp_ms": ts});
    let body = json!({"metrics": [
        gauge(1.7e308), gauge(1.7e308), gauge(-1.7e308), gauge(-1.7e308),
        {"name": "g_fine", "type": "gauge", "value": 3.5, "timestamp_ms": ts},
    ]});
    let (status, answer) = d.push_json(&body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["accepted"].as_u64(), answer["rejected"].as_u64()), (Some(1), Some(4)), "{answer}");
    assert!(answer["errors"][0]["reason"].as_str().unwrap().contains("over 1e300"), "{answer}");
    d.flush().await;
    // The flush committed: what was accepted survives a restart.
    let d = d.restart_keeping_config().await;
    assert_eq!(d.query_one(&[("metric", "g_fine"), ("stat", "last")]).await, 3.5);
}

/// Defect 11, its second form: the same input spread over two intervals made both rollups'
/// sums infinite, and the coarse tier's merge of them stopped downsampling for every series.
/// The values are refused at the door; a fine series beside them reaches the coarse tier.
#[tokio::test]
async fn overflowing_values_over_two_intervals_leave_downsampling_running() {
    let tiers = "  interval: 1s\n  lateness_intervals: 2\n  tiers:\n    - {resolution: 1s, retention: 1d}\n    - {resolution: 2s, retention: 1d}\n";
    let d = TestDaemon::start(tiers).await;
    let now_ms = perfwatch::clock::now_ms();
    let (first, second) = (now_ms - now_ms % 1000 - 1000, now_ms - now_ms % 1000);
    let gauge = |value: f64, ts: i64| json!({"name": "g_huge", "type": "gauge", "value": value, "timestamp_ms": ts});
    let body = json!({"metrics": [
        gauge(1.7e308, first), gauge(1.7e308, first), gauge(-1.7e308, second), gauge(-1.7e308, second),
        {"name": "g_fine", "type": "gauge", "value": 3.5, "timestamp_ms": first},
    ]});
    let (status, answer) = d.push_json(&body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["accepted"].as_u64(), answer["rejected"].as_u64()), (Some(1), Some(4)), "{answer}");
    let db = d.dir.as_ref().unwrap().path().join("perfwatch.db");
    let d = &d;
    let coarse = wait_for("g_fine in the 2 s tier", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            d.flush().await;
            let conn = rusqlite::Connection::open(&db).ok()?;
            let sql = "SELECT r.last FROM rollup_2s r JOIN series s ON s.id = r.series_id WHERE s.name = 'g_fine'";
            conn.query_row(sql, [], |row| row.get::<_, f64>(0)).ok()
        }
    })
    .await;
    assert_eq!(coarse, 3.5);
    assert_eq!(d.get("/readyz").await.0, 200);
}

#[tokio::test]
async fn a_gzip_body_of_several_members_is_read_whole() {
    let d = TestDaemon::start("").await;
    let gzip = |text: &str| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    let mut body = gzip("gz,part=a v=1\n");
    body.extend(gzip("gz,part=b v=2\n"));
    let response =
        d.client.post(format!("{}/write", d.base)).header("content-encoding", "gzip").body(body).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(d.query(&[("metric", "gz_v"), ("stat", "count")]).await.len(), 2, "both members stored");
}

/// Defect 10: a gzip body was inflated, parsed and aggregated on the async runtime's worker
/// threads. This test's runtime has one thread, the daemon's too: were the 30 MiB push below
/// handled there, `/healthz` could not answer until it ended. It answers meanwhile, again and
/// again, and the push is stored whole.
#[tokio::test]
async fn a_large_gzip_push_leaves_the_async_workers_free() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = TestDaemon::start("").await;
    let line = b"gz_big,shard=a v=1.5\n";
    let n_lines = (30 << 20) / line.len();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..n_lines {
        encoder.write_all(line).unwrap();
    }
    let body = encoder.finish().unwrap();
    let mut stream = tokio::net::TcpStream::connect(d.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /write HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let push = tokio::spawn(async move {
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    });
    let mut answered = 0;
    while !push.is_finished() {
        let response = d.client.get(format!("{}/healthz", d.base)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        answered += 1;
    }
    let answer = push.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert!(answered >= 10, "/healthz answered {answered} times while the push was handled");
    d.flush().await;
    assert_eq!(d.query_one(&[("metric", "gz_big_v"), ("stat", "count"), ("group_by", "")]).await, n_lines as f64);
}

#[tokio::test]
async fn bad_bytes_names_and_doubles_cost_only_their_own_sample() {
    let d = TestDaemon::start("").await;
    // Influx: one line of invalid UTF-8 among good ones.
    let mut body = b"ok_line v=1\n".to_vec();
    body.extend_from_slice(b"bad\xff\xfe v=2\n");
    body.extend_from_slice(b"ok_line v=3\n");
    let response = d.client.post(format!("{}/write", d.base)).body(body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!((answer["accepted"].as_u64(), answer["rejected"].as_u64()), (Some(2), Some(1)), "{answer}");
    assert_eq!(answer["errors"][0]["line"], 2, "{answer}");
    assert!(answer["errors"][0]["reason"].as_str().unwrap().contains("not UTF-8"), "{answer}");
    assert_eq!(d.query_one(&[("metric", "ok_line_v"), ("stat", "count")]).await, 2.0);

    // OTLP/JSON: "NaN" is how protobuf's JSON writes a double; that point is refused, not the request.
    let now_ns = (perfwatch::clock::now_ms() as u64) * 1_000_000;
    let point = |value: Value| json!({"timeUnixNano": now_ns.to_string(), "asDouble": value});
    let export = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "otlp.nan", "gauge": {"dataPoints": [point(json!("NaN"))]}},
        {"name": "otlp.fine", "gauge": {"dataPoints": [point(json!("2.5"))]}},
    ]}]}]});
    let response = d.client.post(format!("{}/v1/metrics", d.base)).json(&export).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedDataPoints"], "1", "{answer}");
    assert_eq!(d.query_one(&[("metric", "otlp_fine"), ("stat", "last")]).await, 2.5);

    // An empty metric name is refused, not stored as `_`; a long label name is named as one.
    let long = "l".repeat(300);
    let (status, answer) = d
        .push_json(&json!({"metrics": [
            {"name": "", "type": "counter", "value": 1},
            {"name": "named", "type": "counter", "value": 1, "labels": {long.clone(): "v"}},
        ]}))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["errors"][0]["reason"].as_str().unwrap().contains("metric name is empty"), "{answer}");
    assert!(answer["errors"][1]["reason"].as_str().unwrap().starts_with("label name \"lll"), "{answer}");
    assert!(d.query(&[("metric", "_"), ("stat", "count")]).await.is_empty());
}

#[tokio::test]
async fn a_read_only_database_at_start_names_the_file_and_the_cause() {
    let Some(disk) = crate::support::Tmpfs::mount("1m") else { return };
    let path = disk.path.join("perfwatch.db");
    let yaml = format!("http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n", path.display());
    let config = perfwatch::config::Config::parse(&yaml, "ro.yaml").unwrap();
    perfwatch::Daemon::start(config.clone(), None).await.expect("starts on a writable disk").shutdown().await;
    disk.remount_read_only();
    let err = perfwatch::Daemon::start(config, None).await.err().expect("a read-only database cannot start");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "names the file: {message}");
    assert!(message.contains("Read-only file system"), "names the cause: {message}");
}

#[tokio::test]
async fn an_ack_link_never_acknowledges_a_later_incident_of_its_group() {
    use crate::notify::{PAGING_RULES, ack_link_in, paging_daemon_in, press_ack, push_lat};
    let slack = crate::slack_standin::SlackStandin::start(Vec::new()).await;
    let d = paging_daemon_in(tempfile::tempdir().unwrap(), &slack, PAGING_RULES, None).await;
    let first_page = wait_for("the first page", Duration::from_secs(20), || async {
        push_lat(&d, 0.5).await;
        slack.received().first().cloned()
    })
    .await;
    let old_link = ack_link_in(&first_page.1);
    let texts = |slack: &crate::slack_standin::SlackStandin| -> Vec<String> {
        slack.received().iter().map(|(_, m)| m["text"].as_str().unwrap_or_default().to_owned()).collect()
    };
    wait_for("the resolve", Duration::from_secs(20), || async {
        push_lat(&d, 0.1).await;
        texts(&slack).iter().any(|t| t.starts_with("[RESOLVED]")).then_some(())
    })
    .await;
    let n_before = texts(&slack).len();
    wait_for("the second incident's page", Duration::from_secs(20), || async {
        push_lat(&d, 0.5).await;
        texts(&slack)[n_before..].iter().any(|t| t.starts_with("[FIRING")).then_some(())
    })
    .await;
    let _firing = d.keep_pushing(crate::notify::lat(0.5));

    let shown = d.client.get(&old_link).send().await.unwrap();
    assert_eq!(shown.status(), 410);
    assert!(shown.text().await.unwrap().contains("earlier incident"));
    let pressed = press_ack(&d, &old_link, "ana").await;
    assert_eq!(pressed.status(), 410);
    let (_, alerts) = d.get("/api/v1/alerts").await;
    assert!(alerts["alerts"][0]["acked"].is_null(), "the new incident is not acknowledged: {alerts}");

    // Acknowledged another way, the new incident's own link says who and when.
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let acked = d.client.post(format!("{}/api/v1/alerts/{id}/ack", d.base)).json(&json!({"by": "carol"}));
    assert_eq!(acked.send().await.unwrap().status(), 200);
    let new_page = slack.received().into_iter().skip(n_before).find(|(_, m)| m["text"] == "[FIRING:1] ApiSlow");
    let new_link = ack_link_in(&new_page.expect("the new page").1);
    let html = wait_for("the group's acknowledgement to be saved", Duration::from_secs(20), || async {
        let shown = d.client.get(&new_link).send().await.unwrap();
        let status = shown.status();
        let html = shown.text().await.unwrap();
        (status == 409).then_some(html)
    })
    .await;
    assert!(html.contains("Already acknowledged") && html.contains("carol acknowledged it at"), "{html}");
}

/// A daemon whose HTTP server closes slow and idle connections after 2 s (a request with its
/// body after 3 s), with at most
/// `max_connections` open.
async fn daemon_with_http_limits(dir: &std::path::Path, max_connections: usize) -> (perfwatch::Daemon, String) {
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\n  header_read_timeout: 2s\n  request_timeout: 3s\n  max_connections: {max_connections}\nstatsd:\n  listen: null\nstorage:\n  path: {}\n",
        dir.join("perfwatch.db").display()
    );
    let config = perfwatch::config::Config::parse(&yaml, "limits.yaml").expect("test config is valid");
    let daemon = perfwatch::Daemon::start(config, None).await.expect("daemon starts");
    let base = format!("http://{}", daemon.http_addr);
    (daemon, base)
}

/// Waits until the server closes `stream` (EOF or reset), sending one header byte a second
/// meanwhile when `slow`; returns how long that took.
async fn until_closed(mut stream: tokio::net::TcpStream, slow: bool) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    if slow {
        let _ = stream.write_all(b"POST /api/v1/push HTTP/1.1\r\n").await;
    }
    let mut buf = [0u8; 256];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {} // a 408 or similar before the close
            },
            _ = tick.tick(), if slow => {
                if stream.write_all(b"X").await.is_err() {
                    return started.elapsed();
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_neither_starve_a_pusher_nor_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = daemon_with_http_limits(dir.path(), 10_000).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut held = tokio::task::JoinSet::new();
    for n in 0..3_000 {
        let stream = tokio::net::TcpStream::connect(&addr).await.expect("connects");
        // 2,000 idle, 1,000 sending a header byte a second (slowloris).
        held.spawn(until_closed(stream, n >= 2_000));
    }
    // A normal client pushes at full speed meanwhile: every push is taken.
    let client = perfwatch::http_client::client();
    for n in 0..200 {
        let body = json!({"metrics": [{"name": "beside_the_flood", "type": "counter", "value": 1}]});
        let response = client.post(format!("{base}/api/v1/push")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "push {n}");
    }
    assert_eq!(client.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    // Every held connection is closed by the server after the 2 s header read timeout.
    let mut n_closed = 0;
    let all_closed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(took) = held.join_next().await {
            assert!(took.unwrap() >= Duration::from_secs(1), "closed by the timeout, not at once");
            n_closed += 1;
        }
    })
    .await;
    assert!(all_closed.is_ok(), "only {n_closed} of 3000 held connections were closed within 30 s");
    let response = client.post(format!("{base}/api/v1/admin/flush")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("metric", "beside_the_flood"), ("stat", "sum")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["series"][0]["points"][0][1], 200.0, "{body}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once_and_slots_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = daemon_with_http_limits(dir.path(), 16).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // The server accepts in order, so the 17th finds all 16 slots taken.
    let extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let refused_after = until_closed(extra, false).await;
    assert!(refused_after < Duration::from_secs(2), "closed at once, not by the timeout: {refused_after:?}");
    // The idle ones time out; then requests are served again.
    let client = perfwatch::http_client::client();
    wait_for("a free connection slot", Duration::from_secs(20), || async {
        let response = client.get(format!("{base}/healthz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    drop(idle);
    daemon.shutdown().await;
}

/// Under a real open-file limit the connection limit is lowered to fit it, so a flood of
/// connections is closed at once past the limit instead of taking the last descriptor (which
/// used to leave `accept error: Too many open files` repeating and normal clients timing out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_connections_never_takes_the_last_file_descriptor() {
    if !crate::support::program("prlimit", &["--version"], "apt-get install util-linux") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("perfwatch.yaml");
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\n  header_read_timeout: 2s\nstatsd:\n  listen: null\nstorage:\n  path: {}\n",
        dir.path().join("perfwatch.db").display()
    );
    std::fs::write(&config, yaml).unwrap();
    // 512 descriptors: 256 are kept for the database, sockets and notifications, 256 are left
    // for connections (the configured http.max_connections is the default 10,000).
    let daemon = crate::support::DaemonProcess::spawn_with_open_files(&config, 512);
    let addr = daemon.base.trim_start_matches("http://").to_owned();
    let mut held = tokio::task::JoinSet::new();
    for _ in 0..800 {
        let stream = tokio::net::TcpStream::connect(&addr).await.expect("connects");
        held.spawn(until_closed(stream, false));
    }
    let (mut at_once, mut by_timeout) = (0, 0);
    while let Some(took) = held.join_next().await {
        if took.unwrap() < Duration::from_secs(1) { at_once += 1 } else { by_timeout += 1 }
    }
    assert!(by_timeout <= 256, "{by_timeout} connections were held open, more than the descriptors allow");
    assert!(at_once >= 800 - 256, "only {at_once} connections past the limit were closed at once");

    let client = perfwatch::http_client::client();
    let body = json!({"metrics": [{"name": "after_the_flood", "type": "counter", "value": 1}]});
    let response = client.post(format!("{}/api/v1/push", daemon.base)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let metrics = client.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    let refused = crate::support::metric_value(&metrics, "perfwatch_http_connections_refused_total", &[]);
    assert!(refused >= (800 - 256) as f64, "{refused} refused connections counted");
    let failed = crate::support::metric_value(&metrics, "perfwatch_http_accept_failures_total", &[]);
    assert_eq!(failed, 0.0, "no accept failed for want of descriptors");
    let log = daemon.log();
    assert!(log.contains("http.max_connections is above what the open-file limit allows"), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
}

/// Fills the file system holding `dir` with `dir/filler` until it is full.
async fn fill_disk(dir: &std::path::Path) {
    let path = dir.join("filler");
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.raw_os_error() == Some(28) => break, // ENOSPC
                Err(err) => panic!("filling the disk: {err}"),
            }
        }
        let _ = file.write_all(&chunk[..1]); // the last partial block
    })
    .await
    .unwrap();
}

/// Waits until `/readyz` answers 503 while holding a backlog in memory (a failed flush of
/// nothing would say 0 bytes), and returns what it says.
async fn readiness_holding_a_backlog(base: &str) -> String {
    let client = perfwatch::http_client::client();
    wait_for("readiness to say the database cannot be written", Duration::from_secs(20), || async {
        let response = client.get(format!("{base}/readyz")).send().await.ok()?;
        let status = response.status();
        let text = response.text().await.ok()?;
        let held: u64 = text.split(" of at most ").next()?.rsplit(' ').next()?.parse().ok()?;
        (status == 503 && held > 1).then_some(text)
    })
    .await
}

/// A push of `n` counter series named `name`, each 1.
fn many_series(name: &str, n: usize) -> Value {
    let metrics: Vec<Value> =
        (0..n).map(|i| json!({"name": name, "type": "counter", "value": 1, "labels": {"n": i.to_string()}})).collect();
    json!({ "metrics": metrics })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_keeps_pushes_in_memory_refuses_past_the_bound_and_loses_nothing() {
    let Some(disk) = crate::support::Tmpfs::mount("24m") else { return };
    let db = disk.path.join("perfwatch.db");
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 1s\n  max_unflushed_bytes: 1\n  ballast_bytes: 4194304\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\n    - {{resolution: 1m, retention: 1d}}\n",
        db.display()
    );
    let config = perfwatch::config::Config::parse(&yaml, "full.yaml").unwrap();
    let daemon = perfwatch::Daemon::start(config.clone(), None).await.expect("daemon starts");
    let base = format!("http://{}", daemon.http_addr);
    let client = perfwatch::http_client::client();
    let push = |body: Value| {
        let request = client.post(format!("{base}/api/v1/push")).json(&body);
        async move { request.send().await.unwrap() }
    };
    let ready = || async { client.get(format!("{base}/readyz")).send().await.unwrap() };
    assert_eq!(push(many_series("before_full", 10)).await.status(), 200);
    let ballast = disk.path.join("perfwatch.db.ballast");
    wait_for("the ballast", Duration::from_secs(20), || async { ballast.exists().then_some(()) }).await;

    fill_disk(&disk.path).await;
    // Taken while the store has not failed yet: held in memory.
    assert_eq!(push(many_series("during_full", 3000)).await.status(), 200);
    let unready = readiness_holding_a_backlog(&base).await;
    assert!(unready.contains("cannot be written") && unready.contains("storage.max_unflushed_bytes"), "{unready}");
    // Past the bound: 503 with Retry-After, nothing taken.
    let refused = push(many_series("refused", 1)).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "30");
    assert!(refused.text().await.unwrap().contains("nothing of this request was taken"));

    // Room again: perfwatch recovers by itself, and what it held is written.
    std::fs::remove_file(disk.path.join("filler")).unwrap();
    wait_for("readiness after the disk has room", Duration::from_secs(20), || async {
        (ready().await.status() == 200).then_some(())
    })
    .await;
    assert_eq!(push(many_series("after_full", 10)).await.status(), 200);

    // Full again, and perfwatch is stopped: the ballast makes room for the final flush.
    wait_for("the ballast again", Duration::from_secs(90), || async { ballast.exists().then_some(()) }).await;
    fill_disk(&disk.path).await;
    assert_eq!(push(many_series("at_stop", 3000)).await.status(), 200);
    daemon.shutdown().await;
    assert!(!ballast.exists(), "the ballast was released for the final flush");

    std::fs::remove_file(disk.path.join("filler")).unwrap();
    let daemon = perfwatch::Daemon::start(config, None).await.expect("daemon starts again");
    let base = format!("http://{}", daemon.http_addr);
    for (name, want) in [("before_full", 10.0), ("during_full", 3000.0), ("after_full", 10.0), ("at_stop", 3000.0)] {
        let response = client
            .get(format!("{base}/api/v1/query"))
            .query(&[("metric", name), ("stat", "sum"), ("group_by", ""), ("from", "-1h")])
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["series"][0]["points"][0][1].as_f64(), Some(want), "{name}: {body}");
    }
    let response = client.get(format!("{base}/api/v1/query")).query(&[("metric", "refused"), ("stat", "sum")]);
    let body: Value = response.send().await.unwrap().json().await.unwrap();
    assert_eq!(body["series"], json!([]), "the refused push was not taken");
    daemon.shutdown().await;
}

/// A disk that turns read-only under the running daemon (ext4 after an I/O error) is met like
/// a full one: pushes are held in memory up to the bound, refused with 503 past it, readiness
/// says why, and the stop says what it could not write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_turned_read_only_while_running_refuses_past_the_bound_and_says_so() {
    let Some(disk) = crate::support::Ext4Loop::mount("32M") else { return };
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 1s\n  max_unflushed_bytes: 1\n  ballast_bytes: 0\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\n",
        disk.path.join("perfwatch.db").display()
    );
    let config = perfwatch::config::Config::parse(&yaml, "read-only.yaml").unwrap();
    let daemon = perfwatch::Daemon::start(config, None).await.expect("daemon starts");
    let (client, base) = (perfwatch::http_client::client(), format!("http://{}", daemon.http_addr));
    let push = |body: Value| client.post(format!("{base}/api/v1/push")).json(&body).send();
    assert_eq!(push(many_series("stored", 10)).await.unwrap().status(), 200);
    let query = [("metric", "stored"), ("stat", "sum"), ("group_by", ""), ("from", "-1h")];
    wait_for("the first push on disk", Duration::from_secs(20), || async {
        let response = client.get(format!("{base}/api/v1/query")).query(&query).send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        (body["series"][0]["points"][0][1].as_f64() == Some(10.0)).then_some(())
    })
    .await;

    disk.fail_read_only();
    assert_eq!(push(many_series("held", 3000)).await.unwrap().status(), 200, "taken before the store failed");
    let unready = readiness_holding_a_backlog(&base).await;
    assert!(unready.contains("cannot be written") && unready.contains("storage.max_unflushed_bytes"), "{unready}");
    let refused = push(many_series("refused", 1)).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "30");
    assert!(refused.text().await.unwrap().contains("nothing of this request was taken"));

    let stopped = daemon.shutdown().await;
    let error = stopped.error.expect("the final flush failed and says so");
    assert!(stopped.lost_rollups >= 3000, "{} rollups reported lost: {error}", stopped.lost_rollups);
}

/// Defect 8: shutdown logged "everything accepted is on disk" after every final flush attempt
/// had failed. The stop now says what it could not write (and `perfwatch run` exits 1 then):
/// here the disk is full and no ballast was kept, so the final flush gives up at its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_that_cannot_write_everything_says_so() {
    let Some(disk) = crate::support::Tmpfs::mount("8m") else { return };
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  ballast_bytes: 0\n",
        disk.path.join("perfwatch.db").display()
    );
    let config = perfwatch::config::Config::parse(&yaml, "lossy.yaml").unwrap();
    let daemon = perfwatch::Daemon::start(config, None).await.expect("daemon starts");
    let (client, base) = (perfwatch::http_client::client(), format!("http://{}", daemon.http_addr));
    let push = |body: Value| client.post(format!("{base}/api/v1/push")).json(&body).send();
    assert_eq!(push(many_series("stored", 10)).await.unwrap().status(), 200);
    fill_disk(&disk.path).await;
    assert_eq!(push(many_series("held", 3000)).await.unwrap().status(), 200, "held in memory");
    let stopped = daemon.shutdown().await;
    let error = stopped.error.expect("the final flush failed and says so");
    assert!(error.contains("full"), "{error}");
    assert!(stopped.lost_rollups >= 3000, "{} rollups reported lost", stopped.lost_rollups);
}

/// A connection the server has accepted and served once (a health check), so its connection
/// task is known to be running.
async fn served_connection(base: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains("alive") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the health check was answered");
        answer.extend_from_slice(&buf[..n]);
    }
    stream
}

/// Sends `head` on `stream`, then one body byte every 500 ms until the server answers or
/// closes; returns the status line (empty when closed without one).
async fn trickle_body(mut stream: tokio::net::TcpStream, head: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            },
            _ = tick.tick() => {
                if stream.write_all(b"x").await.is_err() {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_and_does_not_hold_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = daemon_with_http_limits(dir.path(), 100).await;
    // The acknowledge form needs no token: a body a byte at a time used to hold its slot forever.
    let head = "POST /ack/whatever HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n";
    let stream = served_connection(&base).await;
    let answered = tokio::time::timeout(Duration::from_secs(20), trickle_body(stream, head)).await;
    let status = answered.expect("answered or closed by the request timeout");
    assert!(status.contains(" 408 "), "{status}");

    daemon.shutdown().await;

    // A request still running at the 10 s drain deadline (here it could run 60 s) is cut off:
    // its connection task held the flusher's handle, and the stop used to wait for it.
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  ballast_bytes: 0\n",
        dir.path().join("perfwatch.db").display()
    );
    let config = perfwatch::config::Config::parse(&yaml, "drain.yaml").unwrap();
    let daemon = perfwatch::Daemon::start(config, None).await.expect("daemon starts");
    let base = format!("http://{}", daemon.http_addr);
    // `Expect: 100-continue`: hyper says "100 Continue" once the handler reads the body, so
    // the request is known to be in flight before the stop.
    let mut stream = served_connection(&base).await;
    let head = "POST /api/v1/push HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4000\r\n\r\n";
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"), "the handler reads the body");
    }
    let trickling = tokio::spawn(trickle_body(stream, ""));
    let stopped = tokio::time::timeout(Duration::from_secs(30), daemon.shutdown()).await;
    assert!(stopped.is_ok(), "the stop finished within the drain deadline while a request trickled");
    let _ = trickling.await;
}

/// Found by reading the casts (issue 13's audit): an OTLP exponential histogram at scale -10
/// stored NaN bucket values and a rollup with min > max, and every quantile over it panicked
/// (rule evaluation included); OTLP cumulative totals skipped the finite and non-negative
/// checks; a silence's duration could overflow its end.
#[tokio::test]
async fn extreme_otlp_points_and_durations_are_refused_or_stored_sound() {
    let d = TestDaemon::start("").await;
    let now_ns = (perfwatch::clock::now_ms() * 1_000_000).to_string();
    let point =
        |data: serde_json::Value| serde_json::json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [data]}]}]});
    let exp = point(serde_json::json!({"name": "wide", "exponentialHistogram": {"aggregationTemporality": 2,
        "dataPoints": [{"startTimeUnixNano": "1", "timeUnixNano": now_ns, "count": "1", "sum": 1.5, "scale": -10,
                        "positive": {"offset": 0, "bucketCounts": ["1"]}}]}}));
    let far = point(serde_json::json!({"name": "far", "exponentialHistogram": {"aggregationTemporality": 2,
        "dataPoints": [{"startTimeUnixNano": "1", "timeUnixNano": now_ns, "count": "1", "scale": 0,
                        "positive": {"offset": 1100, "bucketCounts": ["1"]}}]}}));
    let total = |value: serde_json::Value| {
        point(serde_json::json!({"name": "hits", "sum": {"aggregationTemporality": 2, "isMonotonic": true,
            "dataPoints": [{"startTimeUnixNano": "1", "timeUnixNano": now_ns, "asDouble": value}]}}))
    };
    let post = |body: serde_json::Value| {
        let (client, url) = (d.client.clone(), format!("{}/v1/metrics", d.base));
        async move { client.post(url).json(&body).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    assert!(post(exp).await.get("partialSuccess").is_none(), "the scale -10 point is taken");
    for (body, why) in [
        (far, "beyond 1e300"),
        (total(serde_json::json!("Infinity")), "finite"),
        (total(serde_json::json!(-5)), "non-negative"),
    ] {
        let answer = post(body).await;
        let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(why), "{answer}");
    }
    d.flush().await;
    let (status, answer) = d.get("/api/v1/query?metric=wide&stat=p99&from=-5m").await;
    assert_eq!(status, 200, "{answer}");
    let p99 = answer["series"][0]["points"][0][1].as_f64().unwrap();
    // The bucket (1 s, 2^1024 s] stands for 2 s, as the sketch records it.
    assert!(p99.is_finite() && p99 > 0.0, "{answer}");

    let silence = serde_json::json!({"match": "{team=\"platform\"}", "duration": "9223372036854775807s", "author": "ana", "comment": "x"});
    let response = d.client.post(format!("{}/api/v1/silences", d.base)).json(&silence).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.contains("year 9999"), "{text}");
}

/// Found by issue 13's audit: an OTLP stream that switched from an explicit to an exponential
/// histogram (same series, same start time) read the explicit state as exponential — a bucket's
/// cumulative count as the scale, the next bound as the offset — and diffed the point against
/// that: 7 of its 10 observations counted, all 10 in the buckets. A switch either way is a new
/// stream: the point counts whole.
#[tokio::test]
async fn a_stream_switching_histogram_kinds_counts_as_a_reset() {
    let d = TestDaemon::start("").await;
    let now_ns = (perfwatch::clock::now_ms() * 1_000_000).to_string();
    let post = |data: (&str, serde_json::Value)| {
        let metric =
            serde_json::json!({"name": "switched", data.0: {"aggregationTemporality": 2, "dataPoints": [data.1]}});
        let body = serde_json::json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]});
        let (client, url) = (d.client.clone(), format!("{}/v1/metrics", d.base));
        async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let explicit = serde_json::json!({"startTimeUnixNano": "1", "timeUnixNano": now_ns, "count": "3",
        "sum": 6.0, "explicitBounds": [0.0], "bucketCounts": ["1", "2"]});
    assert_eq!(post(("histogram", explicit)).await, (200, "{}".to_owned()));
    let exponential = serde_json::json!({"startTimeUnixNano": "1", "timeUnixNano": now_ns, "count": "10",
        "sum": 20.0, "scale": 0, "positive": {"offset": 0, "bucketCounts": ["10"]}});
    assert_eq!(post(("exponentialHistogram", exponential)).await, (200, "{}".to_owned()));
    // And back: an explicit point after the exponential one counts whole too.
    let explicit = serde_json::json!({"startTimeUnixNano": "1", "timeUnixNano": now_ns, "count": "12",
        "sum": 7.0, "explicitBounds": [0.0], "bucketCounts": ["2", "10"]});
    assert_eq!(post(("histogram", explicit)).await, (200, "{}".to_owned()));
    d.flush().await;
    let count = d.query_one(&[("metric", "switched"), ("stat", "count"), ("group_by", "")]).await;
    assert_eq!(count, 25.0, "3 from the first explicit point, all 10 of the exponential one, all 12 of the last");
}

/// Found by issue 13's audit: a rule's `for:`, `window:` or regression `offset:` near the
/// largest 64-bit number of seconds overflowed when added to the evaluation time (a 500 from
/// `POST /api/v1/gate` in a debug build, a silently wrapped time in release). Durations longer
/// than the calendar perfwatch reads (10,000 years) are refused where they are read, naming
/// the file, line and column.
#[tokio::test]
async fn durations_beyond_the_calendar_are_refused_where_rules_are_read() {
    let d = TestDaemon::start("").await;
    d.push_json(&serde_json::json!({"metrics": [{"name": "lat", "type": "timing", "value": 0.5}]})).await;
    let rule = |field: &str| {
        let content = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        metric: lat\n        stat: max\n        window: 1m\n        above: 0.1\n{field}\n"
        );
        serde_json::json!({"files": [{"name": "huge.yaml", "content": content}]})
    };
    for (field, line) in [
        ("        for: 9223372036854775807", 9),
        ("        for: 9223372036854775807s", 9),
        ("        regression: {offset: 9223372036854775807, factor: 1.5}", 9),
        ("        labels: {}\n        annotations: {}\n        for: 400000000000", 11),
    ] {
        let response = d.client.post(format!("{}/api/v1/gate", d.base)).json(&rule(field)).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 400, "{field}: {text}");
        assert!(text.contains(&format!("huge.yaml:{line}:")) && text.contains("10000 years"), "{field}: {text}");
    }
    let window = rule("").to_string().replace("window: 1m", "window: 9223372036854775807s");
    let response = d.client.post(format!("{}/api/v1/gate", d.base)).body(window).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("10000 years"));
}

/// A task that panics is logged, counted in `perfwatch_task_restarts_total{task}` and shown in
/// `perfwatch_task_up{task}`, through the process's real metrics recorder; one that can start
/// again comes back up.
#[tokio::test]
async fn a_failed_task_is_counted_and_shown_down_in_metrics() {
    use perfwatch::supervise::{Restart, Tasks, supervise, watch};
    let recorder = crate::support::recorder();
    let tasks = Tasks::default();
    let failed = watch(tasks.register("it_one_shot", None), async { panic!("one-shot bug") }).await;
    assert_eq!(failed, Err("it panicked: one-shot bug".to_owned()));
    let cancel = tokio_util::sync::CancellationToken::new();
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counted, stop) = (runs.clone(), cancel.clone());
    let flaky = tokio::spawn(supervise(tasks.register("it_flaky", None), Restart::Yes, cancel.clone(), move || {
        let (runs, stop) = (counted.clone(), stop.clone());
        async move {
            if runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("first run fails");
            }
            stop.cancelled().await;
        }
    }));
    wait_for("the flaky task's second run", Duration::from_secs(10), || async {
        (runs.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    let text = recorder.render();
    let value = |metric: &str, task: &str| crate::support::metric_value(&text, metric, &[&format!("task=\"{task}\"")]);
    assert_eq!(value("perfwatch_task_restarts_total", "it_one_shot"), 1.0, "{text}");
    assert_eq!(value("perfwatch_task_up", "it_one_shot"), 0.0);
    assert_eq!(value("perfwatch_task_restarts_total", "it_flaky"), 1.0);
    assert_eq!(value("perfwatch_task_up", "it_flaky"), 1.0, "up again after its restart");
    assert_eq!(tasks.problems(perfwatch::clock::now_ms()), ["task it_one_shot is down (it panicked: one-shot bug)"]);
    cancel.cancel();
    flaky.await.unwrap();
}
