//! Retention: deletes each tier's rows older than its retention along the primary key (a
//! range of the time-major raw tier; series by series in the coarse ones), never scanning a
//! whole metrics table; and the alerting record (transitions, settled notifications and their
//! attempts, ended silences, used acknowledge links, long-resolved alerts) once older than
//! the longest tier keeps the metrics it was about, or [`RECORD_RETENTION_MAX_S`].

use rusqlite::Connection;

use super::StoreError;
use super::tiers::Tier;

/// The alerting record is kept at most this long (400 days: last year's incident on this
/// date is still there to compare), even when a tier keeps metrics longer.
pub const RECORD_RETENTION_MAX_S: i64 = 400 * 86_400;

/// Deletes rows past retention as of `now_s`, then the series nothing refers to any more;
/// returns how many rows went.
pub fn expire(conn: &mut Connection, tiers: &[Tier], now_s: i64) -> Result<u64, StoreError> {
    let n_deleted = expire_rows(conn, tiers, now_s)?;
    let longest = tiers.iter().map(|t| t.retention_s.saturating_add(t.resolution_s)).max().unwrap_or(i64::MAX);
    let n_records = expire_records(conn, now_s.saturating_sub(longest.min(RECORD_RETENTION_MAX_S)))?;
    if n_records > 0 {
        tracing::info!(rows = n_records, "expired alert and notification records past the longest retention");
    }
    let n_series = forget_series(conn, tiers, now_s)?;
    if n_series > 0 {
        tracing::info!(n_series, "forgot series whose data all expired");
    }
    Ok(n_deleted + n_series + n_records)
}

/// Deletes the alerting record from before `cutoff_s`: months of alerts and pages must not
/// fill the disk either. Notifications still to be sent, and active alerts, are kept
/// whatever their age.
fn expire_records(conn: &mut Connection, cutoff_s: i64) -> Result<u64, StoreError> {
    let tx = conn.transaction()?;
    let mut n = 0;
    for sql in [
        "DELETE FROM alert_history WHERE at_s < ?1",
        "DELETE FROM notification_attempts WHERE at_s < ?1
           AND outbox_id IN (SELECT id FROM outbox WHERE status IN ('sent', 'failed'))",
        "DELETE FROM outbox WHERE created_s < ?1 AND status IN ('sent', 'failed')",
        "DELETE FROM silences WHERE ends_s < ?1",
        "DELETE FROM used_ack_links WHERE used_s < ?1",
        "DELETE FROM alerts WHERE state = 'inactive' AND updated_s < ?1",
    ] {
        n += tx.execute(sql, [cutoff_s])? as u64;
    }
    n += tx.execute("DELETE FROM outbox_alerts WHERE outbox_id NOT IN (SELECT id FROM outbox)", [])? as u64;
    tx.commit()?;
    Ok(n)
}

/// Deletes the series (months of label churn leave many) that came into memory last before the
/// longest retention, have no cumulative state and no row left in any coarse tier. A series
/// that is in memory now came in within that time, or has been there since and so has a row
/// in the latest closed window of the coarsest tier: it is never forgotten. With a single tier
/// nothing is forgotten (the time-major raw tier cannot tell cheaply what a series holds).
fn forget_series(conn: &mut Connection, tiers: &[Tier], now_s: i64) -> Result<u64, StoreError> {
    let Some(longest) = tiers.iter().map(|t| t.retention_s + t.resolution_s).max().filter(|_| tiers.len() > 1) else {
        return Ok(0);
    };
    let tables = std::iter::once(tiers[0].sealed_table()).chain(tiers[1..].iter().map(Tier::table));
    let no_rows: Vec<String> =
        tables.map(|table| format!("NOT EXISTS (SELECT 1 FROM {table} WHERE series_id = series.id)")).collect();
    let sql = format!(
        "DELETE FROM series WHERE created_s < ?1
           AND NOT EXISTS (SELECT 1 FROM push_state WHERE series_id = series.id) AND {}",
        no_rows.join(" AND ")
    );
    Ok(conn.execute(&sql, [now_s - longest])? as u64)
}

fn expire_rows(conn: &mut Connection, tiers: &[Tier], now_s: i64) -> Result<u64, StoreError> {
    let mut n_deleted = 0u64;
    // Tier 0 is time-major: one range delete.
    let raw = &tiers[0];
    n_deleted +=
        conn.execute(&format!("DELETE FROM {} WHERE start_s < ?1", raw.raw_table()), [now_s - raw.retention_s])? as u64;
    // Tier 0's sealed blocks go once every interval in them is past retention.
    let span = raw.resolution_s * super::block::BLOCK_INTERVALS;
    let sql =
        format!("DELETE FROM {} WHERE series_id IN (SELECT id FROM series) AND start_s <= ?1", raw.sealed_table());
    n_deleted += conn.execute(&sql, [now_s - raw.retention_s - span])? as u64;
    // The coarse tiers are series-major: a range delete per series, which SQLite runs for each
    // id of the IN list along the primary key (one statement, no per-series round trip).
    for tier in &tiers[1..] {
        let sql = format!("DELETE FROM {} WHERE series_id IN (SELECT id FROM series) AND start_s < ?1", tier.table());
        n_deleted += conn.execute(&sql, [now_s - tier.retention_s])? as u64;
    }
    Ok(n_deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Old settled records go; what is still to be sent, still active, or recent stays.
    #[test]
    fn the_alerting_record_expires_with_the_longest_tier_but_never_what_is_pending_or_active() {
        let dir = tempfile::tempdir().unwrap();
        let tiers = vec![Tier { resolution_s: 10, retention_s: 1000 }];
        let mut conn = super::super::open_connection(&dir.path().join("r.db"), false).unwrap();
        super::super::schema::migrate(&mut conn, &tiers).unwrap();
        conn.execute_batch(
            "INSERT INTO alert_history (alert_id, at_s, transition, state) VALUES ('a', 100, 'firing', 'firing'), ('a', 5000, 'resolved', 'inactive');
             INSERT INTO alerts (id, rule, grp, labels, state, updated_s) VALUES
                 ('old', 'R', 'g', '{}', 'inactive', 100), ('new', 'R', 'g', '{}', 'inactive', 5000), ('stuck', 'R', 'g', '{}', 'firing', 100);
             INSERT INTO outbox (id, notifier, subject, kind, payload, created_s, due_s, status, attempts, in_doubt) VALUES
                 ('sent-old', 'slack', 'g', 'firing', '{}', 100, 100, 'sent', 1, 0),
                 ('pending-old', 'slack', 'g', 'firing', '{}', 100, 100, 'pending', 3, 0),
                 ('sent-new', 'slack', 'g', 'firing', '{}', 5000, 5000, 'sent', 1, 0);
             INSERT INTO notification_attempts (outbox_id, at_s, status, latency_ms) VALUES
                 ('sent-old', 100, 'sent', 1), ('pending-old', 100, 'retry', 1), ('sent-new', 5000, 'sent', 1);
             INSERT INTO outbox_alerts (alert_id, outbox_id) VALUES ('a', 'sent-old'), ('a', 'pending-old'), ('a', 'sent-new');
             INSERT INTO silences (id, matchers, starts_s, ends_s, author, comment, created_s) VALUES
                 ('ended', '{}', 0, 100, 'bo', '', 0), ('later', '{}', 0, 9000, 'bo', '', 0);",
        )
        .unwrap();
        // The longest tier keeps 1,010 s: at 6,000 everything before 4,990 is past it.
        expire(&mut conn, &tiers, 6000).unwrap();
        let ids = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        };
        assert_eq!(ids("SELECT transition FROM alert_history ORDER BY at_s"), vec!["resolved"]);
        assert_eq!(ids("SELECT id FROM alerts ORDER BY id"), vec!["new", "stuck"]);
        assert_eq!(ids("SELECT id FROM outbox ORDER BY id"), vec!["pending-old", "sent-new"]);
        assert_eq!(
            ids("SELECT outbox_id FROM notification_attempts ORDER BY outbox_id"),
            vec!["pending-old", "sent-new"]
        );
        assert_eq!(ids("SELECT outbox_id FROM outbox_alerts ORDER BY outbox_id"), vec!["pending-old", "sent-new"]);
        assert_eq!(ids("SELECT id FROM silences"), vec!["later"]);
    }
}
