//! Downsampling and retention on a real SQLite file: coarse tiers hold exactly the merge of
//! the fine rows, queries read the coarse tier where it is complete, old rows expire.

use std::sync::Arc;

use perfwatch::aggregate::batch::{FlushBatch, NewSeries, RollupDelta};
use perfwatch::aggregate::rollup::Rollup;
use perfwatch::aggregate::{Aggregator, AggregatorSettings};
use perfwatch::model::{MetricKind, series_id};
use perfwatch::query::selector::Selector;
use perfwatch::query::stat::Stat;
use perfwatch::query::{QueryRequest, execute};
use perfwatch::store::tiers::Tier;
use perfwatch::store::{Store, StoreSettings};

use crate::support::{assert_within, exact_quantile, latencies};

/// Two whole hours before the current one, so the writer's own expiry (on the real clock)
/// leaves the test's rows alone.
fn t0() -> i64 {
    let now = perfwatch::clock::now_s();
    now - now.rem_euclid(3600) - 7200
}

fn tiers() -> Vec<Tier> {
    vec![
        Tier { resolution_s: 10, retention_s: 3 * 3600 },
        Tier { resolution_s: 60, retention_s: 10 * 3600 },
        Tier { resolution_s: 3600, retention_s: 100 * 3600 },
    ]
}

/// An aggregator over `store`, numbering its flushes after the store's last, as the daemon's.
async fn aggregator(store: &Store) -> Aggregator {
    let settings = AggregatorSettings {
        interval_s: 10,
        lateness_intervals: 2,
        future_intervals: 1,
        max_series: 10,
        idle_after_s: 3600,
        cumulative_idle_after_s: 86_400,
    };
    let last_seq = store.reader.read(|tx| tx.last_flush_seq()).await.unwrap();
    Aggregator::new(settings, last_seq)
}

/// The tiers' watermarks once the writer has downsampled tier `tier` up to `want`: the writer
/// answers a flush as soon as it commits and downsamples after, so a read right after a flush
/// can see the previous watermark. Gives up (and returns what it saw) after ten seconds.
async fn watermarks_once(store: &Store, tier: usize, want: i64) -> Vec<Option<i64>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let watermarks = store.reader.read(|tx| tx.watermarks()).await.unwrap();
        if watermarks[tier].is_some_and(|w| w >= want) || std::time::Instant::now() >= deadline {
            return watermarks;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn request(stat: &str, from_s: i64, to_s: i64, step_s: Option<i64>) -> QueryRequest {
    QueryRequest {
        selector: Selector::parse("lat").unwrap(),
        stat: Stat::parse(stat).unwrap(),
        from_s,
        to_s,
        step_s,
        group_by: None,
    }
}

/// Two hours from `t0` of 10 s rows for one timing series, flushed as the daemon would (one batch per
/// interval, the accept floor trailing by two intervals), and the values they hold.
async fn write_two_hours(store: &Store, t0: i64) -> Vec<(i64, Vec<f64>)> {
    let key = "lat{endpoint=\"/vendors/:id\"}";
    let id = series_id(key);
    let mut written = Vec::new();
    for (seq, start) in (t0..t0 + 7200).step_by(10).enumerate() {
        let values = latencies(20, start as u64, 0.05);
        let mut rollup = Rollup::empty(true);
        for v in &values {
            rollup.observe(*v, 1.0, start * 1000);
        }
        let batch = FlushBatch {
            seq: seq as u64 + 1,
            accept_floor_s: start - 10,
            new_series: if seq == 0 {
                vec![NewSeries { id, key: key.into(), kind: MetricKind::Timing }]
            } else {
                vec![]
            },
            rollups: vec![RollupDelta { series: id, start_s: start, rollup }],
            cumulative: vec![],
            ..FlushBatch::default()
        };
        store.handle.flush(Arc::new(batch)).await.expect("flush commits");
        written.push((start, values));
    }
    written
}

#[tokio::test]
async fn coarse_tiers_match_the_fine_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreSettings { path: dir.path().join("t.db"), tiers: tiers(), n_readers: 2 }).unwrap();
    // One t0 for writing and checking: an hour may turn while the 720 flushes run.
    let t0 = t0();
    let written = write_two_hours(&store, t0).await;
    let agg = aggregator(&store).await;

    watermarks_once(&store, 1, t0 + 7140).await;
    let watermarks = watermarks_once(&store, 2, t0 + 3600).await;
    // The floor reached t0+7180: minutes up to t0+7140 are complete, and the first hour.
    assert_eq!(watermarks, vec![None, Some(t0 + 7140), Some(t0 + 3600)]);
    let id = series_id("lat{endpoint=\"/vendors/:id\"}");
    let hour_rows = store.reader.read(move |tx| tx.rollups(2, id, t0, t0 + 7200)).await.unwrap();
    assert_eq!(hour_rows.len(), 1);
    let first_hour: Vec<f64> = written.iter().filter(|(s, _)| *s < t0 + 3600).flat_map(|(_, v)| v.clone()).collect();
    assert_eq!(hour_rows[0].1.count, first_hour.len() as f64);
    assert_within(hour_rows[0].1.sum, first_hour.iter().sum(), 1e-9, "hour sum");

    // A window over both hours reads the hour row, minute rows and 10 s rows, and the answer is
    // what the raw values say.
    let everything: Vec<f64> = written.iter().flat_map(|(_, v)| v.clone()).collect();
    let result = execute(&store.reader, &agg, request("count", t0, t0 + 7200, None)).await.unwrap();
    assert_eq!(result[0].points, vec![(t0, everything.len() as f64)]);
    let p99 = execute(&store.reader, &agg, request("p99", t0, t0 + 7200, None)).await.unwrap();
    assert_within(p99[0].points[0].1, exact_quantile(&everything, 0.99), 0.01, "p99 over two hours");

    // Per-minute steps: every minute has 6 × 20 observations, whichever tier served it.
    let per_minute = execute(&store.reader, &agg, request("count", t0 + 3000, t0 + 7200, Some(60))).await.unwrap();
    assert_eq!(per_minute[0].points.len(), 70);
    assert!(per_minute[0].points.iter().all(|(_, c)| *c == 120.0), "{:?}", per_minute[0].points);
    let max_per_minute = execute(&store.reader, &agg, request("max", t0, t0 + 120, Some(60))).await.unwrap();
    let first_minute_max = written[..6].iter().flat_map(|(_, v)| v.clone()).fold(0.0, f64::max);
    assert_eq!(max_per_minute[0].points[0], (t0, first_minute_max));

    // Unaligned windows only count rows starting inside them.
    let unaligned = execute(&store.reader, &agg, request("count", t0 + 3595, t0 + 3665, None)).await.unwrap();
    assert_eq!(unaligned[0].points[0].1, 7.0 * 20.0);
}

#[tokio::test]
async fn retention_expires_each_tier_on_its_own_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreSettings { path: dir.path().join("t.db"), tiers: tiers(), n_readers: 1 }).unwrap();
    let t0 = t0();
    write_two_hours(&store, t0).await;
    let id = series_id("lat{endpoint=\"/vendors/:id\"}");
    let count_rows = |tier: usize| {
        let reader = store.reader.clone();
        async move { reader.read(move |tx| tx.rollups(tier, id, 0, i64::MAX)).await.unwrap().len() }
    };
    assert_eq!((count_rows(0).await, count_rows(1).await, count_rows(2).await), (720, 119, 1));
    // Four hours on (a flush's clock, by which the writer expires): raw rows (3 h) older than
    // t0+3600 go; minutes (10 h) and hours stay.
    let later = FlushBatch { seq: 10_000, accept_floor_s: t0 + 7180, now_s: t0 + 4 * 3600, ..FlushBatch::default() };
    store.handle.flush(Arc::new(later)).await.expect("flush commits");
    let raw_left = crate::support::wait_for("raw rows to expire", std::time::Duration::from_secs(10), || async {
        let n = count_rows(0).await;
        (n < 720).then_some(n)
    })
    .await;
    assert_eq!((raw_left, count_rows(1).await, count_rows(2).await), (360, 119, 1));
    // A query over the expired hour is served by the coarser tiers.
    let result =
        execute(&store.reader, &aggregator(&store).await, request("count", t0, t0 + 3600, None)).await.unwrap();
    assert_eq!(result[0].points[0].1, 360.0 * 20.0);
}

#[tokio::test]
async fn a_first_flush_of_many_intervals_reaches_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreSettings { path: dir.path().join("t.db"), tiers: tiers(), n_readers: 1 }).unwrap();
    let t0 = t0();
    let key = "lat{endpoint=\"/vendors/:id\"}";
    let id = series_id(key);
    // One batch carrying two hours of intervals, as after a long outage of the flusher.
    let rollups = (t0..t0 + 7200)
        .step_by(10)
        .map(|start_s| {
            let mut rollup = Rollup::empty(true);
            rollup.observe(0.01, 1.0, start_s * 1000);
            RollupDelta { series: id, start_s, rollup }
        })
        .collect();
    let batch = FlushBatch {
        seq: 1,
        accept_floor_s: t0 + 7200,
        new_series: vec![NewSeries { id, key: key.into(), kind: MetricKind::Timing }],
        rollups,
        cumulative: vec![],
        ..FlushBatch::default()
    };
    store.handle.flush(Arc::new(batch)).await.unwrap();
    for seq in 2..10 {
        let empty = FlushBatch { seq, accept_floor_s: t0 + 7200, ..FlushBatch::default() };
        store.handle.flush(Arc::new(empty)).await.unwrap();
    }
    let rows = |tier: usize| {
        let reader = store.reader.clone();
        async move { reader.read(move |tx| tx.rollups(tier, id, 0, i64::MAX)).await.unwrap() }
    };
    assert_eq!(rows(1).await.len(), 120, "every minute of both hours");
    let hours = rows(2).await;
    assert_eq!(hours.iter().map(|(_, r)| r.count).collect::<Vec<_>>(), vec![360.0, 360.0]);
    let per_minute =
        execute(&store.reader, &aggregator(&store).await, request("count", t0, t0 + 7200, Some(60))).await.unwrap();
    assert_eq!(per_minute[0].points.len(), 120);
    assert!(per_minute[0].points.iter().all(|(_, c)| *c == 6.0));
}

/// A batch of one good rollup and one `bad` one for another series, both at `start`.
fn batch_with(seq: u64, start: i64, bad: Rollup, floor: i64) -> FlushBatch {
    let mut good = Rollup::empty(true);
    good.observe(0.25, 1.0, start * 1000);
    let (good_id, bad_id) = (series_id("good"), series_id("bad"));
    FlushBatch {
        seq,
        accept_floor_s: floor,
        new_series: vec![
            NewSeries { id: good_id, key: "good".into(), kind: MetricKind::Timing },
            NewSeries { id: bad_id, key: "bad".into(), kind: MetricKind::Timing },
        ],
        rollups: vec![
            RollupDelta { series: bad_id, start_s: start, rollup: bad },
            RollupDelta { series: good_id, start_s: start, rollup: good },
        ],
        cumulative: vec![],
        ..FlushBatch::default()
    }
}

#[tokio::test]
async fn a_rollup_that_cannot_be_stored_is_quarantined_and_never_blocks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open(StoreSettings { path: path.clone(), tiers: tiers(), n_readers: 2 }).unwrap();
    let recorder = crate::support::recorder();
    let counted = || crate::support::metric_value(&recorder.render(), "perfwatch_rollups_quarantined_total", &[]);
    let counted_before = counted();
    let t0 = t0();
    // Not finite: NaN would be stored as NULL, which the tier refuses (it used to fail the
    // batch, and every batch behind it, for good).
    let mut nan = Rollup::empty(true);
    nan.observe(0.1, 1.0, t0 * 1000);
    nan.sum = f64::NAN;
    let report = store.handle.flush(Arc::new(batch_with(1, t0, nan, t0 + 60))).await.expect("the batch commits");
    assert_eq!((report.n_rollups, report.n_quarantined), (1, 1));

    // A stored row that does not read back (a corrupt sketch): merging into it fails, so the
    // batch is written row by row and only that row is set aside.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE raw_10s SET sketch = x'ffffffff' WHERE series_id = ?1 AND start_s = ?2",
        rusqlite::params![series_id("good") as i64, t0],
    )
    .unwrap();
    let mut late = Rollup::empty(true);
    late.observe(0.5, 1.0, t0 * 1000 + 1);
    let mut fine = Rollup::empty(true);
    fine.observe(0.5, 1.0, (t0 + 10) * 1000);
    let batch = FlushBatch {
        seq: 2,
        accept_floor_s: t0 + 120,
        new_series: vec![],
        rollups: vec![
            RollupDelta { series: series_id("good"), start_s: t0, rollup: late },
            RollupDelta { series: series_id("bad"), start_s: t0 + 10, rollup: fine },
        ],
        cumulative: vec![],
        ..FlushBatch::default()
    };
    let report = store.handle.flush(Arc::new(batch)).await.expect("the batch commits");
    assert_eq!((report.n_rollups, report.n_quarantined), (1, 1));
    let quarantined: Vec<(i64, String)> = conn
        .prepare("SELECT flush_seq, reason FROM quarantine ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    assert!(quarantined[0].1.contains("not a finite number"), "{quarantined:?}");
    assert!(quarantined[1].1.contains("corrupt sketch"), "{quarantined:?}");
    // Counted for /metrics, which rules/perfwatch-self.yaml pages on.
    assert!(counted() >= counted_before + 2.0, "perfwatch_rollups_quarantined_total counts both");
    // Later flushes commit, and what committed reaches the coarse tier.
    let id = series_id("bad");
    let raw = store.reader.read(move |tx| tx.rollups(0, id, t0, t0 + 60)).await.unwrap();
    assert_eq!(raw.len(), 1, "the good row of the second batch is stored");
    // Downsampling ran after the row-by-row flush, up to its floor.
    let watermarks = watermarks_once(&store, 1, t0 + 120).await;
    assert_eq!(watermarks[1], Some(t0 + 120), "downsampling went on: {watermarks:?}");

    // A corrupt row in a window not yet downsampled is left out of it; downsampling goes on.
    let mut beside = Rollup::empty(true);
    beside.observe(0.75, 1.0, (t0 + 130) * 1000);
    let rollups = vec![RollupDelta { series: series_id("good"), start_s: t0 + 130, rollup: beside }];
    let batch = FlushBatch {
        seq: 3,
        accept_floor_s: t0 + 120,
        new_series: vec![],
        rollups,
        cumulative: vec![],
        ..FlushBatch::default()
    };
    store.handle.flush(Arc::new(batch)).await.expect("the batch commits");
    conn.execute(
        "UPDATE raw_10s SET sketch = x'ffffffff' WHERE series_id = ?1 AND start_s = ?2",
        rusqlite::params![series_id("good") as i64, t0 + 130],
    )
    .unwrap();
    let batch = FlushBatch {
        seq: 4,
        accept_floor_s: t0 + 180,
        new_series: vec![],
        rollups: vec![],
        cumulative: vec![],
        ..FlushBatch::default()
    };
    store.handle.flush(Arc::new(batch)).await.expect("the batch commits");
    let watermarks = watermarks_once(&store, 1, t0 + 180).await;
    assert_eq!(watermarks[1], Some(t0 + 180), "past the corrupt row: {watermarks:?}");
}
