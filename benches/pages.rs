//! How fast the pages a person opens load, on a daemon as busy as the issue says: 10,000
//! active series with an hour of history (the load generator's web platform, 10 s rollups
//! downsampled to 1 m and 1 h in a real SQLite file) and 100 firing alerts. Times `GET /`
//! (the status page: every headline target with its hour-long trend, the slowest endpoints
//! and queries, alerts, incidents) and `GET /alerts/{id}` (the alert page: its rule measured
//! at ~90 points over the last hour, the timeline), each over real HTTP on loopback, after a
//! warm-up, and prints the median, 95th percentile and worst of each. The target is 200 ms.
//! The status page's trends are kept between loads and computed once a minute in the
//! background (`api/status/trend_cache.rs`), so a load reads only the minutes that may still
//! change; the first load after the start is printed on its own.
//!
//!     cargo bench --bench pages

use std::time::{Duration, Instant};

use perfwatch::Daemon;
use perfwatch::config::Config;

mod common;

const N_SERIES: usize = 10_000;
const HISTORY_S: i64 = 3_600;
const WARM_UP: usize = 5;
const TIMED: usize = 50;

/// 100 firing alerts: the checkout endpoint's p99 on web-0 … web-99, above a threshold every
/// one of them is over.
const RULES: &str = r#"groups:
  - name: bench
    interval: 10s
    rules:
      - alert: CheckoutSlow
        metric: api_request_duration_seconds{endpoint="/checkout",instance=~"web-[0-9]{1,2}"}
        stat: p99
        window: 5m
        group_by: [instance]
        above: 0.001
        severity: critical
        annotations:
          summary: "checkout p99 on {{ labels.instance }} is {{ value | duration }}"
"#;

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pages.db");
    let now = perfwatch::clock::now_s();
    let started = Instant::now();
    let history = common::build(&runtime, db.clone(), N_SERIES, HISTORY_S, now - now.rem_euclid(10));
    drop(history);
    eprintln!("history of {N_SERIES} series written in {:.0?}", started.elapsed());
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 10s\n  ballast_bytes: 0\n  tiers:\n    - {{resolution: 10s, retention: 30d}}\n    - {{resolution: 1m, retention: 30d}}\n    - {{resolution: 1h, retention: 30d}}\nrules:\n  paths: [{}]\n",
        db.display(),
        dir.path().join("rules.yaml").display()
    );
    runtime.block_on(async {
        let daemon = Daemon::start(Config::parse(&yaml, "bench.yaml").unwrap(), None).await.unwrap();
        let base = format!("http://{}", daemon.http_addr);
        let client = perfwatch::http_client::client();
        let id = wait_for_alerts(&client, &base, 100).await;
        let started = Instant::now();
        let first = client.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(first.status(), 200);
        first.bytes().await.unwrap();
        let first_ms = ms(started.elapsed());
        let mut lines = vec![format!("{:<30} {first_ms:.1} ms", "status page, first load")];
        for (what, path) in
            [("status page  GET /", "/".to_owned()), ("alert page   GET /alerts/{id}", format!("/alerts/{id}"))]
        {
            let times = time(&client, &format!("{base}{path}")).await;
            lines.push(format!(
                "{what:<30} median {:>6.1} ms   p95 {:>6.1} ms   worst {:>6.1} ms   ({TIMED} loads)",
                ms(times[TIMED / 2]),
                ms(times[TIMED * 95 / 100]),
                ms(times[TIMED - 1])
            ));
        }
        println!("{N_SERIES} series with an hour of history, 100 firing alerts:");
        for line in lines {
            println!("  {line}");
        }
        daemon.shutdown().await;
    });
}

/// Waits until `n` alerts fire; returns one's id.
async fn wait_for_alerts(client: &reqwest::Client, base: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body: serde_json::Value =
            client.get(format!("{base}/api/v1/alerts?state=firing")).send().await.unwrap().json().await.unwrap();
        let alerts = body["alerts"].as_array().unwrap();
        if alerts.len() >= n {
            return alerts[0]["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "only {} alerts fire after 2 minutes", alerts.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each load's time, sorted, after the warm-up.
async fn time(client: &reqwest::Client, url: &str) -> Vec<Duration> {
    let mut times = Vec::with_capacity(TIMED);
    for n in 0..WARM_UP + TIMED {
        let started = Instant::now();
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body = response.bytes().await.unwrap();
        assert!(body.len() > 1000, "{url}: a whole page");
        if n >= WARM_UP {
            times.push(started.elapsed());
        }
    }
    times.sort();
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
