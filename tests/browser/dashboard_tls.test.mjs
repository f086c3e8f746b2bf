// The dashboard example over https and wss (feature `tls`) in headless Chromium.
//
// Starts the TLS build of the dashboard with `--tls-cert/--tls-key` (a self-signed
// certificate for localhost and 127.0.0.1 that .ci/browser.sh makes with the gen_cert
// example), trusts exactly that certificate's key in Chromium
// (`--ignore-certificate-errors-spki-list`, the SHA-256 of its SubjectPublicKeyInfo), and
// checks that the page loads over https, opens its socket over wss (a secure page may not
// open ws://), and pops up a reminder POSTed over https.
//
// Environment: WSLOOP_DASHBOARD_TLS_BIN (the dashboard built with `--features tls`),
// WSLOOP_TLS_CERT and WSLOOP_TLS_KEY (PEM files), CHROMIUM (default /usr/bin/chromium),
// WSLOOP_BROWSER_OUT (logs and the pid file; default target/browser).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = process.env.WSLOOP_DASHBOARD_TLS_BIN;
const CERT = process.env.WSLOOP_TLS_CERT;
const KEY = process.env.WSLOOP_TLS_KEY;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const OUT = process.env.WSLOOP_BROWSER_OUT ?? path.join(ROOT, "target", "browser");
const PID_FILE = path.join(OUT, "dashboard.pids");
const LOG = path.join(OUT, "dashboard-tls.log");

/** Base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo: what Chromium pins. */
function spkiHash(pem) {
  const spki = new crypto.X509Certificate(pem).publicKey.export({ type: "spki", format: "der" });
  return crypto.createHash("sha256").update(spki).digest("base64");
}

/** POST over https, trusting the test certificate; resolves with the status and JSON. */
function post(port, urlPath, ca) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: "127.0.0.1", port, path: urlPath, method: "POST", ca, timeout: 5_000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode, json: JSON.parse(body) }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("POST timed out")));
    req.on("error", reject);
    req.end();
  });
}

describe("dashboard over https and wss in headless Chromium", { timeout: 120_000 }, () => {
  let child;
  let output = "";
  let port;
  let context;
  let page;
  let userDataDir;
  const pem = CERT ? fs.readFileSync(CERT, "utf8") : "";

  const waitFor = (re, ms) =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const check = () => {
        const m = output.match(re);
        if (m) return resolve(m);
        if (Date.now() - started > ms) return reject(new Error(`no ${re} within ${ms} ms:\n${output}`));
        setTimeout(check, 50);
      };
      check();
    });

  process.once("exit", () => child?.kill("SIGKILL"));

  before(async () => {
    assert.ok(BIN && fs.existsSync(BIN), `WSLOOP_DASHBOARD_TLS_BIN ${BIN} is missing`);
    assert.ok(CERT && KEY, "WSLOOP_TLS_CERT and WSLOOP_TLS_KEY are needed");
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(LOG, "");
    child = spawn(BIN, ["127.0.0.1:0", "--tls-cert", CERT, "--tls-key", KEY], {
      env: { ...process.env, RUST_LOG: "info", RUST_LOG_STYLE: "never" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    fs.appendFileSync(PID_FILE, `${child.pid}\n`);
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        output += chunk;
        fs.appendFileSync(LOG, chunk);
      });
    }
    const ready = await waitFor(/dashboard on https:\/\/127\.0\.0\.1:(\d+)\//, 10_000);
    port = Number(ready[1]);
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "wsloop-chromium-tls-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        `--ignore-certificate-errors-spki-list=${spkiHash(pem)}`,
      ],
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(10_000);
  }, { timeout: 90_000 });

  after(async () => {
    await context?.close().catch(() => {});
    child?.kill("SIGKILL");
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  it("loads over https, connects over wss, and pops up a reminder", { timeout: 30_000 }, async () => {
    const response = await page.goto(`https://127.0.0.1:${port}/`, { waitUntil: "load" });
    assert.equal(response.status(), 200);
    assert.equal((await response.securityDetails())?.protocol, "TLS 1.3");
    await page.waitForFunction(() => document.getElementById("state").className === "connected", null, {
      timeout: 5_000,
      polling: 50,
    });
    const sid = (await page.locator("#sid").innerText()).replace(/^sid: /, "");
    await waitFor(new RegExp(`open "?${sid}"? \\(127\\.0\\.0\\.1:\\d+\\)`), 5_000);
    const { status, json } = await post(port, "/orders/42/remind", pem);
    assert.equal(status, 200);
    assert.ok(json.delivered >= 1, `delivered to ${json.delivered} sessions`);
    await page.locator(".popup.type-2", { hasText: "订单号：42" }).waitFor({ state: "visible", timeout: 2_000 });
  });

  it("speaks no plaintext on the TLS port", { timeout: 15_000 }, async () => {
    const plain = await context.newPage();
    try {
      const failed = await plain.goto(`http://127.0.0.1:${port}/`).then(
        () => false,
        () => true,
      );
      assert.ok(failed, "a plain http:// page load must fail on a TLS port");
    } finally {
      await plain.close();
    }
  });
});
