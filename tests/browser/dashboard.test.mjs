// End-to-end test of the dashboard example in a real headless browser.
//
// Drives Debian's Chromium (/usr/bin/chromium) through playwright-core, which downloads no
// browser of its own. Starts the release `dashboard` example on a free port of 127.0.0.1 with
// RUST_LOG=info, captures its stdout and stderr, and checks what a person at the page would
// see together with what the server logs:
//
//   1. the page loads and shows "connected", with a sid that is a random UUID (never from
//      Math.random), also where crypto.randomUUID is missing (plain http on a LAN address);
//   2. POST /orders/42/remind pops up "订单号：42" within 2 s, without a reload;
//   3. typing in #text and clicking Send reaches the server (its log shows the text);
//   3b. a page on another origin can neither broadcast with a simple POST nor open a
//      WebSocket to the dashboard (the server refuses both with 403, as Chromium sends them),
//      and a name that resolves to 127.0.0.1 (DNS rebinding) gets 421, not the page;
//   4. killing the server makes the page say "reconnecting", and restarting it on the same
//      port makes the page connect again by itself;
//   5. "Close connection" closes with code 1000, and the server logs a client close (1000).
//
// Run by .ci/browser.sh (which installs Chromium, runs `npm ci` here and builds the example),
// or by hand:
//
//   cargo build --release --example dashboard
//   cd tests/browser && npm ci && node dashboard.test.mjs
//
// Environment: WSLOOP_DASHBOARD_BIN (the example's binary; default
// target/release/examples/dashboard), CHROMIUM (default /usr/bin/chromium),
// WSLOOP_BROWSER_OUT (screenshots, logs and the pid file; default target/browser).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN =
  process.env.WSLOOP_DASHBOARD_BIN ?? path.join(ROOT, "target", "release", "examples", "dashboard");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const OUT = process.env.WSLOOP_BROWSER_OUT ?? path.join(ROOT, "target", "browser");
const PID_FILE = path.join(OUT, "dashboard.pids");
const SCREENSHOT = path.join(OUT, "dashboard.png");

// The flags the brief for this test asks for; Playwright adds its own automation flags and
// --user-data-dir (a fresh temporary directory, made below).
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  // DNS rebinding, simulated: the attacker's name resolves to the dashboard's address.
  "--host-resolver-rules=MAP rebind.test 127.0.0.1",
];

/** One run of the dashboard example, with its output captured. */
class Dashboard {
  constructor(name, addr) {
    this.name = name;
    this.addr = addr;
    this.output = "";
    this.waiters = new Set();
    this.exited = false;
    this.logFile = path.join(OUT, `${name}.log`);
  }

  /** Start the process and wait until it prints the address it listens on. */
  async start() {
    fs.writeFileSync(this.logFile, "");
    this.child = spawn(BIN, [this.addr], {
      env: { ...process.env, RUST_LOG: "info", RUST_LOG_STYLE: "never" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.exitPromise = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exited = true;
        this.append(`\n[test] process exited: code=${code} signal=${signal}\n`);
        resolve({ code, signal });
      });
    });
    this.child.once("error", (err) => this.append(`\n[test] spawn failed: ${err.message}\n`));
    fs.appendFileSync(PID_FILE, `${this.child.pid}\n`);
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => this.append(chunk));
    }
    const ready = await this.waitFor(/dashboard on http:\/\/(127\.0\.0\.1:(\d+))\//, 10_000);
    this.addr = ready[1];
    this.port = Number(ready[2]);
    return this;
  }

  append(text) {
    this.output += text;
    fs.appendFileSync(this.logFile, text);
    for (const waiter of this.waiters) waiter();
  }

  /** Resolves with the first match of `pattern` in the output, or fails after `ms`. */
  waitFor(pattern, ms) {
    const re = typeof pattern === "string" ? new RegExp(escapeRegExp(pattern)) : pattern;
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.output.match(re);
        if (m) {
          done();
          resolve(m);
        } else if (this.exited) {
          done();
          reject(new Error(`${this.name} exited before printing ${re}:\n${this.output}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name} did not print ${re} within ${ms} ms:\n${this.output}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Kill by PID and wait for the exit (bounded). */
  async kill(signal = "SIGKILL") {
    if (!this.child || this.exited) return;
    try {
      process.kill(this.child.pid, signal);
    } catch {
      return;
    }
    await Promise.race([this.exitPromise, sleep(5_000)]);
  }
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The state badge: its class (connected, reconnecting, closed) and its text. */
async function state(page) {
  return page.locator("#state").evaluate((el) => ({ cls: el.className, text: el.textContent }));
}

async function waitForState(page, cls, ms) {
  await page.waitForFunction(
    (want) => document.getElementById("state").className === want,
    cls,
    { timeout: ms, polling: 50 },
  );
  return state(page);
}

// What crypto.randomUUID() returns: a version 4 UUID (RFC 9562 §5.4).
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Before any script of the page: count the calls of Math.random (still random). */
function countMathRandom() {
  const real = Math.random;
  window.__mathRandomCalls = 0;
  Math.random = function () {
    window.__mathRandomCalls += 1;
    return real.call(Math);
  };
}

/** The server's line for an opened session (the sid may be logged quoted). */
function openLine(sid) {
  return new RegExp(`open "?${sid}"? \\(127\\.0\\.0\\.1:\\d+\\)`);
}

async function post(addr, urlPath, body) {
  const res = await fetch(`http://${addr}${urlPath}`, {
    method: "POST",
    body,
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, json: await res.json() };
}

// Every step is bounded: a hung browser or server fails the test instead of stalling CI.
const STEP = { timeout: 30_000 };

describe("dashboard in headless Chromium", { timeout: 180_000 }, () => {
  let server;
  let context;
  let page;
  let userDataDir;
  let sid;
  const consoleLines = [];
  const started = new Set();

  const startServer = async (name, addr) => {
    const s = new Dashboard(name, addr);
    started.add(s);
    return s.start();
  };

  // If the runner is stopped (a timeout, ^C), take the servers down with it.
  process.once("exit", () => {
    for (const s of started) if (!s.exited && s.child) s.child.kill("SIGKILL");
  });

  before(async () => {
    assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build --release --example dashboard`);
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(PID_FILE, "");
    fs.rmSync(SCREENSHOT, { force: true });
    server = await startServer("dashboard-1", "127.0.0.1:0");
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "wsloop-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1100, height: 700 },
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(10_000);
    page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
    page.on("pageerror", (err) => consoleLines.push(`pageerror: ${err.message}`));
  }, { timeout: 90_000 });

  after(async () => {
    await context?.close().catch(() => {});
    for (const s of started) await s.kill();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    fs.writeFileSync(path.join(OUT, "console.log"), consoleLines.join("\n") + "\n");
  }, { timeout: 30_000 });

  it("loads the page, which connects and shows it", STEP, async () => {
    await page.addInitScript(countMathRandom);
    const response = await page.goto(`http://${server.addr}/`, { waitUntil: "load" });
    assert.equal(response.status(), 200);
    assert.match(await page.title(), /订单提醒 · Order alerts/);
    // The controls of the original demo, labelled in Chinese and English.
    assert.equal(await page.locator("#text").count(), 1);
    assert.match(await page.locator("#send").innerText(), /发送消息 \/ Send/);
    assert.match(await page.locator("#close").innerText(), /关闭连接 \/ Close connection/);
    assert.equal(await page.locator("#message").count(), 1);

    const s = await waitForState(page, "connected", 5_000);
    assert.match(s.text, /connected 已连接/);
    sid = (await page.locator("#sid").innerText()).replace(/^sid: /, "");
    // Unguessable: from crypto.randomUUID() (127.0.0.1 is a secure context), not Math.random.
    assert.match(sid, UUID_V4);
    assert.equal(await page.evaluate(() => window.__mathRandomCalls), 0, "Math.random was called");
    // The server saw this very page: its sid in the open line.
    await server.waitFor(openLine(sid), 5_000);
    await server.waitFor(`dashboard ${sid} connected`, 5_000);
    assert.match(await page.locator("#message").innerText(), /连接成功 \/ connected/);
    // Marks this document, to prove later that alerts arrive without a reload.
    await page.evaluate(() => {
      window.__notReloaded = true;
    });
  });

  it("builds a random UUID sid from crypto.getRandomValues where randomUUID is missing", STEP, async () => {
    // As on http://192.168.x.x, which is no secure context: no crypto.randomUUID.
    const other = await context.newPage();
    try {
      await other.addInitScript(countMathRandom);
      await other.addInitScript(() => {
        Object.defineProperty(Crypto.prototype, "randomUUID", { value: undefined, configurable: true });
      });
      await other.goto(`http://${server.addr}/`, { waitUntil: "load" });
      assert.equal(await other.evaluate(() => typeof crypto.randomUUID), "undefined");
      await waitForState(other, "connected", 5_000);
      const otherSid = (await other.locator("#sid").innerText()).replace(/^sid: /, "");
      assert.match(otherSid, UUID_V4);
      assert.notEqual(otherSid, sid);
      assert.equal(await other.evaluate(() => window.__mathRandomCalls), 0, "Math.random was called");
      await server.waitFor(`dashboard ${otherSid} connected`, 5_000);
      await other.close({ runBeforeUnload: true });
      await server.waitFor(`dashboard ${otherSid} disconnected`, 5_000);
    } finally {
      if (!other.isClosed()) await other.close();
    }
  });

  it("pops up a customer reminder with the order number within 2 s", STEP, async () => {
    const t0 = Date.now();
    const { status, json } = await post(server.addr, "/orders/42/remind");
    assert.equal(status, 200);
    assert.ok(json.delivered >= 1, `delivered to ${json.delivered} sessions`);
    const popup = page.locator(".popup.type-2", { hasText: "订单号：42" });
    // (Playwright reads a timeout of 0 as "none": keep it at least 1 ms.)
    await popup.waitFor({ state: "visible", timeout: Math.max(1, 2_000 - (Date.now() - t0)) });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 2_000, `popup after ${elapsed} ms`);
    assert.match(await popup.locator("strong").innerText(), /客户催单 \/ Customer reminder/);
    assert.equal(await popup.locator(".content").innerText(), "订单号：42");

    // A new-order alert (type 1) pops up too, with its own title.
    await post(server.addr, "/orders/43/placed");
    const placed = page.locator(".popup.type-1", { hasText: "订单号：43" });
    await placed.waitFor({ state: "visible", timeout: 2_000 });
    assert.match(await placed.locator("strong").innerText(), /来单提醒 \/ New order/);

    // Visible to a person: inside the viewport and on top of everything at its centre.
    const box = await popup.boundingBox();
    const viewport = page.viewportSize();
    assert.ok(box && box.width > 100 && box.height > 30, `popup box ${JSON.stringify(box)}`);
    assert.ok(box.x >= 0 && box.y >= 0, "popup starts inside the viewport");
    assert.ok(box.x + box.width <= viewport.width && box.y + box.height <= viewport.height);
    const onTop = await popup.evaluate((el) => {
      const r = el.getBoundingClientRect();
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return el.contains(hit);
    });
    assert.ok(onTop, "the popup is not covered by anything");
    assert.equal(await page.evaluate(() => window.__notReloaded), true, "the page was reloaded");

    await page.screenshot({ path: SCREENSHOT });
    assert.ok(fs.statSync(SCREENSHOT).size > 5_000, "screenshot written");
  });

  it("sends what is typed in #text, and the server logs it", STEP, async () => {
    const text = `hello from chromium ${Date.now()} 你好`;
    await page.fill("#text", text);
    await page.click("#send");
    // Logged as its length in bytes and an escaped preview (short here, so whole).
    await server.waitFor(`from ${sid}: ${Buffer.byteLength(text)} bytes of text "${text}"`, 5_000);
    assert.equal(await page.inputValue("#text"), "", "the input is cleared after sending");
    assert.match(await page.locator("#message").innerText(), new RegExp(`⇒ ${escapeRegExp(text)}`));
  });

  it("refuses a page on another origin: no broadcast by simple POST, no WebSocket", STEP, async () => {
    // The attacker's page, on another port of 127.0.0.1: another origin, same machine.
    const target = server.addr;
    const evilHtml = `<!DOCTYPE html><title>evil</title><script>
      window.result = new Promise((resolve) => {
        // A "simple" request: no preflight, so the browser sends it and only hides the answer.
        fetch("http://${target}/orders/99/remind", {
          method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: "x",
        }).catch(() => {});
        const ws = new WebSocket("ws://${target}/ws/evil-page");
        ws.onopen = () => resolve("open");
        ws.onclose = (e) => resolve("closed " + e.code);
      });
    </script>`;
    const evil = http.createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(evilHtml);
    });
    await new Promise((resolve) => evil.listen(0, "127.0.0.1", resolve));
    const other = await context.newPage();
    try {
      await other.goto(`http://127.0.0.1:${evil.address().port}/`, { waitUntil: "load" });
      assert.equal(await other.evaluate(() => window.result), "closed 1006", "the WebSocket opened");
      await server.waitFor("POST /orders/99/remind refused: 403, cross-site: Origin", 5_000);
      await server.waitFor("upgrade to /ws/evil-page refused: 403, cross-site: Origin", 5_000);
      assert.ok(!server.output.includes("dashboard evil-page connected"));
      // Had the POST gone through, its popup would be up within milliseconds.
      await sleep(500);
      assert.equal(await page.locator(".popup", { hasText: "订单号：99" }).count(), 0);
      // DNS rebinding: the attacker's name now points at 127.0.0.1, so the attacker's page
      // would be same-origin with whatever that name serves. The dashboard does not serve it.
      const rebound = await other.goto(`http://rebind.test:${server.port}/`, { waitUntil: "load" });
      assert.equal(rebound.status(), 421);
      assert.doesNotMatch(await rebound.text(), /订单提醒/);
      await server.waitFor(`GET / refused: 421, Host "rebind.test:${server.port}" is not allowed`, 5_000);
    } finally {
      await other.close();
      // Chromium keeps its connection alive: close it too, or close() waits for it.
      evil.closeAllConnections();
      await new Promise((resolve) => evil.close(resolve));
    }
  });

  it("says it is reconnecting while the server is down, and reconnects after a restart", STEP, async () => {
    const addr = server.addr;
    await server.kill("SIGKILL");
    const down = await waitForState(page, "reconnecting", 5_000);
    assert.match(down.text, /reconnecting in [\d.]+ s 重连中/);
    assert.match(await page.locator("#message").innerText(), /close \/ 关闭 \(1006\)/);
    assert.match(await page.locator("#message").innerText(), /重连中 \/ reconnecting in [\d.]+ s/);
    await page.screenshot({ path: path.join(OUT, "reconnecting.png") });
    // Stay down long enough for at least one failed retry (the first comes after 0.5 s).
    await sleep(1_500);
    assert.equal((await state(page)).cls, "reconnecting");

    server = await startServer("dashboard-2", addr);
    assert.equal(server.addr, addr, "restarted on the same port");
    // Backoff is 0.5, 1, 2, 4 s...: the page is back within a few seconds, by itself.
    const up = await waitForState(page, "connected", 15_000);
    assert.match(up.text, /connected 已连接/);
    await server.waitFor(openLine(sid), 5_000);
    assert.equal(await page.evaluate(() => window.__notReloaded), true, "the page was reloaded");

    // The new connection carries alerts.
    const { json } = await post(server.addr, "/orders/44/remind");
    assert.equal(json.delivered, 1);
    await page
      .locator(".popup.type-2", { hasText: "订单号：44" })
      .waitFor({ state: "visible", timeout: 2_000 });
  });

  it("closes with code 1000 on 'close connection', and the server logs it", STEP, async () => {
    await page.click("#close");
    const s = await waitForState(page, "closed", 5_000);
    assert.match(s.text, /closed 已关闭/);
    // The server's close line: a close by the client with 1000 and the page's reason.
    await server.waitFor(
      new RegExp(`close ${sid} \\(127\\.0\\.0\\.1:\\d+\\): closed by client \\(1000 "closed by user"\\)`),
      5_000,
    );
    await server.waitFor(`dashboard ${sid} disconnected: closed by client (1000`, 5_000);
    // The browser saw the server's answering Close: a clean 1000, not 1006.
    await page.waitForFunction(
      () => /close \/ 关闭 \(1000\b/.test(document.getElementById("message").textContent),
      null,
      { timeout: 5_000 },
    );
    // And it stays closed: no reconnect after a deliberate close.
    await sleep(1_000);
    assert.equal((await state(page)).cls, "closed");
    const { json } = await post(server.addr, "/orders/45/remind");
    assert.equal(json.delivered, 0);
  });

  it("ran without script errors or failed requests, other than the refused reconnects", STEP, () => {
    const unexpected = consoleLines.filter(
      (line) =>
        (line.startsWith("error") || line.startsWith("pageerror")) &&
        !/WebSocket connection to .* failed: .*ERR_CONNECTION_REFUSED/.test(line),
    );
    assert.deepEqual(unexpected, []);
  });
});
