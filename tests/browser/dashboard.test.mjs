// Browser test of the dashboard against the real kfn binary, in headless Chromium.
//
//   cargo build -p kfn && npm ci && node --test tests/browser/
//
// Env: KFN_BIN (default target/debug/kfn), CHROMIUM (default /usr/bin/chromium).
// Every wait is a condition with a deadline, never a fixed sleep. A screenshot
// for humans is saved to target/dashboard.png.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, constants, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const KFN_BIN = path.resolve(REPO, process.env.KFN_BIN ?? "target/debug/kfn");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const CONFIG = path.join(REPO, "kfn.yaml");
const SCREENSHOT = path.join(REPO, "target", "dashboard.png");

const STARTUP_DEADLINE_MS = 60_000;
const KILL_GRACE_MS = 10_000;
// Generous: the first page load may wait for functions to compile.
const WAIT_MS = 30_000;

// The machine has no internet: without these Chromium keeps dialling out
// (component updates, sync, QUIC probes) and floods refused connections.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let kfn; // child process
const kfnLog = []; // last lines of kfn's output, for failure messages
let browser;
let page;
let baseUrl;
const problems = []; // console errors/warnings, page errors, failed requests
let collecting = true;

function logTail() {
  return kfnLog.slice(-40).join("\n");
}

async function mustExist(file, hint) {
  try {
    await access(file, constants.X_OK);
  } catch {
    throw new Error(`${file} not found or not executable: ${hint}`);
  }
}

/** Spawn kfn and resolve with the dashboard URL it prints. */
function startKfn() {
  return new Promise((resolve, reject) => {
    const args = ["up", "--config", CONFIG, "--listen", "127.0.0.1:0", "--no-build"];
    kfn = spawn(KFN_BIN, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    const command = `${KFN_BIN} ${args.join(" ")}`;
    let settled = false;
    const finish = (err, url) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(url);
    };
    const timer = setTimeout(() => {
      finish(new Error(`\`${command}\` printed no "dashboard: http://127.0.0.1:PORT" line ` +
        `within ${STARTUP_DEADLINE_MS / 1000} s. Output:\n${logTail()}`));
    }, STARTUP_DEADLINE_MS);

    // Keep draining both pipes for the whole run: a full pipe would block kfn.
    for (const stream of [kfn.stdout, kfn.stderr]) {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop();
        for (const line of lines) {
          kfnLog.push(line);
          if (kfnLog.length > 400) kfnLog.shift();
          // Logs may be coloured; strip ANSI escapes before matching.
          // eslint-disable-next-line no-control-regex
          const m = line.replace(/\x1b\[[0-9;]*m/g, "").match(/dashboard: (http:\/\/127\.0\.0\.1:\d+)/);
          if (m) finish(null, `${m[1]}/`);
        }
      });
    }
    kfn.on("error", (err) => finish(new Error(`could not start \`${command}\`: ${err.message}`)));
    kfn.on("exit", (code, signal) => {
      finish(new Error(`\`${command}\` exited (${signal ?? `code ${code}`}) before printing its dashboard URL. ` +
        `Output:\n${logTail()}`));
    });
  });
}

async function stopKfn() {
  if (!kfn || kfn.exitCode !== null || kfn.signalCode !== null) return;
  const exited = new Promise((resolve) => kfn.once("exit", resolve));
  kfn.kill("SIGTERM");
  let timer;
  const timedOut = new Promise((resolve) => { timer = setTimeout(() => resolve("timeout"), KILL_GRACE_MS); });
  if ((await Promise.race([exited, timedOut])) === "timeout") {
    kfn.kill("SIGKILL");
    await exited;
  }
  clearTimeout(timer);
}

before(async () => {
  await mustExist(KFN_BIN, "build it with `cargo build -p kfn` (or set KFN_BIN)");
  await mustExist(CHROMIUM, "install it with `apt-get install chromium` (or set CHROMIUM)");
  baseUrl = await startKfn();

  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on("console", (msg) => {
    if (collecting && (msg.type() === "error" || msg.type() === "warning")) {
      const loc = msg.location();
      problems.push(`console ${msg.type()}: ${msg.text()}${loc?.url ? ` (${loc.url}:${loc.lineNumber})` : ""}`);
    }
  });
  page.on("pageerror", (err) => {
    if (collecting) problems.push(`page error: ${err.stack ?? err.message}`);
  });
  page.on("requestfailed", (req) => {
    if (collecting) problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });
  page.on("response", (res) => {
    if (collecting && res.status() >= 400) {
      problems.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`);
    }
  });
  await page.goto(baseUrl, { waitUntil: "load" });
});

after(async () => {
  // Closing the page aborts its EventSource streams: those are not failures.
  collecting = false;
  await browser?.close();
  await stopKfn();
});

test("page loads with a kfn title", async () => {
  assert.match(await page.title(), /kfn/);
  await page.locator("header .brand-name").waitFor({ timeout: WAIT_MS });
});

test("functions table lists page-enricher as ready", async () => {
  const row = page.locator('#functions-body tr[data-name="page-enricher"]');
  await row.waitFor({ timeout: WAIT_MS });
  await page.locator('#functions-body tr[data-name="page-enricher"][data-status="ready"]')
    .waitFor({ timeout: WAIT_MS })
    .catch(async (err) => {
      throw new Error(`page-enricher never became ready; row reads: ${await row.innerText()}\n${err.message}`);
    });
  assert.match(await row.locator(".badge").innerText(), /ready/);
});

test("the /analytics chart receives at least 2 SSE updates", async () => {
  const card = page.locator('.chart-card[data-serve="/analytics"]');
  await card.waitFor({ timeout: WAIT_MS });
  await page.waitForFunction(
    () => Number(document.querySelector('.chart-card[data-serve="/analytics"]')?.dataset.updates ?? 0) >= 2,
    null,
    { timeout: WAIT_MS },
  ).catch(async (err) => {
    const state = await card.getAttribute("data-state");
    const updates = await card.getAttribute("data-updates");
    throw new Error(`chart state=${state} updates=${updates}: ${err.message}`);
  });
  assert.equal(await card.getAttribute("data-state"), "live");
  assert.ok(await card.locator("canvas").count() >= 1, "uPlot drew a canvas");
});

test("publish form posts a record to R1 and shows its offset", async () => {
  await page.fill("#publish-topic", "R1");
  await page.fill("#publish-key", "browser-test");
  await page.fill("#publish-value", JSON.stringify({ name: "P1", user: "U1", date: Date.now(), duration: 1500 }));
  await page.click("#publish-submit");
  const result = page.locator("#publish-result");
  await page.waitForFunction(
    () => ["ok", "error"].includes(document.querySelector("#publish-result")?.dataset.state),
    null,
    { timeout: WAIT_MS },
  );
  assert.equal(await result.getAttribute("data-state"), "ok", `publish failed: ${await result.innerText()}`);
  assert.match(await result.locator(".result-offset").innerText(), /^\d+$/);
});

test("events feed has at least one entry", async () => {
  await page.locator("#events li").first().waitFor({ timeout: WAIT_MS });
  assert.ok(await page.locator("#events li").count() >= 1);
});

test("no console errors or warnings, no failed requests", async () => {
  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.deepEqual(problems, [], `problems during the run:\n${problems.join("\n")}`);
});
