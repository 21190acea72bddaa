//! CPU work of a request (inflating, parsing and aggregating a pushed body). A small plain
//! body is handled right where it arrived: a few milliseconds at most, less than handing it
//! to another thread would cost (measured: every body on blocking threads cost a third of
//! JSON throughput). A large or compressed body runs on blocking threads, at most one per
//! core at a time, so a 32 MiB push cannot hold an async worker away from `/healthz`,
//! `/readyz`, reads and acknowledgements.

use tokio::sync::Semaphore;
use warp::http::StatusCode;

use super::ApiError;

/// Plain bodies up to this many bytes are handled inline.
pub const INLINE_MAX_BYTES: usize = 1024 * 1024;

pub struct CpuPool {
    permits: std::sync::Arc<Semaphore>,
}

impl CpuPool {
    /// At most `n_threads` pieces of work at once (the number of cores).
    pub fn new(n_threads: usize) -> CpuPool {
        CpuPool { permits: std::sync::Arc::new(Semaphore::new(n_threads.max(1))) }
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
        // The permit goes with the work: a client that disconnects drops this future, not the
        // work already running, which must keep its core's place until it ends.
        let permit = self.permits.clone().acquire_owned().await.ok();
        let work = move || {
            let _permit = permit;
            work()
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "perfwatch is shutting down; retry".into())),
        }
    }
}
