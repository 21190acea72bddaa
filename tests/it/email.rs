//! Email against a real SMTP server (aiosmtpd): plain SMTP, STARTTLS and implicit TLS with a
//! certificate from a CA the test made, AUTH, what the mail holds (headers, text and HTML,
//! Message-ID and threading), refusals failed for good and temporary failures retried — and
//! the end-to-end page with a shipped rule going to Slack and mail at once.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::notify::{
    PAGING_RULES, attempt_statuses, paging_daemon_in, press_ack, push_lat, send_test, settled, titles,
};
use crate::slack_standin::SlackStandin;
use crate::smtp_server::{SmtpServer, TestCa, header};
use crate::support::{TestDaemon, wait_for};

const FROM: &str = "perfwatch <alerts@wedding.example>";

/// An email notifier's YAML (indented under its name) for a server on `port`.
fn mail_notifier(port: u16, tls: &str, extra_smtp: &str, to: &str) -> String {
    format!(
        "    type: email\n    smtp:\n      host: 127.0.0.1\n      port: {port}\n      tls: {tls}\n{extra_smtp}    from: '{FROM}'\n    to: {to}\n"
    )
}

/// `smtp:` keys for AUTH as `perfwatch` (password in a file in `dir`) and trusting `ca`.
fn auth_and_ca(dir: &Path, ca: &TestCa) -> String {
    let password = dir.join("smtp-password");
    std::fs::write(&password, "s3cret\n").unwrap();
    format!(
        "      username: perfwatch\n      password_file: {}\n      ca_file: {}\n",
        password.display(),
        ca.ca_file.display()
    )
}

fn message_id(id: &str) -> String {
    format!("<{id}@wedding.example>")
}

#[tokio::test]
async fn test_mail_goes_out_over_plain_smtp_and_implicit_tls_with_auth() {
    let Some(plain) = SmtpServer::start(&[]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let smtps = SmtpServer::start_tls("tls", &ca, &["--auth", "perfwatch:s3cret"]).unwrap();
    let extra = format!(
        "notifiers:\n  relay:\n{}  smtps:\n{}    cc: ['SRE leads <sre@wedding.example>', ops@wedding.example]\n",
        mail_notifier(plain.port, "none", "", "[oncall@wedding.example]"),
        mail_notifier(smtps.port, "tls", &auth_and_ca(dir.path(), &ca), "['On call <oncall@wedding.example>']"),
    );
    let d = TestDaemon::start_in(dir, &extra).await;

    let (status, answer) = send_test(&d, "relay").await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap();
    assert_eq!(settled(&d, id).await["notification"]["status"], "sent");
    let mail = &plain.wait_for_mails(1).await[0];
    assert_eq!(mail["mail_from"], "alerts@wedding.example");
    assert_eq!(mail["rcpt_tos"], json!(["oncall@wedding.example"]));
    assert_eq!((mail["tls"].as_bool(), mail["login"].as_str()), (Some(false), None), "plain, no AUTH: {mail}");
    assert_eq!(header(mail, "Subject"), "perfwatch test notification to relay");
    assert_eq!(header(mail, "From"), FROM);
    assert_eq!(header(mail, "Message-ID"), message_id(id), "the notification id makes the Message-ID");
    assert_eq!(header(mail, "X-Perfwatch-Notification"), id);
    assert_eq!(header(mail, "Auto-Submitted"), "auto-generated", "auto-responders stay quiet");
    assert!(mail["headers"].get("In-Reply-To").is_none(), "a test mail starts no thread: {mail}");
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert!(mail["text"].as_str().unwrap().contains("Sent by ana to check that relay reaches you."), "{mail}");
    let html = mail["html"].as_str().unwrap();
    assert!(html.contains("<h2") && html.contains("Sent by ana to check that relay reaches you."), "{html}");

    let (_, answer) = send_test(&d, "smtps").await;
    let id = answer["id"].as_str().unwrap();
    assert_eq!(settled(&d, id).await["notification"]["status"], "sent");
    let mail = &smtps.wait_for_mails(1).await[0];
    assert_eq!((mail["tls"].as_bool(), mail["login"].as_str()), (Some(true), Some("perfwatch")), "{mail}");
    let mut recipients: Vec<&str> = mail["rcpt_tos"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, ["oncall@wedding.example", "ops@wedding.example", "sre@wedding.example"]);
    assert_eq!(header(mail, "To"), "On call <oncall@wedding.example>");
    assert_eq!(header(mail, "Cc"), "SRE leads <sre@wedding.example>, ops@wedding.example");
}

#[tokio::test]
async fn a_refused_recipient_fails_for_good_a_451_is_retried_and_an_untrusted_relay_says_what_to_set() {
    let Some(refusing) = SmtpServer::start(&["--refuse", "nobody@wedding.example"]) else { return };
    let busy = SmtpServer::start(&["--tempfail", "1"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let untrusted = SmtpServer::start_tls("starttls", &ca, &[]).unwrap();
    let extra = format!(
        "notifiers:\n  refused:\n{}  busy:\n{}  untrusted:\n{}    max_attempts: 1\n",
        mail_notifier(refusing.port, "none", "", "[nobody@wedding.example]"),
        mail_notifier(busy.port, "none", "", "[oncall@wedding.example]"),
        // STARTTLS to a relay whose CA perfwatch was not told about.
        mail_notifier(untrusted.port, "starttls", "", "[oncall@wedding.example]"),
    );
    let d = TestDaemon::start_in(dir, &extra).await;

    let (_, answer) = send_test(&d, "refused").await;
    let done = settled(&d, answer["id"].as_str().unwrap()).await;
    assert_eq!(done["notification"]["status"], "failed", "{done}");
    assert_eq!(attempt_statuses(&done), vec!["failed"], "a 550 is not retried");
    let error = done["notification"]["last_error"].as_str().unwrap();
    assert!(error.contains("550") && error.contains("check from, to and cc"), "{error}");
    assert!(refusing.mails().is_empty());

    let (_, answer) = send_test(&d, "busy").await;
    let done = settled(&d, answer["id"].as_str().unwrap()).await;
    assert_eq!(attempt_statuses(&done), vec!["retry", "sent"], "{done}");
    assert!(done["attempts"][0]["error"].as_str().unwrap().contains("451"), "{done}");
    assert_eq!(busy.wait_for_mails(1).await.len(), 1);

    let (_, answer) = send_test(&d, "untrusted").await;
    let done = settled(&d, answer["id"].as_str().unwrap()).await;
    let error = done["notification"]["last_error"].as_str().unwrap();
    assert!(error.contains("TLS") && error.contains("set smtp.ca_file"), "{error}");
    assert!(untrusted.mails().is_empty());
}

#[tokio::test]
async fn a_mail_in_doubt_after_a_crash_goes_once_more_under_the_same_message_id() {
    let Some(smtp) = SmtpServer::start(&[]) else { return };
    let extra = format!("notifiers:\n  mail:\n{}", mail_notifier(smtp.port, "none", "", "[oncall@wedding.example]"));
    let mut d = TestDaemon::start(&extra).await;
    let (_, answer) = send_test(&d, "mail").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(settled(&d, &id).await["notification"]["status"], "sent");
    assert_eq!(smtp.wait_for_mails(1).await.len(), 1);

    // As if perfwatch died after the relay took the mail and before it recorded that.
    d.daemon.take().unwrap().shutdown().await;
    let dir = d.dir.take().unwrap();
    let db = rusqlite::Connection::open(dir.path().join("perfwatch.db")).unwrap();
    assert_eq!(db.execute("UPDATE outbox SET status = 'sending' WHERE id = ?1", [&id]).unwrap(), 1);
    drop(db);
    let d = TestDaemon::start_in(dir, &extra).await;
    let done = settled(&d, &id).await;
    assert_eq!(done["notification"]["in_doubt"], true, "{done}");
    assert_eq!(done["notification"]["attempts"], 2, "one more attempt after the restart: {done}");
    // Settled as sent, so nothing will send it again: exactly the one duplicate.
    let mails = smtp.wait_for_mails(2).await;
    assert_eq!(mails.len(), 2, "sent once more, not again and again");
    assert_eq!(header(&mails[1], "Message-ID"), header(&mails[0], "Message-ID"), "the duplicate is recognisable");
    assert_eq!(header(&mails[1], "Message-ID"), message_id(&id));
}

/// The text part's Acknowledge link.
fn ack_link_in_mail(mail: &Value) -> String {
    let text = mail["text"].as_str().unwrap();
    let line = text.lines().find_map(|l| l.strip_prefix("Acknowledge: ")).expect("an Acknowledge line");
    line.trim().to_owned()
}

#[tokio::test]
async fn a_shipped_rule_pages_slack_and_mail_the_mailed_ack_link_stops_escalation_and_recovery_resolves() {
    // The shipped rules, evaluated every second and without `for`, so the scenario takes
    // seconds rather than minutes; thresholds, windows and templates are as shipped.
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/web-platform.yaml")).unwrap();
    let fast = shipped
        .replace("interval: 30s", "interval: 1s")
        .replace("interval: 5m", "interval: 1s")
        .replace("for: 2m", "for: 0s");
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(dir.path());
    let Some(smtp) = SmtpServer::start_tls("starttls", &ca, &["--auth", "perfwatch:s3cret"]) else { return };
    let slack = SlackStandin::start(Vec::new()).await;
    let mail = mail_notifier(smtp.port, "starttls", &auth_and_ca(dir.path(), &ca), "[oncall@wedding.example]");
    let d = paging_daemon_in(dir, &slack, &fast, Some(&mail)).await;
    let push = |value: f64, n: usize| {
        let body = json!({"metrics": [{"name": "api_request_duration_seconds", "type": "timing", "values": vec![value; n],
            "labels": {"service": "api-gateway", "endpoint": "/vendors/:id"}}]});
        let d = &d;
        async move { assert_eq!(d.push_json(&body).await.0, 200) }
    };
    // A slow vendor page: p99 500 ms against the 200 ms critical level.
    let page = wait_for("the page", Duration::from_secs(20), || async {
        push(0.5, 25).await;
        slack.received().first().cloned()
    })
    .await;
    assert_eq!(page.1["text"], "[FIRING:1] ApiLatencyP99");
    let blocks = page.1["attachments"][0]["blocks"].to_string();
    assert!(blocks.contains("api-gateway /vendors/:id: p99 500 ms (limit 200 ms)"), "the shipped summary: {blocks}");

    let first = smtp.wait_for_mails(1).await.remove(0);
    assert_eq!((first["tls"].as_bool(), first["login"].as_str()), (Some(true), Some("perfwatch")), "{first}");
    assert_eq!(header(&first, "Subject"), "[FIRING:1] ApiLatencyP99");
    assert_eq!(header(&first, "Importance"), "high", "critical pages are marked important");
    let first_id = header(&first, "Message-ID").to_owned();
    assert!(first_id.starts_with('<') && first_id.ends_with("@wedding.example>"), "{first_id}");
    let text = first["text"].as_str().unwrap();
    for expected in [
        "ApiLatencyP99 — firing (critical)",
        "Value: 0.5000 (threshold 0.2000)",
        "Labels: endpoint=/vendors/:id, service=api-gateway, severity=critical",
        "Summary: api-gateway /vendors/:id: p99 500 ms (limit 200 ms)",
        "runbook: docs/runbook.md#apilatencyp99",
    ] {
        assert!(text.contains(expected), "{expected:?} in the text part:\n{text}");
    }
    let link = ack_link_in_mail(&first);
    let html = first["html"].as_str().unwrap();
    assert!(html.contains(&format!("href=\"{link}\"")), "the HTML part links the same ack page: {html}");
    let (_, alerts) = d.get("/api/v1/alerts").await;
    let page = format!("{}/alerts/{}", d.base, alerts["alerts"][0]["id"].as_str().unwrap());
    assert!(text.contains(&format!("  Alert page: {page}")), "the alert's page in the text part: {text}");
    assert!(html.contains(&format!("<a href=\"{page}\">ApiLatencyP99</a>")), "and linked in the HTML part: {html}");

    // On-call follows the mailed link and acknowledges.
    assert_eq!(d.client.get(&link).send().await.unwrap().status(), 200);
    assert_eq!(press_ack(&d, &link, "ana").await.status(), 200);
    let firing_since = d.get("/api/v1/alerts").await.1["alerts"][0]["firing_since"].as_i64().unwrap();
    wait_for("past the 4 s escalation step", Duration::from_secs(20), || async {
        push(0.5, 1).await;
        (perfwatch::clock::now_s() > firing_since + 5).then_some(())
    })
    .await;
    assert_eq!(titles(&slack), vec!["[FIRING:1] ApiLatencyP99", "[ACKED] ApiLatencyP99"]);
    let mails = smtp.wait_for_mails(2).await;
    assert_eq!(mails.len(), 2, "the ack is announced; no escalation mail follows");
    assert_eq!(header(&mails[1], "Subject"), "[ACKED] ApiLatencyP99");
    assert!(mails[1]["text"].as_str().unwrap().contains("Acknowledged by ana"), "{}", mails[1]);
    assert_eq!(header(&mails[1], "In-Reply-To"), first_id, "the ack threads under the page");
    assert_eq!(header(&mails[1], "References"), first_id);

    // The page recovers: enough fast requests bring the 5 m p99 under resolve_at (140 ms).
    wait_for("the resolve", Duration::from_secs(30), || async {
        push(0.05, 1000).await;
        (titles(&slack).iter().any(|t| t.starts_with("[RESOLVED]")) && smtp.mails().len() >= 3).then_some(())
    })
    .await;
    assert_eq!(titles(&slack), vec!["[FIRING:1] ApiLatencyP99", "[ACKED] ApiLatencyP99", "[RESOLVED] ApiLatencyP99"]);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert_eq!(header(&mails[2], "Subject"), "[RESOLVED] ApiLatencyP99");
    assert_eq!(header(&mails[2], "In-Reply-To"), first_id, "the resolve threads under the page");
    assert!(mails[2]["headers"].get("Importance").is_none(), "a resolve is not urgent");
    let ids: std::collections::BTreeSet<&str> = mails.iter().map(|m| header(m, "Message-ID")).collect();
    assert_eq!(ids.len(), 3, "every mail has its own Message-ID");
}

#[tokio::test]
async fn escalation_steps_mention_the_on_call_in_slack_and_mail_the_next_in_line() {
    let Some(smtp) = SmtpServer::start(&[]) else { return };
    let slack = SlackStandin::start(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, PAGING_RULES).unwrap();
    let hook = dir.path().join("slack-webhook");
    std::fs::write(&hook, &slack.url).unwrap();
    // Whoever the rotation says, ben covers the hour around now: he is on call, ana is next.
    let now = jiff::Timestamp::now();
    let (from, until) = (now - jiff::SignedDuration::from_hours(1), now + jiff::SignedDuration::from_hours(1));
    let extra = format!(
        "  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\nrules:\n  paths: [{rules}]\n\
notifiers:\n  slack:\n    type: slack\n    webhook_url_file: {hook}\n    rate_per_second: 0\n  mail:\n{mail}\
people:\n  ana: {{name: Ana Silva, slack: U0ANA00001, email: ana@wedding.example}}\n  ben: {{name: Ben Okoro, slack: U0BEN00001, email: ben@wedding.example}}\n\
schedules:\n  platform:\n    time_zone: Europe/London\n    rotation: [ana, ben]\n    start: 2026-01-05\n    shift: 1w\n    overrides:\n      - {{person: ben, from: '{from}', until: '{until}'}}\n\
routes:\n  - policy: page\n    group_wait: 0s\npolicies:\n  page:\n    steps:\n      - {{after: 0s, notify: [slack], oncall: [platform]}}\n      - {{after: 2s, notify: [mail], oncall: [platform/next]}}\n",
        rules = rules.display(),
        hook = hook.display(),
        mail = mail_notifier(smtp.port, "none", "", "[oncall@wedding.example]"),
    );
    let d = TestDaemon::start_in(dir, &extra).await;
    let page = wait_for("the page", Duration::from_secs(20), || async {
        push_lat(&d, 0.5).await;
        slack.received().first().cloned()
    })
    .await;
    assert_eq!(page.1["text"], "<@U0BEN00001> [FIRING:1] ApiSlow", "the on-call is @mentioned");
    let _firing = d.keep_pushing(crate::notify::lat(0.5));
    let blocks = page.1["attachments"][0]["blocks"].to_string();
    assert!(blocks.contains("On call (platform): <@U0BEN00001>"), "{blocks}");

    // Two seconds on, unacknowledged: the next in line gets the mail.
    let mail = smtp.wait_for_mails(1).await.remove(0);
    let mut recipients: Vec<&str> = mail["rcpt_tos"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, ["ana@wedding.example", "oncall@wedding.example"]);
    assert_eq!(header(&mail, "To"), "oncall@wedding.example, Ana Silva <ana@wedding.example>");
    assert!(mail["text"].as_str().unwrap().contains("Next in line (platform): Ana Silva"), "{mail}");

    // The ack is announced to both, naming both people but pinging nobody again.
    let (_, alerts) = d.get("/api/v1/alerts").await;
    let id = alerts["alerts"][0]["id"].as_str().unwrap().to_owned();
    let ack = d.client.post(format!("{}/api/v1/alerts/{id}/ack", d.base)).json(&json!({"by": "ben"})).send().await;
    assert_eq!(ack.unwrap().status(), 200);
    let acked = wait_for("the ack in Slack", Duration::from_secs(20), || async {
        slack.received().iter().find(|(_, m)| m["text"] == "[ACKED] ApiSlow").cloned()
    })
    .await;
    let blocks = acked.1["attachments"][0]["blocks"].to_string();
    assert!(blocks.contains("On call (platform): Ben Okoro") && !blocks.contains("<@"), "{blocks}");
    let mails = smtp.wait_for_mails(2).await;
    assert_eq!(header(&mails[1], "Subject"), "[ACKED] ApiSlow");
    assert!(mails[1]["rcpt_tos"].as_array().unwrap().iter().any(|r| r == "ben@wedding.example"), "{}", mails[1]);
    assert_eq!(titles(&slack), ["<@U0BEN00001> [FIRING:1] ApiSlow", "[ACKED] ApiSlow"], "the mail step is mail only");
}

#[tokio::test]
async fn an_on_call_address_the_relay_refuses_does_not_cost_the_page_to_the_others() {
    use perfwatch::notify::Notifier;
    use perfwatch::notify::message::{Kind, Message, OnCallMention};
    use perfwatch::oncall::Person;
    let Some(smtp) = SmtpServer::start(&["--refuse", "gone@wedding.example"]) else { return };
    let yaml = format!("notifiers:\n  mail:\n{}", mail_notifier(smtp.port, "none", "", "[oncall@wedding.example]"));
    let config = perfwatch::config::Config::parse(&yaml, "mail.yaml").unwrap();
    let notifier = Notifier::new("mail", &config.notifiers["mail"], perfwatch::http_client::client()).unwrap();
    let mut message = Message::test("mail", "ana");
    message.kind = Kind::Firing;
    message.oncall = vec![OnCallMention {
        schedule: "platform".into(),
        next: false,
        person: Person {
            id: "gus".into(),
            name: "Gus".into(),
            slack: None,
            email: Some("gone@wedding.example".into()),
        },
    }];
    assert_eq!(notifier.send("page-1", "test", &message, None).await, perfwatch::notify::Outcome::Delivered);
    let mails = smtp.wait_for_mails(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["rcpt_tos"], json!(["oncall@wedding.example"]), "the configured recipient still got the page");
    assert_eq!(header(&mails[0], "Message-ID"), message_id("page-1"));
}
