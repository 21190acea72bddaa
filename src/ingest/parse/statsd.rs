//! StatsD and DogStatsD lines: `name:value[:value…]|type[|@rate][|#tag:v,tag2][|T<unix s>]`,
//! several per datagram separated by newlines. Types: `c` counter, `g` gauge (`+n`/`-n` move
//! it), `ms` timing in milliseconds (stored in seconds), `h`/`d` histogram and distribution
//! (stored as sent), `s` set (unique values per interval). Pure: no IO, no allocation.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsdType {
    Counter,
    Gauge,
    TimingMs,
    Distribution,
    Set,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StatsdError {
    #[error("no ':' between name and value")]
    NoValue,
    #[error("no '|' before the metric type")]
    NoType,
    #[error("empty metric name")]
    EmptyName,
    #[error("unknown metric type {0:?}; use c, g, ms, h, d or s")]
    UnknownType(String),
    #[error("value {0:?} is not a number")]
    BadValue(String),
    #[error("sample rate {0:?} is not in [0.000001, 1]")]
    BadRate(String),
    #[error("timestamp {0:?} is not unix seconds")]
    BadTimestamp(String),
    #[error("DogStatsD events and service checks are not metrics")]
    NotAMetric,
}

/// One parsed line; values and tags are iterated lazily from the line itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsdLine<'a> {
    pub name: &'a str,
    /// One or more values separated by ':' (DogStatsD packs several per line).
    values: &'a str,
    pub kind: StatsdType,
    pub rate: f64,
    tags: &'a str,
    pub timestamp_ms: Option<i64>,
}

/// A gauge value: absolute, or a move from the last level (`+3`, `-2`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GaugeValue {
    Set(f64),
    Delta(f64),
}

impl<'a> StatsdLine<'a> {
    /// The values as numbers; a bad one is an error for the whole line.
    pub fn values(&self) -> impl Iterator<Item = Result<f64, StatsdError>> + 'a {
        self.values
            .split(':')
            .map(|text| text.trim().parse::<f64>().map_err(|_| StatsdError::BadValue(text.to_owned())))
    }

    /// The gauge values, telling set from delta by a leading sign.
    pub fn gauge_values(&self) -> impl Iterator<Item = Result<GaugeValue, StatsdError>> + 'a {
        self.values.split(':').map(|text| {
            let text = text.trim();
            let value: f64 = text.parse().map_err(|_| StatsdError::BadValue(text.to_owned()))?;
            Ok(if text.starts_with(['+', '-']) { GaugeValue::Delta(value) } else { GaugeValue::Set(value) })
        })
    }

    /// Raw set members.
    pub fn members(&self) -> impl Iterator<Item = &'a str> {
        self.values.split(':')
    }

    /// Tags as (name, value); a tag without `:value` has the value `true`.
    pub fn tags(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.tags.split(',').filter(|t| !t.is_empty()).map(|tag| match tag.split_once(':') {
            Some((name, value)) => (name, value),
            None => (tag, "true"),
        })
    }
}

/// The smallest sample rate taken: one sample standing for a million (see `MAX_WEIGHT`).
pub const MIN_SAMPLE_RATE: f64 = 1e-6;

/// Parses one line (without its newline).
pub fn parse_line(line: &str) -> Result<StatsdLine<'_>, StatsdError> {
    if line.starts_with("_e{") || line.starts_with("_sc|") {
        return Err(StatsdError::NotAMetric);
    }
    let (name, rest) = line.split_once(':').ok_or(StatsdError::NoValue)?;
    if name.is_empty() {
        return Err(StatsdError::EmptyName);
    }
    let mut fields = rest.split('|');
    let values = fields.next().unwrap_or_default();
    let kind = match fields.next().ok_or(StatsdError::NoType)? {
        "c" => StatsdType::Counter,
        "g" => StatsdType::Gauge,
        "ms" => StatsdType::TimingMs,
        "h" | "d" => StatsdType::Distribution,
        "s" => StatsdType::Set,
        other => return Err(StatsdError::UnknownType(other.to_owned())),
    };
    let mut parsed = StatsdLine { name, values, kind, rate: 1.0, tags: "", timestamp_ms: None };
    for field in fields {
        if let Some(rate) = field.strip_prefix('@') {
            parsed.rate = rate
                .parse()
                .ok()
                .filter(|r: &f64| (MIN_SAMPLE_RATE..=1.0).contains(r))
                .ok_or_else(|| StatsdError::BadRate(rate.to_owned()))?;
        } else if let Some(tags) = field.strip_prefix('#') {
            parsed.tags = tags;
        } else if let Some(ts) = field.strip_prefix('T') {
            let seconds: i64 = ts.parse().map_err(|_| StatsdError::BadTimestamp(ts.to_owned()))?;
            let ms = seconds.checked_mul(1000).ok_or_else(|| StatsdError::BadTimestamp(ts.to_owned()))?;
            parsed.timestamp_ms = Some(ms);
        }
        // Other DogStatsD fields (`c:` container id, `e:` external data) carry nothing we keep.
    }
    Ok(parsed)
}

/// The non-empty lines of a datagram, numbered from 1.
pub fn lines(datagram: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    datagram
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i + 1, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, name: &str, kind: StatsdType, values: &[f64], rate: f64, tags: &[(&str, &str)]) {
        let parsed = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(parsed.name, name, "{line}");
        assert_eq!(parsed.kind, kind, "{line}");
        let got: Vec<f64> = parsed.values().map(Result::unwrap).collect();
        assert_eq!(got, values, "{line}");
        assert_eq!(parsed.rate, rate, "{line}");
        assert_eq!(parsed.tags().collect::<Vec<_>>(), tags, "{line}");
    }

    #[test]
    fn parses_every_type() {
        check("api.hits:1|c", "api.hits", StatsdType::Counter, &[1.0], 1.0, &[]);
        check("api.hits:5|c|@0.1", "api.hits", StatsdType::Counter, &[5.0], 0.1, &[]);
        check("pool.in_use:17|g", "pool.in_use", StatsdType::Gauge, &[17.0], 1.0, &[]);
        check(
            "api.latency:12.5|ms|#endpoint:/vendors,env:prod",
            "api.latency",
            StatsdType::TimingMs,
            &[12.5],
            1.0,
            &[("endpoint", "/vendors"), ("env", "prod")],
        );
        check("size:3|h|@0.5|#canary", "size", StatsdType::Distribution, &[3.0], 0.5, &[("canary", "true")]);
        check("lat:1:2:3|d", "lat", StatsdType::Distribution, &[1.0, 2.0, 3.0], 1.0, &[]);
        check("users:42|s", "users", StatsdType::Set, &[42.0], 1.0, &[]);
    }

    #[test]
    fn gauge_signs_and_timestamps() {
        let line = parse_line("pool:-3|g|T1764000000").unwrap();
        assert_eq!(line.gauge_values().collect::<Vec<_>>(), vec![Ok(GaugeValue::Delta(-3.0))]);
        assert_eq!(line.timestamp_ms, Some(1_764_000_000_000));
        let line = parse_line("pool:+2|g").unwrap();
        assert_eq!(line.gauge_values().next(), Some(Ok(GaugeValue::Delta(2.0))));
        assert_eq!(parse_line("pool:5|g").unwrap().gauge_values().next(), Some(Ok(GaugeValue::Set(5.0))));
        assert_eq!(parse_line("u:alice|s").unwrap().members().collect::<Vec<_>>(), vec!["alice"]);
    }

    #[test]
    fn reports_what_is_wrong() {
        assert_eq!(parse_line("nocolon"), Err(StatsdError::NoValue));
        assert_eq!(parse_line("a:1"), Err(StatsdError::NoType));
        assert_eq!(parse_line(":1|c"), Err(StatsdError::EmptyName));
        assert_eq!(parse_line("a:1|x"), Err(StatsdError::UnknownType("x".into())));
        assert_eq!(parse_line("a:1|c|@2"), Err(StatsdError::BadRate("2".into())));
        assert_eq!(parse_line("_e{5,4}:title|text"), Err(StatsdError::NotAMetric));
        assert!(matches!(parse_line("a:x|c").unwrap().values().next(), Some(Err(StatsdError::BadValue(_)))));
    }

    #[test]
    fn weights_and_timestamps_that_would_overflow_are_refused() {
        assert_eq!(parse_line("a:1|ms|@1e-300"), Err(StatsdError::BadRate("1e-300".into())));
        assert_eq!(parse_line("a:1|c|@0"), Err(StatsdError::BadRate("0".into())));
        assert_eq!(parse_line("a:1|ms|@0.000001").unwrap().rate, 1e-6);
        let huge = i64::MAX / 10;
        assert_eq!(parse_line(&format!("a:1|c|T{huge}")), Err(StatsdError::BadTimestamp(huge.to_string())));
    }

    #[test]
    fn splits_datagrams_into_numbered_lines() {
        let got: Vec<(usize, &[u8])> = lines(b"a:1|c\n\nb:2|g\r\n\x00\xff|||\n").collect();
        assert_eq!(got, vec![(1, &b"a:1|c"[..]), (3, b"b:2|g"), (4, b"\x00\xff|||")]);
    }
}
