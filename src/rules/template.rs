//! Annotation templates: `{{ labels.endpoint }}`, `{{ value | duration }}`, `{{ threshold }}`,
//! `{{ rule }}`, `{{ severity }}`, with filters `duration` (seconds as ms/s), `percent` and
//! `round`. Parsed and checked when rules load; rendering cannot fail.

use std::fmt::Write as _;

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unclosed '{{{{' in template; close it with '}}}}'")]
    Unclosed,
    #[error("unknown template variable {0:?}; use labels.<name>, value, threshold, rule or severity")]
    UnknownVariable(String),
    #[error("unknown template filter {0:?}; use duration, percent or round")]
    UnknownFilter(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Variable {
    Label(String),
    Value,
    Threshold,
    Rule,
    Severity,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Filter {
    Duration,
    Percent,
    Round,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(Variable, Option<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template can refer to.
pub struct Context<'a> {
    pub labels: &'a dyn Fn(&str) -> Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub rule: &'a str,
    pub severity: &'a str,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..].find("}}").ok_or(TemplateError::Unclosed)? + open;
            let inner = rest[open + 2..close].trim();
            let (expr, filter) = match inner.split_once('|') {
                Some((expr, filter)) => (expr.trim(), Some(filter.trim())),
                None => (inner, None),
            };
            let variable = match expr {
                "value" => Variable::Value,
                "threshold" => Variable::Threshold,
                "rule" => Variable::Rule,
                "severity" => Variable::Severity,
                other => match other.strip_prefix("labels.") {
                    Some(name) if crate::ingest::names::is_valid_label_name(name) => Variable::Label(name.to_owned()),
                    _ => return Err(TemplateError::UnknownVariable(other.to_owned())),
                },
            };
            let filter = match filter {
                None => None,
                Some("duration") => Some(Filter::Duration),
                Some("percent") => Some(Filter::Percent),
                Some("round") => Some(Filter::Round),
                Some(other) => return Err(TemplateError::UnknownFilter(other.to_owned())),
            };
            parts.push(Part::Field(variable, filter));
            rest = &rest[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    pub fn render(&self, context: &Context<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(variable, filter) => {
                    let number = match variable {
                        Variable::Value => context.value,
                        Variable::Threshold => context.threshold,
                        Variable::Label(name) => {
                            out.push_str(&(context.labels)(name).unwrap_or_default());
                            continue;
                        }
                        Variable::Rule => {
                            out.push_str(context.rule);
                            continue;
                        }
                        Variable::Severity => {
                            out.push_str(context.severity);
                            continue;
                        }
                    };
                    match number {
                        Some(n) => format_number(&mut out, n, *filter),
                        None => out.push_str("n/a"),
                    }
                }
            }
        }
        out
    }
}

fn format_number(out: &mut String, n: f64, filter: Option<Filter>) {
    let _ = match filter {
        Some(Filter::Duration) if n.abs() < 1.0 => write!(out, "{} ms", trim(n * 1000.0)),
        Some(Filter::Duration) => write!(out, "{} s", trim(n)),
        Some(Filter::Percent) => write!(out, "{} %", trim(n * 100.0)),
        Some(Filter::Round) => write!(out, "{}", n.round()),
        None => write!(out, "{}", trim(n)),
    };
}

/// Three significant decimals at most, without trailing zeros.
fn trim(n: f64) -> String {
    let text = format!("{n:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_values_and_filters() {
        let template = Template::parse("p99 of {{ labels.endpoint }} is {{value|duration}} (limit {{ threshold | duration }}), hit {{ value | percent }}").unwrap();
        let labels = |name: &str| (name == "endpoint").then(|| "/vendors/:id".to_owned());
        let text = template.render(&Context {
            labels: &labels,
            value: Some(0.2125),
            threshold: Some(0.2),
            rule: "r",
            severity: "critical",
        });
        assert_eq!(text, "p99 of /vendors/:id is 212.5 ms (limit 200 ms), hit 21.25 %");
        let long = Template::parse("{{ value | duration }} {{ rule }}/{{ severity }} {{ labels.missing }}.").unwrap();
        let none = |_: &str| None;
        assert_eq!(
            long.render(&Context { labels: &none, value: Some(1.5), threshold: None, rule: "r", severity: "warning" }),
            "1.5 s r/warning ."
        );
    }

    #[test]
    fn rejects_mistakes_at_load() {
        assert_eq!(Template::parse("{{ value"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("{{ valu }}"), Err(TemplateError::UnknownVariable("valu".into())));
        assert_eq!(Template::parse("{{ value | seconds }}"), Err(TemplateError::UnknownFilter("seconds".into())));
        assert_eq!(Template::parse("{{ labels.9x }}"), Err(TemplateError::UnknownVariable("labels.9x".into())));
    }
}
