#!/usr/bin/env bash
# The recipe of docs/staging.md, end to end, with real processes and two private Redis servers:
# produce to production, process, export a window, replay it into staging on the same Redis and
# on a second one, process with staging workers (one through --handler http), and check that
# staging's state equals production's for those channels and that production is byte-for-byte
# untouched. Exits non-zero on the first check that fails.
#
# Usage: Scripts/staging-test.sh   (after `swift build`; SG_BIN overrides the binaries' directory)
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

bin=${SG_BIN:-$(swift build --show-bin-path)}
sgctl="$bin/sgctl"
worker="$bin/stream-consumer"
for b in "$sgctl" "$worker"; do
  [ -x "$b" ] || { echo "staging-test: $b is missing; run swift build first" >&2; exit 1; }
done

workdir=$(mktemp -d -t sg-staging.XXXXXX)
children=()
cleanup() {
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "staging-test: FAIL: $*" >&2; exit 1; }
# The workers' and sgctl's partition count (docs/partitions.md); 1 is the single-stream layout.
partitions=${SG_PARTITIONS:-16}
export SG_PARTITIONS=$partitions
# Entries of an input stream: its partition streams summed. Usage: stream_length CLI BASE
stream_length() {
  local cli=$1 base=$2 total=0 s
  for s in $(partition_streams "$base" "$partitions"); do total=$((total + $("$cli" XLEN "$s"))); done
  echo "$total"
}
step() { echo "staging-test: $*" >&2; }

# Redis A holds production and staging, with the shipped ACL; Redis B is a second staging server.
admin_pw=admin-$RANDOM$RANDOM; worker_pw=worker-$RANDOM$RANDOM; staging_pw=staging-$RANDOM$RANDOM
mkdir -p "$workdir/a" "$workdir/b"
SG_ADMIN_PASSWORD=$admin_pw SG_WORKER_PASSWORD=$worker_pw SG_STAGING_PASSWORD=$staging_pw \
  Scripts/render-acl.sh Config/users.acl "$workdir/a/users.acl"
port_a=$(free_port)
start_redis "$workdir/a" "$port_a" --aclfile "$workdir/a/users.acl"
children+=("$REDIS_PID")
port_b=$(free_port)
start_redis "$workdir/b" "$port_b"
children+=("$REDIS_PID")

# sgctl on A as the admin, with the password from the environment (never on the command line).
export SG_REDIS_URL=redis://127.0.0.1:$port_a SG_REDIS_USER=sg-admin SG_REDIS_PASSWORD=$admin_pw
# The deploy step: sg-worker and sg-staging may call the functions but not load them.
"$sgctl" functions load >/dev/null
on_b() { env -u SG_REDIS_USER -u SG_REDIS_PASSWORD SG_REDIS_URL=redis://127.0.0.1:$port_b "$@"; }
cli_a() { REDISCLI_AUTH=$admin_pw redis-cli -p "$port_a" --user sg-admin --no-auth-warning "$@"; }
cli_b() { redis-cli -p "$port_b" "$@"; }

# wait_verify NAME [sgctl verify args…]: until verify passes (generous bound: the machine is shared).
wait_verify() {
  local name=$1; shift
  for _ in $(seq 1 600); do
    if "$@" >"$workdir/verify.out" 2>&1; then return 0; fi
    sleep 0.2
  done
  cat "$workdir/verify.out" >&2
  fail "$name: verify did not pass within 120 s"
}

stop() { kill -TERM "$1"; wait "$1" || fail "worker $1 exited with $?"; }

# Every production key (everything outside sg:staging:) with its DUMP, as one digest.
production_digest() {
  cli_a --scan | grep -v '^sg:staging:' | sort | while read -r key; do
    printf '%s\n' "$key"
    cli_a --no-raw DUMP "$key"
  done | sha256sum
}

step "1. produce to production"
"$sgctl" produce --messages 240 --channels 6 >/dev/null
sleep 0.05
window_start=$(( $(date +%s%3N) ))
sleep 0.05
for i in $(seq 0 119); do printf '{"channel": "w-%d", "text": "window message %d"}\n' $((i % 4)) "$i"; done > "$workdir/wave2.jsonl"
"$sgctl" produce --jsonl "$workdir/wave2.jsonl" >/dev/null
"$sgctl" verify >/dev/null 2>&1 && fail "verify passed before any worker ran"

step "2. process it (production worker as sg-worker)"
SG_REDIS_URL=redis://sg-worker:@127.0.0.1:$port_a SG_REDIS_PASSWORD=$worker_pw \
  "$worker" --consumer prod-1 --block-ms 100 --log-level warning >"$workdir/prod.log" 2>&1 &
prod=$!; children+=("$prod")
wait_verify production "$sgctl" verify
stop "$prod"
before=$(production_digest)

step "3. export a window"
"$sgctl" replay export --stream sg:stream:inbound --from "$window_start" -o "$workdir/window.jsonl" -q >/dev/null
[ "$(wc -l < "$workdir/window.jsonl")" -eq 120 ] || fail "the window holds $(wc -l < "$workdir/window.jsonl") entries, expected 120"
if "$sgctl" replay export --stream sg:stream:typo -q >/dev/null 2>"$workdir/typo.err"; then fail "exporting a missing stream succeeded"; fi
grep -q "sg:stream:typo" "$workdir/typo.err" || fail "the error does not name the missing stream"

step "4a. replay into staging on the same Redis"
# One early channel with its seqs kept, then the window restamped. Ids are kept, and a stream only
# takes ids above its last one, so the older entries go first.
"$sgctl" replay copy --from-stream sg:stream:inbound --channel ch-2 --namespace staging -q >/dev/null
"$sgctl" replay import --namespace staging --seq restamp -q "$workdir/window.jsonl" >/dev/null
again=$("$sgctl" replay copy --from-stream sg:stream:inbound --channel ch-2 --namespace staging -q)
echo "$again" | grep -q "added 0 of 40 entries; 40 already present" || fail "a repeated copy: $again"
length=$(stream_length cli_a sg:staging:stream:inbound)
[ "$length" -eq 160 ] || fail "staging stream holds $length entries, expected 160"
if "$sgctl" replay copy --from-stream sg:stream:inbound --channel ch-2 --namespace staging --ids new -q >"$workdir/refused.out" 2>&1; then
  fail "a replay that would be all duplicates was not refused"
fi
grep -q "duplicates" "$workdir/refused.out" || fail "the refusal does not explain: $(cat "$workdir/refused.out")"
[ "$(stream_length cli_a sg:staging:stream:inbound)" -eq 160 ] || fail "a refused replay wrote entries"
"$sgctl" replay copy --from-stream sg:stream:inbound --channel ch-2 --namespace staging --ids new --seq restamp --dry-run -q \
  | grep -q "^dry run: would add 40" || fail "a dry run does not say so"

step "5a. process with a staging worker (as sg-staging, restricted to sg:staging:*)"
SG_REDIS_URL=redis://sg-staging:@127.0.0.1:$port_a SG_REDIS_PASSWORD=$staging_pw \
  "$worker" --key-prefix sg:staging --stream sg:staging:stream:inbound --consumer staging-1 --block-ms 100 \
  --log-level warning >"$workdir/staging.log" 2>&1 &
staging=$!; children+=("$staging")
wait_verify "staging on A" "$sgctl" verify --namespace staging
stop "$staging"

# compare CLI_PRODUCTION CLI_STAGING: count, last_seq, last_id and history (without the fence,
# which belongs to each environment's own locks) of every replayed channel.
compare() {
  python3 - "$@" <<'PY'
import json, os, subprocess, sys, zlib
prod_cli, staging_cli, channels = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3].split(",")
partitions = int(os.environ["SG_PARTITIONS"])
def key(prefix, kind, channel):
    # docs/partitions.md: a channel's partition is zlib's CRC-32 of its id, mod the partition count.
    if partitions == 1:
        return f"{prefix}:{kind}:channel:{channel}"
    return f"{prefix}:{{p{zlib.crc32(channel.encode()) % partitions}}}:{kind}:channel:{channel}"
def read(cli, prefix, channel):
    def run(*args):
        return subprocess.run(cli + ["--raw", *args], check=True, capture_output=True, text=True).stdout.splitlines()
    flat = run("HGETALL", key(prefix, "state", channel))
    state = dict(zip(flat[::2], flat[1::2]))
    history = [json.loads(line) for line in run("LRANGE", key(prefix, "history", channel), "0", "-1")]
    for entry in history:
        entry.pop("fence", None)
    return {k: state.get(k) for k in ("count", "last_seq", "last_id")}, history
bad = 0
for channel in channels:
    prod, staging = read(prod_cli, "sg", channel), read(staging_cli, "sg:staging", channel)
    if prod[0]["count"] in (None, "0"):
        print(f"channel {channel}: production has no state", file=sys.stderr); bad += 1
    elif prod != staging:
        print(f"channel {channel}: production {prod[0]} / {len(prod[1])} history entries, "
              f"staging {staging[0]} / {len(staging[1])}", file=sys.stderr); bad += 1
sys.exit(1 if bad else 0)
PY
}
cli_a_words="env REDISCLI_AUTH=$admin_pw redis-cli -p $port_a --user sg-admin --no-auth-warning"
step "6a. staging equals production for the replayed channels; production untouched"
compare "$cli_a_words" "$cli_a_words" "w-0,w-1,w-2,w-3,ch-2" || fail "staging state differs from production"
[ "$(production_digest)" = "$before" ] || fail "production keys changed"

step "4b. replay into staging on a second Redis, from production on the first"
SG_FROM_REDIS_URL=redis://sg-admin:$admin_pw@127.0.0.1:$port_a SG_TO_REDIS_URL=redis://127.0.0.1:$port_b \
  "$sgctl" replay copy --from-stream sg:stream:inbound --from "$window_start" --namespace staging --seq restamp -q >/dev/null

step "5b. process it through the http handler"
hook_port=$(free_port)
python3 - "$hook_port" >"$workdir/hook.log" 2>&1 <<'PY' &
# A webhook service (docs/webhook.md) that keeps the same history as the built-in handler.
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        entry = json.dumps({"fields": body["fields"], "id": body["id"], "seq": body["seq"]}, sort_keys=True)
        answer = json.dumps({"increment": {"count": 1}, "append": {"values": [entry]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
hook=$!; children+=("$hook")
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $hook_port), 1).close()" 2>/dev/null && break
  sleep 0.1
done
# Not through on_b: a backgrounded function is a subshell, and $! would not be the worker.
env -u SG_REDIS_USER -u SG_REDIS_PASSWORD SG_REDIS_URL=redis://127.0.0.1:$port_b "$worker" --key-prefix sg:staging --stream sg:staging:stream:inbound --consumer staging-http --block-ms 100 \
  --handler http --handler-url "http://127.0.0.1:$hook_port/messages" --log-level warning >"$workdir/http.log" 2>&1 &
http_worker=$!; children+=("$http_worker")
wait_verify "staging on B" on_b "$sgctl" verify --namespace staging
stop "$http_worker"
step "6b. staging on B equals production for the window's channels"
compare "$cli_a_words" "redis-cli -p $port_b" "w-0,w-1,w-2,w-3" || fail "staging state on the second Redis differs from production"

step "7. a replay the worker drops as duplicates is said at info level"
"$sgctl" replay reset --stream sg:staging:stream:inbound --group workers --to 0 --yes >/dev/null
SG_REDIS_URL=redis://sg-staging:@127.0.0.1:$port_a SG_REDIS_PASSWORD=$staging_pw \
  "$worker" --key-prefix sg:staging --stream sg:staging:stream:inbound --consumer staging-2 --block-ms 100 \
  --batch 50 --log-level info >"$workdir/dups.log" 2>&1 &
dups=$!; children+=("$dups")
for _ in $(seq 1 600); do
  grep -q "as duplicates without applying any" "$workdir/dups.log" && break
  sleep 0.2
done
stop "$dups"
grep "as duplicates without applying any" "$workdir/dups.log" | grep -q "duplicates" \
  || { cat "$workdir/dups.log" >&2; fail "no info line about duplicates"; }
"$sgctl" verify --namespace staging >/dev/null || fail "staging does not verify after the duplicates"
[ "$(production_digest)" = "$before" ] || fail "production keys changed"

step "OK"
