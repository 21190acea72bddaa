//! A crash (SIGKILL) under load loses at most the interval that was still open: everything
//! acknowledged before the last flush that could have run is there after a restart.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::DaemonProcess;

#[tokio::test]
async fn sigkill_under_load_loses_at_most_one_interval() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("perfwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\n    - {{resolution: 1m, retention: 1d}}\n",
            dir.path().join("perfwatch.db").display()
        ),
    )
    .unwrap();
    let daemon = DaemonProcess::spawn(&config);
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/push", daemon.base);
    let latencies: Vec<f64> = (0..200).map(|i| 0.001 * (i % 50 + 1) as f64).collect();
    let body = json!({"metrics": [
        {"name": "acked_total", "type": "counter", "value": 1},
        {"name": "api_request_duration_seconds", "type": "timing", "values": latencies},
    ]});
    // Push for 5 s, noting when each push was acknowledged.
    let started = Instant::now();
    let mut acked: Vec<Instant> = Vec::new();
    while started.elapsed() < Duration::from_millis(5000) {
        let response = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        acked.push(Instant::now());
    }
    let mut daemon = daemon;
    daemon.child.kill().unwrap();
    let killed = Instant::now();
    daemon.child.wait().unwrap();
    drop(daemon);

    // One 1 s interval, the 250 ms flush delay, and 1.25 s for the commit itself on a loaded
    // two-core machine, where the daemon competes with this test's pushes for both cores.
    let safe = acked.iter().filter(|t| killed.duration_since(**t) > Duration::from_millis(2500)).count() as f64;
    let restarted = DaemonProcess::spawn(&config);
    let query = format!("{}/api/v1/query?metric=acked_total&stat=sum&from=-1h", restarted.base);
    let answer: serde_json::Value = client.get(&query).send().await.unwrap().json().await.unwrap();
    let kept = answer["series"][0]["points"][0][1].as_f64().unwrap_or(0.0);
    assert!(kept >= safe, "lost acknowledged data older than one interval: kept {kept}, acked safely {safe}");
    assert!(kept <= acked.len() as f64, "kept {kept} more than acknowledged {}", acked.len());
    assert!(safe > 0.0, "the test pushed long enough to have flushed data");
    let timing = format!("{}/api/v1/query?metric=api_request_duration_seconds&stat=count&from=-1h", restarted.base);
    let answer: serde_json::Value = client.get(&timing).send().await.unwrap().json().await.unwrap();
    let observations = answer["series"][0]["points"][0][1].as_f64().unwrap_or(0.0);
    assert_eq!(observations, kept * 200.0, "each push's two entries were committed together");
}
