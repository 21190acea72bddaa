//! The examples in README.md and docs/ run as shown: configuration fragments pass
//! `perfwatch check`, rule files load, the rule unit test passes against the rule file beside
//! it, and the push examples (curl, bash's /dev/udp, the JSON body) are taken by a daemon.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::smtp_server::TestCa;
use crate::support::{BIN, TestDaemon, program, wait_for};

/// One fenced code block: where it is, its language and its text.
struct Example {
    at: String,
    lang: String,
    text: String,
}

/// Every fenced block of `file` (a path from the repository's root).
fn examples(file: &str) -> Vec<Example> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).expect("the documentation page exists");
    let mut found = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (idx, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some((idx + 1, lang.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => {
                let (line, lang, text) = open.take().expect("open");
                found.push(Example { at: format!("{file}:{line}"), lang, text });
            }
            (Some((_, _, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

fn yaml_examples(file: &str) -> Vec<Example> {
    examples(file).into_iter().filter(|e| e.lang == "yaml").collect()
}

/// `text` with the secret and certificate files it names under /etc/perfwatch/ moved to
/// `dir`, each written there with something of the right kind.
fn with_files_in(text: &str, dir: &Path) -> String {
    let mut rest = text;
    while let Some(start) = rest.find("/etc/perfwatch/") {
        let name: String = rest[start + 15..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let path = dir.join(&name);
        if name.ends_with(".pem") {
            TestCa::create(dir);
        } else if name.contains("bot-token") {
            std::fs::write(&path, "xoxb-0000-not-a-real-token\n").unwrap();
        } else if name.ends_with("-url") || name.ends_with("-webhook") {
            std::fs::write(&path, "https://hooks.example.invalid/T000/B000\n").unwrap();
        } else {
            std::fs::write(&path, "not-a-real-secret\n").unwrap();
        }
        rest = &rest[start + 15..];
    }
    text.replace("/etc/perfwatch/", &format!("{}/", dir.display()))
}

/// `perfwatch check --config <config> [rule files]`: its success and what it printed.
fn check(config: &Path, rule_files: &[&Path]) -> (bool, String) {
    let out = Command::new(BIN).arg("check").arg("--config").arg(config).args(rule_files).output().expect("runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn configuration_examples_pass_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for page in ["docs/configuration.md", "docs/grafana-and-prometheus.md", "docs/operations.md", "docs/pushing.md"] {
        for example in yaml_examples(page) {
            let config = write(dir.path(), "config.yaml", &with_files_in(&example.text, dir.path()));
            let (ok, said) = check(&config, &[]);
            assert!(ok, "{}: the example fails perfwatch check:\n{said}", example.at);
            checked += 1;
        }
    }
    // The notifications page builds one configuration: its notifiers, then one of two ways
    // to route and escalate to them (routes with policies, or people and schedules).
    let parts = yaml_examples("docs/notifications.md");
    assert_eq!(parts.len(), 3, "notifiers, routes and policies, people and schedules");
    for second in &parts[1..] {
        let text = format!("{}{}", parts[0].text, second.text);
        let config = write(dir.path(), "config.yaml", &with_files_in(&text, dir.path()));
        let (ok, said) = check(&config, &[]);
        assert!(ok, "{} with {}: perfwatch check fails:\n{said}", parts[0].at, second.at);
        checked += 1;
    }
    assert!(checked >= 6, "the configuration examples were found ({checked})");
}

#[test]
fn rule_examples_load_and_their_unit_test_passes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.yaml", "rules:\n  paths: []\n");
    let rules = yaml_examples("docs/rules.md");
    let rule_file = rules.iter().find(|e| e.text.starts_with("groups:")).expect("the rule file example");
    let gate = rules.iter().find(|e| e.text.contains("gates/deploy.yaml")).expect("the gate example");
    let unit_test = rules.iter().find(|e| e.text.starts_with("rule_files:")).expect("the rule test example");
    for example in [rule_file, gate] {
        let file = write(dir.path(), "example.yaml", &example.text);
        let (ok, said) = check(&config, &[&file]);
        assert!(ok, "{}: perfwatch check fails:\n{said}", example.at);
    }
    // The unit test names its rule file as ../api.yaml: the rule file example.
    write(dir.path(), "api.yaml", &rule_file.text);
    let test_file = write(dir.path(), "tests/api_test.yaml", &unit_test.text);
    let out = Command::new(BIN).arg("test-rules").arg(&test_file).output().expect("runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("1 passed, 0 failed"), "{}: {said}", unit_test.at);
}

/// The shell examples that push to the default address, pointed at a test daemon's instead.
fn push_examples(daemon: &TestDaemon) -> Vec<(String, String)> {
    let http = daemon.base.trim_start_matches("http://").to_owned();
    let statsd = daemon.daemon.as_ref().unwrap().statsd_addr.expect("StatsD listens").port();
    ["README.md", "docs/pushing.md"]
        .into_iter()
        .flat_map(examples)
        .filter(|e| e.lang == "sh" && (e.text.contains("localhost:9464") || e.text.contains("/dev/udp/")))
        .filter(|e| !e.text.contains("sleep"))
        .map(|e| {
            let text =
                e.text.replace("localhost:9464", &http).replace("127.0.0.1/8125", &format!("127.0.0.1/{statsd}"));
            (e.at, text)
        })
        .collect()
}

#[tokio::test]
async fn push_examples_are_taken() {
    if !program("curl", &["--version"], "apt-get install curl") {
        return;
    }
    let d = TestDaemon::start("").await;
    let pushes = push_examples(&d);
    assert!(pushes.len() >= 4, "README's push, Pushgateway text, StatsD and Influx: {pushes:?}");
    for (at, script) in pushes {
        let out = tokio::task::spawn_blocking(move || Command::new("bash").args(["-ec", &script]).output())
            .await
            .unwrap()
            .expect("bash runs");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{at}: {said}{}", String::from_utf8_lossy(&out.stderr));
        assert!(!said.contains("\"error") || said.contains("\"errors\":[]"), "{at}: {said}");
    }
    // The JSON body shown on the pushing page.
    let json = examples("docs/pushing.md").into_iter().find(|e| e.lang == "json").expect("the JSON example");
    let (status, answer) = d.push_json(&serde_json::from_str(&json.text).expect("the example is JSON")).await;
    assert_eq!((status, &answer["accepted"]), (200, &serde_json::json!(3)), "{}: {answer}", json.at);
    // What each example pushed is there to query (StatsD arrives asynchronously).
    for metric in ["api_request_duration_seconds", "rows_imported_total", "api_latency", "db_pool_in_use"] {
        wait_for(&format!("{metric} to be stored"), Duration::from_secs(10), || async {
            let series = d.query(&[("metric", metric), ("stat", "count"), ("from", "-5m")]).await;
            (!series.is_empty()).then_some(())
        })
        .await;
    }
}
