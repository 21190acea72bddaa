//! Pure parsers, one per wire format. Each turns bytes into calls on an
//! [`IngestBatch`](crate::ingest::sink::IngestBatch) and reports bad input by position.

pub mod influx;
pub mod json;
pub mod otlp;
pub mod prom_proto;
pub mod prom_text;
pub mod statsd;
mod strings;

/// One refused entry or line, as the push answer lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryError {
    /// Index into `metrics` (JSON) or 1-based line number (text formats).
    pub index: usize,
    pub reason: String,
}

/// What a push did: how many samples were taken and refused, and why (first 100 reasons).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PushOutcome {
    pub accepted: u64,
    pub rejected: u64,
    pub errors: Vec<EntryError>,
    /// Whether any refusal was the active series limit (answered with 429).
    pub hit_series_limit: bool,
}

/// Most rejections one answer lists.
pub const MAX_LISTED_ERRORS: usize = 100;

impl PushOutcome {
    pub fn note_error(&mut self, index: usize, reason: String) {
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(EntryError { index, reason });
        }
    }
}
