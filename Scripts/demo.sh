#!/usr/bin/env bash
# The main job on a fresh machine. Until the worker lands, it builds everything, starts a
# private Redis and runs the client benchmark against it.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

Scripts/setup.sh
workdir=$(mktemp -d -t sg-demo.XXXXXX)
trap 'stop_redis; rm -rf "$workdir"' EXIT
trap 'exit 130' INT TERM

swift build -c release --product sgctl
port=$(free_port)
start_redis "$workdir" "$port"
.build/release/sgctl bench client --redis-url "redis://127.0.0.1:$port"
