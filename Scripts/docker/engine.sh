# A private Docker engine for the tests, and offline stand-ins for the base images the project's
# Dockerfile and compose file name. Source it (after Scripts/lib.sh), don't run it.
#
# Test infrastructure, not product: real deployments pull the official images (Docker/README.md).
#
#   engine_start        starts dockerd on its own socket, data root, exec root and pidfile, with no
#                       bridge and no iptables rules (every container uses host networking); exports
#                       DOCKER_HOST and DOCKER_CONFIG
#   engine_stop         removes every container of that engine and stops it (trap it)
#   ensure_base_images  makes debian:bookworm-slim, gcr.io/distroless/cc-debian12:nonroot, swift:6.3-bookworm
#                       and redis:7 present: cached by tag, else pulled, else built here from debootstrap
#
# The data root (images, so the stand-ins and layer cache survive between runs) lives under
# SG_DOCKER_CACHE; a lock keeps two runs from sharing it at once.

docker_cache=${SG_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stream-consumer/docker}
engine_dir=""
engine_pid=""

engine_log() { echo "docker-test: $*" >&2; }

engine_start() {
  mkdir -p "$docker_cache"
  exec 9>"$docker_cache/lock"
  if ! flock -n 9; then
    engine_log "another run holds $docker_cache; waiting for it"
    flock 9
  fi
  # Short path: the socket's must fit in a sockaddr_un.
  engine_dir=$(mktemp -d /tmp/sgd.XXXXXX)
  echo '{}' >"$engine_dir/daemon.json"   # never /etc/docker/daemon.json, whatever it says
  mkdir -p "$engine_dir/config"
  dockerd --config-file "$engine_dir/daemon.json" \
    --data-root "$docker_cache/data-root" --exec-root "$engine_dir/exec" \
    --pidfile "$engine_dir/dockerd.pid" --host "unix://$engine_dir/docker.sock" \
    --bridge=none --iptables=false --ip-masq=false \
    >"$engine_dir/dockerd.log" 2>&1 &
  engine_pid=$!
  export DOCKER_HOST="unix://$engine_dir/docker.sock"
  export DOCKER_CONFIG="$engine_dir/config"   # compose is plugged in here, not in ~/.docker
  for _ in $(seq 1 120); do
    if docker version >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$engine_pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  engine_log "dockerd did not start; its log:"
  tail -n 30 "$engine_dir/dockerd.log" >&2
  return 1
}

engine_stop() {
  [ -n "$engine_pid" ] || return 0
  local ids
  ids=$(docker ps -aq 2>/dev/null || true)
  [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
  docker volume prune -f >/dev/null 2>&1 || true
  kill -TERM "$engine_pid" 2>/dev/null || true
  # dockerd stops the containerd it started before it exits.
  for _ in $(seq 1 60); do kill -0 "$engine_pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$engine_pid" 2>/dev/null || true
  wait "$engine_pid" 2>/dev/null || true
  engine_pid=""
  # dockerd leaves its network namespace bind-mounted under the exec root.
  awk -v dir="$engine_dir/" 'index($5, dir) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r mountpoint; do umount "$mountpoint" 2>/dev/null || umount -l "$mountpoint" 2>/dev/null || true; done
  rm -rf "$engine_dir" 2>/dev/null || true
}

# The label a stand-in carries: a hash of what it was built from, so a changed recipe rebuilds it.
standin_label=org.stargazer.standin

# standin_hash FILE...: of those files, the rootfs recipe below and the toolchain's version.
standin_hash() {
  { cat "$@"; declare -f bookworm_rootfs build_debian_slim; swift --version 2>/dev/null; } | sha256sum | cut -c 1-16
}

# ensure_image TAG HASH BUILD_FUNCTION
ensure_image() {
  local tag=$1 hash=$2 build=$3 have
  if have=$(docker image inspect -f "{{index .Config.Labels \"$standin_label\"}}" "$tag" 2>/dev/null); then
    # An official image (no label) or a stand-in of the current recipe.
    if [ -z "$have" ] || [ "$have" = "$hash" ]; then return 0; fi
    engine_log "$tag: stand-in recipe changed; rebuilding it"
  elif timeout 90 docker pull -q "$tag" >/dev/null 2>&1; then
    engine_log "$tag: pulled"
    return 0
  else
    engine_log "$tag: cannot be pulled; building a stand-in (test infrastructure; see Docker/README.md)"
  fi
  "$build" "$tag" "$hash"
}

debian_mirror() {
  if [ -n "${SG_DEBIAN_MIRROR:-}" ]; then echo "$SG_DEBIAN_MIRROR"; return; fi
  # The archive apt already uses (deb822 or one-line sources), else Debian's own.
  local found
  found=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    awk '($1 == "URIs:" || $1 == "deb") && $2 ~ /^https?:\/\/.*\/debian\/?$/ {print $2; exit}' || true)
  echo "${found:-http://deb.debian.org/debian}"
}

# The official Debian images' apt setting: no package caches, no downloaded .deb files left behind.
write_docker_clean() {
  cat >"$1" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
}

# A minbase bookworm root file system, made once and kept beside the data root.
bookworm_rootfs() {
  local rootfs="$docker_cache/rootfs-bookworm"
  if [ ! -f "$rootfs/.complete" ]; then
    command -v debootstrap >/dev/null || apt_install debootstrap
    rm -rf "$rootfs" "$rootfs.tmp"
    engine_log "debootstrap --variant=minbase bookworm from $(debian_mirror)"
    debootstrap --variant=minbase bookworm "$rootfs.tmp" "$(debian_mirror)" >"$docker_cache/debootstrap.log" 2>&1 || {
      tail -n 20 "$docker_cache/debootstrap.log" >&2
      return 1
    }
    # Slim as the official image is: no documentation, manuals or locales, no package caches.
    cat >"$rootfs.tmp/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    # And, like the official image, apt drops what it downloaded once it has installed it, so a
    # Dockerfile's `apt-get install` layer holds the packages, not their .deb files too.
    write_docker_clean "$rootfs.tmp/etc/apt/apt.conf.d/docker-clean"
    find "$rootfs.tmp/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$rootfs.tmp"/usr/share/man/* "$rootfs.tmp"/usr/share/info/* "$rootfs.tmp"/var/cache/apt/*.bin \
      "$rootfs.tmp"/var/cache/apt/archives/*.deb "$rootfs.tmp"/var/lib/apt/lists/*
    find "$rootfs.tmp/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    touch "$rootfs.tmp/.complete"
    mv "$rootfs.tmp" "$rootfs"
  fi
  # A root file system cached by an older recipe gets what this one adds.
  [ -f "$rootfs/etc/apt/apt.conf.d/docker-clean" ] || write_docker_clean "$rootfs/etc/apt/apt.conf.d/docker-clean"
  echo "$rootfs"
}

build_debian_slim() {
  local tag=$1 hash=$2 rootfs
  rootfs=$(bookworm_rootfs)
  tar -C "$rootfs" --exclude=./.complete -c . |
    docker import --change 'CMD ["bash"]' --change "LABEL $standin_label=$hash" - "$tag" >/dev/null
}

build_distroless_standin() {
  local tag=$1 hash=$2
  docker build -q --network host --label "$standin_label=$hash" -t "$tag" \
    -f Scripts/docker/distroless.Dockerfile Scripts/docker >/dev/null
}

build_redis_standin() {
  local tag=$1 hash=$2
  docker build -q --network host --label "$standin_label=$hash" -t "$tag" \
    -f Scripts/docker/redis.Dockerfile Scripts/docker >/dev/null
}

# The toolchain this machine runs, with the system packages the official image carries and this
# machine's git mirror configuration, so `swift package resolve` in Docker/Dockerfile works unchanged.
build_swift_standin() {
  local tag=$1 hash=$2 toolchain context
  toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")   # …/usr
  context=$(mktemp -d)
  cp Scripts/docker/swift.Dockerfile "$context/Dockerfile"
  git config --system --get-regexp '^url\..*\.insteadof$' 2>/dev/null |
    while read -r key value; do git config -f "$context/gitconfig" --add "$key" "$value"; done
  touch "$context/gitconfig"
  local mirror=/opt/swift-packages
  mkdir -p "$context/mirror"
  # The context is streamed as one tar: toolchain and package mirror without copying them first.
  tar -c -C "$context" Dockerfile gitconfig \
    --transform "s|^${toolchain#/}|toolchain|" -C / "${toolchain#/}" \
    --transform "s|^${mirror#/}|packages|" "${mirror#/}" |
    docker build -q --network host --label "$standin_label=$hash" -t "$tag" - >/dev/null
  rm -rf "$context"
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_base_images() {
  ensure_image debian:bookworm-slim "$(standin_hash)" build_debian_slim
  ensure_image gcr.io/distroless/cc-debian12:nonroot "$(standin_hash Scripts/docker/distroless.Dockerfile)" build_distroless_standin
  ensure_image redis:7 "$(standin_hash Scripts/docker/redis.Dockerfile Scripts/docker/redis-entrypoint.sh)" build_redis_standin
  ensure_image swift:6.3-bookworm "$(standin_hash Scripts/docker/swift.Dockerfile)" build_swift_standin
}
