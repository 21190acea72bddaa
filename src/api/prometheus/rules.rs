//! `/rules` and `/alerts` in Prometheus's format, so Grafana's alert views list perfwatch's
//! rules and their pending and firing alerts. perfwatch's rules are not PromQL: a rule's
//! `query` says in words what it measures and when it breaches.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Params;
use crate::api::OncallState;
use crate::api::alert_page::describe;
use crate::clock;
use crate::model::{Labels, SeriesKey};
use crate::query::promql::PromError;
use crate::query::promql::value::format_float;
use crate::rules::rule::{Condition, Direction, Rule};
use crate::rules::scheduler::alert_labels;
use crate::store::alerts::AlertRow;

/// `{"groups": [...]}`: every running group, each rule with its active alerts. Filters:
/// `type` (`alert`; `record` lists nothing, perfwatch has no recording rules), `rule_name[]`,
/// `rule_group[]`.
pub async fn rules(oncall: &OncallState, params: &Params) -> Result<String, PromError> {
    let active = active_alerts(oncall).await?;
    if params.get("type") == Some("record") {
        return Ok(json!({ "groups": [] }).to_string());
    }
    let (names, groups_wanted) = (params.all("rule_name[]"), params.all("rule_group[]"));
    let mut groups = Vec::new();
    for group in oncall.scheduler.groups() {
        if !groups_wanted.is_empty() && !groups_wanted.contains(&group.name) {
            continue;
        }
        let rules: Vec<Value> = group
            .rules
            .iter()
            .filter(|rule| names.is_empty() || names.contains(&rule.name))
            .map(|rule| {
                let alerts: Vec<Value> = active
                    .iter()
                    .filter(|(row, _)| row.group == group.name && row.rule == rule.name)
                    .map(|(row, labels)| alert(rule, row, labels))
                    .collect();
                rule_body(rule, alerts)
            })
            .collect();
        if rules.is_empty() && !names.is_empty() {
            continue;
        }
        let file = group.rules.first().map(|r| r.location.file.clone()).unwrap_or_default();
        groups.push(json!({
            "name": group.name, "file": file, "rules": rules, "interval": group.interval_s,
            "limit": 0, "evaluationTime": 0, "lastEvaluation": "0001-01-01T00:00:00Z",
        }));
    }
    Ok(json!({ "groups": groups }).to_string())
}

/// `{"alerts": [...]}`: every pending and firing alert.
pub async fn alerts(oncall: &OncallState) -> Result<String, PromError> {
    let active = active_alerts(oncall).await?;
    let running: BTreeMap<(String, String), Rule> = oncall
        .scheduler
        .groups()
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| ((g.name.clone(), r.name.clone()), r.clone())))
        .collect();
    let alerts: Vec<Value> = active
        .iter()
        .filter_map(|(row, labels)| Some(alert(running.get(&(row.group.clone(), row.rule.clone()))?, row, labels)))
        .collect();
    Ok(json!({ "alerts": alerts }).to_string())
}

/// Pending and firing alerts with their group labels.
async fn active_alerts(oncall: &OncallState) -> Result<Vec<(AlertRow, Labels)>, PromError> {
    let rows = oncall.reader.read(|tx| tx.alerts(&["pending", "firing"])).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let labels = SeriesKey::parse(&row.labels).map(|k| k.labels).unwrap_or_default();
            (row, labels)
        })
        .collect())
}

fn rule_body(rule: &Rule, alerts: Vec<Value>) -> Value {
    let state =
        ["firing", "pending"].into_iter().find(|s| alerts.iter().any(|a| a["state"] == *s)).unwrap_or("inactive");
    let labels: BTreeMap<&str, &str> = rule.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    json!({
        "state": state,
        "name": rule.name,
        "query": format!("{} {}", describe(rule), condition(&rule.condition)),
        "duration": rule.for_s,
        "keepFiringFor": rule.keep_firing_for_s,
        "labels": labels,
        "annotations": rule.annotations_for(&alert_labels(rule, &Labels::default()), None, None, ""),
        "alerts": alerts,
        "health": "ok",
        "evaluationTime": 0,
        "lastEvaluation": "0001-01-01T00:00:00Z",
        "type": "alerting",
    })
}

/// One alert instance as Prometheus lists it.
fn alert(rule: &Rule, row: &AlertRow, group_labels: &Labels) -> Value {
    let mut labels = alert_labels(rule, group_labels);
    if let Some(severity) = &row.severity {
        let mut pairs: Vec<(String, String)> =
            labels.into_pairs().into_iter().filter(|(k, _)| k != "severity").collect();
        pairs.push(("severity".into(), severity.clone()));
        labels = Labels::new(pairs);
    }
    let annotations = rule.annotations_for(&labels, row.value, row.threshold, row.severity.as_deref().unwrap_or(""));
    let labels: BTreeMap<&str, &str> = labels.iter().collect();
    let active_at = row.pending_since_s.or(row.firing_since_s).unwrap_or(row.updated_s);
    json!({
        "labels": labels,
        "annotations": annotations,
        "state": row.state,
        "activeAt": clock::rfc3339(active_at),
        "value": format_float(row.value.unwrap_or(f64::NAN)),
    })
}

fn condition(condition: &Condition) -> String {
    let side = |d: &Direction| if matches!(d, Direction::Above) { ">" } else { "<" };
    match condition {
        Condition::Threshold { direction, threshold, severity } => {
            format!("{} {threshold} ({severity})", side(direction))
        }
        Condition::Levels { direction, warning, critical } => {
            format!("{} {warning} (warning), {} {critical} (critical)", side(direction), side(direction))
        }
        Condition::Absent { severity } => format!("({severity})"),
    }
}
