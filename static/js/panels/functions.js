// Functions table: every component in the functions directory and its state.

import { getJson } from "../api.js";
import { $, badge, el, reconcileRows, setNote } from "../dom.js";
import { DASH, fmtBytes, fmtInt, fmtLoadedAt } from "../format.js";
import { FUNCTION_PROBLEMS, FUNCTION_TONES } from "../kinds.js";

function functionRow(f) {
  const hash = typeof f.hash === "string" ? f.hash : null;
  const loaded = el("td", { class: "nowrap" }, fmtLoadedAt(f.loaded_at_ms));
  if (typeof f.compile_ms === "number") {
    const ms = f.compile_ms < 1 ? "<1" : fmtInt(f.compile_ms);
    loaded.append(el("div", { class: "sub" }, `compiled in ${ms} ms`));
  }
  const tone = FUNCTION_TONES[f.status] ?? "muted";
  const status = el("td", {}, badge(f.status, tone));
  if (f.status === "error") {
    // The registry keeps the last good version running when a new one is rejected.
    status.append(el("div", { class: "sub nowrap" }, hash ? "previous version serving" : "not loaded"));
  }
  return el("tr", { class: FUNCTION_PROBLEMS.has(f.status) ? `row-${tone}` : null,
    "data-name": f.name, "data-status": f.status },
    el("td", { class: "strong" }, f.name),
    el("td", {}, f.world ?? DASH),
    status,
    el("td", {}, hash ? el("code", { title: hash }, hash.slice(0, 12)) : DASH),
    el("td", { class: "num" }, fmtInt(f.generation)),
    loaded,
    el("td", { class: "num nowrap" }, fmtBytes(f.size_bytes)),
    el("td", { class: "col-error" }, f.last_error ? el("pre", { class: "error-text" }, f.last_error) : DASH),
  );
}

/** Polls /api/functions into `state.functions` (the caller drives the poll). */
export function functionsSource(state) {
  return async () => {
    try {
      state.set("functions", await getJson("/api/functions"));
    } catch (err) {
      setNote($("functions-note"), `refresh failed: ${err.message}`, true);
    }
  };
}

export function renderFunctions(list, attention) {
  reconcileRows($("functions-body"), list, {
    id: (f) => f.name,
    render: functionRow,
    empty: "No functions in the functions directory.",
  });
  const count = (status) => list.filter((f) => f.status === status).length;
  const extra = [count("error") ? `${count("error")} rejected` : null,
    count("missing") ? `${count("missing")} missing` : null].filter(Boolean);
  setNote($("functions-note"), [`${count("ready")} of ${list.length} ready`, ...extra].join(" · "), extra.length > 0);
  attention.set("functions", list.filter((f) => FUNCTION_PROBLEMS.has(f.status)).map((f) => f.name),
    (n) => `${n} function${n === 1 ? "" : "s"} failing`, "#functions-section");
}
