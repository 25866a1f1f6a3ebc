// Browser test of stores whose aggregate is an aggregator function, against the real
// kfn binary on examples/aggregators.yaml (Rust p95, Python distinct users,
// JavaScript top users). A function's value is whatever JSON it returns: the
// dashboard shows it as JSON in the closed-windows table and charts its numbers,
// which it learns from the values.
//
//   cargo build -p kfn && cargo kfn build && npm ci && node --test tests/browser/aggregators.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";
import { T, useDashboard } from "./harness.mjs";
import { numericPaths } from "../../static/js/format.js";

const kfn = useDashboard("examples/aggregators.yaml");
const card = (store) => `.chart-card[data-store="${store}"]`;

test("the numbers of a value are its chartable paths, two levels deep", () => {
  assert.deepEqual(numericPaths({ views: 3, p95: { p95: 1240, count: 57, max: 8990 } }),
    ["views", "p95.p95", "p95.count", "p95.max"]);
  assert.deepEqual(numericPaths({ distinct: 2, users: ["U1", "U2"] }), ["distinct"]);
  assert.deepEqual(numericPaths({ top: [["U1", 5]] }), []);
  assert.deepEqual(numericPaths(7), []);
  assert.deepEqual(numericPaths(null), []);
});

test("an aggregator's numbers can be picked and charted, beside the built-in ones", T, async () => {
  const { page, waitInPage } = kfn;
  const options = (store) => page.locator(`${card(store)} select.agg-select option`)
    .evaluateAll((os) => os.map((o) => o.value));
  await waitInPage(
    () => [...document.querySelectorAll('.chart-card[data-store="page-p95"] select.agg-select option')]
      .some((o) => o.value === "p95.p95"),
    null,
    async () => `page-p95 picker: ${JSON.stringify(await options("page-p95"))}`,
  );
  const p95 = await options("page-p95");
  assert.equal(p95[0], "views", "the built-in count comes first and is picked first");
  for (const path of ["p95.p95", "p95.count", "p95.max"]) assert.ok(p95.includes(path), `${path} in ${p95}`);
  assert.equal(await page.locator(card("page-p95")).getAttribute("data-aggregate"), "views");

  // A store with the function alone: its numeric field, not the list of users.
  await waitInPage(
    () => document.querySelector('.chart-card[data-store="page-users"]')?.dataset.aggregate === "distinct",
    null,
    async () => `page-users picker: ${JSON.stringify(await options("page-users"))}`,
  );
  assert.deepEqual(await options("page-users"), ["distinct"]);

  await page.locator(`${card("page-p95")} select.agg-select`).selectOption("p95.p95");
  await waitInPage(
    () => ["P1", "P2"].some((k) => /^\d/.test(document.querySelector(
      `.chart-card[data-store="page-p95"] .legend li[data-key="${k}"] .legend-value`)?.textContent ?? "")),
    null,
    async () => `page-p95 legend reads ${JSON.stringify(await page.locator(`${card("page-p95")} .legend`).innerText())}`,
  );
  const shown = await page.locator(`${card("page-p95")} .legend .legend-value`).allInnerTexts();
  for (const text of shown.filter((t) => /^\d/.test(t))) {
    const ms = Number(text.replaceAll(",", ""));
    assert.ok(ms >= 10 && ms <= 10_000 && ms % 10 === 0, `a p95 is a 10 ms bucket edge up to 10 s: ${shown}`);
  }
});

test("closed windows of an aggregator show its JSON, as /api/stores/{name} has it", T, async () => {
  const { page, waitInPage } = kfn;
  for (const store of ["page-users", "page-top-users"]) {
    // 10 s tumbling windows: the first closes 10-20 s after the start.
    await waitInPage(
      (s) => document.querySelectorAll(`.chart-card[data-store="${s}"] .closed-table tbody tr[data-id]`).length >= 1,
      store,
      async () => `${store}: closed-windows table reads ${JSON.stringify(await page.locator(`${card(store)} .closed-table`).innerText())}`,
    );
    const rows = await page.locator(`${card(store)} .closed-table tbody tr[data-id]`).evaluateAll((trs) => trs.map((tr) => ({
      key: tr.dataset.key, start: Number(tr.dataset.start), end: Number(tr.dataset.end),
      value: JSON.parse(tr.dataset.value), text: tr.cells[2].textContent,
    })));
    const answer = await kfn.api(`/api/stores/${store}`);
    for (const row of rows) {
      const w = answer.windows.find((x) => String(x.key) === row.key && x.start === row.start && x.end === row.end);
      assert.ok(w, `${store} ${row.key} [${row.start}, ${row.end}] is a window of the store`);
      assert.deepEqual(row.value, w.value);
      assert.deepEqual(JSON.parse(row.text), w.value, `${store}: shown as its JSON`);
      if (store === "page-users") {
        assert.equal(w.value.distinct, w.value.users.length, JSON.stringify(w.value));
      } else {
        assert.ok(Array.isArray(w.value.top) && w.value.top.length <= 3, JSON.stringify(w.value));
      }
    }
  }
});

test("no console errors or warnings, no failed requests", T, async () => {
  await kfn.screenshot("dashboard-aggregators.png");
  kfn.assertKfnAlive();
  assert.deepEqual(kfn.problems, []);
});
