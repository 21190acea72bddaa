//! The web-platform workload: API endpoints with lognormal latencies, L1/L2/L3 cache hits and
//! misses with their latencies, DB query timings, pool gauges (in use and size), realtime
//! update latency and 5xx counts — every metric the shipped rules watch — spread over as many
//! series as asked for (an `instance` label multiplies the base set).

use rand::Rng;
use rand::rngs::SmallRng;

/// How a series' values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Timing in seconds: lognormal with this median and sigma.
    Latency { median: f64, sigma: f64 },
    /// Counter increments: on average this many per sample.
    Count { mean: f64 },
    /// Gauge level uniformly in `[low, high]`.
    Level { low: f64, high: f64 },
}

#[derive(Debug, Clone)]
pub struct SeriesSpec {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub shape: Shape,
}

impl SeriesSpec {
    pub fn is_timing(&self) -> bool {
        matches!(self.shape, Shape::Latency { .. })
    }

    pub fn kind(&self) -> &'static str {
        match self.shape {
            Shape::Latency { .. } => "timing",
            Shape::Count { .. } => "counter",
            Shape::Level { .. } => "gauge",
        }
    }

    /// One value of this series.
    pub fn sample(&self, rng: &mut SmallRng) -> f64 {
        match self.shape {
            Shape::Latency { median, sigma } => median * (sigma * standard_normal(rng)).exp(),
            Shape::Count { mean } => (mean * 2.0 * rng.random::<f64>()).round(),
            Shape::Level { low, high } => (low + (high - low) * rng.random::<f64>()).round(),
        }
    }
}

fn standard_normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The base set of one instance of the platform.
fn base_set() -> Vec<SeriesSpec> {
    let mut out = Vec::new();
    let endpoints = [
        ("/vendors/:id", 0.045),
        ("/vendors/search", 0.120),
        ("/weddings/:id/timeline", 0.060),
        ("/bookings", 0.080),
        ("/checkout", 0.150),
        ("/health", 0.002),
    ];
    for (endpoint, median) in endpoints {
        let labels = vec![("service", "api-gateway".to_owned()), ("endpoint", endpoint.to_owned())];
        out.push(SeriesSpec {
            name: "api_request_duration_seconds",
            labels: labels.clone(),
            shape: Shape::Latency { median, sigma: 0.6 },
        });
        let mut errors = labels;
        errors.push(("code", "5xx".to_owned()));
        out.push(SeriesSpec { name: "http_responses_total", labels: errors, shape: Shape::Count { mean: 0.2 } });
    }
    for (tier, hit_median, miss_median) in [("l1", 0.0002, 0.0008), ("l2", 0.002, 0.006), ("l3", 0.015, 0.040)] {
        for (result, median, mean) in [("hit", hit_median, 40.0), ("miss", miss_median, 4.0)] {
            let labels = vec![("tier", tier.to_owned()), ("result", result.to_owned())];
            out.push(SeriesSpec {
                name: "cache_request_duration_seconds",
                labels: labels.clone(),
                shape: Shape::Latency { median, sigma: 0.5 },
            });
            out.push(SeriesSpec { name: "cache_requests_total", labels, shape: Shape::Count { mean } });
        }
    }
    for (query, median) in
        [("vendor_by_id", 0.003), ("search_vendors", 0.025), ("insert_booking", 0.008), ("timeline", 0.012)]
    {
        out.push(SeriesSpec {
            name: "db_query_duration_seconds",
            labels: vec![("query", query.to_owned())],
            shape: Shape::Latency { median, sigma: 0.7 },
        });
    }
    for (pool, size) in [("primary", 50.0), ("replica", 30.0)] {
        let labels = vec![("pool", pool.to_owned())];
        out.push(SeriesSpec {
            name: "db_pool_connections_in_use",
            labels: labels.clone(),
            shape: Shape::Level { low: 0.0, high: size },
        });
        out.push(SeriesSpec { name: "db_pool_connections_max", labels, shape: Shape::Level { low: size, high: size } });
    }
    out.push(SeriesSpec {
        name: "realtime_update_duration_seconds",
        labels: vec![("service", "timeline".to_owned())],
        shape: Shape::Latency { median: 0.03, sigma: 0.5 },
    });
    out
}

/// How many `instance` values `n_series` series span.
pub fn instances(n_series: usize) -> usize {
    n_series.div_ceil(base_set().len())
}

/// `n_series` series: the base set repeated over `instance` labels, cut to size.
pub fn catalog(n_series: usize) -> Vec<SeriesSpec> {
    let base = base_set();
    (0..n_series)
        .map(|idx| {
            let mut spec = base[idx % base.len()].clone();
            spec.labels.push(("instance", format!("web-{}", idx / base.len())));
            spec
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn catalog_has_distinct_series_of_every_kind() {
        let specs = catalog(100);
        assert_eq!(specs.len(), 100);
        let mut keys: Vec<String> = specs.iter().map(|s| format!("{}{:?}", s.name, s.labels)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 100);
        for kind in ["timing", "counter", "gauge"] {
            assert!(specs.iter().any(|s| s.kind() == kind), "{kind}");
        }
        let mut rng = SmallRng::seed_from_u64(1);
        let api = &specs[0];
        let mut values: Vec<f64> = (0..2001).map(|_| api.sample(&mut rng)).collect();
        values.sort_by(f64::total_cmp);
        let median = values[1000];
        assert!((0.035..0.055).contains(&median), "median {median}");
    }
}
