//! The StatsD/DogStatsD UDP listener: one socket, one receive task per core, each reusing its
//! buffers from datagram to datagram. Bad lines are counted by reason and logged at debug
//! level at most once a second per task; they never affect the other lines of a datagram.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bumpalo::Bump;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::limits::Limits;
use super::parse::statsd::{GaugeValue, StatsdError, StatsdLine, StatsdType, lines, parse_line};
use super::sink::{IngestBatch, Reject, Scratch, recycle};
use crate::aggregate::{Aggregator, Observation};
use crate::flusher::FlushHealth;
use crate::model::MetricKind;
use crate::{clock, telemetry};

/// Largest datagram read; bigger ones are truncated by the kernel.
const MAX_DATAGRAM: usize = 65_535;

/// Binds the socket with the requested receive buffer.
pub fn bind(addr: SocketAddr, receive_buffer: usize) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if let Err(err) = socket.set_recv_buffer_size(receive_buffer) {
        tracing::warn!(error = %err, receive_buffer, "could not set the StatsD receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Receives until `cancel`, ingesting every datagram.
pub async fn serve(
    socket: Arc<UdpSocket>,
    aggregator: Arc<Aggregator>,
    limits: Arc<Limits>,
    health: Arc<FlushHealth>,
    cancel: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut bump = Bump::new();
    let mut scratch = Scratch::default();
    let mut tags: Vec<(&'static str, &'static str)> = Vec::new();
    let mut last_log: Option<Instant> = None;
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => break,
            received = socket.recv_from(&mut buf) => received,
        };
        let Ok((len, _peer)) = received else { continue };
        telemetry::statsd_datagram();
        // UDP has no answer to refuse with: while the database cannot take writes and the
        // backlog is over its bound, datagrams are counted as refused and dropped.
        if health.admit().is_err() {
            telemetry::sample_rejected("statsd", "store_backlog");
            continue;
        }
        bump.reset();
        let mut batch = IngestBatch::new(&aggregator, &limits, &bump, "statsd", clock::now_ms(), scratch);
        let mut line_tags = recycle(tags);
        ingest_datagram(&mut batch, &buf[..len], &mut line_tags, &mut last_log);
        tags = recycle(line_tags);
        scratch = batch.finish();
    }
}

/// Ingests every line of one datagram into `batch`. Each line stands on its own: bad bytes or a
/// bad value in one line cost only that line. A refused line is logged at debug level when
/// `last_log` is a second old or more.
pub fn ingest_datagram<'a>(
    batch: &mut IngestBatch<'a>,
    datagram: &'a [u8],
    tags: &mut Vec<(&'a str, &'a str)>,
    last_log: &mut Option<Instant>,
) {
    for (line_no, line) in lines(datagram) {
        let Ok(line) = std::str::from_utf8(line) else {
            telemetry::sample_rejected("statsd", "not_utf8");
            continue;
        };
        let result = ingest_line(batch, line, tags);
        batch.count(&result);
        if let Err(reject) = result
            && last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            *last_log = Some(Instant::now());
            tracing::debug!(line_no, line, reason = %reject, "bad StatsD line");
        }
    }
}

/// Ingests one line; the whole line is refused if any of its values is bad.
pub fn ingest_line<'a>(
    batch: &mut IngestBatch<'a>,
    line: &'a str,
    tags: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), Reject> {
    let parsed = parse_line(line).map_err(|e| Reject::Parse(e.to_string()))?;
    tags.clear();
    tags.extend(parsed.tags());
    let kind = match parsed.kind {
        StatsdType::Counter | StatsdType::Set => MetricKind::Counter,
        StatsdType::Gauge => MetricKind::Gauge,
        StatsdType::TimingMs | StatsdType::Distribution => MetricKind::Timing,
    };
    // Every value is read and checked before any is recorded (`a:1:-5|ms` stores neither).
    each_observation(&parsed, |obs| batch.check(kind, &obs))?;
    let series = batch.resolve(parsed.name, &[], tags, kind)?;
    each_observation(&parsed, |obs| batch.record(series, parsed.timestamp_ms, obs))
}

/// Calls `f` with each of the line's observations in order, stopping at the first error (a
/// value that does not parse, or whatever `f` refuses).
fn each_observation(
    parsed: &StatsdLine<'_>,
    mut f: impl FnMut(Observation<'_>) -> Result<(), Reject>,
) -> Result<(), Reject> {
    let unreadable = |e: StatsdError| Reject::Parse(e.to_string());
    match parsed.kind {
        // StatsD counters may go down (`decr`), unlike JSON counters.
        StatsdType::Counter => {
            parsed.values().try_for_each(|value| f(Observation::CounterDelta(value.map_err(unreadable)? / parsed.rate)))
        }
        StatsdType::Gauge => parsed.gauge_values().try_for_each(|value| {
            f(match value.map_err(unreadable)? {
                GaugeValue::Set(v) => Observation::Gauge(v),
                GaugeValue::Delta(d) => Observation::GaugeDelta(d),
            })
        }),
        StatsdType::TimingMs | StatsdType::Distribution => {
            let scale = if parsed.kind == StatsdType::TimingMs { 0.001 } else { 1.0 };
            parsed.values().try_for_each(|value| {
                let values = [value.map_err(unreadable)? * scale];
                f(Observation::Timings { values: &values, weight: 1.0 / parsed.rate })
            })
        }
        StatsdType::Set => parsed
            .members()
            .try_for_each(|member| f(Observation::SetMember(xxhash_rust::xxh3::xxh3_64(member.as_bytes())))),
    }
}
