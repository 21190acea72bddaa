//! From the push that breaches a `for: 0s` rule to the request at a Slack-like receiver, end to
//! end through a real daemon (evaluation, grouping, outbox, delivery), 30 times. Prints the
//! latencies and how long after the evaluation tick that saw the sample each page arrived.
//! Then a storm: 10,000 alerts start firing at once; how long until their one grouped message
//! arrives, and how long small pushes take meanwhile (ingest must not stall).
//!
//!     cargo bench --bench page_latency

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use perfwatch::Daemon;
use perfwatch::config::Config;
use warp::Filter;

const N: usize = 30;

#[tokio::main]
async fn main() {
    // The receiver: answers `ok` and records when each page arrived.
    let arrivals: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let titles: Arc<Mutex<Vec<String>>> = Arc::default();
    let (log, log_titles) = (arrivals.clone(), titles.clone());
    let route = warp::post().and(warp::body::bytes()).map(move |body: bytes::Bytes| {
        log.lock().unwrap().push((Instant::now(), perfwatch::clock::now_ms()));
        let message: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        log_titles.lock().unwrap().push(message["text"].as_str().unwrap_or_default().to_owned());
        "ok"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/services/T/B/X", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(route).incoming(listener).run());

    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hook");
    std::fs::write(&secret, &hook).unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "groups:\n  - name: api\n    interval: 1s\n    rules:\n      - alert: Slow\n        metric: lat\n        stat: max\n        window: 1m\n        group_by: [endpoint]\n        above: 0.2\n        for: 0s\n        severity: critical\n      - alert: Storm\n        metric: storm_lat\n        stat: max\n        window: 1m\n        group_by: [endpoint]\n        above: 0.2\n        for: 0s\n",
    )
    .unwrap();
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\n    - {{resolution: 1m, retention: 1d}}\nrules:\n  paths: [{}]\nnotifiers:\n  slack:\n    type: slack\n    webhook_url_file: {}\n    rate_per_second: 0\nroutes:\n  - match: '{{alertname=\"Storm\"}}'\n    policy: page\n    group_by: [alertname]\n    group_wait: 0s\n  - policy: page\n    group_by: [alertname, endpoint]\n    group_wait: 0s\npolicies:\n  page:\n    steps: [{{after: 0s, notify: [slack]}}]\n",
        dir.path().join("bench.db").display(),
        rules.display(),
        secret.display()
    );
    let daemon = Daemon::start(Config::parse(&yaml, "bench.yaml").unwrap(), None).await.unwrap();
    let push_url = format!("http://{}/api/v1/push", daemon.http_addr);
    let client = perfwatch::http_client::client();

    let mut latencies = Vec::new();
    let mut after_tick = Vec::new();
    for i in 0..N {
        // Start at a random point of the 1 s evaluation cycle.
        tokio::time::sleep(Duration::from_millis(1000 + (i as u64 * 337) % 1000)).await;
        let body = serde_json::json!({"metrics": [{"name": "lat", "type": "timing", "value": 0.5, "labels": {"endpoint": format!("/e{i}")}}]});
        let pushed = Instant::now();
        let pushed_ms = perfwatch::clock::now_ms();
        let response = client.post(&push_url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        let (arrived, arrived_ms) = loop {
            if let Some(arrival) = arrivals.lock().unwrap().get(i).copied() {
                break arrival;
            }
            assert!(Instant::now() < deadline, "page {i} did not arrive");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push((arrived - pushed).as_secs_f64() * 1000.0);
        // The first evaluation that could see the sample starts at the next whole second.
        let tick_ms = (pushed_ms / 1000 + 1) * 1000;
        after_tick.push((arrived_ms - tick_ms) as f64);
    }
    report("push → Slack request (ms)", &mut latencies);
    report("evaluation tick → Slack request (ms)", &mut after_tick);

    // The storm, with a small push every 10 ms alongside.
    let metrics: Vec<_> = (0..10_000)
        .map(|i| serde_json::json!({"name": "storm_lat", "type": "timing", "value": 0.5, "labels": {"endpoint": format!("/s{i}")}}))
        .collect();
    let storm = serde_json::json!({ "metrics": metrics });
    let pages_before = arrivals.lock().unwrap().len();
    let probe = {
        let (client, url) = (client.clone(), push_url.clone());
        tokio::spawn(async move {
            let mut took = Vec::new();
            let body = serde_json::json!({"metrics": [{"name": "probe", "type": "gauge", "value": 1}]});
            for _ in 0..300 {
                let started = Instant::now();
                client.post(&url).json(&body).send().await.unwrap();
                took.push(started.elapsed().as_secs_f64() * 1000.0);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            took
        })
    };
    let started = Instant::now();
    assert_eq!(client.post(&push_url).json(&storm).send().await.unwrap().status(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() == pages_before {
        assert!(Instant::now() < deadline, "the storm's page did not arrive");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let storm_page = started.elapsed().as_secs_f64() * 1000.0;
    let mut probes = probe.await.unwrap();
    daemon.shutdown().await;
    println!(
        "10,000 alerts at once → their grouped page: {storm_page:.0} ms; pages: {:?}",
        &titles.lock().unwrap()[pages_before..]
    );
    report("small pushes meanwhile (ms)", &mut probes);
}

fn report(what: &str, values: &mut [f64]) {
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    println!(
        "{what}: min {:.0}, median {:.0}, p95 {:.0}, max {:.0} (n = {})",
        values[0],
        at(0.5),
        at(0.95),
        values[values.len() - 1],
        values.len()
    );
}
