//! Finds where a rule (or one of its keys) is written in a rule file, for messages about
//! mistakes that span several fields and so have no single value for the YAML parser to point
//! at. Pure text search over the file as written.

/// (line, column), 1-based, of `alert: <name>` in `text`, or of `key:` inside that rule when
/// `key` is given and present.
pub fn rule_position(text: &str, name: &str, key: Option<&str>) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let (alert_line, alert_col) = lines.iter().enumerate().find_map(|(idx, line)| {
        let col = line.find("alert:")?;
        let value = line[col + "alert:".len()..].trim().trim_matches(['"', '\'']);
        (value == name).then_some((idx, col))
    })?;
    let Some(key) = key else { return Some((alert_line + 1, alert_col + 1)) };
    let needle = format!("{key}:");
    for (idx, line) in lines.iter().enumerate().skip(alert_line + 1) {
        let indent = line.len() - line.trim_start().len();
        let content = line.trim_start();
        let ends_rule =
            !content.is_empty() && !content.starts_with('#') && (indent < alert_col || content.starts_with("- "));
        if ends_rule && indent <= alert_col {
            break;
        }
        if content.starts_with(&needle) {
            return Some((idx + 1, indent + 1));
        }
    }
    Some((alert_line + 1, alert_col + 1))
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
";

    #[test]
    fn finds_rules_and_their_keys() {
        assert_eq!(rule_position(TEXT, "Slow", None), Some((4, 9)));
        assert_eq!(rule_position(TEXT, "Slow", Some("route")), Some((6, 9)));
        assert_eq!(rule_position(TEXT, "Other", Some("route")), Some((8, 9)));
        // A key the rule does not have points at the rule itself.
        assert_eq!(rule_position(TEXT, "Slow", Some("window")), Some((4, 9)));
        assert_eq!(rule_position(TEXT, "Missing", None), None);
    }
}
