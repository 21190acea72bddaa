//! Plain data shared by every stage: metric kinds, series keys, label sets and interval alignment.
//! No IO here; everything is cheap to test.

use std::fmt;

use serde::Deserialize;

/// A series' stable identity: the xxh3 hash of its canonical key. Stable across restarts and
/// releases because xxh3 is a specified algorithm; the store checks the key on collision.
pub type SeriesId = u64;

/// What a series measures, which decides how its samples combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    /// Increments that add up (requests, errors, cache hits).
    Counter,
    /// A level sampled now and then (pool connections in use, queue depth).
    Gauge,
    /// Observations of a distribution in seconds (latencies), kept in a quantile sketch.
    Timing,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Timing => "timing",
        }
    }

    pub fn parse(text: &str) -> Option<MetricKind> {
        match text {
            "counter" => Some(MetricKind::Counter),
            "gauge" => Some(MetricKind::Gauge),
            "timing" | "histogram" | "distribution" | "summary" => Some(MetricKind::Timing),
            _ => None,
        }
    }

    pub fn to_code(self) -> i64 {
        match self {
            MetricKind::Counter => 0,
            MetricKind::Gauge => 1,
            MetricKind::Timing => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<MetricKind> {
        match code {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Timing),
            _ => None,
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An owned, sorted label set, used off the hot path (query results, stored series).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new(mut pairs: Vec<(String, String)>) -> Labels {
        pairs.sort();
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        Labels(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|(key, _)| key.as_str().cmp(name)).ok().map(|idx| self.0[idx].1.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The pairs, sorted by name.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps only the named labels (for `group_by`).
    pub fn project(&self, names: &[String]) -> Labels {
        Labels(self.0.iter().filter(|(k, _)| names.iter().any(|n| n == k)).cloned().collect())
    }
}

/// A series' name and labels, parsed back from its canonical key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesKey {
    pub name: String,
    pub labels: Labels,
}

impl SeriesKey {
    /// Parses the canonical form written by [`write_canonical_key`].
    pub fn parse(key: &str) -> Option<SeriesKey> {
        let Some(open) = key.find('{') else {
            return Some(SeriesKey { name: key.to_owned(), labels: Labels::default() });
        };
        let name = key[..open].to_owned();
        let body = key[open + 1..].strip_suffix('}')?;
        let mut pairs = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let eq = rest.find("=\"")?;
            let label = rest[..eq].to_owned();
            rest = &rest[eq + 2..];
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                let (idx, ch) = chars.next()?;
                match ch {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break idx,
                    other => value.push(other),
                }
            };
            pairs.push((label, value));
            rest = &rest[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        Some(SeriesKey { name, labels: Labels(pairs) })
    }
}

/// Writes `name{a="x",b="y"}` with labels sorted by name into `out` (cleared first) and
/// returns how many labels it holds. `order` is scratch space, reused to avoid allocating.
/// When a label name repeats, the *last* occurrence wins, so callers put common labels first
/// and per-metric labels after them.
pub fn write_canonical_key(name: &str, labels: &[(&str, &str)], order: &mut Vec<u32>, out: &mut String) -> usize {
    order.clear();
    order.extend(0..labels.len() as u32);
    // Unstable sort keyed by (name, position): no allocation, and deterministic.
    order.sort_unstable_by(|a, b| labels[*a as usize].0.cmp(labels[*b as usize].0).then(a.cmp(b)));
    out.clear();
    out.push_str(name);
    let mut n_labels = 0;
    for (pos, idx) in order.iter().enumerate() {
        let (label, value) = labels[*idx as usize];
        if order.get(pos + 1).is_some_and(|next| labels[*next as usize].0 == label) {
            continue; // a later occurrence of the same name wins
        }
        out.push(if n_labels == 0 { '{' } else { ',' });
        out.push_str(label);
        out.push_str("=\"");
        for ch in value.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                other => out.push(other),
            }
        }
        out.push('"');
        n_labels += 1;
    }
    if n_labels > 0 {
        out.push('}');
    }
    n_labels
}

/// The series id of a canonical key.
pub fn series_id(canonical_key: &str) -> SeriesId {
    xxhash_rust::xxh3::xxh3_64(canonical_key.as_bytes())
}

/// Start (unix seconds) of the interval of length `interval_s` holding `ts_ms`.
pub fn interval_start(ts_ms: i64, interval_s: i64) -> i64 {
    let ts_s = ts_ms.div_euclid(1000);
    ts_s - ts_s.rem_euclid(interval_s)
}

/// How bad an alert is: rules give it, alerts, routes and notifications carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Critical].into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_key_sorts_and_last_wins() {
        let mut out = String::new();
        let labels = [("service", "api"), ("tier", "l1"), ("service", "cache")];
        let n = write_canonical_key("hits", &labels, &mut Vec::new(), &mut out);
        assert_eq!(n, 2);
        assert_eq!(out, r#"hits{service="cache",tier="l1"}"#);
    }

    #[test]
    fn canonical_key_round_trips_escapes() {
        let mut out = String::new();
        let labels = [("path", "a\"b\\c\nd"), ("x", "")];
        write_canonical_key("m", &labels, &mut Vec::new(), &mut out);
        let parsed = SeriesKey::parse(&out).unwrap();
        assert_eq!(parsed.name, "m");
        assert_eq!(parsed.labels.get("path"), Some("a\"b\\c\nd"));
        assert_eq!(parsed.labels.get("x"), Some(""));
        let bare = SeriesKey::parse("plain").unwrap();
        assert!(bare.labels.is_empty());
    }

    #[test]
    fn intervals_align_to_the_wall_clock() {
        assert_eq!(interval_start(1_764_000_007_123, 10), 1_764_000_000);
        assert_eq!(interval_start(1_764_000_010_000, 10), 1_764_000_010);
        assert_eq!(interval_start(-1, 10), -10);
    }
}
