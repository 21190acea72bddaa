#!/usr/bin/env bash
# Instructions the whole daemon spends per acknowledged observation at a fixed offered rate,
# counted by callgrind: repeatable where wall time on a shared machine is not, and it takes in
# the HTTP path (body reading, the CPU pool hand-off, the flusher) that the criterion benches
# leave out. Kernel time is not counted. Each figure is the difference between a SHORT and a
# LONG run divided by the difference in observations, so start-up and the stop cancel out.
#
#   benches/daemon-instructions.sh target/release/perfwatch --format json --values-per-entry 10 \
#       --observations-per-request 1000 --connections 1 --series 1000 --rate 30000
#   PERFWATCH_DAEMON=/tmp/old/perfwatch ... # the same against another build, for before/after
#
# The rate must be one the daemon keeps up with under callgrind (about 50 times slower than
# native): every observation sent must be acknowledged, which the script checks.
set -euo pipefail
cd "$(dirname "$0")/.."
loadgen=${1:?usage: benches/daemon-instructions.sh <perfwatch binary> <loadgen arguments with --rate>}
shift
daemon=${PERFWATCH_DAEMON:-$loadgen}
short=${SHORT:-10} long=${LONG:-30}

# Prints "<instructions> <observations acknowledged>" for one run of $1 seconds.
run() {
  local seconds=$1 dir pid summary
  shift
  dir=$(mktemp -d)
  printf 'storage:\n  path: %s/bench.db\nlimits:\n  max_series: 1000000\nrules:\n  paths: []\n' "$dir" >"$dir/perfwatch.yaml"
  PERFWATCH_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
    "$daemon" run --config "$dir/perfwatch.yaml" 2>"$dir/daemon.log" &
  pid=$!
  for _ in $(seq 600); do curl -sf localhost:9464/healthz >/dev/null 2>&1 && break; sleep 0.1; done
  summary=$("$loadgen" loadgen "$@" --duration "${seconds}s" 2>/dev/null) || true
  kill -TERM "$pid"
  wait "$pid" || true
  if [[ "$summary" != *", 0 errors"* ]]; then
    echo "not every request was acknowledged, lower --rate: $summary" >&2
    exit 1
  fi
  echo "$(awk '/^summary:/ {print $2; exit}' "$dir/cg.out") $(sed -E 's/.*sent ([0-9]+) observations.*/\1/' <<<"$summary")"
  rm -rf "$dir"
}

read -r i_short o_short < <(run "$short" "$@")
read -r i_long o_long < <(run "$long" "$@")
python3 -c "print(f'{($i_long - $i_short) / ($o_long - $o_short):,.1f} instructions per acknowledged observation ({$o_long - $o_short} observations between a ${short} s and a ${long} s run)')"
