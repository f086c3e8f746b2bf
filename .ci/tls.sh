#!/usr/bin/env bash
# TLS (feature `tls`) end to end with another implementation: the echo example serving
# wss:// with a certificate from the gen_cert example, and Python's `websockets` as the
# client (.ci/wss_python.py). Installs websockets into target/tls-venv if missing.
# Bounded: every step under `timeout`; the echo process is killed by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/tls-venv
if ! "$VENV/bin/python" -c "import websockets" >/dev/null 2>&1; then
    python3 -m venv "$VENV"
    timeout 300 "$VENV/bin/pip" install --quiet websockets==15.0.1
fi
timeout 1200 cargo build --quiet --features tls --example echo --example gen_cert
out=target/tls
mkdir -p "$out"
timeout 60 ./target/debug/examples/gen_cert "$out" localhost 127.0.0.1 >/dev/null

./target/debug/examples/echo 127.0.0.1:0 --tls-cert "$out/cert.pem" --tls-key "$out/key.pem" \
    >"$out/echo.out" 2>"$out/echo.log" &
echo_pid=$!
trap 'kill "$echo_pid" 2>/dev/null || true' EXIT
addr=
for _ in $(seq 100); do
    addr=$(sed -n 's|^echo server on wss://||p' "$out/echo.out")
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "echo did not start:"; cat "$out/echo.log"; exit 1; }
port=${addr##*:}
timeout 120 "$VENV/bin/python" .ci/wss_python.py "wss://localhost:$port/ws/python" "$out/cert.pem"
