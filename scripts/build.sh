#!/bin/sh
# Builds kinesink out of tree in build/ (or $1), configuring only when needed.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
dir=${1:-build}
shift 2>/dev/null || true
[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] || "$top/configure" -q "$@"
make -j"$(nproc)" all >/dev/null
make -j"$(nproc)" check TESTS= >/dev/null
