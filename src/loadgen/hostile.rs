//! `loadgen --idle-connections N --slow-connections M`: while the load runs, connections that
//! only hold the daemon's slots — idle ones that send nothing, and slow ones that send a
//! request head one byte a second (slowloris) — to measure that a normal client is not
//! slowed by them. A connection the daemon closes is opened again, so the pressure stays.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What the slot holders saw.
#[derive(Default)]
pub struct HostileCounts {
    /// Connections opened, reopenings included.
    pub opened: AtomicU64,
    /// Connections the daemon closed (or refused) while they were held.
    pub closed_by_daemon: AtomicU64,
}

const SLOW_HEAD: &[u8] = b"POST /api/v1/push HTTP/1.1\r\nHost: loadgen\r\nContent-Type: application/json\r\nX-Slow: ";

/// Holds `idle` idle and `slow` slow connections to `addr` until `deadline`.
pub fn spawn(
    addr: SocketAddr,
    idle: usize,
    slow: usize,
    deadline: Instant,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Arc<HostileCounts> {
    let counts = Arc::new(HostileCounts::default());
    for n in 0..idle + slow {
        tasks.spawn(hold(addr, n >= idle, deadline, counts.clone()));
    }
    counts
}

async fn hold(addr: SocketAddr, slow: bool, deadline: Instant, counts: Arc<HostileCounts>) {
    while Instant::now() < deadline {
        let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            // The run ended while connecting: nobody refused anything.
            Err(_) => return,
            Ok(Err(_)) => {
                counts.closed_by_daemon.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        counts.opened.fetch_add(1, Ordering::Relaxed);
        let closed = if slow { trickle(&mut stream, deadline).await } else { wait_closed(&mut stream, deadline).await };
        if closed {
            counts.closed_by_daemon.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends the head a byte a second (then endless header bytes); `true` when the daemon closed.
async fn trickle(stream: &mut TcpStream, deadline: Instant) -> bool {
    for byte in SLOW_HEAD.iter().chain(std::iter::repeat(&b'a')) {
        if stream.write_all(&[*byte]).await.is_err() {
            return true;
        }
        if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_secs(1))).await.is_err() {
            return false;
        }
    }
    false
}

/// Waits without sending; `true` when the daemon closed the connection.
async fn wait_closed(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}
