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
// Generous: the first page load may wait for functions to compile, and a slow
// 2-core CI machine also runs Chromium and the embedded broker.
const WAIT_MS = 30_000;
// Backstops, so a hung step fails the run instead of stalling it.
const BEFORE_DEADLINE_MS = STARTUP_DEADLINE_MS + 3 * WAIT_MS;
const TEST_DEADLINE_MS = 3 * WAIT_MS;
const CLOSE_DEADLINE_MS = 15_000;

// What kfn.yaml defines; the dashboard must show all of it.
const FUNCTIONS = ["page-enricher", "page-filter", "page-logger", "page-supplier"];
// page-count groups by a value field, so it is two steps joined by its repartition topic.
const BINDINGS = {
  "page-supplier": "supplier", "page-logger": "consumer", "page-enricher": "function",
  "page-count.repartition": "repartition", "page-count": "analytics",
};

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
let kfnExited; // resolves with a description once kfn has exited
let stopping = false; // set when we stop kfn ourselves
const kfnLog = []; // last lines of kfn's output, for failure messages
let browser;
let page;
let baseUrl;
const problems = []; // console errors/warnings, page errors, failed requests
let collecting = true;

function logTail() {
  return kfnLog.slice(-40).join("\n");
}

/** `promise`, or a rejection naming `what` after `ms`. */
async function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Kill kfn at once, synchronously: for exits where no async cleanup can run. */
function killKfnNow() {
  if (kfn && kfn.exitCode === null && kfn.signalCode === null) kfn.kill("SIGKILL");
}
// Never leave kfn behind, even if this process dies without running `after`.
process.once("exit", killKfnNow);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    killKfnNow();
    process.exit(128 + (signal === "SIGINT" ? 2 : 15));
  });
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
    // Created now, so it can never miss the event however early kfn exits.
    kfnExited = new Promise((resolve) => {
      kfn.once("exit", (code, signal) => resolve(signal ?? `code ${code}`));
      kfn.once("error", (err) => resolve(`not started: ${err.message}`));
    });
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
      const how = signal ?? `code ${code}`;
      finish(new Error(`\`${command}\` exited (${how}) before printing its dashboard URL. ` +
        `Output:\n${logTail()}`));
      if (!stopping) problems.push(`kfn exited unexpectedly (${how}). Last output:\n${logTail()}`);
    });
  });
}

/** SIGTERM, then SIGKILL if kfn has not exited within KILL_GRACE_MS. */
async function stopKfn() {
  if (!kfn) return;
  stopping = true;
  if (kfn.exitCode !== null || kfn.signalCode !== null) return;
  kfn.kill("SIGTERM");
  try {
    await withDeadline(kfnExited, KILL_GRACE_MS, "kfn after SIGTERM");
  } catch {
    kfn.kill("SIGKILL");
    await withDeadline(kfnExited, KILL_GRACE_MS, "kfn after SIGKILL").catch(() => {});
  }
}

/** Fails with kfn's output if it has died: a clearer message than a timeout. */
function assertKfnAlive() {
  if (kfn && (kfn.exitCode !== null || kfn.signalCode !== null)) {
    assert.fail(`kfn is no longer running (${kfn.signalCode ?? `code ${kfn.exitCode}`}). Last output:\n${logTail()}`);
  }
}

/** Wait for `fn` (run in the page) to return truthy; on timeout, explain with `describe()`. */
async function waitInPage(fn, arg, describe) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT_MS });
  } catch (err) {
    assertKfnAlive();
    throw new Error(`${await describe().catch((e) => `(no detail: ${e.message})`)}\n${err.message}`);
  }
}

before(async () => {
  await mustExist(KFN_BIN, "build it with `cargo build -p kfn` (or set KFN_BIN)");
  await mustExist(CHROMIUM, "install it with `apt-get install chromium` (or set CHROMIUM)");
  baseUrl = await startKfn();

  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
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
}, { timeout: BEFORE_DEADLINE_MS });

after(async () => {
  // Closing the page aborts its EventSource streams: those are not failures.
  collecting = false;
  try {
    if (browser) await withDeadline(browser.close(), CLOSE_DEADLINE_MS, "closing Chromium");
  } catch (err) {
    // Chromium hung: carry on, kfn must be stopped regardless.
    console.error(err.message);
  } finally {
    await stopKfn();
  }
}, { timeout: CLOSE_DEADLINE_MS + 3 * KILL_GRACE_MS });

const T = { timeout: TEST_DEADLINE_MS };

test("page loads with a kfn title", T, async () => {
  assert.match(await page.title(), /kfn/);
  await page.locator("header .brand-name").waitFor();
  await waitInPage(() => document.querySelector("#health")?.dataset.state === "ok", null,
    async () => `broker health pill reads "${await page.locator("#health").innerText()}"`);
});

test("functions table lists the app's four functions as ready", T, async () => {
  await waitInPage(
    (names) => names.every((n) => document.querySelector(`#functions-body tr[data-name="${n}"]`)?.dataset.status === "ready"),
    FUNCTIONS,
    async () => `not all of ${FUNCTIONS.join(", ")} became ready; table reads:\n${await page.locator("#functions-body").innerText()}`,
  );
  const row = page.locator('#functions-body tr[data-name="page-enricher"]');
  assert.match(await row.locator(".badge").innerText(), /ready/);
  // functions/ also holds the polyglot example's functions, which nothing in kfn.yaml
  // binds: they are listed too (loaded in the background), so at least these four.
  assert.ok(await page.locator("#functions-body tr").count() >= FUNCTIONS.length);
  assert.equal(await page.locator("#attention").isHidden(), true, "no problem pill in the top bar");
});

test("bindings table shows the bindings and both analytics steps running, with page-count counting records", T, async () => {
  await waitInPage(
    (expected) => Object.entries(expected).every(([name, kind]) => {
      const row = document.querySelector(`#bindings-body tr[data-name="${name}"]`);
      return row?.dataset.status === "running" && row.children[1]?.textContent === kind;
    }),
    BINDINGS,
    async () => `bindings table reads:\n${await page.locator("#bindings-body").innerText()}`,
  );
  // Real records flow: the supplier feeds R2 every second, page-count reads it.
  await waitInPage(
    () => Number(document.querySelector('#bindings-body tr[data-name="page-count"] td.num')
      ?.firstChild?.textContent.replace(/\D/g, "") || 0) > 0,
    null,
    async () => `page-count never counted a record; row reads: ${await page.locator('#bindings-body tr[data-name="page-count"]').innerText()}`,
  );
  const step1 = await page.locator('#bindings-body tr[data-name="page-count.repartition"]').innerText();
  assert.match(step1, /page-filter/);
  assert.match(step1, /R2\s*→\s*kfn\.page-count\.repartition/);
  const step2 = await page.locator('#bindings-body tr[data-name="page-count"]').innerText();
  assert.match(step2, /kfn\.page-count\.repartition\s*→\s*R4/);
});

test("the /analytics chart receives live SSE updates and charts P1 and P2", T, async () => {
  const card = page.locator('.chart-card[data-serve="/analytics"]');
  await card.waitFor();
  const describe = async () => `chart state=${await card.getAttribute("data-state")} ` +
    `updates=${await card.getAttribute("data-updates")} legend=${JSON.stringify(await card.locator(".legend").innerText())}`;
  await waitInPage(
    () => Number(document.querySelector('.chart-card[data-serve="/analytics"]')?.dataset.updates ?? 0) >= 2,
    null,
    describe,
  );
  assert.equal(await card.getAttribute("data-state"), "live");
  assert.ok(await card.locator("canvas").count() >= 1, "uPlot drew a canvas");
  // page-supplier picks P1 or P2 at random every second: both show up quickly.
  await waitInPage(
    () => ["P1", "P2"].every((k) =>
      document.querySelector(`.chart-card[data-serve="/analytics"] .legend li[data-key="${k}"]`)),
    null,
    describe,
  );
  for (const key of ["P1", "P2"]) {
    assert.match(await card.locator(`.legend li[data-key="${key}"] .legend-value`).innerText(), /^\d+$/);
  }
});

test("publish form posts a record to R1 and shows its offset", T, async () => {
  await page.fill("#publish-topic", "R1");
  await page.fill("#publish-key", "browser-test");
  await page.fill("#publish-value",
    JSON.stringify({ name: "P1", user: "U1", date: "2026-01-01T00:00:00Z", duration: 500 }));
  await page.click("#publish-submit");
  const result = page.locator("#publish-result");
  await waitInPage(
    () => ["ok", "error"].includes(document.querySelector("#publish-result")?.dataset.state),
    null,
    async () => `publish result still reads ${JSON.stringify(await result.innerText())}`,
  );
  assert.equal(await result.getAttribute("data-state"), "ok", `publish failed: ${await result.innerText()}`);
  assert.match(await result.locator(".result-offset").innerText(), /^\d+$/);
  // page-logger consumes R1: the record reaches it.
  await waitInPage(
    () => Number(document.querySelector('#bindings-body tr[data-name="page-logger"] td.num')
      ?.firstChild?.textContent.replace(/\D/g, "") || 0) >= 1,
    null,
    async () => `page-logger never counted the record; row reads: ${await page.locator('#bindings-body tr[data-name="page-logger"]').innerText()}`,
  );
});

test("events feed shows the functions being loaded", T, async () => {
  await page.locator("#events li").first().waitFor();
  await page.locator('#events li[data-kind="function-loaded"]').first().waitFor();
  assert.equal(await page.locator("#events-conn").getAttribute("data-state"), "live");
});

test("no console errors or warnings, no failed requests", T, async () => {
  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assertKfnAlive();
  assert.deepEqual(problems, [], `problems during the run:\n${problems.join("\n")}`);
});
