//! The `people:` and `schedules:` sections: who can be paged (a Slack member ID for @mentions,
//! an email address) and the on-call rotations they take turns in.
//!
//! ```yaml
//! people:
//!   ana: {name: Ana Silva, slack: U012ABCDEF, email: ana@wedding.example}
//!   ben: {name: Ben Okoro, slack: U02BCDEFGH, email: ben@wedding.example}
//! schedules:
//!   platform:
//!     time_zone: Europe/London
//!     rotation: [ana, ben]
//!     start: 2026-11-02          # the first shift starts this day at the handoff time
//!     handoff: "09:00"           # local time
//!     shift: 1w                  # 12h, 1d, 1w … on the local calendar
//!     overrides:
//!       - {person: ben, from: "2026-12-24 18:00", until: "2026-12-27 09:00"}   # local times
//! ```

use std::collections::BTreeMap;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::oncall::{Override, Person, Schedule, ShiftLength, parse_instant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerson {
    name: Option<String>,
    slack: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    time_zone: String,
    rotation: Vec<String>,
    start: String,
    #[serde(default = "default_handoff")]
    handoff: String,
    shift: String,
    #[serde(default)]
    overrides: Vec<RawOverride>,
}

fn default_handoff() -> String {
    "09:00".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    person: String,
    from: String,
    until: String,
}

pub(super) fn validate_people(
    raw: BTreeMap<String, RawPerson>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Person> {
    let mut out = BTreeMap::new();
    for (id, person) in raw {
        let what = format!("people.{id}");
        if let Some(slack) = &person.slack
            && !(slack.len() >= 9
                && slack.starts_with(['U', 'W'])
                && slack.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        {
            problems.push(format!(
                "{what}.slack: {slack:?} is not a Slack member ID (like U012ABCDEF: profile → ⋮ → Copy member ID)"
            ));
        }
        if let Some(email) = &person.email
            && email.parse::<lettre::Address>().is_err()
        {
            problems.push(format!("{what}.email: {email:?} is not an email address"));
        }
        if person.slack.is_none() && person.email.is_none() {
            problems
                .push(format!("{what}: give a slack member ID, an email address or both, so a page can reach them"));
        }
        let name = person.name.unwrap_or_else(|| id.clone());
        out.insert(id.clone(), Person { id, name, slack: person.slack, email: person.email });
    }
    out
}

pub(super) fn validate_schedules(
    raw: BTreeMap<String, RawSchedule>,
    people: &BTreeMap<String, Person>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Schedule> {
    let mut out = BTreeMap::new();
    for (name, raw) in raw {
        let what = format!("schedules.{name}");
        let before = problems.len();
        let time_zone = TimeZone::get(&raw.time_zone).unwrap_or_else(|_| {
            problems.push(format!(
                "{what}.time_zone: {:?} is not a time zone name (use IANA names like Europe/London)",
                raw.time_zone
            ));
            TimeZone::UTC
        });
        let person = |id: &str, field: &str, problems: &mut Vec<String>| match people.get(id) {
            Some(p) => Some(p.clone()),
            None => {
                let known: Vec<&str> = people.keys().map(String::as_str).collect();
                problems.push(format!("{what}.{field}: unknown person {id:?}; people: {}", known.join(", ")));
                None
            }
        };
        let rotation: Vec<Person> = raw.rotation.iter().filter_map(|id| person(id, "rotation", problems)).collect();
        if raw.rotation.is_empty() {
            problems.push(format!("{what}.rotation: list the people who take turns"));
        }
        let start = raw.start.parse::<Date>().map_err(|_| {
            problems.push(format!("{what}.start: {:?} is not a date like 2026-11-02", raw.start));
        });
        let handoff = raw.handoff.parse::<Time>().map_err(|_| {
            problems.push(format!("{what}.handoff: {:?} is not a time of day like \"09:00\"", raw.handoff));
        });
        let shift = parse_shift(&raw.shift).ok_or_else(|| {
            problems.push(format!(
                "{what}.shift: {:?} is not a shift length like 12h, 1d or 1w (hours must divide 24 or be whole days)",
                raw.shift
            ));
        });
        let mut overrides = Vec::new();
        for (idx, o) in raw.overrides.iter().enumerate() {
            let field = format!("overrides[{idx}]");
            let who = person(&o.person, &field, problems);
            let from =
                parse_instant(&o.from, &time_zone).ok_or_else(|| bad_instant(&what, &field, "from", &o.from, problems));
            let until = parse_instant(&o.until, &time_zone)
                .ok_or_else(|| bad_instant(&what, &field, "until", &o.until, problems));
            if let (Some(person), Ok(from), Ok(until)) = (who, from, until) {
                if until <= from {
                    problems.push(format!("{what}.{field}: until must be after from"));
                }
                overrides.push(Override { person, from, until });
            }
        }
        if problems.len() > before {
            continue;
        }
        let (Ok(start), Ok(handoff), Ok(shift)) = (start, handoff, shift) else { continue };
        let first_handoff = DateTime::from_parts(start, handoff);
        out.insert(name.clone(), Schedule { name, time_zone, rotation, first_handoff, shift, overrides });
    }
    out
}

fn bad_instant(what: &str, field: &str, key: &str, text: &str, problems: &mut Vec<String>) {
    problems.push(format!(
        "{what}.{field}.{key}: {text:?} is not a time like \"2026-12-24 18:00\" (local) or \"2026-12-24T18:00:00Z\""
    ));
}

/// `12h`, `1d`, `2w`.
fn parse_shift(text: &str) -> Option<ShiftLength> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok().filter(|n| *n > 0)?;
    match unit {
        // Whole days, or hours that divide a day, so handoffs keep their time of day.
        "h" if n % 24 == 0 => Some(ShiftLength::Days(n / 24)),
        "h" => (24 % n == 0).then_some(ShiftLength::Hours(n)),
        "d" => Some(ShiftLength::Days(n)),
        "w" => Some(ShiftLength::Days(7 * n)),
        _ => None,
    }
}
