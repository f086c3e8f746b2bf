#!/usr/bin/env bash
# Run the Autobahn TestSuite (sections 1-10) against our server (echo example) and our client
# (autobahn_client example), strictly. Installs kosoku into target/autobahn-venv if missing.
# Usage: .ci/autobahn.sh [--write-readme]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/autobahn-venv
if ! "$VENV/bin/kosoku" -h >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet kosoku==0.1.0
fi
cargo build --quiet --release --example echo --example autobahn_client

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
rm -rf target/autobahn/server target/autobahn/client

# Our server under test: the echo example, as it is (12.* and 13.* are permessage-deflate,
# which we do not offer yet).
./target/release/examples/echo "127.0.0.1:$SERVER_PORT" >target/autobahn-echo.log 2>&1 &
pids+=($!)
wait_port "$SERVER_PORT"
"$VENV/bin/kosoku" -m fuzzingclient -p 2 -x '12.*' -x '13.*' \
    -o target/autobahn/server "127.0.0.1:$SERVER_PORT" >target/autobahn-server.log 2>&1 || true

# Our client under test against kosoku's fuzzing server.
"$VENV/bin/kosoku" -m fuzzingserver -x '12.*' -x '13.*' \
    -o target/autobahn/client "127.0.0.1:$CLIENT_PORT" >target/autobahn-client.log 2>&1 &
fuzzing_server=$!
pids+=($fuzzing_server)
wait_port "$CLIENT_PORT"
timeout 600 ./target/release/examples/autobahn_client "ws://127.0.0.1:$CLIENT_PORT" >/dev/null
# kosoku writes its reports and exits after /updateReports.
for _ in $(seq 100); do
    kill -0 "$fuzzing_server" 2>/dev/null || break
    sleep 0.1
done

status=0
python3 .ci/autobahn_report.py check server target/autobahn/server || status=1
python3 .ci/autobahn_report.py check client target/autobahn/client || status=1
mode=--check
if [ "${1:-}" = "--write-readme" ]; then mode=--write; fi
python3 .ci/autobahn_report.py readme target/autobahn/server target/autobahn/client $mode README.md || status=1
echo "autobahn: both directions in $(( $(date +%s) - start )) s"
exit $status
