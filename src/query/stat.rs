//! The statistics a query (and later a rule) can ask of merged rollups.

use std::fmt;

use thiserror::Error;

use crate::aggregate::rollup::Rollup;
use crate::model::MetricKind;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Last,
    /// Per second: counter increments, or timing observations.
    Rate,
    /// A quantile in `[0, 1]`, written `p50`, `p99`, `p99.9`.
    Quantile(f64),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StatError {
    #[error("unknown stat {0:?}; use count, sum, avg, min, max, last, rate or a quantile such as p50, p99, p99.9")]
    Unknown(String),
    #[error("{stat} needs a timing metric, but {name} is a {kind}")]
    NeedsTiming { stat: String, name: String, kind: MetricKind },
    #[error("rate needs a counter or a timing, but {name} is a gauge; use avg or last")]
    RateOfGauge { name: String },
}

impl Stat {
    pub fn parse(text: &str) -> Result<Stat, StatError> {
        Ok(match text {
            "count" => Stat::Count,
            "sum" => Stat::Sum,
            "avg" | "mean" => Stat::Avg,
            "min" => Stat::Min,
            "max" => Stat::Max,
            "last" => Stat::Last,
            "rate" => Stat::Rate,
            other => {
                let quantile = other
                    .strip_prefix('p')
                    .and_then(|digits| digits.parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p) && !other.contains(['e', 'E', '+', '-']));
                match quantile {
                    Some(p) => Stat::Quantile(p / 100.0),
                    None => return Err(StatError::Unknown(other.to_owned())),
                }
            }
        })
    }

    /// Whether the stat applies to series of `kind` named `name`.
    pub fn check_kind(&self, name: &str, kind: MetricKind) -> Result<(), StatError> {
        match (self, kind) {
            (Stat::Quantile(_), k) if k != MetricKind::Timing => {
                Err(StatError::NeedsTiming { stat: self.to_string(), name: name.to_owned(), kind: k })
            }
            (Stat::Rate, MetricKind::Gauge) => Err(StatError::RateOfGauge { name: name.to_owned() }),
            _ => Ok(()),
        }
    }

    /// The stat of `rollup` over a window `seconds` long, if it has data.
    pub fn evaluate(&self, rollup: &Rollup, kind: MetricKind, seconds: f64) -> Option<f64> {
        if rollup.count == 0.0 {
            return None;
        }
        Some(match self {
            Stat::Count => rollup.count,
            Stat::Sum => rollup.sum,
            Stat::Avg => rollup.sum / rollup.count,
            Stat::Min => rollup.min,
            Stat::Max => rollup.max,
            Stat::Last => rollup.last,
            Stat::Rate => match kind {
                MetricKind::Counter => rollup.sum / seconds,
                _ => rollup.count / seconds,
            },
            Stat::Quantile(q) => {
                // Clamp to the exact extremes: p0 is the min and p100 the max, to the digit.
                // (clamp panics when min > max, which a rollup of no finite value has.)
                let estimate = rollup.sketch.as_ref()?.quantile(*q)?;
                if rollup.min <= rollup.max { estimate.clamp(rollup.min, rollup.max) } else { estimate }
            }
        })
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Count => f.write_str("count"),
            Stat::Sum => f.write_str("sum"),
            Stat::Avg => f.write_str("avg"),
            Stat::Min => f.write_str("min"),
            Stat::Max => f.write_str("max"),
            Stat::Last => f.write_str("last"),
            Stat::Rate => f.write_str("rate"),
            Stat::Quantile(q) => write!(f, "p{}", q * 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantiles_and_names() {
        assert_eq!(Stat::parse("p99"), Ok(Stat::Quantile(0.99)));
        assert_eq!(Stat::parse("p99.9").map(|s| s.to_string()), Ok("p99.9".into()));
        assert_eq!(Stat::parse("p50"), Ok(Stat::Quantile(0.5)));
        assert_eq!(Stat::parse("rate"), Ok(Stat::Rate));
        assert!(Stat::parse("p101").is_err());
        assert!(Stat::parse("p-1").is_err());
        assert!(Stat::parse("median").is_err());
    }

    #[test]
    fn evaluates_a_rollup() {
        let mut rollup = Rollup::empty(true);
        for v in [0.1, 0.2, 0.3, 0.4] {
            rollup.observe(v, 1.0, 0);
        }
        assert_eq!(Stat::Count.evaluate(&rollup, MetricKind::Timing, 10.0), Some(4.0));
        assert_eq!(Stat::Rate.evaluate(&rollup, MetricKind::Timing, 10.0), Some(0.4));
        assert_eq!(Stat::Quantile(1.0).evaluate(&rollup, MetricKind::Timing, 10.0), Some(0.4));
        assert!((Stat::Avg.evaluate(&rollup, MetricKind::Timing, 10.0).unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(Stat::Max.evaluate(&Rollup::empty(false), MetricKind::Gauge, 1.0), None);
        assert!(Stat::Quantile(0.5).check_kind("m", MetricKind::Counter).is_err());
        assert!(Stat::Rate.check_kind("m", MetricKind::Gauge).is_err());
    }
}
