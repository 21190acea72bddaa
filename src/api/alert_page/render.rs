//! The alert page's HTML: what is wrong and since when, who was paged and who acknowledged,
//! the chart of what the rule measured, the forms to act, and the timeline. Every name,
//! label, annotation and comment is escaped; links are drawn only for http(s) URLs.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::episode::Episode;
use super::measure::Measured;
use super::timeline::{Entry, hh_mm_ss};
use crate::alert::dispatch::Group;
use crate::api::chart::{self, Band, Chart, Level, Line, Mark, Unit};
use crate::clock;
use crate::html::escape;
use crate::model::Labels;
use crate::rules::rule::Rule;
use crate::store::alerts::{AlertRow, SilenceRow};

/// Everything the page shows.
pub struct Page<'a> {
    pub alert: &'a AlertRow,
    pub labels: &'a Labels,
    /// The rule as it runs now; `None` when it was removed since.
    pub rule: Option<&'a Rule>,
    pub annotations: &'a BTreeMap<String, String>,
    pub unit: Unit,
    /// The unit of the parts (a ratio's counts, a regression's values).
    pub parts_unit: Unit,
    pub episode: Option<Episode>,
    pub span: (i64, i64),
    pub step_s: i64,
    pub measured: &'a Measured,
    /// Why the chart is empty, when reading it failed.
    pub chart_error: Option<&'a str>,
    /// What the two parts are (a ratio's, a regression's).
    pub part_names: Option<(String, String)>,
    pub levels: Vec<Level>,
    pub bands: Vec<Band>,
    pub marks: Vec<Mark>,
    pub timeline: &'a [Entry],
    pub group: Option<&'a Group>,
    /// Silences matching it now.
    pub silenced_by: Vec<&'a SilenceRow>,
    pub csrf: &'a str,
    /// Episodes before the one shown.
    pub earlier: usize,
    pub now_s: i64,
}

pub fn html(mut page: Page<'_>) -> String {
    let mut body = String::new();
    header(&mut body, &page);
    facts(&mut body, &page);
    charts(&mut body, &mut page);
    if page.alert.state != "inactive" {
        actions(&mut body, &page);
    }
    timeline(&mut body, &page);
    footer(&mut body, &page);
    let title = format!("{} {} · perfwatch", page.alert.state, page.alert.rule);
    crate::api::page::document(&title, CSS, &body, None)
}

fn header(body: &mut String, page: &Page<'_>) {
    let state = &page.alert.state;
    let shown = if state == "inactive" { "resolved" } else { state };
    let _ = write!(
        body,
        "<p class=\"crumb\"><a href=\"../\">← status</a></p><h1><span class=\"badge {}\">{}</span> {}</h1>",
        escape(shown),
        escape(&shown.to_uppercase()),
        escape(&page.alert.rule)
    );
    for key in ["summary", "description"] {
        if let Some(text) = page.annotations.get(key).filter(|t| !t.is_empty()) {
            let _ = write!(body, "<p class=\"{key}\">{}</p>", escape(text));
        }
    }
}

/// Severity, value against threshold, since when, escalation and acks, silences, labels, links.
fn facts(body: &mut String, page: &Page<'_>) {
    let alert = page.alert;
    body.push_str("<dl class=\"facts\">");
    let severity = alert.severity.as_deref().unwrap_or("none");
    let _ = write!(body, "<dt>Severity</dt><dd class=\"sev-{0}\">{0}</dd>", escape(severity));
    let value = alert.value.map_or_else(|| "no data".to_owned(), |v| page.unit.show(v));
    let _ = write!(body, "<dt>Value</dt><dd><strong>{}</strong>", escape(&value));
    if let Some(condition) = condition_text(page) {
        let _ = write!(body, " · {}", escape(&condition));
    }
    body.push_str("</dd>");
    let _ = write!(body, "<dt>Since</dt><dd>{}</dd>", escape(&since_text(page)));
    let _ = write!(body, "<dt>Paged</dt><dd>{}</dd>", escape(&paged_text(page)));
    match &alert.ack {
        Some(ack) => {
            let comment = if ack.comment.is_empty() { String::new() } else { format!(": “{}”", ack.comment) };
            let text = format!("{} at {} UTC{comment}", ack.by, clock::hh_mm(ack.at_s));
            let _ = write!(body, "<dt>Acknowledged</dt><dd class=\"acked\">{}</dd>", escape(&text));
        }
        None if alert.state == "firing" => body.push_str("<dt>Acknowledged</dt><dd><strong>not yet</strong></dd>"),
        None => {}
    }
    for silence in &page.silenced_by {
        let text = format!("by {} until {}: {}", silence.author, clock::rfc3339(silence.ends_s), silence.comment);
        let _ = write!(body, "<dt>Silenced</dt><dd>{}</dd>", escape(&text));
    }
    let _ = write!(body, "<dt>Labels</dt><dd class=\"labels\">{}</dd>", crate::api::page::label_chips(page.labels));
    for (key, label) in [("runbook", "Runbook"), ("dashboard", "Dashboard")] {
        if let Some(target) = page.annotations.get(key).filter(|t| !t.is_empty()) {
            let _ = write!(body, "<dt>{label}</dt><dd>{}</dd>", link(target));
        }
    }
    body.push_str("</dl>");
}

/// "threshold 200 ms (above is bad), resolves at 150 ms".
fn condition_text(page: &Page<'_>) -> Option<String> {
    let mut parts: Vec<String> = page.levels.iter().map(|l| l.label.clone()).collect();
    if parts.is_empty() {
        parts.push(format!("threshold {}", page.unit.show(page.alert.threshold?)));
    }
    Some(parts.join(", "))
}

fn since_text(page: &Page<'_>) -> String {
    let (alert, now) = (page.alert, page.now_s);
    let at = |s: i64| format!("{} UTC ({} ago)", clock::hh_mm(s), clock::elapsed(now - s));
    match (alert.state.as_str(), alert.firing_since_s, alert.pending_since_s, page.episode) {
        ("firing", Some(firing), Some(pending), _) if pending < firing => {
            format!("firing since {}; pending from {} UTC", at(firing), clock::hh_mm(pending))
        }
        ("firing", Some(firing), _, _) => format!("firing since {}", at(firing)),
        ("pending", _, Some(pending), _) => format!("pending since {}; not firing yet", at(pending)),
        (_, _, _, Some(Episode { start_s, end_s: Some(end) })) => {
            format!(
                "from {} UTC, resolved at {} after {}",
                clock::hh_mm(start_s),
                at(end),
                clock::elapsed(end - start_s)
            )
        }
        _ => "not active".into(),
    }
}

/// Escalation step, notifiers and on-call people paged in this episode.
fn paged_text(page: &Page<'_>) -> String {
    let Some(group) = page.group else {
        return match page.alert.state.as_str() {
            "pending" => "nobody yet: it pages once it fires".into(),
            _ => "nobody (no notification group holds it now)".into(),
        };
    };
    if group.steps_done == 0 {
        return "nobody yet (waiting for group_wait)".into();
    }
    let notifiers: Vec<&str> = group.paged.iter().map(String::as_str).collect();
    let people: Vec<&str> = group.people.iter().map(|m| m.person.name.as_str()).collect();
    let mut text = format!("escalation step {} · {}", group.steps_done, notifiers.join(", "));
    if !people.is_empty() {
        let _ = write!(text, " · on call: {}", people.join(", "));
    }
    text
}

/// The measured value over the span with thresholds, bands and marks; the parts beneath it.
fn charts(body: &mut String, page: &mut Page<'_>) {
    let (from_s, to_s) = page.span;
    let what = page.rule.map_or_else(|| page.alert.rule.clone(), describe);
    let _ = write!(
        body,
        "<h2>What it measured</h2><figure id=\"measured\">{}<figcaption>{}, every {} from {} to {} UTC. \
         Dashed lines: thresholds; shaded: <span class=\"key pending\">pending</span> and \
         <span class=\"key firing\">firing</span>; dotted: transitions.</figcaption></figure>",
        chart::svg(&Chart {
            from_s,
            to_s,
            points: &page.measured.values,
            gap_s: 2 * page.step_s,
            others: Vec::new(),
            levels: page
                .levels
                .iter()
                .map(|l| Level { value: l.value, label: l.label.clone(), class: l.class })
                .collect(),
            bands: std::mem::take(&mut page.bands),
            marks: std::mem::take(&mut page.marks),
            unit: page.unit,
            title: format!("{what}, {} to {} UTC", clock::hh_mm(from_s), clock::hh_mm(to_s)),
            ticks: true,
        }),
        escape(&what),
        clock::elapsed(page.step_s),
        clock::hh_mm(from_s),
        clock::hh_mm(to_s)
    );
    if page.rule.is_none() {
        body.push_str("<p class=\"quiet\">The rule is no longer loaded, so its measurements cannot be drawn.</p>");
    }
    if let Some(error) = page.chart_error {
        let _ = write!(
            body,
            "<p class=\"quiet\">The chart could not be drawn: {}. Reload to try again.</p>",
            escape(error)
        );
    }
    if let Some((first, second)) = &page.part_names {
        let _ = write!(
            body,
            "<h2>What it compared</h2><figure id=\"parts\">{}<figcaption>Solid: {}. Dashed: {}.</figcaption></figure>",
            chart::svg(&Chart {
                from_s,
                to_s,
                points: &page.measured.parts.0,
                gap_s: 2 * page.step_s,
                others: vec![Line { points: &page.measured.parts.1, label: second.clone(), class: "compare" }],
                levels: Vec::new(),
                bands: Vec::new(),
                marks: Vec::new(),
                unit: page.parts_unit,
                title: format!("{first} against {second}"),
                ticks: true,
            }),
            escape(first),
            escape(second)
        );
    }
}

/// "p99 of api_request_duration_seconds{…} over 5 min".
pub fn describe(rule: &Rule) -> String {
    use crate::rules::rule::Measure;
    let window = clock::elapsed(rule.window_s);
    match &rule.measure {
        Measure::Stat { selector } => format!("{} of {selector} over {window}", rule.stat),
        Measure::Ratio { numerator, denominator } => {
            format!("{} of {numerator} / {} of {denominator} over {window}", rule.stat, rule.stat)
        }
        Measure::Regression { selector, offset_s } => format!(
            "{} of {selector} over {window}, as a multiple of the same {} earlier",
            rule.stat,
            clock::elapsed(*offset_s)
        ),
        Measure::Absent { selector } => format!("whether {selector} sent nothing over {window} (1 = absent)"),
    }
}

/// Acknowledge, withdraw it, silence: plain forms, each with the page's CSRF token.
fn actions(body: &mut String, page: &Page<'_>) {
    let (id, csrf) = (escape(&page.alert.id), escape(page.csrf));
    let hidden = format!("<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">");
    body.push_str("<h2>Act</h2><div class=\"actions\">");
    if page.alert.ack.is_none() && page.alert.state == "firing" {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{id}/ack\" class=\"ack\">{hidden}\
             <label>Your name <input name=\"by\" required maxlength=\"100\" autocomplete=\"name\"></label>\
             <label>Comment <input name=\"comment\" maxlength=\"500\" placeholder=\"what you are doing\"></label>\
             <button type=\"submit\">Acknowledge</button>\
             <p class=\"quiet\">Stops the escalation; everyone already paged is told.</p></form>"
        );
    } else if page.alert.ack.is_some() {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{id}/unack\" class=\"unack\">{hidden}\
             <button type=\"submit\">Withdraw the acknowledgement</button></form>"
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{id}/silence\" class=\"silence\">{hidden}\
         <label>Your name <input name=\"by\" required maxlength=\"100\" autocomplete=\"name\"></label>\
         <label>Why <input name=\"comment\" maxlength=\"500\" placeholder=\"e.g. planned failover\"></label>\
         <span class=\"buttons\"><button type=\"submit\" name=\"for\" value=\"1h\">Silence 1 h</button>\
         <button type=\"submit\" name=\"for\" value=\"4h\">Silence 4 h</button>\
         <button type=\"submit\" name=\"for\" value=\"resolved\">Silence until resolved</button></span>\
         <p class=\"quiet\">A silence stops notifications for this alert (these labels) but not its state.</p></form></div>"
    );
}

fn timeline(body: &mut String, page: &Page<'_>) {
    body.push_str("<h2 id=\"timeline\">Timeline</h2>");
    if page.timeline.is_empty() {
        body.push_str("<p class=\"quiet\">Nothing recorded for this alert yet.</p>");
        return;
    }
    body.push_str("<ol class=\"timeline\">");
    for entry in page.timeline {
        let notification =
            entry.notification.as_ref().map_or(String::new(), |id| format!(" data-notification=\"{}\"", escape(id)));
        let _ = write!(
            body,
            "<li class=\"{}\" data-at=\"{}\"{notification}><time>{} UTC</time> <strong>{}</strong> {}",
            entry.class,
            entry.at_s,
            hh_mm_ss(entry.at_s),
            escape(&entry.what),
            escape(&entry.detail)
        );
        if !entry.attempts.is_empty() {
            body.push_str("<ul class=\"attempts\">");
            for attempt in &entry.attempts {
                let _ = write!(body, "<li>{}</li>", escape(attempt));
            }
            body.push_str("</ul>");
        }
        body.push_str("</li>");
    }
    body.push_str("</ol>");
    if page.earlier > 0 {
        let _ = write!(body, "<p class=\"quiet\">It was active {} time(s) before this episode.</p>", page.earlier);
    }
}

fn footer(body: &mut String, page: &Page<'_>) {
    let place = page.rule.map_or_else(String::new, |r| format!("rule at {} · ", r.location));
    let _ = write!(
        body,
        "<p class=\"quiet foot\">{}alert {} in group {} · as of {} · <a href=\"../api/v1/alerts/{}\">JSON</a></p>",
        escape(&place),
        escape(&page.alert.id),
        escape(&page.alert.group),
        escape(&clock::rfc3339(page.now_s)),
        escape(&page.alert.id)
    );
}

/// An annotation's target: a link when it is an http(s) URL, else text (never a
/// `javascript:` link).
fn link(target: &str) -> String {
    if target.starts_with("https://") || target.starts_with("http://") {
        format!("<a href=\"{0}\" rel=\"noreferrer\">{0}</a>", escape(target))
    } else {
        format!("<code>{}</code>", escape(target))
    }
}

const CSS: &str = ".crumb{margin:0 0 .5em}.badge{font-size:.7em;padding:.15em .5em;border-radius:4px;vertical-align:middle;color:#fff;background:#666}\
.badge.firing{background:#d93025}.badge.pending{background:#b26a00}.badge.resolved{background:#2e7d32}\
.summary{font-size:1.1em;margin:.5em 0 0}.description{margin:.3em 0 0;color:#444}\
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3em 1em;margin:1em 0}.facts dt{color:#555}.facts dd{margin:0;min-width:0}\
figure{margin:0;max-width:46em}figcaption{font-size:.85em;color:#555;margin-top:.3em}.key{padding:0 .3em}.key.firing{background:#f8d0cc}.key.pending{background:#fde9b5}\
.actions{display:flex;flex-wrap:wrap;gap:1em}.actions form{flex:1 1 18em;border:1px solid #ddd;border-radius:6px;padding:.75em;margin:0}\
.actions label{display:block;margin:0 0 .5em}.actions input{display:block;width:100%;padding:.3em}.actions .buttons{display:flex;flex-wrap:wrap;gap:.4em}\
.timeline{list-style:none;padding:0;border-left:3px solid #ddd;margin-left:.3em}.timeline>li{padding:.3em 0 .3em .8em;position:relative}\
.timeline time{color:#555;font-variant-numeric:tabular-nums}.timeline .firing strong,.timeline .failed strong{color:#d93025}\
.timeline .resolved strong{color:#2e7d32}.timeline .pending strong{color:#b26a00}.attempts{font-size:.85em;color:#555;margin:.2em 0}\
.foot{margin-top:2em;font-size:.85em}";
