# Test infrastructure, not product: a stand-in for the official swift:6.3-bookworm image, for a
# machine that cannot reach a registry. Scripts/docker/engine.sh streams the context: this file,
# `toolchain` (the machine's Swift toolchain, its usr/ folder), `packages` (the local package
# mirror) and `gitconfig` (the machine's url.*.insteadOf lines that point git at that mirror).
FROM debian:bookworm-slim

# What the official image installs beside the toolchain.
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        binutils \
        git \
        gnupg2 \
        libc6-dev \
        libcurl4-openssl-dev \
        libedit2 \
        libgcc-12-dev \
        libncurses-dev \
        libpython3-dev \
        libsqlite3-0 \
        libstdc++-12-dev \
        libxml2-dev \
        libz3-dev \
        pkg-config \
        tzdata \
        unzip \
        zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

# The official image unpacks the toolchain into /usr as well.
COPY toolchain /usr/
COPY packages /opt/swift-packages/
COPY gitconfig /etc/gitconfig
RUN swift --version
CMD ["bash"]
