//! `storage:` where the database lives, the flush interval, the tiers and the bounds that
//! keep a full disk from losing data.

use std::path::PathBuf;

use serde::Deserialize;

use super::Seconds;
use crate::store::tiers::Tier;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStorage {
    path: Option<PathBuf>,
    interval: Seconds,
    lateness_intervals: i64,
    future_intervals: i64,
    tiers: Vec<RawTier>,
    /// Drained rollups held in memory while the database cannot be written; pushes beyond
    /// this are refused with 503.
    max_unflushed_bytes: u64,
    /// Disk space kept in reserve for the final flush on a full disk (0: none).
    ballast_bytes: u64,
    /// Record perfwatch's own /metrics each interval as the group job="perfwatch".
    record_own_metrics: bool,
}

impl Default for RawStorage {
    fn default() -> RawStorage {
        RawStorage {
            path: None,
            interval: Seconds(10),
            lateness_intervals: 2,
            future_intervals: 1,
            tiers: default_tiers(),
            max_unflushed_bytes: 256 << 20,
            ballast_bytes: 64 << 20,
            record_own_metrics: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    resolution: Seconds,
    retention: Seconds,
}

fn default_tiers() -> Vec<RawTier> {
    const DAY: i64 = 86_400;
    [(10, 2 * DAY), (60, 15 * DAY), (3600, 180 * DAY), (DAY, 5 * 365 * DAY)]
        .iter()
        .map(|&(resolution, retention)| RawTier { resolution: Seconds(resolution), retention: Seconds(retention) })
        .collect()
}

/// The `storage:` section, validated.
pub(super) struct StorageSettings {
    pub db_path: PathBuf,
    pub interval_s: i64,
    pub lateness_intervals: i64,
    pub future_intervals: i64,
    pub tiers: Vec<Tier>,
    pub max_unflushed_bytes: u64,
    pub ballast_bytes: u64,
    pub record_own_metrics: bool,
}

pub(super) fn validate(raw: RawStorage, problems: &mut Vec<String>) -> StorageSettings {
    if raw.lateness_intervals < 0 || raw.future_intervals < 0 {
        problems.push("storage.lateness_intervals and storage.future_intervals must be 0 or more".into());
    }
    let tiers: Vec<Tier> =
        raw.tiers.iter().map(|t| Tier { resolution_s: t.resolution.0, retention_s: t.retention.0 }).collect();
    match tiers.first() {
        None => problems.push("storage.tiers needs at least one tier".into()),
        Some(first) if first.resolution_s != raw.interval.0 => problems.push(format!(
            "storage.tiers[0].resolution ({}s) must equal storage.interval ({}s)",
            first.resolution_s, raw.interval.0
        )),
        _ => {}
    }
    for (idx, pair) in tiers.windows(2).enumerate() {
        if pair[1].resolution_s <= pair[0].resolution_s || pair[1].resolution_s % pair[0].resolution_s != 0 {
            problems.push(format!(
                "storage.tiers[{}].resolution ({}s) must be a multiple of the tier before it ({}s)",
                idx + 1,
                pair[1].resolution_s,
                pair[0].resolution_s
            ));
        }
    }
    if 86_400 % raw.interval.0 != 0 {
        problems.push(format!("storage.interval ({}s) must divide a day evenly, e.g. 1s, 5s, 10s, 1m", raw.interval.0));
    }
    StorageSettings {
        db_path: raw.path.unwrap_or_else(default_db_path),
        interval_s: raw.interval.0,
        lateness_intervals: raw.lateness_intervals,
        future_intervals: raw.future_intervals,
        tiers,
        max_unflushed_bytes: raw.max_unflushed_bytes,
        ballast_bytes: raw.ballast_bytes,
        record_own_metrics: raw.record_own_metrics,
    }
}

/// `./perfwatch.db`, or under `$STATE_DIRECTORY` when systemd sets it.
fn default_db_path() -> PathBuf {
    match std::env::var_os("STATE_DIRECTORY") {
        // systemd may list several directories separated by ':'; the first is ours.
        Some(dirs) => {
            let dirs = dirs.to_string_lossy().into_owned();
            PathBuf::from(dirs.split(':').next().unwrap_or(".")).join("perfwatch.db")
        }
        None => PathBuf::from("./perfwatch.db"),
    }
}
