//! Where alerts go: routes in order (which alerts, how grouped, how often re-sent) and the
//! escalation policies they name (steps until acknowledged, windows with other steps). The
//! config's `routes:` and `policies:` sections are read into these (`config/routing.rs`).

use std::collections::BTreeMap;

use super::window::TimeWindow;
use crate::oncall::Schedule;
use crate::query::selector::Matcher;

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub policy: String,
    pub group_by: Vec<String>,
    pub group_wait_s: i64,
    pub group_interval_s: i64,
    pub repeat_interval_s: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub steps: Vec<Step>,
    pub repeat_s: Option<i64>,
    /// Other steps while a window holds; the first window holding when a group starts wins.
    pub windows: Vec<PolicyWindow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyWindow {
    pub name: String,
    pub window: TimeWindow,
    pub steps: Vec<Step>,
    pub repeat_s: Option<i64>,
}

impl Policy {
    /// The window a group starting at `at_s` follows, if any.
    pub fn window_at(&self, at_s: i64) -> Option<&PolicyWindow> {
        let at = jiff::Timestamp::from_second(at_s).ok()?;
        self.windows.iter().find(|w| w.window.contains(at))
    }

    /// The steps and repeat of the window named `window`, or the policy's own.
    pub fn steps_for(&self, window: Option<&str>) -> (&[Step], Option<i64>) {
        match window.and_then(|name| self.windows.iter().find(|w| w.name == name)) {
            Some(w) => (&w.steps, w.repeat_s),
            None => (&self.steps, self.repeat_s),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub after_s: i64,
    pub notify: Vec<String>,
    /// Whose on-call the step's messages mention.
    pub oncall: Vec<OnCallTarget>,
}

/// The current on-call of a schedule, or the next in line.
#[derive(Debug, Clone, PartialEq)]
pub struct OnCallTarget {
    pub schedule: String,
    pub next: bool,
}

/// Routes in order and the policies they name.
#[derive(Debug, Clone)]
pub struct Routing {
    pub routes: Vec<Route>,
    pub policies: BTreeMap<String, Policy>,
    /// On-call schedules steps may target.
    pub schedules: BTreeMap<String, Schedule>,
}

impl Routing {
    /// The route names a rule's `route:` may use.
    pub fn route_names(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.name.clone()).collect()
    }

    /// With nothing configured: every alert, grouped by rule, to every notifier at once.
    pub fn default_for(notifiers: &[String]) -> Routing {
        let step = Step { after_s: 0, notify: notifiers.to_vec(), oncall: Vec::new() };
        let policy = Policy { steps: vec![step], repeat_s: None, windows: Vec::new() };
        Routing {
            routes: vec![default_route("default".into())],
            policies: [("default".to_owned(), policy)].into(),
            schedules: BTreeMap::new(),
        }
    }
}

/// The catch-all route to `policy`: grouped by rule, the default waits.
pub fn default_route(policy: String) -> Route {
    Route {
        name: "default".into(),
        matchers: Vec::new(),
        policy,
        group_by: vec!["alertname".into()],
        group_wait_s: 30,
        group_interval_s: 300,
        repeat_interval_s: 4 * 3600,
    }
}
