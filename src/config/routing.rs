//! The `routes:` and `policies:` sections: which alerts go where, how they are grouped, and
//! how a group escalates until someone acknowledges it.
//!
//! ```yaml
//! routes:                                 # in order, first match wins
//!   - name: platform-critical
//!     match: '{team="platform",severity="critical"}'
//!     policy: page-platform
//!     group_by: [alertname, service]      # one message per group, not per alert
//!     group_wait: 30s                     # gather a new group's alerts this long first
//!     group_interval: 5m                  # then batch additions at most this often
//!     repeat_interval: 4h                 # re-send a still-firing group after this long
//!   - policy: default                     # no match: the catch-all
//! policies:
//!   page-platform:
//!     steps:
//!       - {after: 0s, notify: [platform-slack]}
//!       - {after: 10m, notify: [oncall-email]}
//!     repeat: 30m                         # the last step again until acknowledged
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Delay, Seconds};
use crate::query::selector::{Matcher, Selector};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    name: Option<String>,
    #[serde(rename = "match")]
    matchers: Option<String>,
    policy: String,
    group_by: Option<Vec<String>>,
    group_wait: Option<Delay>,
    group_interval: Option<Seconds>,
    repeat_interval: Option<Seconds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    steps: Vec<RawStep>,
    repeat: Option<Seconds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    after: Delay,
    notify: Vec<String>,
}

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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub after_s: i64,
    pub notify: Vec<String>,
}

/// Routes in order and the policies they name.
#[derive(Debug, Clone)]
pub struct Routing {
    pub routes: Vec<Route>,
    pub policies: BTreeMap<String, Policy>,
}

impl Routing {
    /// The route names a rule's `route:` may use.
    pub fn route_names(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.name.clone()).collect()
    }

    /// With nothing configured: every alert, grouped by rule, to every notifier at once.
    pub fn default_for(notifiers: &[String]) -> Routing {
        let policy = Policy { steps: vec![Step { after_s: 0, notify: notifiers.to_vec() }], repeat_s: None };
        Routing { routes: vec![default_route("default".into())], policies: [("default".to_owned(), policy)].into() }
    }
}

fn default_route(policy: String) -> Route {
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

pub(super) fn validate(
    routes: Vec<RawRoute>,
    policies: BTreeMap<String, RawPolicy>,
    notifiers: &[String],
    problems: &mut Vec<String>,
) -> Routing {
    if routes.is_empty() && policies.is_empty() {
        return Routing::default_for(notifiers);
    }
    let mut out = Routing { routes: Vec::new(), policies: BTreeMap::new() };
    for (name, raw) in policies {
        let what = format!("policies.{name}");
        if raw.steps.is_empty() {
            problems.push(format!("{what}.steps: give at least one step, e.g. {{after: 0s, notify: [slack]}}"));
        }
        let mut previous = -1;
        for (idx, step) in raw.steps.iter().enumerate() {
            if step.after.0 <= previous {
                problems.push(format!("{what}.steps[{idx}].after must be later than the step before it"));
            }
            previous = step.after.0;
            if step.notify.is_empty() {
                problems.push(format!("{what}.steps[{idx}].notify: name at least one notifier"));
            }
            for notifier in &step.notify {
                if !notifiers.contains(notifier) {
                    problems.push(format!(
                        "{what}.steps[{idx}].notify: unknown notifier {notifier:?}; configured: {}",
                        notifiers.join(", ")
                    ));
                }
            }
        }
        if raw.repeat.is_some_and(|r| r.0 <= 0) {
            problems.push(format!("{what}.repeat must be positive"));
        }
        let steps = raw.steps.into_iter().map(|s| Step { after_s: s.after.0, notify: s.notify }).collect();
        out.policies.insert(name, Policy { steps, repeat_s: raw.repeat.map(|r| r.0) });
    }
    let n_routes = routes.len();
    for (idx, raw) in routes.into_iter().enumerate() {
        let what = format!("routes[{idx}]");
        let matchers = match &raw.matchers {
            Some(text) => Selector::parse_matchers(text).unwrap_or_else(|e| {
                problems.push(format!("{what}.match: {e}"));
                Vec::new()
            }),
            None if idx + 1 < n_routes => {
                problems
                    .push(format!("{what}: only the last route may match everything; give it a match or move it last"));
                Vec::new()
            }
            None => Vec::new(),
        };
        if !out.policies.contains_key(&raw.policy) {
            let known: Vec<&str> = out.policies.keys().map(String::as_str).collect();
            problems.push(format!("{what}.policy: unknown policy {:?}; configured: {}", raw.policy, known.join(", ")));
        }
        let defaults = default_route(raw.policy.clone());
        let route = Route {
            name: raw.name.unwrap_or_else(|| format!("route-{idx}")),
            matchers,
            policy: raw.policy,
            group_by: raw.group_by.unwrap_or(defaults.group_by),
            group_wait_s: raw.group_wait.map_or(defaults.group_wait_s, |s| s.0),
            group_interval_s: raw.group_interval.map_or(defaults.group_interval_s, |s| s.0).max(1),
            repeat_interval_s: raw.repeat_interval.map_or(defaults.repeat_interval_s, |s| s.0).max(1),
        };
        if out.routes.iter().any(|r: &Route| r.name == route.name) {
            problems.push(format!("{what}.name: {:?} is used twice", route.name));
        }
        out.routes.push(route);
    }
    if out.routes.is_empty() {
        problems.push("routes: policies are configured but no route sends alerts to them".into());
    }
    out
}
