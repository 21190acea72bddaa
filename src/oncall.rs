//! On-call schedules, pure: a rotation of people handing over at a local time of day in a
//! named time zone, every N hours, days or weeks, with overrides for a time range. Shifts are
//! counted on the local calendar, so a daily 09:00 handoff stays at 09:00 across daylight
//! saving changes (that shift is 23 or 25 hours long); a handoff time that does not exist that
//! day (in the spring gap) moves to just after the gap, one that happens twice takes the
//! first.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// Someone who can be paged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The key under `people:`.
    pub id: String,
    pub name: String,
    /// A Slack member ID (`U…`/`W…`) for @mentions.
    #[serde(default)]
    pub slack: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// How long a shift is, on the local calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftLength {
    Hours(i64),
    Days(i64),
}

impl ShiftLength {
    fn span(self, shifts: i64) -> Span {
        match self {
            ShiftLength::Hours(n) => (n * shifts).hours(),
            ShiftLength::Days(n) => (n * shifts).days(),
        }
    }

    /// Nominal length in seconds (a DST day differs by an hour at most).
    fn nominal_s(self) -> i64 {
        match self {
            ShiftLength::Hours(n) => n * 3600,
            ShiftLength::Days(n) => n * 86_400,
        }
    }
}

impl std::fmt::Display for ShiftLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ShiftLength::Hours(n) => write!(f, "{n}h"),
            ShiftLength::Days(n) if n % 7 == 0 => write!(f, "{}w", n / 7),
            ShiftLength::Days(n) => write!(f, "{n}d"),
        }
    }
}

/// An instant written with an offset or `Z` ("2026-12-24T18:00:00Z"), or as a local date and
/// time in `tz` ("2026-12-24 18:00"; in a DST gap it moves past it, when repeated the first).
pub fn parse_instant(text: &str, tz: &TimeZone) -> Option<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let local = text.parse::<DateTime>().ok()?;
    tz.to_ambiguous_zoned(local).compatible().ok().map(|z| z.timestamp())
}

/// Someone on call instead of the rotation between two instants.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub person: Person,
    pub from: Timestamp,
    pub until: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub time_zone: TimeZone,
    pub rotation: Vec<Person>,
    /// The local time the first shift starts; later shifts start a whole number of shift
    /// lengths later on the local calendar.
    pub first_handoff: DateTime,
    pub shift: ShiftLength,
    /// Later entries win where they overlap.
    pub overrides: Vec<Override>,
}

/// Who is on call at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct OnCall<'a> {
    pub person: &'a Person,
    /// The shift (or override) they are in.
    pub from: Timestamp,
    pub until: Timestamp,
    pub overridden: bool,
    /// Who is next in line: the next person of the rotation who is not `person`.
    pub next: Option<&'a Person>,
}

/// One rotation shift.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift<'a> {
    pub person: &'a Person,
    pub from: Timestamp,
    pub until: Timestamp,
}

impl Schedule {
    /// The instant shift `k` starts (k may be negative: before the first handoff).
    fn shift_start(&self, k: i64) -> Timestamp {
        // Beyond the calendar's range, shifts saturate (keeping their order).
        let out_of_range = if k < 0 { Timestamp::MIN } else { Timestamp::MAX };
        let Ok(local) = self.first_handoff.checked_add(self.shift.span(k)) else { return out_of_range };
        // `compatible`: a time in the spring gap moves past it; a repeated time takes the first.
        match self.time_zone.to_ambiguous_zoned(local).compatible() {
            Ok(zoned) => zoned.timestamp(),
            Err(_) => out_of_range,
        }
    }

    /// The rotation shift holding `at`, by index.
    fn shift_index(&self, at: Timestamp) -> i64 {
        let first = self.shift_start(0);
        let mut k = (at.as_second() - first.as_second()).div_euclid(self.shift.nominal_s());
        while self.shift_start(k) > at {
            k -= 1;
        }
        while self.shift_start(k + 1) <= at {
            k += 1;
        }
        k
    }

    fn person_of_shift(&self, k: i64) -> &Person {
        &self.rotation[k.rem_euclid(self.rotation.len() as i64) as usize]
    }

    /// Who is on call at `at`.
    pub fn on_call(&self, at: Timestamp) -> OnCall<'_> {
        let k = self.shift_index(at);
        let next_after = |person: &Person| {
            (1..=self.rotation.len() as i64).map(|i| self.person_of_shift(k + i)).find(|p| p.id != person.id)
        };
        if let Some(o) = self.overrides.iter().rev().find(|o| o.from <= at && at < o.until) {
            return OnCall {
                person: &o.person,
                from: o.from,
                until: o.until,
                overridden: true,
                next: next_after(&o.person),
            };
        }
        let person = self.person_of_shift(k);
        // Until the shift ends, or an override takes over earlier.
        let end = self.shift_start(k + 1);
        let until = self.overrides.iter().map(|o| o.from).filter(|from| *from > at).fold(end, Timestamp::min);
        OnCall { person, from: self.shift_start(k), until, overridden: false, next: next_after(person) }
    }

    /// The rotation's shifts from the one holding `at`, `count` of them (overrides aside).
    pub fn shifts(&self, at: Timestamp, count: usize) -> Vec<Shift<'_>> {
        let k = self.shift_index(at);
        (0..count as i64)
            .map(|i| Shift {
                person: self.person_of_shift(k + i),
                from: self.shift_start(k + i),
                until: self.shift_start(k + i + 1),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str) -> Person {
        Person { id: id.into(), name: id.to_uppercase(), slack: None, email: None }
    }

    fn schedule(tz: &str, first: &str, shift: ShiftLength) -> Schedule {
        Schedule {
            name: "platform".into(),
            time_zone: TimeZone::get(tz).unwrap(),
            rotation: vec![person("ana"), person("ben"), person("cara")],
            first_handoff: first.parse().unwrap(),
            shift,
            overrides: Vec::new(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn who(s: &Schedule, text: &str) -> String {
        s.on_call(at(text)).person.id.clone()
    }

    #[test]
    fn a_daily_rotation_hands_over_at_local_nine_across_both_dst_changes() {
        // London: BST starts 2026-03-29 01:00 UTC, ends 2026-10-25 01:00 UTC.
        let s = schedule("Europe/London", "2026-03-27T09:00", ShiftLength::Days(1));
        assert_eq!(who(&s, "2026-03-27T09:00:00Z"), "ana", "GMT: 09:00 local is 09:00 UTC");
        assert_eq!(who(&s, "2026-03-28T08:59:59Z"), "ana");
        assert_eq!(who(&s, "2026-03-28T09:00:00Z"), "ben");
        // The 28th→29th shift spans the change to BST: 23 hours.
        let ben = s.on_call(at("2026-03-28T12:00:00Z"));
        assert_eq!((ben.from, ben.until), (at("2026-03-28T09:00:00Z"), at("2026-03-29T08:00:00Z")));
        assert_eq!(who(&s, "2026-03-29T07:59:59Z"), "ben");
        assert_eq!(who(&s, "2026-03-29T08:00:00Z"), "cara", "BST: 09:00 local is 08:00 UTC");
        // Seven months on, the autumn change makes a 25-hour shift and 09:00 is 09:00 UTC again.
        let shift = s.on_call(at("2026-10-24T12:00:00Z"));
        assert_eq!((shift.from, shift.until), (at("2026-10-24T08:00:00Z"), at("2026-10-25T09:00:00Z")));
        assert_eq!(shift.until.as_second() - shift.from.as_second(), 25 * 3600);
        // 2026-03-27 + 211 days = 2026-10-24: shift 211, 211 % 3 = 1.
        assert_eq!(shift.person.id, "ben");
        assert_eq!(shift.next.unwrap().id, "cara");
    }

    #[test]
    fn handoffs_in_the_spring_gap_move_past_it_and_repeated_times_take_the_first() {
        // New York: 2026-03-08 02:00 EST jumps to 03:00 EDT; 2026-11-01 02:00 EDT falls back to 01:00 EST.
        let gap = schedule("America/New_York", "2026-03-07T02:30", ShiftLength::Days(1));
        let shift = gap.on_call(at("2026-03-08T12:00:00Z"));
        // 02:30 does not exist on the 8th: the handoff is at 03:30 EDT (07:30 UTC).
        assert_eq!(shift.from, at("2026-03-08T07:30:00Z"));
        assert_eq!(shift.person.id, "ben");
        let fold = schedule("America/New_York", "2026-10-31T01:30", ShiftLength::Days(1));
        // 01:30 happens twice on 1 November: the first (EDT, 05:30 UTC) is the handoff.
        let shift = fold.on_call(at("2026-11-01T05:45:00Z"));
        assert_eq!((shift.person.id.as_str(), shift.from), ("ben", at("2026-11-01T05:30:00Z")));
        assert_eq!(shift.until, at("2026-11-02T06:30:00Z"), "the 2nd at 01:30 EST");
    }

    #[test]
    fn twelve_hour_shifts_stay_at_local_handoff_times_and_weeks_rotate_weekly() {
        let s = schedule("Europe/Lisbon", "2026-10-24T08:00", ShiftLength::Hours(12));
        let shifts = s.shifts(at("2026-10-24T12:00:00Z"), 4);
        let starts: Vec<Timestamp> = shifts.iter().map(|s| s.from).collect();
        // WEST (UTC+1) until the 25th at 02:00 local, then WET (UTC+0): 08:00/20:00 local throughout.
        assert_eq!(
            starts,
            [
                at("2026-10-24T07:00:00Z"),
                at("2026-10-24T19:00:00Z"),
                at("2026-10-25T08:00:00Z"),
                at("2026-10-25T20:00:00Z")
            ]
        );
        let names: Vec<&str> = shifts.iter().map(|s| s.person.id.as_str()).collect();
        assert_eq!(names, ["ana", "ben", "cara", "ana"]);

        let weekly = schedule("UTC", "2026-11-02T09:00", ShiftLength::Days(7));
        assert_eq!(who(&weekly, "2026-11-08T23:00:00Z"), "ana");
        assert_eq!(who(&weekly, "2026-11-09T09:00:00Z"), "ben");
        assert_eq!(
            who(&weekly, "2026-11-01T09:00:00Z"),
            "cara",
            "before the first handoff the rotation runs backwards"
        );
    }

    #[test]
    fn an_override_takes_over_for_its_range_and_the_next_in_line_is_someone_else() {
        let mut s = schedule("UTC", "2026-12-21T09:00", ShiftLength::Days(7));
        s.overrides.push(Override {
            person: person("ben"),
            from: at("2026-12-24T18:00:00Z"),
            until: at("2026-12-27T09:00:00Z"),
        });
        assert_eq!(who(&s, "2026-12-24T17:59:59Z"), "ana");
        assert_eq!(s.on_call(at("2026-12-24T12:00:00Z")).until, at("2026-12-24T18:00:00Z"), "ana hands over early");
        let christmas = s.on_call(at("2026-12-25T12:00:00Z"));
        assert!(christmas.overridden);
        assert_eq!(christmas.person.id, "ben");
        assert_eq!(christmas.next.unwrap().id, "cara", "ben is on, so the next in line skips him");
        assert_eq!(who(&s, "2026-12-27T09:00:00Z"), "ana");
        // A later override wins where two overlap.
        s.overrides.push(Override {
            person: person("cara"),
            from: at("2026-12-25T00:00:00Z"),
            until: at("2026-12-26T00:00:00Z"),
        });
        assert_eq!(who(&s, "2026-12-25T12:00:00Z"), "cara");
        assert_eq!(who(&s, "2026-12-26T12:00:00Z"), "ben");
    }
}
