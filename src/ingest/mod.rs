//! Ingest: the wire formats (pure parsers in `parse`), the naming rule, limits, and the common
//! path into the aggregator.

pub(crate) mod cumulative;
pub(crate) mod exponential;
pub mod influx;
pub mod limits;
pub(crate) mod names;
pub mod otlp;
pub mod parse;
pub mod pushgateway;
pub mod sink;
pub mod statsd;
