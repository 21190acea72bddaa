//! CPU work of a request (inflating, parsing and aggregating a pushed body). A small body is
//! handled right where it arrived: it takes well under a millisecond, less than handing it
//! to another thread would cost (measured: every body on blocking threads cost a third of
//! JSON throughput). A large or compressed body runs on blocking threads, at most one per
//! core at a time, so a 32 MiB push cannot hold an async worker away from `/healthz`,
//! `/readyz`, reads and acknowledgements.

use tokio::sync::Semaphore;
use warp::http::StatusCode;

use super::ApiError;

/// Bodies up to this many bytes (as received; gzip counts eight times) are handled inline.
pub const INLINE_MAX_BYTES: usize = 1024 * 1024;

pub struct CpuPool {
    permits: Semaphore,
}

impl CpuPool {
    /// At most `n_threads` pieces of work at once (the number of cores).
    pub fn new(n_threads: usize) -> CpuPool {
        CpuPool { permits: Semaphore::new(n_threads.max(1)) }
    }

    /// Runs `work` for a body of `cost_bytes`: inline when small, else as [`CpuPool::run`].
    pub async fn run_sized<T: Send + 'static>(
        &self,
        cost_bytes: usize,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        if cost_bytes <= INLINE_MAX_BYTES {
            return work();
        }
        self.run(work).await
    }

    /// Runs `work` on a blocking thread once a core is free. A panic in `work` is resumed here,
    /// so the route's panic guard answers it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        // The semaphore is never closed, so acquiring cannot fail; run unguarded if it ever did.
        let _permit = self.permits.acquire().await.ok();
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "perfwatch is shutting down; retry".into())),
        }
    }
}
