//! Pure parsers, one per wire format. Each turns bytes into calls on an
//! [`IngestBatch`](crate::ingest::sink::IngestBatch) and reports bad input by position.

pub(crate) mod influx;
pub mod json;
pub mod otlp_messages;
pub mod otlp_view;
pub mod prom_proto;
pub mod prom_text;
mod protowire;
pub(crate) mod statsd;
mod strings;

use crate::ingest::sink::{IngestBatch, Reject};

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
    /// Counts one sample's outcome, here and in `batch` (for /metrics); a refusal is listed at
    /// `index` with the reason `describe` gives.
    pub fn tally(
        &mut self,
        batch: &mut IngestBatch<'_>,
        index: usize,
        result: Result<(), Reject>,
        describe: impl FnOnce(&Reject) -> String,
    ) {
        batch.count(&result);
        match result {
            Ok(()) => self.accepted += 1,
            Err(reject) => {
                self.rejected += 1;
                self.hit_series_limit |= reject.is_series_limit();
                if self.errors.len() < MAX_LISTED_ERRORS {
                    self.note_error(index, describe(&reject));
                }
            }
        }
    }

    pub fn note_error(&mut self, index: usize, reason: String) {
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(EntryError { index, reason });
        }
    }
}
