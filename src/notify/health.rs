//! Whether each notifier is delivering: the heartbeat stops when one is not, so whoever
//! watches the heartbeat learns that perfwatch cannot page. A notifier is failing once it gave
//! up on a notification, or has kept failing (retrying) for [`FAILING_AFTER`], with no
//! delivery since. A delivery clears it. Pure decisions; the drainers record the outcomes.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// How long a notifier may keep retrying before it counts as failing (a brief outage of the
/// receiver is retried through without stopping the heartbeat).
pub const FAILING_AFTER_MS: i64 = 5 * 60 * 1000;

/// How an attempt ended, as far as health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Not delivered; will retry.
    Retried,
    /// Not delivered, given up.
    GaveUp,
}

#[derive(Debug, Default, Clone)]
struct NotifierState {
    /// The first unsuccessful attempt since the last delivery.
    failing_since_ms: Option<i64>,
    gave_up: bool,
    last_error: String,
}

/// Every notifier's recent outcome.
#[derive(Debug, Default)]
pub struct DeliveryHealth {
    notifiers: Mutex<BTreeMap<String, NotifierState>>,
}

impl DeliveryHealth {
    pub fn record(&self, notifier: &str, attempt: Attempt, error: &str, now_ms: i64) {
        let mut notifiers = self.notifiers.lock().unwrap_or_else(|e| e.into_inner());
        let state = notifiers.entry(notifier.to_owned()).or_default();
        match attempt {
            Attempt::Sent => *state = NotifierState::default(),
            Attempt::Retried | Attempt::GaveUp => {
                state.failing_since_ms.get_or_insert(now_ms);
                state.gave_up |= attempt == Attempt::GaveUp;
                state.last_error = error.to_owned();
            }
        }
    }

    /// A line per notifier that is failing at `now_ms`.
    pub fn problems(&self, now_ms: i64) -> Vec<String> {
        let notifiers = self.notifiers.lock().unwrap_or_else(|e| e.into_inner());
        notifiers
            .iter()
            .filter_map(|(name, state)| {
                let since = state.failing_since_ms?;
                let failing_s = (now_ms - since) / 1000;
                if state.gave_up {
                    Some(format!(
                        "notifier {name} gave up on a notification ({}) and has delivered nothing since",
                        state.last_error
                    ))
                } else if now_ms - since >= FAILING_AFTER_MS {
                    Some(format!("notifier {name} has failed every attempt for {failing_s} s ({})", state.last_error))
                } else {
                    None
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn giving_up_fails_at_once_and_a_delivery_clears_it() {
        let health = DeliveryHealth::default();
        health.record("slack", Attempt::Sent, "", 0);
        assert!(health.problems(0).is_empty());
        health.record("mail", Attempt::GaveUp, "550 no such user", 1_000);
        let problems = health.problems(1_000);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("mail gave up") && problems[0].contains("550 no such user"), "{problems:?}");
        health.record("mail", Attempt::Sent, "", 2_000);
        assert!(health.problems(2_000).is_empty());
    }

    #[test]
    fn retrying_counts_as_failing_only_after_a_while() {
        let health = DeliveryHealth::default();
        health.record("slack", Attempt::Retried, "503 busy", 10_000);
        health.record("slack", Attempt::Retried, "503 busy", 70_000);
        assert!(health.problems(10_000 + FAILING_AFTER_MS - 1).is_empty(), "a brief outage is retried through");
        let problems = health.problems(10_000 + FAILING_AFTER_MS);
        assert_eq!(problems, vec!["notifier slack has failed every attempt for 300 s (503 busy)".to_owned()]);
    }
}
