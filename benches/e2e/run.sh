#!/usr/bin/env bash
# The end-to-end benchmark of wsloop against tungstenite, tokio-tungstenite, fastwebsockets,
# tokio-websockets and a raw TCP echo. Builds this package in release into target/e2e (under the repository's
# ignored /target), runs every row, and writes BENCHMARKS.md at the repository root.
#
#   bash benches/e2e/run.sh                 # 5 runs of 1.5 s per row and server (~13 minutes)
#   bash benches/e2e/run.sh --only 1,4      # some rows; also --reps N, --secs S, --out PATH
#   bash benches/e2e/run.sh --only 8        # a number alone picks all its rows (8a, 8b, 8c;
#                                           # --only 2: 2, 2b, 2c)
#
# Needs Linux, `taskset` and two CPUs: servers run on core 0, the load generator on core 1;
# except row 9 (`--only 9`: 1 and 2 threads per server), where the server and the load
# generator both run on cores 0 and 1 (`taskset -c 0,1` each), sharing the machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cargo build --release --manifest-path benches/e2e/Cargo.toml --target-dir target/e2e --bins
E2E_COMMAND="bash benches/e2e/run.sh${*:+ $*}" exec target/e2e/release/driver "$@"
