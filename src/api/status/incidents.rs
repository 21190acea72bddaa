//! The status page's last 24 hours of incidents: each alert that fired, when, how long until
//! someone acknowledged it and until it resolved, each linking to its alert page; with the
//! medians, so a shift's handover reads how the night went.

use std::fmt::Write;

use crate::clock;
use crate::html::escape;
use crate::store::alerts::Incident;

/// Incidents are listed for this long.
pub(super) const WINDOW_S: i64 = 86_400;
/// At most this many are listed (the newest).
pub(super) const SHOWN: usize = 50;

pub(super) fn render(body: &mut String, incidents: &[Incident], now_s: i64) {
    let _ = write!(body, "<h2>Incidents, last 24 hours ({})</h2>", incidents.len());
    if incidents.is_empty() {
        body.push_str("<p class=\"quiet\">None.</p>");
        return;
    }
    let ack_waits: Vec<i64> = incidents.iter().filter_map(|i| Some(i.acked.as_ref()?.0 - i.fired_s)).collect();
    let durations: Vec<i64> = incidents.iter().filter_map(|i| Some(i.resolved_s? - i.fired_s)).collect();
    let median = |values: &[i64]| median(values).map_or_else(|| "—".to_owned(), clock::elapsed);
    let _ = write!(
        body,
        "<p class=\"quiet\">Median time to acknowledge {} ({} of {} acknowledged) · median time to resolve {} ({} resolved)</p>",
        median(&ack_waits),
        ack_waits.len(),
        incidents.len(),
        median(&durations),
        durations.len()
    );
    body.push_str(
        "<table class=\"stack incidents\"><tr><th>fired</th><th>alert</th><th>labels</th><th>severity</th>\
         <th>acknowledged</th><th>resolved</th></tr>",
    );
    for incident in incidents {
        let acked = incident.acked.as_ref().map_or_else(
            || "not acknowledged".to_owned(),
            |(at_s, by)| match by.as_str() {
                // Acks recorded before perfwatch kept who acknowledged.
                "" => format!("after {}", clock::elapsed(at_s - incident.fired_s)),
                by => format!("after {} by {by}", clock::elapsed(at_s - incident.fired_s)),
            },
        );
        let resolved = incident.resolved_s.map_or_else(
            || format!("still firing ({})", clock::elapsed(now_s - incident.fired_s)),
            |at_s| format!("after {}", clock::elapsed(at_s - incident.fired_s)),
        );
        let severity = incident.severity.as_deref().unwrap_or("");
        let _ = write!(
            body,
            "<tr><td data-label=\"fired\">{} UTC</td><td data-label=\"alert\"><a href=\"alerts/{}\">{}</a></td>\
             <td data-label=\"labels\">{}</td><td data-label=\"severity\" class=\"sev-{}\">{}</td>\
             <td data-label=\"acknowledged\">{}</td><td data-label=\"resolved\">{}</td></tr>",
            clock::hh_mm(incident.fired_s),
            escape(&incident.alert_id),
            escape(&incident.rule),
            crate::api::page::stored_label_chips(&incident.labels),
            escape(severity),
            escape(severity),
            escape(&acked),
            escape(&resolved)
        );
    }
    body.push_str("</table>");
}

/// The middle value (the lower of the two middle ones for an even count).
fn median(values: &[i64]) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(fired_s: i64, acked: Option<(i64, &str)>, resolved_s: Option<i64>) -> Incident {
        Incident {
            alert_id: "a1".into(),
            rule: "ApiSlow".into(),
            labels: "{endpoint=\"<x>\"}".into(),
            severity: Some("critical".into()),
            fired_s,
            acked: acked.map(|(at, by)| (at, by.to_owned())),
            resolved_s,
        }
    }

    #[test]
    fn each_incident_says_how_long_until_acknowledged_and_resolved() {
        let incidents = vec![
            incident(1000, Some((1120, "ana")), Some(1600)),
            incident(2000, None, None),
            incident(500, None, Some(560)),
        ];
        let mut html = String::new();
        render(&mut html, &incidents, 2300);
        assert!(html.contains("Incidents, last 24 hours (3)"), "{html}");
        assert!(html.contains("Median time to acknowledge 2 min (1 of 3 acknowledged)"), "{html}");
        assert!(html.contains("median time to resolve 1 min (2 resolved)"), "{html}");
        assert!(html.contains("after 2 min by ana") && html.contains("after 10 min"), "{html}");
        assert!(html.contains("still firing (5 min)") && html.contains("not acknowledged"), "{html}");
        assert!(html.contains("<a href=\"alerts/a1\">ApiSlow</a>"), "{html}");
        assert!(
            html.contains("<code class=\"label\">endpoint=\"&lt;x&gt;\"</code>") && !html.contains("<x>"),
            "{html}"
        );
        assert_eq!(median(&[5, 1, 3, 2]), Some(2));
        assert_eq!(median(&[]), None);
    }
}
