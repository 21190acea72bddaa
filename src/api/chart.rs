//! Inline SVG charts for the pages: a line of (time, value) points over a time range (and
//! lines to compare it with), with threshold lines, shaded periods and marked moments,
//! scaled into a fixed view box that stretches to the page's width. Pure: data in, markup
//! out. The root element carries the scale (`data-from`, `data-to`, `data-min`, `data-max`
//! and the plot box), so a test in a browser can read any drawn coordinate back to the time
//! or value it stands for.

use std::fmt::Write;

use crate::html::escape;

/// How values are written on the axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    /// A fraction, shown as a percentage.
    Ratio,
    /// How many times another value (a regression against last week).
    Factor,
    /// A count, a rate or anything else: the number as it is.
    Plain,
}

impl Unit {
    pub fn show(self, value: f64) -> String {
        match self {
            Unit::Seconds if value.abs() < 0.001 && value != 0.0 => format!("{:.0} µs", value * 1e6),
            Unit::Seconds if value.abs() < 0.01 && value != 0.0 => format!("{:.1} ms", value * 1000.0),
            Unit::Seconds if value.abs() < 1.0 => format!("{:.0} ms", value * 1000.0),
            Unit::Seconds => format!("{value:.2} s"),
            Unit::Ratio => format!("{:.1} %", value * 100.0),
            Unit::Factor => format!("{value:.2}×"),
            Unit::Plain if value.abs() >= 100.0 => format!("{value:.0}"),
            Unit::Plain if value.abs() >= 1.0 => format!("{value:.2}"),
            Unit::Plain => format!("{value:.4}"),
        }
    }
}

/// A line to compare the chart's own line with (a ratio's parts, last week's values).
pub struct Line<'a> {
    pub points: &'a [(i64, f64)],
    pub label: String,
    /// CSS class: `compare`, `numerator`, …
    pub class: &'static str,
}

/// A moment marked by a vertical line (a transition), named by `label`.
pub struct Mark {
    pub at_s: i64,
    pub label: String,
    /// CSS class: `pending`, `firing`, `resolved`, …
    pub class: &'static str,
}

/// A horizontal line at `value` (a threshold), named by `label`.
pub struct Level {
    pub value: f64,
    pub label: String,
    /// CSS class: `threshold`, `resolve`, …
    pub class: &'static str,
}

/// A shaded time period (a pending or firing stretch), named by `label`.
pub struct Band {
    pub from_s: i64,
    pub to_s: i64,
    pub label: String,
    /// CSS class: `pending`, `firing`, …
    pub class: &'static str,
}

/// What one chart shows.
pub struct Chart<'a> {
    pub from_s: i64,
    pub to_s: i64,
    /// Points in time order; a gap longer than `gap_s` breaks the line.
    pub points: &'a [(i64, f64)],
    pub gap_s: i64,
    /// Other lines on the same scale, drawn beneath the chart's own.
    pub others: Vec<Line<'a>>,
    pub levels: Vec<Level>,
    pub bands: Vec<Band>,
    pub marks: Vec<Mark>,
    pub unit: Unit,
    /// What the chart shows, for screen readers (`<title>`).
    pub title: String,
    /// Values and times written on the axes (a sparkline has none).
    pub ticks: bool,
}

/// The drawing's size in view-box units; the SVG scales to its container's width.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
/// The plot box's margins inside it: with ticks, room on the left for values and at the
/// bottom for times.
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const TICKS_LEFT: f64 = 52.0;
const TICKS_BOTTOM: f64 = 22.0;

/// Maps times and values to view-box coordinates inside the plot box.
struct Scale {
    from_s: i64,
    to_s: i64,
    min: f64,
    max: f64,
    left: f64,
    bottom: f64,
}

impl Scale {
    /// Values from 0 (or below, when something is negative) to a little over the highest
    /// point or level, so a threshold line is never drawn on the frame.
    fn fit(chart: &Chart) -> Scale {
        let others = chart.others.iter().flat_map(|line| line.points.iter());
        let values = chart.points.iter().chain(others).map(|(_, v)| *v).chain(chart.levels.iter().map(|l| l.value));
        let values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
        let low = values.iter().copied().fold(0.0_f64, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let high = if high.is_finite() && high > low { high + (high - low) * 0.1 } else { low + 1.0 };
        let (left, bottom) = if chart.ticks { (TICKS_LEFT, HEIGHT - TICKS_BOTTOM) } else { (4.0, HEIGHT - TOP) };
        Scale { from_s: chart.from_s, to_s: chart.to_s.max(chart.from_s + 1), min: low, max: high, left, bottom }
    }

    fn x(&self, t_s: i64) -> f64 {
        let t = t_s.clamp(self.from_s, self.to_s);
        self.left + (t - self.from_s) as f64 / (self.to_s - self.from_s) as f64 * (WIDTH - self.left - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        let v = value.clamp(self.min, self.max);
        TOP + (self.max - v) / (self.max - self.min) * (self.bottom - TOP)
    }
}

/// The chart as one `<svg>` element.
pub fn svg(chart: &Chart) -> String {
    let scale = Scale::fit(chart);
    let mut out = String::with_capacity(2048 + chart.points.len() * 16);
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         data-from=\"{}\" data-to=\"{}\" data-min=\"{}\" data-max=\"{}\" \
         data-plot=\"{} {TOP} {} {}\"><title>{}</title>",
        scale.from_s,
        scale.to_s,
        scale.min,
        scale.max,
        scale.left,
        WIDTH - RIGHT,
        scale.bottom,
        escape(&chart.title)
    );
    for band in &chart.bands {
        let (x0, x1) = (scale.x(band.from_s), scale.x(band.to_s));
        let _ = write!(
            out,
            "<rect class=\"band {}\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{}\" \
             data-from=\"{}\" data-to=\"{}\"><title>{}</title></rect>",
            band.class,
            (x1 - x0).max(1.0),
            scale.bottom - TOP,
            band.from_s,
            band.to_s,
            escape(&band.label)
        );
    }
    let _ = write!(
        out,
        "<rect class=\"frame\" x=\"{}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/>",
        scale.left,
        WIDTH - RIGHT - scale.left,
        scale.bottom - TOP
    );
    if chart.ticks {
        ticks(&mut out, &scale, chart.unit);
    }
    for level in &chart.levels {
        let y = scale.y(level.value);
        let _ = write!(
            out,
            "<line class=\"level {}\" x1=\"{}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" data-value=\"{}\">\
             <title>{}</title></line>",
            level.class,
            scale.left,
            WIDTH - RIGHT,
            level.value,
            escape(&level.label)
        );
    }
    for mark in &chart.marks {
        let x = scale.x(mark.at_s);
        let _ = write!(
            out,
            "<line class=\"mark {}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{}\" data-at=\"{}\">\
             <title>{}</title></line>",
            mark.class,
            scale.bottom,
            mark.at_s,
            escape(&mark.label)
        );
    }
    for other in &chart.others {
        let _ = write!(out, "<g class=\"other {}\"><title>{}</title>", other.class, escape(&other.label));
        line(&mut out, &scale, other.points, chart.gap_s);
        out.push_str("</g>");
    }
    line(&mut out, &scale, chart.points, chart.gap_s);
    out.push_str("</svg>");
    out
}

/// The lowest and highest value and the two ends of the time range, as text.
fn ticks(out: &mut String, scale: &Scale, unit: Unit) {
    let (bottom, right, left) = (scale.bottom, WIDTH - RIGHT, scale.left);
    let _ = write!(
        out,
        "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text class=\"tick\" x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">{}</text>\
         <text class=\"tick\" x=\"{left}\" y=\"{}\">{}</text>\
         <text class=\"tick\" x=\"{right}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        left - 4.0,
        TOP + 10.0,
        escape(&unit.show(scale.max)),
        left - 4.0,
        escape(&unit.show(scale.min)),
        HEIGHT - 6.0,
        crate::clock::hh_mm(scale.from_s),
        HEIGHT - 6.0,
        crate::clock::hh_mm(scale.to_s),
    );
}

/// The points as one path, broken where two points are more than `gap_s` apart, and the
/// latest point as a dot (so a line of one point still shows).
fn line(out: &mut String, scale: &Scale, points: &[(i64, f64)], gap_s: i64) {
    out.push_str("<path class=\"series\" d=\"");
    let mut previous: Option<(i64, f64)> = None;
    for &(t, v) in points.iter().filter(|(t, v)| v.is_finite() && *t >= scale.from_s && *t <= scale.to_s) {
        let command = if previous.is_some_and(|(p, _)| t - p <= gap_s) { 'L' } else { 'M' };
        let _ = write!(out, "{command}{:.1} {:.1}", scale.x(t), scale.y(v));
        previous = Some((t, v));
    }
    out.push_str("\"/>");
    if let Some((t, v)) = previous {
        let _ = write!(out, "<circle class=\"latest\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"/>", scale.x(t), scale.y(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(svg: &str, element_start: &str, name: &str) -> f64 {
        let at = svg.find(element_start).unwrap_or_else(|| panic!("no {element_start} in {svg}"));
        let rest = &svg[at..];
        let start = rest.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        rest[start..start + rest[start..].find('"').unwrap()].parse().unwrap()
    }

    fn chart(points: &[(i64, f64)]) -> Chart<'_> {
        Chart {
            from_s: 1000,
            to_s: 1600,
            points,
            gap_s: 60,
            others: Vec::new(),
            levels: vec![Level { value: 0.2, label: "p99 above 200 ms".into(), class: "threshold" }],
            bands: vec![Band { from_s: 1300, to_s: 1600, label: "firing".into(), class: "firing" }],
            marks: vec![Mark { at_s: 1300, label: "firing".into(), class: "firing" }],
            unit: Unit::Seconds,
            title: "p99 of <api>".into(),
            ticks: true,
        }
    }

    #[test]
    fn coordinates_read_back_to_the_data() {
        let points = [(1000, 0.05), (1060, 0.1), (1300, 0.5)];
        let svg = svg(&chart(&points));
        let (min, max) = (attr(&svg, "<svg", "data-min"), attr(&svg, "<svg", "data-max"));
        assert_eq!(min, 0.0);
        assert!(max > 0.5 && max < 0.6, "a little room above the highest point: {max}");
        // The threshold line's y maps back to 0.2.
        let y = attr(&svg, "<line class=\"level threshold\"", "y1");
        let value = max - (y - TOP) / (HEIGHT - TICKS_BOTTOM - TOP) * (max - min);
        assert!((value - 0.2).abs() < 0.005, "{value}");
        // The firing band starts at 1300: halfway along the plot.
        let x = attr(&svg, "<rect class=\"band firing\"", "x");
        let t = 1000.0 + (x - TICKS_LEFT) / (WIDTH - TICKS_LEFT - RIGHT) * 600.0;
        assert!((t - 1300.0).abs() < 2.0, "{t}");
        assert_eq!(attr(&svg, "<line class=\"mark firing\"", "x1"), x, "the transition is marked where firing starts");
    }

    #[test]
    fn lines_to_compare_share_the_scale() {
        let points = [(1000, 0.1), (1300, 0.2)];
        let last_week = [(1000, 0.8), (1300, 0.9)];
        let mut with_other = chart(&points);
        with_other.others.push(Line { points: &last_week, label: "a week ago".into(), class: "compare" });
        let svg = svg(&with_other);
        assert!(attr(&svg, "<svg", "data-max") > 0.9, "the scale holds the other line too");
        assert!(svg.contains("<g class=\"other compare\"><title>a week ago</title><path class=\"series\""), "{svg}");
    }

    #[test]
    fn units_read_as_people_write_them() {
        assert_eq!(Unit::Seconds.show(0.25), "250 ms");
        assert_eq!(Unit::Seconds.show(0.0004), "400 µs");
        assert_eq!(Unit::Seconds.show(0.005), "5.0 ms");
        assert_eq!(Unit::Seconds.show(0.0), "0 ms");
        assert_eq!(Unit::Ratio.show(0.025), "2.5 %");
        assert_eq!(Unit::Factor.show(1.5), "1.50×");
        assert_eq!(Unit::Plain.show(1234.4), "1234");
        assert_eq!(Unit::Plain.show(4.256), "4.26");
        assert_eq!(Unit::Plain.show(0.00123), "0.0012");
    }

    #[test]
    fn a_gap_breaks_the_line_and_text_is_escaped() {
        let points = [(1000, 0.05), (1060, 0.1), (1300, 0.5), (1360, 0.4)];
        let svg = svg(&chart(&points));
        let path = &svg[svg.find("d=\"").unwrap()..];
        assert_eq!(path[..path.find("\"/>").unwrap()].matches('M').count(), 2, "{path}");
        assert!(svg.contains("<title>p99 of &lt;api&gt;</title>") && !svg.contains("<api>"));
    }

    #[test]
    fn no_data_still_draws_the_threshold_inside_the_frame() {
        let svg = svg(&chart(&[]));
        let y = attr(&svg, "<line class=\"level threshold\"", "y1");
        assert!(y > TOP && y < HEIGHT - TICKS_BOTTOM, "{y}");
        assert!(svg.contains("d=\"\"") && !svg.contains("<circle"), "an empty line");
    }
}
