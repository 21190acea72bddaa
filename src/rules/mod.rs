//! Threshold rules: YAML rule files (`load`), what a rule is (`rule`), annotation templates,
//! and where in a file a rule sits (`locate`) for error messages.

pub(crate) mod eval;
pub(crate) mod gate;
mod load;
mod locate;
pub(crate) mod paging;
pub(crate) mod reload;
pub(crate) mod replay;
pub(crate) mod rule;
pub mod rule_test;
pub mod scheduler;
mod series;
pub(crate) mod template;

pub use self::load::{RuleError, load_file, load_patterns, parse};
