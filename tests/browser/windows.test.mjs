// Browser test of the window-store panels against the real kfn binary, on
// examples/windows.yaml: one store of each window kind over the supplier's page
// views (tumbling, hopping with two named aggregates, sliding, sessions).
//
//   cargo build -p kfn && npm ci && node --test tests/browser/
//
// Every wait is a condition with a deadline, never a fixed sleep (see
// harness.mjs). A screenshot for humans is saved to target/dashboard-windows.png.

import { test } from "node:test";
import assert from "node:assert/strict";
import { T, cellNumber, useDashboard } from "./harness.mjs";

const kfn = useDashboard("examples/windows.yaml");

// What examples/windows.yaml defines: store → [window kind, chart the dashboard draws].
const STORES = {
  "page-count": ["tumbling", "timeline"],
  "page-hopping": ["hopping", "spans"],
  "page-sliding": ["sliding", "spans"],
  "user-sessions": ["session", "sessions"],
};
const card = (store) => `.chart-card[data-store="${store}"]`;

/** The closed-windows rows of `store`'s card, as the page shows them. */
function closedRows(page, store) {
  return page.locator(`${card(store)} .closed-table tbody tr[data-id]`).evaluateAll((rows) => rows.map((tr) => ({
    partition: Number(tr.dataset.partition),
    key: tr.dataset.key,
    start: Number(tr.dataset.start),
    end: Number(tr.dataset.end),
    value: JSON.parse(tr.dataset.value),
    keyText: tr.cells[0].textContent,
    boundsText: tr.cells[1].textContent,
    valueText: tr.cells[2].textContent,
  })));
}

/** The numbers shown are the exact ones cut to two decimals. */
function assertShownValue(shown, exact, what) {
  const close = (a, b) => Math.abs(a - b) <= 0.005 + 1e-9;
  if (typeof exact === "number") {
    assert.ok(close(cellNumber(shown), exact), `${what}: shows ${shown}, the store says ${exact}`);
    return;
  }
  const parsed = JSON.parse(shown);
  assert.deepEqual(Object.keys(parsed).sort(), Object.keys(exact).sort(), `${what}: shows ${shown}`);
  for (const [name, v] of Object.entries(exact)) {
    if (v === null) assert.equal(parsed[name], null, `${what}.${name}`);
    else assert.ok(close(parsed[name], v), `${what}.${name}: shows ${parsed[name]}, the store says ${v}`);
  }
}

test("a card per store, each with the chart of its window kind, drawing live data", T, async () => {
  const { page, waitInPage } = kfn;
  const stores = await kfn.api("/api/stores");
  assert.deepEqual(stores.map((s) => s.name).sort(), Object.keys(STORES).sort(), "the example defines these stores");
  const describe = async () => (await page.locator(".chart-card").evaluateAll((cards) =>
    cards.map((c) => `${c.dataset.store}: kind=${c.dataset.kind} chart=${c.dataset.chart} state=${c.dataset.state} ` +
      `updates=${c.dataset.updates} windows=${c.dataset.windows}`))).join("\n");
  await waitInPage(
    (expected) => Object.entries(expected).every(([store, [kind, chart]]) => {
      const c = document.querySelector(`.chart-card[data-store="${store}"]`);
      // Tumbling draws the SSE line only; the others also draw closed windows.
      return c?.dataset.kind === kind && c.dataset.chart === chart && c.dataset.state === "live"
        && Number(c.dataset.updates) >= 2 && (chart === "timeline" || Number(c.dataset.windows) > 0);
    }),
    STORES,
    describe,
  );
  for (const s of stores) {
    assert.equal(await page.locator(card(s.name)).getAttribute("data-kind"), s.kind, `${s.name}: kind of /api/stores`);
    assert.equal(await page.locator(card(s.name)).getAttribute("data-serve"), s.serve);
    assert.ok(await page.locator(`${card(s.name)} canvas`).count() >= 1, `${s.name}: uPlot drew a canvas`);
    assert.match(await page.locator(`${card(s.name)} .badge-kind`).innerText(), new RegExp(`^${s.kind}$`));
  }
  // The sessions chart has a lane per user.
  await waitInPage(
    () => ["U1", "U2"].every((k) => document.querySelector(`.chart-card[data-store="user-sessions"] .legend li[data-key="${k}"]`)),
    null, describe);
});

test("a store with named aggregates charts the one picked, the first by default", T, async () => {
  const { page, waitInPage } = kfn;
  const hopping = (await kfn.api("/api/stores")).find((s) => s.name === "page-hopping");
  const names = Object.keys(hopping.aggregate);
  const select = page.locator(`${card("page-hopping")} select.agg-select`);
  assert.deepEqual(await select.locator("option").evaluateAll((os) => os.map((o) => o.value)), names);
  assert.equal(await page.locator(card("page-hopping")).getAttribute("data-aggregate"), names[0]);
  assert.equal(await select.inputValue(), names[0]);
  // A single aggregate has nothing to pick.
  assert.equal(await page.locator(`${card("page-sliding")} select`).count(), 0);

  await select.selectOption("views");
  assert.equal(await page.locator(card("page-hopping")).getAttribute("data-aggregate"), "views");
  // The legend now shows the count of views: whole numbers.
  await waitInPage(
    () => ["P1", "P2"].every((k) => /^\d+$/.test(document.querySelector(
      `.chart-card[data-store="page-hopping"] .legend li[data-key="${k}"] .legend-value`)?.textContent ?? "")),
    null,
    async () => `hopping legend reads ${JSON.stringify(await page.locator(`${card("page-hopping")} .legend`).innerText())}`,
  );
  await waitInPage(() => Number(document.querySelector('.chart-card[data-store="page-hopping"]').dataset.windows) > 0,
    null, async () => "the hopping chart drew no windows after the switch");
});

test("each store's table shows its last closed windows, newest first, as /api/stores/{name} has them", T, async () => {
  const { page, waitInPage } = kfn;
  const stores = await kfn.api("/api/stores");
  for (const s of stores) {
    // Sessions close only after a 2 s gap without the user: allow for a slow start.
    await waitInPage(
      (store) => document.querySelectorAll(`.chart-card[data-store="${store}"] .closed-table tbody tr[data-id]`).length >= 2,
      s.name,
      async () => `${s.name}: closed-windows table reads ${JSON.stringify(await page.locator(`${card(s.name)} .closed-table`).innerText())}`,
    );
    const rows = await closedRows(page, s.name);
    // Closed windows are final: asking after reading the page cannot disagree.
    const answer = await kfn.api(`/api/stores/${encodeURIComponent(s.name)}`);
    assert.equal(answer.complete, true, `${s.name}: every partition answered`);
    for (const row of rows) {
      const what = `${s.name} ${row.key} ${row.boundsText}`;
      const w = answer.windows.find((x) => x.partition === row.partition && String(x.key) === row.key
        && x.start === row.start && x.end === row.end);
      assert.ok(w, `${what}: not among the store's windows`);
      assert.equal(w.closed, true, `${what}: shown as closed, the store says open`);
      assert.deepEqual(row.value, w.value, `${what}: data-value`);
      assertShownValue(row.valueText, w.value, what);
      assert.equal(row.keyText, row.key);
      // The bracket says whether the end is in the window.
      assert.match(row.boundsText, s.end_exclusive ? /^\[.*\)$/ : /^\[.*\]$/, `${what}: bracket for ${s.kind}`);
    }
    for (let i = 1; i < rows.length; i++) {
      assert.ok(rows[i - 1].end >= rows[i].end, `${s.name}: row ${i} ends after the row above it`);
    }
    // No closed window is left out. A key's windows close in the order of their
    // ends, so every window of a key ending before that key's newest row had
    // closed when the page asked; those ending after the table's oldest row belong in it.
    const oldest = rows[rows.length - 1];
    for (const key of new Set(rows.map((r) => r.key))) {
      const newest = rows.find((r) => r.key === key);
      const due = answer.windows.filter((w) => String(w.key) === key && w.closed && w.end > oldest.end && w.end < newest.end);
      for (const w of due) {
        assert.ok(rows.some((r) => r.partition === w.partition && r.key === key && r.start === w.start && r.end === w.end),
          `${s.name}: closed window ${key} [${w.start}, ${w.end}] missing from the table`);
      }
    }
  }
});

test("a record late for its windows is counted in the bindings table and on each store's card, and shown as a late-record event", T, async () => {
  const { page, waitInPage } = kfn;
  const before = Object.fromEntries((await kfn.api("/api/bindings")).map((b) => [b.name, b.late]));
  // Ten minutes old: long past every window's close, for every kind.
  const res = await fetch(new URL(`/api/topics/R2?key=P1&timestamp=${Date.now() - 10 * 60_000}`, kfn.baseUrl), {
    method: "POST",
    body: JSON.stringify({ name: "P1", user: "U1", duration: 1234 }),
  });
  const body = await res.text();
  assert.equal(res.status, 200, body);
  assert.ok(JSON.parse(body).offset >= 0);

  const stores = Object.keys(STORES);
  await waitInPage(
    (arg) => arg.stores.every((store) => {
      const cell = document.querySelector(`#bindings-body tr[data-name="${store}"] td.col-late`);
      const shown = Number(cell?.textContent.replace(/\D/g, "") || 0);
      const c = document.querySelector(`.chart-card[data-store="${store}"]`);
      return shown > arg.before[store] && Number(c?.dataset.late) > arg.before[store];
    }),
    { stores, before },
    async () => `late counts: bindings ${JSON.stringify(await page.locator("#bindings-body td.col-late").allInnerTexts())}, ` +
      `cards ${JSON.stringify(await page.locator(".chart-card").evaluateAll((cs) => cs.map((c) => c.dataset.late)))}`,
  );
  const api = Object.fromEntries((await kfn.api("/api/bindings")).map((b) => [b.name, b]));
  for (const store of stores) {
    const shown = await page.locator(`${card(store)} .late-count`).innerText();
    assert.match(shown, /^\d[\d,]* late$/, `${store}: card shows ${shown}`);
    assert.ok(cellNumber(shown) >= 1 && cellNumber(shown) <= api[store].late, `${store}: card shows ${shown}, API ${api[store].late}`);
    assert.ok(await page.locator(`${card(store)} .late-count.is-late`).count() === 1, `${store}: late count is highlighted`);
  }
  // Only analytics steps see records late; the others show no count at all.
  assert.equal(await page.locator('#bindings-body tr[data-name="page-supplier"] td.col-late').innerText(), "—");

  await waitInPage(
    (stores) => stores.every((store) => [...document.querySelectorAll('#events li[data-kind="late-record"]')]
      .some((li) => li.querySelector(".event-subject")?.textContent === store)),
    stores,
    async () => `late-record events: ${JSON.stringify(await page.locator('#events li[data-kind="late-record"]').allInnerTexts())}`,
  );
  const late = page.locator('#events li[data-kind="late-record"]').first();
  assert.equal(await late.getAttribute("data-tone"), "late");
  assert.match(await late.getAttribute("class"), /\btone-late\b/);
  assert.match(await late.locator(".badge").getAttribute("class"), /\bbadge-late\b/);
});

test("hovering a session shows its bounds and value", T, async () => {
  const { page } = kfn;
  const over = page.locator(`${card("user-sessions")} .u-over`);
  const box = await over.boundingBox();
  const readout = page.locator(`${card("user-sessions")} .chart-readout`);
  // Sweep the lanes from the right, where the newest sessions are, until the readout names one.
  let found = null;
  for (let fx = 0.98; fx > 0.05 && !found; fx -= 0.01) {
    for (const fy of [0.25, 0.75]) {
      await page.mouse.move(box.x + box.width * fx, box.y + box.height * fy);
      // Class and text read at one instant: a live update in between can end the
      // hover (an open session that grew is another window), and the readout then
      // shows its explanation again.
      found = await readout.evaluate((el) => (el.classList.contains("is-hover") ? el.innerText : null));
      if (found) break;
    }
  }
  assert.ok(found, "no session under the cursor anywhere in the chart");
  assert.match(found, /^U[12] \[\d\d:\d\d:\d\d(\.\d{3})?, \d\d:\d\d:\d\d(\.\d{3})?\] \{.*"views":\d+.*\}/);
  await page.mouse.move(0, 0);
});

test("no console errors or warnings, no failed requests", T, async () => {
  // A screenshot worth looking at: some history in every chart first.
  await kfn.waitInPage(
    () => [...document.querySelectorAll(".chart-card")].every((c) => Number(c.dataset.updates) >= 20)
      && Number(document.querySelector('.chart-card[data-store="page-hopping"]').dataset.windows) >= 12,
    null,
    async () => `cards: ${JSON.stringify(await kfn.page.locator(".chart-card").evaluateAll((cs) =>
      cs.map((c) => [c.dataset.store, c.dataset.updates, c.dataset.windows])))}`,
  );
  await kfn.screenshot("target/dashboard-windows.png");
  kfn.assertKfnAlive();
  assert.deepEqual(kfn.problems, [], `problems during the run:\n${kfn.problems.join("\n")}`);
});
