// What every browser test file shares: a real kfn on a free port, headless
// Chromium on its dashboard, and a record of everything that went wrong in the
// page (console errors and warnings, page errors, failed requests).
//
// `useDashboard(config)` registers the file's `before`/`after` hooks and returns
// the live context. Every wait is a condition with a deadline, never a fixed sleep.

import { after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, constants, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const KFN_BIN = path.resolve(REPO, process.env.KFN_BIN ?? "target/debug/kfn");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const STARTUP_DEADLINE_MS = 60_000;
const KILL_GRACE_MS = 10_000;
// Generous: the first page load may wait for functions to compile, and a slow
// 2-core CI machine also runs Chromium and the embedded broker.
export const WAIT_MS = 30_000;
// Backstops, so a hung step fails the run instead of stalling it.
const BEFORE_DEADLINE_MS = STARTUP_DEADLINE_MS + 3 * WAIT_MS;
const CLOSE_DEADLINE_MS = 15_000;
/** Options for `test()`: a deadline per test. */
export const T = { timeout: 3 * WAIT_MS };

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

/** `promise`, or a rejection naming `what` after `ms`. */
export async function withDeadline(promise, ms, what) {
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

async function mustExist(file, hint) {
  try {
    await access(file, constants.X_OK);
  } catch {
    throw new Error(`${file} not found or not executable: ${hint}`);
  }
}

/**
 * Start kfn with `config` (relative to the repo) before the file's tests and
 * stop it after them. The returned object fills in once `before` has run:
 * `page`, `baseUrl`, `problems`, and the helpers below. `env` is added to kfn's
 * environment; the page opens at the dashboard URL plus `fragment` (e.g.
 * `#token=...`).
 */
export function useDashboard(config, { env = {}, fragment = "" } = {}) {
  const ctx = {
    page: null,
    baseUrl: null,
    problems: [], // console errors/warnings, page errors, failed requests
  };
  let kfn; // child process
  let kfnExited; // resolves with a description once kfn has exited
  let stopping = false; // set when we stop kfn ourselves
  const kfnLog = []; // last lines of kfn's output, for failure messages
  let browser;
  let collecting = true;
  const configPath = path.join(REPO, config);

  const logTail = () => kfnLog.slice(-40).join("\n");

  /** Kill kfn at once, synchronously: for exits where no async cleanup can run. */
  const killKfnNow = () => {
    if (kfn && kfn.exitCode === null && kfn.signalCode === null) kfn.kill("SIGKILL");
  };
  // Never leave kfn behind, even if this process dies without running `after`.
  process.once("exit", killKfnNow);
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => {
      killKfnNow();
      process.exit(128 + (signal === "SIGINT" ? 2 : 15));
    });
  }

  /** Spawn kfn and resolve with the dashboard URL it prints. */
  const startKfn = () => new Promise((resolve, reject) => {
    const args = ["up", "--config", configPath, "--listen", "127.0.0.1:0", "--no-build"];
    kfn = spawn(KFN_BIN, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    // Created now, so it can never miss the event however early kfn exits.
    kfnExited = new Promise((done) => {
      kfn.once("exit", (code, signal) => done(signal ?? `code ${code}`));
      kfn.once("error", (err) => done(`not started: ${err.message}`));
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
      if (!stopping) ctx.problems.push(`kfn exited unexpectedly (${how}). Last output:\n${logTail()}`);
    });
  });

  /** SIGTERM, then SIGKILL if kfn has not exited within KILL_GRACE_MS. */
  const stopKfn = async () => {
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
  };

  /** Fails with kfn's output if it has died: a clearer message than a timeout. */
  ctx.assertKfnAlive = () => {
    if (kfn && (kfn.exitCode !== null || kfn.signalCode !== null)) {
      assert.fail(`kfn is no longer running (${kfn.signalCode ?? `code ${kfn.exitCode}`}). Last output:\n${logTail()}`);
    }
  };

  /** Wait for `fn` (run in the page) to return truthy; on timeout, explain with `describe()`. */
  ctx.waitInPage = async (fn, arg, describe) => {
    try {
      return await ctx.page.waitForFunction(fn, arg, { timeout: WAIT_MS });
    } catch (err) {
      ctx.assertKfnAlive();
      throw new Error(`${await describe().catch((e) => `(no detail: ${e.message})`)}\n${err.message}`);
    }
  };

  /** GET a JSON API path of this kfn, from the test (not the page). */
  ctx.api = async (apiPath) => {
    const res = await fetch(new URL(apiPath, ctx.baseUrl), { headers: { Accept: "application/json" } });
    assert.equal(res.status, 200, `GET ${apiPath}: HTTP ${res.status}`);
    return res.json();
  };

  /** Save a full-page screenshot for humans to `file` (relative to the repo). */
  ctx.screenshot = async (file) => {
    const out = path.join(REPO, file);
    await mkdir(path.dirname(out), { recursive: true });
    await ctx.page.screenshot({ path: out, fullPage: true });
  };

  before(async () => {
    await mustExist(KFN_BIN, "build it with `cargo build -p kfn` (or set KFN_BIN)");
    await mustExist(CHROMIUM, "install it with `apt-get install chromium` (or set CHROMIUM)");
    ctx.baseUrl = await startKfn();

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS);
    const page = await context.newPage();
    ctx.page = page;
    page.on("console", (msg) => {
      if (collecting && (msg.type() === "error" || msg.type() === "warning")) {
        const loc = msg.location();
        ctx.problems.push(`console ${msg.type()}: ${msg.text()}${loc?.url ? ` (${loc.url}:${loc.lineNumber})` : ""}`);
      }
    });
    page.on("pageerror", (err) => {
      if (collecting) ctx.problems.push(`page error: ${err.stack ?? err.message}`);
    });
    page.on("requestfailed", (req) => {
      if (collecting) ctx.problems.push(`request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
    });
    page.on("response", (res) => {
      if (collecting && res.status() >= 400) {
        ctx.problems.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`);
      }
    });
    await page.goto(ctx.baseUrl + fragment, { waitUntil: "load" });
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

  return ctx;
}

/** A number shown in a table cell ("1,234" → 1234). */
export function cellNumber(text) {
  return Number(String(text).replace(/[^\d.-]/g, "") || NaN);
}
