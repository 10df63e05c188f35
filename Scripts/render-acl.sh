#!/bin/sh
# Renders an ACL template such as Config/users.acl into a file redis-server can load:
# every `#SG_<NAME>_PASSWORD_SHA256` becomes `#` + the SHA-256 of that user's password.
#
#   render-acl.sh TEMPLATE OUTPUT
#
# Each password comes from the file named by SG_<NAME>_PASSWORD_FILE (a mounted secret; its
# trailing newlines are dropped, as the worker does) or else from SG_<NAME>_PASSWORD. Never from
# an argument, where `ps` would show it. The output holds only hashes and is written mode 600.
# The unrendered template does not load (a placeholder is not a valid hash), so it cannot be
# deployed by mistake with a guessable password.
#
# Users named in `optional` below may be left without a password: their line is then rendered
# `off` with no password at all, so nobody can log in as them (a deployment without staging).
set -eu

optional="STAGING"

if [ $# -ne 2 ]; then
    echo "usage: $0 TEMPLATE OUTPUT" >&2
    exit 2
fi
template=$1
output=$2

script=""
for name in $(grep -o '#SG_[A-Z0-9_]*_PASSWORD_SHA256' "$template" | sort -u | sed -e 's/^#SG_//' -e 's/_PASSWORD_SHA256$//'); do
    eval "file=\${SG_${name}_PASSWORD_FILE:-}"
    eval "value=\${SG_${name}_PASSWORD:-}"
    if [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "$0: SG_${name}_PASSWORD_FILE: cannot read $file" >&2
            exit 1
        fi
        value=$(cat "$file")
    fi
    if [ -z "$value" ]; then
        case " $optional " in
            *" $name "*)
                script="${script}s/ on #SG_${name}_PASSWORD_SHA256/ off resetpass/g;"
                continue
                ;;
        esac
        echo "$0: no password for placeholder SG_${name}_PASSWORD_SHA256: set SG_${name}_PASSWORD_FILE or SG_${name}_PASSWORD" >&2
        exit 1
    fi
    hash=$(printf '%s' "$value" | sha256sum | cut -d ' ' -f 1)
    script="${script}s/#SG_${name}_PASSWORD_SHA256/#${hash}/g;"
done

umask 077
sed -e "$script" "$template" > "$output.tmp"
mv "$output.tmp" "$output"
