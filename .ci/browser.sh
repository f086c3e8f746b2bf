#!/usr/bin/env bash
# The dashboard example in a real headless browser: Debian's Chromium driven by the npm package
# playwright-core (tests/browser/dashboard.test.mjs). No browser is downloaded at test time.
#
# Installs what it lacks on a fresh Debian machine (chromium and a CJK font with apt-get, the
# locked playwright-core with `npm ci`), builds the example in release and runs the test.
# Idempotent: a second run installs nothing new. Bounded: every step runs under `timeout`,
# and the dashboard processes the test started are killed by the PIDs it recorded.
#
# Then the same over https and wss (tests/browser/dashboard_tls.test.mjs): the example is
# built with `--features tls` (without its TLS flags it is the plain dashboard, so one build
# serves both tests), with a self-signed certificate from the gen_cert example that Chromium
# is told to trust by its key.
#
# Then the application API of issue 16 (tests/browser/shops_chat.test.mjs): the dashboard's
# shop pages, its page after a Close 4000, its token on upgrades, and the chat example beside it.
#
# Leaves target/browser/dashboard.png (the page with its popups), target/browser/*.log (what
# each dashboard process printed) and target/browser/console.log (the page's console).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$(date +%s)
note() { echo "--- browser: $* ($(($(date +%s) - started)) s)"; }

out=$root/target/browser
bin=$root/target/release/examples/dashboard
chat_bin=$root/target/release/examples/chat
mkdir -p "$out"

cleanup() {
    # Normally the tests have already stopped them; this catches a test killed by its timeout.
    # Only a PID that still runs the binary it was recorded for is killed (PIDs get reused).
    local pid kind exe
    for kind in dashboard chat; do
        [ -f "$out/$kind.pids" ] || continue
        exe=$bin
        [ "$kind" = chat ] && exe=$chat_bin
        while read -r pid; do
            [ -n "$pid" ] || continue
            if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$out/$kind.pids"
    done
}
trap cleanup EXIT

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Debian packages: the browser, and a font for the page's Chinese labels -------------------
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || need+=(fonts-wqy-zenhei)
if [ ${#need[@]} -gt 0 ]; then
    note "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root timeout 300 apt-get update -q
    as_root timeout 900 apt-get install -y -q --no-install-recommends "${need[@]}"
fi
note "$(timeout 30 /usr/bin/chromium --version 2>/dev/null || echo 'chromium --version failed')"

# --- Node and the locked playwright-core -------------------------------------------------------
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed (Node.js 20 or newer)" >&2
    exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "playwright-core needs Node.js 20 or newer; this is $(node --version)" >&2
    exit 1
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
locked=$(node -p 'require("./tests/browser/package-lock.json").packages["node_modules/playwright-core"].version')
have=$(node -p 'try { require("./tests/browser/node_modules/playwright-core/package.json").version } catch { "" }')
if [ "$have" != "$locked" ]; then
    note "npm ci (playwright-core $locked)"
    (cd tests/browser && timeout 300 npm ci --no-audit --no-fund)
else
    note "playwright-core $have already installed"
fi

# --- The example, in release, with TLS ------------------------------------------------------------
note "cargo build --release --features tls --example dashboard --example gen_cert --example chat"
timeout 1200 cargo build --release --features tls --example dashboard --example gen_cert --example chat
: >"$out/chat.pids"

# --- The test ----------------------------------------------------------------------------------
note "node dashboard.test.mjs"
export WSLOOP_DASHBOARD_BIN=$bin CHROMIUM=/usr/bin/chromium WSLOOP_BROWSER_OUT=$out
(cd tests/browser && timeout --kill-after=10 300 node dashboard.test.mjs)
note "passed; screenshot: target/browser/dashboard.png"

# --- The same over https/wss -----------------------------------------------------------------------
timeout 60 "$root/target/release/examples/gen_cert" "$out/tls" localhost 127.0.0.1 >/dev/null
note "node dashboard_tls.test.mjs"
export WSLOOP_DASHBOARD_TLS_BIN=$bin WSLOOP_TLS_CERT=$out/tls/cert.pem WSLOOP_TLS_KEY=$out/tls/key.pem
(cd tests/browser && timeout --kill-after=10 120 node dashboard_tls.test.mjs)
note "passed over https/wss"

# --- Shops, the replaced page, the token, and the chat beside the dashboard ---------------------
note "node shops_chat.test.mjs"
export WSLOOP_CHAT_BIN=$chat_bin
(cd tests/browser && timeout --kill-after=10 240 node shops_chat.test.mjs)
note "passed: shops, replaced page, token, chat"
