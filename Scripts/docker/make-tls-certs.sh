#!/usr/bin/env bash
# Throw-away certificates for trying Docker/docker-compose.tls.yml on one machine:
#
#   Scripts/docker/make-tls-certs.sh [DIR]        # DIR defaults to Docker/secrets/tls
#
# DIR/ca.crt      a CA made here and now (its key, ca.key, stays in DIR and is mounted nowhere)
# DIR/redis.crt   Redis's certificate, for `redis` (the compose service clients connect to) and
#  + redis.key    for localhost and 127.0.0.1 (the health check inside the container)
#
# Valid for 30 days. Real deployments use certificates from their own CA, with the name their
# clients connect to; put them at the same paths (ca.crt and redis.crt readable by all, since the
# worker runs as uid 10001; redis.key may stay mode 600).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/Scripts/lib.sh"

dir=${1:-$root/Docker/secrets/tls}
for file in ca.crt ca.key redis.crt redis.key; do
  if [ -e "$dir/$file" ]; then
    echo "make-tls-certs: $dir/$file exists; remove it first to make new ones" >&2
    exit 1
  fi
done

mkdir -p "$dir"
chmod 700 "$dir"
make_ca "$dir" ca "/CN=stargazer compose throw-away CA" 30
make_leaf "$dir" redis ca "DNS:redis,DNS:localhost,IP:127.0.0.1" serverAuth 30
rm -f "$dir/redis.csr" "$dir/redis.ext" "$dir/ca.srl"
chmod 644 "$dir/ca.crt" "$dir/redis.crt"
echo "make-tls-certs: $dir/ca.crt, redis.crt and redis.key, valid 30 days, for trying TLS only" >&2
