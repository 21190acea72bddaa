//! The pages in a real browser: Debian's chromium, driven by playwright-core
//! (tests/interop/node/browse.mjs). A breach pushed to a daemon with an API token pages Slack
//! (the stand-in) and, one step later, mail (the SMTP server); then, as the person paged on a
//! phone would, the browser logs in, opens the status page and the alert page, follows the
//! link between them and acknowledges through the form. The test checks what the browser saw
//! against what happened: the chart's threshold and firing shading read back to the rule's
//! threshold and the firing time, the timeline lists the notifications the stand-ins
//! received, no page scrolls sideways at 390 px or 1280 px, the ack stops the escalation
//! (its next step never comes), and a browser without credentials is refused. Screenshots go
//! to target/screenshots/ (CI keeps them), and to docs/screenshots/ with
//! PERFWATCH_UPDATE_SCREENSHOTS=1.

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use perfwatch::Daemon;
use perfwatch::config::Config;
use serde_json::{Value, json};

use crate::slack_standin::SlackStandin;
use crate::smtp_server::{SmtpServer, header};
use crate::support::{program, wait_for};

const TOKEN: &str = "s3cret-api-token";

const RULES: &str = r#"groups:
  - name: api
    interval: 1s
    rules:
      - alert: ApiLatencyP99
        metric: api_request_duration_seconds
        stat: p99
        window: 30s
        above: 0.2
        resolve_at: 0.15
        group_by: [service, endpoint]
        severity: critical
        labels: {team: platform}
        annotations:
          summary: "{{ labels.service }} {{ labels.endpoint }}: p99 {{ value | duration }} (limit {{ threshold | duration }})"
          runbook: "https://runbooks.wedding.example/api-latency"
"#;

/// The daemon's config: an API token, Slack then mail then (after 20 s) both again, with an
/// on-call schedule where Ben covers now and Ana is next.
fn config(dir: &std::path::Path, slack: &SlackStandin, smtp_port: u16) -> String {
    std::fs::write(dir.join("rules.yaml"), RULES).unwrap();
    std::fs::write(dir.join("api.token"), TOKEN).unwrap();
    std::fs::write(dir.join("slack-webhook"), &slack.url).unwrap();
    let now = jiff::Timestamp::now();
    let (from, until) = (now - jiff::SignedDuration::from_hours(1), now + jiff::SignedDuration::from_hours(1));
    format!(
        r#"http:
  listen: 127.0.0.1:0
  api_token_file: {dir}/api.token
statsd:
  listen: null
storage:
  path: {dir}/perfwatch.db
  ballast_bytes: 0
  record_own_metrics: false
  interval: 1s
  lateness_intervals: 4000
  tiers:
    - {{resolution: 1s, retention: 1d}}
rules:
  paths: [{dir}/rules.yaml]
notifiers:
  slack:
    type: slack
    webhook_url_file: {dir}/slack-webhook
    rate_per_second: 0
  mail:
    type: email
    smtp: {{host: 127.0.0.1, port: {smtp_port}, tls: none}}
    from: 'perfwatch <alerts@wedding.example>'
    to: [oncall@wedding.example]
people:
  ana: {{name: Ana Silva, slack: U0ANA00001, email: ana@wedding.example}}
  ben: {{name: Ben Okoro, slack: U0BEN00001, email: ben@wedding.example}}
schedules:
  platform:
    time_zone: Europe/London
    rotation: [ana, ben]
    start: 2026-01-05
    shift: 1w
    overrides:
      - {{person: ben, from: '{from}', until: '{until}'}}
routes:
  - policy: page
    group_wait: 0s
policies:
  page:
    steps:
      - {{after: 0s, notify: [slack], oncall: [platform]}}
      - {{after: 2s, notify: [mail], oncall: [platform/next]}}
      - {{after: 20s, notify: [slack, mail], oncall: [platform]}}
"#,
        dir = dir.display()
    )
}

/// One round of a slow evening on the platform: /vendors/:id at `slow` seconds, the rest fine;
/// stamped at `at_ms` when given (the hour of history before the breach).
fn round(slow: f64, at_ms: Option<i64>) -> Value {
    let wave = at_ms.map_or(0.0, |ms| ((ms / 60_000) as f64 / 7.0).sin());
    let mut metrics = json!([
        {"name": "api_request_duration_seconds", "type": "timing", "values": vec![slow; 20], "labels": {"service": "api-gateway", "endpoint": "/vendors/:id"}},
        {"name": "api_request_duration_seconds", "type": "timing", "values": vec![0.04 + 0.01 * wave; 20], "labels": {"service": "api-gateway", "endpoint": "/search"}},
        {"name": "cache_requests_total", "type": "counter", "value": 93, "labels": {"tier": "l1", "result": "hit"}},
        {"name": "cache_requests_total", "type": "counter", "value": 7, "labels": {"tier": "l1", "result": "miss"}},
        {"name": "cache_requests_total", "type": "counter", "value": (78.0 + 8.0 * wave).round(), "labels": {"tier": "l2", "result": "hit"}},
        {"name": "cache_requests_total", "type": "counter", "value": (22.0 - 8.0 * wave).round(), "labels": {"tier": "l2", "result": "miss"}},
        {"name": "db_query_duration_seconds", "type": "timing", "values": vec![0.012 + 0.004 * wave; 20], "labels": {"query": "vendor_by_id"}},
        {"name": "db_pool_connections_in_use", "type": "gauge", "value": (31.0 + 6.0 * wave).round(), "labels": {"pool": "primary"}},
        {"name": "db_pool_connections_max", "type": "gauge", "value": 50, "labels": {"pool": "primary"}},
    ]);
    if let Some(at_ms) = at_ms {
        for metric in metrics.as_array_mut().unwrap() {
            metric["timestamp_ms"] = json!(at_ms);
        }
    }
    json!({ "metrics": metrics })
}

/// The hour before the breach, a round every 10 s: /vendors/:id at 90–150 ms, under its limit.
async fn push_history(client: &reqwest::Client, base: &str) {
    let now_ms = perfwatch::clock::now_ms();
    for minute in (1..=60).rev() {
        let rounds: Vec<Value> = (0..6)
            .map(|k| {
                let at_ms = now_ms - minute * 60_000 + k * 10_000;
                let slow = 0.12 + 0.03 * ((at_ms / 60_000) as f64 / 5.0).sin();
                round(slow, Some(at_ms))
            })
            .collect();
        let metrics: Vec<Value> = rounds.iter().flat_map(|r| r["metrics"].as_array().unwrap().clone()).collect();
        let response =
            client.post(format!("{base}/api/v1/push")).json(&json!({ "metrics": metrics })).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
}

async fn api(client: &reqwest::Client, base: &str, path: &str) -> Value {
    let response = client.get(format!("{base}{path}")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_person_paged_sees_the_breach_and_acknowledges_and_the_escalation_stops() {
    let node = program("node", &["--version"], "apt-get install nodejs npm");
    let chromium = program("chromium", &["--version"], "apt-get install chromium");
    let Some(smtp) = SmtpServer::start(&[]) else { return };
    if !(node && chromium) {
        return;
    }
    let slack = SlackStandin::start(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&config(dir.path(), &slack, smtp.port), "browser.yaml").expect("a valid config");
    let daemon = Daemon::start(config, Some(crate::support::recorder())).await.expect("daemon starts");
    let base = format!("http://{}", daemon.http_addr);
    let client = perfwatch::http_client::client();
    push_history(&client, &base).await;
    // The slow endpoint's latency, which the test changes to see evaluations happen.
    let slow = Arc::new(AtomicU64::new(0.45_f64.to_bits()));
    let pusher = {
        let (client, url, slow) = (client.clone(), format!("{base}/api/v1/push"), slow.clone());
        tokio::spawn(async move {
            loop {
                let _ = client.post(&url).json(&round(f64::from_bits(slow.load(Ordering::Relaxed)), None)).send().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    // Slack first, then mail one step later.
    let mails = smtp.wait_for_mails(1).await;
    assert_eq!(slack.received().len(), 1, "one page to Slack before the mail step");
    let alerts = api(&client, &base, "/api/v1/alerts").await;
    let alert = alerts["alerts"].as_array().unwrap().iter().find(|a| a["state"] == "firing").expect("firing").clone();
    let id = alert["id"].as_str().unwrap().to_owned();
    let firing_since = alert["firing_since"].as_i64().unwrap();

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let job = json!({"base": base, "password": TOKEN, "alertId": id, "outDir": shots,
                     "by": "Ben Okoro", "comment": "rolling back release 2026.12.1"});
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/node/browse.mjs");
    let run = tokio::process::Command::new("node").arg(script).arg(job.to_string()).kill_on_drop(true).output();
    let output = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the browser run ends").unwrap();
    assert!(output.status.success(), "browse.mjs failed: {}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout).expect("browse.mjs prints JSON");

    // No page scrolls sideways, on a phone or a desktop.
    for (page, overflow) in seen["overflow"].as_object().unwrap() {
        assert!(overflow.as_f64().unwrap() <= 0.0, "{page} overflows by {overflow} px");
    }
    assert_eq!(seen["overflow"].as_object().unwrap().len(), 4, "{seen}");

    // The chart, read back through the scale its SVG declares.
    let c = &seen["chart"];
    let f = |v: &Value| v.as_f64().unwrap();
    let plot: Vec<f64> = c["plot"].as_array().unwrap().iter().map(f).collect();
    let value_at = |y: f64| f(&c["max"]) - (y - plot[1]) / (plot[3] - plot[1]) * (f(&c["max"]) - f(&c["min"]));
    let threshold = value_at(f(&c["thresholdY"]));
    assert!((threshold - 0.2).abs() <= 0.01 * f(&c["max"]), "threshold drawn at {threshold}: {c}");
    let fired_at = f(&c["from"]) + (f(&c["firingX"]) - plot[0]) / (plot[2] - plot[0]) * (f(&c["to"]) - f(&c["from"]));
    let second = (f(&c["to"]) - f(&c["from"])) / (plot[2] - plot[0]);
    assert!(
        (fired_at - firing_since as f64).abs() <= second.max(1.0),
        "shading starts at {fired_at}, fired {firing_since}"
    );
    assert!(f(&c["firingWidthPx"]) > 0.0, "the firing shading is visible: {c}");

    // The timeline lists what the stand-ins received: Slack's page for Ben, the mail for Ana.
    let timeline = seen["timeline"].as_array().unwrap();
    let notified: Vec<&Value> = timeline.iter().filter(|e| e["notification"].is_string()).collect();
    assert_eq!(notified.len(), 2, "{timeline:?}");
    assert_eq!(notified[0]["what"], "slack notified (firing)");
    assert!(
        notified[0]["text"].as_str().unwrap().contains("for Ben Okoro (on call, platform): delivered"),
        "{timeline:?}"
    );
    assert_eq!(notified[1]["what"], "mail notified (escalated)");
    assert!(
        notified[1]["text"].as_str().unwrap().contains("for Ana Silva (next, platform): delivered"),
        "{timeline:?}"
    );
    assert_eq!(notified[1]["notification"].as_str().unwrap(), header(&mails[0], "X-Perfwatch-Notification"));
    // What the stand-ins got names the same people: Ben @mentioned in Slack, Ana mailed.
    assert_eq!(slack.received()[0].1["text"], "<@U0BEN00001> [FIRING:1] ApiLatencyP99");
    assert!(mails[0]["rcpt_tos"].as_array().unwrap().contains(&json!("ana@wedding.example")), "{}", mails[0]);
    let whats: Vec<&str> = timeline.iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert!(whats.contains(&"Firing"), "{whats:?}");

    // The status page links to the alert; the form acknowledged it.
    assert_eq!(seen["followedTo"], format!("/alerts/{id}"));
    let after = &seen["afterAck"];
    assert!(after["acked"].as_str().unwrap().contains("Ben Okoro"), "{after}");
    assert!(after.to_string().contains("rolling back release 2026.12.1"), "{after}");
    assert_eq!(after["offersUnack"], true);
    assert_eq!(api(&client, &base, &format!("/api/v1/alerts/{id}")).await["alert"]["acked"]["by"], "Ben Okoro");

    // Past the third step (20 s after firing), with evaluations still running (they see the
    // endpoint slow down further): it never came.
    wait_for("the third step's time", Duration::from_secs(40), || async {
        (perfwatch::clock::now_s() > firing_since + 22).then_some(())
    })
    .await;
    slow.store(0.8_f64.to_bits(), Ordering::Relaxed);
    wait_for("an evaluation after it", Duration::from_secs(20), || async {
        let alert = api(&client, &base, &format!("/api/v1/alerts/{id}")).await;
        (alert["alert"]["value"].as_f64()? > 0.7).then_some(())
    })
    .await;
    let sent = api(&client, &base, "/api/v1/notifications?limit=100").await;
    let mut kinds: Vec<String> = sent["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{} {}", n["notifier"].as_str().unwrap(), n["kind"].as_str().unwrap()))
        .collect();
    kinds.sort();
    assert_eq!(kinds, vec!["mail acked", "mail escalated", "slack acked", "slack firing"], "{sent}");

    // Without credentials a browser is refused and asked for them.
    assert_eq!(seen["anonymous"]["status"], 401, "{seen}");
    assert!(seen["anonymous"]["challenge"].as_str().unwrap().starts_with("Basic"), "{seen}");

    for shot in seen["screenshots"].as_array().unwrap() {
        let png = std::fs::read(shot.as_str().unwrap()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{shot}");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert!(shot.as_str().unwrap().ends_with(&format!("-{width}.png")), "{shot} is {width} px wide");
        if std::env::var_os("PERFWATCH_UPDATE_SCREENSHOTS").is_some() {
            let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            let name = std::path::Path::new(shot.as_str().unwrap()).file_name().unwrap();
            std::fs::copy(shot.as_str().unwrap(), docs.join(name)).unwrap();
        }
    }
    pusher.abort();
    daemon.shutdown().await;
}
