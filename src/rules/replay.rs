//! Rules replayed in memory: measure, verdict and state-machine step per alert instance, as the
//! scheduler does, without storage or history. `perfwatch test-rules` and `perfwatch gate` run
//! on it, so they reach the same verdicts the daemon would.

use std::collections::{BTreeMap, BTreeSet};

use super::eval::{Measured, Source, measure, verdict};
use super::rule::{Group, Rule};
use super::scheduler::alert_labels;
use crate::alert::state::{AlertState, Instance, Timing, Verdict, step};
use crate::model::Labels;

/// Which instance: a rule of a group, and one group of its `group_by` labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InstanceKey {
    pub group: String,
    pub rule: String,
    pub labels: Labels,
}

/// The pending and firing instances so far; inactive ones are forgotten.
#[derive(Debug, Default)]
pub struct Replay {
    instances: BTreeMap<InstanceKey, Instance>,
}

impl Replay {
    /// Evaluates every rule of `group` at `now_s` and steps its instances. Returns what each
    /// rule measured, in rule order.
    pub fn evaluate<S: Source + ?Sized>(
        &mut self,
        group: &Group,
        now_s: i64,
        source: &mut S,
    ) -> Result<Vec<Vec<Measured>>, S::Error> {
        let mut all = Vec::with_capacity(group.rules.len());
        for rule in &group.rules {
            let timing = Timing { for_s: rule.for_s, keep_firing_for_s: rule.keep_firing_for_s };
            let measured = measure(rule, now_s, source)?;
            let mut seen = BTreeSet::new();
            for result in &measured {
                let key =
                    InstanceKey { group: group.name.clone(), rule: rule.name.clone(), labels: result.labels.clone() };
                let current = self.instances.get(&key).cloned().unwrap_or_default();
                let verdict = verdict(rule, result, current.state == AlertState::Firing);
                self.set(key.clone(), step(&current, verdict, now_s, timing).0);
                seen.insert(key);
            }
            // Instances whose group no longer has data: their breach is over (as in the daemon).
            let gone: Vec<InstanceKey> = self
                .instances
                .keys()
                .filter(|k| k.group == group.name && k.rule == rule.name && !seen.contains(*k))
                .cloned()
                .collect();
            for key in gone {
                let current = self.instances[&key].clone();
                self.set(key, step(&current, Verdict::Clear { value: None }, now_s, timing).0);
            }
            all.push(measured);
        }
        Ok(all)
    }

    /// The pending and firing instances of every rule, in key order.
    pub fn active(&self) -> impl Iterator<Item = (&InstanceKey, &Instance)> {
        self.instances.iter()
    }

    fn set(&mut self, key: InstanceKey, instance: Instance) {
        if instance.state == AlertState::Inactive {
            self.instances.remove(&key);
        } else {
            self.instances.insert(key, instance);
        }
    }
}

/// An instance as people read it: every label (rule labels, group labels, `alertname` and
/// `severity`) and the rendered annotations.
pub fn describe(
    rule: &Rule,
    group_labels: &Labels,
    instance: &Instance,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let all = alert_labels(rule, group_labels);
    let mut labels: BTreeMap<String, String> = all.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let severity = instance.severity.map_or("", |s| s.as_str());
    labels.insert("severity".into(), severity.to_owned());
    (labels, rule.annotations_for(&all, instance.value, instance.threshold, severity))
}
