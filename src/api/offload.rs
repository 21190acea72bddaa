//! CPU work of a request (inflating, parsing and aggregating a pushed body) runs on blocking
//! threads, at most one per core at a time, so the async workers stay free to answer
//! `/healthz`, `/readyz`, reads and acknowledgements under full ingest load.

use tokio::sync::Semaphore;
use warp::http::StatusCode;

use super::ApiError;

pub struct CpuPool {
    permits: Semaphore,
}

impl CpuPool {
    /// At most `n_threads` pieces of work at once (the number of cores).
    pub fn new(n_threads: usize) -> CpuPool {
        CpuPool { permits: Semaphore::new(n_threads.max(1)) }
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
