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
//!     windows:                            # optional: other steps at some times
//!       - name: event-days
//!         time_zone: Europe/London
//!         days: [fri, sat, sun]
//!         hours: ["10:00-23:00"]
//!         steps:
//!           - {after: 0s, notify: [platform-slack], oncall: [platform]}
//!           - {after: 3m, notify: [platform-slack, oncall-email], oncall: [platform, platform/next]}
//!         repeat: 5m
//! ```
//!
//! A step's `oncall:` names schedules whose current on-call (or, with `/next`, the next in
//! line) the step's messages mention: an @mention in Slack, a recipient of the mail. A policy's
//! window is chosen when a group starts firing and kept for that episode.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Delay, Seconds};
use crate::alert::routing::{OnCallTarget, Policy, PolicyWindow, Route, Routing, Step, default_route};
use crate::alert::window::{self, TimeWindow};
use crate::oncall::Schedule;
use crate::query::selector::Selector;

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
    #[serde(default)]
    windows: Vec<RawWindow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    name: String,
    time_zone: String,
    /// Every day when omitted.
    #[serde(default)]
    days: Vec<String>,
    /// All day when omitted.
    #[serde(default)]
    hours: Vec<String>,
    steps: Vec<RawStep>,
    repeat: Option<Seconds>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    after: Delay,
    notify: Vec<String>,
    #[serde(default)]
    oncall: Vec<String>,
}

/// How a notifier can reach a person: by Slack member ID, by email address.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Reach {
    pub slack: bool,
    pub email: bool,
}

pub(super) fn validate(
    routes: Vec<RawRoute>,
    policies: BTreeMap<String, RawPolicy>,
    reach: &BTreeMap<String, Reach>,
    schedules: BTreeMap<String, Schedule>,
    problems: &mut Vec<String>,
) -> Routing {
    let notifiers: Vec<String> = reach.keys().cloned().collect();
    let notifiers = notifiers.as_slice();
    if routes.is_empty() && policies.is_empty() {
        return Routing { schedules, ..Routing::default_for(notifiers) };
    }
    let mut out = Routing { routes: Vec::new(), policies: BTreeMap::new(), schedules };
    for (name, raw) in policies {
        let what = format!("policies.{name}");
        let steps = checked_steps(&what, raw.steps, reach, &out.schedules, problems);
        let repeat_s = repeat(&what, raw.repeat, problems);
        let mut windows = Vec::new();
        for (idx, w) in raw.windows.into_iter().enumerate() {
            let what = format!("{what}.windows[{idx}]");
            let window = time_window(&what, &w.time_zone, &w.days, &w.hours, problems);
            if windows.iter().any(|other: &PolicyWindow| other.name == w.name) {
                problems.push(format!("{what}.name: {:?} is used twice", w.name));
            }
            let steps = checked_steps(&what, w.steps, reach, &out.schedules, problems);
            // Without its own `repeat`, a window repeats as the policy does.
            let repeat_s = repeat(&what, w.repeat, problems).or(repeat_s);
            if let Some(window) = window {
                windows.push(PolicyWindow { name: w.name, window, steps, repeat_s });
            }
        }
        out.policies.insert(name, Policy { steps, repeat_s, windows });
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

/// A policy's (or window's) steps, checked against the notifiers and schedules.
fn checked_steps(
    what: &str,
    raw: Vec<RawStep>,
    reach: &BTreeMap<String, Reach>,
    schedules: &BTreeMap<String, Schedule>,
    problems: &mut Vec<String>,
) -> Vec<Step> {
    let notifiers: Vec<String> = reach.keys().cloned().collect();
    if raw.is_empty() {
        problems.push(format!("{what}.steps: give at least one step, e.g. {{after: 0s, notify: [slack]}}"));
    }
    let mut previous = -1;
    let mut out = Vec::new();
    for (idx, step) in raw.into_iter().enumerate() {
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
        let mut oncall = Vec::new();
        for target in &step.oncall {
            let (schedule, next) = match target.split_once('/') {
                Some((schedule, "next")) => (schedule, true),
                Some(_) => {
                    problems.push(format!("{what}.steps[{idx}].oncall: {target:?}: write SCHEDULE or SCHEDULE/next"));
                    continue;
                }
                None => (target.as_str(), false),
            };
            match schedules.get(schedule) {
                Some(found) => {
                    unreachable_people(&format!("{what}.steps[{idx}]"), &step.notify, reach, found, next, problems)
                }
                None => {
                    let known: Vec<&str> = schedules.keys().map(String::as_str).collect();
                    problems.push(format!(
                        "{what}.steps[{idx}].oncall: unknown schedule {schedule:?}; schedules: {}",
                        if known.is_empty() { "none configured".to_owned() } else { known.join(", ") }
                    ));
                }
            }
            oncall.push(OnCallTarget { schedule: schedule.to_owned(), next });
        }
        out.push(Step { after_s: step.after.0, notify: step.notify, oncall });
    }
    out
}

/// Reports people of `schedule` whom none of the step's notifiers can reach (a Slack notifier
/// needs their member ID, an email notifier their address), and `/next` with nobody next.
fn unreachable_people(
    what: &str,
    notify: &[String],
    reach: &BTreeMap<String, Reach>,
    schedule: &Schedule,
    next: bool,
    problems: &mut Vec<String>,
) {
    let can = notify
        .iter()
        .filter_map(|n| reach.get(n))
        .fold(Reach::default(), |a, r| Reach { slack: a.slack || r.slack, email: a.email || r.email });
    if !can.slack && !can.email {
        problems.push(format!(
            "{what}.oncall: none of the step's notifiers ({}) can reach a person; add a slack or email notifier",
            notify.join(", ")
        ));
        return;
    }
    let mut people: Vec<&crate::oncall::Person> = schedule.rotation.iter().collect();
    people.extend(schedule.overrides.iter().map(|o| &o.person));
    let mut reported = std::collections::BTreeSet::new();
    for person in people {
        let reachable = (can.slack && person.slack.is_some()) || (can.email && person.email.is_some());
        if !reachable && reported.insert(person.id.clone()) {
            let needs = match (can.slack, can.email) {
                (true, true) => "slack member ID or email address",
                (true, false) => "slack member ID",
                _ => "email address",
            };
            problems.push(format!(
                "{what}.oncall: people.{} in schedule {} has no {needs}, so this step's notifiers cannot reach them",
                person.id, schedule.name
            ));
        }
    }
    let distinct: std::collections::BTreeSet<&str> = schedule.rotation.iter().map(|p| p.id.as_str()).collect();
    if next && distinct.len() < 2 {
        problems
            .push(format!("{what}.oncall: {}/next: the rotation has nobody besides the on-call person", schedule.name));
    }
}

fn repeat(what: &str, repeat: Option<Seconds>, problems: &mut Vec<String>) -> Option<i64> {
    if repeat.is_some_and(|r| r.0 <= 0) {
        problems.push(format!("{what}.repeat must be positive"));
    }
    repeat.map(|r| r.0)
}

fn time_window(
    what: &str,
    time_zone: &str,
    days: &[String],
    hours: &[String],
    problems: &mut Vec<String>,
) -> Option<TimeWindow> {
    let before = problems.len();
    let time_zone = jiff::tz::TimeZone::get(time_zone).map_err(|_| {
        problems.push(format!("{what}.time_zone: {time_zone:?} is not a time zone name (like Europe/London)"));
    });
    let mut set = [days.is_empty(); 7];
    for day in days {
        match window::parse_day(day) {
            Some(idx) => set[idx] = true,
            None => problems.push(format!("{what}.days: {day:?} is not a weekday (mon, tue, … sun)")),
        }
    }
    let mut ranges = Vec::new();
    for range in hours {
        match window::parse_hours(range) {
            Some(r) => ranges.push(r),
            None => problems.push(format!("{what}.hours: {range:?} is not a range like \"10:00-23:00\"")),
        }
    }
    if hours.is_empty() {
        ranges.push((0, 24 * 60));
    }
    let time_zone = time_zone.ok()?;
    (problems.len() == before).then_some(TimeWindow { time_zone, days: set, hours: ranges })
}
