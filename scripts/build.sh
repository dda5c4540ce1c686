#!/bin/sh
# Configures and builds trine into a build directory.
#   scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$here/build"}
[ $# -gt 0 ] && shift
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j "$jobs"
