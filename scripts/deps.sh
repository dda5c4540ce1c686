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

# Node.js (with npm) runs the Node binding's and the proxy's tests. A node
# already installed is kept (it may be newer than Debian's); otherwise
# Debian's nodejs, then npm when that nodejs did not bring its own.
if ! command -v node >/dev/null 2>&1; then
    pkgs="$pkgs nodejs"
fi

install_missing() {
    missing=""
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "ok installed"; then
            missing="$missing $p"
        fi
    done
    [ -n "$missing" ] || return 0
    echo "trine: installing:$missing" >&2
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${apt_updated:-}" ]; then
        $SUDO apt-get update -q
        apt_updated=1
    fi
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing
}

# shellcheck disable=SC2086
install_missing $pkgs
if ! command -v npm >/dev/null 2>&1; then
    install_missing npm
fi
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
    echo "trine: warning: node $(node --version 2>/dev/null) is older than" \
        "20, which some locked test packages declare they need" >&2
fi
