//! StatsD/DogStatsD over UDP: every type, sample rates, tags, signed gauges, sets, bad lines
//! that leave the rest of a datagram alone, and the real `statsd` client library from PyPI.

use std::time::Duration;

use crate::support::{TestDaemon, assert_within, exact_quantile, metric_value, python_with, run_python, wait_for};

const DEADLINE: Duration = Duration::from_secs(10);

fn send(d: &TestDaemon, datagram: &str) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = d.daemon.as_ref().unwrap().statsd_addr.expect("statsd listens");
    socket.send_to(datagram.as_bytes(), addr).unwrap();
}

/// Waits until the query's single value equals `want`.
async fn wait_value(d: &TestDaemon, metric: &str, stat: &str, want: f64) {
    wait_for(&format!("{stat}({metric}) = {want}"), DEADLINE, || async {
        let series = d.query(&[("metric", metric), ("stat", stat), ("group_by", "")]).await;
        let got = series.first().and_then(|s| s["points"][0][1].as_f64());
        (got == Some(want)).then_some(())
    })
    .await
}

#[tokio::test]
async fn every_type_rate_and_tag() {
    let d = TestDaemon::start("").await;
    send(
        &d,
        "api.latency:12|ms|#endpoint:/vendors,env:prod\n\
         api.latency:30|ms|@0.5|#endpoint:/vendors,env:prod\n\
         cache.hits:3|c|#tier:l1\n\
         cache.hits:1|c|@0.1|#tier:l1\n\
         this is not statsd\n\
         x:1|zz\n\
         pool.in_use:10|g\n\
         pool.in_use:-3|g\n\
         payload.size:100:300|d\n\
         users:alice|s\nusers:bob|s\nusers:alice|s",
    );
    wait_value(&d, "users", "sum", 2.0).await;
    assert_eq!(d.query_one(&[("metric", "api_latency"), ("stat", "count")]).await, 3.0);
    assert_within(d.query_one(&[("metric", "api_latency"), ("stat", "sum")]).await, 0.072, 1e-12, "ms → s, weighted");
    assert_eq!(d.query_one(&[("metric", "api_latency"), ("stat", "max")]).await, 0.030);
    let tagged = d.query(&[("metric", "api_latency{endpoint=\"/vendors\",env=\"prod\"}"), ("stat", "count")]).await;
    assert_eq!(tagged.len(), 1);
    assert_eq!(d.query_one(&[("metric", "cache_hits{tier=\"l1\"}"), ("stat", "sum")]).await, 13.0);
    assert_eq!(d.query_one(&[("metric", "pool_in_use"), ("stat", "last")]).await, 7.0);
    assert_eq!(d.query_one(&[("metric", "payload_size"), ("stat", "sum")]).await, 400.0);
}

#[tokio::test]
async fn bad_datagrams_do_not_stop_the_listener() {
    let d = TestDaemon::start("").await;
    send(&d, "\u{0}\u{ff}garbage");
    send(&d, ":::|||");
    send(&d, "after.garbage:1|c");
    wait_value(&d, "after_garbage", "sum", 1.0).await;
}

/// A line of several values is taken or refused whole: one bad value among them used to leave
/// the values before it stored while the line was counted as refused.
#[tokio::test]
async fn a_line_with_one_bad_value_stores_none_of_its_values() {
    let d = TestDaemon::start("").await;
    send(&d, "multi.t:5:-5|ms\nmulti.g:1:1e301|g\nmulti.c:2:x|c\nmulti.ok:1:2|c\nsentinel:1|c");
    wait_value(&d, "sentinel", "sum", 1.0).await;
    assert_eq!(d.query_one(&[("metric", "multi_ok"), ("stat", "sum")]).await, 3.0);
    for refused in ["multi_t", "multi_g", "multi_c"] {
        let series = d.query(&[("metric", refused), ("stat", "count"), ("group_by", "")]).await;
        assert!(series.is_empty(), "{refused}: {series:?}");
    }
}

#[tokio::test]
async fn bad_lines_are_counted_by_reason_in_metrics() {
    let d = TestDaemon::start("").await;
    let rejected = |text: &str| {
        metric_value(text, "perfwatch_samples_rejected_total", &["protocol=\"statsd\"", "reason=\"parse\""])
    };
    let before = rejected(d.get("/metrics").await.1.as_str().unwrap());
    send(&d, "no_type:1\nbad:x|c\n:1|c\ncounted.ok:1|c");
    wait_value(&d, "counted_ok", "sum", 1.0).await;
    let after = rejected(d.get("/metrics").await.1.as_str().unwrap());
    assert!(after >= before + 3.0, "3 bad lines counted: before {before}, after {after}");
}

#[tokio::test]
async fn python_statsd_client() {
    let Some(python) = python_with("statsd", "statsd") else { return };
    let d = TestDaemon::start("").await;
    let port = d.daemon.as_ref().unwrap().statsd_addr.unwrap().port().to_string();
    let script = r#"
import sys, statsd
c = statsd.StatsClient('127.0.0.1', int(sys.argv[1]), prefix='shop')
for ms in range(100):
    c.timing('checkout.latency', ms)
c.incr('orders', 5)
c.incr('orders', 2)
c.decr('stock', 1)
c.gauge('db.pool', 10)
c.gauge('db.pool', 3, delta=True)
c.set('visitors', 'alice')
c.set('visitors', 'bob')
with c.pipeline() as pipe:
    pipe.incr('piped')
    pipe.incr('piped')
    pipe.timing('piped.latency', 250)
"#;
    run_python(&python, script, &[&port]).await;
    wait_value(&d, "shop_piped_latency", "count", 1.0).await;
    let latencies: Vec<f64> = (0..100).map(|ms| ms as f64 / 1000.0).collect();
    wait_value(&d, "shop_checkout_latency", "count", 100.0).await;
    assert_within(
        d.query_one(&[("metric", "shop_checkout_latency"), ("stat", "sum")]).await,
        latencies.iter().sum(),
        1e-9,
        "sum",
    );
    for (stat, q) in [("p50", 0.5), ("p99", 0.99)] {
        let got = d.query_one(&[("metric", "shop_checkout_latency"), ("stat", stat)]).await;
        assert_within(got, exact_quantile(&latencies, q), 0.01, stat);
    }
    assert_eq!(d.query_one(&[("metric", "shop_orders"), ("stat", "sum")]).await, 7.0);
    assert_eq!(d.query_one(&[("metric", "shop_stock"), ("stat", "sum")]).await, -1.0);
    assert_eq!(d.query_one(&[("metric", "shop_db_pool"), ("stat", "last")]).await, 13.0);
    assert_eq!(d.query_one(&[("metric", "shop_visitors"), ("stat", "sum")]).await, 2.0);
    assert_eq!(d.query_one(&[("metric", "shop_piped"), ("stat", "sum")]).await, 2.0);
}
