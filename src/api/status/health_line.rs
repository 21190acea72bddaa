//! perfwatch's own health in one line at the top of the status page: ready or why not, the
//! ingest rate (from its own recorded metrics), the flush lag, the outbox backlog, the
//! notifications that failed in the last hour and the last delivery error; red when something
//! is wrong, and saying so in words.

use std::fmt::Write;

use crate::html::escape;
use crate::store::outbox::RecentFailures;

/// Failed deliveries count on the line for this long, then age out: the line says what is
/// wrong now, the notifications list keeps the record.
pub(super) const FAILURES_WINDOW_S: i64 = 3600;
/// An error longer than this is cut (the notifications list has it whole).
const ERROR_CHARS: usize = 160;

/// What the line says.
pub(super) struct HealthLine {
    /// `Ok(flush lag in ms)`, or why perfwatch is not ready.
    pub readiness: Result<i64, String>,
    /// Accepted samples per second over the last 5 minutes, from perfwatch's own recorded
    /// metrics; `None` when there is no recording (yet).
    pub ingest_per_s: Option<f64>,
    /// Whether perfwatch records its own metrics (`storage.record_own_metrics`).
    pub recording: bool,
    /// Notifications waiting to be sent (pending or being sent).
    pub outbox_waiting: u64,
    /// Delivery failures in the last [`FAILURES_WINDOW_S`].
    pub failures: RecentFailures,
    pub now_s: i64,
}

impl HealthLine {
    /// Notifications waiting, from the outbox's counts per notifier and status.
    pub fn waiting(counts: &[(String, String, u64)]) -> u64 {
        counts.iter().filter(|(_, status, _)| matches!(status.as_str(), "pending" | "sending")).map(|(_, _, n)| n).sum()
    }

    pub fn render(&self, body: &mut String) {
        let wrong = self.readiness.is_err() || self.failures.failed > 0;
        let _ = write!(body, "<p class=\"health {}\">perfwatch: ", if wrong { "bad" } else { "ok" });
        match &self.readiness {
            Ok(lag_ms) => {
                let _ = write!(body, "<strong>ready</strong> · flush lag {:.1} s", *lag_ms as f64 / 1000.0);
            }
            Err(why) => {
                let _ = write!(body, "<strong>not ready</strong>: {}", escape(why));
            }
        }
        match self.ingest_per_s {
            Some(rate) => {
                let _ = write!(body, " · ingest {} samples/s", thousands(rate));
            }
            None if self.recording => body.push_str(" · no ingest rate recorded yet"),
            None => body.push_str(" · ingest rate not recorded (storage.record_own_metrics is off)"),
        }
        let _ = write!(body, " · outbox {} waiting", self.outbox_waiting);
        if self.failures.failed > 0 {
            let _ = write!(
                body,
                ", <strong>{} failed in the last hour</strong> (see /api/v1/notifications?status=failed)",
                self.failures.failed
            );
        }
        if let Some((notifier, error, at_s)) = &self.failures.last {
            let error: String = error.chars().take(ERROR_CHARS).collect();
            let _ = write!(
                body,
                " · last delivery error {} ago, {}: {}",
                crate::clock::elapsed(self.now_s - at_s),
                escape(notifier),
                escape(&error)
            );
        }
        body.push_str("</p>");
    }
}

/// A rate with thousands separated: `12,345`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (idx, digit) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_line_and_a_sick_one() {
        let counts = vec![
            ("slack".to_owned(), "pending".to_owned(), 2),
            ("slack".to_owned(), "sent".to_owned(), 40),
            ("slack".to_owned(), "failed".to_owned(), 7),
            ("mail".to_owned(), "sending".to_owned(), 1),
        ];
        let mut well = String::new();
        HealthLine {
            readiness: Ok(2100),
            ingest_per_s: Some(1_234_567.4),
            recording: true,
            outbox_waiting: HealthLine::waiting(&counts),
            failures: RecentFailures::default(),
            now_s: 1000,
        }
        .render(&mut well);
        assert_eq!(
            well,
            "<p class=\"health ok\">perfwatch: <strong>ready</strong> · flush lag 2.1 s · ingest 1,234,567 samples/s · outbox 3 waiting</p>"
        );
        let mut sick = String::new();
        HealthLine {
            readiness: Err("disk <full>".into()),
            ingest_per_s: None,
            recording: true,
            outbox_waiting: 0,
            failures: RecentFailures { failed: 4, last: Some(("slack".into(), "HTTP 500 <b>".into(), 880)) },
            now_s: 1000,
        }
        .render(&mut sick);
        assert!(sick.starts_with("<p class=\"health bad\">") && sick.contains("not ready</strong>: disk &lt;full&gt;"));
        assert!(sick.contains("no ingest rate recorded yet"));
        assert!(sick.contains("<strong>4 failed in the last hour</strong>"), "{sick}");
        assert!(sick.contains("last delivery error 2 min ago, slack: HTTP 500 &lt;b&gt;"), "{sick}");
    }
}
