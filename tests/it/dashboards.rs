//! The Grafana dashboards in `dashboards/`: every panel query parses as PromQL and names only
//! metrics perfwatch exposes, and — against a real Prometheus (Debian's package) scraping
//! perfwatch while the web-platform workload is pushed — every query returns data.

use std::collections::BTreeSet;
use std::time::Duration;

use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use rand::SeedableRng;
use serde_json::{Value, json};

use crate::support::{Prometheus, TestDaemon, free_port, program, wait_for};

const DASHBOARDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards");

/// (file, panel title, query) for every panel target, with Grafana's interval variable filled.
fn queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(DASHBOARDS).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let board: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let variables = board["templating"]["list"].as_array().unwrap();
        assert!(
            variables
                .iter()
                .any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
            "{file}: a Prometheus data source variable"
        );
        let mut ids = BTreeSet::new();
        for panel in board["panels"].as_array().unwrap() {
            assert!(ids.insert(panel["id"].as_i64().unwrap()), "{file}: panel ids are unique");
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{file}: {}", panel["title"]);
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap().replace("$__rate_interval", "1m");
                out.push((file.clone(), panel["title"].as_str().unwrap().to_owned(), expr));
            }
        }
    }
    out
}

struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = ();
    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
        let selector = match expr {
            Expr::VectorSelector(v) => Some(v),
            Expr::MatrixSelector(m) => Some(&m.vs),
            _ => None,
        };
        if let Some(name) = selector.and_then(|v| v.name.clone()) {
            self.0.insert(name);
        }
        Ok(true)
    }
}

/// A rule evaluated every second, so the alert families have series.
const QUICK_RULE: &str = "groups:\n  - name: quick\n    interval: 1s\n    rules:\n      - alert: SlowApi\n        metric: api_request_duration_seconds\n        stat: p99\n        window: 1m\n        above: 10\n";

/// A daemon with the workload pushed, a 1 s rule evaluating, a test notification delivered
/// and a sample rejected, so every family a dashboard shows has data.
async fn daemon_with_workload() -> TestDaemon {
    let d = TestDaemon::with_rules(QUICK_RULE).await;
    push_workload(&d.client, &d.base).await;
    let (_, answer) =
        d.push_json(&serde_json::json!({"metrics": [{"name": "x", "type": "nonsense", "value": 1}]})).await;
    assert_eq!(answer["rejected"], 1, "one rejected sample for the rejected panel: {answer}");
    let sent = d.client.post(format!("{}/api/v1/notifiers/log/test", d.base)).body("").send().await.unwrap();
    assert_eq!(sent.status(), 202);
    d
}

async fn push_workload(client: &reqwest::Client, base: &str) {
    let specs = perfwatch::loadgen::workload::catalog(40);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let (body, _) = perfwatch::loadgen::encode::json_body(&specs, 0, specs.len(), 20, &mut rng);
    let response = client.post(format!("{base}/api/v1/push")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// Sample names in an exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_panel_query_parses_and_names_only_metrics_perfwatch_exposes() {
    let queries = queries();
    assert!(queries.len() >= 40, "six dashboards' queries: {}", queries.len());
    // The overview draws the targets: API p99 200 ms, cache hit ratio 85 %, DB p99 50 ms.
    let overview: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DASHBOARDS}/overview.json")).unwrap()).unwrap();
    let threshold = |title: &str| {
        let panel = overview["panels"].as_array().unwrap().iter().find(|p| p["title"] == title).unwrap();
        panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"].as_f64().unwrap()
    };
    assert_eq!(threshold("API p99 by endpoint"), 0.2);
    assert_eq!(threshold("Cache hit ratio by tier"), 0.85);
    assert_eq!(threshold("DB p99 by query"), 0.05);
    let mut wanted: Vec<(String, String, String)> = Vec::new();
    for (file, title, expr) in &queries {
        let parsed = parser::parse(expr).unwrap_or_else(|e| panic!("{file} / {title}: {expr} does not parse: {e}"));
        let mut names = Names(BTreeSet::new());
        walk_expr(&mut names, &parsed).unwrap();
        assert!(!names.0.is_empty(), "{file} / {title}: {expr} names no metric");
        wanted.extend(names.0.into_iter().map(|n| (file.clone(), title.clone(), n)));
    }
    // Some families appear only once their event happened (the first flush, the rule's first
    // evaluation, the first delivery): wait for them, then report any that never come.
    let d = daemon_with_workload().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut missing = wanted;
    while !missing.is_empty() && std::time::Instant::now() < deadline {
        let text = d.client.get(format!("{}/metrics", d.base)).send().await.unwrap().text().await.unwrap();
        let exposed = exposed(&text);
        missing.retain(|(_, _, name)| !exposed.contains(name));
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(missing.is_empty(), "names no perfwatch /metrics exposes: {missing:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    if !program("prometheus", &["--version"], "apt-get install prometheus") {
        return;
    }
    let d = daemon_with_workload().await;
    let dir = tempfile::tempdir().unwrap();
    let target = d.base.trim_start_matches("http://");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: perfwatch\n    static_configs:\n      - targets: ['{target}']\n"),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Prometheus(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let api = format!("http://127.0.0.1:{port}/api/v1/query");
    let query = |expr: String| {
        let (client, api) = (d.client.clone(), api.clone());
        async move {
            let response = client.get(&api).query(&[("query", expr.as_str())]).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            Some(body)
        }
    };
    wait_for("Prometheus scraping perfwatch", Duration::from_secs(30), || async {
        let body = query("up{job=\"perfwatch\"} == 1".into()).await?;
        (!body["data"]["result"].as_array()?.is_empty()).then_some(())
    })
    .await;
    // Rates need two scrapes of moving counters: keep pushing until every query has data.
    let missing = until_every_query_has_data(|| push_workload(&d.client, &d.base), query).await;
    assert!(missing.is_empty(), "queries without data from Prometheus after 60 s: {missing:#?}");
}

/// Every panel query, asked of `query` while `push` keeps data coming, for up to 60 s; the
/// queries still without data then.
async fn until_every_query_has_data<P, PF, Q, QF>(push: P, query: Q) -> Vec<(String, String, String)>
where
    P: Fn() -> PF,
    PF: std::future::Future<Output = ()>,
    Q: Fn(String) -> QF,
    QF: std::future::Future<Output = Option<Value>>,
{
    let mut missing = queries();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !missing.is_empty() && std::time::Instant::now() < deadline {
        push().await;
        let mut still = Vec::new();
        for (file, title, expr) in missing {
            let body = query(expr.clone()).await;
            let has_data = body.as_ref().is_some_and(|b| {
                b["status"] == "success" && b["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
            });
            if !has_data {
                still.push((file, title, expr));
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    missing
}

/// The dashboards on perfwatch as their data source (`/prometheus`), no Prometheus between:
/// a perfwatch process (its own metrics recorded, which the in-process test daemons cannot)
/// with 1 s intervals, a rule, the workload and a notification; every panel's range query, as
/// Grafana sends it, must return data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_perfwatch_directly() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("quick.yaml");
    std::fs::write(&rules, QUICK_RULE).unwrap();
    let config = dir.path().join("perfwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 1s\n  ballast_bytes: 0\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\nrules:\n  paths: [{}]\n",
            dir.path().join("perfwatch.db").display(),
            rules.display()
        ),
    )
    .unwrap();
    let d = crate::support::DaemonProcess::spawn(&config);
    let client = perfwatch::http_client::client();
    let sent = client.post(format!("{}/api/v1/notifiers/log/test", d.base)).body("").send().await.unwrap();
    assert_eq!(sent.status(), 202);
    let rejected = json!({"metrics": [{"name": "x", "type": "nonsense", "value": 1}]});
    let answer: Value =
        client.post(format!("{}/api/v1/push", d.base)).json(&rejected).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["rejected"], 1, "one rejected sample for the rejected panel: {answer}");
    let api = format!("{}/prometheus/api/v1/query_range", d.base);
    let query = |expr: String| {
        let (client, api) = (client.clone(), api.clone());
        async move {
            let end = perfwatch::clock::now_s();
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("query", expr.as_str()),
                    ("start", &(end - 120).to_string()),
                    ("end", &end.to_string()),
                    ("step", "15"),
                ])
                .finish();
            let response = client
                .post(&api)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .ok()?;
            response.json::<Value>().await.ok()
        }
    };
    let missing = until_every_query_has_data(|| push_workload(&client, &d.base), query).await;
    assert!(missing.is_empty(), "queries without data from perfwatch directly after 60 s: {missing:#?}");
}
