//! The slowest endpoints and DB queries on the status page: p99 over the last 5 minutes per
//! endpoint (or query), the worst five, each with its trend over the last hour drawn against
//! the target.

use std::fmt::Write;

use super::{STEP_S, TREND_S, Trends};
use crate::aggregate::rollup::Rollup;
use crate::api::chart::{self, Chart, Level, Unit};
use crate::html::escape;

/// How many rows each table shows.
pub(super) const SHOWN: usize = 5;

/// One endpoint or query: its name, p99 over the window and its trend.
pub(super) struct Row {
    pub name: String,
    pub p99: f64,
    pub trend: Vec<(i64, f64)>,
}

/// The `SHOWN` worst by p99 (name order among equals), their trends still empty: only these
/// need one (see [`attach`]).
pub(super) fn worst(current: &[(String, Rollup)]) -> Vec<Row> {
    let mut rows: Vec<Row> = current
        .iter()
        .filter_map(|(name, rollup)| {
            let p99 = rollup.sketch.as_ref()?.quantile(0.99)?;
            Some(Row { name: name.clone(), p99, trend: Vec::new() })
        })
        .collect();
    rows.sort_by(|a, b| b.p99.total_cmp(&a.p99).then_with(|| a.name.cmp(&b.name)));
    rows.truncate(SHOWN);
    rows
}

/// Gives each row its trend, taken out of `trends` (keyed by name).
pub(super) fn attach(rows: &mut [Row], mut trends: Trends) {
    for row in rows {
        row.trend = trends.remove(&row.name).unwrap_or_default();
    }
}

/// A table of `rows` under `title`; `label` names the first column, `target` is drawn across
/// every trend and marks the rows over it.
pub(super) fn render(body: &mut String, title: &str, label: &str, rows: &[Row], target: f64, now_s: i64) {
    let _ = write!(body, "<h2>{}</h2>", escape(title));
    if rows.is_empty() {
        body.push_str("<p class=\"quiet\">No data in the last 5 minutes.</p>");
        return;
    }
    let target_text = Unit::Seconds.show(target);
    let _ = write!(
        body,
        "<table class=\"slowest\"><tr><th>{}</th><th>p99</th><th>last hour (target ≤ {})</th></tr>",
        escape(label),
        escape(&target_text)
    );
    for row in rows {
        let (class, state) = if row.p99 > target { ("bad", "over target") } else { ("ok", "on target") };
        let trend = chart::svg(&Chart {
            from_s: now_s - TREND_S,
            to_s: now_s,
            points: &row.trend,
            gap_s: 2 * STEP_S,
            others: Vec::new(),
            marks: Vec::new(),
            levels: vec![Level { value: target, label: format!("target ≤ {target_text}"), class: "threshold" }],
            bands: Vec::new(),
            unit: Unit::Seconds,
            title: format!("p99 of {}, last hour, a point a minute", row.name),
            ticks: false,
        });
        let _ = write!(
            body,
            "<tr class=\"{class}\"><td><code>{}</code></td><td>{} <span class=\"state\">{state}</span></td>\
             <td class=\"trend\">{trend}</td></tr>",
            escape(&row.name),
            escape(&Unit::Seconds.show(row.p99))
        );
    }
    body.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::sketch::Sketch;

    fn rollup(values: &[f64]) -> Rollup {
        let mut sketch = Sketch::new();
        for v in values {
            sketch.add(*v, 1);
        }
        Rollup { count: values.len() as f64, sketch: Some(sketch), ..Rollup::empty(true) }
    }

    #[test]
    fn the_worst_five_by_p99_with_their_trends() {
        let current: Vec<(String, Rollup)> =
            (0..8).map(|i| (format!("/e{i}"), rollup(&[0.01 * (i as f64 + 1.0)]))).collect();
        let trends: Trends = current.iter().map(|(name, _)| (name.clone(), vec![(60, 1.0)])).collect();
        let mut rows = worst(&current);
        attach(&mut rows, trends);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["/e7", "/e6", "/e5", "/e4", "/e3"]);
        assert!(rows.iter().all(|r| r.trend == [(60, 1.0)]));
        let mut body = String::new();
        render(&mut body, "Slowest", "endpoint <path>", &rows, 0.065, 3600);
        assert_eq!(body.matches("<tr class=\"bad\">").count(), 2, "0.08 and 0.07 are over 65 ms: {body}");
        assert!(body.contains("endpoint &lt;path&gt;") && body.matches("<svg").count() == 5);
    }
}
