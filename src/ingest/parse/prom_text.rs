//! The Prometheus text exposition format (0.0.4), as Pushgateway clients send it: `# TYPE`
//! lines group samples into families; `# HELP` and other comments are skipped. The whole body
//! is parsed before anything is applied, so a malformed push changes nothing and its error
//! names the line. Pure: no IO.

use bumpalo::Bump;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct PromTextError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub line: usize,
    pub name: &'a str,
    /// In the request's arena: no heap allocation per line.
    pub labels: &'a [(&'a str, &'a str)],
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    pub name: &'a str,
    pub kind: PromType,
    pub samples: Vec<Sample<'a>>,
}

/// Parses a whole body into families, or the first error with its line number.
pub fn parse<'a>(text: &'a str, bump: &'a Bump) -> Result<Vec<Family<'a>>, PromTextError> {
    let mut families: Vec<Family<'a>> = Vec::new();
    let mut labels = Vec::new();
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = raw.trim_matches([' ', '\t', '\r']);
        if line.is_empty() {
            continue;
        }
        let err = |message: String| PromTextError { line: line_no, message };
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                let name = words.next().ok_or_else(|| err("# TYPE needs a metric name".into()))?;
                let kind = match words.next() {
                    Some("counter") => PromType::Counter,
                    Some("gauge") => PromType::Gauge,
                    Some("histogram") => PromType::Histogram,
                    Some("summary") => PromType::Summary,
                    Some("untyped") | Some("unknown") => PromType::Untyped,
                    other => return Err(err(format!("unknown metric type {other:?} in # TYPE"))),
                };
                if families.iter().any(|f| f.name == name) {
                    return Err(err(format!("second # TYPE line for {name}")));
                }
                families.push(Family { name, kind, samples: Vec::new() });
            }
            continue;
        }
        let sample = parse_sample(line, line_no, bump, &mut labels)?;
        match families.last_mut().filter(|f| belongs(f, sample.name)) {
            Some(family) => family.samples.push(sample),
            None => {
                if let Some(earlier) = families.iter().find(|f| belongs(f, sample.name)) {
                    return Err(err(format!("sample for {} is not next to the rest of its family", earlier.name)));
                }
                families.push(Family { name: sample.name, kind: PromType::Untyped, samples: vec![sample] });
            }
        }
    }
    Ok(families)
}

/// Whether a sample named `name` is part of `family`.
fn belongs(family: &Family<'_>, name: &str) -> bool {
    let Some(suffix) = name.strip_prefix(family.name) else { return false };
    match family.kind {
        PromType::Histogram => matches!(suffix, "_bucket" | "_sum" | "_count"),
        PromType::Summary => matches!(suffix, "" | "_sum" | "_count"),
        PromType::Counter => matches!(suffix, "" | "_total"),
        _ => suffix.is_empty(),
    }
}

fn parse_sample<'a>(
    line: &'a str,
    line_no: usize,
    bump: &'a Bump,
    labels: &mut Vec<(&'a str, &'a str)>,
) -> Result<Sample<'a>, PromTextError> {
    let err = |message: String| PromTextError { line: line_no, message };
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !crate::ingest::names::is_valid_metric_name(name) {
        return Err(err(format!("{name:?} is not a valid metric name")));
    }
    let mut rest = &line[name_end..];
    labels.clear();
    if let Some(body) = rest.strip_prefix('{') {
        rest = parse_labels(body, labels, bump).map_err(|m| err(m.to_owned()))?;
    }
    let labels = &*bump.alloc_slice_copy(labels);
    let mut fields = rest.split_whitespace();
    let value_text = fields.next().ok_or_else(|| err(format!("{name} has no value")))?;
    let value = parse_value(value_text).ok_or_else(|| err(format!("value {value_text:?} is not a number")))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(ts) => Some(ts.parse::<i64>().map_err(|_| err(format!("timestamp {ts:?} is not integer milliseconds")))?),
    };
    if let Some(extra) = fields.next() {
        return Err(err(format!("unexpected {extra:?} after the timestamp")));
    }
    Ok(Sample { line: line_no, name, labels, value, timestamp_ms })
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Parses `a="x",b="y"}` and returns what follows the `}`.
fn parse_labels<'a>(
    mut body: &'a str,
    out: &mut Vec<(&'a str, &'a str)>,
    bump: &'a Bump,
) -> Result<&'a str, &'static str> {
    loop {
        body = body.trim_start();
        if let Some(rest) = body.strip_prefix('}') {
            return Ok(rest);
        }
        let eq = body.find('=').ok_or("label without '='")?;
        let label = body[..eq].trim();
        if !crate::ingest::names::is_valid_label_name(label) {
            return Err("invalid label name");
        }
        body = body[eq + 1..].trim_start().strip_prefix('"').ok_or("label value must be double-quoted")?;
        let (value, rest) = take_quoted(body, bump).ok_or("unterminated label value")?;
        out.push((label, value));
        body = rest.trim_start();
        body = body.strip_prefix(',').unwrap_or(body);
    }
}

/// The string up to the closing quote (unescaped, in `bump` only if it had escapes).
fn take_quoted<'a>(body: &'a str, bump: &'a Bump) -> Option<(&'a str, &'a str)> {
    let bytes = body.as_bytes();
    let mut idx = 0;
    let mut escaped = false;
    while idx < bytes.len() {
        match bytes[idx] {
            b'\\' => {
                escaped = true;
                idx += 2;
                continue;
            }
            b'"' => break,
            _ => idx += 1,
        }
    }
    if idx >= bytes.len() {
        return None;
    }
    let raw = &body[..idx];
    let rest = &body[idx + 1..];
    if !escaped {
        return Some((raw, rest));
    }
    let mut value = bumpalo::collections::String::with_capacity_in(raw.len(), bump);
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => value.push('\n'),
                Some(other) => value.push(other),
                None => value.push('\\'),
            }
        } else {
            value.push(c);
        }
    }
    Some((value.into_bump_str(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"# HELP http_requests_total The total.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3
# TYPE rpc_duration_seconds histogram
rpc_duration_seconds_bucket{le="0.05"} 24054
rpc_duration_seconds_bucket{le="+Inf"} 144320
rpc_duration_seconds_sum 53423
rpc_duration_seconds_count 144320
# TYPE lag summary
lag{quantile="0.99"} NaN
lag_sum 1.5
lag_count 2
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_labels 12.47
"#;

    #[test]
    fn parses_families_labels_and_escapes() {
        let bump = Bump::new();
        let families = parse(BODY, &bump).unwrap();
        let summary: Vec<(&str, PromType, usize)> =
            families.iter().map(|f| (f.name, f.kind, f.samples.len())).collect();
        assert_eq!(
            summary,
            vec![
                ("http_requests_total", PromType::Counter, 2),
                ("rpc_duration_seconds", PromType::Histogram, 4),
                ("lag", PromType::Summary, 3),
                ("msdos_file_access_time_seconds", PromType::Untyped, 1),
                ("metric_without_labels", PromType::Untyped, 1),
            ]
        );
        let first = &families[0].samples[0];
        assert_eq!(first.labels, vec![("method", "post"), ("code", "200")]);
        assert_eq!((first.value, first.timestamp_ms), (1027.0, Some(1_395_066_363_000)));
        assert_eq!(families[1].samples[1].labels, vec![("le", "+Inf")]);
        assert!(families[2].samples[0].value.is_nan());
        let msdos = &families[3].samples[0];
        assert_eq!(msdos.labels[0], ("path", "C:\\DIR\\FILE.TXT"));
        assert_eq!(msdos.labels[1], ("error", "Cannot find file:\n\"FILE.TXT\""));
    }

    #[test]
    fn errors_name_the_line() {
        let bump = Bump::new();
        let check = |body: &str, line: usize, fragment: &str| {
            let err = parse(body, &bump).unwrap_err();
            assert_eq!(err.line, line, "{body}: {err}");
            assert!(err.message.contains(fragment), "{body}: {err}");
        };
        check("ok 1\nbad{ 2\n", 2, "label");
        check("a 1\n# TYPE a gauge\n", 2, "");
        check("m{a=\"x} 1\n", 1, "unterminated");
        check("m one\n", 1, "not a number");
        check("m 1 2 3\n", 1, "unexpected");
        check("9m 1\n", 1, "not a valid metric name");
        check("# TYPE m flavour\n", 1, "unknown metric type");
        check("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n", 5, "not next to");
    }
}
