//! perfwatch under systemd: the unit passes `systemd-analyze verify`, rates "OK" or better in
//! `systemd-analyze security`, and the daemon speaks the notify protocol to a socket the test
//! owns (READY=1 once it serves, WATCHDOG=1 pings, RELOADING=1/READY=1 on SIGHUP, STOPPING=1).

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::{BIN, DaemonProcess, program};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/perfwatch.service");

/// The shipped unit with ExecStart pointing at the binary under test (verify checks that the
/// executable exists).
fn unit_for_test(dir: &std::path::Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/perfwatch run"), "the unit runs /usr/bin/perfwatch");
    let path = dir.join("perfwatch.service");
    std::fs::write(&path, unit.replace("/usr/bin/perfwatch", BIN)).unwrap();
    path
}

#[test]
fn the_unit_verifies_and_rates_ok_or_better_for_exposure() {
    if !program("systemd-analyze", &["--version"], "apt-get install systemd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_test(dir.path());
    let verify = std::process::Command::new("systemd-analyze").arg("verify").arg(&unit).output().unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security =
        std::process::Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(&unit).output().unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).expect("an overall exposure line");
    let exposure: f64 = line.split(": ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(exposure <= 2.0, "exposure {exposure} is above 2.0: {line}");
    assert!(line.contains("OK"), "{line}");
}

/// Datagrams the daemon sent to the notify socket, collected until `want` matches one.
fn wait_for_state(socket: &UnixDatagram, seen: &mut Vec<String>, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(message.clone());
            if message.lines().any(|l| l == want) {
                return message;
            }
        }
    }
    panic!("no {want} within 20 s; received {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_speaks_systemds_notify_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let config = dir.path().join("perfwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: 127.0.0.1:0\nstorage:\n  path: {}\n  interval: 1s\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\nrules:\n  paths: []\n",
            dir.path().join("perfwatch.db").display()
        ),
    )
    .unwrap();
    let env = [("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "400000")];
    let daemon = DaemonProcess::spawn_with_env(&config, &env);
    let mut seen = Vec::new();
    let ready = tokio::task::block_in_place(|| wait_for_state(&socket, &mut seen, "READY=1"));
    assert!(ready.contains("STATUS=serving HTTP on 127.0.0.1:"), "{ready}");
    // READY means serving: the HTTP listener answers.
    let health = perfwatch::http_client::client().get(format!("{}/healthz", daemon.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The watchdog is pinged at half its 0.4 s interval while flushes commit.
    tokio::task::block_in_place(|| {
        wait_for_state(&socket, &mut seen, "WATCHDOG=1");
        wait_for_state(&socket, &mut seen, "WATCHDOG=1");
    });

    let pid = daemon.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let reloading = tokio::task::block_in_place(|| wait_for_state(&socket, &mut seen, "RELOADING=1"));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    tokio::task::block_in_place(|| wait_for_state(&socket, &mut seen, "READY=1"));

    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::task::block_in_place(|| wait_for_state(&socket, &mut seen, "STOPPING=1"));
    let mut daemon = daemon;
    let status = tokio::task::block_in_place(|| daemon.child.wait()).unwrap();
    assert!(status.success(), "a clean exit after SIGTERM: {status}");
}
