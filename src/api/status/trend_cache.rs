//! The status page's trends kept between loads. A trend is a point a minute over the last
//! hour; a minute's point can change only while samples for it may still arrive (the
//! aggregator's lateness) and be flushed, so once past that it is kept, and each load
//! computes only the minutes that may still move: with a page refreshing every 15 s, about a
//! sixtieth of the hour's rows are read instead of all of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// A series' points per value of the grouping labels, oldest first.
pub(crate) type Trends = BTreeMap<String, Vec<(i64, f64)>>;

/// Entries not used for this long are dropped (a slowest-rows trend whose rows changed).
const UNUSED_S: i64 = 600;
/// At most this many trends are kept.
const MAX_ENTRIES: usize = 256;

#[derive(Default)]
pub(crate) struct TrendCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    /// Points before this time are final.
    settled_to_s: i64,
    points: Trends,
    used_s: i64,
}

impl TrendCache {
    /// Where computing must start for a trend from `from_s` (the start of the first minute
    /// not yet final, or `from_s`), and the final points before that.
    pub fn settled(&self, key: &str, from_s: i64) -> (i64, Trends) {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match entries.get(key) {
            Some(entry) if entry.settled_to_s > from_s => {
                (entry.settled_to_s, within(&entry.points, from_s, entry.settled_to_s))
            }
            _ => (from_s, Trends::new()),
        }
    }

    /// Keeps `trends`' points before `settled_to_s` as final for `key`.
    pub fn keep(&self, key: &str, trends: &Trends, settled_to_s: i64, now_s: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, entry| entry.used_s > now_s - UNUSED_S);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            return;
        }
        let points = within(trends, i64::MIN, settled_to_s);
        entries.insert(key.to_owned(), Entry { settled_to_s, points, used_s: now_s });
    }
}

/// `settled` (points before `split_s`) followed by `fresh` (points from `split_s` on).
pub fn joined(settled: Trends, fresh: Trends, split_s: i64) -> Trends {
    let mut out = settled;
    for (group, points) in fresh {
        out.entry(group).or_default().extend(points.into_iter().filter(|(t, _)| *t >= split_s));
    }
    out
}

/// The points in `[from_s, to_s)`; groups left with none are dropped.
fn within(trends: &Trends, from_s: i64, to_s: i64) -> Trends {
    trends
        .iter()
        .map(|(group, points)| {
            (group.clone(), points.iter().copied().filter(|(t, _)| *t >= from_s && *t < to_s).collect::<Vec<_>>())
        })
        .filter(|(_, points)| !points.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trends(points: &[(&str, i64, f64)]) -> Trends {
        let mut out = Trends::new();
        for (group, t, v) in points {
            out.entry(group.to_string()).or_default().push((*t, *v));
        }
        out
    }

    #[test]
    fn settled_minutes_are_kept_and_only_the_rest_is_computed_again() {
        let cache = TrendCache::default();
        assert_eq!(cache.settled("p99", 0), (0, Trends::new()), "nothing kept yet: compute it all");
        let first = trends(&[("a", 0, 1.0), ("a", 60, 2.0), ("a", 120, 3.0), ("b", 60, 9.0)]);
        cache.keep("p99", &first, 120, 200);
        // An hour later the window starts at 60: the kept 60 s point, computing from 120.
        let (from, kept) = cache.settled("p99", 60);
        assert_eq!((from, kept.clone()), (120, trends(&[("a", 60, 2.0), ("b", 60, 9.0)])));
        let fresh = trends(&[("a", 60, 99.0), ("a", 120, 4.0), ("c", 180, 5.0)]);
        assert_eq!(
            joined(kept, fresh, from),
            trends(&[("a", 60, 2.0), ("a", 120, 4.0), ("b", 60, 9.0), ("c", 180, 5.0)]),
            "fresh points replace nothing settled and fill in from where computing started"
        );
        // A window past everything kept computes it all again; unused entries go.
        assert_eq!(cache.settled("p99", 500).0, 500);
        cache.keep("other", &first, 60, 200 + UNUSED_S + 1);
        assert_eq!(cache.settled("p99", 0).0, 0, "p99 unused for too long: dropped");
    }
}
