//! Alert instances and their history in SQLite: written by the writer thread in one
//! transaction per evaluation, read back on start and by the API.

use rusqlite::{Row, Transaction, params};

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
}

const ALERT_COLUMNS: &str = "id, rule, grp, labels, state, severity, value, threshold, pending_since_s, firing_since_s, last_breach_s, updated_s";

pub fn save(tx: &Transaction<'_>, alerts: &[AlertRow], history: &[HistoryRow]) -> Result<(), StoreError> {
    let mut upsert = tx.prepare_cached(&format!(
        "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, severity = excluded.severity, value = excluded.value,
             threshold = excluded.threshold, pending_since_s = excluded.pending_since_s,
             firing_since_s = excluded.firing_since_s, last_breach_s = excluded.last_breach_s,
             updated_s = excluded.updated_s"
    ))?;
    for a in alerts {
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
        "INSERT INTO alert_history (alert_id, at_s, transition, state, severity, value, threshold)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for h in history {
        insert.execute(params![h.alert_id, h.at_s, h.transition, h.state, h.severity, h.value, h.threshold])?;
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
    })
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

    pub fn alert_history(&self, id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        let mut stmt = self.sql().prepare_cached(
            "SELECT alert_id, at_s, transition, state, severity, value, threshold FROM alert_history
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
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
