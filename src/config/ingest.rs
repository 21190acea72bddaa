//! The ingest sections: `limits:` on what a push may hold, `statsd:` the UDP listener, and
//! `otlp:` which resource attributes become labels.

use std::net::SocketAddr;

use serde::Deserialize;

use super::Seconds;
use crate::ingest::limits::Limits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLimits {
    max_body_bytes: usize,
    max_labels: usize,
    max_name_len: usize,
    max_label_value_len: usize,
    max_series: usize,
    series_idle_after: Seconds,
    cumulative_idle_after: Seconds,
}

impl Default for RawLimits {
    fn default() -> RawLimits {
        let limits = Limits::default();
        RawLimits {
            max_body_bytes: limits.max_body_bytes,
            max_labels: limits.max_labels,
            max_name_len: limits.max_name_len,
            max_label_value_len: limits.max_label_value_len,
            max_series: 250_000,
            series_idle_after: Seconds(3600),
            cumulative_idle_after: Seconds(86_400),
        }
    }
}

/// The `limits:` section, validated: the per-push limits and the aggregator's series bounds.
pub(super) struct LimitSettings {
    pub push: Limits,
    pub max_series: usize,
    pub series_idle_after_s: i64,
    pub cumulative_idle_after_s: i64,
}

pub(super) fn validate_limits(raw: RawLimits, problems: &mut Vec<String>) -> LimitSettings {
    if raw.max_series == 0 || raw.max_body_bytes == 0 {
        problems.push("limits.max_series and limits.max_body_bytes must be positive".into());
    }
    LimitSettings {
        push: Limits {
            max_body_bytes: raw.max_body_bytes,
            max_labels: raw.max_labels,
            max_name_len: raw.max_name_len,
            max_label_value_len: raw.max_label_value_len,
        },
        max_series: raw.max_series,
        series_idle_after_s: raw.series_idle_after.0,
        cumulative_idle_after_s: raw.cumulative_idle_after.0,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStatsd {
    /// `null` turns the StatsD listener off.
    pub listen: Option<SocketAddr>,
    /// Receive socket buffer requested from the kernel, bytes.
    pub receive_buffer_bytes: usize,
}

impl Default for RawStatsd {
    fn default() -> RawStatsd {
        RawStatsd { listen: Some(SocketAddr::from(([127, 0, 0, 1], 8125))), receive_buffer_bytes: 8 << 20 }
    }
}

/// `otlp:` how OTLP resource attributes become labels.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawOtlp {
    pub resource_labels: std::collections::BTreeMap<String, String>,
}

impl Default for RawOtlp {
    fn default() -> RawOtlp {
        RawOtlp { resource_labels: crate::ingest::otlp::ResourceLabels::default().0 }
    }
}
