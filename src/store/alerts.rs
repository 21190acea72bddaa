//! Alert instances and their history in SQLite: written by the writer thread in one
//! transaction per evaluation, read back on start and by the API.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::StoreError;
use super::reader::ReadTx;

/// An alert instance as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: String,
    pub rule: String,
    pub group: String,
    /// Canonical `{a="x",b="y"}` form of the instance's group labels.
    pub labels: String,
    pub state: String,
    pub severity: Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub pending_since_s: Option<i64>,
    pub firing_since_s: Option<i64>,
    pub last_breach_s: Option<i64>,
    pub updated_s: i64,
    /// Who acknowledged the current episode, when and why (cleared when it resolves).
    pub ack: Option<Ack>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub by: String,
    pub at_s: i64,
    pub comment: String,
}

/// An alert that fired: when, and when it was first acknowledged and resolved after that.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub alert_id: String,
    pub rule: String,
    pub labels: String,
    pub severity: Option<String>,
    pub fired_s: i64,
    /// The first ack after it fired (and before it resolved): when and by whom.
    pub acked: Option<(i64, String)>,
    /// When it resolved (or was reset by a reload); `None` while it fires.
    pub resolved_s: Option<i64>,
}

/// A silence: alerts whose labels match are marked silenced between start and end.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    pub id: String,
    /// Selector-style matchers without a name: `{service="api",severity=~"crit.*"}`.
    pub matchers: String,
    pub starts_s: i64,
    pub ends_s: i64,
    pub author: String,
    pub comment: String,
    pub created_s: i64,
    /// The alert whose resolve ends it early (silenced "until resolved").
    pub until_resolved: Option<String>,
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub alert_id: String,
    pub at_s: i64,
    pub transition: String,
    pub state: String,
    pub severity: Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// Who acted (acknowledged), when a person did.
    pub actor: Option<String>,
    /// What they said (the ack's comment).
    pub note: Option<String>,
}

const ALERT_COLUMNS: &str = "id, rule, grp, labels, state, severity, value, threshold, pending_since_s, firing_since_s, last_breach_s, updated_s, acked_by, acked_at_s, ack_comment";

pub fn save(tx: &Transaction<'_>, alerts: &[AlertRow], history: &[HistoryRow]) -> Result<(), StoreError> {
    let mut upsert = tx.prepare_cached(&format!(
        "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, NULL, NULL)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, severity = excluded.severity, value = excluded.value,
             threshold = excluded.threshold, pending_since_s = excluded.pending_since_s,
             firing_since_s = excluded.firing_since_s, last_breach_s = excluded.last_breach_s,
             updated_s = excluded.updated_s,
             acked_by = CASE WHEN excluded.state = 'inactive' THEN NULL ELSE alerts.acked_by END,
             acked_at_s = CASE WHEN excluded.state = 'inactive' THEN NULL ELSE alerts.acked_at_s END,
             ack_comment = CASE WHEN excluded.state = 'inactive' THEN NULL ELSE alerts.ack_comment END"
    ))?;
    let mut end_silences = tx.prepare_cached(
        "UPDATE silences SET ends_s = ?2 WHERE until_resolved = ?1 AND ends_s > ?2 AND starts_s <= ?2",
    )?;
    for a in alerts {
        if a.state == "inactive" {
            end_silences.execute(params![a.id, a.updated_s])?;
        }
        upsert.execute(params![
            a.id,
            a.rule,
            a.group,
            a.labels,
            a.state,
            a.severity,
            a.value,
            a.threshold,
            a.pending_since_s,
            a.firing_since_s,
            a.last_breach_s,
            a.updated_s
        ])?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO alert_history (alert_id, at_s, transition, state, severity, value, threshold, actor, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for h in history {
        insert.execute(params![
            h.alert_id,
            h.at_s,
            h.transition,
            h.state,
            h.severity,
            h.value,
            h.threshold,
            h.actor,
            h.note
        ])?;
    }
    Ok(())
}

fn alert_row(row: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: row.get(0)?,
        rule: row.get(1)?,
        group: row.get(2)?,
        labels: row.get(3)?,
        state: row.get(4)?,
        severity: row.get(5)?,
        value: row.get(6)?,
        threshold: row.get(7)?,
        pending_since_s: row.get(8)?,
        firing_since_s: row.get(9)?,
        last_breach_s: row.get(10)?,
        updated_s: row.get(11)?,
        ack: match row.get::<_, Option<String>>(12)? {
            Some(by) => {
                Some(Ack { by, at_s: row.get(13)?, comment: row.get::<_, Option<String>>(14)?.unwrap_or_default() })
            }
            None => None,
        },
    })
}

/// Sets (or with `None`, clears) the ack of a pending or firing alert and records it in the
/// history. Returns false when there is no such alert or it is not active.
pub fn set_ack(tx: &Transaction<'_>, id: &str, ack: Option<&Ack>, now_s: i64) -> Result<bool, StoreError> {
    let changed = tx.execute(
        "UPDATE alerts SET acked_by = ?2, acked_at_s = ?3, ack_comment = ?4 WHERE id = ?1 AND state != 'inactive'",
        params![id, ack.map(|a| &a.by), ack.map(|a| a.at_s), ack.map(|a| &a.comment)],
    )?;
    if changed == 1 {
        tx.execute(
            "INSERT INTO alert_history (alert_id, at_s, transition, state, severity, value, threshold, actor, note)
             SELECT id, ?2, ?3, state, severity, value, threshold, ?4, ?5 FROM alerts WHERE id = ?1",
            params![
                id,
                now_s,
                if ack.is_some() { "acked" } else { "unacked" },
                ack.map(|a| &a.by),
                ack.map(|a| &a.comment)
            ],
        )?;
    }
    Ok(changed == 1)
}

/// Creates a silence that ends when alert `until_resolved` resolves, in the transaction that
/// finds the alert still active: one the scheduler resolved a moment before is refused
/// (`false`), so the silence cannot miss its end and mute the alert's next episodes.
pub fn save_silence_until_resolved(tx: &Transaction<'_>, silence: &SilenceRow) -> Result<bool, StoreError> {
    let Some(alert_id) = &silence.until_resolved else { return Ok(false) };
    let active: bool =
        tx.query_row("SELECT EXISTS (SELECT 1 FROM alerts WHERE id = ?1 AND state != 'inactive')", [alert_id], |r| {
            r.get(0)
        })?;
    if active {
        save_silence(tx, silence)?;
    }
    Ok(active)
}

pub fn save_silence(tx: &Transaction<'_>, silence: &SilenceRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO silences (id, matchers, starts_s, ends_s, author, comment, created_s, until_resolved)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET ends_s = excluded.ends_s",
        params![
            silence.id,
            silence.matchers,
            silence.starts_s,
            silence.ends_s,
            silence.author,
            silence.comment,
            silence.created_s,
            silence.until_resolved
        ],
    )?;
    Ok(())
}

impl ReadTx<'_> {
    /// Every stored alert instance, or only those in `states`.
    pub fn alerts(&self, states: &[&str]) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt =
            self.sql().prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts ORDER BY rule, labels"))?;
        let rows = stmt.query_map([], alert_row)?;
        let mut out = Vec::new();
        for row in rows {
            let row = row?;
            if states.is_empty() || states.contains(&row.state.as_str()) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// One alert instance by id, in any state.
    pub fn alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        let mut stmt = self.sql().prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"))?;
        Ok(stmt.query_row([id], alert_row).optional()?)
    }

    /// Alerts that started firing at or after `since_s`, newest first, at most `limit`.
    pub fn incidents(&self, since_s: i64, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let mut stmt = self.sql().prepare_cached(
            "WITH fired AS (
                 SELECT h.alert_id, h.severity, h.at_s,
                        (SELECT min(r.at_s) FROM alert_history r WHERE r.alert_id = h.alert_id
                             AND r.transition IN ('resolved', 'reset_by_reload') AND r.at_s >= h.at_s) AS resolved_s
                 FROM alert_history h WHERE h.transition = 'firing' AND h.at_s >= ?1
                 ORDER BY h.at_s DESC LIMIT ?2)
             SELECT f.alert_id, a.rule, a.labels, f.severity, f.at_s, f.resolved_s, k.at_s, k.actor
             FROM fired f JOIN alerts a ON a.id = f.alert_id
             LEFT JOIN alert_history k ON k.rowid = (
                 SELECT x.rowid FROM alert_history x WHERE x.alert_id = f.alert_id AND x.transition = 'acked'
                     AND x.at_s >= f.at_s AND x.at_s <= COALESCE(f.resolved_s, x.at_s)
                 ORDER BY x.at_s, x.rowid LIMIT 1)
             ORDER BY f.at_s DESC, f.alert_id",
        )?;
        let rows = stmt.query_map(params![since_s, limit as i64], |row| {
            let acked = match (row.get::<_, Option<i64>>(6)?, row.get::<_, Option<String>>(7)?) {
                (Some(at_s), by) => Some((at_s, by.unwrap_or_default())),
                (None, _) => None,
            };
            Ok(Incident {
                alert_id: row.get(0)?,
                rule: row.get(1)?,
                labels: row.get(2)?,
                severity: row.get(3)?,
                fired_s: row.get(4)?,
                resolved_s: row.get(5)?,
                acked,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pending and firing alerts per state and severity.
    pub fn alert_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut stmt = self.sql().prepare_cached(
            "SELECT state, COALESCE(severity, ''), count(*) FROM alerts WHERE state != 'inactive' GROUP BY state, severity",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Silences that have not ended by `now_s` (or every one, with `all`).
    pub fn silences(&self, now_s: i64, all: bool) -> Result<Vec<SilenceRow>, StoreError> {
        let mut stmt = self.sql().prepare_cached(
            "SELECT id, matchers, starts_s, ends_s, author, comment, created_s, until_resolved FROM silences
             WHERE ?1 OR ends_s > ?2 ORDER BY starts_s, id",
        )?;
        let rows = stmt.query_map(params![all, now_s], |row| {
            Ok(SilenceRow {
                id: row.get(0)?,
                matchers: row.get(1)?,
                starts_s: row.get(2)?,
                ends_s: row.get(3)?,
                author: row.get(4)?,
                comment: row.get(5)?,
                created_s: row.get(6)?,
                until_resolved: row.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn alert_history(&self, id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        let mut stmt = self.sql().prepare_cached(
            "SELECT alert_id, at_s, transition, state, severity, value, threshold, actor, note FROM alert_history
             WHERE alert_id = ?1 ORDER BY at_s, rowid",
        )?;
        let rows = stmt.query_map([id], |row| {
            Ok(HistoryRow {
                alert_id: row.get(0)?,
                at_s: row.get(1)?,
                transition: row.get(2)?,
                state: row.get(3)?,
                severity: row.get(4)?,
                value: row.get(5)?,
                threshold: row.get(6)?,
                actor: row.get(7)?,
                note: row.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
