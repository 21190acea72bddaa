//! The series, label names and label values PromQL can see, for Prometheus's `/series`,
//! `/labels` and `/label/<name>/values`: every stored and in-memory series under the names it
//! shows as (a timing also as `<name>_count` and `<name>_sum`), filtered by `match[]`
//! selectors.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::parser::{Expr, VectorSelector};

use super::PromError;
use super::source::{Shape, matches, views_of};
use crate::aggregate::Aggregator;
use crate::model::{Labels, MetricKind, SeriesKey};
use crate::store::Reader;

/// `match[]` parameters as selectors; each must be an instant vector selector.
pub fn selectors(matchers: &[String]) -> Result<Vec<VectorSelector>, PromError> {
    matchers
        .iter()
        .map(|text| match super::parse(text)? {
            Expr::VectorSelector(vs) if vs.name.is_some() || vs.matchers.matchers.iter().any(|m| !m.is_match("")) => {
                Ok(vs)
            }
            Expr::VectorSelector(_) => Err(PromError::BadData(format!(
                "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher: {text}"
            ))),
            _ => Err(PromError::BadData(format!("invalid parameter \"match[]\": {text} is not a series selector"))),
        })
        .collect()
}

/// Every series' canonical key and kind, stored or only in memory so far.
async fn known(reader: &Reader, aggregator: &Aggregator) -> Result<Vec<(String, MetricKind)>, PromError> {
    let mut known: Vec<(String, MetricKind)> =
        aggregator.series_keys().into_iter().map(|(_, key, kind)| (key.into(), kind)).collect();
    let stored = reader.read(|tx| tx.all_series()).await?;
    known.extend(stored.into_iter().map(|s| (s.key, s.kind)));
    Ok(known)
}

/// Each metric name PromQL shows with its Prometheus type: timings are histograms, their
/// `_count` and `_sum` counters.
pub async fn metric_types(
    reader: &Reader,
    aggregator: &Aggregator,
) -> Result<BTreeMap<String, &'static str>, PromError> {
    let mut out = BTreeMap::new();
    for (key, kind) in known(reader, aggregator).await? {
        let Some(parsed) = SeriesKey::parse(&key) else { continue };
        for (name, shape) in views_of(&parsed.name, kind) {
            let metric_type = match shape {
                Shape::Timing => "histogram",
                Shape::Gauge => "gauge",
                Shape::Counter | Shape::TimingCount | Shape::TimingSum => "counter",
            };
            out.insert(name, metric_type);
        }
    }
    Ok(out)
}

/// Every series any of `selectors` matches (all of them when there are none), sorted.
pub async fn series(
    reader: &Reader,
    aggregator: &Aggregator,
    selectors: Vec<VectorSelector>,
) -> Result<Vec<Labels>, PromError> {
    let known = known(reader, aggregator).await?;
    let mut out: BTreeSet<Labels> = BTreeSet::new();
    for (key, kind) in known {
        let Some(parsed) = SeriesKey::parse(&key) else { continue };
        for (name, _) in views_of(&parsed.name, kind) {
            let mut pairs = parsed.labels.pairs().to_vec();
            pairs.push((super::value::NAME.to_owned(), name));
            let labels = Labels::new(pairs);
            if selectors.is_empty()
                || selectors.iter().any(|s| matches(&s.matchers, &labels) && name_matches(s, &labels))
            {
                out.insert(labels);
            }
        }
    }
    Ok(out.into_iter().collect())
}

fn name_matches(selector: &VectorSelector, labels: &Labels) -> bool {
    selector.name.as_deref().is_none_or(|name| labels.get(super::value::NAME) == Some(name))
}

/// The label names of `series`, sorted.
pub fn label_names(series: &[Labels]) -> Vec<String> {
    let names: BTreeSet<&str> = series.iter().flat_map(|l| l.iter().map(|(k, _)| k)).collect();
    names.into_iter().map(str::to_owned).collect()
}

/// The values label `name` takes in `series`, sorted.
pub fn label_values(series: &[Labels], name: &str) -> Vec<String> {
    let values: BTreeSet<&str> = series.iter().filter_map(|l| l.get(name)).collect();
    values.into_iter().map(str::to_owned).collect()
}
