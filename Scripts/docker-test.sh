#!/usr/bin/env bash
# The deployment, built and run for real: builds the image from Docker/Dockerfile, checks it, and
# runs the compose pool (Docker/docker-compose.yml with Scripts/docker/compose.test.yml) through its
# failure modes, on a private dockerd whose containers all use host networking on loopback ports.
#
#   Scripts/docker-test.sh          (Scripts/test.sh runs it after `swift test`)
#
# Where no engine can run here (not root, no dockerd and no apt-get) it says so in one line and
# exits 0, unless SG_DOCKER_TEST=1 asked for it, which then fails; SG_DOCKER_TEST=0 skips it on
# purpose. Everything it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh
source Scripts/docker/engine.sh

log() { echo "docker-test: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
# Asked for explicitly, a run that cannot happen is a failure, not a quiet pass.
skip() { [ "${SG_DOCKER_TEST:-}" != 1 ] || fail "SG_DOCKER_TEST=1, but $*"; log "skipped: $*"; exit 0; }

[ "${SG_DOCKER_TEST:-1}" != 0 ] || skip "SG_DOCKER_TEST=0"
[ "$(id -u)" -eq 0 ] || skip "no container engine can run here (its own dockerd needs root)"
if ! command -v dockerd >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || skip "no container engine can run here (no dockerd and no apt-get to install docker.io)"
  log "installing docker.io"
  apt_install docker.io
fi
command -v docker >/dev/null 2>&1 || apt_install docker.io

image=stargazer-worker:latest
project=sgtest
work=$(mktemp -d -t sg-docker.XXXXXX)
compose_up=0
started=$(date +%s)

cleanup() {
  local status=$?
  if [ "$compose_up" = 1 ]; then
    compose logs --no-color >"$work/compose.log" 2>&1 || true
    if [ "$status" -ne 0 ]; then log "the pool's last log lines:"; tail -n 40 "$work/compose.log" >&2; fi
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  for pid in ${native_pids:-}; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in ${native_pids:-}; do wait "$pid" 2>/dev/null || true; done
  stop_redis
  engine_stop
  if [ "${SG_DOCKER_KEEP_LOGS:-0}" = 1 ]; then log "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

deploy_tools
engine_start
# `docker compose` works too (in this engine's own DOCKER_CONFIG), for whoever repeats a command by hand.
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -sf "$compose_bin" "$DOCKER_CONFIG/cli-plugins/docker-compose"

compose() { "$compose_bin" -p "$project" -f Docker/docker-compose.yml -f Scripts/docker/compose.test.yml "$@"; }

# ---- base images and the image --------------------------------------------------------------
ensure_base_images

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- 2>/dev/null || commit="$commit-dirty"
log "building $image from Docker/Dockerfile (commit $commit)"
build_start=$(date +%s)
# Host networking for the RUN steps' apt-get: the engine has no bridge. The build stage gets a tag
# of its own, so its layers stay cached for the next run while superseded ones can be pruned.
for target in "--target build -t stargazer-worker:build-stage" "-t $image"; do
  # shellcheck disable=SC2086
  docker build --network host -f Docker/Dockerfile --build-arg SG_GIT_COMMIT="$commit" $target . \
    >>"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "docker build -f Docker/Dockerfile ."; }
done
build_seconds=$(( $(date +%s) - build_start ))
docker image prune -f >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image")
size_mb=$(( size / 1000000 ))
log "image built in ${build_seconds} s; ${size_mb} MB"
[ "$size" -le 150000000 ] || fail "the runtime image is ${size_mb} MB, more than 150 MB"

for tool in stream-consumer sgctl; do
  out=$(docker run --rm --network host --entrypoint "$tool" "$image" --version) || fail "$tool --version"
  [ "$out" = "1.0.0 (commit $commit)" ] || fail "$tool --version printed '$out', expected '1.0.0 (commit $commit)'"
done
user=$(docker image inspect -f '{{.Config.User}}' "$image")
[ "$user" = 10001:10001 ] || fail "the image's user is '$user', not 10001:10001"
[ "$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$image")" = '["CMD","/usr/local/bin/sgctl","health"]' ] ||
  fail "the image's health check is not sgctl health: $(docker image inspect -f '{{json .Config.Healthcheck}}' "$image")"
# The base has no shell: nothing a compromised worker could start one with.
if docker run --rm --network host --entrypoint sh "$image" -c true >/dev/null 2>&1; then fail "the image has a shell"; fi
log "image: stream-consumer and sgctl --version print '1.0.0 (commit $commit)'; user 10001:10001; health check sgctl health; no shell"

# ---- the compose pool ---------------------------------------------------------------------------
secrets=$work/secrets
mkdir -p "$secrets"
admin_password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$admin_password" >"$secrets/admin_password"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secrets/worker_password"
chmod 644 "$secrets"/*_password   # the worker runs as uid 10001 and reads its file
export SG_TEST_SECRETS=$secrets
export SG_TEST_REDIS_PORT=$(free_port)
export SG_TEST_METRICS_PORT_1=$(free_port) SG_TEST_METRICS_PORT_2=$(free_port) SG_TEST_METRICS_PORT_3=$(free_port)
admin_url="redis://sg-admin:$admin_password@127.0.0.1:$SG_TEST_REDIS_PORT"
stream=sg:stream:inbound
# The compose workers and sgctl both use the default 16 partition streams of it.
mapfile -t streams < <(partition_streams "$stream")
messages=20000
channels=200

rcli() { REDISCLI_AUTH=$admin_password redis-cli --no-auth-warning -p "$SG_TEST_REDIS_PORT" --user sg-admin "$@"; }
sgctl() { docker run --rm --network host --entrypoint sgctl "$image" "$@"; }

# committed [redis-cli args]: entries the group has read and acknowledged (the compose Redis by default).
committed() {
  if [ $# -eq 0 ]; then set -- rcli; fi
  local s
  for s in "${streams[@]}"; do "$@" XINFO GROUPS "$s"; done | awk '
    prev == "pending" {p += $0} prev == "entries-read" {r += $0} {prev = $0} END {print r - p}'
}
# pending_of CONSUMER: entries delivered to CONSUMER and not yet acknowledged.
pending_of() {
  local s
  for s in "${streams[@]}"; do rcli XPENDING "$s" workers - + 1000000 "$1"; done | awk 'NR % 4 == 1' | grep -c . || true
}
# stream_length [SUFFIX]: entries of every partition stream (or of their SUFFIX streams, e.g. :dead).
stream_length() {
  local s total=0
  for s in "${streams[@]}"; do total=$((total + $(rcli XLEN "$s${1:-}"))); done
  echo "$total"
}
holds_nothing() { [ "$(pending_of "$1")" = 0 ]; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within ${limit} s"
    sleep 0.5
  done
}
state_of() { docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$(compose ps -aq "$1")"; }
healthy() { for s in "$@"; do [ "$(state_of "$s")" = "running healthy" ] || return 1; done; }
committed_at_least() { local n=$1; shift; [ "$(committed "$@")" -ge "$n" ]; }

# verify_pool: every channel's history holds seqs 1…n once each, in order; nothing dead-lettered.
verify_pool() {
  local report
  report=$(sgctl verify --redis-url "$admin_url" --json) || { echo "$report" >&2; fail "sgctl verify: $report"; }
  python3 - "$report" "$messages" "$channels" <<'PY' || fail "sgctl verify: $report"
import json, sys
r, messages, channels = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ok = (r["ok"] and r["produced"] == messages and r["applied"] == messages and r["channels"] == channels
      and r["lost"] == 0 and r["duplicated"] == 0 and r["out_of_order"] == 0 and r["dead_lettered"] == 0)
sys.exit(0 if ok else 1)
PY
  [ "$(stream_length :dead)" = 0 ] || fail "entries were dead-lettered ($(stream_length :dead)); sgctl dlq list shows them"
  log "verified: $messages messages over $channels channels, each channel complete, once, in order"
}

seconds_since() { awk -v s="$1" -v n="$(date +%s.%N)" 'BEGIN {printf "%.2f", n - s}'; }

# timed_run URL [redis-cli args]: produces the workload into a pool that is ready and idle, and
# prints the seconds until every message is committed. Producing is inside the time, the same way
# for both pools, so the figure is the pool's rate from a standing start.
timed_run() {
  local url=$1 start
  shift
  start=$(date +%s.%N)
  sgctl produce --redis-url "$url" --stream "$stream" --messages "$messages" --channels "$channels" >/dev/null
  wait_for 600 "$messages messages committed" committed_at_least "$messages" "$@"
  seconds_since "$start"
}
rate() { awk -v m="$messages" -v s="$1" 'BEGIN {printf "%d", m / s}'; }

# 1. Throughput and correctness: the pool as shipped (no simulated work).
log "compose pool: Redis with AOF and the rendered ACL, three workers"
compose_up=1
compose up -d --no-build redis worker-1 worker-2 worker-3 >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "docker compose up"; }
wait_for 180 "three workers healthy" healthy worker-1 worker-2 worker-3
[ "$(rcli CONFIG GET appendonly | tail -n 1)" = yes ] || fail "Redis runs without AOF"
rcli ACL WHOAMI | grep -qx sg-admin || fail "the admin user from the rendered ACL cannot log in"
acl_users=$(rcli ACL USERS | sort | tr '\n' ' ')
shipped_users=$(awk '$1 == "user" {print $2}' Config/users.acl | sort | tr '\n' ' ')
[ "$acl_users" = "$shipped_users" ] || fail "Redis has the ACL users $acl_users; Config/users.acl has $shipped_users"
# Healthy means the image's own check (sgctl health) passed; and the process really runs as 10001.
worker_pid=$(docker inspect -f '{{.State.Pid}}' "$(compose ps -q worker-1)")
[ "$(stat -c %u:%g "/proc/$worker_pid")" = 10001:10001 ] || fail "worker-1 runs as $(stat -c %u:%g "/proc/$worker_pid"), not 10001:10001"
log "three workers healthy (sgctl health), running as uid 10001; Redis has AOF on and the rendered ACL"

container_seconds=$(timed_run "$admin_url")
verify_pool
container_rate=$(rate "$container_seconds")
log "compose pool: $messages messages in $container_seconds s ($container_rate msg/s)"

# 2. Failure modes, with simulated work so each one finds messages in flight.
compose down -v >/dev/null 2>&1
export SG_TEST_WORK_MS=40 SG_TEST_CONCURRENCY=16 SG_TEST_LOCK_TTL=2
compose up -d --no-build redis worker-1 worker-2 worker-3 >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "docker compose up"; }
wait_for 180 "three workers healthy" healthy worker-1 worker-2 worker-3
sgctl produce --redis-url "$admin_url" --stream "$stream" --messages "$messages" --channels "$channels" >/dev/null

# A stop drains: SIGTERM, in-flight messages finish, exit 0 within the grace period.
wait_for 300 "a first tenth committed" committed_at_least $(( messages / 10 ))
stop_start=$(date +%s.%N)
compose stop worker-1 >/dev/null 2>&1
stop_seconds=$(seconds_since "$stop_start")
read -r status code <<<"$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(compose ps -aq worker-1)")"
[ "$status $code" = "exited 0" ] || fail "docker compose stop worker-1: $status, exit code $code (want exited 0)"
awk -v s="$stop_seconds" 'BEGIN {exit !(s < 30)}' || fail "worker-1 took $stop_seconds s to drain, past its 30 s shutdown grace"
holds_nothing worker-1 || fail "worker-1 left $(pending_of worker-1) entries pending after its drain"
log "docker compose stop worker-1: drained in $stop_seconds s, exit code 0, nothing left pending"

# A kill takes nothing with it: the entries it held are claimed and finished by the survivor.
wait_for 300 "another tenth committed" committed_at_least $(( messages / 5 ))
held=$(pending_of worker-2)
docker kill "$(compose ps -q worker-2)" >/dev/null
[ "$held" -gt 0 ] || fail "worker-2 held no entries when killed, so the takeover was not exercised"
wait_for 300 "worker-2's $held entries taken over" holds_nothing worker-2
log "docker kill worker-2: the $held entries it held were claimed by worker-3"

# A Redis restart is survived: the worker reconnects, and AOF keeps every entry and commit.
wait_for 300 "three tenths committed" committed_at_least $(( messages * 3 / 10 ))
before=$(stream_length)
compose restart redis >/dev/null 2>&1
wait_for 120 "Redis healthy after its restart" healthy redis
[ "$(stream_length)" = "$before" ] || fail "the streams lost entries over the Redis restart: $before before, $(stream_length) after"
wait_for 600 "every message committed after the Redis restart" committed_at_least "$messages"
read -r status restarts <<<"$(docker inspect -f '{{.State.Status}} {{.RestartCount}}' "$(compose ps -q worker-3)")"
[ "$status $restarts" = "running 0" ] || fail "worker-3 did not ride out the Redis restart ($status, $restarts restarts)"
verify_pool
log "Redis restart: worker-3 reconnected and finished the work; nothing lost"
compose down -v >/dev/null 2>&1
compose_up=0

# 3. The same pool natively, for comparison: the image's own binary on this machine (same build,
# same settings), three processes against a private Redis with the same AOF setting.
docker create --name sg-extract "$image" >/dev/null
docker cp sg-extract:/usr/local/bin/stargazer "$work/stargazer"
ln -s stargazer "$work/stream-consumer"
docker rm sg-extract >/dev/null
native_port=$(free_port)
mkdir -p "$work/native"
start_redis "$work/native" "$native_port" --appendonly yes --appendfsync everysec
native_url="redis://127.0.0.1:$native_port"
native_pids=""
native_ready() { for p in "$@"; do curl -fsS -o /dev/null "http://127.0.0.1:$p/health/ready" || return 1; done; }
ports=""
for i in 1 2 3; do
  p=$(free_port)
  ports="$ports $p"
  env -i PATH="$PATH" SG_CONCURRENCY=64 SG_LOCK_TTL=10 SG_MAX_DELIVERIES=5 SG_SHUTDOWN_GRACE=30 \
    SG_LOG_FORMAT=json SG_LOG_LEVEL=info SG_METRICS_HOST=127.0.0.1 SG_METRICS_PORT="$p" \
    "$work/stream-consumer" --redis-url "$native_url" --consumer "native-$i" 2>>"$work/native-$i.log" &
  native_pids="$native_pids $!"
done
# shellcheck disable=SC2086
wait_for 120 "three native workers ready" native_ready $ports
native_seconds=$(timed_run "$native_url" redis-cli -p "$native_port")
sgctl verify --redis-url "$native_url" >/dev/null || fail "the native pool's histories"
native_rate=$(rate "$native_seconds")
ratio=$(awk -v c="$container_rate" -v n="$native_rate" 'BEGIN {printf "%.2f", c / n}')
log "native pool: $messages messages in $native_seconds s ($native_rate msg/s); containers/native = ${ratio}x"

log "passed in $(( $(date +%s) - started )) s: image ${size_mb} MB built in ${build_seconds} s;" \
  "compose pool $container_rate msg/s, native $native_rate msg/s (${ratio}x)"
