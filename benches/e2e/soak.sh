#!/usr/bin/env bash
# The soak benchmark of issue 19: 10 minutes of connection churn ending in every way plus a
# broadcast storm with slow readers, against the release `servers wsloop` (pinned to core 0).
# The server's RSS and open descriptors are read at the start, every second, and after each
# round once every client is gone; they must come back to the baseline.
#
#   bash benches/e2e/soak.sh                       # 600 s in 10 rounds (~12 minutes)
#   bash benches/e2e/soak.sh --secs 20 --rounds 2 --idle-wait 5   # the smoke run (~40 s)
#
# Writes target/e2e/SOAK.md (or --out PATH) and one JSON line on stdout; exits 1 on FAIL.
# Needs Linux (/proc) and `taskset`. Options: see the doc comment of src/bin/soak.rs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cargo build --release --manifest-path benches/e2e/Cargo.toml --target-dir target/e2e --bin servers --bin soak
SOAK_COMMAND="bash benches/e2e/soak.sh${*:+ $*}" exec target/e2e/release/soak "$@"
