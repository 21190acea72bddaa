//! Prometheus's HTTP API envelopes, written byte for byte as Prometheus writes them: values
//! as strings in Go's float format, times as unix seconds with at most millisecond digits,
//! timings as native histograms (`histogram`/`histograms` with `[rule, lower, upper, count]`
//! buckets).

use std::fmt::Write;

use crate::model::Labels;
use crate::query::promql::histogram::Histogram;
use crate::query::promql::value::{QueryValue, Val, format_float};

/// `{"status":"success","data":<data>}`, with `warnings` when there are any.
pub fn success(data: &str, warnings: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":");
        out.push_str(&serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into()));
    }
    out.push('}');
    out
}

/// `{"status":"error","errorType":<kind>,"error":<message>}`.
pub fn error(kind: &str, message: &str) -> String {
    format!("{{\"status\":\"error\",\"errorType\":{},\"error\":{}}}", string(kind), string(message))
}

/// A query's `data`: `{"resultType":…,"result":…}`.
pub fn query_data(value: &QueryValue) -> String {
    let mut out = String::new();
    match value {
        QueryValue::Scalar(t, v) => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            pair(&mut out, *t, &string(&format_float(*v)));
        }
        QueryValue::String(t, s) => {
            out.push_str("{\"resultType\":\"string\",\"result\":");
            pair(&mut out, *t, &string(s));
        }
        QueryValue::Vector(samples) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (idx, (labels, t, val)) in samples.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                metric(&mut out, labels);
                match val {
                    Val::F(v) => {
                        out.push_str(",\"value\":");
                        pair(&mut out, *t, &string(&format_float(*v)));
                    }
                    Val::H(h) => {
                        out.push_str(",\"histogram\":");
                        pair(&mut out, *t, &histogram(h));
                    }
                }
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (idx, (labels, points)) in series.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                metric(&mut out, labels);
                let floats: Vec<(i64, f64)> = points.iter().filter_map(|(t, v)| v.float().map(|f| (*t, f))).collect();
                if !floats.is_empty() {
                    out.push_str(",\"values\":[");
                    for (i, (t, v)) in floats.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        pair(&mut out, *t, &string(&format_float(*v)));
                    }
                    out.push(']');
                }
                let histograms: Vec<(i64, &Histogram)> = points
                    .iter()
                    .filter_map(|(t, v)| match v {
                        Val::H(h) => Some((*t, h.as_ref())),
                        Val::F(_) => None,
                    })
                    .collect();
                if !histograms.is_empty() {
                    out.push_str(",\"histograms\":[");
                    for (i, (t, h)) in histograms.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        pair(&mut out, *t, &histogram(h));
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// A label set as a JSON object.
pub fn metric(out: &mut String, labels: &Labels) {
    out.push('{');
    for (idx, (k, v)) in labels.iter().enumerate() {
        if idx > 0 {
            out.push(',');
        }
        out.push_str(&string(k));
        out.push(':');
        out.push_str(&string(v));
    }
    out.push('}');
}

/// A JSON string.
pub fn string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `[<time>,<value>]`.
fn pair(out: &mut String, t_ms: i64, value: &str) {
    out.push('[');
    out.push_str(&seconds(t_ms));
    out.push(',');
    out.push_str(value);
    out.push(']');
}

/// Unix milliseconds as Prometheus writes them: seconds, with the fraction's trailing zeros
/// (and a whole second's point) left out.
pub fn seconds(t_ms: i64) -> String {
    let (secs, ms) = (t_ms.div_euclid(1000), t_ms.rem_euclid(1000));
    if ms == 0 {
        return secs.to_string();
    }
    if secs < 0 {
        return format_float(t_ms as f64 / 1000.0);
    }
    let mut text = format!("{secs}.{ms:03}");
    while text.ends_with('0') {
        text.pop();
    }
    text
}

fn histogram(h: &Histogram) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"count\":{},\"sum\":{},\"buckets\":[",
        string(&format_float(h.count())),
        string(&format_float(h.sum()))
    );
    for (idx, (rule, lower, upper, count)) in h.buckets().enumerate() {
        if idx > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "[{rule},{},{},{}]",
            string(&format_float(lower)),
            string(&format_float(upper)),
            string(&format_float(count))
        );
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_values_read_as_prometheus_writes_them() {
        assert_eq!(seconds(1_700_000_000_000), "1700000000");
        assert_eq!(seconds(1_700_000_000_500), "1700000000.5");
        assert_eq!(seconds(1_700_000_000_123), "1700000000.123");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        let labels = Labels::new(vec![("__name__".into(), "up".into()), ("job".into(), "a\"b".into())]);
        let value = QueryValue::Vector(vec![(labels, 1_700_000_000_000, Val::F(1.0))]);
        assert_eq!(
            query_data(&value),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1700000000,"1"]}]}"#
        );
        assert_eq!(
            error("bad_data", "no \"query\""),
            r#"{"status":"error","errorType":"bad_data","error":"no \"query\""}"#
        );
    }
}
