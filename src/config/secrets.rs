//! Secrets named in the config: read from a file or an environment variable, never both,
//! never written into the config itself.

use std::path::Path;

use crate::secret::Secret;

/// The secret `what` from `file` or `env`; a problem (and `None`) when it cannot be had.
pub(super) fn read_secret(
    what: &str,
    file: Option<&Path>,
    env: Option<&str>,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    match (file, env) {
        (Some(_), Some(_)) => {
            problems.push(format!("{what}: set {what}_file or {what}_env, not both"));
            None
        }
        (Some(path), None) => match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim().to_owned())),
            Ok(_) => {
                problems.push(format!("{what}_file {} is empty", path.display()));
                None
            }
            Err(err) => {
                problems.push(format!("{what}_file {}: {err}", path.display()));
                None
            }
        },
        (None, Some(var)) => match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Some(Secret::new(value.trim().to_owned())),
            _ => {
                problems.push(format!("{what}_env: environment variable {var} is not set or empty"));
                None
            }
        },
        (None, None) => None,
    }
}
