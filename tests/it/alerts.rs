//! Rules evaluated by a running daemon: push → pending → firing after `for` → held by
//! hysteresis → resolved, with every transition in the alert's history.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestDaemon, wait_for};

const RULES: &str = "groups:
  - name: api
    interval: 1s
    rules:
      - alert: ApiSlow
        metric: lat
        stat: max
        window: 3s
        above: 0.2
        resolve_at: 0.15
        for: 2s
        severity: critical
        labels: {team: platform}
";

async fn daemon_with_rules() -> TestDaemon {
    TestDaemon::with_rules(RULES).await
}

async fn push(d: &TestDaemon, value: f64) {
    let (status, _) = d.push_json(&json!({"metrics": [{"name": "lat", "type": "timing", "value": value}]})).await;
    assert_eq!(status, 200);
}

async fn alert(d: &TestDaemon) -> Option<Value> {
    let (_, body) = d.get("/api/v1/alerts?state=all").await;
    body["alerts"].as_array()?.iter().find(|a| a["rule"] == "ApiSlow").cloned()
}

/// Keeps pushing `value` until the alert matches `want`.
async fn push_until(d: &TestDaemon, value: f64, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(20), || async {
        push(d, value).await;
        alert(d).await.filter(|a| want(a))
    })
    .await
}

#[tokio::test]
async fn a_rule_fires_after_for_holds_with_hysteresis_and_resolves() {
    let d = daemon_with_rules().await;
    let pending = push_until(&d, 0.5, "pending", |a| a["state"] == "pending").await;
    assert_eq!(pending["severity"], "critical");
    let firing = push_until(&d, 0.5, "firing", |a| a["state"] == "firing").await;
    assert!(firing["firing_since"].as_i64().unwrap() - firing["pending_since"].as_i64().unwrap() >= 2, "{firing}");
    assert_eq!((firing["value"].as_f64(), firing["threshold"].as_f64()), (Some(0.5), Some(0.2)));

    // Below the threshold but above resolve_at: still firing, with the new value.
    let held = push_until(&d, 0.18, "value 0.18 while firing", |a| a["value"].as_f64() == Some(0.18)).await;
    assert_eq!(held["state"], "firing");
    let resolved = push_until(&d, 0.1, "resolved", |a| a["state"] == "inactive").await;

    let (status, detail) = d.get(&format!("/api/v1/alerts/{}", resolved["id"].as_str().unwrap())).await;
    assert_eq!(status, 200);
    let transitions: Vec<&str> =
        detail["history"].as_array().unwrap().iter().map(|h| h["transition"].as_str().unwrap()).collect();
    assert_eq!(transitions, vec!["pending", "firing", "resolved"]);
    let (_, firing_now) = d.get("/api/v1/alerts").await;
    assert_eq!(firing_now["alerts"], json!([]));
    let (status, _) = d.get("/api/v1/alerts/0000000000000000").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_restart_while_firing_resumes_without_a_new_firing_transition() {
    let d = daemon_with_rules().await;
    let firing = push_until(&d, 0.5, "firing", |a| a["state"] == "firing").await;
    let d = d.restart_keeping_config().await;
    // Still firing after several evaluations in the new process, same start.
    let after = push_until(&d, 0.6, "evaluated after restart", |a| a["value"].as_f64() == Some(0.6)).await;
    assert_eq!(
        (after["state"].clone(), after["firing_since"].clone()),
        (firing["state"].clone(), firing["firing_since"].clone())
    );
    let (_, detail) = d.get(&format!("/api/v1/alerts/{}", after["id"].as_str().unwrap())).await;
    let n_firing = detail["history"].as_array().unwrap().iter().filter(|h| h["transition"] == "firing").count();
    assert_eq!(n_firing, 1, "{detail}");
}

async fn post(d: &TestDaemon, path: &str, body: Value) -> (u16, Value) {
    let response = d.client.post(format!("{}{path}", d.base)).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn acks_and_silences_mark_alerts_without_changing_their_state() {
    let d = daemon_with_rules().await;
    let firing = push_until(&d, 0.5, "firing", |a| a["state"] == "firing").await;
    let id = firing["id"].as_str().unwrap().to_owned();
    assert_eq!(firing["labels"], json!({"alertname": "ApiSlow", "team": "platform"}));
    assert_eq!((firing["acked"].clone(), firing["silenced"].clone()), (Value::Null, json!(false)));

    let (status, _) =
        post(&d, &format!("/api/v1/alerts/{id}/ack"), json!({"by": "ana", "comment": "looking at the DB"})).await;
    assert_eq!(status, 200);
    let acked = alert(&d).await.unwrap();
    assert_eq!((acked["state"].as_str(), acked["acked"]["by"].as_str()), (Some("firing"), Some("ana")));
    let (status, _) = post(&d, &format!("/api/v1/alerts/{id}/unack"), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(alert(&d).await.unwrap()["acked"], Value::Null);
    // The history keeps who acknowledged and why, after the ack itself is cleared.
    let (_, detail) = d.get(&format!("/api/v1/alerts/{id}")).await;
    let acks: Vec<&Value> =
        detail["history"].as_array().unwrap().iter().filter(|h| h["transition"] == "acked").collect();
    assert_eq!((acks[0]["by"].as_str(), acks[0]["comment"].as_str()), (Some("ana"), Some("looking at the DB")));
    let (status, answer) = post(&d, "/api/v1/alerts/ffffffffffffffff/ack", json!({"by": "ana"})).await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = post(&d, &format!("/api/v1/alerts/{id}/ack"), json!({"who": "ana"})).await;
    assert_eq!(status, 400, "{answer}");

    let silence = json!({"match": "{team=\"platform\",severity=\"critical\"}", "duration": "1h", "author": "ana", "comment": "DB failover"});
    let (status, created) = post(&d, "/api/v1/silences", silence).await;
    assert_eq!(status, 201, "{created}");
    let silence_id = created["id"].as_str().unwrap().to_owned();
    let silenced = alert(&d).await.unwrap();
    assert_eq!((silenced["state"].as_str(), silenced["silenced"].as_bool()), (Some("firing"), Some(true)));
    assert_eq!(silenced["silenced_by"], json!([silence_id.clone()]));
    let (_, listed) = d.get("/api/v1/silences").await;
    assert_eq!(listed["silences"][0]["author"], "ana");
    let deleted = d.client.delete(format!("{}/api/v1/silences/{silence_id}", d.base)).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 200);
    assert_eq!(alert(&d).await.unwrap()["silenced"], json!(false));
    let (_, listed) = d.get("/api/v1/silences?all=true").await;
    assert_eq!(listed["silences"][0]["active"], json!(false), "an ended silence stays on record");

    for (bad, fragment) in [
        (json!({"match": "team=platform", "duration": "1h", "author": "a"}), "match"),
        (json!({"match": "{team=\"x\"}", "author": "a"}), "exactly one of ends_at and duration"),
        (json!({"match": "{team=\"x\"}", "duration": "1h", "author": " "}), "author"),
        (json!({"match": "{team=\"x\"}", "ends_at": "-1h", "author": "a"}), "past"),
    ] {
        let (status, answer) = post(&d, "/api/v1/silences", bad).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(fragment), "{answer}");
    }
    let (_, detail) = d.get(&format!("/api/v1/alerts/{id}")).await;
    let transitions: Vec<&str> =
        detail["history"].as_array().unwrap().iter().map(|h| h["transition"].as_str().unwrap()).collect();
    assert_eq!(transitions, vec!["pending", "firing", "acked", "unacked"]);
}

#[tokio::test]
async fn reload_keeps_unchanged_rules_and_refuses_bad_files() {
    let d = daemon_with_rules().await;
    let firing = push_until(&d, 0.5, "firing", |a| a["state"] == "firing").await;
    let rules = d.dir.as_ref().unwrap().path().join("rules.yaml");

    std::fs::write(&rules, RULES.replace("stat: max", "stat: maximum")).unwrap();
    let (status, answer) = post(&d, "/-/reload", json!({})).await;
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("rules.yaml:7:15") && message.contains("unknown stat"), "{message}");
    let still = push_until(&d, 0.7, "the old rule still evaluating", |a| a["value"].as_f64() == Some(0.7)).await;
    assert_eq!(still["firing_since"], firing["firing_since"]);
    let metrics = d.get("/metrics").await.1.as_str().unwrap().to_owned();
    assert!(crate::support::metric_value(&metrics, "perfwatch_rule_reloads_total", &["result=\"failure\""]) >= 1.0);

    let extra_rule = "      - alert: Other\n        metric: lat\n        stat: count\n        above: 1000000\n";
    std::fs::write(&rules, format!("{RULES}{extra_rule}")).unwrap();
    let (status, answer) = post(&d, "/-/reload", json!({})).await;
    assert_eq!((status, answer["rules"].as_u64(), answer["kept_state"].as_u64()), (200, Some(2), Some(1)), "{answer}");
    let kept = alert(&d).await.unwrap();
    assert_eq!(
        (kept["state"].as_str(), kept["firing_since"].clone()),
        (Some("firing"), firing["firing_since"].clone())
    );

    // A changed rule starts over, and the history says why.
    std::fs::write(&rules, RULES.replace("above: 0.2", "above: 0.3")).unwrap();
    let (status, answer) = post(&d, "/-/reload", json!({})).await;
    assert_eq!((status, answer["kept_state"].as_u64()), (200, Some(0)), "{answer}");
    let (_, detail) = d.get(&format!("/api/v1/alerts/{}", firing["id"].as_str().unwrap())).await;
    let transitions: Vec<&str> =
        detail["history"].as_array().unwrap().iter().map(|h| h["transition"].as_str().unwrap()).collect();
    assert!(transitions.contains(&"reset_by_reload"), "{transitions:?}");
}

#[tokio::test]
async fn sighup_reloads_rules_in_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("api.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let config = dir.path().join("perfwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: null\nstorage:\n  path: {}\nrules:\n  paths: [{}]\n",
            dir.path().join("perfwatch.db").display(),
            rules.display()
        ),
    )
    .unwrap();
    let daemon = crate::support::DaemonProcess::spawn(&config);
    let client = perfwatch::http_client::client();
    let loaded = |want: f64| {
        let (client, url) = (client.clone(), format!("{}/metrics", daemon.base));
        async move {
            let text = client.get(&url).send().await.ok()?.text().await.ok()?;
            (crate::support::metric_value(&text, "perfwatch_rules_loaded", &[]) == want).then_some(())
        }
    };
    wait_for("one rule loaded", Duration::from_secs(10), || loaded(1.0)).await;
    std::fs::write(
        &rules,
        format!("{RULES}      - alert: Other\n        metric: lat\n        stat: count\n        above: 5\n"),
    )
    .unwrap();
    let status = std::process::Command::new("kill").args(["-HUP", &daemon.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    wait_for("two rules loaded after SIGHUP", Duration::from_secs(10), || loaded(2.0)).await;
}

/// Runs the perfwatch binary off the runtime the daemon under test shares.
async fn cli(args: Vec<String>) -> (bool, String, String) {
    let out = tokio::process::Command::new(crate::support::BIN).args(&args).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_command_line_lists_acks_and_silences() {
    let d = daemon_with_rules().await;
    let firing = push_until(&d, 0.5, "firing", |a| a["state"] == "firing").await;
    // Five command-line runs follow: the alert must not resolve for want of data meanwhile.
    let _firing = d.keep_pushing(json!({"metrics": [{"name": "lat", "type": "timing", "value": 0.5}]}));
    let id = firing["id"].as_str().unwrap().to_owned();
    let url = |args: &[&str]| -> Vec<String> {
        args.iter().map(|s| s.to_string()).chain(["--url".into(), d.base.clone()]).collect()
    };

    let (ok, table, stderr) = cli(url(&["alerts"])).await;
    assert!(ok, "{stderr}");
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("firing") && row.contains("critical") && row.contains("ApiSlow") && row.contains("team=platform"),
        "{row}"
    );

    let (ok, out, stderr) = cli(url(&["ack", &id, "--by", "ana", "--comment", "on it"])).await;
    assert!(ok && out.contains("acknowledged"), "{out}{stderr}");
    let (_, table, _) = cli(url(&["alerts", "--state", "firing"])).await;
    assert!(table.contains("acked by ana"), "{table}");

    let (ok, out, stderr) =
        cli(url(&["silence", "add", "--match", "{team=\"platform\"}", "--duration", "1h", "--author", "ana"])).await;
    assert!(ok, "{stderr}");
    let silence_id = out.split_whitespace().nth(1).unwrap().to_owned();
    let (_, table, _) = cli(url(&["alerts"])).await;
    assert!(table.contains("silenced"), "{table}");
    let (_, listed, _) = cli(url(&["silence", "list"])).await;
    assert!(listed.contains(&silence_id) && listed.contains("active"), "{listed}");
    let (ok, out, _) = cli(url(&["silence", "expire", &silence_id])).await;
    assert!(ok && out.contains("ended"), "{out}");

    let (ok, _, stderr) = cli(url(&["ack", "ffffffffffffffff", "--by", "ana"])).await;
    assert!(!ok && stderr.contains("no pending or firing alert"), "{stderr}");
}
