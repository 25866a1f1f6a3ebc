// Browser test of the dashboard against the real kfn binary, in headless Chromium,
// on the seed app (kfn.yaml: one tumbling store).
//
//   cargo build -p kfn && npm ci && node --test tests/browser/
//
// Env: KFN_BIN (default target/debug/kfn), CHROMIUM (default /usr/bin/chromium).
// Every wait is a condition with a deadline, never a fixed sleep (see harness.mjs).
// A screenshot for humans is saved to target/dashboard.png.

import { test } from "node:test";
import assert from "node:assert/strict";
import { T, cellNumber, useDashboard } from "./harness.mjs";

const kfn = useDashboard("kfn.yaml");

// What kfn.yaml defines; the dashboard must show all of it.
const FUNCTIONS = ["page-enricher", "page-filter", "page-logger", "page-supplier"];
// page-count groups by a value field, so it is two steps joined by its repartition topic.
const BINDINGS = {
  "page-supplier": "supplier", "page-logger": "consumer", "page-enricher": "function",
  "page-count.repartition": "repartition", "page-count": "analytics",
};

test("page loads with a kfn title", T, async () => {
  const { page, waitInPage } = kfn;
  assert.match(await page.title(), /kfn/);
  await page.locator("header .brand-name").waitFor();
  await waitInPage(() => document.querySelector("#health")?.dataset.state === "ok", null,
    async () => `broker health pill reads "${await page.locator("#health").innerText()}"`);
});

test("functions table lists the app's four functions as ready", T, async () => {
  const { page, waitInPage } = kfn;
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
  const { page, waitInPage } = kfn;
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
  const { page, waitInPage } = kfn;
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
  assert.equal(await card.getAttribute("data-kind"), "tumbling");
  assert.equal(await card.getAttribute("data-chart"), "timeline");
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
  const { page, waitInPage } = kfn;
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
  const { page, waitInPage } = kfn;
  await page.locator("#events li").first().waitFor();
  await page.locator('#events li[data-kind="function-loaded"]').first().waitFor();
  assert.equal(await page.locator("#events-conn").getAttribute("data-state"), "live");
});

test("table rows are updated in place, not rebuilt, between polls", T, async () => {
  const { page, waitInPage } = kfn;
  const cell = '#bindings-body tr[data-name="page-count"] td.num';
  // Mark the row's node (a property, not an attribute: rows are patched to match
  // the rendered row's attributes); a rebuilt table would lose the mark.
  const before = await page.evaluate((sel) => {
    document.querySelector(sel).closest("tr").testMark = "kept";
    return document.querySelector(sel).firstChild.textContent;
  }, cell);
  await waitInPage((arg) => document.querySelector(arg.cell)?.firstChild?.textContent !== arg.before,
    { cell, before }, async () => `page-count's In count stayed at ${before}`);
  assert.equal(await page.evaluate(() => document.querySelector('#bindings-body tr[data-name="page-count"]').testMark), "kept",
    "the page-count row was replaced instead of updated");
  assert.ok(cellNumber(await page.locator(cell).first().innerText()) > cellNumber(before));
});

test("no console errors or warnings, no failed requests", T, async () => {
  await kfn.screenshot("target/dashboard.png");
  kfn.assertKfnAlive();
  assert.deepEqual(kfn.problems, [], `problems during the run:\n${kfn.problems.join("\n")}`);
});
