//! What PromQL expressions evaluate to: at one step a scalar, a string or an instant vector;
//! for the whole query a [`QueryValue`]. Series are named by an index into the query's
//! [`LabelTable`], so a step copies numbers, not label sets.

use rustc_hash::FxHashMap;

use super::histogram::Histogram;
use crate::model::Labels;

/// A series of this query: an index into its [`LabelTable`].
pub type SeriesIdx = u32;

/// A sample's value: a float, or a timing's histogram.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    F(f64),
    H(Box<Histogram>),
}

impl Val {
    pub fn float(&self) -> Option<f64> {
        match self {
            Val::F(v) => Some(*v),
            Val::H(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub series: SeriesIdx,
    pub val: Val,
}

/// An expression's value at one evaluation time.
#[derive(Debug, Clone)]
pub enum StepValue {
    Scalar(f64),
    Str(String),
    Vector(Vec<Sample>),
}

/// The answer to a query, in Prometheus's result types. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Scalar(i64, f64),
    String(i64, String),
    Vector(Vec<(Labels, i64, Val)>),
    Matrix(Vec<(Labels, Vec<(i64, Val)>)>),
}

/// Every label set a query meets, each stored once.
#[derive(Debug, Default)]
pub struct LabelTable {
    sets: Vec<Labels>,
    index: FxHashMap<Labels, SeriesIdx>,
}

impl LabelTable {
    pub fn intern(&mut self, labels: Labels) -> SeriesIdx {
        if let Some(idx) = self.index.get(&labels) {
            return *idx;
        }
        let idx = self.sets.len() as SeriesIdx;
        self.sets.push(labels.clone());
        self.index.insert(labels, idx);
        idx
    }

    pub fn get(&self, idx: SeriesIdx) -> &Labels {
        &self.sets[idx as usize]
    }
}

/// The metric name label.
pub const NAME: &str = "__name__";

/// `labels` without `__name__`.
pub fn without_name(labels: &Labels) -> Labels {
    Labels::new(labels.pairs().iter().filter(|(k, _)| k != NAME).cloned().collect())
}

/// `labels` with `name` set to `value` (removed when `value` is empty, as Prometheus does).
pub fn with_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut pairs: Vec<(String, String)> = labels.pairs().iter().filter(|(k, _)| k != name).cloned().collect();
    if !value.is_empty() {
        pairs.push((name.to_owned(), value.to_owned()));
    }
    Labels::new(pairs)
}

/// A float as Prometheus writes it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`): the
/// shortest digits that read back exactly, never an exponent; `NaN`, `+Inf`, `-Inf`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}
