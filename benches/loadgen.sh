#!/usr/bin/env bash
# End-to-end throughput: a release perfwatch and the load generator on this machine, sharing
# its cores, one scenario at a time against a fresh database. Prints one Markdown table row per
# scenario: observations/s the daemon acknowledged, its CPU and peak RSS, and the latency of
# `GET /healthz` asked every 20 ms on a new connection meanwhile.
#
#   benches/loadgen.sh            # every scenario, 10 s each
#   DURATION=5s benches/loadgen.sh 'json-1*' otlp-10-1k-4c   # only scenarios matching a pattern
#   PERFWATCH_DAEMON=/tmp/old/perfwatch benches/loadgen.sh json-1-1k-4c  # another daemon build,
#                                        # same load generator (before/after comparisons)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/perfwatch
daemon=${PERFWATCH_DAEMON:-$bin}
duration=${DURATION:-10s}
patterns=("$@")

# name | loadgen arguments [| rules generated with --print-rules | duration]
scenarios=(
  "json-1-1k-1c|--format json --values-per-entry 1 --observations-per-request 1000 --connections 1 --series 1000"
  "json-1-1k-4c|--format json --values-per-entry 1 --observations-per-request 1000 --connections 4 --series 1000"
  "json-1-1k-4c-hostile|--format json --values-per-entry 1 --observations-per-request 1000 --connections 4 --series 1000 --idle-connections 2000 --slow-connections 1000"
  "json-1-10k-4c|--format json --values-per-entry 1 --observations-per-request 10000 --connections 4 --series 10000"
  "json-10-1k-1c|--format json --values-per-entry 10 --observations-per-request 1000 --connections 1 --series 1000"
  "json-10-1k-4c|--format json --values-per-entry 10 --observations-per-request 1000 --connections 4 --series 1000"
  "json-10-1k-16c|--format json --values-per-entry 10 --observations-per-request 1000 --connections 16 --series 1000"
  "json-10-10k-4c|--format json --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 10000"
  "json-100-10k-4c|--format json --values-per-entry 100 --observations-per-request 10000 --connections 4 --series 1000"
  "json-10-10k-4c-100k-series|--format json --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 100000"
  "otlp-10-1k-4c|--format otlp --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 1000"
  "otlp-10-10k-4c|--format otlp --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 10000"
  "otlp-10-100k-4c|--format otlp --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 100000"
  "influx-10-1k-4c|--format influx --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 1000"
  "influx-10-10k-4c|--format influx --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 10000"
  "influx-10-100k-4c|--format influx --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 100000"
  "json-10-1k-4c-10k-obs|--format json --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 1000"
  "prometheus-4c|--format prometheus --values-per-entry 10 --connections 4 --series 1000"
  "statsd-2c|--format statsd --connections 2 --series 1000"
  "statsd-1M-rate|--format statsd --connections 2 --series 1000 --rate 1000000"
  "json-10-10k-4c-no-rules|--format json --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 10000|0|60s"
  "json-10-10k-4c-1000-rules|--format json --values-per-entry 10 --observations-per-request 10000 --connections 4 --series 10000|1000|60s"
)

printf '| scenario | loadgen arguments | result |\n| --- | --- | --- |\n'
for entry in "${scenarios[@]}"; do
  IFS='|' read -r name args n_rules run_for <<<"$entry"
  if ((${#patterns[@]})); then
    matched=
    for pattern in "${patterns[@]}"; do
      # shellcheck disable=SC2053
      [[ "$name" == $pattern ]] && matched=1
    done
    [[ -z "$matched" ]] && continue
  fi
  dir=$(mktemp -d)
  printf 'storage:\n  path: %s/bench.db\nlimits:\n  max_series: 1000000\n' "$dir" > "$dir/perfwatch.yaml"
  if [[ -n "$n_rules" ]]; then
    # shellcheck disable=SC2086
    "$bin" loadgen $args --print-rules "$n_rules" > "$dir/rules.yaml"
    printf 'rules:\n  paths: [%s/rules.yaml]\n' "$dir" >> "$dir/perfwatch.yaml"
  fi
  PERFWATCH_LOG=warn "$daemon" run --config "$dir/perfwatch.yaml" 2>"$dir/daemon.log" &
  pid=$!
  for _ in $(seq 100); do curl -sf localhost:9464/healthz >/dev/null 2>&1 && break; sleep 0.1; done
  rate=(--rate 0)
  [[ "$args" == *--rate* ]] && rate=()
  # shellcheck disable=SC2086
  summary=$("$bin" loadgen $args "${rate[@]}" --duration "${run_for:-$duration}" --watch-pid "$pid" --probe-health 2>/dev/null)
  if [[ -n "$n_rules" ]]; then
    # Rule evaluations during the run: how many, and their median and slowest (the exporter's
    # summary over its recent window).
    evals=$(curl -s localhost:9464/metrics | awk '
      /^perfwatch_rule_evaluation_duration_seconds_count/ {n=$2}
      /^perfwatch_rule_evaluation_duration_seconds\{quantile="0.5"\}/ {p50=$2}
      /^perfwatch_rule_evaluation_duration_seconds\{quantile="1"\}/ {max=$2}
      END {printf "%d rule evaluations, median %.0f ms, slowest %.0f ms", n, p50*1000, max*1000}')
    summary="$summary; $evals"
  fi
  kill -TERM "$pid"
  wait "$pid" || true
  rm -rf "$dir"
  printf '| %s | `%s` | %s |\n' "$name" "$args" "$summary"
done
