//! The alert state machine, pure: (instance, verdict, now) → (instance, transition). Follows
//! Prometheus: a breach makes an instance pending, and firing once it has lasted `for`; a firing
//! instance stays firing for `keep_firing_for` after the breach ends, then resolves. A verdict
//! that could not be reached (too few samples) changes nothing.

use crate::model::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance (a rule and one group's labels) between evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub state: AlertState,
    pub severity: Option<Severity>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub pending_since_s: Option<i64>,
    pub firing_since_s: Option<i64>,
    pub last_breach_s: Option<i64>,
}

impl Default for Instance {
    fn default() -> Instance {
        Instance {
            state: AlertState::Inactive,
            severity: None,
            value: None,
            threshold: None,
            pending_since_s: None,
            firing_since_s: None,
            last_breach_s: None,
        }
    }
}

/// What one evaluation concluded for an instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Breach {
        severity: Severity,
        value: f64,
        threshold: f64,
    },
    Clear {
        value: Option<f64>,
    },
    /// Too few samples or nothing to divide by: no conclusion either way.
    Undecided,
}

/// A change worth recording (and, later, notifying).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    Pending,
    Firing,
    SeverityChanged {
        from: Severity,
        to: Severity,
    },
    /// A pending instance whose breach ended before `for`.
    Cancelled,
    Resolved,
}

/// The timing of a rule, as the state machine needs it.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub for_s: i64,
    pub keep_firing_for_s: i64,
}

pub fn step(current: &Instance, verdict: Verdict, now_s: i64, timing: Timing) -> (Instance, Option<Transition>) {
    let mut next = current.clone();
    match verdict {
        Verdict::Undecided => (next, None),
        Verdict::Breach { severity, value, threshold } => {
            next.value = Some(value);
            next.threshold = Some(threshold);
            next.last_breach_s = Some(now_s);
            let previous_severity = next.severity.replace(severity);
            match current.state {
                AlertState::Inactive if timing.for_s > 0 => {
                    next.state = AlertState::Pending;
                    next.pending_since_s = Some(now_s);
                    (next, Some(Transition::Pending))
                }
                AlertState::Inactive => fire(next, now_s, now_s),
                AlertState::Pending => {
                    let since = current.pending_since_s.unwrap_or(now_s);
                    if now_s - since >= timing.for_s { fire(next, since, now_s) } else { (next, None) }
                }
                AlertState::Firing => match previous_severity {
                    Some(from) if from != severity => (next, Some(Transition::SeverityChanged { from, to: severity })),
                    _ => (next, None),
                },
            }
        }
        Verdict::Clear { value } => {
            next.value = value;
            match current.state {
                AlertState::Inactive => (next, None),
                AlertState::Pending => (reset(next), Some(Transition::Cancelled)),
                AlertState::Firing => {
                    let last_breach = current.last_breach_s.unwrap_or(now_s);
                    if now_s - last_breach < timing.keep_firing_for_s {
                        (next, None)
                    } else {
                        (reset(next), Some(Transition::Resolved))
                    }
                }
            }
        }
    }
}

fn fire(mut next: Instance, pending_since_s: i64, now_s: i64) -> (Instance, Option<Transition>) {
    next.state = AlertState::Firing;
    next.pending_since_s = Some(pending_since_s);
    next.firing_since_s = Some(now_s);
    (next, Some(Transition::Firing))
}

fn reset(mut next: Instance) -> Instance {
    next.state = AlertState::Inactive;
    next.severity = None;
    next.pending_since_s = None;
    next.firing_since_s = None;
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing { for_s: 120, keep_firing_for_s: 60 };

    fn breach(severity: Severity, value: f64) -> Verdict {
        Verdict::Breach { severity, value, threshold: 0.2 }
    }

    /// Runs verdicts at the given times and returns the state and transition after each.
    fn run(timing: Timing, steps: &[(i64, Verdict)]) -> Vec<(AlertState, Option<Transition>)> {
        let mut instance = Instance::default();
        steps
            .iter()
            .map(|(now, verdict)| {
                let (next, transition) = step(&instance, *verdict, *now, timing);
                instance = next;
                (instance.state, transition)
            })
            .collect()
    }

    #[test]
    fn pending_then_firing_after_for() {
        use AlertState::*;
        let got = run(
            TIMING,
            &[
                (0, breach(Severity::Warning, 0.3)),
                (60, breach(Severity::Warning, 0.3)),
                (120, breach(Severity::Warning, 0.3)),
                (150, breach(Severity::Critical, 0.5)),
            ],
        );
        assert_eq!(
            got,
            vec![
                (Pending, Some(Transition::Pending)),
                (Pending, None),
                (Firing, Some(Transition::Firing)),
                (Firing, Some(Transition::SeverityChanged { from: Severity::Warning, to: Severity::Critical })),
            ]
        );
    }

    #[test]
    fn a_short_breach_is_cancelled_and_undecided_changes_nothing() {
        use AlertState::*;
        let got = run(
            TIMING,
            &[(0, breach(Severity::Warning, 0.3)), (30, Verdict::Undecided), (60, Verdict::Clear { value: Some(0.1) })],
        );
        assert_eq!(
            got,
            vec![(Pending, Some(Transition::Pending)), (Pending, None), (Inactive, Some(Transition::Cancelled))]
        );
    }

    #[test]
    fn keep_firing_for_delays_the_resolve() {
        use AlertState::*;
        let no_for = Timing { for_s: 0, keep_firing_for_s: 60 };
        let got = run(
            no_for,
            &[
                (0, breach(Severity::Critical, 0.3)),
                (30, Verdict::Clear { value: Some(0.1) }),
                (59, Verdict::Clear { value: Some(0.1) }),
                (60, Verdict::Clear { value: Some(0.1) }),
                (70, Verdict::Clear { value: None }),
            ],
        );
        assert_eq!(
            got,
            vec![
                (Firing, Some(Transition::Firing)),
                (Firing, None),
                (Firing, None),
                (Inactive, Some(Transition::Resolved)),
                (Inactive, None),
            ]
        );
    }

    #[test]
    fn firing_keeps_its_start_and_value_while_it_lasts() {
        let (pending, _) = step(&Instance::default(), breach(Severity::Warning, 0.3), 10, TIMING);
        let (firing, _) = step(&pending, breach(Severity::Warning, 0.4), 130, TIMING);
        assert_eq!((firing.pending_since_s, firing.firing_since_s, firing.value), (Some(10), Some(130), Some(0.4)));
        let (still, transition) = step(&firing, breach(Severity::Warning, 0.35), 200, TIMING);
        assert_eq!((still.firing_since_s, transition), (Some(130), None));
    }
}
