//! PromQL against a real Prometheus holding the same samples: one hour of counters and gauges
//! every 10 s, pushed into perfwatch (JSON, with timestamps; part flushed to SQLite, part still
//! in memory) and backfilled into Debian's Prometheus with `promtool tsdb
//! create-blocks-from openmetrics`. The same expressions go to both HTTP APIs, instant and
//! range; label sets must agree exactly and values within each function's stated tolerance:
//!
//! - exact (1e-9 relative) for selectors, `offset`, `@`, gauges' functions, `irate`,
//!   `changes`, `resets`, aggregations, binary operators and label functions;
//! - `rate`, `increase` and `delta` of counters within 12 %: perfwatch counts the exact
//!   increments of the intervals in the window, Prometheus extrapolates the change between its
//!   first and last sample to the window's edges; the two differ by about one interval's
//!   increment over the window (the error classes' counters increment by 0–2, so one interval
//!   is up to ~7 % of a 5-minute window; measured: median 1 %, p99 5 %, max 7.4 %).
//!
//! Samples sit 3 s into each 10 s interval, so none falls on a window's edge, where
//! Prometheus 2 (Debian's, windows closed on the left) and 3 (open) differ.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Prometheus, TestDaemon, free_port, program, wait_for};

/// One hour of 10 s intervals, starting 75 minutes ago on a whole minute.
const INTERVALS: i64 = 360;

#[derive(Clone, Copy, PartialEq)]
enum Tol {
    Exact,
    /// Counters' rate family: relative, see the module doc.
    Rate,
}

struct Sample {
    name: &'static str,
    counter: bool,
    labels: Vec<(&'static str, String)>,
    ts_ms: i64,
    /// A gauge's level or a counter's increment.
    value: f64,
    /// A counter's running total (what Prometheus stores).
    total: f64,
}

/// One sample before it is numbered: name, whether a counter, labels, level or increment.
type Pushed = (&'static str, bool, Vec<(&'static str, String)>, f64);

/// A small deterministic generator (the samples must be the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn samples(start_s: i64) -> Vec<Sample> {
    let mut rng = Lcg(42);
    let mut out = Vec::new();
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    let mut levels: BTreeMap<String, f64> = BTreeMap::new();
    for k in 0..INTERVALS {
        let ts_ms = (start_s + k * 10 + 3) * 1000;
        let mut series: Vec<Pushed> = Vec::new();
        for service in ["api", "web", "auth"] {
            series.push((
                "http_requests_total",
                true,
                vec![("service", service.into()), ("code", "200".into())],
                (5 + rng.next(10)) as f64,
            ));
            series.push((
                "http_requests_total",
                true,
                vec![("service", service.into()), ("code", "500".into())],
                rng.next(3) as f64,
            ));
        }
        for tier in ["l1", "l2", "l3"] {
            for result in ["hit", "miss"] {
                let increment = if result == "hit" { 20 + rng.next(20) } else { rng.next(6) };
                series.push((
                    "cache_requests_total",
                    true,
                    vec![("tier", tier.into()), ("result", result.into())],
                    increment as f64,
                ));
            }
        }
        if k >= 100 {
            series.push(("late_jobs_total", true, vec![("job", "late".into())], 1.0));
        }
        for pool in ["primary", "replica"] {
            let key = format!("pool{pool}");
            let level = levels.entry(key).or_insert(20.0);
            // Often unchanged, so changes() has something to count.
            if rng.next(3) == 0 {
                *level = (*level + rng.next(11) as f64 - 5.0).clamp(0.0, 50.0);
            }
            series.push(("db_pool_connections_in_use", false, vec![("pool", pool.into())], *level));
        }
        for service in ["api", "web"] {
            // web goes quiet for 450 s, longer than the 5 m lookback.
            if service == "web" && (200..245).contains(&k) {
                continue;
            }
            series.push(("queue_depth", false, vec![("service", service.into())], rng.next(100) as f64 / 4.0));
        }
        for (name, counter, labels, value) in series {
            let key = format!("{name}{labels:?}");
            let total = totals.entry(key).or_insert(0.0);
            *total += value;
            out.push(Sample { name, counter, labels, ts_ms, value, total: *total });
        }
    }
    out
}

/// The samples as OpenMetrics text for promtool: families grouped, each series in time order.
fn openmetrics(samples: &[Sample]) -> String {
    let mut families: BTreeMap<&str, BTreeMap<String, Vec<&Sample>>> = BTreeMap::new();
    for s in samples {
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        families.entry(s.name).or_default().entry(labels.join(",")).or_default().push(s);
    }
    let mut out = String::new();
    for (name, series) in families {
        let counter = series.values().next().is_some_and(|v| v[0].counter);
        let family = if counter { name.trim_end_matches("_total") } else { name };
        writeln!(out, "# TYPE {family} {}", if counter { "counter" } else { "gauge" }).unwrap();
        for (labels, points) in series {
            for s in points {
                let value = if s.counter { s.total } else { s.value };
                writeln!(out, "{name}{{{labels}}} {value} {}.{:03}", s.ts_ms / 1000, s.ts_ms % 1000).unwrap();
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

async fn push(d: &TestDaemon, samples: &[Sample]) {
    for chunk in samples.chunks(500) {
        let metrics: Vec<Value> = chunk
            .iter()
            .map(|s| {
                let labels: serde_json::Map<String, Value> =
                    s.labels.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
                json!({"name": s.name, "type": if s.counter { "counter" } else { "gauge" }, "labels": labels,
                       "value": s.value, "timestamp_ms": s.ts_ms})
            })
            .collect();
        let (status, answer) = d.push_json(&json!({ "metrics": metrics })).await;
        assert_eq!((status, &answer["rejected"]), (200, &json!(0)), "push: {answer}");
    }
}

/// Starts Prometheus on the backfilled blocks and waits until it answers.
async fn prometheus_with(samples: &[Sample], dir: &std::path::Path) -> (Prometheus, String) {
    let file = dir.join("samples.om");
    std::fs::write(&file, openmetrics(samples)).unwrap();
    let data = dir.join("data");
    let out = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&data)
        .output()
        .expect("promtool runs");
    assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let port = free_port();
    let child = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = perfwatch::http_client::client();
    wait_for("Prometheus ready", Duration::from_secs(30), || async {
        let response = client.get(format!("{base}/-/ready")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    (Prometheus(child), base)
}

/// A form-encoded POST, as Grafana sends queries; the answer's JSON.
pub async fn post_form(client: &reqwest::Client, url: &str, params: &[(&str, String)]) -> Value {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("the query is answered");
    let text = response.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url} answered {text:?}: {e}"))
}

/// A result as comparable points: label set (JSON) → `[(time, value)]`.
fn points(body: &Value) -> Result<BTreeMap<String, Vec<(String, f64)>>, String> {
    let data = &body["data"];
    let value = |v: &Value| -> (String, f64) {
        let t = v[0].to_string();
        let text = v[1].as_str().unwrap_or("?");
        let f = match text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or(f64::NAN),
        };
        (t, f)
    };
    let mut out = BTreeMap::new();
    match data["resultType"].as_str() {
        Some("scalar") => {
            out.insert("scalar".into(), vec![value(&data["result"])]);
        }
        Some("vector") => {
            for s in data["result"].as_array().ok_or("no result")? {
                out.insert(s["metric"].to_string(), vec![value(&s["value"])]);
            }
        }
        Some("matrix") => {
            for s in data["result"].as_array().ok_or("no result")? {
                let values = s["values"].as_array().ok_or("no values")?;
                out.insert(s["metric"].to_string(), values.iter().map(value).collect());
            }
        }
        other => return Err(format!("result type {other:?}")),
    }
    Ok(out)
}

fn close(a: f64, b: f64, tol: Tol) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let scale = a.abs().max(b.abs());
    match tol {
        Tol::Exact => (a - b).abs() <= 1e-9 * scale.max(1.0),
        Tol::Rate => (a - b).abs() <= 0.12 * scale,
    }
}

/// Compares one query's answers; `Err` says how they differ.
fn compare(prometheus: &Value, perfwatch: &Value, tol: Tol) -> Result<(), String> {
    if prometheus["status"] != "success" {
        return if perfwatch["errorType"] == prometheus["errorType"] {
            Ok(())
        } else {
            Err(format!("Prometheus: {prometheus}\nperfwatch: {perfwatch}"))
        };
    }
    if perfwatch["data"]["resultType"] != prometheus["data"]["resultType"] {
        return Err(format!("result types differ: Prometheus {prometheus}\nperfwatch {perfwatch}"));
    }
    let (want, got) = (points(prometheus)?, points(perfwatch)?);
    let (want_keys, got_keys): (Vec<&String>, Vec<&String>) = (want.keys().collect(), got.keys().collect());
    if want_keys != got_keys {
        return Err(format!("series differ:\n Prometheus {want_keys:?}\n perfwatch  {got_keys:?}"));
    }
    for (labels, want_points) in &want {
        let got_points = &got[labels];
        let want_times: Vec<&String> = want_points.iter().map(|p| &p.0).collect();
        let got_times: Vec<&String> = got_points.iter().map(|p| &p.0).collect();
        if want_times != got_times {
            return Err(format!("{labels}: times differ:\n Prometheus {want_times:?}\n perfwatch  {got_times:?}"));
        }
        for ((t, a), (_, b)) in want_points.iter().zip(got_points) {
            if !close(*a, *b, tol) {
                return Err(format!("{labels} at {t}: Prometheus {a}, perfwatch {b}"));
            }
        }
    }
    Ok(())
}

/// The expressions, each with its tolerance. `{at}` becomes a time inside the data.
fn expressions() -> Vec<(&'static str, Tol)> {
    use Tol::*;
    vec![
        ("http_requests_total", Exact),
        ("http_requests_total{service=\"api\"}", Exact),
        ("http_requests_total{code!=\"200\"}", Exact),
        ("http_requests_total{service=~\"a.*\"}", Exact),
        ("http_requests_total{service!~\"a.*|w.*\"}", Exact),
        ("{__name__=\"db_pool_connections_in_use\"}", Exact),
        ("{__name__=~\"db_pool.*|queue_depth\"}", Exact),
        ("late_jobs_total", Exact),
        ("db_pool_connections_in_use offset 5m", Exact),
        ("db_pool_connections_in_use @ {at}", Exact),
        ("cache_requests_total offset -2m", Exact),
        ("queue_depth", Exact),
        ("irate(http_requests_total[1m])", Exact),
        ("idelta(db_pool_connections_in_use[2m])", Exact),
        ("changes(db_pool_connections_in_use[10m])", Exact),
        ("resets(db_pool_connections_in_use[10m])", Exact),
        ("resets(http_requests_total[10m])", Exact),
        ("changes(http_requests_total{code=\"500\"}[10m])", Exact),
        ("avg_over_time(db_pool_connections_in_use[5m])", Exact),
        ("min_over_time(db_pool_connections_in_use[5m])", Exact),
        ("max_over_time(queue_depth[5m])", Exact),
        ("sum_over_time(queue_depth[5m])", Exact),
        ("count_over_time(queue_depth[5m])", Exact),
        ("count_over_time(http_requests_total[5m])", Exact),
        ("last_over_time(queue_depth[10m])", Exact),
        ("max_over_time(http_requests_total[5m])", Exact),
        ("min_over_time(cache_requests_total[5m])", Exact),
        ("quantile_over_time(0.9, db_pool_connections_in_use[10m])", Exact),
        ("stddev_over_time(db_pool_connections_in_use[10m])", Exact),
        ("stdvar_over_time(queue_depth[10m])", Exact),
        ("present_over_time(queue_depth[1m])", Exact),
        ("absent_over_time(queue_depth{service=\"web\"}[1m])", Exact),
        ("absent(nonexistent_metric{job=\"x\"})", Exact),
        ("delta(db_pool_connections_in_use[5m])", Exact),
        ("rate(db_pool_connections_in_use[5m])", Exact),
        ("abs(db_pool_connections_in_use - 25)", Exact),
        ("ceil(db_pool_connections_in_use / 7)", Exact),
        ("floor(queue_depth / 3)", Exact),
        ("round(db_pool_connections_in_use / 7, 0.5)", Exact),
        ("clamp(db_pool_connections_in_use, 10, 30)", Exact),
        ("clamp_min(queue_depth, 10)", Exact),
        ("clamp_max(queue_depth, 10)", Exact),
        ("sqrt(db_pool_connections_in_use)", Exact),
        ("ln(db_pool_connections_in_use + 1)", Exact),
        ("log2(http_requests_total)", Exact),
        ("log10(cache_requests_total)", Exact),
        ("exp(db_pool_connections_in_use / 50)", Exact),
        ("timestamp(db_pool_connections_in_use)", Exact),
        ("vector(1)", Exact),
        ("scalar(sum(db_pool_connections_in_use))", Exact),
        ("label_replace(db_pool_connections_in_use, \"p\", \"$1\", \"pool\", \"(pri).*\")", Exact),
        ("label_join(http_requests_total, \"sc\", \"-\", \"service\", \"code\")", Exact),
        ("sort_desc(db_pool_connections_in_use)", Exact),
        ("sum(db_pool_connections_in_use)", Exact),
        ("avg(queue_depth)", Exact),
        ("min(http_requests_total)", Exact),
        ("max by (tier) (cache_requests_total)", Exact),
        ("count(http_requests_total)", Exact),
        ("group by (code) (http_requests_total)", Exact),
        ("sum by (service) (http_requests_total)", Exact),
        ("sum without (code) (http_requests_total)", Exact),
        ("stddev(http_requests_total)", Exact),
        ("stdvar by (result) (cache_requests_total)", Exact),
        ("topk(2, http_requests_total)", Exact),
        ("bottomk by (service) (1, http_requests_total)", Exact),
        ("quantile(0.5, cache_requests_total)", Exact),
        ("count_values(\"level\", db_pool_connections_in_use)", Exact),
        ("http_requests_total{code=\"500\"} / ignoring(code) http_requests_total{code=\"200\"}", Exact),
        ("http_requests_total / on(service) group_left sum by (service) (http_requests_total)", Exact),
        ("sum by (service) (http_requests_total) / on(service) group_right http_requests_total", Exact),
        ("http_requests_total > 1000", Exact),
        ("http_requests_total > bool 1000", Exact),
        ("1000 < http_requests_total", Exact),
        ("db_pool_connections_in_use == bool 20", Exact),
        ("http_requests_total and http_requests_total{service=\"api\"}", Exact),
        ("http_requests_total{code=\"200\"} or cache_requests_total", Exact),
        ("http_requests_total unless on(service) http_requests_total{service=\"web\"}", Exact),
        ("2 * db_pool_connections_in_use + 1", Exact),
        ("2 ^ (db_pool_connections_in_use / 10)", Exact),
        ("cache_requests_total % 7", Exact),
        ("atan2(queue_depth, 10)", Exact),
        ("-db_pool_connections_in_use", Exact),
        ("max_over_time(db_pool_connections_in_use[10m:1m])", Exact),
        ("http_requests_total + on(service) http_requests_total", Exact),
        ("http_requests_total + ignoring(code) group_left cache_requests_total", Exact),
        ("rate(http_requests_total[5m])", Rate),
        ("increase(cache_requests_total[10m])", Rate),
        ("sum by (service) (rate(http_requests_total[5m]))", Rate),
        ("sum(rate(cache_requests_total{result=\"miss\"}[5m])) / sum(rate(cache_requests_total[5m]))", Rate),
        ("delta(http_requests_total[5m])", Rate),
        ("rate(http_requests_total[5m] offset 5m)", Rate),
        ("max_over_time(rate(http_requests_total[5m])[20m:1m])", Rate),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_answers_as_a_real_prometheus_on_the_same_samples() {
    if !program("prometheus", &["--version"], "apt-get install prometheus")
        || !program("promtool", &["--version"], "apt-get install prometheus")
    {
        return;
    }
    let now = perfwatch::clock::now_s();
    let start = now - now.rem_euclid(60) - 75 * 60;
    let samples = samples(start);
    let d = TestDaemon::start("  lateness_intervals: 500\n").await;
    // Two thirds flushed to SQLite (and downsampled), the rest still in memory.
    let split = samples.partition_point(|s| s.ts_ms < (start + 2400) * 1000);
    push(&d, &samples[..split]).await;
    d.flush().await;
    push(&d, &samples[split..]).await;
    let dir = tempfile::tempdir().unwrap();
    let (_prometheus, prom) = prometheus_with(&samples, dir.path()).await;

    // Instant queries at a whole minute, at :30 and at :50 (subqueries' steps fall between
    // the windows' edges at :30), in the quiet gap of queue_depth{service="web"}, and ranges
    // at 1 m (served by the minute tier), 15 s and 30 s steps.
    let instants = [start + 1500, start + 2730, start + 3590, start + 2300];
    let ranges = [(start + 600, start + 3600, 60), (start + 1200, start + 1800, 15), (start + 630, start + 3570, 30)];
    let at = (start + 1800).to_string();
    let mut compared = 0;
    let mut failures = Vec::new();
    for (template, tol) in expressions() {
        let expr = template.replace("{at}", &at);
        // A subquery's steps fall on whole minutes: evaluated at a whole minute, its window's
        // left edge holds a step, which Prometheus 2 counts and 3 does not.
        let subquery = expr.contains(":1m]");
        let instants: Vec<i64> = instants.iter().copied().filter(|t| !subquery || t % 60 != 0).collect();
        let ranges: Vec<(i64, i64, i64)> =
            if subquery { vec![(start + 630, start + 3570, 60)] } else { ranges.to_vec() };
        let mut requests: Vec<(&str, Vec<(&str, String)>)> =
            instants.iter().map(|t| ("query", vec![("query", expr.clone()), ("time", t.to_string())])).collect();
        for (from, to, step) in ranges {
            requests.push((
                "query_range",
                vec![
                    ("query", expr.clone()),
                    ("start", from.to_string()),
                    ("end", to.to_string()),
                    ("step", step.to_string()),
                ],
            ));
        }
        for (endpoint, params) in requests {
            let prometheus = post_form(&d.client, &format!("{prom}/api/v1/{endpoint}"), &params).await;
            let perfwatch = post_form(&d.client, &format!("{}/prometheus/api/v1/{endpoint}", d.base), &params).await;
            if let Err(why) = compare(&prometheus, &perfwatch, tol) {
                failures.push(format!("{endpoint} {params:?}:\n{why}"));
            }
            compared += 1;
        }
    }
    assert!(failures.is_empty(), "{} of {compared} answers differ:\n\n{}", failures.len(), failures.join("\n\n"));
    assert!(compared >= 90 * 6, "{compared} answers compared");
}
