//! PromQL on perfwatch through its Prometheus API, over real HTTP on loopback, on a real
//! SQLite file with history written as a live daemon writes it (10 s rollups downsampled to
//! 1 m and 1 h).
//!
//! - `range`: 1,000 timing series (`api_request_duration_seconds`, 20 endpoints × 50
//!   instances, ten observations a 10 s interval) and 1,000 counters (`http_requests_total`,
//!   10 services × 100 instances) over 24 hours (`PERFWATCH_BENCH_HOURS`), then the two
//!   range queries over the whole history at 1 m steps, as Grafana sends them.
//! - `overview`: 10,000 series of the load generator's web platform with 3 hours of history,
//!   and 20 full refreshes of the Overview dashboard (its nine panel queries at once, over its
//!   default 3 hours at 15 s steps), as Grafana refreshes it.
//!
//! Each prints the median and worst (range) or p50/p99 (overview) of the timed runs; the
//! overview first times each panel's query alone.
//!
//!     cargo bench --bench promql [range|overview]
//!     PERFWATCH_BENCH_ONLY='db_pool' cargo bench --bench promql overview   # one panel, 30 times

use std::time::{Duration, Instant};

use perfwatch::Daemon;
use perfwatch::config::Config;
use perfwatch::loadgen::workload::{SeriesSpec, Shape, catalog};

mod common;

/// The daemon's allocator (see `src/main.rs`), so the figures are the daemon's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let which = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if which.as_deref().is_none_or(|w| w == "range") {
        range(&runtime);
    }
    if which.as_deref().is_none_or(|w| w == "overview") {
        overview(&runtime);
    }
}

fn range(runtime: &tokio::runtime::Runtime) {
    let hours: i64 = std::env::var("PERFWATCH_BENCH_HOURS").ok().and_then(|h| h.parse().ok()).unwrap_or(24);
    let mut specs = Vec::new();
    for instance in 0..50 {
        for endpoint in 0..20 {
            let labels = vec![("endpoint", format!("/endpoint/{endpoint}")), ("instance", format!("web-{instance}"))];
            let shape = Shape::Latency { median: 0.02 + 0.01 * endpoint as f64, sigma: 0.6 };
            specs.push(SeriesSpec { name: "api_request_duration_seconds", labels, shape });
        }
    }
    for instance in 0..100 {
        for service in 0..10 {
            let labels = vec![("service", format!("service-{service}")), ("instance", format!("web-{instance}"))];
            specs.push(SeriesSpec { name: "http_requests_total", labels, shape: Shape::Count { mean: 20.0 } });
        }
    }
    let (dir, daemon, base) = start(runtime, specs, hours * 3600);
    let end = perfwatch::clock::now_s() / 60 * 60;
    let start_s = end - hours * 3600 + 300;
    let queries = [
        "histogram_quantile(0.99, sum by (endpoint) (rate(api_request_duration_seconds[5m])))",
        "sum by (service) (rate(http_requests_total[5m]))",
    ];
    println!("1,000 timing and 1,000 counter series, {hours} h of history, range queries over it at 1 m steps:");
    runtime.block_on(async {
        let client = perfwatch::http_client::client();
        for query in queries {
            let params = [
                ("query", query.to_owned()),
                ("start", start_s.to_string()),
                ("end", end.to_string()),
                ("step", "60".into()),
            ];
            let mut times = Vec::new();
            for n in 0..6 {
                let started = Instant::now();
                let points = range_query(&client, &base, &params).await;
                assert!(points > 0, "{query}: no data");
                if n > 0 {
                    times.push(started.elapsed());
                }
            }
            times.sort();
            println!(
                "  {query}\n    median {:.0} ms, worst {:.0} ms (5 runs after a warm-up)",
                ms(times[2]),
                ms(times[4])
            );
        }
        daemon.shutdown().await;
    });
    drop(dir);
}

fn overview(runtime: &tokio::runtime::Runtime) {
    let (dir, daemon, base) = start(runtime, catalog(10_000), 3 * 3600);
    let board: serde_json::Value =
        serde_json::from_str(include_str!("../dashboards/overview.json")).expect("the Overview dashboard parses");
    let queries: Vec<String> = board["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().replace("$__rate_interval", "1m"))
        .collect();
    runtime.block_on(async {
        let client = perfwatch::http_client::client();
        let end = perfwatch::clock::now_s() / 15 * 15;
        // Each panel's query alone first; with PERFWATCH_BENCH_ONLY=<part of a query>, that
        // one 30 times over (to profile it), and no refreshes.
        let only = std::env::var("PERFWATCH_BENCH_ONLY").ok();
        let picked = queries.iter().filter(|q| only.as_ref().is_none_or(|o| q.contains(o.as_str())));
        for query in picked.cycle().take(if only.is_some() { 30 } else { queries.len() }) {
            let params =
                [("query", query.clone()), ("start", (end - 3 * 3600).to_string()), ("end", end.to_string()), ("step", "15".into())];
            let started = Instant::now();
            let points = range_query(&client, &base, &params).await;
            println!("  {:>6.0} ms, {points:>9} points: {query}", ms(started.elapsed()));
        }
        if only.is_some() {
            daemon.shutdown().await;
            return;
        }
        let mut times = Vec::new();
        for n in 0..22 {
            let end = perfwatch::clock::now_s() / 15 * 15;
            let started = Instant::now();
            let refresh = queries.iter().map(|q| {
                let params =
                    [("query", q.clone()), ("start", (end - 3 * 3600).to_string()), ("end", end.to_string()), ("step", "15".into())];
                let (client, base) = (client.clone(), base.clone());
                async move { range_query(&client, &base, &params).await }
            });
            let answered = futures_util::future::join_all(refresh).await;
            // perfwatch's own alert counts are not recorded here (`record_own_metrics: false`).
            let with_data = answered.iter().zip(&queries).all(|(p, q)| *p > 0 || q.contains("perfwatch_"));
            assert!(with_data, "every panel has data: {answered:?}");
            if n >= 2 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        println!(
            "Overview dashboard ({} queries at once, 3 h at 15 s steps), 10,000 series: p50 {:.0} ms, worst {:.0} ms (20 refreshes)",
            queries.len(),
            ms(times[10]),
            ms(times[19])
        );
        daemon.shutdown().await;
    });
    drop(dir);
}

/// A daemon on a store holding `specs` over the `history_s` before now.
fn start(
    runtime: &tokio::runtime::Runtime,
    specs: Vec<SeriesSpec>,
    history_s: i64,
) -> (tempfile::TempDir, Daemon, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("promql.db");
    let now = perfwatch::clock::now_s();
    let started = Instant::now();
    let n = specs.len();
    drop(common::build_specs(runtime, db.clone(), specs, history_s, now - now.rem_euclid(10)));
    eprintln!("history of {n} series over {} h written in {:.0?}", history_s / 3600, started.elapsed());
    let yaml = format!(
        "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 10s\n  ballast_bytes: 0\n  record_own_metrics: false\n  tiers:\n    - {{resolution: 10s, retention: 30d}}\n    - {{resolution: 1m, retention: 30d}}\n    - {{resolution: 1h, retention: 30d}}\nrules:\n  paths: []\n",
        db.display()
    );
    let daemon = runtime.block_on(Daemon::start(Config::parse(&yaml, "bench.yaml").unwrap(), None)).unwrap();
    let base = format!("http://{}", daemon.http_addr);
    (dir, daemon, base)
}

/// A range query as Grafana sends it; the number of points answered.
async fn range_query(client: &reqwest::Client, base: &str, params: &[(&str, String)]) -> usize {
    let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let response = client
        .post(format!("{base}/prometheus/api/v1/query_range"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{params:?}: {}", response.text().await.unwrap_or_default());
    let body: serde_json::Value = response.json().await.unwrap();
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().map_or(0, Vec::len) + s["histograms"].as_array().map_or(0, Vec::len))
        .sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
