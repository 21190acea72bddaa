//! Threshold rules: YAML rule files (`load`), what a rule is (`rule`), annotation templates,
//! and where in a file a rule sits (`locate`) for error messages.

pub mod eval;
pub mod gate;
mod load;
mod locate;
pub mod paging;
pub mod reload;
pub mod replay;
pub mod rule;
pub mod rule_test;
pub mod scheduler;
mod series;
pub mod template;

pub use self::load::{RuleError, load_file, load_patterns, parse};
