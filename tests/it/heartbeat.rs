//! The dead man's switch: heartbeats go out while perfwatch is well and stop while a notifier
//! cannot deliver, so the service watching them pages; they resume after a delivery.

use std::time::Duration;

use crate::notify::{send_test, settled};
use crate::slack_standin::{Answer, SlackStandin};
use crate::support::{TestDaemon, metric_value, wait_for};

/// perfwatch_heartbeats_total{result} on the daemon's /metrics. Only this test configures a
/// heartbeat, so the process-wide recorder's count is this daemon's.
async fn heartbeats(d: &TestDaemon, result: &str) -> f64 {
    let text = d.client.get(format!("{}/metrics", d.base)).send().await.unwrap().text().await.unwrap();
    metric_value(&text, "perfwatch_heartbeats_total", &[&format!("result=\"{result}\"")])
}

#[tokio::test]
async fn heartbeats_stop_while_a_notifier_cannot_deliver_and_resume_after() {
    let watcher = SlackStandin::start(Vec::new()).await;
    // Slack's answer for a removed webhook: permanent, the notifier gives up at once.
    let slack = SlackStandin::start(vec![Answer::status(404, "no_service")]).await;
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("heartbeat-url");
    std::fs::write(&url_file, format!("{}\n", watcher.url)).unwrap();
    let hook = dir.path().join("slack-webhook");
    std::fs::write(&hook, &slack.url).unwrap();
    let extra = format!(
        "notifiers:\n  slack:\n    type: slack\n    webhook_url_file: {}\n    rate_per_second: 0\nheartbeat:\n  url_file: {}\n  interval: 2s\n  timeout: 1s\n  method: POST\n",
        hook.display(),
        url_file.display()
    );
    let d = TestDaemon::start_in(dir, &extra).await;

    // Well: a heartbeat every interval, the first at once.
    wait_for("two heartbeats", Duration::from_secs(20), || async { (watcher.requests().len() >= 2).then_some(()) })
        .await;
    assert_eq!(&watcher.requests()[0].body[..], b"ok");

    // The notifier gives up on a notification: no heartbeat goes out after that.
    let (_, answer) = send_test(&d, "slack").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(settled(&d, &id).await["notification"]["status"], "failed");
    let skipped_before = heartbeats(&d, "skipped").await;
    wait_for("a skipped heartbeat", Duration::from_secs(20), || async {
        (heartbeats(&d, "skipped").await > skipped_before).then_some(())
    })
    .await;
    let sent_while_failing = watcher.requests().len();
    wait_for("two more skipped heartbeats", Duration::from_secs(20), || async {
        (heartbeats(&d, "skipped").await >= skipped_before + 3.0).then_some(())
    })
    .await;
    assert_eq!(watcher.requests().len(), sent_while_failing, "no heartbeat while the notifier cannot deliver");

    // A delivery through it (the webhook works again): heartbeats resume.
    let (_, answer) = send_test(&d, "slack").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(settled(&d, &id).await["notification"]["status"], "sent");
    wait_for("heartbeats again", Duration::from_secs(20), || async {
        (watcher.requests().len() > sent_while_failing).then_some(())
    })
    .await;
}
