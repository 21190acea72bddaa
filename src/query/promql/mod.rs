//! PromQL over the rollups, for Grafana's Prometheus data source: expressions parsed by the
//! `promql-parser` crate, series and points loaded from the tiers and memory (`source.rs`,
//! `tier.rs`), then evaluated step by step in memory (`eval.rs`, with `functions.rs`,
//! `range.rs`, `aggregate.rs` and `binary.rs`). Timings are native histograms whose buckets
//! are the DDSketch's (`histogram.rs`), so quantiles over any window and any set of series
//! come from merged sketches.
//!
//! Where rollups make answers differ from Prometheus's on the same samples, it is on purpose
//! and documented in docs/promql.md: `rate` and `increase` of counters and timings are the
//! exact sum of the interval deltas in the window (no extrapolation), and a point is an
//! interval, taken at its last observation.

mod aggregate;
mod binary;
pub mod catalog;
mod eval;
mod functions;
pub mod histogram;
mod pushdown;
mod range;
mod sliding;
mod source;
mod tier;
pub mod value;

use std::time::{Duration, Instant};

use promql_parser::parser::{self, Expr};
use thiserror::Error;

use self::eval::Evaluator;
pub use self::eval::duration_ms;
pub use self::value::QueryValue;
use crate::aggregate::Aggregator;
use crate::query::{QueryError, read_with_memory};
use crate::store::{Reader, StoreError};

/// Prometheus's limit on points per series in a range query.
pub const MAX_POINTS: i64 = 11_000;

#[derive(Debug, Error)]
pub enum PromError {
    /// The expression does not parse, or a parameter is malformed: 400 `bad_data`.
    #[error("{0}")]
    BadData(String),
    /// The expression cannot be evaluated (a matching error, say): 422 `execution`.
    #[error("{0}")]
    Execution(String),
    /// A function or feature perfwatch does not evaluate: 422 `execution`, naming it.
    #[error("{0} is not supported by perfwatch's PromQL; see docs/promql.md for what is")]
    Unsupported(String),
    /// A per-query limit was reached: 422 `execution`, naming the limit.
    #[error("{0}")]
    Limit(String),
    /// 503 `timeout`.
    #[error(
        "query timed out in expression evaluation after {0:?} (query.timeout); narrow the query or raise the limit"
    )]
    Timeout(Duration),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl From<StoreError> for PromError {
    fn from(err: StoreError) -> PromError {
        PromError::Query(QueryError::Store(err))
    }
}

/// Per-query limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Series one selector may match.
    pub max_series: usize,
    /// Points a query may hold: loaded plus returned.
    pub max_samples: usize,
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_series: 100_000, max_samples: 50_000_000, timeout: Duration::from_secs(30) }
    }
}

/// When a query must stop.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        Deadline { at: Instant::now() + timeout, timeout }
    }

    pub fn check(&self) -> Result<(), PromError> {
        if Instant::now() >= self.at { Err(PromError::Timeout(self.timeout)) } else { Ok(()) }
    }
}

/// A query: evaluated at `start_ms` (instant) or at `start_ms + k·step_ms` up to `end_ms`.
#[derive(Debug, Clone)]
pub struct Query {
    pub expr: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// `None`: an instant query.
    pub step_ms: Option<i64>,
    pub lookback_ms: i64,
}

/// Prometheus's default lookback for instant selectors.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Parses `text`, with errors in Prometheus's wording.
pub fn parse(text: &str) -> Result<Expr, PromError> {
    // The parser is outside code: a panic on some input must not take the request down with
    // it unanswered.
    match std::panic::catch_unwind(|| parser::parse(text)) {
        Ok(parsed) => parsed.map_err(|e| PromError::BadData(format!("invalid parameter \"query\": {e}"))),
        Err(_) => Err(PromError::BadData("invalid parameter \"query\": the expression could not be parsed".into())),
    }
}

/// Evaluates `query` over the store and memory.
pub async fn run(
    reader: &Reader,
    aggregator: &Aggregator,
    query: Query,
    limits: Limits,
    now_ms: i64,
) -> Result<QueryValue, PromError> {
    let (expr, plan) = prepare(&query)?;
    let deadline = Deadline::after(limits.timeout);
    // All of memory before the window too: absolute totals count it into their history.
    let (from_s, to_s) = (i64::MIN, plan.to_ms.div_euclid(1000) + 1);
    let names = plan.names();
    let take = || match &names {
        Some(names) => aggregator.snapshot_of(names, from_s, to_s),
        None => aggregator.snapshot_where(|_| true, from_s, to_s),
    };
    let work = move |tx: &crate::store::reader::ReadTx<'_>, snapshot| {
        Evaluator::run(tx, &snapshot, &expr, &query, &plan, limits, deadline, now_ms).map_err(QueryError::from)
    };
    match read_with_memory(reader, take, work).await {
        Ok(value) => Ok(value),
        Err(QueryError::PromQl(err)) => Err(*err),
        Err(other) => Err(PromError::Query(other)),
    }
}

/// What a query is checked and planned into before anything is read.
fn prepare(query: &Query) -> Result<(Box<Expr>, eval::Plan), PromError> {
    // Boxed before planning: nodes are known by their address, which must not move.
    let expr = Box::new(parse(&query.expr)?);
    if let Some(step) = query.step_ms {
        check_range(query.start_ms, query.end_ms, step)?;
        eval::check_range_type(&expr)?;
    }
    let plan = eval::Plan::of(&expr, query);
    Ok((expr, plan))
}

/// Parses, checks and plans `query` as [`run`] does, reading nothing (the fuzz target's way in).
pub fn check(query: &Query) -> Result<(), PromError> {
    prepare(query).map(|_| ())
}

/// A range query's parameters as Prometheus checks them.
fn check_range(start_ms: i64, end_ms: i64, step_ms: i64) -> Result<(), PromError> {
    if end_ms < start_ms {
        return Err(PromError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    if step_ms <= 0 {
        return Err(PromError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if (end_ms - start_ms) / step_ms > MAX_POINTS {
        return Err(PromError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    Ok(())
}
