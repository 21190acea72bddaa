//! Reloading rules (SIGHUP, `POST /-/reload`): load and validate every file first; a set with
//! mistakes leaves the running rules in place, is logged and counted; a good one replaces them.

use super::scheduler::{ReloadReport, SchedulerHandle};
use super::{RuleError, load_patterns};
use crate::telemetry;

#[derive(Clone)]
pub struct Reloader {
    pub paths: Vec<String>,
    /// The configured route names, which a rule's `route:` must be one of.
    pub routes: Vec<String>,
    pub scheduler: SchedulerHandle,
}

impl Reloader {
    pub async fn reload(&self) -> Result<ReloadReport, Vec<RuleError>> {
        let (paths, routes) = (self.paths.clone(), self.routes.clone());
        let loaded = tokio::task::spawn_blocking(move || load_patterns(&paths, Some(&routes)))
            .await
            .expect("loading rules panicked");
        let groups = match loaded {
            Ok(groups) => groups,
            Err(errors) => {
                telemetry::rule_reload(false);
                for error in &errors {
                    tracing::error!(%error, "rule reload refused; the running rules stay");
                }
                return Err(errors);
            }
        };
        match self.scheduler.replace(groups).await {
            Some(report) => {
                telemetry::rule_reload(true);
                tracing::info!(rules = report.n_rules, kept = report.n_kept, "rules reloaded");
                Ok(report)
            }
            None => Err(Vec::new()),
        }
    }
}
