//! The one naming rule every protocol goes through, so a metric sent over StatsD, Pushgateway
//! text, JSON, Influx or OTLP lands in the same series: metric names keep `[a-zA-Z0-9_:]` and label names
//! `[a-zA-Z0-9_]`; every other character becomes `_`, and a leading digit gets a `_` prefix.
//! (`api.latency-ms` → `api_latency_ms`.) Label values are kept as sent.

use bumpalo::Bump;

pub fn is_valid_metric_name(name: &str) -> bool {
    is_valid(name, true)
}

pub fn is_valid_label_name(name: &str) -> bool {
    is_valid(name, false)
}

fn is_valid(name: &str, colon_ok: bool) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || (colon_ok && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon_ok && c == ':'))
}

/// `name` if it already follows the rule, else its normalised copy in `bump`.
pub fn metric_name<'a>(name: &'a str, bump: &'a Bump) -> &'a str {
    normalise(name, true, bump)
}

pub fn label_name<'a>(name: &'a str, bump: &'a Bump) -> &'a str {
    normalise(name, false, bump)
}

fn normalise<'a>(name: &'a str, colon_ok: bool, bump: &'a Bump) -> &'a str {
    if is_valid(name, colon_ok) {
        return name;
    }
    let mut out = bumpalo::collections::String::with_capacity_in(name.len() + 1, bump);
    if name.starts_with(|c: char| c.is_ascii_digit()) || name.is_empty() {
        out.push('_');
    }
    for c in name.chars() {
        let keep = c.is_ascii_alphanumeric() || c == '_' || (colon_ok && c == ':');
        out.push(if keep { c } else { '_' });
    }
    out.into_bump_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_by_one_rule() {
        let bump = Bump::new();
        let check = |input: &str, metric: &str, label: &str| {
            assert_eq!(metric_name(input, &bump), metric, "metric {input}");
            assert_eq!(label_name(input, &bump), label, "label {input}");
        };
        check("api_latency", "api_latency", "api_latency");
        check("api.latency-ms", "api_latency_ms", "api_latency_ms");
        check("ns:rule", "ns:rule", "ns_rule");
        check("5xx", "_5xx", "_5xx");
        check("", "_", "_");
        check("café", "caf_", "caf_");
        assert!(is_valid_metric_name("a:b_c9"));
        assert!(!is_valid_label_name("a:b"));
    }
}
