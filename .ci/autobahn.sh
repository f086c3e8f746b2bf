#!/usr/bin/env bash
# Run the Autobahn TestSuite against our server (echo example) and our client
# (autobahn_client example), strictly: sections 1-10 with the default features, and the whole
# suite (1-13, with permessage-deflate) with `--features deflate`; and sections 1-10 against
# the fixed-buffer session's echo (examples/embedded, std_echo). Installs kosoku into target/autobahn-venv if missing.
# Usage: .ci/autobahn.sh [--write-readme]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/autobahn-venv
if ! "$VENV/bin/kosoku" -h >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet kosoku==0.1.0
fi
# Two builds of the testees: the default features (sections 1-10: no compression), and
# `--features deflate` (the whole suite, 12.* and 13.* being permessage-deflate).
mkdir -p target/autobahn/bin
cargo build --quiet --release --example echo --example autobahn_client
cp target/release/examples/echo target/autobahn/bin/echo-plain
cp target/release/examples/autobahn_client target/autobahn/bin/client-plain
cargo build --quiet --release --features deflate --example echo --example autobahn_client
cp target/release/examples/echo target/autobahn/bin/echo-deflate
cp target/release/examples/autobahn_client target/autobahn/bin/client-deflate

SERVER_PORT=${AUTOBAHN_SERVER_PORT:-9001}
CLIENT_PORT=${AUTOBAHN_CLIENT_PORT:-9002}
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_port() { # wait until something listens on 127.0.0.1:$1
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

start=$(date +%s)
rm -rf target/autobahn/server* target/autobahn/client*

# run_side NAME ECHO_ARGS CLIENT_ARGS KOSOKU_SELECTION...
run_side() {
    local name=$1 echo_args=$2 client_args=$3
    shift 3
    # Our server under test: the echo example.
    # shellcheck disable=SC2086
    ./target/autobahn/bin/echo-$name "127.0.0.1:$SERVER_PORT" $echo_args >"target/autobahn-echo-$name.log" 2>&1 &
    local echo_pid=$!
    pids+=($echo_pid)
    wait_port "$SERVER_PORT"
    "$VENV/bin/kosoku" -m fuzzingclient -p 2 "$@" \
        -o "target/autobahn/server-$name" "127.0.0.1:$SERVER_PORT" >"target/autobahn-server-$name.log" 2>&1 || true
    kill "$echo_pid" 2>/dev/null || true
    wait "$echo_pid" 2>/dev/null || true

    # Our client under test against kosoku's fuzzing server.
    "$VENV/bin/kosoku" -m fuzzingserver "$@" \
        -o "target/autobahn/client-$name" "127.0.0.1:$CLIENT_PORT" >"target/autobahn-client-$name.log" 2>&1 &
    local fuzzing_server=$!
    pids+=($fuzzing_server)
    wait_port "$CLIENT_PORT"
    # shellcheck disable=SC2086
    timeout 900 ./target/autobahn/bin/client-$name "ws://127.0.0.1:$CLIENT_PORT" $client_args >/dev/null
    # kosoku writes its reports and exits after /updateReports.
    for _ in $(seq 100); do
        kill -0 "$fuzzing_server" 2>/dev/null || break
        sleep 0.1
    done
}

# Default features: no compression, so 12.* and 13.* would be UNIMPLEMENTED by design.
run_side plain "" "" -x '12.*' -x '13.*'
# With permessage-deflate: every section.
run_side deflate --deflate --deflate

# The fixed-buffer session without an allocator (issue 20): the firmware example's echo
# (examples/embedded, `serve`) over std sockets, server side, sections 1-10.
cargo build --quiet --release --manifest-path examples/embedded/Cargo.toml \
    --target-dir target/embedded --features std-echo --bin std_echo
FIXED_PORT=${AUTOBAHN_FIXED_PORT:-9003}
./target/embedded/release/std_echo "127.0.0.1:$FIXED_PORT" >target/autobahn-echo-fixed.log 2>&1 &
fixed_pid=$!
pids+=($fixed_pid)
wait_port "$FIXED_PORT"
"$VENV/bin/kosoku" -m fuzzingclient -p 2 -x '12.*' -x '13.*' \
    -o target/autobahn/server-fixed "127.0.0.1:$FIXED_PORT" >target/autobahn-server-fixed.log 2>&1 || true
kill "$fixed_pid" 2>/dev/null || true
wait "$fixed_pid" 2>/dev/null || true

status=0
for name in plain deflate; do
    python3 .ci/autobahn_report.py check server "target/autobahn/server-$name" || status=1
    python3 .ci/autobahn_report.py check client "target/autobahn/client-$name" || status=1
done
python3 .ci/autobahn_report.py check server target/autobahn/server-fixed || status=1
mode=--check
if [ "${1:-}" = "--write-readme" ]; then mode=--write; fi
python3 .ci/autobahn_report.py readme target/autobahn/server-deflate target/autobahn/client-deflate $mode README.md || status=1
echo "autobahn: both directions, both builds, and the fixed-buffer echo, in $(( $(date +%s) - start )) s"
exit $status
