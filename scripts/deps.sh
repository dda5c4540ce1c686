#!/bin/sh
# Installs the Debian packages trine builds and tests with, skipping any that
# are already present, so a fresh machine needs nothing installed by hand.
set -eu

pkgs="build-essential cmake pkg-config libjansson-dev libpcre2-dev \
libsqlite3-dev libcurl4-openssl-dev libssl-dev libcmocka-dev sqlite3 \
python3 socat util-linux valgrind"

# clang with compiler-rt (libFuzzer and the sanitizer runtimes) builds the
# fuzz targets that scripts/fuzz runs.
pkgs="$pkgs clang libclang-rt-dev"

# Node.js runs the Node binding's tests; Debian's packages only when there is
# no node at all (a newer one installed otherwise is kept).
if ! command -v node >/dev/null 2>&1; then
    pkgs="$pkgs nodejs npm"
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "trine: installing:$missing" >&2
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing
fi
