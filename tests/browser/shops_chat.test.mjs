// The application API in a real headless browser (issue 16): the dashboard's shop pages, its
// page after a Close 4000 "replaced", its token on upgrades, and the chat example next to it.
//
// Drives Debian's Chromium through playwright-core like dashboard.test.mjs, with the release
// `dashboard` and `chat` examples on free ports of 127.0.0.1 (RUST_LOG=info, output captured):
//
//   1. a page at /?shop=A pops up the orders POSTed to /shops/A/... and a page at /?shop=B
//      does not (and the reverse), while POST /orders/... still reaches both;
//   2. when another connection opens the page's sid (Close 4000 "replaced"), the page says
//      it was opened elsewhere and does not reconnect (no more opens of that sid);
//   3. with --token, a page loaded as /?token=T connects (its socket carries ?token=T), and
//      one loaded without it is refused (401 in the server's log);
//   4. the chat page: two browser pages in one room see each other's messages and joins,
//      a page in another room sees none of them; the dashboard runs beside it all along.
//
// Run by .ci/browser.sh, or by hand:
//
//   cargo build --release --example dashboard --example chat
//   cd tests/browser && npm ci && node shops_chat.test.mjs
//
// Environment: WSLOOP_DASHBOARD_BIN, WSLOOP_CHAT_BIN (default target/release/examples/...),
// CHROMIUM (default /usr/bin/chromium), WSLOOP_BROWSER_OUT (logs and pid files; default
// target/browser).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const EXAMPLES = path.join(ROOT, "target", "release", "examples");
const DASHBOARD_BIN = process.env.WSLOOP_DASHBOARD_BIN ?? path.join(EXAMPLES, "dashboard");
const CHAT_BIN = process.env.WSLOOP_CHAT_BIN ?? path.join(EXAMPLES, "chat");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const OUT = process.env.WSLOOP_BROWSER_OUT ?? path.join(ROOT, "target", "browser");

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** One run of an example, with its output captured; its PID goes to `<kind>.pids`. */
class Example {
  constructor(kind, bin, name, args) {
    this.kind = kind;
    this.bin = bin;
    this.name = name;
    this.args = args;
    this.output = "";
    this.waiters = new Set();
    this.exited = false;
    this.logFile = path.join(OUT, `${name}.log`);
  }

  async start() {
    fs.writeFileSync(this.logFile, "");
    this.child = spawn(this.bin, ["127.0.0.1:0", ...this.args], {
      env: { ...process.env, RUST_LOG: "info", RUST_LOG_STYLE: "never" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.exitPromise = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exited = true;
        this.append(`\n[test] process exited: code=${code} signal=${signal}\n`);
        resolve();
      });
    });
    this.child.once("error", (err) => this.append(`\n[test] spawn failed: ${err.message}\n`));
    fs.appendFileSync(path.join(OUT, `${this.kind}.pids`), `${this.child.pid}\n`);
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => this.append(chunk));
    }
    const ready = await this.waitFor(new RegExp(`${this.kind} on http://(127\\.0\\.0\\.1:\\d+)/`), 10_000);
    this.addr = ready[1];
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

  count(text) {
    return this.output.split(text).length - 1;
  }

  /** Kill by PID and wait for the exit (bounded). */
  async kill() {
    if (!this.child || this.exited) return;
    try {
      process.kill(this.child.pid, "SIGKILL");
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

async function post(addr, urlPath, headers = {}) {
  const res = await fetch(`http://${addr}${urlPath}`, {
    method: "POST",
    headers,
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, json: await res.json() };
}

async function waitForState(page, cls, ms) {
  await page.waitForFunction(
    (want) => document.getElementById("state").className === want,
    cls,
    { timeout: ms, polling: 50 },
  );
  return page.locator("#state").innerText();
}

async function sidOf(page) {
  return (await page.locator("#sid").innerText()).replace(/^sid: /, "");
}

const STEP = { timeout: 30_000 };

describe("shop pages, the replaced page, the token, and the chat, in headless Chromium", { timeout: 180_000 }, () => {
  let dashboard;
  let chat;
  let context;
  let userDataDir;
  const started = new Set();
  const consoleLines = [];

  const start = async (kind, bin, name, args = []) => {
    const example = new Example(kind, bin, name, args);
    started.add(example);
    return example.start();
  };

  const open = async (url) => {
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
    page.on("pageerror", (err) => consoleLines.push(`pageerror: ${err.message}`));
    const response = await page.goto(url, { waitUntil: "load" });
    assert.equal(response.status(), 200, url);
    return page;
  };

  process.once("exit", () => {
    for (const s of started) if (!s.exited && s.child) s.child.kill("SIGKILL");
  });

  before(async () => {
    for (const bin of [DASHBOARD_BIN, CHAT_BIN]) {
      assert.ok(fs.existsSync(bin), `${bin} is missing: cargo build --release --example dashboard --example chat`);
    }
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    fs.mkdirSync(OUT, { recursive: true });
    dashboard = await start("dashboard", DASHBOARD_BIN, "shops-dashboard");
    chat = await start("chat", CHAT_BIN, "chat");
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "wsloop-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1000, height: 700 },
      timeout: 60_000,
    });
  }, { timeout: 90_000 });

  after(async () => {
    await context?.close().catch(() => {});
    for (const s of started) await s.kill();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    fs.writeFileSync(path.join(OUT, "shops_chat_console.log"), consoleLines.join("\n") + "\n");
  }, { timeout: 30_000 });

  it("pops up a shop's orders on that shop's page only", STEP, async () => {
    const shopA = await open(`http://${dashboard.addr}/?shop=A`);
    const shopB = await open(`http://${dashboard.addr}/?shop=B`);
    for (const [page, shop] of [[shopA, "A"], [shopB, "B"]]) {
      await waitForState(page, "connected", 5_000);
      assert.match(await page.locator("#shop").innerText(), new RegExp(`shop: ${shop}$`));
      await dashboard.waitFor(`dashboard ${await sidOf(page)} connected (`, 5_000);
    }
    await dashboard.waitFor(`shop A`, 5_000);

    const a = await post(dashboard.addr, "/shops/A/orders/50/placed");
    assert.deepEqual([a.status, a.json], [200, { delivered: 1 }]);
    await shopA.locator(".popup.type-1", { hasText: "订单号：50" }).waitFor({ state: "visible", timeout: 2_000 });
    const b = await post(dashboard.addr, "/shops/B/orders/51/remind");
    assert.deepEqual([b.status, b.json], [200, { delivered: 1 }]);
    await shopB.locator(".popup.type-2", { hasText: "订单号：51" }).waitFor({ state: "visible", timeout: 2_000 });
    // Had either gone to the other shop, it would be up by now.
    await sleep(500);
    assert.equal(await shopB.locator(".popup", { hasText: "订单号：50" }).count(), 0);
    assert.equal(await shopA.locator(".popup", { hasText: "订单号：51" }).count(), 0);

    // The route for every page still reaches both.
    const all = await post(dashboard.addr, "/orders/52/remind");
    assert.equal(all.json.delivered, 2);
    for (const page of [shopA, shopB]) {
      await page.locator(".popup.type-2", { hasText: "订单号：52" }).waitFor({ state: "visible", timeout: 2_000 });
    }
    await shopA.screenshot({ path: path.join(OUT, "shop-a.png") });
    await shopA.close({ runBeforeUnload: true });
    await shopB.close({ runBeforeUnload: true });
  });

  it("does not reconnect after its sid is opened elsewhere (Close 4000)", STEP, async () => {
    const victim = await open(`http://${dashboard.addr}/`);
    await waitForState(victim, "connected", 5_000);
    const sid = await sidOf(victim);
    const opened = `dashboard ${sid} connected`;
    await dashboard.waitFor(opened, 5_000);
    // Another tab of the same origin opens a socket with the victim's sid.
    const other = await open(`http://${dashboard.addr}/`);
    await waitForState(other, "connected", 5_000);
    const result = await other.evaluate(
      (url) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve("open");
          ws.onclose = (e) => resolve("closed " + e.code);
        }),
      `ws://${dashboard.addr}/ws/${sid}`,
    );
    assert.equal(result, "open");
    const text = await waitForState(victim, "replaced", 5_000);
    assert.match(text, /opened elsewhere 已在别处打开/);
    assert.match(await victim.locator("#message").innerText(), /close \/ 关闭 \(4000 replaced\)/);
    await dashboard.waitFor(`dashboard ${sid} disconnected: replaced by a newer connection (4000)`, 5_000);
    // Longer than the first retry (0.5 s) and the second (1 s): the page stayed down.
    await sleep(2_000);
    assert.equal(dashboard.count(opened), 2, "the replaced page opened its sid again");
    assert.equal(await victim.locator("#state").getAttribute("class"), "replaced");
    await victim.close();
    await other.close();
  });

  it("with --token, connects when loaded with ?token= and is refused without it", STEP, async () => {
    const guarded = await start("dashboard", DASHBOARD_BIN, "token-dashboard", ["--token", "t0k-en"]);
    const page = await open(`http://${guarded.addr}/?token=t0k-en`);
    await waitForState(page, "connected", 5_000);
    const sid = await sidOf(page);
    await guarded.waitFor(`dashboard ${sid} connected`, 5_000);
    const sent = await post(guarded.addr, `/send/${sid}`, { Authorization: "Bearer t0k-en" });
    assert.deepEqual([sent.status, sent.json], [200, { delivered: 1 }]);
    const bare = await open(`http://${guarded.addr}/`);
    const bareSid = await sidOf(bare);
    await guarded.waitFor(`upgrade to /ws/${bareSid} refused: 401, no or wrong bearer token`, 5_000);
    assert.equal(guarded.count(`dashboard ${bareSid} connected`), 0);
    await bare.close();
    await page.close({ runBeforeUnload: true });
    await guarded.kill();
  });

  it("chat: two pages in one room see each other, another room sees nothing", STEP, async () => {
    const chatUrl = (room, user) =>
      `http://${chat.addr}/?room=${encodeURIComponent(room)}&user=${encodeURIComponent(user)}`;
    const ann = await open(chatUrl("lobby", "Ann"));
    await waitForState(ann, "connected", 5_000);
    await chat.waitFor("Ann joined lobby", 5_000);
    const bob = await open(chatUrl("lobby", "Bob Jürgen"));
    const eve = await open(chatUrl("cellar", "Eve"));
    for (const page of [bob, eve]) await waitForState(page, "connected", 5_000);
    await ann.locator("#log li.event", { hasText: "Bob Jürgen joined (2 here)" }).waitFor({ timeout: 2_000 });

    await ann.fill("#text", "hi Bob <b>not bold</b>");
    await ann.click("#say button");
    const line = bob.locator("#log li.message", { hasText: "hi Bob <b>not bold</b>" });
    await line.waitFor({ timeout: 2_000 });
    assert.equal(await line.locator(".user").innerText(), "Ann");
    assert.equal(await bob.locator("#log b").count(), 0, "a message is text, never markup");
    await bob.fill("#text", "hello Ann");
    await bob.press("#text", "Enter");
    await ann.locator("#log li.message", { hasText: "hello Ann" }).waitFor({ timeout: 2_000 });
    await chat.waitFor(`Bob Jürgen in lobby: 9 bytes "hello Ann"`, 5_000);

    // The other room: its own join only.
    await sleep(300);
    assert.deepEqual(await eve.locator("#log li").allInnerTexts(), ["Eve joined (1 here)"]);

    await bob.close({ runBeforeUnload: true });
    await ann.locator("#log li.event", { hasText: "Bob Jürgen left (1 here)" }).waitFor({ timeout: 2_000 });
    await ann.screenshot({ path: path.join(OUT, "chat.png") });

    // The dashboard beside it kept working all along.
    const placed = await post(dashboard.addr, "/orders/60/placed");
    assert.equal(placed.status, 200);
    assert.equal(typeof placed.json.delivered, "number");
    await ann.close();
    await eve.close();
  });

  it("ran without script errors other than the refused upgrades", STEP, () => {
    const unexpected = consoleLines.filter(
      (line) =>
        (line.startsWith("error") || line.startsWith("pageerror")) &&
        !/WebSocket connection to .* failed/.test(line),
    );
    assert.deepEqual(unexpected, []);
  });
});
