#!/usr/bin/env bash
# Proves the documented partition function is the same in Python, Node and Swift: the Python
# producer snippet (redis-py, in a venv made here) writes a partitioned workload, the real worker
# consumes it, and `sgctl verify` checks every channel. Called by Scripts/test.sh with the URL of
# its private Redis and the folder holding the built binaries; SG_TEST_PYTHON is a Python with
# redis-py (test.sh's venv), else one is made here.
# Usage: Scripts/producer-test.sh REDIS_URL BIN_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
url=$1 bin=$2
python=${SG_TEST_PYTHON:-}
if [ -z "$python" ] || ! "$python" -c 'import redis' 2>/dev/null; then
  venv="${SG_CACHE_DIR:-$HOME/.cache/stream-consumer}/producer-venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import redis' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check redis
  fi
  python="$venv/bin/python"
fi
"$python" docs/producers/check-vectors.py

prefix="py$RANDOM$RANDOM" stream="py$RANDOM:in" partitions=8 messages=2000 channels=40
"$python" docs/producers/sg_producer.py --redis-url "$url" --stream "$stream" \
  --partitions "$partitions" --key-prefix "$prefix" --messages "$messages" --channels "$channels"
pids=()
for i in 1 2; do
  "$bin/stream-consumer" --redis-url "$url" --stream "$stream" --partitions "$partitions" --key-prefix "$prefix" \
    --group g --consumer "py-$i" --block-ms 200 --lock-ttl 2 --history-max 1000 --log-level warning &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
# The state keys of every channel, named by the Python snippet's own partition function.
mapfile -t state_keys < <(cd docs/producers && "$python" -c "
from sg_producer import partition
for c in range($channels): print('$prefix:{p%d}:state:channel:py-%d' % (partition('py-%d' % c, $partitions), c))")
applied=0
for _ in $(seq 1 600); do
  applied=0
  for key in "${state_keys[@]}"; do
    n=$(redis-cli -u "$url" HGET "$key" count)
    applied=$((applied + ${n:-0}))
  done
  [ "$applied" -ge "$messages" ] && break
  sleep 0.5
done
kill -TERM "${pids[@]}"
wait "${pids[@]}" || { echo "producer-test: a worker did not exit cleanly" >&2; exit 1; }
trap - EXIT
if [ "$applied" -ne "$messages" ]; then
  echo "producer-test: $applied of $messages messages applied" >&2
  exit 1
fi
"$bin/sgctl" verify --redis-url "$url" --key-prefix "$prefix" --partitions "$partitions" --stream "$stream" --history-max 1000
echo "producer-test: Python producer → $partitions partitions → 2 workers: $applied of $messages applied, verified"
