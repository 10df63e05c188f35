#!/usr/bin/env bash
# A long chaos run: every fault (kill, pause, steal, connkill, restart) against a pool of 4 workers
# for a few minutes, then the invariant report. Exit status 0 only when every invariant held.
# Usage: Scripts/chaos.sh [seconds (default 180)] [more `sgctl chaos` arguments]
#
# The restart fault needs a Redis that chaos started itself, so this script lets `sgctl chaos`
# start and own its redis-server (AOF on, private directory, free port) instead of starting one
# through lib.sh; lib.sh still provides the toolchain path.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

seconds=${1:-180}
[ $# -gt 0 ] && shift
Scripts/setup.sh
swift build -c release --product sgctl >&2
swift build -c release --product stream-consumer >&2

out=$(mktemp -d -t sg-chaos.XXXXXX)
echo "chaos: ${seconds} s, timeline and worker logs in $out" >&2
status=0
.build/release/sgctl chaos \
  --faults kill:7,pause:11,steal:3,connkill:5,restart:29,join:13,leave:17,joinkill:23 \
  --duration "$seconds" --messages $((seconds * 100)) --channels 50 --workers 4 \
  --lock-ttl 1 --work-ms 5 --jitter-ms 5 --concurrency 16 --drain-timeout 300 \
  --timeline "$out/timeline.svg" --log-dir "$out/logs" "$@" || status=$?
echo "chaos: timeline $out/timeline.svg" >&2
exit $status
