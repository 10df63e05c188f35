#!/usr/bin/env bash
# Benchmarks against baselines measured in the same run, on a private Redis.
# Usage: Scripts/bench.sh [client|lock|worker|scaling|all] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

what=${1:-all}
rounds=${2:-3}
Scripts/setup.sh
swift build -c release --product sgctl >&2
swift build -c release --product stream-consumer >&2
extra_cleanup() { stop_tls_redis; }
start_private_redis bench
# The same figures over TLS, from a second private Redis that speaks only TLS (throw-away CA).
make_test_certs "$workdir/tls"
tls_port=$(free_port)
start_tls_redis "$workdir/tls" "$tls_port" server
tls_url="rediss://127.0.0.1:$tls_port"
tls_flags=(--tls-ca-file "$workdir/tls/ca.crt")

rps() { # redis-benchmark args... -> requests per second
  redis-benchmark -p "$port" "$@" 2>/dev/null | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1
}
tls_rps() { # the same against the TLS Redis
  redis-benchmark --tls --cacert "$workdir/tls/ca.crt" -h 127.0.0.1 -p "$tls_port" "$@" 2>/dev/null \
    | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  host: $(uname -m), $(nproc) cores  redis: $(redis-server --version | awk '{print $3}')"
for round in $(seq 1 "$rounds"); do
  if [ "$what" = client ] || [ "$what" = all ]; then
    p64=$(rps -c 1 -P 64 -t set -n 2000000 -q)
    c1=$(rps -c 1 -t set -n 100000 -q)
    ours=$(.build/release/sgctl bench client --redis-url "$url" --json)
    python3 - "$p64" "$c1" "$ours" <<'PY'
import json, sys
p64, c1, ours = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
print(f"client: redis-benchmark -P64 {p64:,.0f}/s, -c1 {c1:,.0f}/s | "
      f"64 callers {ours['ops_per_sec_pipelined']:,.0f}/s ({ours['ops_per_sec_pipelined']/p64:.2f}x), "
      f"on executor {ours['executor_ops_per_sec_pipelined']:,.0f}/s ({ours['executor_ops_per_sec_pipelined']/p64:.2f}x) | "
      f"1 caller {ours['ops_per_sec_1_caller']:,.0f}/s ({ours['ops_per_sec_1_caller']/c1:.2f}x), "
      f"on executor {ours['executor_ops_per_sec_1_caller']:,.0f}/s ({ours['executor_ops_per_sec_1_caller']/c1:.2f}x), "
      f"p50 {ours['sequential_p50_us']:.0f} us, p99 {ours['sequential_p99_us']:.0f} us")
PY
    tls_p64=$(tls_rps -c 1 -P 64 -t set -n 2000000 -q)
    tls_c1=$(tls_rps -c 1 -t set -n 100000 -q)
    tls_ours=$(.build/release/sgctl bench client --redis-url "$tls_url" "${tls_flags[@]}" --json)
    python3 - "$p64" "$c1" "$ours" "$tls_p64" "$tls_c1" "$tls_ours" <<'PY'
import json, sys
p64, c1, ours = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
tp64, tc1, tls = float(sys.argv[4]), float(sys.argv[5]), json.loads(sys.argv[6])
def r(key): return tls[key] / ours[key]
print(f"client over TLS: redis-benchmark --tls -P64 {tp64:,.0f}/s ({tp64/p64:.2f}x of plaintext), -c1 {tc1:,.0f}/s ({tc1/c1:.2f}x) | "
      f"64 callers {tls['ops_per_sec_pipelined']:,.0f}/s ({r('ops_per_sec_pipelined'):.2f}x of ours plaintext, {tls['ops_per_sec_pipelined']/tp64:.2f}x of --tls baseline), "
      f"on executor {tls['executor_ops_per_sec_pipelined']:,.0f}/s ({r('executor_ops_per_sec_pipelined'):.2f}x) | "
      f"1 caller {tls['ops_per_sec_1_caller']:,.0f}/s ({r('ops_per_sec_1_caller'):.2f}x of ours plaintext, {tls['ops_per_sec_1_caller']/tc1:.2f}x of --tls baseline), "
      f"on executor {tls['executor_ops_per_sec_1_caller']:,.0f}/s ({r('executor_ops_per_sec_1_caller'):.2f}x), "
      f"p50 {tls['sequential_p50_us']:.0f} us, p99 {tls['sequential_p99_us']:.0f} us")
PY
  fi
  if [ "$what" = lock ] || [ "$what" = all ]; then
    acquire_lua="local h = redis.call('GET', KEYS[1]) if h == ARGV[1] then return {1, 1} end if not h and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, redis.call('INCR', KEYS[2])} end return {0, redis.call('PTTL', KEYS[1])}"
    release_lua="if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) redis.call('PUBLISH', ARGV[2], ARGV[1]) return 1 end return 0"
    eval_acq=$(rps -c 1 -n 30000 -q EVAL "$acquire_lua" 2 bench:lock bench:fence tok 10000)
    eval_rel=$(rps -c 1 -n 30000 -q EVAL "$release_lua" 1 bench:lock tok bench:chan)
    ours=$(.build/release/sgctl bench lock --redis-url "$url" --json)
    python3 - "$eval_acq" "$eval_rel" "$ours" <<'PY'
import json, sys
acq, rel, ours = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
ceiling = 1 / (1 / acq + 1 / rel)  # one claim script + one release script, back to back, from redis-benchmark
print(f"lock: redis-benchmark claim+release script ceiling {ceiling:,.0f} cycles/s | "
      f"ours {ours['cycles_per_sec']:,.0f}/s ({ours['cycles_per_sec']/ceiling:.2f}x), "
      f"on executor {ours['executor_cycles_per_sec']:,.0f}/s ({ours['executor_cycles_per_sec']/ceiling:.2f}x) | "
      f"hand-off p50 {ours['handoff_p50_ms']:.3f} ms, p99 {ours['handoff_p99_ms']:.3f} ms")
PY
  fi
  if [ "$what" = worker ] || [ "$what" = all ]; then
    for workers in 1 3; do
      echo "worker: $(.build/release/sgctl bench worker --redis-url "$url" --messages 20000 --channels 200 --workers "$workers")" | tr '\n' ' '
      echo
    done
  fi
  # Pool scaling, 1 worker against 3 on fresh workloads: the single stream (every worker reads every
  # channel) against 16 partitions; 20 ms of work per message at the default concurrency (64) and at
  # 16, where three workers and Redis still fit in this machine's two cores; no work at all; and
  # draining a backlog with no work.
  if [ "$what" = scaling ] || [ "$what" = all ]; then
    for partitions in 1 16; do
      for run in "20 64 8000" "20 16 8000" "0 64 20000"; do
        read -r work concurrency messages <<<"$run"
        echo "scaling: partitions $partitions, work $work ms, concurrency $concurrency: $(.build/release/sgctl bench worker --redis-url "$url" \
          --messages "$messages" --channels 200 --workers 1,3 --work-ms "$work" --concurrency "$concurrency" --partitions "$partitions")" \
          | tr '\n' ' ' | sed -E 's/enqueue→commit p50 ([0-9.]+) ms, p99 ([0-9.]+) ms/p50 \1 ms p99 \2 ms/g'
        echo
      done
    done
    # Draining a backlog produced before timing: no producer shares the cores with the pool.
    echo "scaling: partitions 16, zero work, backlog: $(.build/release/sgctl bench worker --redis-url "$url" \
      --messages 60000 --channels 200 --workers 1,3 --backlog)" | tr '\n' ' ' \
      | sed -E 's/enqueue→commit p50 ([0-9.]+) ms, p99 ([0-9.]+) ms/p50 \1 ms p99 \2 ms/g'
    echo
  fi
done
