// Browser test of the dashboard against a kfn with an API token (KFN_HTTP_TOKEN),
// opened as `/#token=...` the way README's "Access: the API token" says: the
// publish form sends the token and the record lands; the token leaves the address
// bar; a request without it is refused. Every wait is a condition with a deadline.

import { test } from "node:test";
import assert from "node:assert/strict";
import { T, useDashboard } from "./harness.mjs";

const TOKEN = "browser-test-token-0123456789";
const kfn = useDashboard("kfn.yaml", { env: { KFN_HTTP_TOKEN: TOKEN }, fragment: `#token=${TOKEN}` });

test("the token from the URL fragment is kept and removed from the address bar", T, async () => {
  const { page, waitInPage } = kfn;
  await waitInPage(() => location.hash === "", null, async () => `address bar still reads ${page.url()}`);
  assert.ok(!page.url().includes(TOKEN), page.url());
  assert.equal(await page.inputValue("#publish-token"), TOKEN);
});

test("the publish form sends the token, and the record lands", T, async () => {
  const { page, waitInPage } = kfn;
  await page.fill("#publish-topic", "R1");
  await page.fill("#publish-value", JSON.stringify({ name: "P1", user: "U1", duration: 1234 }));
  await page.click("#publish-submit");
  await waitInPage(
    () => ["ok", "error"].includes(document.querySelector("#publish-result")?.dataset.state),
    null,
    async () => `publish result still reads ${JSON.stringify(await page.locator("#publish-result").innerText())}`,
  );
  const result = page.locator("#publish-result");
  assert.equal(await result.getAttribute("data-state"), "ok", `publish failed: ${await result.innerText()}`);
  assert.match(await result.innerText(), /Published to R1/);
});

test("the same request without the token is refused with 401", T, async () => {
  const res = await fetch(new URL("/api/topics/R1", kfn.baseUrl), { method: "POST", body: "x" });
  assert.equal(res.status, 401);
  assert.match((await res.json()).error, /Authorization: Bearer/);
});

test("no console errors or warnings, no failed requests", T, async () => {
  assert.deepEqual(kfn.problems, []);
});
