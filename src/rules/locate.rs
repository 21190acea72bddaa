//! Where each group, rule and rule key is written in a rule file, read from the YAML parser's
//! spans, for messages about mistakes that span several fields and so have no single value for
//! the deserializer to point at. Groups and rules are found by their index in the file, so two
//! rules of one name, flow style, quoting or comments cannot mislead it.

use saphyr_parser::{Event, Parser};

/// A 1-based (line, column).
pub type Position = (usize, usize);

/// The positions of every group and rule in one rule file.
#[derive(Debug, Default)]
pub struct Positions {
    groups: Vec<GroupPositions>,
}

#[derive(Debug, Default)]
struct GroupPositions {
    start: Option<Position>,
    name: Option<Position>,
    rules: Vec<RulePositions>,
}

#[derive(Debug, Default)]
struct RulePositions {
    start: Option<Position>,
    keys: Vec<(String, Position)>,
}

/// An open mapping (with the key whose value is being read, if any) or sequence (with the
/// index of the next item).
enum Frame {
    Map(Option<String>),
    Seq(usize),
}

/// One step of the path from the document's root to a node.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl Positions {
    /// Reads `text`'s structure. In a file the YAML parser cannot read, what comes before the
    /// syntax error is found and the rest is not (the error is reported on its own).
    pub fn read(text: &str) -> Positions {
        let mut positions = Positions::default();
        let mut frames: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let at = (span.start.line(), span.start.col() + 1);
            match event {
                Event::Scalar(value, ..) => {
                    positions.node(&frames, at, Some(&value));
                    complete(&mut frames, &value);
                }
                Event::Alias(_) => {
                    positions.node(&frames, at, None);
                    complete(&mut frames, "");
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    positions.node(&frames, at, None);
                    let is_map = matches!(event, Event::MappingStart(..));
                    frames.push(if is_map { Frame::Map(None) } else { Frame::Seq(0) });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    frames.pop();
                    complete(&mut frames, "");
                }
                _ => {}
            }
        }
        positions
    }

    /// Where group `group` (0-based, in file order) is written: its `name:` key.
    pub fn group(&self, group: usize) -> Option<Position> {
        let found = self.groups.get(group)?;
        found.name.or(found.start)
    }

    /// Where rule `rule` of group `group` is written: its `key:` when given and present, else
    /// its `alert:` key, else where the rule starts.
    pub fn rule(&self, group: usize, rule: usize, key: Option<&str>) -> Option<Position> {
        let found = self.groups.get(group)?.rules.get(rule)?;
        let key_at = |name: &str| found.keys.iter().find(|(k, _)| k == name).map(|(_, at)| *at);
        key.and_then(key_at).or_else(|| key_at("alert")).or(found.start)
    }

    /// Records a node starting at `at` under the open `frames`; `key` is its text when it is a
    /// scalar.
    fn node(&mut self, frames: &[Frame], at: Position, key: Option<&str>) {
        let in_key_position = matches!(frames.last(), Some(Frame::Map(None)));
        let mut path: Vec<Step> = frames
            .iter()
            .map(|frame| match frame {
                Frame::Map(key) => Step::Key(key.as_deref().unwrap_or("")),
                Frame::Seq(index) => Step::Index(*index),
            })
            .collect();
        if in_key_position {
            let Some(key) = key else { return };
            path.pop();
            path.push(Step::Key(key));
            self.key(&path, at);
        } else {
            self.value(&path, at);
        }
    }

    fn value(&mut self, path: &[Step], at: Position) {
        match path {
            [Step::Key("groups"), Step::Index(g)] => {
                self.group_mut(*g).start.get_or_insert(at);
            }
            [Step::Key("groups"), Step::Index(g), Step::Key("rules"), Step::Index(r)] => {
                self.rule_mut(*g, *r).start.get_or_insert(at);
            }
            _ => {}
        }
    }

    fn key(&mut self, path: &[Step], at: Position) {
        match path {
            [Step::Key("groups"), Step::Index(g), Step::Key("name")] => {
                self.group_mut(*g).name.get_or_insert(at);
            }
            [Step::Key("groups"), Step::Index(g), Step::Key("rules"), Step::Index(r), Step::Key(key)] => {
                self.rule_mut(*g, *r).keys.push(((*key).to_owned(), at));
            }
            _ => {}
        }
    }

    fn group_mut(&mut self, group: usize) -> &mut GroupPositions {
        if self.groups.len() <= group {
            self.groups.resize_with(group + 1, GroupPositions::default);
        }
        &mut self.groups[group]
    }

    fn rule_mut(&mut self, group: usize, rule: usize) -> &mut RulePositions {
        let rules = &mut self.group_mut(group).rules;
        if rules.len() <= rule {
            rules.resize_with(rule + 1, RulePositions::default);
        }
        &mut rules[rule]
    }
}

/// A node ended inside the innermost open frame: a mapping moves between key and value (a
/// scalar key is kept as `text`), a sequence to its next index.
fn complete(frames: &mut [Frame], text: &str) {
    match frames.last_mut() {
        Some(Frame::Map(key @ None)) => *key = Some(text.to_owned()),
        Some(Frame::Map(key)) => *key = None,
        Some(Frame::Seq(next)) => *next += 1,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "groups:
  - name: api
    rules:
      - alert: Slow
        metric: lat
        route: pager
      - alert: \"Other\"
        route: email
  # a comment that says alert: Slow
  - {name: \"db\", rules: [{metric: q, alert: Slow}]}
";

    #[test]
    fn finds_groups_rules_and_their_keys_by_index() {
        let positions = Positions::read(TEXT);
        assert_eq!(positions.group(0), Some((2, 5)));
        assert_eq!(positions.rule(0, 0, None), Some((4, 9)));
        assert_eq!(positions.rule(0, 0, Some("route")), Some((6, 9)));
        assert_eq!(positions.rule(0, 1, Some("route")), Some((8, 9)));
        // A key the rule does not have points at the rule itself.
        assert_eq!(positions.rule(0, 0, Some("window")), Some((4, 9)));
        // The second rule named Slow, in flow style in another group, is found where it is.
        assert_eq!(positions.group(1), Some((10, 6)));
        assert_eq!(positions.rule(1, 0, None), Some((10, 38)));
        assert_eq!(positions.rule(1, 0, Some("metric")), Some((10, 27)));
        assert_eq!(positions.rule(1, 1, None), None);
        assert_eq!(positions.group(2), None);
    }

    #[test]
    fn a_syntax_error_ends_what_is_found() {
        let positions = Positions::read("groups:\n  - name: a\n  - name: [b\n  - name: c\n");
        assert_eq!(positions.group(0), Some((2, 5)));
        assert_eq!(positions.group(2), None);
    }
}
