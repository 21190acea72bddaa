//! Silences, pure: which active silences match an alert's labels (plus its severity) at `now`.
//! A silenced alert keeps its state; it is only marked, and notifies nobody.

use crate::model::Labels;
use crate::query::selector::{Matcher, Selector, SelectorError};

#[derive(Debug, Clone)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_s: i64,
    pub ends_s: i64,
}

impl Silence {
    pub fn new(id: String, matchers: &str, starts_s: i64, ends_s: i64) -> Result<Silence, SelectorError> {
        Ok(Silence { id, matchers: Selector::parse_matchers(matchers)?, starts_s, ends_s })
    }

    pub fn is_active(&self, now_s: i64) -> bool {
        self.starts_s <= now_s && now_s < self.ends_s
    }

    /// Whether its matchers match an alert's [`with_severity`] labels, whenever it runs.
    pub fn covers(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// Silences as matchable values; a stored one that no longer parses is skipped and logged.
pub fn active_silences(rows: Vec<crate::store::alerts::SilenceRow>) -> Vec<Silence> {
    rows.into_iter()
        .filter_map(|row| match Silence::new(row.id.clone(), &row.matchers, row.starts_s, row.ends_s) {
            Ok(silence) => Some(silence),
            Err(err) => {
                tracing::warn!(id = %row.id, error = %err, "stored silence does not parse; ignoring it");
                None
            }
        })
        .collect()
}

/// Ids of the silences active at `now_s` that match an alert with `labels` and `severity`.
pub fn matching<'s>(silences: &'s [Silence], labels: &Labels, severity: Option<&str>, now_s: i64) -> Vec<&'s str> {
    let labels = with_severity(labels, severity);
    silences.iter().filter(|s| s.is_active(now_s) && s.covers(&labels)).map(|s| s.id.as_str()).collect()
}

/// An alert's labels as silences match them: its own, and `severity`.
pub fn with_severity(labels: &Labels, severity: Option<&str>) -> Labels {
    let mut pairs: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    if let Some(severity) = severity {
        pairs.push(("severity".to_owned(), severity.to_owned()));
    }
    Labels::new(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_matching_silences_only() {
        let silences = vec![
            Silence::new("a".into(), r#"{service="api"}"#, 100, 200).unwrap(),
            Silence::new("b".into(), r#"{severity=~"crit.*",alertname!="Other"}"#, 0, 1000).unwrap(),
            Silence::new("c".into(), r#"{service="search"}"#, 0, 1000).unwrap(),
        ];
        let labels = Labels::new(vec![("service".into(), "api".into()), ("alertname".into(), "ApiSlow".into())]);
        assert_eq!(matching(&silences, &labels, Some("critical"), 150), vec!["a", "b"]);
        assert_eq!(matching(&silences, &labels, Some("warning"), 150), vec!["a"]);
        assert_eq!(matching(&silences, &labels, Some("warning"), 200), Vec::<&str>::new(), "ended");
        assert!(Silence::new("x".into(), "service=api", 0, 1).is_err());
    }
}
