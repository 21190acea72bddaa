//! Notifications through the outbox to a Slack stand-in: what Slack receives, 429 waited out,
//! 5xx and timeouts retried, permanent refusals failed, every attempt recorded.

use std::time::Duration;

use serde_json::{Value, json};

use crate::slack_standin::{Answer, SlackStandin};
use crate::support::{TestDaemon, wait_for};

async fn daemon_with_slack(slack: &SlackStandin, timeout: &str) -> TestDaemon {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("slack-webhook");
    std::fs::write(&secret, format!("{}\n", slack.url)).unwrap();
    let extra = format!(
        "notifiers:\n  slack:\n    type: slack\n    webhook_url_file: {}\n    timeout: {timeout}\n    rate_per_second: 0\n",
        secret.display()
    );
    TestDaemon::start_in(dir, &extra).await
}

pub(crate) async fn send_test(d: &TestDaemon, notifier: &str) -> (u16, Value) {
    let response = d
        .client
        .post(format!("{}/api/v1/notifiers/{notifier}/test", d.base))
        .json(&json!({"by": "ana"}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Waits until notification `id` is `sent` or `failed`, and returns it with its attempts.
pub(crate) async fn settled(d: &TestDaemon, id: &str) -> Value {
    wait_for("the notification to settle", Duration::from_secs(30), || async {
        let (_, body) = d.get(&format!("/api/v1/notifications/{id}")).await;
        matches!(body["notification"]["status"].as_str(), Some("sent" | "failed")).then_some(body)
    })
    .await
}

pub(crate) fn attempt_statuses(body: &Value) -> Vec<&str> {
    body["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_test_notification_reaches_slack_as_a_block_kit_message() {
    let slack = SlackStandin::start(vec![Answer::ok()]).await;
    let d = daemon_with_slack(&slack, "5s").await;
    let (status, answer) = send_test(&d, "slack").await;
    assert_eq!(status, 202, "{answer}");
    let done = settled(&d, answer["id"].as_str().unwrap()).await;
    assert_eq!(done["notification"]["status"], "sent", "{done}");
    assert_eq!(attempt_statuses(&done), vec!["sent"]);
    let received = slack.received();
    assert_eq!(received.len(), 1);
    let message = &received[0].1;
    assert_eq!(message["text"], "perfwatch test notification to slack");
    let blocks = &message["attachments"][0]["blocks"];
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("Sent by ana"), "{message}");

    let (status, answer) = send_test(&d, "pager").await;
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().unwrap().contains("configured: slack"), "{answer}");
    let (_, list) = d.get("/api/v1/notifications?notifier=slack&status=sent").await;
    assert_eq!(list["notifications"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn a_429_is_waited_out_and_a_500_retried_until_slack_takes_it() {
    let slack = SlackStandin::start(vec![Answer::rate_limited(2), Answer::status(500, "oops"), Answer::ok()]).await;
    let d = daemon_with_slack(&slack, "5s").await;
    let (_, answer) = send_test(&d, "slack").await;
    let done = settled(&d, answer["id"].as_str().unwrap()).await;
    assert_eq!(done["notification"]["status"], "sent", "{done}");
    assert_eq!(attempt_statuses(&done), vec!["retry", "retry", "sent"]);
    let received = slack.received();
    assert_eq!(received.len(), 3);
    let waited = received[1].0 - received[0].0;
    assert!(waited >= Duration::from_secs(2), "Retry-After: 2 but retried after {waited:?}");
    assert!(done["attempts"][0]["error"].as_str().unwrap().contains("429"), "{done}");
}

#[tokio::test]
async fn no_service_fails_at_once_with_what_to_do() {
    let slack = SlackStandin::start(vec![Answer::status(404, "no_service")]).await;
    let d = daemon_with_slack(&slack, "5s").await;
    let (_, answer) = send_test(&d, "slack").await;
    let done = settled(&d, answer["id"].as_str().unwrap()).await;
    assert_eq!(done["notification"]["status"], "failed", "{done}");
    assert_eq!(attempt_statuses(&done), vec!["failed"]);
    assert!(done["notification"]["last_error"].as_str().unwrap().contains("create a new incoming webhook"), "{done}");
    assert_eq!(slack.received().len(), 1);
}

#[tokio::test]
async fn a_slack_that_does_not_answer_in_time_is_tried_again() {
    let slack = SlackStandin::start(vec![Answer::slow(Duration::from_secs(3)), Answer::ok()]).await;
    let d = daemon_with_slack(&slack, "1s").await;
    let (_, answer) = send_test(&d, "slack").await;
    let done = settled(&d, answer["id"].as_str().unwrap()).await;
    assert_eq!(attempt_statuses(&done), vec!["retry", "sent"], "{done}");
    assert!(done["attempts"][0]["error"].as_str().unwrap().contains("did not answer within"), "{done}");
}

#[tokio::test]
async fn a_notification_claimed_when_perfwatch_died_is_sent_once_more_marked_in_doubt() {
    use perfwatch::notify::message::Message;
    use perfwatch::store::outbox::OutboxRow;
    use perfwatch::store::{Store, StoreSettings};

    let slack = SlackStandin::start(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    // A perfwatch that claimed a notification and died before it recorded the attempt.
    {
        let tiers = perfwatch::config::Config::defaults().tiers;
        let store = Store::open(StoreSettings { path: dir.path().join("perfwatch.db"), tiers, n_readers: 1 }).unwrap();
        let payload = serde_json::to_string(&Message::test("slack", "ana")).unwrap();
        let row = OutboxRow::new(
            "page-1".into(),
            "slack".into(),
            "test".into(),
            "test".into(),
            payload,
            perfwatch::clock::now_s(),
        );
        assert_eq!(store.handle.enqueue(vec![row.clone(), row]).await.unwrap(), 1, "one id is queued once");
        let claimed = store.handle.claim("slack".into(), perfwatch::clock::now_s(), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        drop(store.handle);
        store.writer_thread.join().unwrap();
    }
    let secret = dir.path().join("slack-webhook");
    std::fs::write(&secret, &slack.url).unwrap();
    let extra = format!("notifiers:\n  slack:\n    type: slack\n    webhook_url_file: {}\n", secret.display());
    let d = TestDaemon::start_in(dir, &extra).await;
    let done = settled(&d, "page-1").await;
    assert_eq!(done["notification"]["status"], "sent", "{done}");
    assert_eq!(done["notification"]["in_doubt"], true, "{done}");
    assert_eq!(done["notification"]["attempts"], 2, "{done}");
    assert_eq!(slack.received().len(), 1);
}

#[tokio::test]
async fn the_command_line_tests_a_notifier_and_lists_the_outbox() {
    let slack = SlackStandin::start(vec![Answer::ok(), Answer::status(403, "action_prohibited")]).await;
    let d = daemon_with_slack(&slack, "5s").await;
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(crate::support::BIN).args(&args).output().unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let args = |extra: &[&str]| -> Vec<String> {
        extra.iter().map(|s| s.to_string()).chain(["--url".to_string(), d.base.clone()]).collect()
    };
    let (ok, stdout, stderr) = run(args(&["notify", "test", "slack", "--by", "ana"])).await.unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("delivered to slack after 1 attempt(s)"), "{stdout}");
    let (ok, _, stderr) = run(args(&["notify", "test", "slack"])).await.unwrap();
    assert!(!ok);
    assert!(stderr.contains("slack refused the test notification") && stderr.contains("workspace admin"), "{stderr}");
    let (ok, stdout, stderr) = run(args(&["notifications", "--notifier", "slack"])).await.unwrap();
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[1].contains("failed") && lines[2].contains("sent"), "{stdout}");
}

pub(crate) const PAGING_RULES: &str = "groups:
  - name: api
    interval: 1s
    rules:
      - alert: ApiSlow
        metric: lat
        stat: max
        window: 2s
        above: 0.2
        severity: critical
        annotations:
          summary: 'max latency {{ value }} s'
";

/// A daemon with 1 s rules and rollups whose alerts page `slack` at once, then again
/// (escalated) after 4 s unless acknowledged.
async fn paging_daemon(slack: &SlackStandin) -> TestDaemon {
    paging_daemon_with(slack, PAGING_RULES).await
}

async fn paging_daemon_with(slack: &SlackStandin, rules_text: &str) -> TestDaemon {
    paging_daemon_in(tempfile::tempdir().unwrap(), slack, rules_text, None).await
}

/// The same in `dir`, also paging `mail` (an email notifier's YAML, indented under its name)
/// at each step when given.
pub(crate) async fn paging_daemon_in(
    dir: tempfile::TempDir,
    slack: &SlackStandin,
    rules_text: &str,
    mail: Option<&str>,
) -> TestDaemon {
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, rules_text).unwrap();
    let secret = dir.path().join("slack-webhook");
    std::fs::write(&secret, &slack.url).unwrap();
    let (mail, notify) = match mail {
        Some(mail) => (format!("  mail:\n{mail}"), "[slack, mail]"),
        None => (String::new(), "[slack]"),
    };
    let extra = format!(
        "  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\n    - {{resolution: 1m, retention: 1d}}\nrules:\n  paths: [{}]\nnotifiers:\n  slack:\n    type: slack\n    webhook_url_file: {}\n    rate_per_second: 0\n{mail}routes:\n  - policy: page\n    group_wait: 0s\npolicies:\n  page:\n    steps:\n      - {{after: 0s, notify: {notify}}}\n      - {{after: 4s, notify: {notify}}}\n",
        rules.display(),
        secret.display()
    );
    TestDaemon::start_in(dir, &extra).await
}

/// The Acknowledge button's URL in a Slack message.
pub(crate) fn ack_link_in(message: &Value) -> String {
    let blocks = message["attachments"][0]["blocks"].as_array().unwrap();
    let actions = blocks.iter().find(|b| b["type"] == "actions").expect("an actions block");
    actions["elements"][0]["url"].as_str().unwrap().to_owned()
}

/// Presses the confirmation page's button as `by`.
pub(crate) async fn press_ack(d: &TestDaemon, link: &str, by: &str) -> reqwest::Response {
    let form = format!("by={by}");
    d.client.post(link).header("content-type", "application/x-www-form-urlencoded").body(form).send().await.unwrap()
}

/// Titles of the messages Slack received so far.
pub(crate) fn titles(slack: &SlackStandin) -> Vec<String> {
    slack.received().iter().map(|(_, m)| m["text"].as_str().unwrap_or_default().to_owned()).collect()
}

/// One `lat` timing sample of `value` as the native JSON push.
pub(crate) fn lat(value: f64) -> serde_json::Value {
    json!({"metrics": [{"name": "lat", "type": "timing", "value": value}]})
}

pub(crate) async fn push_lat(d: &TestDaemon, value: f64) {
    let (status, _) = d.push_json(&json!({"metrics": [{"name": "lat", "type": "timing", "value": value}]})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_breach_pages_slack_an_ack_stops_escalation_and_the_resolve_is_announced() {
    let slack = SlackStandin::start(Vec::new()).await;
    let d = paging_daemon(&slack).await;
    let firing = wait_for("the page", Duration::from_secs(20), || async {
        push_lat(&d, 0.5).await;
        slack.received().first().cloned()
    })
    .await;
    assert_eq!(firing.1["text"], "[FIRING:1] ApiSlow");
    // Firing until the test pushes it below the threshold, however long its steps take.
    let keep = d.keep_pushing(lat(0.5));
    let blocks = firing.1["attachments"][0].to_string();
    assert!(
        blocks.contains("#d93025")
            && blocks.contains("max latency 0.5 s")
            && blocks.contains("0.5000 (threshold 0.2000)"),
        "{blocks}"
    );

    let (_, alerts) = d.get("/api/v1/alerts").await;
    let alert = alerts["alerts"][0].clone();
    let id = alert["id"].as_str().unwrap().to_owned();
    // The alert's name links to its page, and so does a button beside Acknowledge.
    let page = format!("{}/alerts/{id}", d.base);
    assert!(blocks.contains(&format!("*<{page}|ApiSlow>* — firing")), "{blocks}");
    let buttons: Vec<(String, String)> = firing.1["attachments"][0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter())
        .map(|e| (e["text"]["text"].as_str().unwrap().to_owned(), e["url"].as_str().unwrap().to_owned()))
        .collect();
    assert!(buttons.contains(&("Alert page".to_owned(), page.clone())), "{buttons:?}");
    let response =
        d.client.post(format!("{}/api/v1/alerts/{id}/ack", d.base)).json(&json!({"by": "ana"})).send().await.unwrap();
    assert_eq!(response.status(), 200);
    wait_for("the ack announced", Duration::from_secs(20), || async {
        titles(&slack).iter().any(|t| t.starts_with("[ACKED]")).then_some(())
    })
    .await;
    // Past the 4 s escalation step, with evaluations still running: no escalation came.
    let escalation_due = alert["firing_since"].as_i64().unwrap() + 5;
    wait_for("evaluations past the escalation step", Duration::from_secs(20), || async {
        push_lat(&d, 0.6).await;
        let (_, body) = d.get(&format!("/api/v1/alerts/{id}")).await;
        (perfwatch::clock::now_s() > escalation_due && body["alert"]["value"].as_f64() == Some(0.6)).then_some(())
    })
    .await;
    assert_eq!(titles(&slack), vec!["[FIRING:1] ApiSlow", "[ACKED] ApiSlow"]);

    drop(keep);
    wait_for("the resolve", Duration::from_secs(20), || async {
        push_lat(&d, 0.1).await;
        titles(&slack).iter().any(|t| t.starts_with("[RESOLVED]")).then_some(())
    })
    .await;
    assert_eq!(titles(&slack), vec!["[FIRING:1] ApiSlow", "[ACKED] ApiSlow", "[RESOLVED] ApiSlow"]);
    // Slack answered; the attempt is recorded right after.
    let kinds = wait_for("three recorded deliveries", Duration::from_secs(10), || async {
        let (_, sent) = d.get("/api/v1/notifications?status=sent").await;
        let kinds: Vec<String> =
            sent["notifications"].as_array()?.iter().map(|n| n["kind"].as_str().unwrap().to_owned()).collect();
        (kinds.len() == 3).then_some(kinds)
    })
    .await;
    assert_eq!(kinds, vec!["resolved", "acked", "firing"]);
    let (_, about) = d.get(&format!("/api/v1/notifications?alert={id}")).await;
    assert_eq!(about["notifications"].as_array().unwrap().len(), 3, "{about}");
    let (_, none) = d.get("/api/v1/notifications?alert=0000000000000000").await;
    assert_eq!(none["notifications"], json!([]));
}

#[tokio::test]
async fn an_unacknowledged_page_escalates_on_time() {
    let slack = SlackStandin::start(Vec::new()).await;
    let d = paging_daemon(&slack).await;
    wait_for("the escalation", Duration::from_secs(30), || async {
        push_lat(&d, 0.5).await;
        (slack.received().len() >= 2).then_some(())
    })
    .await;
    let received = slack.received();
    assert_eq!(titles(&slack)[..2], ["[FIRING:1] ApiSlow", "[FIRING:1] ApiSlow"]);
    let text = received[1].1["attachments"][0]["blocks"].to_string();
    assert!(text.contains("Escalated: not acknowledged"), "{text}");
    let gap = received[1].0 - received[0].0;
    assert!(gap >= Duration::from_secs(3), "escalated after {gap:?}, the step says 4 s");
}

#[tokio::test]
async fn the_acknowledge_link_in_the_page_confirms_then_acknowledges_once() {
    let slack = SlackStandin::start(Vec::new()).await;
    let d = paging_daemon(&slack).await;
    let page = wait_for("the page", Duration::from_secs(20), || async {
        push_lat(&d, 0.5).await;
        slack.received().first().cloned()
    })
    .await;
    let _firing = d.keep_pushing(lat(0.5));
    let link = ack_link_in(&page.1);
    assert!(link.starts_with(&format!("{}/ack/", d.base)), "{link}");

    // Following the link only shows a confirmation (mail scanners follow links).
    let shown = d.client.get(&link).send().await.unwrap();
    assert_eq!(shown.status(), 200);
    let html = shown.text().await.unwrap();
    assert!(html.contains("<form method=\"post\">") && html.contains("ApiSlow"), "{html}");
    let (_, before) = d.get("/api/v1/alerts").await;
    assert!(before["alerts"][0]["acked"].is_null(), "showing the page acknowledges nothing: {before}");

    let done = press_ack(&d, &link, "ana").await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("1 alert(s) acknowledged by ana"));
    wait_for("the ack announced", Duration::from_secs(20), || async {
        titles(&slack).iter().any(|t| t.starts_with("[ACKED]")).then_some(())
    })
    .await;
    let (_, alerts) = d.get("/api/v1/alerts").await;
    assert_eq!(alerts["alerts"][0]["acked"]["by"], "ana", "{alerts}");

    let again = press_ack(&d, &link, "bob").await;
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("ana used it"));
    let forged = d.client.get(format!("{link}x")).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    assert!(forged.text().await.unwrap().contains("not valid"));
}

#[tokio::test]
async fn a_webhook_gets_alertmanagers_payload_signed_with_an_idempotency_key() {
    let receiver = SlackStandin::start(vec![Answer::status(503, "busy")]).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, PAGING_RULES).unwrap();
    let secret = dir.path().join("hook-secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let url = receiver.url.replace("/services/T000/B000/XXXX", "/hooks/autoscale");
    let extra = format!(
        "  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\n    - {{resolution: 1m, retention: 1d}}\nrules:\n  paths: [{}]\nnotifiers:\n  autoscaler:\n    type: webhook\n    url: {url}\n    hmac_secret_file: {}\n    headers: {{X-Team: platform}}\nroutes:\n  - policy: scale\n    group_wait: 0s\npolicies:\n  scale:\n    steps: [{{after: 0s, notify: [autoscaler]}}]\n",
        rules.display(),
        secret.display()
    );
    let d = TestDaemon::start_in(dir, &extra).await;
    // The first answer is 503: the retry carries the same idempotency key.
    let requests = wait_for("the page and its retry", Duration::from_secs(30), || async {
        push_lat(&d, 0.5).await;
        let requests = receiver.requests();
        (requests.len() >= 2).then_some(requests)
    })
    .await;
    let key = |r: &crate::slack_standin::Request| r.headers["x-perfwatch-idempotency-key"].to_str().unwrap().to_owned();
    assert_eq!(key(&requests[0]), key(&requests[1]));
    let request = &requests[1];
    assert_eq!(request.headers["x-team"], "platform");
    let expected =
        perfwatch::notify::webhook::signature(&perfwatch::secret::Secret::new("s3cret".into()), &request.body);
    assert_eq!(request.headers["x-perfwatch-signature"].to_str().unwrap(), expected);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        (body["version"].as_str(), body["status"].as_str(), body["receiver"].as_str()),
        (Some("4"), Some("firing"), Some("autoscaler"))
    );
    assert_eq!(body["groupLabels"]["alertname"], "ApiSlow");
    assert_eq!(body["alerts"][0]["status"], "firing");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "ApiSlow");
    assert_eq!(body["alerts"][0]["annotations"]["summary"], "max latency 0.5 s");
    assert!(body["alerts"][0]["startsAt"].as_str().unwrap().starts_with("20"), "{body}");
    assert_eq!(body["commonLabels"]["severity"], "critical");
    // generatorURL, as Alertmanager's: the alert's own page in this perfwatch.
    let (_, alerts) = d.get("/api/v1/alerts").await;
    let page = format!("{}/alerts/{}", d.base, alerts["alerts"][0]["id"].as_str().unwrap());
    assert_eq!(body["alerts"][0]["generatorURL"], page.as_str(), "{body}");
    assert_eq!(body["perfwatch"]["links"]["alert"], page.as_str(), "{body}");
}

#[tokio::test]
async fn sigkill_mid_escalation_neither_skips_nor_repeats_a_step() {
    use crate::support::DaemonProcess;

    let slack = SlackStandin::start(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    // A 10 s window: the samples flushed before the crash keep it firing through the restart.
    std::fs::write(&rules, PAGING_RULES.replace("window: 2s", "window: 10s")).unwrap();
    let secret = dir.path().join("slack-webhook");
    std::fs::write(&secret, &slack.url).unwrap();
    let config = dir.path().join("perfwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\n  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\n    - {{resolution: 1m, retention: 1d}}\nrules:\n  paths: [{}]\nnotifiers:\n  slack:\n    type: slack\n    webhook_url_file: {}\n    rate_per_second: 0\nroutes:\n  - policy: page\n    group_wait: 0s\npolicies:\n  page:\n    steps:\n      - {{after: 0s, notify: [slack]}}\n      - {{after: 8s, notify: [slack]}}\n",
            dir.path().join("perfwatch.db").display(),
            rules.display(),
            secret.display()
        ),
    )
    .unwrap();
    let client = perfwatch::http_client::client();
    let push = |base: String| {
        let client = client.clone();
        async move {
            let body = json!({"metrics": [{"name": "lat", "type": "timing", "value": 0.5}]});
            let _ = client.post(format!("{base}/api/v1/push")).json(&body).send().await;
        }
    };
    let mut daemon = DaemonProcess::spawn(&config);
    let base = daemon.base.clone();
    // Step 0 delivered and recorded, then the process dies.
    wait_for("step 0 recorded as sent", Duration::from_secs(20), || async {
        push(base.clone()).await;
        let sent: Value =
            client.get(format!("{base}/api/v1/notifications?status=sent")).send().await.ok()?.json().await.ok()?;
        (sent["notifications"].as_array()?.len() == 1).then_some(())
    })
    .await;
    // What was pushed is committed (a crash loses only the open interval; this test is about
    // the notifications, so it makes sure the breach is still in the window after the restart).
    let flushed = client.post(format!("{base}/api/v1/admin/flush")).send().await.unwrap();
    assert_eq!(flushed.status(), 200);
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let paged_at = slack.received()[0].0;

    let daemon = DaemonProcess::spawn(&config);
    let base = daemon.base.clone();
    let escalated = wait_for("the escalation after the restart", Duration::from_secs(30), || async {
        push(base.clone()).await;
        let received = slack.received();
        (received.len() >= 2).then_some(received)
    })
    .await;
    assert!(escalated[1].1["attachments"][0]["blocks"].to_string().contains("Escalated"), "{:?}", escalated[1].1);
    assert!(
        escalated[1].0 - paged_at >= Duration::from_secs(7),
        "the 8 s step came after {:?}",
        escalated[1].0 - paged_at
    );
    // Evaluations go on well past the step: nothing more is sent (no repeat of either step).
    let settle = std::time::Instant::now() + Duration::from_secs(3);
    wait_for("three more seconds of evaluations", Duration::from_secs(10), || async {
        push(base.clone()).await;
        (std::time::Instant::now() >= settle).then_some(())
    })
    .await;
    assert_eq!(titles(&slack), vec!["[FIRING:1] ApiSlow", "[FIRING:1] ApiSlow"]);
    assert_eq!(slack.received().len(), 2);
}

#[tokio::test]
async fn a_notifiers_rate_spaces_its_sends() {
    // A slow first answer lets the other two queue up and be claimed together.
    let slack = SlackStandin::start(vec![Answer::slow(Duration::from_millis(400))]).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("slack-webhook");
    std::fs::write(&secret, &slack.url).unwrap();
    let extra = format!(
        "notifiers:\n  slack:\n    type: slack\n    webhook_url_file: {}\n    rate_per_second: 4\n    concurrency: 3\n",
        secret.display()
    );
    let d = TestDaemon::start_in(dir, &extra).await;
    for _ in 0..3 {
        assert_eq!(send_test(&d, "slack").await.0, 202);
    }
    let received = wait_for("three sends", Duration::from_secs(20), || async {
        let received = slack.received();
        (received.len() == 3).then_some(received)
    })
    .await;
    for pair in received.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= Duration::from_millis(240), "4 per second allows one every 250 ms, got {gap:?}");
    }
}

#[tokio::test]
async fn metrics_show_the_outbox_by_notifier_and_status() {
    // A notifier name no other test uses: gauges live in the one recorder tests share.
    let d = TestDaemon::start("notifiers:\n  gauge-check:\n    type: log\n").await;
    let (_, queued) = send_test(&d, "gauge-check").await;
    settled(&d, queued["id"].as_str().unwrap()).await;
    let (status, text) = d.get("/metrics").await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap();
    let value = |status: &str| {
        crate::support::metric_value(
            text,
            "perfwatch_outbox_notifications",
            &["notifier=\"gauge-check\"", &format!("status=\"{status}\"")],
        )
    };
    assert_eq!((value("sent"), value("pending"), value("failed")), (1.0, 0.0, 0.0), "{text}");
    assert!(text.contains("perfwatch_alerts{"), "{text}");
}

#[tokio::test]
async fn with_a_bot_token_the_page_is_edited_on_ack_and_resolve_and_escalations_reply_in_its_thread() {
    use crate::slack_standin::{BOT_TOKEN, CHANNEL, SlackApiStandin};
    // Slack rate-limits the first call: the page waits it out.
    let slack = SlackApiStandin::start(vec![Answer::rate_limited(1)]).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, PAGING_RULES).unwrap();
    let token = dir.path().join("slack-bot-token");
    std::fs::write(&token, format!("{BOT_TOKEN}\n")).unwrap();
    let extra = format!(
        "  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\nrules:\n  paths: [{}]\nnotifiers:\n  slack:\n    type: slack\n    bot_token_file: {tok}\n    channel: {CHANNEL}\n    api_url: {api}\n    rate_per_second: 0\n  elsewhere:\n    type: slack\n    bot_token_file: {tok}\n    channel: C0NOWHERE\n    api_url: {api}\nroutes:\n  - policy: page\n    group_wait: 0s\npolicies:\n  page:\n    steps:\n      - {{after: 0s, notify: [slack]}}\n      - {{after: 3s, notify: [slack]}}\n",
        rules.display(),
        tok = token.display(),
        api = slack.api_url,
    );
    let d = TestDaemon::start_in(dir, &extra).await;

    let page = wait_for("the page", Duration::from_secs(20), || async {
        push_lat(&d, 0.5).await;
        slack.messages().first().cloned()
    })
    .await;
    assert_eq!(page.content["text"], "[FIRING:1] ApiSlow");
    assert_eq!(page.thread_ts, None);
    let firing = d.keep_pushing(lat(0.5));
    // The 429 and the retry: two posts of the page (an escalation, if already out, is a reply).
    let page_posts = slack.calls().iter().filter(|(m, b)| m == "chat.postMessage" && b["thread_ts"].is_null()).count();
    assert_eq!(page_posts, 2, "{:?}", slack.calls());
    // Unacknowledged for 3 s: the escalation replies in the page's thread, shown in the channel.
    let escalation = wait_for("the escalation", Duration::from_secs(20), || async {
        push_lat(&d, 0.5).await;
        slack.messages().get(1).cloned()
    })
    .await;
    assert_eq!((escalation.thread_ts.as_deref(), escalation.broadcast), (Some(page.ts.as_str()), true));
    assert!(escalation.content.to_string().contains("Escalated: not acknowledged"), "{:?}", escalation.content);

    let (_, alerts) = d.get("/api/v1/alerts").await;
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let ack = d.client.post(format!("{}/api/v1/alerts/{id}/ack", d.base)).json(&json!({"by": "ana"})).send().await;
    assert_eq!(ack.unwrap().status(), 200);
    let edited = wait_for("the page edited to acked", Duration::from_secs(20), || async {
        let first = slack.messages().remove(0);
        (first.edits == 1).then_some(first)
    })
    .await;
    assert_eq!(edited.content["text"], "[ACKED] ApiSlow");
    assert!(edited.content.to_string().contains("Acknowledged by ana"));
    assert!(!edited.content.to_string().contains("/ack/"), "no acknowledge button once acknowledged");

    drop(firing);
    let resolved = wait_for("the page edited to resolved", Duration::from_secs(20), || async {
        push_lat(&d, 0.1).await;
        let first = slack.messages().remove(0);
        (first.edits == 2).then_some(first)
    })
    .await;
    assert_eq!(resolved.content["text"], "[RESOLVED] ApiSlow");
    assert_eq!(resolved.content["attachments"][0]["color"], "#2e7d32");
    assert_eq!(slack.messages().len(), 2, "the ack and the resolve added no message");
    let (_, list) = d.get("/api/v1/notifications?notifier=slack&status=sent").await;
    let receipts: Vec<&str> =
        list["notifications"].as_array().unwrap().iter().filter_map(|n| n["receipt"].as_str()).collect();
    assert!(receipts.contains(&format!("{CHANNEL}/{}", page.ts).as_str()), "{list}");

    // A channel the bot cannot see fails at once, saying what to check.
    let (_, answer) = send_test(&d, "elsewhere").await;
    let done = settled(&d, answer["id"].as_str().unwrap()).await;
    assert_eq!(done["notification"]["status"], "failed");
    let error = done["notification"]["last_error"].as_str().unwrap();
    assert!(error.contains("channel_not_found") && error.contains("use the channel ID"), "{error}");
}

#[tokio::test]
async fn follow_ups_queued_before_their_page_reached_slack_wait_for_it_in_order_without_spending_attempts() {
    use crate::slack_standin::{BOT_TOKEN, CHANNEL, SlackApiStandin};
    // The page is rate-limited for 4 s; the ack and the resolve come meanwhile. Two attempts at most.
    let slack = SlackApiStandin::start(vec![Answer::rate_limited(4)]).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, PAGING_RULES).unwrap();
    let token = dir.path().join("slack-bot-token");
    std::fs::write(&token, BOT_TOKEN).unwrap();
    let extra = format!(
        "  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\nrules:\n  paths: [{}]\nnotifiers:\n  slack:\n    type: slack\n    bot_token_file: {}\n    channel: {CHANNEL}\n    api_url: {}\n    rate_per_second: 0\n    max_attempts: 2\nroutes:\n  - policy: page\n    group_wait: 0s\npolicies:\n  page:\n    steps: [{{after: 0s, notify: [slack]}}]\n",
        rules.display(),
        token.display(),
        slack.api_url,
    );
    let d = TestDaemon::start_in(dir, &extra).await;
    wait_for("the rate-limited page", Duration::from_secs(20), || async {
        push_lat(&d, 0.5).await;
        (!slack.calls().is_empty()).then_some(())
    })
    .await;
    let (_, alerts) = d.get("/api/v1/alerts").await;
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let ack = d.client.post(format!("{}/api/v1/alerts/{id}/ack", d.base)).json(&json!({"by": "ana"})).send().await;
    assert_eq!(ack.unwrap().status(), 200);
    // While the page waits out the 429, the ack waits for it: deferred, no attempt spent.
    let waiting = wait_for("the ack deferred", Duration::from_secs(10), || async {
        let (_, list) = d.get(&format!("/api/v1/notifications?alert={id}")).await;
        let acked = list["notifications"].as_array()?.iter().find(|n| n["kind"] == "acked")?.clone();
        // (Between deferrals it is briefly claimed, `sending`; look at it while it waits.)
        (acked["status"] == "pending" && acked["last_error"].as_str()?.contains("waiting for the page"))
            .then_some(acked)
    })
    .await;
    assert_eq!((waiting["status"].as_str(), waiting["attempts"].as_i64()), (Some("pending"), Some(0)), "{waiting}");
    // No more slow requests: the alert resolves too while the page still waits out the 429.
    let edited = wait_for("the page, then both edits", Duration::from_secs(20), || async {
        slack.messages().first().filter(|m| m.edits == 2).cloned()
    })
    .await;
    assert_eq!(edited.content["text"], "[RESOLVED] ApiSlow", "the edits landed in order");
    assert_eq!(slack.messages().len(), 1);
    let calls: Vec<String> = slack
        .calls()
        .into_iter()
        .map(|(method, body)| format!("{method} {}", body["text"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        calls,
        [
            "chat.postMessage [FIRING:1] ApiSlow",
            "chat.postMessage [FIRING:1] ApiSlow",
            "chat.update [ACKED] ApiSlow",
            "chat.update [RESOLVED] ApiSlow"
        ]
    );
    let (_, list) = d.get(&format!("/api/v1/notifications?alert={id}")).await;
    for follow_up in list["notifications"].as_array().unwrap().iter().filter(|n| n["kind"] != "firing") {
        let done = settled(&d, follow_up["id"].as_str().unwrap()).await;
        assert_eq!(attempt_statuses(&done), vec!["sent"], "waiting for the page was not an attempt: {done}");
    }
}
