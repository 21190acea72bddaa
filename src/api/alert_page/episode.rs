//! An alert's episodes and what its chart spans, from its transition history. Pure.
//!
//! An episode starts when the instance leaves `inactive` (pending, or firing at once) and ends
//! when it is inactive again (resolved, cancelled, or reset by a reload). Acks and severity
//! changes happen inside one.

use crate::api::chart::{Band, Mark};
use crate::clock;
use crate::store::alerts::HistoryRow;

/// One stretch from leaving `inactive` to coming back to it (`None`: still active).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    pub start_s: i64,
    pub end_s: Option<i64>,
}

impl Episode {
    /// Whether `at_s` falls in it (its end included: the resolve belongs to it).
    pub fn holds(&self, at_s: i64) -> bool {
        at_s >= self.start_s && self.end_s.is_none_or(|end| at_s <= end)
    }
}

/// Every episode in `history` (oldest first, as stored).
pub fn episodes(history: &[HistoryRow]) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    let mut active = false;
    for row in history {
        let now_active = row.state != "inactive";
        match (active, now_active) {
            (false, true) => out.push(Episode { start_s: row.at_s, end_s: None }),
            (true, false) => {
                if let Some(last) = out.last_mut() {
                    last.end_s = Some(row.at_s);
                }
            }
            _ => {}
        }
        active = now_active;
    }
    out
}

/// The chart's time range: the last hour, or around the episode with a margin either side
/// (at least an hour, at most a day, ending at its resolve plus the margin or now).
pub fn span(episode: Option<&Episode>, now_s: i64) -> (i64, i64) {
    const HOUR_S: i64 = 3600;
    const MARGIN_S: i64 = 900;
    const MAX_S: i64 = 86_400;
    let Some(episode) = episode else { return (now_s - HOUR_S, now_s) };
    let to = episode.end_s.map_or(now_s, |end| (end + MARGIN_S).min(now_s));
    let from = (episode.start_s - MARGIN_S).min(to - HOUR_S).max(to - MAX_S);
    (from, to)
}

/// How far apart the chart's points are: about 90 over the span, a multiple of `interval_s`.
pub fn step(from_s: i64, to_s: i64, interval_s: i64) -> i64 {
    let interval_s = interval_s.max(1);
    let raw = ((to_s - from_s) / 90).max(interval_s);
    (raw + interval_s - 1) / interval_s * interval_s
}

/// The pending and firing stretches of `history` inside `[from_s, to_s]`, one ending at
/// `to_s` while it lasts.
pub fn bands(history: &[HistoryRow], from_s: i64, to_s: i64) -> Vec<Band> {
    let mut out = Vec::new();
    let mut open: Option<(&'static str, i64)> = None;
    // A stretch still open at the end is drawn even when it began at `to_s` (it fired now).
    let close = |open: Option<(&'static str, i64)>, at_s: i64, out: &mut Vec<Band>| {
        if let Some((class, since)) = open
            && at_s > from_s
            && (since < to_s || (since == to_s && at_s == to_s))
        {
            let (start, end) = (since.max(from_s), at_s.min(to_s));
            let label = format!("{class} {}–{} UTC", clock::hh_mm(start), clock::hh_mm(end));
            out.push(Band { from_s: start, to_s: end, label, class });
        }
    };
    for row in history {
        let state = match row.state.as_str() {
            "pending" => Some("pending"),
            "firing" => Some("firing"),
            _ => None,
        };
        if state != open.map(|(class, _)| class) {
            close(open, row.at_s, &mut out);
            open = state.map(|class| (class, row.at_s));
        }
    }
    close(open, to_s, &mut out);
    out
}

/// A mark for each transition inside `[from_s, to_s]`.
pub fn marks(history: &[HistoryRow], from_s: i64, to_s: i64) -> Vec<Mark> {
    history
        .iter()
        .filter(|row| row.at_s >= from_s && row.at_s <= to_s)
        .map(|row| {
            let class = transition_class(&row.transition);
            Mark {
                at_s: row.at_s,
                label: format!("{} at {} UTC", words(&row.transition), clock::hh_mm(row.at_s)),
                class,
            }
        })
        .collect()
}

/// A transition as a CSS class (known names only: the class goes into markup unescaped).
pub fn transition_class(transition: &str) -> &'static str {
    match transition {
        "pending" => "pending",
        "firing" => "firing",
        "resolved" => "resolved",
        "cancelled" => "cancelled",
        "acked" => "acked",
        "unacked" => "unacked",
        "severity_changed" => "severity",
        "reset_by_reload" => "reset",
        _ => "other",
    }
}

/// A transition as people say it.
pub fn words(transition: &str) -> &str {
    match transition {
        "pending" => "pending",
        "firing" => "firing",
        "resolved" => "resolved",
        "cancelled" => "cancelled before firing",
        "acked" => "acknowledged",
        "unacked" => "acknowledgement withdrawn",
        "severity_changed" => "severity changed",
        "reset_by_reload" => "reset by a rule reload",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at_s: i64, transition: &str, state: &str) -> HistoryRow {
        HistoryRow {
            alert_id: "a".into(),
            at_s,
            transition: transition.into(),
            state: state.into(),
            severity: None,
            value: None,
            threshold: None,
            actor: None,
            note: None,
        }
    }

    fn history() -> Vec<HistoryRow> {
        vec![
            row(1000, "pending", "pending"),
            row(1060, "firing", "firing"),
            row(1200, "resolved", "inactive"),
            row(5000, "pending", "pending"),
            row(5030, "firing", "firing"),
            row(5100, "acked", "firing"),
        ]
    }

    #[test]
    fn episodes_run_from_leaving_inactive_to_coming_back() {
        let found = episodes(&history());
        assert_eq!(found, vec![Episode { start_s: 1000, end_s: Some(1200) }, Episode { start_s: 5000, end_s: None }]);
        assert!(found[0].holds(1200) && !found[0].holds(1201) && found[1].holds(9999));
    }

    #[test]
    fn the_chart_spans_the_episode_with_margins_or_the_last_hour() {
        let now = 100_000;
        assert_eq!(span(None, now), (now - 3600, now));
        // A resolved episode: 15 minutes either side, widened back to an hour.
        let resolved = Episode { start_s: 50_000, end_s: Some(50_600) };
        assert_eq!(span(Some(&resolved), now), (51_500 - 3600, 51_500));
        // A long one still going: from 15 minutes before it began, up to a day.
        let long = Episode { start_s: now - 7200, end_s: None };
        assert_eq!(span(Some(&long), now), (now - 8100, now));
        let very_long = Episode { start_s: now - 200_000, end_s: None };
        assert_eq!(span(Some(&very_long), now), (now - 86_400, now));
        assert_eq!(step(0, 3600, 10), 40);
        assert_eq!(step(0, 600, 10), 10);
    }

    #[test]
    fn bands_shade_pending_and_firing_and_the_open_one_reaches_the_end() {
        let bands = bands(&history(), 900, 6000);
        let spans: Vec<(&str, i64, i64)> = bands.iter().map(|b| (b.class, b.from_s, b.to_s)).collect();
        assert_eq!(
            spans,
            vec![("pending", 1000, 1060), ("firing", 1060, 1200), ("pending", 5000, 5030), ("firing", 5030, 6000)]
        );
        // Clipped to the span; an ack does not split the firing band.
        let clipped: Vec<(i64, i64)> =
            super::bands(&history(), 1100, 5050).iter().map(|b| (b.from_s, b.to_s)).collect();
        assert_eq!(clipped, vec![(1100, 1200), (5000, 5030), (5030, 5050)]);
        let marks = marks(&history(), 1100, 6000);
        assert_eq!(marks.iter().map(|m| m.class).collect::<Vec<_>>(), vec!["resolved", "pending", "firing", "acked"]);
    }
}
