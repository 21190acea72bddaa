//! The native JSON push body:
//! `{"labels": {…}, "metrics": [{"name", "type", "labels", "values" | "value", "timestamp_ms"}]}`.
//! A body that is not JSON of this shape is refused whole; each bad entry of `metrics` is
//! refused on its own with its index, and the good ones are kept.

use std::fmt;

use bumpalo::Bump;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::PushOutcome;
use super::strings::{BumpStr, LabelsSeed, ValuesSeed};
use crate::aggregate::Observation;
use crate::ingest::sink::{IngestBatch, Reject};
use crate::model::MetricKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body<'a> {
    #[serde(default, borrow)]
    labels: Option<&'a RawValue>,
    #[serde(borrow)]
    metrics: Vec<&'a RawValue>,
}

/// One `metrics` entry, its buffers reused from entry to entry.
#[derive(Default)]
struct Entry<'a> {
    name: Option<&'a str>,
    kind: Option<&'a str>,
    labels: Vec<(&'a str, &'a str)>,
    values: Vec<f64>,
    has_values: bool,
    value: Option<f64>,
    timestamp_ms: Option<i64>,
}

impl Entry<'_> {
    fn clear(&mut self) {
        self.name = None;
        self.kind = None;
        self.labels.clear();
        self.values.clear();
        self.has_values = false;
        self.value = None;
        self.timestamp_ms = None;
    }
}

/// Parses `body` into `batch`. `Err` means the body as a whole is unusable (400).
pub fn parse<'a>(body: &'a str, batch: &mut IngestBatch<'a>) -> Result<PushOutcome, String> {
    let parsed: Body<'a> = serde_json::from_str(body).map_err(|e| format!("body is not a valid push: {e}"))?;
    let bump = batch.bump();
    let mut common = Vec::new();
    if let Some(raw) = parsed.labels {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        LabelsSeed { bump, out: &mut common }.deserialize(&mut de).map_err(|e| format!("\"labels\": {e}"))?;
    }
    let mut outcome = PushOutcome::default();
    let mut entry = Entry::default();
    for (index, raw) in parsed.metrics.iter().enumerate() {
        entry.clear();
        let result = parse_entry(raw.get(), bump, &mut entry)
            .map_err(|e| Reject::Parse(e.to_string()))
            .and_then(|()| record_entry(&entry, &common, batch));
        outcome.tally(batch, index, result, Reject::to_string);
    }
    Ok(outcome)
}

fn parse_entry<'a>(raw: &'a str, bump: &'a Bump, entry: &mut Entry<'a>) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw);
    EntrySeed { bump, entry }.deserialize(&mut de)
}

fn record_entry<'a>(
    entry: &Entry<'a>,
    common: &[(&'a str, &'a str)],
    batch: &mut IngestBatch<'a>,
) -> Result<(), Reject> {
    let name = entry.name.ok_or_else(|| Reject::Parse("missing \"name\"".into()))?;
    let kind_text = entry.kind.ok_or_else(|| Reject::Parse("missing \"type\" (timing, counter or gauge)".into()))?;
    let kind = match kind_text {
        "timing" => MetricKind::Timing,
        "counter" => MetricKind::Counter,
        "gauge" => MetricKind::Gauge,
        other => return Err(Reject::Parse(format!("unknown type {other:?}; use timing, counter or gauge"))),
    };
    let single;
    let obs = match kind {
        MetricKind::Timing => {
            let values = match (entry.has_values, entry.value) {
                (true, None) => entry.values.as_slice(),
                (false, Some(value)) => {
                    single = [value];
                    &single[..]
                }
                _ => return Err(Reject::Parse("a timing needs either \"values\" (an array) or \"value\"".into())),
            };
            Observation::Timings { values, weight: 1.0 }
        }
        MetricKind::Counter | MetricKind::Gauge => {
            let Some(value) = entry.value.filter(|_| !entry.has_values) else {
                return Err(Reject::Parse(format!("a {kind} needs one \"value\" (and no \"values\")")));
            };
            if kind == MetricKind::Counter { Observation::Increment(value) } else { Observation::Gauge(value) }
        }
    };
    let series = batch.resolve(name, common, &entry.labels, kind)?;
    batch.record(series, entry.timestamp_ms, obs)
}

struct EntrySeed<'b, 'a> {
    bump: &'a Bump,
    entry: &'b mut Entry<'a>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for EntrySeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for EntrySeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a metric object with name, type, labels and values or value")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let entry = self.entry;
        while let Some(key) = map.next_key_seed(BumpStr(self.bump))? {
            match key {
                "name" => entry.name = Some(map.next_value_seed(BumpStr(self.bump))?),
                "type" => entry.kind = Some(map.next_value_seed(BumpStr(self.bump))?),
                "labels" => map.next_value_seed(LabelsSeed { bump: self.bump, out: &mut entry.labels })?,
                "values" => {
                    map.next_value_seed(ValuesSeed(&mut entry.values))?;
                    entry.has_values = true;
                }
                "value" => entry.value = Some(map.next_value()?),
                "timestamp_ms" => entry.timestamp_ms = Some(map.next_value::<f64>()? as i64),
                other => {
                    return Err(de::Error::custom(format_args!(
                        "unknown field {other:?}; expected name, type, labels, values, value or timestamp_ms"
                    )));
                }
            }
        }
        Ok(())
    }
}
