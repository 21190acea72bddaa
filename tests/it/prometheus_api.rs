//! perfwatch as Grafana's Prometheus data source, over real HTTP: the requests Grafana sends
//! when a data source is saved and tested, when the metrics browser and Explore open, and
//! when a dashboard refreshes (form-encoded POSTs, repeated `match[]`), answered in
//! Prometheus's envelopes; quantiles of timings from merged sketches against the exact
//! quantiles of the raw values; and bad or unsupported queries answered with Prometheus's
//! status, `errorType` and a message that names the problem.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::promql_oracle::post_form;
use crate::support::{TestDaemon, exact_quantile, latencies};

const ENDPOINTS: [&str; 3] = ["/vendors/:id", "/search", "/checkout"];

/// Thirty minutes of timings every 10 s for three endpoints, values 3 s into each interval;
/// returns the start and every (endpoint, time, value).
async fn daemon_with_timings() -> (TestDaemon, i64, Vec<(usize, i64, f64)>) {
    let d = TestDaemon::start("  lateness_intervals: 500\n").await;
    let now = perfwatch::clock::now_s();
    let start = now - now.rem_euclid(60) - 40 * 60;
    let mut raw = Vec::new();
    let mut metrics = Vec::new();
    for k in 0..180 {
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            // Each endpoint its own spread: 10 values per interval, seeded per interval.
            let values = latencies(10, (k * 7 + e as i64) as u64, 0.05 * (e + 1) as f64);
            let ts_ms = (start + k * 10 + 3) * 1000;
            raw.extend(values.iter().map(|v| (e, ts_ms, *v)));
            metrics.push(json!({"name": "api_request_duration_seconds", "type": "timing",
                "labels": {"endpoint": endpoint, "service": "api"}, "values": values, "timestamp_ms": ts_ms}));
        }
        metrics.push(json!({"name": "http_requests_total", "type": "counter", "labels": {"service": "api"},
            "value": 30, "timestamp_ms": (start + k * 10 + 3) * 1000}));
    }
    for chunk in metrics.chunks(200) {
        let (status, answer) = d.push_json(&json!({ "metrics": chunk })).await;
        assert_eq!((status, &answer["rejected"]), (200, &json!(0)), "{answer}");
    }
    (d, start, raw)
}

fn api(d: &TestDaemon, path: &str) -> String {
    format!("{}/prometheus/api/v1/{path}", d.base)
}

#[tokio::test]
async fn grafana_saves_and_tests_the_data_source() {
    let d = TestDaemon::start("").await;
    let now = perfwatch::clock::now_s().to_string();
    // Grafana's health check: an instant query of 1+1, then the build information.
    let answer = post_form(&d.client, &api(&d, "query"), &[("query", "1+1".into()), ("time", now.clone())]).await;
    assert_eq!(answer["status"], "success");
    assert_eq!(answer["data"]["resultType"], "scalar");
    assert_eq!(answer["data"]["result"][0].as_i64().map(|t| t.to_string()), Some(now));
    assert_eq!(answer["data"]["result"][1], "2");
    let (status, info) = d.get("/prometheus/api/v1/status/buildinfo").await;
    assert_eq!(status, 200);
    assert_eq!(info["data"]["version"], env!("CARGO_PKG_VERSION"), "{info}");
    assert!(info["data"].get("features").is_none(), "a features key makes Grafana take it for Mimir: {info}");
    let (status, exemplars) = d.get("/prometheus/api/v1/query_exemplars?query=up&start=0&end=1").await;
    assert_eq!((status, &exemplars["data"]), (200, &json!([])));
}

#[tokio::test]
async fn the_metrics_browser_lists_names_labels_and_values() {
    let (d, start, _) = daemon_with_timings().await;
    let (from, to) = (start.to_string(), (start + 3600).to_string());
    let (status, names) = d.get(&format!("/prometheus/api/v1/label/__name__/values?start={from}&end={to}")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = names["data"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for name in [
        "api_request_duration_seconds",
        "api_request_duration_seconds_count",
        "api_request_duration_seconds_sum",
        "http_requests_total",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    // Labels of one metric (POST, as Grafana sends it), then one label's values.
    let labels = post_form(
        &d.client,
        &api(&d, "labels"),
        &[("match[]", "api_request_duration_seconds".into()), ("start", from.clone())],
    )
    .await;
    assert_eq!(labels["data"], json!(["__name__", "endpoint", "service"]));
    let (_, values) =
        d.get("/prometheus/api/v1/label/endpoint/values?match[]=api_request_duration_seconds_count&limit=2").await;
    assert_eq!(values["data"], json!(["/checkout", "/search"]), "sorted, cut at the limit: {values}");
    assert_eq!(values["warnings"], json!(["results truncated due to limit"]));
    // Series of two selectors, match[] repeated.
    let series = post_form(
        &d.client,
        &api(&d, "series"),
        &[
            ("match[]", "http_requests_total".into()),
            ("match[]", "api_request_duration_seconds{endpoint=\"/search\"}".into()),
        ],
    )
    .await;
    assert_eq!(
        series["data"],
        json!([
            {"__name__": "api_request_duration_seconds", "endpoint": "/search", "service": "api"},
            {"__name__": "http_requests_total", "service": "api"}
        ])
    );
    let (_, metadata) = d.get("/prometheus/api/v1/metadata?metric=api_request_duration_seconds").await;
    assert_eq!(
        metadata["data"],
        json!({"api_request_duration_seconds": [{"type": "histogram", "help": "", "unit": ""}]})
    );
}

#[tokio::test]
async fn timings_are_native_histograms_and_their_quantiles_are_the_merged_sketchs() {
    let (d, start, raw) = daemon_with_timings().await;
    d.flush().await;
    // Windows [T - r, T): the intervals whose samples (3 s in) fall in (T - r, T].
    let exact = |endpoints: &[usize], t: i64, r: i64, q: f64| {
        let values: Vec<f64> = raw
            .iter()
            .filter(|(e, ts, _)| endpoints.contains(e) && *ts >= (t - r) * 1000 && *ts < t * 1000)
            .map(|(_, _, v)| *v)
            .collect();
        exact_quantile(&values, q)
    };
    let mut checked = 0;
    for t in [start + 600, start + 1210, start + 1800] {
        for (q, r, window) in [(0.99, 300, "5m"), (0.5, 300, "5m"), (0.9, 1800, "30m"), (0.999, 600, "10m")] {
            let per_endpoint =
                format!("histogram_quantile({q}, sum by (endpoint) (rate(api_request_duration_seconds[{window}])))");
            let answer =
                post_form(&d.client, &api(&d, "query"), &[("query", per_endpoint.clone()), ("time", t.to_string())])
                    .await;
            let result = answer["data"]["result"].as_array().unwrap_or_else(|| panic!("{per_endpoint}: {answer}"));
            assert_eq!(result.len(), 3, "{per_endpoint}: {answer}");
            for s in result {
                let e = ENDPOINTS.iter().position(|x| *x == s["metric"]["endpoint"]).unwrap();
                let got: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
                crate::support::assert_within(got, exact(&[e], t, r, q), 0.01, &per_endpoint);
                checked += 1;
            }
            // Across every endpoint, and as a quantile over time of the raw observations.
            for expr in [
                format!("histogram_quantile({q}, sum(increase(api_request_duration_seconds[{window}])))"),
                format!(
                    "max(quantile_over_time({q}, api_request_duration_seconds{{endpoint=\"/checkout\"}}[{window}]))"
                ),
            ] {
                let answer =
                    post_form(&d.client, &api(&d, "query"), &[("query", expr.clone()), ("time", t.to_string())]).await;
                let got: f64 = answer["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
                let endpoints: &[usize] = if expr.contains("checkout") { &[2] } else { &[0, 1, 2] };
                crate::support::assert_within(got, exact(endpoints, t, r, q), 0.01, &expr);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 4 * 5);

    // A bare timing is a cumulative native histogram; its _count and _sum are counters.
    let t = (start + 1800).to_string();
    let answer = post_form(
        &d.client,
        &api(&d, "query"),
        &[("query", "api_request_duration_seconds{endpoint=\"/search\"}".into()), ("time", t.clone())],
    )
    .await;
    let histogram = &answer["data"]["result"][0]["histogram"][1];
    let counted: f64 =
        histogram["buckets"].as_array().unwrap().iter().map(|b| b[3].as_str().unwrap().parse::<f64>().unwrap()).sum();
    assert_eq!(histogram["count"], "1800", "180 intervals of 10 before {t}: {answer}");
    assert!((counted - 1800.0).abs() < 1e-6, "buckets add up to the count: {counted}");
    for bucket in histogram["buckets"].as_array().unwrap() {
        let (lower, upper): (f64, f64) =
            (bucket[1].as_str().unwrap().parse().unwrap(), bucket[2].as_str().unwrap().parse().unwrap());
        assert!(bucket[0] == 0 && upper > lower && upper / lower < 1.0203, "DDSketch bins (1 % accuracy): {bucket}");
    }
    let count = post_form(
        &d.client,
        &api(&d, "query"),
        &[("query", "api_request_duration_seconds_count{endpoint=\"/search\"}".into()), ("time", t.clone())],
    )
    .await;
    assert_eq!(count["data"]["result"][0]["value"][1], "1800");
    let mean = post_form(
        &d.client,
        &api(&d, "query"),
        &[("query", "sum(histogram_avg(rate(api_request_duration_seconds{endpoint=\"/search\"}[5m]))) - sum(rate(api_request_duration_seconds_sum{endpoint=\"/search\"}[5m])) / sum(rate(api_request_duration_seconds_count{endpoint=\"/search\"}[5m]))".into()), ("time", t.clone())],
    )
    .await;
    let difference: f64 = mean["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(difference.abs() < 1e-12, "histogram_avg agrees with _sum / _count: {mean}");

    // Sums of increases are evaluated per group (merged series, windows slid from step to
    // step); `* 1` keeps the same sum per series: the answers are the same.
    for expr in [
        "sum by (endpoint) (rate(api_request_duration_seconds[5m]))",
        "sum(increase(api_request_duration_seconds[2m]))",
    ] {
        let range = |query: String| {
            let (client, url) = (d.client.clone(), api(&d, "query_range"));
            async move {
                let params = [
                    ("query", query),
                    ("start", (start + 300).to_string()),
                    ("end", (start + 1500).to_string()),
                    ("step", "30".into()),
                ];
                post_form(&client, &url, &params).await
            }
        };
        let per_series_expr = expr.replace("[5m])", "[5m]) * 1").replace("[2m])", "[2m]) * 1");
        let (grouped, per_series) = (range(expr.to_owned()).await, range(per_series_expr).await);
        assert_eq!(grouped["status"], "success", "{grouped}");
        // Buckets and counts exactly; sums of seconds to 1e-12 (added in another order).
        let values = |body: &Value| -> Vec<(String, f64)> {
            let mut out = Vec::new();
            for s in body["data"]["result"].as_array().unwrap() {
                for p in s["histograms"].as_array().into_iter().flatten() {
                    let sum: f64 = p[1]["sum"].as_str().unwrap().parse().unwrap();
                    out.push((format!("{}{} {} {}", s["metric"], p[0], p[1]["count"], p[1]["buckets"]), sum));
                }
            }
            out
        };
        let (a, b) = (values(&grouped), values(&per_series));
        assert_eq!(a.iter().map(|x| &x.0).collect::<Vec<_>>(), b.iter().map(|x| &x.0).collect::<Vec<_>>(), "{expr}");
        for ((_, x), (_, y)) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "{expr}: sums {x} and {y}");
        }
        let points: usize = grouped["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["histograms"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(points >= 41, "{expr}: 41 steps each: {grouped}");
    }

    // A range query answers histograms per step, in the `histograms` field.
    let range = post_form(
        &d.client,
        &api(&d, "query_range"),
        &[
            ("query", "sum by (endpoint) (rate(api_request_duration_seconds[1m]))".into()),
            ("start", (start + 600).to_string()),
            ("end", (start + 900).to_string()),
            ("step", "60".into()),
        ],
    )
    .await;
    let series = range["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 3, "{range}");
    assert_eq!(series[0]["histograms"].as_array().map(Vec::len), Some(6), "{range}");
    assert_eq!(series[0]["histograms"][0][1]["count"], "1", "10 observations a 10 s interval: 1 a second");
}

/// Endpoint, parameters, and how many samples (vector) or points (matrix) are expected.
type EdgeQuery = (&'static str, Vec<(&'static str, String)>, usize);

/// Endpoint, parameters, and the status, `errorType` and part of the message expected.
type BadQuery = (&'static str, Vec<(&'static str, String)>, u16, &'static str, &'static str);

#[tokio::test]
async fn bad_and_unsupported_queries_answer_as_prometheus_does() {
    let (d, start, _) = daemon_with_timings().await;
    let t = (start + 600).to_string();
    let cases: Vec<BadQuery> = vec![
        (
            "query",
            vec![("query", "sum(rate(http_requests_total[5m])".into())],
            400,
            "bad_data",
            "unclosed left parenthesis",
        ),
        ("query", vec![("time", t.clone())], 400, "bad_data", "invalid parameter \"query\""),
        (
            "query",
            vec![("query", "up".into()), ("time", "yesterday".into())],
            400,
            "bad_data",
            "invalid parameter \"time\"",
        ),
        (
            "query",
            vec![("query", "predict_linear(http_requests_total[5m], 60)".into())],
            422,
            "execution",
            "predict_linear is not supported",
        ),
        (
            "query",
            vec![
                ("query", "http_requests_total + on() group_left api_request_duration_seconds_count".into()),
                ("time", t.clone()),
            ],
            422,
            "execution",
            "found duplicate series for the match group {}",
        ),
        (
            "query_range",
            vec![("query", "up".into()), ("start", "100".into()), ("end", "50".into()), ("step", "15".into())],
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "query_range",
            vec![("query", "up".into()), ("start", "0".into()), ("end", "200000".into()), ("step", "1".into())],
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "query_range",
            vec![("query", "up".into()), ("start", "0".into()), ("end", "100".into()), ("step", "0".into())],
            400,
            "bad_data",
            "zero or negative query resolution step widths are not accepted",
        ),
        (
            "query_range",
            vec![
                ("query", "http_requests_total[5m]".into()),
                ("start", "0".into()),
                ("end", "100".into()),
                ("step", "10".into()),
            ],
            400,
            "bad_data",
            "invalid expression type \"range vector\" for range query",
        ),
        (
            "query",
            vec![("query", "max_over_time(vector(1)[1d:1ms])".into())],
            422,
            "execution",
            "more than 11000 steps",
        ),
        (
            "query_range",
            vec![
                ("query", "count_over_time(vector(1)[1h:1s])".into()),
                ("start", "0".into()),
                ("end", "100000".into()),
                ("step", "10".into()),
                ("timeout", "1ms".into()),
            ],
            503,
            "timeout",
            "query timed out",
        ),
        ("series", vec![], 400, "bad_data", "no match[] parameter provided"),
        ("series", vec![("match[]", "{job=~\".*\"}".into())], 400, "bad_data", "at least one non-empty matcher"),
        ("labels", vec![("match[]", "rate(x[5m])".into())], 400, "bad_data", "is not a series selector"),
        (
            "query",
            vec![("query", "up".into()), ("lookback_delta", "NaN".into())],
            400,
            "bad_data",
            "invalid parameter \"lookback_delta\"",
        ),
        (
            "query",
            vec![
                ("query", "rate(api_request_duration_seconds[5m]) - rate(api_request_duration_seconds[5m])".into()),
                ("time", t.clone()),
            ],
            422,
            "execution",
            "the operator - between a timing's histogram and another histogram",
        ),
        (
            "query",
            vec![("query", "sum by (le) (rate(api_request_duration_seconds_bucket[5m]))".into()), ("time", t.clone())],
            422,
            "execution",
            "is a timing, kept as a native histogram, with no classic buckets",
        ),
        (
            "query",
            vec![
                ("query", "rate({__name__=~\"api_request_duration_seconds_(count|sum)\"}[5m])".into()),
                ("time", t.clone()),
            ],
            422,
            "execution",
            "vector cannot contain metrics with the same labelset",
        ),
    ];
    for (endpoint, params, status, kind, message) in cases {
        let response = d
            .client
            .post(api(&d, endpoint))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish())
            .send()
            .await
            .unwrap();
        let got_status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (got_status, body["status"].as_str(), body["errorType"].as_str()),
            (status, Some("error"), Some(kind)),
            "{endpoint} {params:?}: {body}"
        );
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{endpoint} {params:?}: {error:?} should say {message:?}");
    }
    let (status, body) = d.get("/prometheus/api/v1/nothing_here").await;
    assert_eq!((status, &body["errorType"]), (404, &json!("not_found")));

    // Edges Prometheus answers, and so must perfwatch: a step past the window (one point, no
    // overflow), exactly 11,000 steps, a zero lookback (the default), nothing to match against.
    let ok: Vec<EdgeQuery> = vec![
        (
            "query_range",
            vec![
                ("query", "1".into()),
                ("start", "1700000000".into()),
                ("end", "1700000000".into()),
                ("step", "9223371000000000".into()),
            ],
            1,
        ),
        (
            "query_range",
            vec![("query", "1".into()), ("start", "0".into()), ("end", "11000".into()), ("step", "1".into())],
            11_001,
        ),
        (
            "query",
            vec![("query", "http_requests_total".into()), ("time", t.clone()), ("lookback_delta", "0".into())],
            1,
        ),
        (
            "query",
            vec![
                ("query", "absent_metric * on() group_left api_request_duration_seconds_count".into()),
                ("time", t.clone()),
            ],
            0,
        ),
    ];
    for (endpoint, params, n) in ok {
        let body = post_form(&d.client, &api(&d, endpoint), &params).await;
        assert_eq!(body["status"], "success", "{endpoint} {params:?}: {body}");
        let result = &body["data"]["result"];
        let got = match body["data"]["resultType"].as_str() {
            Some("matrix") => result.as_array().unwrap().iter().map(|s| s["values"].as_array().unwrap().len()).sum(),
            _ => result.as_array().unwrap().len(),
        };
        assert_eq!(got, n, "{endpoint} {params:?}: {body}");
    }
}

#[tokio::test]
async fn the_api_token_is_asked_for_as_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = crate::support::daemon_with_tokens(dir.path(), "push-secret", Some("api-secret")).await;
    let client = perfwatch::http_client::client();
    let url = format!("{base}/prometheus/api/v1/query?query=1");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(client.get(&url).bearer_auth("wrong").send().await.unwrap().status(), 401);
    let answer: Value = client.get(&url).bearer_auth("api-secret").send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["data"]["result"][1], "1");
    daemon.shutdown().await;
}

#[tokio::test]
async fn counters_read_as_running_totals_and_rates_as_exact_increments() {
    let (d, start, _) = daemon_with_timings().await;
    // 30 a 10 s interval: 3 a second, 900 in 5 minutes, whatever tier or memory serves it.
    let mut seen = BTreeMap::new();
    for (t, step) in [(start + 900, "60"), (start + 905, "15")] {
        let answer = post_form(
            &d.client,
            &api(&d, "query_range"),
            &[
                ("query", "rate(http_requests_total[5m])".into()),
                ("start", t.to_string()),
                ("end", (t + 600).to_string()),
                ("step", step.into()),
            ],
        )
        .await;
        for point in answer["data"]["result"][0]["values"].as_array().unwrap() {
            seen.insert(point[0].to_string(), point[1].clone());
        }
    }
    assert!(seen.len() > 40, "{seen:?}");
    assert!(seen.values().all(|v| v == "3"), "{seen:?}");
    let total = post_form(
        &d.client,
        &api(&d, "query"),
        &[("query", "http_requests_total".into()), ("time", (start + 1200).to_string())],
    )
    .await;
    assert_eq!(total["data"]["result"][0]["value"][1], "3600", "120 intervals of 30 before start + 20 m: {total}");
}

#[tokio::test]
async fn rules_and_alerts_are_listed_in_prometheus_format() {
    let d = TestDaemon::with_rules(
        "groups:\n  - name: api\n    interval: 1s\n    rules:\n      - alert: SlowVendorPage\n        metric: api_request_duration_seconds\n        stat: p99\n        window: 1m\n        group_by: [endpoint]\n        above: 0.2\n        labels: {team: web}\n        annotations: {summary: \"{{ labels.endpoint }} is slow\"}\n",
    )
    .await;
    let slow = json!({"metrics": [{"name": "api_request_duration_seconds", "type": "timing",
        "labels": {"endpoint": "/vendors/:id"}, "values": [0.5, 0.6, 0.7]}]});
    let _pushing = d.keep_pushing(slow);
    let alerts = crate::support::wait_for(
        "a firing alert in Prometheus's format",
        std::time::Duration::from_secs(20),
        || async {
            let (_, body) = d.get("/prometheus/api/v1/alerts").await;
            let alerts = body["data"]["alerts"].as_array()?.clone();
            alerts.iter().any(|a| a["state"] == "firing").then_some(alerts)
        },
    )
    .await;
    let alert = &alerts[0];
    assert_eq!(alert["labels"]["alertname"], "SlowVendorPage", "{alert}");
    assert_eq!(alert["labels"]["endpoint"], "/vendors/:id");
    assert_eq!(alert["labels"]["team"], "web");
    assert_eq!(alert["annotations"]["summary"], "/vendors/:id is slow");
    assert!(alert["activeAt"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{alert}");
    let value: f64 = alert["value"].as_str().unwrap().parse().unwrap();
    assert!(value > 0.2, "{alert}");

    let (status, body) = d.get("/prometheus/api/v1/rules").await;
    assert_eq!((status, &body["status"]), (200, &json!("success")));
    let group = &body["data"]["groups"][0];
    assert_eq!((&group["name"], &group["interval"]), (&json!("api"), &json!(1)), "{body}");
    let rule = &group["rules"][0];
    assert_eq!(
        (&rule["type"], &rule["name"], &rule["state"]),
        (&json!("alerting"), &json!("SlowVendorPage"), &json!("firing"))
    );
    assert!(rule["query"].as_str().unwrap().contains("api_request_duration_seconds"), "{rule}");
    assert_eq!(rule["alerts"].as_array().map(Vec::len), Some(1), "{rule}");
    let (_, recording) = d.get("/prometheus/api/v1/rules?type=record").await;
    assert_eq!(recording["data"]["groups"], json!([]), "perfwatch has no recording rules");
    let (_, other) = d.get("/prometheus/api/v1/rules?rule_name[]=NoSuchRule").await;
    assert_eq!(other["data"]["groups"], json!([]));
}
