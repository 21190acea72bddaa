//! Ninety days of label churn on a controlled clock: 2,000 new instance ids a day, each pushing
//! OTLP cumulative sums and Pushgateway counters and gauges for three hours, then never again
//! (pods replaced by deploys). Memory (active series, rollups, cumulative state) and the
//! database (series, cumulative state, file size) level off instead of growing with the days,
//! retention holds in every tier, and new series are still taken on day 90.

use std::sync::Arc;

use bumpalo::Bump;
use perfwatch::aggregate::{Aggregator, AggregatorSettings};
use perfwatch::ingest::limits::Limits;
use perfwatch::ingest::otlp::{self, ResourceLabels};
use perfwatch::ingest::parse::otlp_messages::{
    AnyValue, ExportMetricsServiceRequest, KeyValue, Metric, NumberDataPoint, Resource, ResourceMetrics, ScopeMetrics,
    Sum,
};
use perfwatch::ingest::parse::{PushOutcome, otlp_view, prom_text};
use perfwatch::ingest::pushgateway::{self, GroupingKey};
use perfwatch::ingest::sink::{IngestBatch, Scratch};
use perfwatch::store::tiers::Tier;
use perfwatch::store::{Store, StoreSettings};
use prost::Message;

const DAYS: i64 = 90;
const NEW_PER_DAY: i64 = 2_000;
const HOURS_ALIVE: i64 = 3;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn tiers() -> Vec<Tier> {
    vec![
        Tier { resolution_s: 60, retention_s: 2 * DAY },
        Tier { resolution_s: HOUR, retention_s: 5 * DAY },
        Tier { resolution_s: DAY, retention_s: 14 * DAY },
    ]
}

fn settings() -> AggregatorSettings {
    AggregatorSettings {
        interval_s: 60,
        lateness_intervals: 2,
        future_intervals: 1,
        max_series: 20_000,
        idle_after_s: HOUR,
        cumulative_idle_after_s: 6 * HOUR,
    }
}

/// Instance `n` pushes, `pushes` times so far, its OTLP cumulative sum and its Pushgateway
/// group, at `now_s`.
fn push_instance(aggregator: &Aggregator, n: i64, pushes: i64, started_s: i64, now_s: i64) -> PushOutcome {
    let limits = Limits::default();
    let bump = Bump::new();
    let instance = format!("pod-{n:07}");
    let text = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue { string_value: Some(value.into()), ..AnyValue::default() }),
    };
    let point = NumberDataPoint {
        start_time_unix_nano: (started_s * 1_000_000_000) as u64,
        time_unix_nano: (now_s * 1_000_000_000) as u64,
        as_int: Some(pushes * 100),
        ..NumberDataPoint::default()
    };
    let sum = Sum { data_points: vec![point], aggregation_temporality: 2, is_monotonic: true };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![text("service.name", "vendor-search"), text("service.instance.id", &instance)],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![Metric { name: "search_requests".into(), sum: Some(sum), ..Metric::default() }],
            }],
        }],
    };
    let protobuf = request.encode_to_vec();
    let labels = ResourceLabels::default();
    let decoded = otlp_view::decode(&protobuf, &bump).unwrap();
    let mut batch = IngestBatch::new(aggregator, &limits, &bump, "otlp", now_s * 1000, Scratch::default());
    let mut outcome = otlp::ingest(&decoded, &mut batch, &labels);

    let body = format!(
        "# TYPE jobs_done_total counter\njobs_done_total {}\n# TYPE queue_depth gauge\nqueue_depth {}\n",
        pushes * 7,
        n % 13
    );
    let grouping = GroupingKey::parse(&format!("job/indexer/instance/{instance}")).unwrap();
    let pairs: Vec<(&str, &str)> = grouping.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let families = prom_text::parse(&body, &bump).unwrap();
    let pushed = pushgateway::apply(&families, &pairs, grouping.hash, &mut batch);
    batch.finish();
    outcome.accepted += pushed.accepted;
    outcome.rejected += pushed.rejected;
    outcome.hit_series_limit |= pushed.hit_series_limit;
    outcome
}

/// What is held at the end of a day.
#[derive(Debug, Clone, Copy)]
struct Held {
    active_series: usize,
    rollup_bytes: usize,
    series_rows: i64,
    push_state_rows: i64,
    db_bytes: i64,
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn ninety_days_of_churn_level_off_and_new_series_are_still_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.db");
    let store = Store::open(StoreSettings { path: path.clone(), tiers: tiers(), n_readers: 1 }).unwrap();
    let aggregator = Arc::new(Aggregator::new(settings(), 0));
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The clock: 90 days ending now, in steps of an hour.
    let now = perfwatch::clock::now_s();
    let start_s = now - now.rem_euclid(DAY) - DAYS * DAY;
    let mut held: Vec<Held> = Vec::new();
    let (mut accepted, mut refused) = (0u64, 0u64);
    for hour in 0..DAYS * 24 {
        let now_s = start_s + hour * HOUR;
        // Instances started in the last HOURS_ALIVE hours push once each hour.
        let first = (hour - HOURS_ALIVE + 1).max(0) * NEW_PER_DAY / 24;
        let last = (hour + 1) * NEW_PER_DAY / 24;
        for n in first..last {
            let started_hour = n * 24 / NEW_PER_DAY;
            let outcome =
                push_instance(&aggregator, n, hour - started_hour + 1, start_s + started_hour * HOUR, now_s + 5);
            accepted += outcome.accepted;
            refused += outcome.rejected;
            assert!(!outcome.hit_series_limit, "the series limit was reached at hour {hour}");
        }
        if (hour + 1) % 24 != 0 {
            continue;
        }
        // A flush at the end of each day (a day of this workload fits in memory; flushing every
        // interval would only make the test slower), then what is held.
        let day_end_s = now_s + HOUR;
        for at_s in [day_end_s - 61, day_end_s - 1] {
            let batch = aggregator.drain(at_s - at_s.rem_euclid(60), at_s * 1000);
            let seq = batch.seq;
            store.handle.flush(batch).await.expect("the flush commits");
            aggregator.committed(seq);
        }
        held.push(Held {
            active_series: aggregator.n_series(),
            rollup_bytes: aggregator.rollup_bytes(),
            series_rows: count(&conn, "SELECT count(*) FROM series"),
            push_state_rows: count(&conn, "SELECT count(*) FROM push_state"),
            db_bytes: count(&conn, "PRAGMA page_count") * count(&conn, "PRAGMA page_size"),
        });
    }
    assert_eq!(refused, 0, "every sample of {accepted} taken");

    // Memory: bounded by what pushed in the last few hours, the same on day 90 as on day 10.
    let (day10, day60, day90) = (held[9], held[59], held[89]);
    // Per instance: one OTLP sum, a Pushgateway counter and gauge; instances of the last
    // three hours plus those whose cumulative state is kept for six more.
    let bound = ((HOURS_ALIVE + 6 + 1) * NEW_PER_DAY / 24 * 3) as usize;
    for (day, h) in held.iter().enumerate() {
        assert!(h.active_series <= bound, "day {}: {} active series (bound {bound})", day + 1, h.active_series);
        assert!(h.push_state_rows as usize <= bound, "day {}: {h:?}", day + 1);
    }
    assert!(day90.rollup_bytes <= day10.rollup_bytes * 11 / 10, "rollups in memory grew: {day10:?} → {day90:?}");
    // The database: series and cumulative state level off once the longest retention has
    // passed (14 days); the file stops growing (freed pages are reused).
    assert!(day90.series_rows <= day60.series_rows * 11 / 10, "series rows grew: {day60:?} → {day90:?}");
    assert!(day90.db_bytes <= day60.db_bytes * 11 / 10, "the database grew: {day60:?} → {day90:?}");
    let ever = DAYS * NEW_PER_DAY * 3;
    assert!(day90.series_rows < ever / 2, "{} series rows of {ever} ever seen", day90.series_rows);

    // Retention holds in every tier.
    let end_s = start_s + DAYS * DAY;
    for (idx, tier) in tiers().iter().enumerate() {
        let table = if idx == 0 { tier.raw_table() } else { tier.table() };
        let oldest: Option<i64> =
            conn.query_row(&format!("SELECT min(start_s) FROM {table}"), [], |r| r.get(0)).unwrap();
        let oldest = oldest.expect("rows in every tier");
        // The last expiry ran with the last flush, a second before the end.
        assert!(oldest >= end_s - 1 - tier.retention_s, "{table}: a row from {oldest}, past retention");
    }

    // Day 90: a new series is taken.
    let outcome = push_instance(&aggregator, DAYS * NEW_PER_DAY + 1, 1, end_s - 60, end_s - 30);
    assert_eq!((outcome.accepted, outcome.rejected), (3, 0));
}
