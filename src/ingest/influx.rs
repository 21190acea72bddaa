//! Influx line protocol into series: each numeric field of a point is a gauge series named
//! `<measurement>_<field>` (booleans as 0/1) with the tags as labels, at the point's timestamp
//! read in the request's precision. Bad lines and string fields are refused by line number;
//! the rest is kept. Agents write runs of points of one series, so the series resolved last
//! is reused while the measurement, tags and field stay the same.

use crate::aggregate::Observation;
use crate::ingest::parse::PushOutcome;
use crate::ingest::parse::influx::{FieldValue, Point, parse_fields, parse_line};
use crate::ingest::sink::{IngestBatch, Resolved};
use crate::model::MetricKind;

/// How a timestamp in the request's precision becomes milliseconds: `× multiply ÷ divide`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    multiply: i64,
    divide: i64,
}

impl Precision {
    /// From the `precision` query parameter (InfluxDB's names; nanoseconds when absent).
    pub fn parse(precision: Option<&str>) -> Option<Precision> {
        let (multiply, divide) = match precision.unwrap_or("ns") {
            "ns" | "n" => (1, 1_000_000),
            "us" | "u" => (1, 1_000),
            "ms" => (1, 1),
            "s" => (1_000, 1),
            "m" => (60_000, 1),
            "h" => (3_600_000, 1),
            _ => return None,
        };
        Some(Precision { multiply, divide })
    }

    fn to_ms(self, timestamp: i64) -> i64 {
        timestamp.saturating_mul(self.multiply) / self.divide
    }
}

/// Takes every point of `body` into `batch`.
///
/// One loop over lines and their fields, a little over a screen: its state (the previous
/// line's series, the series resolved last, the pending run of samples, the outcome) lives in
/// locals that every step reads and writes, and split functions would pass five or more of them
/// on the hottest path of Influx ingest.
pub fn ingest<'a>(body: &'a [u8], precision: Precision, batch: &mut IngestBatch<'a>) -> PushOutcome {
    let bump = batch.bump();
    let mut outcome = PushOutcome::default();
    let (mut tags, mut fields) = (Vec::new(), Vec::new());
    let mut previous: Option<Point<'a>> = None;
    // The series resolved last (the batch's key buffer still holds it) and its pending run.
    let mut last: Option<(&str, &str, Resolved)> = None;
    let mut run = Run::default();
    for (idx, raw) in lines(body).enumerate() {
        let line_no = idx + 1;
        // Each line on its own: one line of bad bytes costs only that line.
        let Ok(raw) = std::str::from_utf8(raw) else {
            previous = None;
            run.record(batch, &mut outcome);
            outcome.rejected += 1;
            outcome.note_error(line_no, "line is not UTF-8".into());
            continue;
        };
        let line = raw.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A line that repeats the last line's measurement and tags: `tags` still holds them.
        let parsed = match previous {
            Some(point) if repeats(line, point.series) => {
                parse_fields(line, point.series.len(), bump, &mut fields).map(|timestamp| Point { timestamp, ..point })
            }
            _ => parse_line(line, bump, &mut tags, &mut fields),
        };
        let point = match parsed {
            Ok(point) => point,
            Err(err) => {
                previous = None;
                run.record(batch, &mut outcome); // errors stay in line order
                outcome.rejected += 1;
                outcome.note_error(line_no, err.to_string());
                continue;
            }
        };
        previous = Some(point);
        let ts_ms = point.timestamp.map(|t| precision.to_ms(t));
        for (field, value) in fields.iter() {
            let Some(number) = value.number() else {
                run.record(batch, &mut outcome);
                outcome.rejected += 1;
                if let FieldValue::Str(_) = value {
                    outcome.note_error(
                        line_no,
                        format!("field {field:?} is a string; only numeric and boolean fields are metrics"),
                    );
                }
                continue;
            };
            let series = match last {
                // A repeated line carries the very slice of the line that started the run.
                Some((series, last_field, resolved))
                    if (std::ptr::eq(series, point.series) || series == point.series) && last_field == *field =>
                {
                    resolved
                }
                _ => {
                    run.record(batch, &mut outcome);
                    let name = bumpalo::format!(in bump, "{}_{}", point.measurement, field).into_bump_str();
                    match batch.resolve(name, &[], &tags, MetricKind::Gauge) {
                        Ok(resolved) => {
                            last = Some((point.series, *field, resolved));
                            resolved
                        }
                        Err(reject) => {
                            last = None;
                            outcome.tally(batch, line_no, Err(reject), |r| format!("field {field:?}: {r}"));
                            continue;
                        }
                    }
                }
            };
            if run.ts_ms != ts_ms {
                run.record(batch, &mut outcome);
            }
            run.push(series, field, ts_ms, number, line_no);
        }
    }
    run.record(batch, &mut outcome);
    outcome
}

/// The lines of `text` (found with the `memchr` crate's vector search: a body is mostly line
/// ends to find).
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', text);
    std::iter::from_fn(move || {
        let end = match ends.next() {
            Some(end) => end,
            None if start <= text.len() => text.len(),
            None => return None,
        };
        let line = &text[start..end];
        start = end + 1;
        Some(line)
    })
}

/// Consecutive values of one series and timestamp, recorded under one lock. Each line keeps
/// its own outcome.
#[derive(Default)]
struct Run<'a> {
    series: Option<(Resolved, &'a str)>,
    ts_ms: Option<i64>,
    values: Vec<f64>,
    lines: Vec<usize>,
}

impl<'a> Run<'a> {
    fn push(&mut self, series: Resolved, field: &'a str, ts_ms: Option<i64>, value: f64, line_no: usize) {
        self.series = Some((series, field));
        self.ts_ms = ts_ms;
        self.values.push(value);
        self.lines.push(line_no);
    }

    /// Records the pending values, if any: the batch's key buffer must still hold their series.
    fn record(&mut self, batch: &mut IngestBatch<'_>, outcome: &mut PushOutcome) {
        let Some((series, field)) = self.series.take() else { return };
        let recorded = batch.record(series, self.ts_ms, Observation::Gauges(&self.values));
        for line_no in self.lines.drain(..) {
            outcome.tally(batch, line_no, recorded.clone(), |r| format!("field {field:?}: {r}"));
        }
        self.values.clear();
    }
}

/// Whether `line` begins with the series text `series`, then a space. (Byte for byte the same
/// up to that space, so that space is unescaped here as it was there.)
fn repeats(line: &str, series: &str) -> bool {
    line.as_bytes().get(series.len()) == Some(&b' ') && line.starts_with(series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Aggregator, AggregatorSettings};
    use crate::ingest::limits::Limits;
    use crate::ingest::sink::Scratch;

    /// Each series' key and the (count, sum, last) of what it took.
    fn ingest_text(text: &str) -> (PushOutcome, Vec<(String, f64, f64, f64)>) {
        let settings = AggregatorSettings {
            interval_s: 10,
            lateness_intervals: 2,
            future_intervals: 1,
            max_series: 100,
            idle_after_s: 3600,
            cumulative_idle_after_s: 86_400,
        };
        let (agg, limits, bump) = (Aggregator::new(settings, 0), Limits::default(), bumpalo::Bump::new());
        let now_ms = 1_764_000_005_000;
        let mut batch = IngestBatch::new(&agg, &limits, &bump, "influx", now_ms, Scratch::default());
        let outcome = ingest(text.as_bytes(), Precision::parse(None).unwrap(), &mut batch);
        batch.finish();
        let mut series: Vec<_> = agg
            .snapshot_of(&["cpu_v", "cpu_w"], 0, i64::MAX)
            .series
            .into_iter()
            .map(|s| {
                let (_, r) = &s.deltas[0];
                (s.key.to_string(), r.count, r.sum, r.last)
            })
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        (outcome, series)
    }

    #[test]
    fn runs_of_one_series_are_read_once_and_anything_else_in_full() {
        // A run of one series, a second field, a series whose text merely starts the same, a
        // bad line inside the run, and the run again after it.
        let (outcome, series) = ingest_text(
            "cpu,host=a v=1\n\
             cpu,host=a v=2\n\
             cpu,host=a w=5\n\
             cpu,host=ab v=3\n\
             cpu,host=a v=x\n\
             cpu,host=a v=6\n\
             cpu,host=a\\ b v=7\n",
        );
        assert_eq!((outcome.accepted, outcome.rejected), (6, 1));
        assert_eq!(outcome.errors[0].index, 5);
        assert_eq!(
            series,
            [
                ("cpu_v{host=\"a b\"}".to_owned(), 1.0, 7.0, 7.0),
                ("cpu_v{host=\"a\"}".to_owned(), 3.0, 9.0, 6.0),
                ("cpu_v{host=\"ab\"}".to_owned(), 1.0, 3.0, 3.0),
                ("cpu_w{host=\"a\"}".to_owned(), 1.0, 5.0, 5.0),
            ]
        );
        // A run refused whole (its timestamp is long gone) is refused line by line, in order
        // with the lines around it; a new timestamp starts a new run.
        let (outcome, series) = ingest_text("cpu v=1 1\ncpu v=2 1\ncpu v=x\ncpu v=3\ncpu v=4\n");
        assert_eq!((outcome.accepted, outcome.rejected), (2, 3));
        let lines: Vec<usize> = outcome.errors.iter().map(|e| e.index).collect();
        assert_eq!(lines, [1, 2, 3]);
        assert!(outcome.errors[0].reason.starts_with("field \"v\": "), "{:?}", outcome.errors);
        assert_eq!(series, [("cpu_v".to_owned(), 2.0, 7.0, 4.0)]);
    }

    #[test]
    fn precisions_turn_timestamps_into_milliseconds() {
        let ms = |p: Option<&str>, t| Precision::parse(p).unwrap().to_ms(t);
        assert_eq!(ms(None, 1_700_000_000_123_456_789), 1_700_000_000_123);
        assert_eq!(ms(Some("us"), 1_700_000_000_123_456), 1_700_000_000_123);
        assert_eq!(ms(Some("ms"), 1_700_000_000_123), 1_700_000_000_123);
        assert_eq!(ms(Some("s"), 1_700_000_000), 1_700_000_000_000);
        assert_eq!(ms(Some("m"), 2), 120_000);
        assert_eq!(ms(Some("h"), 1), 3_600_000);
        assert_eq!(Precision::parse(Some("d")), None);
    }
}
