//! Series selectors in PromQL's form: `name{label="v",other=~"re.*",x!="y",z!~"q"}`.

use regex::Regex;
use thiserror::Error;

use crate::model::Labels;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("selector is empty; write a metric name such as api_request_duration_seconds")]
    Empty,
    #[error("metric name {0:?} is not valid; use letters, digits, '_' and ':'")]
    BadName(String),
    #[error("at offset {offset}: {message}")]
    Syntax { offset: usize, message: String },
    #[error("regex {pattern:?} does not compile: {message}")]
    BadRegex { pattern: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// `label="value"`, which cannot fail.
    pub fn equal(label: &str, value: &str) -> Matcher {
        Matcher { label: label.to_owned(), op: MatchOp::Equal, value: value.to_owned(), regex: None }
    }

    pub fn new(label: &str, op: MatchOp, value: &str) -> Result<Matcher, SelectorError> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                // Anchored like Prometheus: the whole value must match.
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| SelectorError::BadRegex { pattern: value.to_owned(), message: e.to_string() })?,
            ),
            _ => None,
        };
        Ok(Matcher { label: label.to_owned(), op, value: value.to_owned(), regex })
    }

    /// A missing label matches as the empty string, as in Prometheus.
    pub fn matches(&self, labels: &Labels) -> bool {
        let actual = labels.get(&self.label).unwrap_or("");
        match self.op {
            MatchOp::Equal => actual == self.value,
            MatchOp::NotEqual => actual != self.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(actual)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(actual)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

impl std::fmt::Display for Selector {
    /// `name{label="value",other=~"re"}`, values quoted as Rust strings (unambiguous).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if self.matchers.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (idx, m) in self.matchers.iter().enumerate() {
            let op = match m.op {
                MatchOp::Equal => "=",
                MatchOp::NotEqual => "!=",
                MatchOp::Regex => "=~",
                MatchOp::NotRegex => "!~",
            };
            write!(f, "{}{}{op}{:?}", if idx > 0 { "," } else { "" }, m.label, m.value)?;
        }
        f.write_str("}")
    }
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SelectorError::Empty);
        }
        let (name, rest) = match text.find('{') {
            Some(open) => (text[..open].trim(), Some((open, &text[open + 1..]))),
            None => (text, None),
        };
        if !crate::ingest::names::is_valid_metric_name(name) {
            return Err(SelectorError::BadName(name.to_owned()));
        }
        let mut matchers = Vec::new();
        if let Some((open, body)) = rest {
            let body = body.trim_end();
            let Some(body) = body.strip_suffix('}') else {
                return Err(SelectorError::Syntax { offset: text.len(), message: "missing closing '}'".into() });
            };
            let mut parser = Parser { text: body, pos: 0, base: open + 1 };
            loop {
                parser.skip_space();
                if parser.done() {
                    break;
                }
                matchers.push(parser.matcher()?);
                parser.skip_space();
                if !parser.eat(",") && !parser.done() {
                    return Err(parser.error("expected ',' or '}' after a matcher"));
                }
            }
        }
        Ok(Selector { name: name.to_owned(), matchers })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Just matchers, `{a="x",b=~"y.*"}`, as silences use them.
    pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, SelectorError> {
        let text = text.trim();
        if !text.starts_with('{') {
            return Err(SelectorError::Syntax {
                offset: 0,
                message: "matchers start with '{', e.g. {service=\"api\"}".into(),
            });
        }
        // The selector parser wants a metric name; lend it one.
        Ok(Selector::parse(&format!("m{text}"))?.matchers)
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    base: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        self.pos += self.rest().len() - self.rest().trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn error(&self, message: &str) -> SelectorError {
        SelectorError::Syntax { offset: self.base + self.pos, message: message.to_owned() }
    }

    fn matcher(&mut self) -> Result<Matcher, SelectorError> {
        let len = self.rest().find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.error("expected a label name"));
        }
        let label = self.rest()[..len].to_owned();
        self.pos += len;
        self.skip_space();
        let op = if self.eat("=~") {
            MatchOp::Regex
        } else if self.eat("!~") {
            MatchOp::NotRegex
        } else if self.eat("!=") {
            MatchOp::NotEqual
        } else if self.eat("=") {
            MatchOp::Equal
        } else {
            return Err(self.error("expected one of = != =~ !~"));
        };
        self.skip_space();
        let value = self.value()?;
        Matcher::new(&label, op, &value)
    }

    /// A double-quoted string with `\"`, `\\` and `\n` escapes.
    fn value(&mut self) -> Result<String, SelectorError> {
        if !self.eat("\"") {
            return Err(self.error("expected a double-quoted value"));
        }
        let mut value = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((idx, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += idx + 1;
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                other => value.push(other),
            }
        }
        Err(self.error("unterminated string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn parses_and_matches() {
        let sel = Selector::parse(r#"cache_requests_total{tier=~"l[12]", result!="miss" , env!~"dev|test"}"#).unwrap();
        assert_eq!(sel.name, "cache_requests_total");
        assert_eq!(sel.matchers.len(), 3);
        assert!(sel.matches(&labels(&[("tier", "l1"), ("result", "hit")])));
        assert!(!sel.matches(&labels(&[("tier", "l3"), ("result", "hit")])));
        assert!(!sel.matches(&labels(&[("tier", "l1"), ("result", "miss")])));
        assert!(!sel.matches(&labels(&[("tier", "l2"), ("env", "dev")])));
        // Regexes are anchored.
        assert!(!Selector::parse(r#"m{tier=~"l"}"#).unwrap().matches(&labels(&[("tier", "l1")])));
    }

    #[test]
    fn bare_name_and_errors() {
        assert!(Selector::parse("up").unwrap().matchers.is_empty());
        assert!(matches!(Selector::parse(""), Err(SelectorError::Empty)));
        assert!(matches!(Selector::parse("9bad"), Err(SelectorError::BadName(_))));
        assert!(matches!(Selector::parse(r#"m{a="x""#), Err(SelectorError::Syntax { .. })));
        assert!(matches!(Selector::parse(r#"m{a~"x"}"#), Err(SelectorError::Syntax { .. })));
        assert!(matches!(Selector::parse(r#"m{a=~"("}"#), Err(SelectorError::BadRegex { .. })));
    }
}
