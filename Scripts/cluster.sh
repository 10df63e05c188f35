#!/usr/bin/env bash
# A private Redis Cluster on loopback, for tests and benchmarks: 3 primaries and 3 replicas on free
# ports below 55536 (each node's cluster bus listens on its port + 10000), in a folder of its own.
#
#   Scripts/cluster.sh start DIR [PRIMARIES]   starts it; prints its redis+cluster:// URL
#   Scripts/cluster.sh stop DIR                stops every node and removes DIR, keeping the
#                                              nodes' logs and cluster configs in DIR.logs
#
# DIR/ports lists the nodes' ports, DIR/<port>.pid their pids, DIR/<port>/redis.log their logs.
# SG_CLUSTER_NODE_TIMEOUT (ms, default 5000) is how soon a silent primary is failed over (with 2 s, a cluster
# once stayed down for minutes under the full test suite's CPU load: spurious failure detection is
# the suspect); a replica
# may take over however long ago it last heard from its primary (cluster-replica-validity-factor 0),
# so a test that kills a primary right after start still sees a failover.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

# Ports P (and P + 10000) that nothing listens on. Below the kernel's ephemeral range where it
# leaves room (P in 20000..22767 with Linux's default 32768..60999), so a client's outgoing
# connection cannot take a node's port between this check and the node's bind.
cluster_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
count, found = int(sys.argv[1]), []
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral_low = 32768
high = ephemeral_low - 10000 - 1 if ephemeral_low - 10000 - 1 >= 21000 else 45535
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
while len(found) < count:
    p = random.randint(20000, high)
    if all(abs(p - q) not in (0, 10000) for q in found) and free(p) and free(p + 10000):
        found.append(p)
print(" ".join(map(str, found)))
PY
}

# Another test's node can still take a port between the check and the bind: a node that does not
# start sends the whole cluster round again on new ports, up to three times.
start() {
  local dir=$1 primaries=${2:-3} attempt status
  for attempt in 1 2 3; do
    status=0
    start_once "$dir" "$primaries" || status=$?
    [ "$status" = 2 ] || return "$status"
    echo "cluster.sh: a node did not start (attempt $attempt); trying new ports" >&2
    stop "$dir"
  done
  return 1
}

start_once() {
  local dir=$1 primaries=$2
  mkdir -p "$dir"
  local ports
  ports=$(cluster_ports $(( primaries * 2 )))
  echo "$ports" >"$dir/ports"
  local addresses=""
  for port in $ports; do
    mkdir -p "$dir/$port"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir/$port" --save '' --appendonly no \
      --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout "${SG_CLUSTER_NODE_TIMEOUT:-5000}" --cluster-replica-validity-factor 0 \
      --repl-diskless-sync-delay 0 \
      --logfile "$dir/$port/redis.log" --daemonize no >/dev/null 2>&1 &
    echo $! >"$dir/$port.pid"
    addresses="$addresses 127.0.0.1:$port"
  done
  local port up
  for port in $ports; do
    up=0
    for _ in $(seq 1 300); do
      if redis-cli -p "$port" ping >/dev/null 2>&1; then up=1; break; fi
      kill -0 "$(cat "$dir/$port.pid")" 2>/dev/null || break
      sleep 0.1
    done
    if [ $up = 0 ]; then
      tail -n 5 "$dir/$port/redis.log" >&2 2>/dev/null || true
      return 2
    fi
  done
  # shellcheck disable=SC2086
  redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
    cat "$dir/create.log" >&2
    stop "$dir"
    return 1
  }
  # Every node agrees the cluster is up, and every replica has finished its first sync.
  for _ in $(seq 1 300); do
    local ok=1 synced=0
    for port in $ports; do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
      redis-cli -p "$port" info replication 2>/dev/null | grep -q 'master_link_status:up' && synced=$((synced + 1))
    done
    if [ $ok = 1 ] && [ "$synced" = "$primaries" ]; then
      echo "redis+cluster://$(echo $ports | sed 's/\([0-9]*\)/127.0.0.1:\1/g; s/ /,/g')"
      return 0
    fi
    sleep 0.1
  done
  echo "cluster-create: the cluster did not settle; see $dir" >&2
  return 1
}

stop() {
  local dir=$1
  [ -d "$dir" ] || return 0
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    local pid
    pid=$(cat "$pidfile")
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  # The nodes' logs outlive the cluster (a few KB each), for the post-mortem of a failed test.
  local logs=$dir.logs port
  mkdir -p "$logs"
  for port in $(cat "$dir/ports" 2>/dev/null); do
    [ -f "$dir/$port/redis.log" ] && cp "$dir/$port/redis.log" "$logs/$port.log"
    [ -f "$dir/$port/nodes.conf" ] && cp "$dir/$port/nodes.conf" "$logs/$port.nodes.conf"
  done
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "$2" "${3:-3}" ;;
  stop) stop "$2" ;;
  *) echo "usage: Scripts/cluster.sh start|stop DIR [PRIMARIES]" >&2; exit 2 ;;
esac
