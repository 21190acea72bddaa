//! The notification outbox: every notification is a row before it is sent, so a crash loses
//! none. A sender claims due rows (they become `sending`), delivers, and records the attempt;
//! a row left `sending` by a crash is in doubt and is sent once more after a restart, under
//! the same id (the receiver's idempotency key or Message-ID shows the repeat).

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::StoreError;
use super::reader::ReadTx;

/// A notification as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Stable for the notification's life: the idempotency key and Message-ID seed.
    pub id: String,
    pub notifier: String,
    /// What it is about (an alert group, or `test`).
    pub subject: String,
    /// firing, escalated, repeat, acked, resolved or test.
    pub kind: String,
    /// The message, as JSON the notifier renders.
    pub payload: String,
    pub created_s: i64,
    /// Not before this time (the next attempt's time after a failure).
    pub due_s: i64,
    /// pending, sending, sent or failed.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_s: Option<i64>,
    /// Whether a crash came between a send and its confirmation (it may have arrived).
    pub in_doubt: bool,
    /// The alerts it is about (kept beside the row, for listing an alert's notifications).
    pub alert_ids: Vec<String>,
    /// The receiver's reference to the delivered message (Slack's `channel/ts`).
    pub receipt: Option<String>,
}

impl OutboxRow {
    pub fn new(id: String, notifier: String, subject: String, kind: String, payload: String, now_s: i64) -> OutboxRow {
        OutboxRow {
            id,
            notifier,
            subject,
            kind,
            payload,
            created_s: now_s,
            due_s: now_s,
            status: "pending".into(),
            attempts: 0,
            last_error: None,
            sent_s: None,
            in_doubt: false,
            alert_ids: Vec::new(),
            receipt: None,
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    Sent {
        receipt: Option<String>,
    },
    /// Try again at `retry_at_s`.
    Retry {
        error: String,
        retry_at_s: i64,
    },
    /// Not tried: put back until `retry_at_s` (a follow-up waiting for its page); the claim's
    /// attempt is given back and no attempt is recorded.
    Deferred {
        reason: String,
        retry_at_s: i64,
    },
    /// Given up: the receiver refused for good, or attempts ran out.
    Failed {
        error: String,
    },
}

const COLUMNS: &str =
    "id, notifier, subject, kind, payload, created_s, due_s, status, attempts, last_error, sent_s, in_doubt, receipt";

/// Adds notifications; one already queued under the same id is left alone (exactly once).
pub fn enqueue(tx: &Transaction<'_>, rows: &[OutboxRow]) -> Result<usize, StoreError> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO outbox ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO NOTHING"
    ))?;
    let mut about = tx.prepare_cached("INSERT OR IGNORE INTO outbox_alerts (alert_id, outbox_id) VALUES (?1, ?2)")?;
    let mut added = 0;
    for r in rows {
        for alert in &r.alert_ids {
            about.execute(params![alert, r.id])?;
        }
        added += insert.execute(params![
            r.id,
            r.notifier,
            r.subject,
            r.kind,
            r.payload,
            r.created_s,
            r.due_s,
            r.status,
            r.attempts,
            r.last_error,
            r.sent_s,
            r.in_doubt,
            r.receipt
        ])?;
    }
    Ok(added)
}

/// Marks up to `limit` due rows of `notifier` as `sending` and returns them, oldest first.
pub fn claim(tx: &Transaction<'_>, notifier: &str, now_s: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
    let mut select = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE notifier = ?1 AND status = 'pending' AND due_s <= ?2
         ORDER BY due_s, created_s LIMIT ?3"
    ))?;
    let rows: Vec<OutboxRow> =
        select.query_map(params![notifier, now_s, limit as i64], outbox_row)?.collect::<Result<_, _>>()?;
    let mut mark = tx.prepare_cached("UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ?1")?;
    for row in &rows {
        mark.execute([&row.id])?;
    }
    Ok(rows.into_iter().map(|r| OutboxRow { status: "sending".into(), attempts: r.attempts + 1, ..r }).collect())
}

/// Records how an attempt at `id` ended, and the attempt itself.
pub fn finish(
    tx: &Transaction<'_>,
    id: &str,
    result: &AttemptResult,
    at_s: i64,
    latency_ms: i64,
) -> Result<(), StoreError> {
    let (status, error, due, receipt) = match result {
        AttemptResult::Deferred { reason, retry_at_s } => {
            tx.execute(
                "UPDATE outbox SET status = 'pending', last_error = ?2, due_s = ?3, attempts = attempts - 1 WHERE id = ?1",
                params![id, reason, retry_at_s],
            )?;
            return Ok(());
        }
        AttemptResult::Sent { receipt } => ("sent", None, None, receipt.as_deref()),
        AttemptResult::Retry { error, retry_at_s } => ("pending", Some(error.as_str()), Some(*retry_at_s), None),
        AttemptResult::Failed { error } => ("failed", Some(error.as_str()), None, None),
    };
    tx.execute(
        "UPDATE outbox SET status = ?2, last_error = ?3, due_s = COALESCE(?4, due_s),
             sent_s = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_s END, receipt = COALESCE(?6, receipt)
         WHERE id = ?1",
        params![id, status, error, due, at_s, receipt],
    )?;
    tx.execute(
        "INSERT INTO notification_attempts (outbox_id, at_s, status, error, latency_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, at_s, if status == "pending" { "retry" } else { status }, error, latency_ms],
    )?;
    Ok(())
}

/// Saves (or with `None`, deletes) notification groups, as JSON.
pub fn save_groups(tx: &Transaction<'_>, groups: &[(String, Option<String>)]) -> Result<(), StoreError> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO notify_groups (key, state) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET state = excluded.state",
    )?;
    let mut delete = tx.prepare_cached("DELETE FROM notify_groups WHERE key = ?1")?;
    for (key, state) in groups {
        match state {
            Some(state) => upsert.execute(params![key, state])?,
            None => delete.execute([key])?,
        };
    }
    Ok(())
}

/// After a restart: rows a crash left `sending` go back to `pending`, marked in doubt.
/// Puts rows left `sending` (by a crash, or a failed sender of `notifier`) back, in doubt.
pub fn recover(tx: &Transaction<'_>, notifier: Option<&str>) -> Result<usize, StoreError> {
    Ok(match notifier {
        None => tx.execute("UPDATE outbox SET status = 'pending', in_doubt = 1 WHERE status = 'sending'", [])?,
        Some(name) => tx.execute(
            "UPDATE outbox SET status = 'pending', in_doubt = 1 WHERE status = 'sending' AND notifier = ?1",
            [name],
        )?,
    })
}

fn outbox_row(row: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: row.get(0)?,
        notifier: row.get(1)?,
        subject: row.get(2)?,
        kind: row.get(3)?,
        payload: row.get(4)?,
        created_s: row.get(5)?,
        due_s: row.get(6)?,
        status: row.get(7)?,
        attempts: row.get(8)?,
        last_error: row.get(9)?,
        sent_s: row.get(10)?,
        in_doubt: row.get(11)?,
        alert_ids: Vec::new(),
        receipt: row.get(12)?,
    })
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub at_s: i64,
    pub status: String,
    pub error: Option<String>,
    pub latency_ms: i64,
}

/// Delivery trouble over a recent stretch (see [`ReadTx::recent_failures`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentFailures {
    /// Notifications given up on.
    pub failed: u64,
    /// The newest failed attempt: notifier, error, when.
    pub last: Option<(String, String, i64)>,
}

/// Filters for listing notifications; `None` matches all.
#[derive(Debug, Default, Clone)]
pub struct OutboxFilter {
    pub notifier: Option<String>,
    pub status: Option<String>,
    pub subject: Option<String>,
    /// Notifications about this alert.
    pub alert: Option<String>,
}

impl ReadTx<'_> {
    /// Notifications newest first, at most `limit`.
    pub fn notifications(&self, filter: &OutboxFilter, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.sql().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox
             WHERE (?1 IS NULL OR notifier = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR subject = ?3)
               AND (?5 IS NULL OR id IN (SELECT outbox_id FROM outbox_alerts WHERE alert_id = ?5))
             ORDER BY created_s DESC, rowid DESC LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![filter.notifier, filter.status, filter.subject, limit as i64, filter.alert],
            outbox_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn notification(&self, id: &str) -> Result<Option<OutboxRow>, StoreError> {
        let mut stmt = self.sql().prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"))?;
        Ok(stmt.query_row([id], outbox_row).optional()?)
    }

    /// When the earliest notification queued before `id` for the same notifier and subject,
    /// and not yet settled, is due: a follow-up that edits or replies to a page goes after it.
    pub fn waiting_on(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let mut stmt = self.sql().prepare_cached(
            "SELECT min(o.due_s) FROM outbox me JOIN outbox o ON o.subject = me.subject AND o.notifier = me.notifier
             WHERE me.id = ?1 AND o.rowid < me.rowid AND o.status IN ('pending', 'sending')",
        )?;
        Ok(stmt.query_row([id], |r| r.get(0))?)
    }

    /// The attempts at one notification, oldest first.
    pub fn attempts(&self, outbox_id: &str) -> Result<Vec<AttemptRow>, StoreError> {
        let mut stmt = self.sql().prepare_cached(
            "SELECT at_s, status, error, latency_ms FROM notification_attempts WHERE outbox_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([outbox_id], |r| {
            Ok(AttemptRow { at_s: r.get(0)?, status: r.get(1)?, error: r.get(2)?, latency_ms: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Notifications per notifier and status.
    pub fn outbox_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut stmt =
            self.sql().prepare_cached("SELECT notifier, status, count(*) FROM outbox GROUP BY notifier, status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Notifications that gave up at or after `since_s`, and the newest failed attempt since
    /// then (given up or to be retried): its notifier, error and time.
    pub fn recent_failures(&self, since_s: i64) -> Result<RecentFailures, StoreError> {
        let failed: i64 = self.sql().query_row(
            "SELECT count(DISTINCT outbox_id) FROM notification_attempts WHERE status = 'failed' AND at_s >= ?1",
            [since_s],
            |r| r.get(0),
        )?;
        let last = self
            .sql()
            .query_row(
                "SELECT o.notifier, a.error, a.at_s FROM notification_attempts a JOIN outbox o ON o.id = a.outbox_id
                 WHERE a.status IN ('failed', 'retry') AND a.at_s >= ?1 ORDER BY a.at_s DESC, a.rowid DESC LIMIT 1",
                [since_s],
                |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default(), r.get(2)?)),
            )
            .optional()?;
        Ok(RecentFailures { failed: failed as u64, last })
    }

    /// Every notification group as saved: key and JSON state.
    pub fn notify_groups(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.sql().prepare_cached("SELECT key, state FROM notify_groups ORDER BY key")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next pending notification of `notifier` is due, if any.
    pub fn next_due(&self, notifier: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .sql()
            .query_row("SELECT min(due_s) FROM outbox WHERE notifier = ?1 AND status = 'pending'", [notifier], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reader::Reader;
    use crate::store::tiers::Tier;

    /// The health line's figures: only failures since the given time count, and the newest
    /// failed attempt (a retry too) is the last error.
    #[tokio::test]
    async fn recent_failures_count_only_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.db");
        let tiers = vec![Tier { resolution_s: 10, retention_s: 1 << 40 }];
        let mut conn = super::super::open_connection(&path, false).unwrap();
        super::super::schema::migrate(&mut conn, &tiers).unwrap();
        let tx = conn.transaction().unwrap();
        let row = |id: &str| OutboxRow::new(id.into(), "slack".into(), "g".into(), "firing".into(), "{}".into(), 0);
        enqueue(&tx, &[row("old"), row("new"), row("retrying")]).unwrap();
        finish(&tx, "old", &AttemptResult::Failed { error: "HTTP 404".into() }, 100, 5).unwrap();
        finish(&tx, "new", &AttemptResult::Failed { error: "HTTP 403".into() }, 5000, 5).unwrap();
        let retry = AttemptResult::Retry { error: "HTTP 503".into(), retry_at_s: 5100 };
        finish(&tx, "retrying", &retry, 5050, 5).unwrap();
        tx.commit().unwrap();
        let reader = Reader::new(vec![super::super::open_connection(&path, true).unwrap()], tiers);
        let recent = reader.read(|tx| tx.recent_failures(4000)).await.unwrap();
        assert_eq!(recent, RecentFailures { failed: 1, last: Some(("slack".into(), "HTTP 503".into(), 5050)) });
        let all = reader.read(|tx| tx.recent_failures(0)).await.unwrap();
        assert_eq!(all.failed, 2);
        assert_eq!(reader.read(|tx| tx.recent_failures(6000)).await.unwrap(), RecentFailures::default());
    }
}
