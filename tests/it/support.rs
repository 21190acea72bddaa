//! The harness: a perfwatch daemon on port 0 with a temp database, an HTTP client, and
//! helpers for exact expectations.

use perfwatch::Daemon;
use perfwatch::config::Config;
use serde_json::Value;

pub struct TestDaemon {
    pub daemon: Option<Daemon>,
    pub extra: String,
    pub base: String,
    pub dir: Option<tempfile::TempDir>,
    pub client: reqwest::Client,
}

/// A push repeated in the background until this is dropped (see [`TestDaemon::keep_pushing`]).
pub struct KeepPushing(tokio::task::JoinHandle<()>);

impl Drop for KeepPushing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TestDaemon {
    /// A daemon with `extra` YAML merged under the test's own settings.
    pub async fn start(extra: &str) -> TestDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDaemon::start_in(dir, extra).await
    }

    pub async fn start_in(dir: tempfile::TempDir, extra: &str) -> TestDaemon {
        let db = dir.path().join("perfwatch.db");
        // No emergency ballast: a hundred test daemons need not reserve 64 MiB each. Nor
        // recording of perfwatch's own metrics: the test daemons share one process-wide
        // recorder, so each would record all of theirs (tests/it/own_metrics.rs runs a process).
        let config_yaml = format!(
            "http:\n  listen: 127.0.0.1:0\nstatsd:\n  listen: 127.0.0.1:0\nstorage:\n  path: {}\n  ballast_bytes: 0\n  record_own_metrics: false\n{extra}",
            db.display()
        );
        let config = Config::parse(&config_yaml, "test.yaml").expect("test config is valid");
        let daemon = Daemon::start(config, Some(recorder())).await.expect("daemon starts");
        let base = format!("http://{}", daemon.http_addr);
        TestDaemon {
            daemon: Some(daemon),
            extra: extra.to_owned(),
            base,
            dir: Some(dir),
            client: perfwatch::http_client::client(),
        }
    }

    /// A daemon with 1 s rollups, late samples allowed (for history), and `rules` as its only
    /// rule file, kept in the daemon's own directory (`rules.yaml`) and removed with it.
    pub async fn with_rules(rules: &str) -> TestDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, rules).expect("rules written");
        let extra = format!(
            "  interval: 1s\n  lateness_intervals: 10000\n  tiers:\n    - {{resolution: 1s, retention: 1d}}\n    - {{resolution: 1m, retention: 1d}}\nrules:\n  paths: [{}]\n",
            path.display()
        );
        TestDaemon::start_in(dir, &extra).await
    }

    /// Shuts down gracefully and starts again on the same database and settings.
    pub async fn restart_keeping_config(self) -> TestDaemon {
        let extra = self.extra.clone();
        self.restart(&extra).await
    }

    /// Shuts down gracefully and starts again on the same database.
    pub async fn restart(mut self, extra: &str) -> TestDaemon {
        self.daemon.take().expect("running").shutdown().await;
        TestDaemon::start_in(self.dir.take().expect("dir"), extra).await
    }

    /// Pushes `body` every 250 ms until the answer is dropped: a rule over a window of a few
    /// seconds keeps seeing data (and its alert keeps firing) however slowly the test's own
    /// steps run on a loaded machine.
    pub fn keep_pushing(&self, body: Value) -> KeepPushing {
        let (client, url) = (self.client.clone(), format!("{}/api/v1/push", self.base));
        KeepPushing(tokio::spawn(async move {
            loop {
                let _ = client.post(&url).json(&body).send().await;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }))
    }

    pub async fn push_json(&self, body: &Value) -> (u16, Value) {
        let response = self.client.post(format!("{}/api/v1/push", self.base)).json(body).send().await.expect("push");
        let status = response.status().as_u16();
        (status, response.json().await.expect("push answers JSON"))
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self.client.get(format!("{}{path_and_query}", self.base)).send().await.expect("get");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Runs a query and returns its `series` array; panics on a non-200 answer.
    pub async fn query(&self, params: &[(&str, &str)]) -> Vec<Value> {
        let response =
            self.client.get(format!("{}/api/v1/query", self.base)).query(params).send().await.expect("query");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("query answers JSON");
        assert_eq!(status, 200, "query {params:?} failed: {body}");
        body["series"].as_array().cloned().unwrap_or_default()
    }

    /// The single value of a query expected to return one series with one point.
    pub async fn query_one(&self, params: &[(&str, &str)]) -> f64 {
        let series = self.query(params).await;
        assert_eq!(series.len(), 1, "expected one series for {params:?}, got {series:?}");
        let points = series[0]["points"].as_array().expect("points");
        assert_eq!(points.len(), 1, "expected one point for {params:?}, got {points:?}");
        points[0][1].as_f64().expect("a number")
    }

    pub async fn flush(&self) {
        let response = self.client.post(format!("{}/api/v1/admin/flush", self.base)).send().await.expect("flush");
        assert_eq!(response.status().as_u16(), 200);
    }
}

/// A daemon whose push (and, if given, API) token are `push` and `api`, in `dir`; returns it
/// with its base URL.
pub async fn daemon_with_tokens(dir: &std::path::Path, push: &str, api: Option<&str>) -> (Daemon, String) {
    std::fs::write(dir.join("push.token"), format!("{push}\n")).unwrap();
    let mut http = format!("  push_token_file: {}\n", dir.join("push.token").display());
    if let Some(api) = api {
        std::fs::write(dir.join("api.token"), api).unwrap();
        http.push_str(&format!("  api_token_file: {}\n", dir.join("api.token").display()));
    }
    let db = dir.join("perfwatch.db");
    let yaml =
        format!("http:\n  listen: 127.0.0.1:0\n{http}statsd:\n  listen: null\nstorage:\n  path: {}\n", db.display());
    let config = Config::parse(&yaml, "tokens.yaml").expect("test config is valid");
    let daemon = Daemon::start(config, None).await.expect("daemon starts");
    let base = format!("http://{}", daemon.http_addr);
    (daemon, base)
}

/// The process-wide metrics recorder (there can be only one), shared by every test daemon:
/// counters add up across tests, so tests assert on increases they caused.
pub fn recorder() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().expect("one recorder"))
        .clone()
}

/// The sum of every sample of `metric` whose labels contain all of `labels` in /metrics text.
pub fn metric_value(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.cancel_token().cancel();
        }
    }
}

/// The exact nearest-rank quantile (the ⌈q·n⌉-th smallest) — the definition perfwatch follows.
pub fn exact_quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64 - 1e-9).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[rank]
}

pub fn assert_within(got: f64, want: f64, rel: f64, what: &str) {
    let err = ((got - want) / want).abs();
    assert!(err <= rel, "{what}: got {got}, want {want} (relative error {err:.5} > {rel})");
}

/// Deterministic lognormal-ish latencies in seconds.
pub fn latencies(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 / (1u64 << 53) as f64).max(1e-12)
    };
    (0..n)
        .map(|_| {
            let normal = (-2.0 * next().ln()).sqrt() * (2.0 * std::f64::consts::PI * next()).cos();
            scale * (normal * 0.6).exp()
        })
        .collect()
}

/// Waits until `check` returns `Some`, polling, or panics with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A `python3` that can import `module`, or `None` (with a message saying what to install)
/// when there is none — unless PERFWATCH_REQUIRE_INTEROP=1, where that fails the test.
pub fn python_with(module: &str, pip_name: &str) -> Option<String> {
    let python = std::env::var("PERFWATCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if ok {
        return Some(python);
    }
    missing(&format!(
        "interop test needs the Python module {module}: pip install {pip_name} (or run .ci/run, which installs it)"
    ));
    None
}

/// Says an interop test cannot run and why: a skip, or a failure under
/// PERFWATCH_REQUIRE_INTEROP=1 (CI), where nothing may be skipped.
pub fn missing(message: &str) {
    if std::env::var("PERFWATCH_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("{message}; PERFWATCH_REQUIRE_INTEROP=1 forbids skipping");
    }
    eprintln!("SKIPPED: {message}");
}

/// Whether `program --version` (or `args`) runs; otherwise reports it [`missing`].
pub fn program(program: &str, args: &[&str], install: &str) -> bool {
    let runs = std::process::Command::new(program).args(args).output().is_ok_and(|o| o.status.success());
    if !runs {
        missing(&format!("interop test needs {program}: {install} (or run .ci/run)"));
    }
    runs
}

/// Runs a Python script with arguments off the async runtime (the daemon under test shares
/// it) and asserts it succeeded.
pub async fn run_python(python: &str, script: &str, args: &[&str]) {
    let mut command = tokio::process::Command::new(python);
    command.arg("-c").arg(script).args(args);
    let out = command.output().await.expect("python runs");
    assert!(
        out.status.success(),
        "python script failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The perfwatch binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_perfwatch");

/// A perfwatch daemon running as its own process.
pub struct DaemonProcess {
    pub child: std::process::Child,
    pub base: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl DaemonProcess {
    /// Starts `perfwatch run --config <config>` and waits (with a deadline) for its
    /// "perfwatch started" line to learn the HTTP address it bound.
    pub fn spawn(config: &std::path::Path) -> DaemonProcess {
        DaemonProcess::spawn_with_env(config, &[])
    }

    /// The same with extra environment variables.
    pub fn spawn_with_env(config: &std::path::Path, env: &[(&str, &str)]) -> DaemonProcess {
        let mut command = std::process::Command::new(BIN);
        command.args(["run", "--config"]).arg(config).envs(env.iter().copied());
        DaemonProcess::spawn_command(command)
    }

    /// The same under an open-file limit of `n` (soft and hard), set by util-linux's prlimit.
    pub fn spawn_with_open_files(config: &std::path::Path, n: u64) -> DaemonProcess {
        let mut command = std::process::Command::new("prlimit");
        command.arg(format!("--nofile={n}:{n}")).args([BIN, "run", "--config"]).arg(config);
        DaemonProcess::spawn_command(command)
    }

    fn spawn_command(mut command: std::process::Command) -> DaemonProcess {
        use std::io::BufRead;
        let mut child = command
            .env("PERFWATCH_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("perfwatch starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("http=").nth(1).and_then(|rest| rest.split_whitespace().next()) {
                    let _ = tx.send(addr.to_owned());
                }
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        let addr = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("perfwatch printed its address");
        DaemonProcess { child, base: format!("http://{addr}"), log }
    }

    /// What the daemon has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small tmpfs mounted for one test (disk-full and read-only faults), unmounted on drop.
/// Mounting needs root; without it the test is skipped, or fails under
/// PERFWATCH_REQUIRE_INTEROP=1.
pub struct Tmpfs {
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            missing(&format!("this test mounts a tmpfs (needs root and mount): {out:?}"));
            return None;
        }
        Some(Tmpfs { path, _dir: dir })
    }

    pub fn remount_read_only(&self) {
        let out = std::process::Command::new("mount").args(["-o", "remount,ro"]).arg(&self.path).output().unwrap();
        assert!(out.status.success(), "remount read-only: {out:?}");
    }
}

/// A small ext4 file system on a loop device, mounted `errors=remount-ro` for one test, so
/// the test can turn it read-only under a running daemon the way a failing disk does (ext4's
/// `trigger_fs_error`): a tmpfs cannot be remounted read-only while files on it are open for
/// writing. Needs root, a loop device and mkfs.ext4; unmounted on drop.
pub struct Ext4Loop {
    pub path: std::path::PathBuf,
    device: String,
    _dir: tempfile::TempDir,
}

impl Ext4Loop {
    pub fn mount(size: &str) -> Option<Ext4Loop> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (image, path) = (dir.path().join("fs.img"), dir.path().join("mnt"));
        std::fs::create_dir(&path).expect("mount point");
        let run = |program: &str, args: &[&std::ffi::OsStr]| {
            let out = std::process::Command::new(program).args(args).output();
            out.as_ref().is_ok_and(|o| o.status.success()).then_some(()).ok_or(format!("{program}: {out:?}"))
        };
        let mounted = run("truncate", &["-s".as_ref(), size.as_ref(), image.as_os_str()])
            .and_then(|()| run("mkfs.ext4", &["-q".as_ref(), image.as_os_str()]))
            .and_then(|()| {
                run("mount", &["-o".as_ref(), "loop,errors=remount-ro".as_ref(), image.as_os_str(), path.as_os_str()])
            });
        if let Err(why) = mounted {
            missing(&format!("this test mounts an ext4 loop device (needs root, mount and mkfs.ext4): {why}"));
            return None;
        }
        let out = std::process::Command::new("findmnt").args(["-n", "-o", "SOURCE"]).arg(&path).output().unwrap();
        let device = String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("/dev/").to_owned();
        Some(Ext4Loop { path, device, _dir: dir })
    }

    /// Reports an error to ext4, which turns the file system read-only at once, open files and all.
    pub fn fail_read_only(&self) {
        std::fs::write(format!("/sys/fs/ext4/{}/trigger_fs_error", self.device), "perfwatch test")
            .expect("ext4 takes a test error");
    }
}

impl Drop for Ext4Loop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).output();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).output();
    }
}

/// A free loopback port (bound and released; the program started next takes it at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A Prometheus server started by a test, killed when dropped.
pub struct Prometheus(pub std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
