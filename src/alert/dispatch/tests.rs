//! The escalation timeline on a controlled clock.

use super::*;
use crate::alert::routing::{Policy, Step};
use crate::query::selector::Selector;

const T0: i64 = 1_800_000_000;

fn routing() -> Routing {
    let route = |name: &str, matchers: &str, policy: &str| Route {
        name: name.into(),
        matchers: if matchers.is_empty() { Vec::new() } else { Selector::parse_matchers(matchers).unwrap() },
        policy: policy.into(),
        group_by: vec!["alertname".into(), "service".into()],
        group_wait_s: 30,
        group_interval_s: 300,
        repeat_interval_s: 4 * 3600,
    };
    let page = Policy {
        steps: vec![
            Step { after_s: 0, notify: vec!["slack".into()], oncall: Vec::new() },
            Step { after_s: 600, notify: vec!["email".into()], oncall: Vec::new() },
            Step { after_s: 1800, notify: vec!["slack".into(), "phone".into()], oncall: Vec::new() },
        ],
        repeat_s: Some(900),
        windows: Vec::new(),
    };
    let quiet = Policy {
        steps: vec![Step { after_s: 0, notify: vec!["log".into()], oncall: Vec::new() }],
        repeat_s: None,
        windows: Vec::new(),
    };
    Routing {
        routes: vec![route("critical", r#"{severity="critical"}"#, "page"), route("rest", "", "quiet")],
        policies: [("page".to_owned(), page), ("quiet".to_owned(), quiet)].into(),
        schedules: BTreeMap::new(),
    }
}

fn change(id: &str, service: &str, severity: &str, firing: bool) -> AlertChange {
    let labels: BTreeMap<String, String> = [
        ("alertname".to_owned(), "ApiLatencyP99".to_owned()),
        ("service".to_owned(), service.to_owned()),
        ("severity".to_owned(), severity.to_owned()),
        ("endpoint".to_owned(), id.to_owned()),
    ]
    .into();
    AlertChange {
        id: id.into(),
        route: None,
        summary: AlertSummary {
            rule: "ApiLatencyP99".into(),
            state: if firing { "firing" } else { "resolved" }.into(),
            severity: Some(severity.into()),
            labels: labels.clone(),
            value: Some(0.4),
            threshold: Some(0.2),
            annotations: BTreeMap::new(),
            since_s: Some(T0),
            url: None,
        },
        labels,
        firing,
    }
}

/// (notifier, kind, number of alerts) of what `tick` sent.
fn sent(out: &[Outgoing]) -> Vec<(String, Kind, usize)> {
    out.iter().map(|o| (o.notifier.clone(), o.message.kind, o.message.alerts.len())).collect()
}

fn s(notifier: &str, kind: Kind, n: usize) -> (String, Kind, usize) {
    (notifier.to_owned(), kind, n)
}

#[test]
fn escalates_step_by_step_until_acknowledged_then_announces_the_ack() {
    let mut d = Dispatcher::new(routing(), Vec::new());
    d.alert(change("/vendors", "api", "critical", true), T0);
    assert_eq!(d.tick(T0), vec![], "group_wait gathers first");
    // A second alert of the same group inside group_wait: one message with both.
    d.alert(change("/search", "api", "critical", true), T0 + 10);
    assert_eq!(d.next_wake(), Some(T0 + 30));
    assert_eq!(sent(&d.tick(T0 + 30)), vec![s("slack", Kind::Firing, 2)]);
    assert_eq!(d.tick(T0 + 599), vec![]);
    assert_eq!(d.next_wake(), Some(T0 + 600));
    let escalated = d.tick(T0 + 600);
    assert_eq!(sent(&escalated), vec![s("email", Kind::Escalated, 2)]);
    assert!(escalated[0].message.text.as_deref().unwrap().contains("not acknowledged after 10 min"));
    // Acknowledged before step 2 (at 30 min): everyone paged hears of it, step 2 never comes.
    assert!(d.ack("/search", "ana", T0 + 700));
    let acked = d.tick(T0 + 700);
    assert_eq!(sent(&acked), vec![s("email", Kind::Acked, 2), s("slack", Kind::Acked, 2)]);
    assert!(acked[0].message.text.as_deref().unwrap().contains("ana"));
    assert_eq!(d.tick(T0 + 1800), vec![]);
    assert_eq!(d.tick(T0 + 10 * 3600), vec![]);
    // Resolving tells everyone paged, and closes the group.
    d.alert(change("/vendors", "api", "critical", false), T0 + 11 * 3600);
    assert_eq!(d.tick(T0 + 11 * 3600), vec![], "one alert still fires");
    d.alert(change("/search", "api", "critical", false), T0 + 11 * 3600 + 5);
    let resolved = d.tick(T0 + 11 * 3600 + 5);
    assert_eq!(sent(&resolved), vec![s("email", Kind::Resolved, 2), s("slack", Kind::Resolved, 2)]);
    assert!(d.groups.is_empty());
    assert_eq!(d.next_wake(), None);
}

#[test]
fn the_last_step_repeats_until_acknowledged() {
    let mut d = Dispatcher::new(routing(), Vec::new());
    d.alert(change("/vendors", "api", "critical", true), T0);
    let mut pages = Vec::new();
    for t in (T0..T0 + 3600).step_by(10) {
        pages.extend(d.tick(t).into_iter().map(|o| (t - T0, o.notifier, o.message.kind)));
    }
    let expected: Vec<(i64, String, Kind)> = vec![
        (30, "slack".into(), Kind::Firing),
        (600, "email".into(), Kind::Escalated),
        (1800, "slack".into(), Kind::Escalated),
        (1800, "phone".into(), Kind::Escalated),
        (2700, "slack".into(), Kind::Repeat),
        (2700, "phone".into(), Kind::Repeat),
    ];
    assert_eq!(pages, expected);
    d.ack("/vendors", "ana", T0 + 3600);
    assert_eq!(sent(&d.tick(T0 + 3600)).len(), 3, "slack, email and phone hear of the ack");
    assert_eq!(d.tick(T0 + 3600 + 900), vec![]);
}

#[test]
fn additions_are_batched_by_group_interval_and_quiet_groups_repeat_by_repeat_interval() {
    let mut d = Dispatcher::new(routing(), Vec::new());
    d.alert(change("/a", "web", "warning", true), T0);
    assert_eq!(sent(&d.tick(T0 + 30)), vec![s("log", Kind::Firing, 1)]);
    d.alert(change("/b", "web", "warning", true), T0 + 40);
    d.alert(change("/c", "web", "warning", true), T0 + 50);
    assert_eq!(d.tick(T0 + 100), vec![], "additions wait for group_interval after the last message");
    assert_eq!(sent(&d.tick(T0 + 330)), vec![s("log", Kind::Firing, 3)]);
    // A different service is a different group; a critical alert takes the other route.
    d.alert(change("/a", "search", "warning", true), T0 + 400);
    d.alert(change("/x", "web", "critical", true), T0 + 400);
    assert_eq!(d.groups.len(), 3);
    assert_eq!(sent(&d.tick(T0 + 430)), vec![s("slack", Kind::Firing, 1), s("log", Kind::Firing, 1)]);
    // Still firing 4 h after its last message: sent again (the web group first).
    let before = d.tick(T0 + 330 + 4 * 3600 - 1);
    assert!(!before.iter().any(|o| o.notifier == "log"), "{:?}", sent(&before));
    let repeat = d.tick(T0 + 330 + 4 * 3600);
    assert_eq!(
        repeat
            .iter()
            .filter(|o| o.notifier == "log")
            .map(|o| (o.message.kind, o.message.alerts.len()))
            .collect::<Vec<_>>(),
        vec![(Kind::Repeat, 3)]
    );
}

#[test]
fn an_alert_resolved_within_group_wait_pages_nobody() {
    let mut d = Dispatcher::new(routing(), Vec::new());
    d.alert(change("/a", "web", "critical", true), T0);
    d.alert(change("/a", "web", "critical", false), T0 + 10);
    assert_eq!(d.tick(T0 + 10), vec![]);
    assert!(d.groups.is_empty());
}

#[test]
fn ids_are_stable_and_state_round_trips_so_a_replay_queues_nothing_new() {
    let mut d = Dispatcher::new(routing(), Vec::new());
    d.alert(change("/a", "web", "critical", true), T0);
    let first = d.tick(T0 + 30);
    let changes = d.take_changes();
    assert_eq!(changes.len(), 1);
    // Restored from what was saved, the dispatcher carries on from there.
    let saved: Vec<(String, Group)> = changes
        .into_iter()
        .map(|(k, g)| {
            let json = serde_json::to_string(&g.unwrap()).unwrap();
            (k, serde_json::from_str(&json).unwrap())
        })
        .collect();
    let mut restored = Dispatcher::new(routing(), saved);
    assert_eq!(restored.tick(T0 + 31), vec![], "step 0 was already paged");
    let escalated = restored.tick(T0 + 600);
    assert_eq!(sent(&escalated), vec![s("email", Kind::Escalated, 1)]);
    assert_ne!(escalated[0].id, first[0].id);
    assert!(
        first[0].id.ends_with("-1-slack") && escalated[0].id.ends_with("-2-email"),
        "{} {}",
        first[0].id,
        escalated[0].id
    );
}

#[test]
fn a_group_that_fires_again_after_resolving_gets_new_ids() {
    let mut d = Dispatcher::new(routing(), Vec::new());
    d.alert(change("/a", "web", "critical", true), T0);
    let mut first: Vec<String> = d.tick(T0 + 30).into_iter().map(|o| o.id).collect();
    d.alert(change("/a", "web", "critical", false), T0 + 60);
    first.extend(d.tick(T0 + 60).into_iter().map(|o| o.id));
    assert_eq!(first.len(), 2, "a page and its resolve");
    assert!(d.groups.is_empty());
    // The same group fires again: its pages are new notifications, not replays of the old ids
    // (the outbox keeps one row per id, so a reused id would never be sent).
    d.alert(change("/a", "web", "critical", true), T0 + 120);
    let again = d.tick(T0 + 150);
    assert_eq!(sent(&again), vec![s("slack", Kind::Firing, 1)]);
    assert!(!first.contains(&again[0].id), "{} reused from {first:?}", again[0].id);
}

#[test]
fn later_messages_follow_up_the_first_one_each_notifier_got() {
    let mut d = Dispatcher::new(routing(), Vec::new());
    d.alert(change("/a", "web", "critical", true), T0);
    let page = d.tick(T0 + 30);
    let escalated = d.tick(T0 + 600);
    let second = d.tick(T0 + 1800);
    assert_eq!(sent(&second), vec![s("slack", Kind::Escalated, 1), s("phone", Kind::Escalated, 1)]);
    assert_eq!(page[0].message.thread, None, "the first message starts the thread");
    assert_eq!(escalated[0].message.thread, None, "email's first message starts its own thread");
    assert_eq!(second[0].message.thread.as_deref(), Some(page[0].id.as_str()));
    assert_eq!(second[1].message.thread, None);
    d.alert(change("/a", "web", "critical", false), T0 + 1900);
    let resolved = d.tick(T0 + 1900);
    let thread_of = |notifier: &str| {
        resolved.iter().find(|o| o.notifier == notifier).and_then(|o| o.message.thread.clone()).unwrap()
    };
    assert_eq!(thread_of("email"), escalated[0].id);
    assert_eq!(thread_of("slack"), page[0].id);
    assert_eq!(thread_of("phone"), second[1].id);
}

fn with_schedule(mut routing: Routing) -> Routing {
    use crate::oncall::{Person, ShiftLength};
    let person = |id: &str| Person {
        id: id.into(),
        name: id.into(),
        slack: Some(format!("U{}", id.to_uppercase())),
        email: None,
    };
    // T0 is 2027-01-15 08:00 UTC; the daily handoff is at 08:16:40, 1000 s later.
    let schedule = Schedule {
        name: "platform".into(),
        time_zone: jiff::tz::TimeZone::UTC,
        rotation: vec![person("ana"), person("ben"), person("cara")],
        first_handoff: "2027-01-14T08:16:40".parse().unwrap(),
        shift: ShiftLength::Days(1),
        overrides: Vec::new(),
    };
    routing.schedules.insert("platform".into(), schedule);
    routing
}

fn target(schedule: &str, next: bool) -> OnCallTarget {
    OnCallTarget { schedule: schedule.into(), next }
}

#[test]
fn steps_name_whoever_is_on_call_when_they_page_and_follow_ups_reach_everyone_named() {
    let mut routing = with_schedule(routing());
    let page = routing.policies.get_mut("page").unwrap();
    page.steps[0].oncall = vec![target("platform", false)];
    page.steps[1].oncall = vec![target("platform", true)];
    page.steps[2].oncall = vec![target("platform", false)];
    let mut d = Dispatcher::new(routing, Vec::new());
    d.alert(change("/a", "web", "critical", true), T0);
    let named = |out: &[Outgoing]| -> Vec<Vec<String>> {
        out.iter().map(|o| o.message.oncall.iter().map(|m| m.person.id.clone()).collect()).collect()
    };
    assert_eq!(named(&d.tick(T0 + 30)), vec![vec!["ana"]], "ana's shift until 08:16:40");
    assert_eq!(named(&d.tick(T0 + 600)), vec![vec!["ben"]], "the next in line");
    // The handoff came between the steps: step 2 names the new on-call, to both notifiers.
    let third = d.tick(T0 + 1800);
    assert_eq!(named(&third), vec![vec!["ben"], vec!["ben"]]);
    assert!(third[0].message.oncall[0].person.slack.as_deref() == Some("UBEN") && !third[0].message.oncall[0].next);
    assert!(d.ack("/a", "ben", T0 + 1900));
    let acked = d.tick(T0 + 1900);
    assert_eq!(acked.len(), 3, "slack, email and phone were paged: {acked:?}");
    assert!(acked.iter().all(|o| o.message.kind == Kind::Acked));
    assert!(named(&acked).iter().all(|n| n == &vec!["ana", "ben"]), "everyone named hears of the ack: {acked:?}");
}

#[test]
fn a_policy_window_holding_when_a_group_starts_sets_its_steps_for_the_episode() {
    use crate::alert::window::TimeWindow;
    let mut routing = routing();
    // T0 is a Friday, 08:00 UTC: inside "fri 08:00-09:00".
    let mut days = [false; 7];
    days[4] = true;
    let window = TimeWindow { time_zone: jiff::tz::TimeZone::UTC, days, hours: vec![(8 * 60, 9 * 60)] };
    let steps = vec![Step { after_s: 0, notify: vec!["phone".into()], oncall: Vec::new() }];
    routing.policies.get_mut("page").unwrap().windows.push(crate::alert::routing::PolicyWindow {
        name: "event".into(),
        window,
        steps,
        repeat_s: Some(120),
    });
    let mut d = Dispatcher::new(routing, Vec::new());
    d.alert(change("/a", "web", "critical", true), T0);
    assert_eq!(sent(&d.tick(T0 + 30)), vec![s("phone", Kind::Firing, 1)]);
    // The window ends at 09:00, the episode keeps its steps: the short repeat goes on.
    assert_eq!(sent(&d.tick(T0 + 3600)), vec![s("phone", Kind::Repeat, 1)]);
    assert_eq!(d.tick(T0 + 3660), vec![]);
    // A group starting outside the window follows the policy's own steps.
    d.alert(change("/b", "api", "critical", true), T0 + 3700);
    let out: Vec<Outgoing> = d.tick(T0 + 3730).into_iter().filter(|o| o.subject.contains("api")).collect();
    assert_eq!(sent(&out), vec![s("slack", Kind::Firing, 1)]);
}

#[test]
fn re_sends_to_everyone_paged_mention_whoever_is_on_call_now() {
    let mut routing = with_schedule(routing());
    routing.policies.get_mut("quiet").unwrap().steps[0].oncall = vec![target("platform", false)];
    let mut d = Dispatcher::new(routing, Vec::new());
    // A warning goes to the quiet policy: one step, no policy repeat; repeat_interval 4 h.
    d.alert(change("/a", "web", "warning", true), T0);
    let first = d.tick(T0 + 30);
    assert_eq!(first[0].message.oncall[0].person.id, "ana");
    // Four hours later, after the 08:16:40 handoff, the re-send names ben, not ana.
    let repeat = d.tick(T0 + 30 + 4 * 3600);
    assert_eq!(sent(&repeat), vec![s("log", Kind::Repeat, 1)]);
    let named: Vec<&str> = repeat[0].message.oncall.iter().map(|m| m.person.id.as_str()).collect();
    assert_eq!(named, ["ben"]);
}
