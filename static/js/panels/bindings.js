// Bindings table: every binding and pipeline step, its counters and rates.

import { getJson } from "../api.js";
import { $, badge, el, reconcileRows, setNote } from "../dom.js";
import { DASH, fmtInt, fmtRate } from "../format.js";
import { BINDING_TONES } from "../kinds.js";

function topics(b) {
  return el("span", { class: "topics" },
    el("code", {}, b.input ?? DASH), el("span", { class: "arrow" }, "→"), el("code", {}, b.output ?? DASH));
}

/** "restoring 40 / 100" while a store is being rebuilt from its changelog. */
function restoreNote(restore) {
  if (!restore || typeof restore.total !== "number" || restore.done >= restore.total) return null;
  return el("div", { class: "sub nowrap", "data-restore": `${restore.done}/${restore.total}` },
    `restoring state ${fmtInt(restore.done)} / ${fmtInt(restore.total)}`);
}

/** "× 4 instances" under a function that shares its batches among several. */
function instancesNote(n) {
  if (typeof n !== "number" || n < 2) return null;
  return el("div", { class: "sub", "data-instances": n, title: "instances that share each batch (limits.instances)" },
    `× ${n} instances`);
}

function bindingRow(b) {
  const status = el("td", {}, badge(b.status, BINDING_TONES[b.status] ?? "muted"));
  if (b.status_reason) status.append(el("div", { class: "sub wrap" }, b.status_reason));
  const restoring = restoreNote(b.restore);
  if (restoring) status.append(restoring);
  const countCell = (n, tone, title) =>
    el("td", { class: `num${n > 0 ? ` is-${tone}` : ""}`, title }, fmtInt(n));
  // A consumer has no output topic, so nothing to count there.
  const noOut = b.kind === "consumer" && !b.output;
  const outCount = noOut ? DASH : fmtInt(b.records_out);
  const outRate = noOut ? DASH : fmtRate(b.rate_out);
  const inTitle = b.kind === "supplier" ? "calls of supply()" : null;
  // Only a windowed step can see a record late; elsewhere the column stays empty.
  const late = b.kind === "analytics"
    ? countCell(b.late, "late", "records late for some or all of their windows (also counted in errors)")
    : el("td", { class: "num" }, DASH);
  late.classList.add("col-late");
  return el("tr", { class: b.status === "paused" ? "row-warn" : null, "data-name": b.name, "data-status": b.status },
    el("td", { class: "strong" }, b.name),
    el("td", {}, b.kind),
    el("td", { class: "nowrap" }, b.function ?? DASH, instancesNote(b.instances)),
    el("td", { class: "nowrap" }, topics(b)),
    status,
    // On narrow screens the rate columns are hidden and each rate shows under its count.
    el("td", { class: "num", title: inTitle }, fmtInt(b.records_in),
      el("div", { class: "sub rate-inline" }, `${fmtRate(b.rate_in)}/s`)),
    el("td", { class: "num" }, outCount, noOut ? null : el("div", { class: "sub rate-inline" }, `${outRate}/s`)),
    countCell(b.errors, "bad"),
    late,
    countCell(b.dead_lettered, "bad"),
    el("td", { class: "num col-rate", title: inTitle }, fmtRate(b.rate_in)),
    el("td", { class: "num col-rate" }, outRate),
  );
}

/** Polls /api/bindings into `state.bindings` (the caller drives the poll). */
export function bindingsSource(state) {
  return async () => {
    try {
      state.set("bindings", await getJson("/api/bindings"));
    } catch (err) {
      setNote($("bindings-note"), `refresh failed: ${err.message}`, true);
    }
  };
}

export function renderBindings(list, attention) {
  reconcileRows($("bindings-body"), list, { id: (b) => b.name, render: bindingRow, empty: "No bindings configured." });
  const running = list.filter((b) => b.status === "running").length;
  const paused = list.filter((b) => b.status === "paused");
  const late = list.reduce((sum, b) => sum + (b.kind === "analytics" ? b.late ?? 0 : 0), 0);
  const parts = [`${running} of ${list.length} running`, paused.length ? `${paused.length} paused` : null,
    late ? `${fmtInt(late)} late records` : null];
  setNote($("bindings-note"), parts.filter(Boolean).join(" · "), paused.length > 0);
  attention.set("bindings", paused.map((b) => b.name),
    (n) => `${n} binding${n === 1 ? "" : "s"} paused`, "#bindings-section");
}
