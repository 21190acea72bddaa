//! `perfwatch oncall [SCHEDULE] [--at TIME]`: who is on call, until when, who is next in line,
//! the coming handoffs and overrides — read from the config file, no daemon needed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::CliError;
use crate::oncall::{Person, Schedule, parse_instant};

#[derive(Debug, clap::Args)]
pub struct OncallArgs {
    /// The schedule to show (default: all).
    pub schedule: Option<String>,
    /// When to look: "2026-12-25T12:00:00Z", or a local time in each schedule's zone
    /// ("2026-12-25 12:00"); default now.
    #[arg(long)]
    pub at: Option<String>,
    /// How many coming handoffs to list.
    #[arg(long, default_value_t = 3)]
    pub shifts: usize,
    /// The config file that defines `people:` and `schedules:`.
    #[arg(long, short, env = "PERFWATCH_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The report for `schedules` (from the config), as of `args.at`.
pub fn report(schedules: &BTreeMap<String, Schedule>, args: &OncallArgs) -> Result<String, CliError> {
    if schedules.is_empty() {
        return Err(CliError::Usage(
            "no on-call schedules are configured; pass the config file with --config (see `schedules:` in docs/notifications.md)"
                .into(),
        ));
    }
    let chosen: Vec<&Schedule> = match &args.schedule {
        Some(name) => vec![schedules.get(name).ok_or_else(|| {
            let known: Vec<&str> = schedules.keys().map(String::as_str).collect();
            CliError::Usage(format!("no schedule {name:?}; schedules: {}", known.join(", ")))
        })?],
        None => schedules.values().collect(),
    };
    let mut out = String::new();
    for schedule in chosen {
        let at = match &args.at {
            Some(text) => parse_instant(text, &schedule.time_zone).ok_or_else(|| {
                CliError::Usage(format!(
                    "--at {text:?} is not a time; write 2026-12-25T12:00:00Z or a local \"2026-12-25 12:00\""
                ))
            })?,
            None => Timestamp::now(),
        };
        let tz = &schedule.time_zone;
        let on_call = schedule.on_call(at);
        let _ = writeln!(
            out,
            "{} ({}, {} shifts from {}) at {}",
            schedule.name,
            tz.iana_name().unwrap_or("UTC"),
            schedule.shift,
            schedule.first_handoff.strftime("%H:%M"),
            local(at, tz)
        );
        let until = format!("until {} ({})", local(on_call.until, tz), from_now(at, on_call.until));
        let source = if on_call.overridden { ", override" } else { "" };
        let _ = writeln!(out, "  on call:      {}  {until}{source}", contact(on_call.person));
        match on_call.next {
            Some(next) => {
                let _ = writeln!(out, "  next in line: {}", contact(next));
            }
            None => {
                let _ = writeln!(out, "  next in line: nobody else in the rotation");
            }
        }
        let _ = writeln!(out, "  handoffs:");
        for shift in schedule.shifts(at, args.shifts + 1).iter().skip(1) {
            let _ = writeln!(out, "    {}  {}", local(shift.from, tz), shift.person.name);
        }
        let ahead: Vec<_> = schedule.overrides.iter().filter(|o| o.until > at).collect();
        if !ahead.is_empty() {
            let _ = writeln!(out, "  overrides:");
            for o in ahead {
                let _ = writeln!(out, "    {} → {}  {}", local(o.from, tz), local(o.until, tz), o.person.name);
            }
        }
    }
    Ok(out)
}

fn local(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned(tz.clone()).strftime("%a %Y-%m-%d %H:%M %Z").to_string()
}

fn contact(person: &Person) -> String {
    let mut parts = vec![person.name.clone()];
    if let Some(slack) = &person.slack {
        parts.push(format!("<@{slack}>"));
    }
    if let Some(email) = &person.email {
        parts.push(email.clone());
    }
    parts.join("  ")
}

/// "in 2d 3h", "in 45m".
fn from_now(now: Timestamp, then: Timestamp) -> String {
    let s = (then.as_second() - now.as_second()).max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("in {m}m"),
        (0, _) => format!("in {h}h {m}m"),
        _ => format!("in {d}d {h}h"),
    }
}
