//! Time windows, pure: weekdays and hours of the day in a named time zone, e.g. "Fridays to
//! Sundays, 10:00–23:00 Europe/London" for a wedding platform's event days. An hour range whose
//! end is before its start runs past midnight into the next day and belongs to the day it
//! started on ("22:00-06:00" on Saturday covers Saturday night until Sunday 06:00).

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

#[derive(Debug, Clone, PartialEq)]
pub struct TimeWindow {
    pub time_zone: TimeZone,
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes since local midnight, `[start, end)`; `end` may be 1440, or before `start` to
    /// cross midnight.
    pub hours: Vec<(u16, u16)>,
}

impl TimeWindow {
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.time_zone.clone());
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let today = day_index(local.weekday());
        let yesterday = (today + 6) % 7;
        self.hours.iter().any(|&(start, end)| {
            if start < end {
                self.days[today] && (start..end).contains(&minute)
            } else {
                (self.days[today] && minute >= start) || (self.days[yesterday] && minute < end)
            }
        })
    }
}

fn day_index(day: Weekday) -> usize {
    day.to_monday_zero_offset() as usize
}

/// `mon`…`sun` (or full names) as an index, Monday 0.
pub fn parse_day(text: &str) -> Option<usize> {
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let lower = text.trim().to_ascii_lowercase();
    let full = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    days.iter().position(|d| *d == lower).or_else(|| full.iter().position(|d| *d == lower))
}

/// `"HH:MM-HH:MM"` as minutes since midnight; the end may be `24:00`.
pub fn parse_hours(text: &str) -> Option<(u16, u16)> {
    let (start, end) = text.split_once('-')?;
    let minutes = |t: &str, max_hour: u16| {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < max_hour || (h == max_hour && m == 0))).then_some(h * 60 + m)
    };
    let (start, end) = (minutes(start, 23)?, minutes(end, 24)?);
    (start != end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[&str], hours: &[&str]) -> TimeWindow {
        let mut set = [false; 7];
        for d in days {
            set[parse_day(d).unwrap()] = true;
        }
        TimeWindow {
            time_zone: TimeZone::get("Europe/London").unwrap(),
            days: set,
            hours: hours.iter().map(|h| parse_hours(h).unwrap()).collect(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn weekdays_and_hours_are_read_in_the_windows_time_zone() {
        let events = window(&["fri", "sat", "sun"], &["10:00-23:00"]);
        // Saturday 2026-07-11, BST: 10:00 local is 09:00 UTC.
        assert!(!events.contains(at("2026-07-11T08:59:00Z")));
        assert!(events.contains(at("2026-07-11T09:00:00Z")));
        assert!(events.contains(at("2026-07-11T21:59:00Z")));
        assert!(!events.contains(at("2026-07-11T22:00:00Z")), "23:00 BST is the end");
        assert!(!events.contains(at("2026-07-13T12:00:00Z")), "a Monday");
        // In winter (GMT) the same local hours are the same UTC hours.
        assert!(events.contains(at("2026-12-12T10:00:00Z")) && !events.contains(at("2026-12-12T09:59:00Z")));
    }

    #[test]
    fn a_range_past_midnight_belongs_to_the_day_it_starts() {
        let nights = window(&["saturday"], &["22:00-06:00"]);
        assert!(nights.contains(at("2026-12-12T23:00:00Z")), "Saturday night");
        assert!(nights.contains(at("2026-12-13T05:59:00Z")), "early Sunday, still Saturday's night");
        assert!(!nights.contains(at("2026-12-13T23:00:00Z")), "Sunday night is not listed");
        assert!(!nights.contains(at("2026-12-12T05:00:00Z")), "early Saturday belongs to Friday");
        let all_day = window(&["sun"], &["00:00-24:00"]);
        assert!(all_day.contains(at("2026-12-13T00:00:00Z")) && all_day.contains(at("2026-12-13T23:59:00Z")));
    }

    #[test]
    fn bad_days_and_hours_are_refused() {
        assert_eq!(parse_day("Sat"), Some(5));
        assert_eq!(parse_day("someday"), None);
        assert_eq!(parse_hours("09:30-17:00"), Some((570, 1020)));
        for bad in ["9-17", "25:00-26:00", "10:00-10:00", "10:60-11:00", "24:00-01:00", "10:00"] {
            assert_eq!(parse_hours(bad), None, "{bad}");
        }
    }
}
