// Top bar: version, bootstrap address, config file, broker health, and links to
// problems worth a glance from anywhere on the page.

import { getJson, poll } from "../api.js";
import { $, el } from "../dom.js";
import { DASH } from "../format.js";

const INFO_RETRY_MS = 2000;
const HEALTH_POLL_MS = 3000;

async function loadInfo() {
  try {
    const info = await getJson("/api/info");
    $("info-version").textContent = info.version ? `v${info.version}` : "";
    $("info-bootstrap").textContent = info.bootstrap ?? DASH;
    $("info-config").textContent = info.config ?? DASH;
    $("info-config").title = info.instance ? `instance ${info.instance} (reached at ${info.advertise})` : "";
    const broker = info.broker ? ` (${info.broker} broker)` : "";
    $("info-bootstrap").title = `Kafka bootstrap address${broker}`;
  } catch {
    setTimeout(loadInfo, INFO_RETRY_MS);
  }
}

async function refreshHealth() {
  const pill = $("health");
  const text = $("health-text");
  try {
    const h = await getJson("/api/health");
    const up = h.broker === "up";
    pill.dataset.state = h.status === "ok" && up ? "ok" : "degraded";
    text.textContent = up ? (h.status === "ok" ? "broker up" : "degraded") : "broker down";
    pill.title = h.detail ?? `status ${h.status}, broker ${h.broker}`;
  } catch (err) {
    pill.dataset.state = "down";
    text.textContent = "kfn unreachable";
    pill.title = String(err.message ?? err);
  }
}

/** The top-bar problem pills. `set(area, names, describe, href)`; no names clears the area. */
function createAttention(box) {
  const areas = new Map(); // area -> { names, text, href }
  return {
    set(area, names, describe, href) {
      if (names.length) areas.set(area, { names, text: describe(names.length), href });
      else areas.delete(area);
      box.replaceChildren(...[...areas.values()].map((a) =>
        el("a", { class: "pill", "data-state": "bad", href: a.href, title: a.names.join(", ") },
          el("span", { class: "dot", "aria-hidden": "true" }), a.text)));
      box.hidden = areas.size === 0;
    },
  };
}

export function startHeader() {
  loadInfo();
  poll(refreshHealth, HEALTH_POLL_MS);
  return { attention: createAttention($("attention")) };
}
