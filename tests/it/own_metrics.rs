//! perfwatch records its own /metrics as the group job="perfwatch" each interval, so they are
//! queryable like any pushed metric, and the shipped self-monitoring rules page on them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{DaemonProcess, wait_for};

/// A real daemon process (it installs the metrics recorder, which the in-process test daemons
/// cannot share) with 1 s intervals and the shipped rules/perfwatch-self.yaml evaluated every
/// second instead of every 30 s.
fn daemon(dir: &std::path::Path, max_series: usize) -> DaemonProcess {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/perfwatch-self.yaml")).unwrap();
    assert!(shipped.contains("interval: 30s"));
    let rules = dir.join("perfwatch-self.yaml");
    std::fs::write(&rules, shipped.replace("interval: 30s", "interval: 1s")).unwrap();
    let config = dir.join("perfwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 1s\n  ballast_bytes: 0\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\nlimits:\n  max_series: {max_series}\nrules:\n  paths: [{}]\n",
            dir.join("perfwatch.db").display(),
            rules.display()
        ),
    )
    .unwrap();
    DaemonProcess::spawn(&config)
}

async fn last(client: &reqwest::Client, base: &str, metric: &str) -> Option<f64> {
    let url = format!("{base}/api/v1/query?metric={metric}&stat=last&from=-5m");
    let answer: Value = client.get(url).send().await.ok()?.json().await.ok()?;
    answer["series"][0]["points"].as_array()?.last()?[1].as_f64()
}

#[tokio::test]
async fn perfwatch_records_its_own_metrics_and_pages_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), 400);
    let client = perfwatch::http_client::client();

    // Its own gauges and counters, queryable like any metric.
    let limit = wait_for("the series limit recorded", Duration::from_secs(20), || {
        last(&client, &d.base, "perfwatch_series_limit{job=\"perfwatch\"}")
    })
    .await;
    assert_eq!(limit, 400.0);
    let free = last(&client, &d.base, "perfwatch_storage_free_bytes").await.expect("free disk space recorded");
    let size = last(&client, &d.base, "perfwatch_storage_size_bytes").await.expect("disk size recorded");
    assert!(free > 0.0 && free <= size, "free {free} of {size}");
    // Its own series count once the first recording is in (the first refresh saw none).
    let own = wait_for("its own series counted", Duration::from_secs(20), || async {
        last(&client, &d.base, "perfwatch_active_series").await.filter(|n| *n > 0.0)
    })
    .await;
    assert!(own < 300.0, "perfwatch's own series: {own}");

    // Pushes count in its own samples_accepted, as increases.
    let push = format!("{}/api/v1/push", d.base);
    let entries: Vec<Value> = (0..10)
        .map(|i| json!({"name": "cache_hits_total", "type": "counter", "labels": {"n": i.to_string()}, "value": 1}))
        .collect();
    let answer = client.post(&push).json(&json!({ "metrics": entries })).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let url = format!(
        "{}/api/v1/query?metric=perfwatch_samples_accepted_total{{job=\"perfwatch\",protocol=\"json\"}}&stat=sum&from=-5m",
        d.base
    );
    wait_for("the pushed samples counted", Duration::from_secs(20), || async {
        let answer: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
        (answer["series"][0]["points"][0][1].as_f64()? == 10.0).then_some(())
    })
    .await;
    // The status page's health line shows the ingest rate from those recordings.
    let page = wait_for("the status page showing an ingest rate", Duration::from_secs(20), || async {
        let page = client.get(format!("{}/", d.base)).send().await.ok()?.text().await.ok()?;
        let rate = page.split(" · ingest ").nth(1)?.split(" samples/s").next()?.replace(',', "");
        (rate.parse::<f64>().ok()? > 0.0).then_some(page)
    })
    .await;
    assert!(page.contains("<p class=\"health ok\">perfwatch: <strong>ready</strong>"), "{page}");
    let alerts: Value = client.get(format!("{}/api/v1/alerts", d.base)).send().await.unwrap().json().await.unwrap();
    // PerfwatchDiskNearlyFull reads the real file system under the test's database: on a host
    // that is itself under 12 % free it fires, rightly, and is no sign of trouble here.
    let (free, size) = perfwatch::own_metrics::disk_space(dir.path()).unwrap();
    let host_nearly_full = (free as f64) < 0.12 * size as f64;
    let unexpected: Vec<&Value> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !(host_nearly_full && a["rule"] == "PerfwatchDiskNearlyFull"))
        .collect();
    assert!(unexpected.is_empty(), "a healthy perfwatch pages about nothing: {alerts}");

    // Past nine tenths of the series limit: PerfwatchSeriesNearLimit fires.
    let entries: Vec<Value> = (0..400)
        .map(|i| json!({"name": "churn", "type": "gauge", "labels": {"instance": i.to_string()}, "value": 1}))
        .collect();
    client.post(&push).json(&json!({ "metrics": entries })).send().await.unwrap();
    let alert = wait_for("PerfwatchSeriesNearLimit firing", Duration::from_secs(30), || async {
        let alerts: Value = client.get(format!("{}/api/v1/alerts", d.base)).send().await.ok()?.json().await.ok()?;
        alerts["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["rule"] == "PerfwatchSeriesNearLimit" && a["state"] == "firing")
            .cloned()
    })
    .await;
    assert_eq!(alert["severity"], "warning");
    assert!(alert["value"].as_f64().unwrap() > 0.9, "{alert}");
}
