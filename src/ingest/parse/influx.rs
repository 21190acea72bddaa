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
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    /// The measurement and tags as written (escapes and all): equal text, equal series.
    pub series: &'a str,
    pub measurement: &'a str,
    /// The timestamp as written, in the request's precision.
    pub timestamp: Option<i64>,
}

/// Parses one non-empty, non-comment line, in one pass over its bytes.
pub fn parse_line<'a>(
    line: &'a str,
    bump: &'a Bump,
    tags: &mut Vec<(&'a str, &'a str)>,
    fields: &mut Vec<(&'a str, FieldValue<'a>)>,
) -> Result<Point<'a>, InfluxError> {
    let (measurement, series_end) = parse_series(line, bump, tags)?;
    let timestamp = parse_fields(line, series_end, bump, fields)?;
    Ok(Point { series: &line[..series_end], measurement, timestamp })
}

/// The measurement and tags (into `tags`) of a line, and where they end.
fn parse_series<'a>(
    line: &'a str,
    bump: &'a Bump,
    tags: &mut Vec<(&'a str, &'a str)>,
) -> Result<(&'a str, usize), InfluxError> {
    tags.clear();
    let bytes = line.as_bytes();
    // The measurement and tags, up to the first unescaped space: `start` is where the current
    // part began, `eq` its first unescaped '=', `escaped` whether it has a backslash.
    let (mut i, mut start, mut eq, mut escaped) = (0, 0, None, false);
    let mut measurement = None;
    let series_end = loop {
        let Some(&b) = bytes.get(i) else { return Err(InfluxError::NoFields) };
        match b {
            b'\\' => {
                escaped = true;
                i += 2;
                continue;
            }
            b'=' if measurement.is_some() && eq.is_none() => eq = Some(i),
            b',' | b' ' => {
                let part = &line[start..i];
                match (measurement, eq) {
                    (None, _) => {
                        let name = if escaped { unescape(part, bump) } else { part };
                        if name.is_empty() {
                            return Err(InfluxError::EmptyMeasurement);
                        }
                        measurement = Some(name);
                    }
                    (Some(_), Some(eq)) if eq > start => {
                        let (key, value) = (&line[start..eq], &line[eq + 1..i]);
                        tags.push(if escaped { (unescape(key, bump), unescape(value, bump)) } else { (key, value) });
                    }
                    (Some(_), _) => return Err(InfluxError::BadTag(part.to_owned())),
                }
                (start, eq, escaped) = (i + 1, None, false);
                if b == b' ' {
                    break i;
                }
            }
            _ => {}
        }
        i += 1;
    };
    Ok((measurement.expect("set at the first separator"), series_end))
}

/// The fields (into `fields`) and timestamp of a line whose measurement and tags end at
/// `series_end`: what is left to read of a line that repeats an earlier line's series.
pub fn parse_fields<'a>(
    line: &'a str,
    series_end: usize,
    bump: &'a Bump,
    fields: &mut Vec<(&'a str, FieldValue<'a>)>,
) -> Result<Option<i64>, InfluxError> {
    fields.clear();
    let bytes = line.as_bytes();
    // The fields, up to the next space outside a quoted string.
    let fields_start = skip_spaces(line, series_end);
    if fields_start == bytes.len() {
        return Err(InfluxError::NoFields);
    }
    let (mut i, mut start, mut eq, mut escaped, mut in_quotes) = (fields_start, fields_start, None, false, false);
    let fields_end = loop {
        let b = bytes.get(i).copied();
        match b {
            Some(b'\\') => {
                escaped |= eq.is_none();
                i += 2;
                continue;
            }
            Some(b'"') => in_quotes = !in_quotes,
            Some(b'=') if !in_quotes && eq.is_none() => eq = Some(i),
            Some(b',' | b' ') | None if !in_quotes || b.is_none() => {
                let end = i.min(bytes.len());
                let field = &line[start..end];
                let Some(at) = eq.filter(|at| *at > start) else { return Err(InfluxError::BadField(field.to_owned())) };
                let key = &line[start..at];
                let key = if escaped { unescape(key, bump) } else { key };
                fields.push((key, field_value(key, &line[at + 1..end], bump)?));
                (start, eq, escaped) = (i + 1, None, false);
                if b != Some(b',') {
                    break end;
                }
            }
            _ => {}
        }
        i += 1;
    };
    let rest = line[fields_end..].trim();
    Ok(match rest.split_once(char::is_whitespace) {
        _ if rest.is_empty() => None,
        Some((_, after)) => return Err(InfluxError::Trailing(after.trim().to_owned())),
        None => Some(rest.parse::<i64>().map_err(|_| InfluxError::BadTimestamp(rest.to_owned()))?),
    })
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

fn skip_spaces(text: &str, from: usize) -> usize {
    from + text[from..].bytes().take_while(|b| *b == b' ').count()
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
        assert_eq!(parse("cpu,=a v=1").unwrap_err(), InfluxError::BadTag("=a".into()));
        assert_eq!(parse("cpu,host=a, v=1").unwrap_err(), InfluxError::BadTag("".into()));
        assert_eq!(parse("cpu =1").unwrap_err(), InfluxError::BadField("=1".into()));
        assert_eq!(parse("cpu v=1,").unwrap_err(), InfluxError::BadField("".into()));
        assert_eq!(parse("cpu\\").unwrap_err(), InfluxError::NoFields);
        assert_eq!(parse("cpu   ").unwrap_err(), InfluxError::NoFields);
        // Runs of spaces between the sections are one separator; '=' in a tag value is text.
        let (_, tags, fields, ts) = parse("cpu,q=a=b  v=1   5").unwrap();
        assert_eq!(
            (tags, fields, ts),
            (vec![("q".into(), "a=b".into())], vec![("v".into(), FieldValue::Float(1.0))], Some(5))
        );
    }
}
