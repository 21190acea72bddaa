//! Per-request and per-series limits, each named in the message of the rejection it causes.

/// Limits on what one push may contain (the series limit lives in the aggregator).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_labels: usize,
    pub max_name_len: usize,
    pub max_label_value_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_body_bytes: 32 << 20, max_labels: 30, max_name_len: 200, max_label_value_len: 1024 }
    }
}
