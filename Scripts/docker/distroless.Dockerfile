# Test infrastructure, not product: a stand-in for gcr.io/distroless/cc-debian12:nonroot, for a machine that
# cannot reach a registry. The same Debian packages' files (glibc, libgcc, libstdc++, OpenSSL, CA
# certificates, time zones, netbase, base-files) and the same users, with no shell, no package
# manager and no package database.
FROM debian:bookworm-slim AS packages
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        libssl3 \
        netbase \
        tzdata \
    && rm -rf /var/lib/apt/lists/*
# Regular files and links to them only, each at the path its package lists, in real directories: distroless
# Debian 12 does not merge /lib into /usr as Debian's own images do. The links ca-certificates and
# tzdata make when they are configured come along with their directories.
RUN mkdir -p /out/etc /out/home/nonroot /out/root /out/tmp \
    && chmod 1777 /out/tmp \
    && dpkg -L base-files ca-certificates libc6 libgcc-s1 libssl3 libstdc++6 netbase tzdata \
        | while read -r path; do \
            if [ ! -d "$path" ] && { [ -L "$path" ] || [ -f "$path" ]; }; then \
                mkdir -p "/out$(dirname "$path")" && cp -a "$path" "/out$path" || exit 1; \
            fi; \
        done \
    && loader="$(dpkg -L libc6 | grep -E '^/lib(64)?/ld-linux[^/]*\.so\.[0-9]+$' | head -n 1)" \
    && chroot /out "$loader" --list "$(dpkg -L libssl3 | grep -E '/libssl\.so\.3$')" >/dev/null \
    && cp -a --parents /etc/ssl/certs /out \
    && printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
        'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > /out/etc/passwd \
    && printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' > /out/etc/group \
    && chown 65532:65532 /out/home/nonroot && chmod 0700 /out/home/nonroot

FROM scratch
COPY --from=packages /out/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
