//! The aggregator's rules: admission by time, series limits, kinds, draining and snapshots.

use super::*;

fn settings() -> AggregatorSettings {
    AggregatorSettings {
        interval_s: 10,
        lateness_intervals: 2,
        future_intervals: 1,
        max_series: 3,
        idle_after_s: 3600,
        cumulative_idle_after_s: 7200,
    }
}

fn series(key: &str, kind: MetricKind) -> SeriesRef<'_> {
    SeriesRef { key, id: crate::model::series_id(key), kind }
}

const NOW_MS: i64 = 1_764_000_005_000; // 5 s into the interval starting at 1_764_000_000

#[test]
fn admits_within_lateness_and_refuses_outside() {
    let agg = Aggregator::new(settings(), 0);
    assert_eq!(agg.admit(NOW_MS, NOW_MS), Ok(1_764_000_000));
    assert_eq!(agg.admit(NOW_MS - 25_000, NOW_MS), Ok(1_763_999_980));
    assert!(matches!(agg.admit(NOW_MS - 26_000, NOW_MS), Err(RecordError::TooLate { .. })));
    assert_eq!(agg.admit(NOW_MS + 14_000, NOW_MS), Ok(1_764_000_010));
    assert!(matches!(agg.admit(NOW_MS + 15_000, NOW_MS), Err(RecordError::TooEarly { .. })));
}

#[test]
fn series_limit_refuses_new_series_only() {
    let agg = Aggregator::new(settings(), 0);
    let start = agg.admit(NOW_MS, NOW_MS).unwrap();
    for key in ["a", "b", "c"] {
        agg.record(series(key, MetricKind::Counter), start, NOW_MS, Observation::Increment(1.0)).unwrap();
    }
    let refused = agg.record(series("d", MetricKind::Counter), start, NOW_MS, Observation::Increment(1.0));
    assert_eq!(refused, Err(RecordError::TooManySeries { limit: 3 }));
    agg.record(series("a", MetricKind::Counter), start, NOW_MS, Observation::Increment(1.0)).unwrap();
    assert_eq!(agg.n_series(), 3);
}

#[test]
fn kind_mismatch_is_refused() {
    let agg = Aggregator::new(settings(), 0);
    agg.record(series("m", MetricKind::Gauge), 1_764_000_000, NOW_MS, Observation::Gauge(1.0)).unwrap();
    let err = agg.record(series("m", MetricKind::Counter), 1_764_000_000, NOW_MS, Observation::Increment(1.0));
    assert!(matches!(err, Err(RecordError::KindMismatch { existing: MetricKind::Gauge, .. })));
}

#[test]
fn drain_moves_closed_intervals_and_keeps_the_open_one() {
    let agg = Aggregator::new(settings(), 41);
    let key = series("lat", MetricKind::Timing);
    agg.record(key, 1_763_999_990, NOW_MS, Observation::Timings { values: &[0.1, 0.2], weight: 1.0 }).unwrap();
    agg.record(key, 1_764_000_000, NOW_MS, Observation::Timings { values: &[0.3], weight: 1.0 }).unwrap();
    let batch = agg.drain(1_764_000_000, NOW_MS);
    assert_eq!(batch.seq, 42);
    assert_eq!(batch.new_series.len(), 1);
    assert_eq!(batch.rollups.len(), 1);
    assert_eq!(batch.rollups[0].start_s, 1_763_999_990);
    assert_eq!(batch.rollups[0].rollup.count, 2.0);
    // The open interval stays in memory and is visible to snapshots, as is the batch in flight.
    let snap = agg.snapshot("lat", 0, i64::MAX);
    assert_eq!(snap.series[0].deltas.len(), 1);
    assert_eq!(snap.in_flight.len(), 1);
    agg.committed(42);
    assert!(agg.snapshot("lat", 0, i64::MAX).in_flight.is_empty());
    // A late sample for the flushed interval makes a new delta there.
    agg.record(key, 1_763_999_990, NOW_MS, Observation::Timings { values: &[0.4], weight: 1.0 }).unwrap();
    let final_batch = agg.drain(i64::MAX, NOW_MS);
    assert_eq!(final_batch.rollups.len(), 2);
    assert!(final_batch.new_series.is_empty(), "a series is announced once");
}

#[test]
fn floor_refuses_intervals_a_drain_has_closed() {
    let agg = Aggregator::new(settings(), 0);
    // A drain 30 s later raises the floor to the interval 20 s before that.
    agg.drain(0, NOW_MS + 30_000);
    let err = agg.record(series("g", MetricKind::Gauge), 1_764_000_000, NOW_MS, Observation::Gauge(1.0));
    assert!(matches!(err, Err(RecordError::TooLate { .. })));
}

#[test]
fn gauge_deltas_move_from_the_last_level() {
    let agg = Aggregator::new(settings(), 0);
    let key = series("pool", MetricKind::Gauge);
    agg.record(key, 1_764_000_000, NOW_MS, Observation::Gauge(10.0)).unwrap();
    agg.record(key, 1_764_000_000, NOW_MS + 1, Observation::GaugeDelta(-3.0)).unwrap();
    let batch = agg.drain(i64::MAX, NOW_MS);
    let rollup = &batch.rollups[0].rollup;
    assert_eq!((rollup.last, rollup.min, rollup.max), (7.0, 7.0, 10.0));
}

#[test]
fn cumulative_state_turns_totals_into_deltas_and_forgets_on_delete() {
    let agg = Aggregator::new(settings(), 0);
    let key = series("req_total", MetricKind::Counter);
    let counter_delta = |prev: Option<&[f64]>, cur: &[f64], rollup: &mut Rollup| {
        let delta = match prev {
            Some(p) if cur[0] >= p[0] => cur[0] - p[0],
            _ => cur[0],
        };
        rollup.increment(delta, NOW_MS);
    };
    agg.record_cumulative(key, 7, 1_764_000_000, &[5.0], counter_delta).unwrap();
    agg.record_cumulative(key, 7, 1_764_000_000, &[8.0], counter_delta).unwrap();
    assert_eq!(agg.forget_group(7), 1);
    agg.record_cumulative(key, 7, 1_764_000_000, &[2.0], counter_delta).unwrap();
    let batch = agg.drain(i64::MAX, NOW_MS);
    assert_eq!(batch.rollups[0].rollup.sum, 10.0);
    assert_eq!(batch.cumulative.iter().filter(|c| c.values.is_none()).count(), 1);
    assert_eq!(batch.cumulative.iter().find_map(|c| c.values.clone()), Some(vec![2.0]));
}

#[test]
fn another_sources_totals_are_not_a_previous_total() {
    let agg = Aggregator::new(settings(), 0);
    let key = series("req_total", MetricKind::Counter);
    let mut seen = Vec::new();
    for (group, total) in [(7, 5.0), (7, 8.0), (8, 4.0), (8, 6.0)] {
        agg.record_cumulative(key, group, 1_764_000_000, &[total], |previous, _, _| {
            seen.push(previous.map(<[f64]>::to_vec))
        })
        .unwrap();
    }
    assert_eq!(seen, [None, Some(vec![5.0]), None, Some(vec![4.0])]);
}

#[test]
fn a_snapshot_disagrees_with_a_read_that_sees_a_later_drain_committed() {
    let agg = Aggregator::new(settings(), 41);
    let key = series("lat", MetricKind::Timing);
    agg.record(key, 1_763_999_990, NOW_MS, Observation::Timings { values: &[0.1], weight: 1.0 }).unwrap();
    let before = agg.snapshot("lat", 0, i64::MAX);
    assert!(before.agrees_with(41), "nothing drained since: the store's 41 flushes are not in memory");
    let batch = agg.drain(i64::MAX, NOW_MS);
    // The sample is in `before`'s shards; a read that sees batch 42 committed has it on disk too.
    assert!(!before.agrees_with(batch.seq), "counted twice: take the snapshot again");
    let after = agg.snapshot("lat", 0, i64::MAX);
    assert!(after.agrees_with(batch.seq) && after.agrees_with(41), "taken after the drain: in flight, counted once");
    assert!(Snapshot::default().agrees_with(u64::MAX), "no memory read: nothing to count twice");
}

#[test]
fn idle_cumulative_state_is_forgotten_in_memory_and_on_disk() {
    let agg = Aggregator::new(settings(), 0);
    let key = series("jobs_total", MetricKind::Counter);
    let pushed_ms = NOW_MS;
    agg.record_cumulative(key, 7, 1_764_000_000, &[5.0], |_, _, rollup| rollup.increment(5.0, pushed_ms)).unwrap();
    let batch = agg.drain(i64::MAX, pushed_ms);
    assert_eq!(batch.cumulative.len(), 1, "the state is saved");
    // Within cumulative_idle_after (2 h): kept.
    let batch = agg.drain(i64::MAX, pushed_ms + 3_600_000);
    assert!(batch.cumulative.is_empty());
    assert_eq!(agg.n_series(), 1, "a series with cumulative state stays while it is not idle");
    // Past it: forgotten, the store told to delete it, and then the series itself leaves.
    let batch = agg.drain(i64::MAX, pushed_ms + 7_201_000);
    assert_eq!(batch.cumulative.len(), 1);
    assert!(batch.cumulative[0].values.is_none(), "deleted from the store too");
    assert_eq!(agg.n_series(), 0, "idle longer than idle_after too: evicted");
}

mod properties {
    //! Cumulative totals into deltas through the aggregator, for any sequence of totals with
    //! resets, across a restart that restores the saved state as the daemon does.

    use proptest::prelude::*;

    use super::*;
    use crate::ingest::cumulative::counter_delta;

    /// Counter totals: each step either grows the total or resets it to a smaller value.
    fn totals() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec((any::<bool>(), 0u32..1000), 1..60).prop_map(|steps| {
            let mut total = 0u32;
            steps
                .into_iter()
                .map(|(reset, n)| {
                    total = if reset { n % (total + 1) } else { total + n };
                    f64::from(total)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn the_deltas_add_up_to_what_each_process_counted(totals in totals(), restart_at in 0usize..60) {
            // What happened, counted directly: the first total whole, then each rise, and after
            // a reset the new total whole.
            let mut expected = 0.0;
            let mut previous: Option<f64> = None;
            for total in &totals {
                expected += match previous {
                    Some(before) if *total >= before => total - before,
                    _ => *total,
                };
                previous = Some(*total);
            }
            let key = series("jobs_total", MetricKind::Counter);
            let mut agg = Aggregator::new(settings(), 0);
            let mut stored = 0.0;
            let mut saved: Option<Vec<f64>> = None;
            for (idx, total) in totals.iter().enumerate() {
                if idx == restart_at {
                    // A restart: everything drained to the "store", a new aggregator given back
                    // the saved state.
                    let batch = agg.drain(i64::MAX, NOW_MS);
                    stored += batch.rollups.iter().map(|r| r.rollup.sum).sum::<f64>();
                    if let Some(change) = batch.cumulative.iter().find(|c| c.series == key.id) {
                        saved = change.values.clone();
                    }
                    agg = Aggregator::new(settings(), batch.seq);
                    if let Some(values) = saved.clone() {
                        agg.restore_cumulative(key, 1, values, NOW_MS / 1000);
                    }
                }
                agg.record_cumulative(key, 1, 1_764_000_000, &[*total], |before, now, rollup| {
                    rollup.increment(counter_delta(before, now[0]), NOW_MS)
                })
                .unwrap();
            }
            let batch = agg.drain(i64::MAX, NOW_MS);
            stored += batch.rollups.iter().map(|r| r.rollup.sum).sum::<f64>();
            prop_assert_eq!(stored, expected);
        }
    }
}
