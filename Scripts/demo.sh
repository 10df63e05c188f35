#!/usr/bin/env bash
# The main job on a fresh machine: a private Redis, a seq-stamped workload, a pool of workers,
# progress while they run, and a summary. Usage: Scripts/demo.sh [messages] [channels] [workers]
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

messages=${1:-20000}
channels=${2:-200}
workers=${3:-3}
Scripts/setup.sh
echo "demo: building (release)…" >&2
swift build -c release --product stream-consumer >&2
swift build -c release --product sgctl >&2
bin=.build/release

pids=()
extra_cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
start_private_redis demo
stream=sg:stream:inbound

# The input is split into the workers' partition streams (docs/partitions.md); sgctl and the
# workers both default to 16 partitions (SG_PARTITIONS sets both).
mapfile -t streams < <(partition_streams "$stream")
for s in "${streams[@]}"; do redis-cli -p "$port" XGROUP CREATE "$s" workers 0 MKSTREAM >/dev/null; done
"$bin/sgctl" produce --redis-url "$url" --stream "$stream" --messages "$messages" --channels "$channels"

start=$(date +%s.%N)
for i in $(seq 1 "$workers"); do
  "$bin/stream-consumer" --redis-url "$url" --stream "$stream" --consumer "demo-$i" --log-level warning \
    2>>"$workdir/worker-$i.log" &
  pids+=($!)
done

done_count=0
while :; do
  sleep 1
  read -r read_count pending < <(for s in "${streams[@]}"; do redis-cli -p "$port" XINFO GROUPS "$s"; done | awk '
    prev == "pending" {p += $0} prev == "entries-read" {r += $0} {prev = $0} END {print r + 0, p + 0}')
  done_count=$((read_count - pending))
  elapsed=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN {print n - s}')
  printf 'demo: %6d / %d committed, %d pending, %.1f s\n' "$done_count" "$messages" "$pending" "$elapsed"
  [ "$done_count" -ge "$messages" ] && break
done
elapsed=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN {print n - s}')
dead=0
for s in "${streams[@]}"; do dead=$((dead + $(redis-cli -p "$port" XLEN "$s:dead"))); done
echo
echo "demo: processed $done_count messages over $channels channels with $workers workers in $(printf %.2f "$elapsed") s ($(awk -v c="$done_count" -v e="$elapsed" 'BEGIN {printf "%d", c / e}') msg/s)"
echo "demo: dead-lettered $dead"
"$bin/sgctl" verify --redis-url "$url" --stream "$stream"
