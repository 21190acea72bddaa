//! `perfwatch loadgen`: pushes a realistic web-platform workload at a chosen rate, series count
//! and format, prints a progress line every second and a summary at the end (with the
//! daemon's CPU and peak memory when `--watch-pid` names it, and StatsD loss counted from the
//! daemon's own counters and the kernel's drop counter).

pub mod encode;
mod hostile;
mod probe;
mod procfs;
pub mod rules;
pub mod workload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant as TokioInstant;

use self::encode::{PromPusher, influx_body, json_body, otlp_body, statsd_datagrams};
use self::workload::catalog;
use crate::cli::{CliError, ServerArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Prometheus,
    Statsd,
    /// Influx line protocol to /api/v2/write.
    Influx,
    /// OTLP protobuf to /v1/metrics (delta temporality).
    Otlp,
}

#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Observations per second in all; 0 sends as fast as the daemon takes them.
    #[arg(long, default_value_t = 20_000.0)]
    pub rate: f64,
    /// Distinct series to spread the workload over.
    #[arg(long, default_value_t = 1_000)]
    pub series: usize,
    /// Values in each timing entry (JSON) or new observations per histogram push (Prometheus).
    #[arg(long, default_value_t = 10)]
    pub values_per_entry: usize,
    /// Observations per request (JSON) or lines per datagram batch (StatsD).
    #[arg(long, default_value_t = 1_000)]
    pub observations_per_request: usize,
    /// Concurrent connections (UDP sockets for StatsD).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    #[arg(long, default_value = "30s", value_parser = crate::query::time::parse_std_duration)]
    pub duration: Duration,
    /// Where StatsD datagrams go.
    #[arg(long, default_value = "127.0.0.1:8125")]
    pub statsd: SocketAddr,
    /// The daemon's process id, to report its CPU and peak memory.
    #[arg(long)]
    pub watch_pid: Option<u32>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print a benchmark rule file of this many rules over the --series workload, and exit.
    #[arg(long)]
    pub print_rules: Option<usize>,
    /// Meanwhile ask the daemon's /healthz every 20 ms on a new connection and report its
    /// latency (p50, p99, max) in the summary.
    #[arg(long)]
    pub probe_health: bool,
    /// Meanwhile hold this many connections open that send nothing.
    #[arg(long, default_value_t = 0)]
    pub idle_connections: usize,
    /// Meanwhile hold this many connections that send a request head a byte a second.
    #[arg(long, default_value_t = 0)]
    pub slow_connections: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// How long idle and slow connections are held before the load starts.
const HOSTILE_HEAD_START: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Counters {
    observations: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
}

/// What is read before the load starts, to report what changed.
struct Before {
    accepted: Option<u64>,
    udp_drops: Option<u64>,
    cpu_ticks: Option<u64>,
}

pub async fn run(args: LoadgenArgs) -> Result<String, CliError> {
    if let Some(n_rules) = args.print_rules {
        return Ok(rules::rule_set(n_rules, args.series));
    }
    if args.connections == 0 || args.series == 0 || args.values_per_entry == 0 || args.observations_per_request == 0 {
        return Err(CliError::Usage(
            "--connections, --series, --values-per-entry and --observations-per-request must be positive".into(),
        ));
    }
    let specs = Arc::new(catalog(args.series));
    let counters = Arc::new(Counters::default());
    let before = Before {
        accepted: daemon_accepted(&args).await,
        udp_drops: procfs::udp_drops(args.statsd.port()),
        cpu_ticks: args.watch_pid.and_then(procfs::cpu_ticks),
    };
    eprintln!("{}", banner(&args));
    let mut tasks = tokio::task::JoinSet::new();
    let hostile = start_hostile(&args, &mut tasks).await?;
    let started = Instant::now();
    let deadline = TokioInstant::now() + args.duration;
    for conn in 0..args.connections {
        spawn_sender(&args, &specs, &counters, conn, deadline, &mut tasks)?;
    }
    let progress = tokio::spawn(progress(counters.clone(), args.watch_pid, deadline));
    let probe = args.probe_health.then(|| probe::spawn(&args.server.url, deadline.into_std()));
    while tasks.join_next().await.is_some() {}
    progress.abort();
    let probe = match probe {
        Some(thread) => tokio::task::spawn_blocking(move || thread.join().ok()).await.ok().flatten(),
        None => None,
    };
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!();
    let mut summary = summary(&args, &counters, elapsed, &before);
    if let Some(report) = probe {
        summary += &format!("; {}", report.summary());
    }
    if let Some(counts) = hostile {
        summary += &format!(
            "; held {} idle and {} slow connections ({} opened, {} closed by the daemon)",
            args.idle_connections,
            args.slow_connections,
            counts.opened.load(Ordering::Relaxed),
            counts.closed_by_daemon.load(Ordering::Relaxed)
        );
    }
    if args.format == Format::Statsd {
        summary += &statsd_loss(&args, counters.observations.load(Ordering::Relaxed), &before).await;
    }
    Ok(summary)
}

/// The line that says what is about to be sent.
fn banner(args: &LoadgenArgs) -> String {
    format!(
        "loadgen: {:?} to {} — {} series, {} conns, rate {}, {} values/entry, {} obs/request, for {:?}",
        args.format,
        if args.format == Format::Statsd { args.statsd.to_string() } else { args.server.url.clone() },
        args.series,
        args.connections,
        if args.rate > 0.0 { format!("{}/s", args.rate) } else { "unlimited".into() },
        args.values_per_entry,
        args.observations_per_request,
        args.duration
    )
}

/// Idle and slow connections, when asked for: they take their slots for two seconds before the
/// load starts, and hold them to its end.
async fn start_hostile(
    args: &LoadgenArgs,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<Option<Arc<hostile::HostileCounts>>, CliError> {
    if args.idle_connections + args.slow_connections == 0 {
        return Ok(None);
    }
    let addr = daemon_addr(&args.server.url).await?;
    let until = TokioInstant::now() + HOSTILE_HEAD_START + args.duration;
    let counts = hostile::spawn(addr, args.idle_connections, args.slow_connections, until, tasks);
    tokio::time::sleep(HOSTILE_HEAD_START).await;
    Ok(Some(counts))
}

/// Starts connection `conn`'s sender in `args.format`.
fn spawn_sender(
    args: &LoadgenArgs,
    specs: &Arc<Vec<workload::SeriesSpec>>,
    counters: &Arc<Counters>,
    conn: usize,
    deadline: TokioInstant,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), CliError> {
    let (specs, counters) = (specs.clone(), counters.clone());
    let rate = args.rate / args.connections as f64;
    match args.format {
        Format::Json | Format::Influx | Format::Otlp => {
            let (path, content_type) = match args.format {
                Format::Json => ("/api/v1/push", "application/json"),
                Format::Influx => ("/api/v2/write?precision=ms", "text/plain; charset=utf-8"),
                _ => ("/v1/metrics", "application/x-protobuf"),
            };
            let bodies = body_pool(args, &specs, conn);
            let request = args.server.request(&crate::http_client::client(), reqwest::Method::POST, path)?;
            let request = request.header("content-type", content_type);
            tasks.spawn(send_http(request, bodies, rate, deadline, counters));
        }
        Format::Prometheus => {
            let request = args.server.request(
                &crate::http_client::client(),
                reqwest::Method::PUT,
                &format!("/metrics/job/loadgen/instance/conn-{conn}"),
            )?;
            let mine: Vec<_> = specs.iter().skip(conn).step_by(args.connections).cloned().collect();
            let (values, seed) = (args.values_per_entry, args.seed + conn as u64);
            tasks.spawn(send_prometheus(request, mine, values, seed, rate, deadline, counters));
        }
        Format::Statsd => {
            let mut rng = SmallRng::seed_from_u64(args.seed + conn as u64);
            let n_lines = args.series.max(args.observations_per_request * 64);
            let datagrams = statsd_datagrams(&specs, conn * 7919, n_lines, 1432, &mut rng);
            let target = args.statsd;
            tasks.spawn_blocking(move || send_statsd(target, datagrams, rate, deadline.into_std(), &counters));
        }
    }
    Ok(())
}

/// What was sent, and what the watched daemon spent on it.
fn summary(args: &LoadgenArgs, counters: &Counters, elapsed: f64, before: &Before) -> String {
    let observations = counters.observations.load(Ordering::Relaxed);
    let mut summary = format!(
        "sent {observations} observations in {elapsed:.1} s = {:.0}/s; {} requests, {} errors",
        observations as f64 / elapsed,
        counters.requests.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
    );
    if let (Some(pid), Some(cpu_before)) = (args.watch_pid, before.cpu_ticks) {
        if let Some(after) = procfs::cpu_ticks(pid) {
            let cpu = (after - cpu_before) as f64 / procfs::TICKS_PER_SECOND / elapsed * 100.0;
            summary += &format!("; daemon CPU {cpu:.0}%");
        }
        if let Some(peak) = procfs::peak_rss_kib(pid) {
            summary += &format!(", peak RSS {:.1} MiB", peak as f64 / 1024.0);
        }
    }
    summary
}

/// StatsD lines lost: what the daemon says it took against what was sent, and the kernel's
/// drop counter.
async fn statsd_loss(args: &LoadgenArgs, sent: u64, before: &Before) -> String {
    // Give the daemon a moment to finish what is in its socket buffer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut loss = String::new();
    if let (Some(accepted), Some(after)) = (before.accepted, daemon_accepted(args).await) {
        let received = after - accepted;
        loss += &format!(
            "; daemon took {received} lines ({:.2}% lost)",
            100.0 * (sent.saturating_sub(received)) as f64 / sent.max(1) as f64
        );
    }
    if let (Some(drops), Some(after)) = (before.udp_drops, procfs::udp_drops(args.statsd.port())) {
        loss += &format!(", kernel dropped {} datagrams", after - drops);
    }
    loss
}

/// Pre-built bodies (in `args.format`) for one connection, covering its share of the series.
fn body_pool(args: &LoadgenArgs, specs: &[workload::SeriesSpec], conn: usize) -> Vec<(Bytes, u64)> {
    let mut rng = SmallRng::seed_from_u64(args.seed + conn as u64);
    let n_entries = (args.observations_per_request / args.values_per_entry).max(1);
    let per_conn = args.series.div_ceil(args.connections);
    let n_bodies = per_conn.div_ceil(n_entries).clamp(16, 4096);
    (0..n_bodies)
        .map(|idx| {
            let first = conn * per_conn + idx * n_entries;
            let values = args.values_per_entry;
            match args.format {
                Format::Influx => {
                    let (body, n_obs) = influx_body(specs, first, n_entries, values, &mut rng);
                    (Bytes::from(body), n_obs)
                }
                Format::Otlp => {
                    let (body, n_obs) = otlp_body(specs, first, n_entries, values, &mut rng);
                    (Bytes::from(body), n_obs)
                }
                _ => {
                    let (body, n_obs) = json_body(specs, first, n_entries, values, &mut rng);
                    (Bytes::from(body), n_obs)
                }
            }
        })
        .collect()
}

async fn send_http(
    request: reqwest::RequestBuilder,
    bodies: Vec<(Bytes, u64)>,
    rate: f64,
    deadline: TokioInstant,
    counters: Arc<Counters>,
) {
    let mut next = TokioInstant::now();
    for (body, n_obs) in bodies.iter().cycle() {
        if TokioInstant::now() >= deadline {
            break;
        }
        let Some(attempt) = request.try_clone() else { break };
        let response = attempt.body(body.clone()).send().await;
        record(&counters, response, *n_obs).await;
        pace(&mut next, *n_obs, rate).await;
    }
}

async fn send_prometheus(
    request: reqwest::RequestBuilder,
    specs: Vec<workload::SeriesSpec>,
    values_per_push: usize,
    seed: u64,
    rate: f64,
    deadline: TokioInstant,
    counters: Arc<Counters>,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut pusher = PromPusher::new(specs.len());
    let mut next = TokioInstant::now();
    while TokioInstant::now() < deadline {
        let (body, n_lines) = pusher.body(&specs, values_per_push, &mut rng);
        let Some(attempt) = request.try_clone() else { break };
        record(&counters, attempt.body(body).send().await, n_lines).await;
        pace(&mut next, n_lines, rate).await;
    }
}

fn send_statsd(target: SocketAddr, datagrams: Vec<(Vec<u8>, u64)>, rate: f64, deadline: Instant, counters: &Counters) {
    let Ok(socket) = std::net::UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }) else {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut next = Instant::now();
    for (datagram, n_lines) in datagrams.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        match socket.send_to(datagram, target) {
            Ok(_) => {
                counters.observations.fetch_add(*n_lines, Ordering::Relaxed);
                counters.requests.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if rate > 0.0 {
            next += Duration::from_secs_f64(*n_lines as f64 / rate);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
}

async fn record(counters: &Counters, response: Result<reqwest::Response, reqwest::Error>, n_obs: u64) {
    counters.requests.fetch_add(1, Ordering::Relaxed);
    match response {
        Ok(r) if r.status().is_success() => {
            counters.observations.fetch_add(n_obs, Ordering::Relaxed);
        }
        Ok(r) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            if counters.errors.load(Ordering::Relaxed) <= 3 {
                eprintln!("\nloadgen: {status}: {}", text.chars().take(300).collect::<String>());
            }
        }
        Err(err) => {
            if counters.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!("\nloadgen: {err}");
            }
        }
    }
}

/// Sleeps so that this connection sends `rate` observations per second on average.
async fn pace(next: &mut TokioInstant, n_obs: u64, rate: f64) {
    if rate > 0.0 {
        *next += Duration::from_secs_f64(n_obs as f64 / rate);
        tokio::time::sleep_until(*next).await;
    }
}

async fn progress(counters: Arc<Counters>, watch_pid: Option<u32>, deadline: TokioInstant) {
    let started = Instant::now();
    let mut last = (0u64, Instant::now(), watch_pid.and_then(procfs::cpu_ticks));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while TokioInstant::now() < deadline {
        tick.tick().await;
        let now_obs = counters.observations.load(Ordering::Relaxed);
        let dt = last.1.elapsed().as_secs_f64();
        let mut line = format!(
            "\r[{:>4.0}s] {:>11.0} obs/s  requests {:>8}  errors {:>4}",
            started.elapsed().as_secs_f64(),
            (now_obs - last.0) as f64 / dt,
            counters.requests.load(Ordering::Relaxed),
            counters.errors.load(Ordering::Relaxed)
        );
        let ticks = watch_pid.and_then(procfs::cpu_ticks);
        if let (Some(pid), Some(before), Some(after)) = (watch_pid, last.2, ticks) {
            let rss = procfs::rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
            line += &format!(
                "  daemon {:>4.0}% CPU {rss:>7.1} MiB",
                (after - before) as f64 / procfs::TICKS_PER_SECOND / dt * 100.0
            );
        }
        eprint!("{line}   ");
        last = (now_obs, Instant::now(), ticks);
    }
}

/// The daemon's socket address, from its base URL (`http://host:port`).
async fn daemon_addr(url: &str) -> Result<SocketAddr, CliError> {
    let authority = url.split("://").nth(1).unwrap_or(url).split('/').next().unwrap_or_default();
    let mut found = tokio::net::lookup_host(authority)
        .await
        .map_err(|e| CliError::Usage(format!("cannot resolve {authority:?} from --url: {e}")))?;
    found.next().ok_or_else(|| CliError::Usage(format!("{authority:?} from --url has no address")))
}

/// The daemon's count of accepted StatsD samples, from its /metrics.
async fn daemon_accepted(args: &LoadgenArgs) -> Option<u64> {
    if args.format != Format::Statsd {
        return None;
    }
    let request = args.server.request(&crate::http_client::client(), reqwest::Method::GET, "/metrics").ok()?;
    let text = request.send().await.ok()?.text().await.ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with(crate::telemetry::SAMPLES_ACCEPTED) && l.contains("protocol=\"statsd\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64,
    )
}
