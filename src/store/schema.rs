//! Schema migrations, applied in order on open and recorded in `PRAGMA user_version`, plus the
//! per-tier rollup tables (one per configured resolution).

use rusqlite::Connection;

use super::StoreError;
use super::tiers::Tier;

/// Each entry moves the schema one version up; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: series, metadata and Pushgateway cumulative state.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
     CREATE TABLE series (
         id INTEGER PRIMARY KEY,
         name TEXT NOT NULL,
         key TEXT NOT NULL,
         kind INTEGER NOT NULL,
         created_s INTEGER NOT NULL
     );
     CREATE INDEX series_by_name ON series (name);
     CREATE TABLE push_state (
         series_id INTEGER PRIMARY KEY,
         grp INTEGER NOT NULL,
         state BLOB NOT NULL
     );",
    // 2: alert instances and their transition history.
    "CREATE TABLE alerts (
         id TEXT PRIMARY KEY,
         rule TEXT NOT NULL,
         grp TEXT NOT NULL,
         labels TEXT NOT NULL,
         state TEXT NOT NULL,
         severity TEXT,
         value REAL,
         threshold REAL,
         pending_since_s INTEGER,
         firing_since_s INTEGER,
         last_breach_s INTEGER,
         updated_s INTEGER NOT NULL,
         acked_by TEXT,
         acked_at_s INTEGER,
         ack_comment TEXT
     );
     CREATE TABLE alert_history (
         alert_id TEXT NOT NULL,
         at_s INTEGER NOT NULL,
         transition TEXT NOT NULL,
         state TEXT NOT NULL,
         severity TEXT,
         value REAL,
         threshold REAL
     );
     CREATE INDEX alert_history_by_alert ON alert_history (alert_id, at_s);
     CREATE TABLE silences (
         id TEXT PRIMARY KEY,
         matchers TEXT NOT NULL,
         starts_s INTEGER NOT NULL,
         ends_s INTEGER NOT NULL,
         author TEXT NOT NULL,
         comment TEXT NOT NULL,
         created_s INTEGER NOT NULL
     );",
    // 3: the notification outbox and every delivery attempt.
    "CREATE TABLE outbox (
         id TEXT PRIMARY KEY,
         notifier TEXT NOT NULL,
         subject TEXT NOT NULL,
         kind TEXT NOT NULL,
         payload TEXT NOT NULL,
         created_s INTEGER NOT NULL,
         due_s INTEGER NOT NULL,
         status TEXT NOT NULL,
         attempts INTEGER NOT NULL,
         last_error TEXT,
         sent_s INTEGER,
         in_doubt INTEGER NOT NULL
     );
     CREATE INDEX outbox_due ON outbox (notifier, status, due_s);
     CREATE INDEX outbox_by_subject ON outbox (subject, created_s);
     CREATE TABLE notification_attempts (
         outbox_id TEXT NOT NULL,
         at_s INTEGER NOT NULL,
         status TEXT NOT NULL,
         error TEXT,
         latency_ms INTEGER NOT NULL
     );
     CREATE INDEX notification_attempts_by_outbox ON notification_attempts (outbox_id);",
    // 4: notification groups (grouping and escalation state), saved with the outbox rows.
    "CREATE TABLE notify_groups (key TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;",
    // 5: secrets perfwatch makes for itself (the ack-link key), and ack links already used.
    "CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
     CREATE TABLE used_ack_links (nonce TEXT PRIMARY KEY, used_by TEXT NOT NULL, used_s INTEGER NOT NULL) WITHOUT ROWID;",
    // 6: which alerts each notification was about, to list an alert's notifications.
    "CREATE TABLE outbox_alerts (alert_id TEXT NOT NULL, outbox_id TEXT NOT NULL, PRIMARY KEY (alert_id, outbox_id)) WITHOUT ROWID;",
    // 7: the receiver's reference to a delivered notification (Slack's channel/ts), so
    // follow-ups can reply to or edit it.
    "ALTER TABLE outbox ADD COLUMN receipt TEXT;",
    // 8: rollups a flush could not store (not finite, or a stored row they would merge into
    // does not read back), kept aside so they never block the rollups behind them.
    "CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        at_s INTEGER NOT NULL,
        flush_seq INTEGER NOT NULL,
        series_id INTEGER NOT NULL,
        start_s INTEGER NOT NULL,
        reason TEXT NOT NULL,
        count REAL, sum REAL, min REAL, max REAL, last REAL, last_ms INTEGER, sketch BLOB
     );",
    // 9: when each cumulative state was last pushed, so idle ones expire and a restart
    // restores only the recent (rows from before this version count as pushed now).
    "ALTER TABLE push_state ADD COLUMN updated_s INTEGER NOT NULL DEFAULT 0;
     UPDATE push_state SET updated_s = CAST(strftime('%s', 'now') AS INTEGER);",
    // 10: recent delivery failures by time, for the status page's health line.
    "CREATE INDEX notification_attempts_by_time ON notification_attempts (at_s);",
    // 11: who acknowledged, and why, kept with each ack in the history (the alert page's timeline).
    "ALTER TABLE alert_history ADD COLUMN actor TEXT;
     ALTER TABLE alert_history ADD COLUMN note TEXT;",
    // 12: silences that end when the alert they were made for resolves.
    "ALTER TABLE silences ADD COLUMN until_resolved TEXT;
     CREATE INDEX silences_until_resolved ON silences (until_resolved) WHERE until_resolved IS NOT NULL;",
    // 13: recent incidents by time (the status page's last 24 hours).
    "CREATE INDEX alert_history_by_time ON alert_history (at_s, transition);",
    // 14: tier 0's final rows sealed into series-major blocks (`sealed_<res>s`, created with
    // the tier tables below); the version moves so an older perfwatch, which would not read
    // them, refuses the store instead of answering without them.
    "-- sealed blocks",
];

pub fn migrate(conn: &mut Connection, tiers: &[Tier]) -> Result<(), StoreError> {
    let version: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::NewerSchema { found: version, known: MIGRATIONS.len() });
    }
    let tx = conn.transaction()?;
    for (idx, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", idx + 1)?;
    }
    let tier1_is_behind = super::seal::tier1_is_behind(&tx, tiers)?;
    for (idx, tier) in tiers.iter().enumerate() {
        let (table, key) =
            if idx == 0 { (tier.raw_table(), "start_s, series_id") } else { (tier.table(), "series_id, start_s") };
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 series_id INTEGER NOT NULL,
                 start_s INTEGER NOT NULL,
                 count REAL NOT NULL,
                 sum REAL NOT NULL,
                 min REAL NOT NULL,
                 max REAL NOT NULL,
                 last REAL NOT NULL,
                 last_ms INTEGER NOT NULL,
                 sketch BLOB,
                 PRIMARY KEY ({key})
             ) WITHOUT ROWID;"
        ))?;
    }
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} (
             series_id INTEGER NOT NULL,
             start_s INTEGER NOT NULL,
             rows BLOB NOT NULL,
             PRIMARY KEY (series_id, start_s)
         ) WITHOUT ROWID;",
        tiers[0].sealed_table()
    ))?;
    if tier1_is_behind {
        let moved = super::seal::unseal_all(&tx, &tiers[0])?;
        if moved > 0 {
            tracing::info!(
                rows = moved,
                "the first coarse tier is new or behind: tier 0's sealed blocks moved back to be downsampled"
            );
        }
    }
    tx.commit()?;
    Ok(())
}

/// The tiers a database holds, read from its tables (for reading a database file without the
/// daemon's config). `None` when it has no perfwatch schema.
pub fn stored_tiers(conn: &Connection) -> Result<Option<Vec<Tier>>, StoreError> {
    let version: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::NewerSchema { found: version, known: MIGRATIONS.len() });
    }
    let mut statement = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let names = statement.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    let resolution =
        |name: &str, prefix: &str| -> Option<i64> { name.strip_prefix(prefix)?.strip_suffix('s')?.parse().ok() };
    let Some(raw) = names.iter().filter_map(|n| resolution(n, "raw_")).min() else { return Ok(None) };
    let mut coarse: Vec<i64> = names.iter().filter_map(|n| resolution(n, "rollup_")).filter(|r| *r > raw).collect();
    coarse.sort_unstable();
    let tier = |resolution_s| Tier { resolution_s, retention_s: i64::MAX };
    Ok((version > 0).then(|| std::iter::once(raw).chain(coarse).map(tier).collect()))
}
