//! `loadgen --probe-health`: while the load runs, a client of its own asks `GET /healthz` every
//! 20 ms on a new connection each time (as a load balancer or a health checker would) and
//! reports the latency distribution. It runs on a thread of its own with its own runtime, so a
//! busy load generator does not delay the probe's clock more than the shared cores do.

use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(20);
const TIMEOUT: Duration = Duration::from_secs(5);

/// What the probe saw: latencies of answered probes and how many failed or timed out.
pub struct ProbeReport {
    latencies: Vec<Duration>,
    failures: usize,
}

impl ProbeReport {
    /// One summary fragment: `/healthz p50 0.4 ms, p99 3.1 ms, max 9.0 ms over 500 probes`.
    pub fn summary(mut self) -> String {
        if self.latencies.is_empty() {
            return format!("/healthz never answered ({} failures)", self.failures);
        }
        self.latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| self.latencies[((self.latencies.len() - 1) as f64 * q).round() as usize];
        format!(
            "/healthz p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} probes, {} failed",
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(1.0)),
            self.latencies.len(),
            self.failures
        )
    }
}

/// Probes `url` (the daemon's base URL) until `deadline`, on a new thread; join it for the report.
pub fn spawn(url: &str, deadline: Instant) -> std::thread::JoinHandle<ProbeReport> {
    let target = format!("{}/healthz", url.trim_end_matches('/'));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let mut report = ProbeReport { latencies: Vec::new(), failures: 0 };
        let Ok(runtime) = runtime else { return report };
        runtime.block_on(probe(&target, deadline, &mut report));
        report
    })
}

async fn probe(target: &str, deadline: Instant, report: &mut ProbeReport) {
    // No idle connections kept: every probe connects anew, as an outside checker does.
    let client = crate::http_client::builder().pool_max_idle_per_host(0).timeout(TIMEOUT).build();
    let Ok(client) = client else { return };
    let mut next = Instant::now();
    while Instant::now() < deadline {
        let started = Instant::now();
        let answered = match client.get(target).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        match answered {
            true => report.latencies.push(started.elapsed()),
            false => report.failures += 1,
        }
        next += EVERY;
        tokio::time::sleep_until(next.max(Instant::now()).into()).await;
    }
}
