//! `export:` what `/metrics` re-exports of the pushed metrics.

use serde::Deserialize;

use super::Seconds;
use crate::export::ExportSettings;

/// `export:` what /metrics re-exports of the pushed metrics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawExport {
    pushed_metrics: bool,
    summary_window: Seconds,
    quantiles: Vec<f64>,
}

impl Default for RawExport {
    fn default() -> RawExport {
        let defaults = ExportSettings::default();
        RawExport {
            pushed_metrics: defaults.enabled,
            summary_window: Seconds(defaults.window_s),
            quantiles: defaults.quantiles,
        }
    }
}

pub(super) fn validate(raw: RawExport, problems: &mut Vec<String>) -> ExportSettings {
    if raw.quantiles.iter().any(|q| !(*q > 0.0 && *q <= 1.0)) {
        problems.push("export.quantiles: each must be above 0 and at most 1, e.g. [0.5, 0.9, 0.99]".into());
    }
    ExportSettings { enabled: raw.pushed_metrics, window_s: raw.summary_window.0, quantiles: raw.quantiles }
}
