#!/usr/bin/env bash
# wsloop-redis: several server instances acting as one through Redis pub/sub.
#
# Installs redis-server if it is missing (Debian's package, with apt-get; through sudo unless
# root), then runs the crate's clippy with -D warnings and its tests. The tests start their own
# redis-server processes on free ports of 127.0.0.1 (no persistence) and kill them by PID, so
# nothing is left running and no Redis service is needed. Bounded: each step runs under
# `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
started=$(date +%s)
note() { echo "--- redis: $* ($(($(date +%s) - started)) s)"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v redis-server >/dev/null 2>&1; then
    note "installing redis-server"
    export DEBIAN_FRONTEND=noninteractive
    as_root timeout 300 apt-get update -qq
    as_root timeout 300 apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
note "$(redis-server --version)"

note "clippy -p wsloop-redis"
timeout 900 cargo clippy -p wsloop-redis --all-targets -- -D warnings

note "cargo test -p wsloop-redis"
timeout 900 cargo test -p wsloop-redis

note "done"
