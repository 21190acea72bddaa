//! Influx line protocol, as Telegraf and InfluxDB clients write it:
//! `measurement[,tag=value…] field=value[,field=value…] [timestamp]`, one point per line.
//! Commas, spaces and equals signs are escaped with a backslash in names and tag values;
//! string field values are double-quoted with `\"` and `\\` escapes. Field values: floats,
//! integers (`12i`), unsigned (`12u`), booleans (`t`, `true`, `F`, …) and strings. Pure: no IO;
//! unescaped text goes into the caller's arena only when there was something to unescape.

use bumpalo::Bump;
use thiserror::Error;

/// A field's value as written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(&'a str),
}

impl FieldValue<'_> {
    /// The value as a number; strings have none.
    pub fn number(&self) -> Option<f64> {
        match *self {
            FieldValue::Float(v) => Some(v),
            FieldValue::Int(v) => Some(v as f64),
            FieldValue::UInt(v) => Some(v as f64),
            FieldValue::Bool(v) => Some(if v { 1.0 } else { 0.0 }),
            FieldValue::Str(_) => None,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InfluxError {
    #[error("no fields: write `measurement[,tag=value] field=value [timestamp]`")]
    NoFields,
    #[error("empty measurement name")]
    EmptyMeasurement,
    #[error("tag {0:?} has no '=value'")]
    BadTag(String),
    #[error("field {0:?} has no '=value'")]
    BadField(String),
    #[error("field {field:?}: {value:?} is not a number, integer (12i), unsigned (12u), boolean or quoted string")]
    BadValue { field: String, value: String },
    #[error("field {0:?}: the string value has no closing quote")]
    UnclosedString(String),
    #[error("timestamp {0:?} is not an integer")]
    BadTimestamp(String),
    #[error("text after the timestamp: {0:?}")]
    Trailing(String),
}

/// One point: `tags` and `fields` are filled into the caller's (reused) vectors.
pub struct Point<'a> {
    /// The measurement and tags as written (escapes and all): equal text, equal series.
    pub series: &'a str,
    pub measurement: &'a str,
    /// The timestamp as written, in the request's precision.
    pub timestamp: Option<i64>,
}

/// Parses one non-empty, non-comment line.
pub fn parse_line<'a>(
    line: &'a str,
    bump: &'a Bump,
    tags: &mut Vec<(&'a str, &'a str)>,
    fields: &mut Vec<(&'a str, FieldValue<'a>)>,
) -> Result<Point<'a>, InfluxError> {
    tags.clear();
    fields.clear();
    let series_end = next_space(line, 0, false).ok_or(InfluxError::NoFields)?;
    let fields_start = skip_spaces(line, series_end);
    let fields_end = next_space(line, fields_start, true).unwrap_or(line.len());
    let rest = line[fields_end..].trim();

    let series = &line[..series_end];
    let mut parts = split_unescaped(series, b',', false);
    let measurement = unescape(parts.next().unwrap_or_default(), bump);
    if measurement.is_empty() {
        return Err(InfluxError::EmptyMeasurement);
    }
    for tag in parts {
        let (key, value) = split_pair(tag).ok_or_else(|| InfluxError::BadTag(tag.to_owned()))?;
        tags.push((unescape(key, bump), unescape(value, bump)));
    }
    let field_text = &line[fields_start..fields_end];
    if field_text.is_empty() {
        return Err(InfluxError::NoFields);
    }
    for field in split_unescaped(field_text, b',', true) {
        let (key, raw) = split_pair(field).ok_or_else(|| InfluxError::BadField(field.to_owned()))?;
        let key = unescape(key, bump);
        fields.push((key, field_value(key, raw, bump)?));
    }
    let timestamp = match rest.split_once(char::is_whitespace) {
        _ if rest.is_empty() => None,
        Some((_, after)) => return Err(InfluxError::Trailing(after.trim().to_owned())),
        None => Some(rest.parse::<i64>().map_err(|_| InfluxError::BadTimestamp(rest.to_owned()))?),
    };
    Ok(Point { series, measurement, timestamp })
}

fn field_value<'a>(key: &str, raw: &'a str, bump: &'a Bump) -> Result<FieldValue<'a>, InfluxError> {
    let bad = || InfluxError::BadValue { field: key.to_owned(), value: raw.to_owned() };
    if let Some(quoted) = raw.strip_prefix('"') {
        let inner = quoted.strip_suffix('"').ok_or_else(|| InfluxError::UnclosedString(key.to_owned()))?;
        let text = if inner.contains('\\') {
            bump.alloc_str(&inner.replace("\\\"", "\"").replace("\\\\", "\\"))
        } else {
            inner
        };
        return Ok(FieldValue::Str(text));
    }
    match raw {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
        _ => {}
    }
    if let Some(int) = raw.strip_suffix('i') {
        return int.parse().map(FieldValue::Int).map_err(|_| bad());
    }
    if let Some(uint) = raw.strip_suffix('u') {
        return uint.parse().map(FieldValue::UInt).map_err(|_| bad());
    }
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(FieldValue::Float(v)),
        _ => Err(bad()),
    }
}

/// The byte index of the next space at or after `from` that is neither escaped nor (when
/// `quotes` counts) inside a double-quoted string.
fn next_space(text: &str, from: usize, quotes: bool) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut i, mut in_quotes) = (from, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'"' if quotes => in_quotes = !in_quotes,
            b' ' if !in_quotes => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn skip_spaces(text: &str, from: usize) -> usize {
    from + text[from..].bytes().take_while(|b| *b == b' ').count()
}

/// Splits on `sep` bytes that are neither escaped nor (with `quotes`) inside quotes.
fn split_unescaped(text: &str, sep: u8, quotes: bool) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let (mut start, mut i, mut in_quotes) = (0, 0, false);
    std::iter::from_fn(move || {
        if start > bytes.len() {
            return None;
        }
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 1,
                b'"' if quotes => in_quotes = !in_quotes,
                b if b == sep && !in_quotes => {
                    let part = &text[start..i];
                    i += 1;
                    start = i;
                    return Some(part);
                }
                _ => {}
            }
            i += 1;
        }
        let part = &text[start.min(bytes.len())..];
        start = bytes.len() + 1;
        Some(part)
    })
}

/// `key=value` split at the first unescaped `=`.
fn split_pair(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'=' => return Some((&text[..i], &text[i + 1..])).filter(|(k, _)| !k.is_empty()),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `text` without its backslash escapes (into `bump` only if it had any).
fn unescape<'a>(text: &'a str, bump: &'a Bump) -> &'a str {
    if !text.contains('\\') {
        return text;
    }
    let mut out = bumpalo::collections::String::with_capacity_in(text.len(), bump);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next @ (',' | ' ' | '=' | '\\' | '"')) => out.push(next),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out.into_bump_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed line, owned: measurement, tags, fields, timestamp.
    type Parsed = (String, Vec<(String, String)>, Vec<(String, FieldValue<'static>)>, Option<i64>);

    fn parse(line: &str) -> Result<Parsed, InfluxError> {
        let bump = Box::leak(Box::new(Bump::new()));
        let line: &'static str = Box::leak(line.to_owned().into_boxed_str());
        let (mut tags, mut fields) = (Vec::new(), Vec::new());
        let point = parse_line(line, bump, &mut tags, &mut fields)?;
        Ok((
            point.measurement.to_owned(),
            tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            fields.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            point.timestamp,
        ))
    }

    #[test]
    fn points_with_tags_typed_fields_and_a_timestamp() {
        let (m, tags, fields, ts) =
            parse("cpu,host=web-1,region=eu usage_idle=92.5,procs=12i,free=3u,up=t,state=\"ok\" 1732449600000000000")
                .unwrap();
        assert_eq!(m, "cpu");
        assert_eq!(tags, [("host".into(), "web-1".into()), ("region".into(), "eu".into())]);
        assert_eq!(
            fields,
            [
                ("usage_idle".into(), FieldValue::Float(92.5)),
                ("procs".into(), FieldValue::Int(12)),
                ("free".into(), FieldValue::UInt(3)),
                ("up".into(), FieldValue::Bool(true)),
                ("state".into(), FieldValue::Str("ok")),
            ]
        );
        assert_eq!(ts, Some(1_732_449_600_000_000_000));
        assert_eq!(parse("mem free=1").unwrap().3, None);
    }

    #[test]
    fn escapes_and_quoted_strings_with_spaces_and_commas() {
        let (m, tags, fields, ts) =
            parse(r#"disk\ io,path=/var\,lib,mount\=point=a\ b msg="a \"b\", c d",n=1 5"#).unwrap();
        assert_eq!(m, "disk io");
        assert_eq!(tags, [("path".into(), "/var,lib".into()), ("mount=point".into(), "a b".into())]);
        assert_eq!(fields, [("msg".into(), FieldValue::Str("a \"b\", c d")), ("n".into(), FieldValue::Float(1.0))]);
        assert_eq!(ts, Some(5));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(parse("cpu").unwrap_err(), InfluxError::NoFields);
        assert_eq!(parse(",host=a v=1").unwrap_err(), InfluxError::EmptyMeasurement);
        assert_eq!(parse("cpu,host v=1").unwrap_err(), InfluxError::BadTag("host".into()));
        assert_eq!(parse("cpu v").unwrap_err(), InfluxError::BadField("v".into()));
        assert!(matches!(parse("cpu v=12x").unwrap_err(), InfluxError::BadValue { .. }));
        assert!(matches!(parse("cpu v=1.5i").unwrap_err(), InfluxError::BadValue { .. }));
        assert_eq!(parse("cpu s=\"open").unwrap_err(), InfluxError::UnclosedString("s".into()));
        assert_eq!(parse("cpu v=1 soon").unwrap_err(), InfluxError::BadTimestamp("soon".into()));
        assert_eq!(parse("cpu v=1 5 6").unwrap_err(), InfluxError::Trailing("6".into()));
    }
}
