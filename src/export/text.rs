//! Prometheus text exposition (format 0.0.4), pure: families with HELP and TYPE, label values
//! escaped, numbers as Prometheus reads them. Kept free of I/O so the format is tested alone.

use std::fmt::Write;

use crate::model::Labels;

/// One metric family being written.
pub struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl<'a> Family<'a> {
    /// Starts family `name` of `kind` (counter, gauge, summary) with its help text.
    pub fn start(out: &'a mut String, name: &'a str, kind: &str, help: &str) -> Family<'a> {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out, name }
    }

    /// A sample of this family: `suffix` is "" or e.g. "_sum"; `extra` one more label (a
    /// summary's quantile).
    pub fn sample(&mut self, suffix: &str, labels: &Labels, extra: Option<(&str, &str)>, value: f64) {
        self.out.push_str(self.name);
        self.out.push_str(suffix);
        let mut pairs = labels.iter().chain(extra).peekable();
        if pairs.peek().is_some() {
            self.out.push('{');
            for (idx, (name, value)) in pairs.enumerate() {
                if idx > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{name}=\"{}\"", escape(value));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&number(value));
        self.out.push('\n');
    }
}

/// A label value escaped as the format requires: backslash, double quote, newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads back the same.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_help_type_and_escaped_labels() {
        let mut out = String::new();
        let labels = Labels::new(vec![("endpoint".into(), "/say \"hi\"\\n".into()), ("tier".into(), "l1".into())]);
        let mut family = Family::start(&mut out, "lat_seconds", "summary", "line one\nline two");
        family.sample("", &labels, Some(("quantile", "0.99")), 0.25);
        family.sample("_count", &Labels::new(Vec::new()), None, f64::NAN);
        assert_eq!(
            out,
            "# HELP lat_seconds line one\\nline two\n# TYPE lat_seconds summary\n\
             lat_seconds{endpoint=\"/say \\\"hi\\\"\\\\n\",tier=\"l1\",quantile=\"0.99\"} 0.25\n\
             lat_seconds_count NaN\n"
        );
        assert_eq!(
            (number(f64::INFINITY), number(-f64::INFINITY), number(1e-7)),
            ("+Inf".into(), "-Inf".into(), "0.0000001".into())
        );
    }
}
