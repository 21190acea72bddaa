#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/ seeds: small, valid inputs of every kind the tests send
(tests/it/*.rs), so AFL++ starts from inputs that reach deep into each parser. The binary
formats (Prometheus delimited protobuf, OTLP protobuf) are encoded here by hand, field by
field, after their .proto files. Run from the repository root; it overwrites the seeds."""

import json
import os
import re
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
NOW_NS = 1_800_000_000_000 * 1_000_000  # targets.rs NOW_MS, in nanoseconds


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


# --- protobuf wire format -------------------------------------------------------------
def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def key(field, wire):
    return varint(field << 3 | wire)


def f_varint(field, n):
    return key(field, 0) + varint(n)


def f_double(field, x):
    return key(field, 1) + struct.pack("<d", x)


def f_fixed64(field, n):
    return key(field, 1) + struct.pack("<Q", n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return key(field, 2) + varint(len(b)) + b


def packed_doubles(field, xs):
    return f_bytes(field, b"".join(struct.pack("<d", x) for x in xs))


def packed_fixed64(field, ns):
    return f_bytes(field, b"".join(struct.pack("<Q", n) for n in ns))


def packed_varints(field, ns):
    return f_bytes(field, b"".join(varint(n) for n in ns))


# --- Prometheus exposition (io.prometheus.client.MetricFamily, varint-delimited) ------
def prom_family(name, kind, metrics):
    return f_bytes(1, name) + f_bytes(2, "help") + f_varint(3, kind) + b"".join(f_bytes(4, m) for m in metrics)


def prom_labels(**labels):
    return b"".join(f_bytes(1, f_bytes(1, k) + f_bytes(2, v)) for k, v in labels.items())


def delimited(*families):
    return b"".join(varint(len(f)) + f for f in families)


def prom_proto_seeds():
    counter = prom_family("cache_requests_total", 0, [prom_labels(tier="l1") + f_bytes(3, f_double(1, 42.0))])
    gauge = prom_family("db_pool_in_use", 1, [prom_labels(pool="main") + f_bytes(2, f_double(1, 7.0)) + f_varint(6, 1_800_000_000_000)])
    hist = prom_family(
        "api_request_duration_seconds",
        4,
        [prom_labels(endpoint="/vendors/:id") + f_bytes(7, f_varint(1, 10) + f_double(2, 1.5)
         + f_bytes(3, f_varint(1, 4) + f_double(2, 0.05)) + f_bytes(3, f_varint(1, 9) + f_double(2, 0.5))
         + f_bytes(3, f_varint(1, 10) + f_double(2, float("inf"))))],
    )
    native = prom_family(
        "db_query_duration_seconds",
        4,
        [f_bytes(7, f_varint(1, 6) + f_double(2, 0.3) + key(5, 0) + varint(zigzag(3)) + f_double(6, 1e-9)
         + f_varint(7, 1) + f_bytes(12, key(1, 0) + varint(zigzag(-10)) + f_varint(2, 3))
         + packed_varints(13, [zigzag(2), zigzag(1), zigzag(-1)]))],
    )
    summary = prom_family(
        "rpc_seconds", 2,
        [f_bytes(4, f_varint(1, 5) + f_double(2, 2.5) + f_bytes(3, f_double(1, 0.99) + f_double(2, 0.9)))],
    )
    write("prom_proto", "counter_gauge", b"job/cache/instance/a\n" + delimited(counter, gauge))
    write("prom_proto", "histogram", b"job/api\n" + delimited(hist))
    write("prom_proto", "native_histogram", b"job/db/instance@base64/aG9zdDE=\n" + delimited(native))
    write("prom_proto", "summary", b"job/rpc\n" + delimited(summary))


# --- OTLP (opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest) ------
def any_string(s):
    return f_bytes(1, s)


def kv(k, v):
    return f_bytes(1, k) + f_bytes(2, any_string(v))


def otlp_request(metrics, service="checkout", instance="pod-1"):
    resource = f_bytes(1, kv("service.name", service)) + f_bytes(1, kv("service.instance.id", instance))
    scope = f_bytes(1, f_bytes(1, "perfwatch-seeds")) + b"".join(f_bytes(2, m) for m in metrics)
    return f_bytes(1, f_bytes(1, resource) + f_bytes(2, scope))


def otlp_proto_seeds():
    t = NOW_NS
    gauge = f_bytes(1, "db_pool_in_use") + f_bytes(5, f_bytes(1, f_fixed64(3, t) + f_double(4, 7.0) + f_bytes(7, kv("pool", "main"))))
    sum_ = f_bytes(1, "cache_requests") + f_bytes(7, f_bytes(1, f_fixed64(2, t - 10**10) + f_fixed64(3, t) + key(6, 1) + struct.pack("<q", 42))
                                             + f_varint(2, 2) + f_varint(3, 1))
    delta = f_bytes(1, "cache_misses") + f_bytes(7, f_bytes(1, f_fixed64(3, t) + f_double(4, 3.0)) + f_varint(2, 1) + f_varint(3, 1))
    hist = f_bytes(1, "http.server.request.duration") + f_bytes(3, "s") + f_bytes(9, f_bytes(
        1, f_fixed64(2, t - 10**10) + f_fixed64(3, t) + f_fixed64(4, 10) + f_double(5, 1.5)
        + packed_fixed64(6, [4, 5, 1]) + packed_doubles(7, [0.05, 0.5]) + f_double(11, 0.01) + f_double(12, 0.9)
        + f_bytes(9, kv("http.route", "/vendors/:id"))) + f_varint(2, 2))
    expo = f_bytes(1, "db.query.duration") + f_bytes(3, "ms") + f_bytes(10, f_bytes(
        1, f_fixed64(2, t - 10**10) + f_fixed64(3, t) + f_fixed64(4, 6) + f_double(5, 30.0) + key(6, 0) + varint(zigzag(2))
        + f_fixed64(7, 1) + f_bytes(8, key(1, 0) + varint(zigzag(4)) + packed_varints(2, [2, 1, 2]))) + f_varint(2, 2))
    summary = f_bytes(1, "rpc.duration") + f_bytes(11, f_bytes(1, f_fixed64(3, t) + f_fixed64(4, 5) + f_double(5, 2.5)
                                                         + f_bytes(6, f_double(1, 0.99) + f_double(2, 0.9))))
    write("otlp_proto", "gauge_and_sums", otlp_request([gauge, sum_, delta]))
    write("otlp_proto", "histogram", otlp_request([hist]))
    write("otlp_proto", "exponential_histogram", otlp_request([expo], instance="pod-2"))
    write("otlp_proto", "summary", otlp_request([summary]))


def otlp_json_seeds():
    t = str(NOW_NS)
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}},
                               {"key": "service.instance.id", "value": {"stringValue": "pod-1"}}]}

    def request(metrics):
        return json.dumps({"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": metrics}]}]})

    write("otlp_json", "gauge", request([{"name": "db_pool_in_use", "gauge": {"dataPoints": [
        {"timeUnixNano": t, "asDouble": 7, "attributes": [{"key": "pool", "value": {"stringValue": "main"}}]}]}}]))
    write("otlp_json", "sum", request([{"name": "cache_requests", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
        "dataPoints": [{"startTimeUnixNano": str(NOW_NS - 10**10), "timeUnixNano": t, "asInt": "42"}]}}]))
    write("otlp_json", "histogram", request([{"name": "http.server.request.duration", "unit": "s", "histogram": {
        "aggregationTemporality": 2, "dataPoints": [{"timeUnixNano": t, "count": "10", "sum": 1.5,
        "bucketCounts": ["4", "5", "1"], "explicitBounds": [0.05, 0.5]}]}}]))
    write("otlp_json", "exponential", request([{"name": "db.query.duration", "unit": "ms", "exponentialHistogram": {
        "aggregationTemporality": 1, "dataPoints": [{"timeUnixNano": t, "count": "6", "sum": "NaN", "scale": 2,
        "zeroCount": "1", "positive": {"offset": 4, "bucketCounts": ["2", "1", "2"]}}]}}]))


def text_seeds():
    write("json", "mixed", json.dumps({"labels": {"service": "cache"}, "metrics": [
        {"name": "cache_requests_total", "type": "counter", "labels": {"tier": "l1", "result": "hit"}, "value": 42},
        {"name": "db_pool_in_use", "type": "gauge", "value": 7, "timestamp": 1_800_000_000_000},
        {"name": "api_request_duration_seconds", "type": "timing", "labels": {"endpoint": "/vendors/:id"},
         "values": [0.012, 0.5, 1e-3]},
        {"name": "api_request_duration_seconds", "type": "timing", "value": 0.2, "weight": 10}]}))
    write("json", "bad_entries", '{"metrics": [{"name": "x", "type": "gauge"}, {"name": "", "type": "counter", "value": 1},'
          ' {"name": "y", "type": "counter", "value": 1e308}, {"name": "z", "type": "timing", "values": [1, -1]}]}')
    write("prom_text", "counter_gauge", "job/cache/instance/a\n# HELP cache_requests_total Requests.\n"
          "# TYPE cache_requests_total counter\ncache_requests_total{tier=\"l1\",result=\"hit\"} 42\n"
          "# TYPE db_pool_in_use gauge\ndb_pool_in_use{pool=\"main\"} 7 1800000000000\n")
    write("prom_text", "histogram", "job/api/instance@base64/aG9zdDE=\n# TYPE api_request_duration_seconds histogram\n"
          "api_request_duration_seconds_bucket{le=\"0.05\"} 4\napi_request_duration_seconds_bucket{le=\"0.5\"} 9\n"
          "api_request_duration_seconds_bucket{le=\"+Inf\"} 10\napi_request_duration_seconds_sum 1.5\n"
          "api_request_duration_seconds_count 10\n")
    write("prom_text", "summary_untyped", "job/rpc\n# TYPE rpc_seconds summary\nrpc_seconds{quantile=\"0.99\"} 0.9\n"
          "rpc_seconds_sum 2.5\nrpc_seconds_count 5\nsome_untyped{a=\"b\\\"c\\n\"} NaN\nother -Inf\n")
    write("influx", "telegraf", "\ncache,tier=l1,host=a hits=42i,misses=8i,ratio=0.84 1800000000000000000\n"
          "api_latency,endpoint=/vendors/:id duration=0.012\nweird\\ name,t\\=a=b\\,c f=1u,s=\"text\" \n")
    write("influx", "seconds", "s\ncpu,host=a usage=0.5 1800000000\ncpu usage=t\n# comment\n")
    write("statsd", "dogstatsd", "cache.hits:1|c|#tier:l1,result:hit\napi.latency:12|ms|@0.1\n"
          "db.pool:+3|g\ndb.pool:-1|g\nusers:ana|s\napi.size:512|d|#endpoint:/vendors\nmulti:1:2:3|ms|T1800000000\n")
    write("statsd", "bad_lines", "no_value\nx:1|q\n:1|c\ny:abc|g\n\xff\xfe:1|c\nz:1e309|ms\n")
    write("query", "quantile", "metric=api_request_duration_seconds{endpoint=\"/vendors/:id\"}&stat=p99&from=-1h&step=1m")
    write("query", "grouped", "metric=cache_requests_total{tier=~\"l1|l2\",result!=\"miss\"}&stat=rate&from=2026-11-30T10:00:00Z"
          "&to=now&step=60&group_by=tier,result")
    write("query", "absolute", "metric=db_pool_in_use&stat=max&from=1799990000&to=1800000000")
    write("sketch", "empty", b"")
    # aggregate/sketch/blob.rs: version, zigzag offset, zero count, then dense bins or sparse pairs.
    write("sketch", "dense", bytes([1]) + varint(zigzag(1400)) + varint(2) + varint(3) + varint(1) + varint(0) + varint(4))
    write("sketch", "sparse", bytes([2]) + varint(zigzag(-5)) + varint(0) + varint(2) + varint(0) + varint(3)
          + varint(40) + varint(1))
    # store/block.rs: version, then per row: intervals skipped, five XOR-ed values (header byte:
    # low zero bytes << 4 | bytes kept), last_ms from the interval's start (zigzag), sketch length + 1.
    write("block", "two_rows", bytes([1, 0, 0x62, 0xf0, 0x3f, 0, 0, 0, 0]) + varint(zigzag(500)) + bytes([4]) + b"abc"
          + bytes([2, 0x62, 0xf0, 0x7f, 0, 0, 0, 0, 0, 0]))
    write("block", "bad_header", bytes([1, 0, 0x19, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
    write("ack_link", "malformed", "eyJzIjoiYSJ9.AAAA")


def copy_files(target, paths):
    for path in paths:
        with open(path, "rb") as f:
            write(target, os.path.basename(path), f.read())


def file_seeds():
    """Rule files from rules/, and every YAML example of the README and docs/*.md: rule groups
    to the rules target, configuration sections to the config target."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rules = os.path.join(repo, "rules")
    copy_files("rules", [os.path.join(rules, f) for f in sorted(os.listdir(rules)) if f.endswith(".yaml")])
    docs = os.path.join(repo, "docs")
    blocks = []
    for path in [os.path.join(repo, "README.md")] + [os.path.join(docs, f) for f in sorted(os.listdir(docs))
                                                     if f.endswith(".md")]:
        with open(path) as f:
            blocks += re.findall(r"```yaml\n(.*?)```", f.read(), re.S)
    for n, block in enumerate(blocks):
        if "\ngroups:" in "\n" + block:
            write("rules", "readme-%02d.yaml" % n, block)
        elif not block.startswith("rule_files:"):
            write("config", "readme-%02d.yaml" % n, block)
    # All the configuration sections in one file, as a full configuration has them.
    write("config", "readme-all.yaml", "".join(b for b in blocks if "\ngroups:" not in "\n" + b
                                                 and not b.startswith("rule_files:")))


def promql_seeds():
    """PromQL as Grafana and the tests send it: selectors, range functions, aggregations,
    matching, subqueries, histograms."""
    exprs = [
        'http_requests_total{service=~"a.*",code!="200"} offset 5m',
        'sum by (service) (rate(http_requests_total[5m]))',
        'histogram_quantile(0.99, sum by (endpoint) (rate(api_request_duration_seconds[5m])))',
        'max_over_time(rate(http_requests_total[5m])[20m:1m]) @ end()',
        'http_requests_total / on(service) group_left sum by (service) (http_requests_total)',
        'label_replace(db_pool_connections_in_use, "p", "$1", "pool", "(pri).*") > bool 10',
        'topk(2, count_values("v", queue_depth)) or vector(1) unless absent(x{a="b"})',
        '{__name__=~"db_pool.*|queue_depth"}[10m]',
        'quantile_over_time(0.9, x[1h]) - -2 ^ 3 % atan2(y, 1)',
    ]
    for n, expr in enumerate(exprs):
        write("promql", "expr-%02d" % n, expr)


if __name__ == "__main__":
    promql_seeds()
    text_seeds()
    prom_proto_seeds()
    otlp_proto_seeds()
    otlp_json_seeds()
    file_seeds()
