// A store's "last closed windows" table: key, bounds with the bracket of the
// store's kind, and the final value (a number, or compact JSON for named
// aggregates), newest first. Rows carry the exact window as data-* attributes.

import { el, reconcileRows } from "../dom.js";
import { fmtBounds, fmtDuration, fmtWindowValue } from "../format.js";

function closedRow(w, { endExclusive, colors }) {
  const numeric = typeof w.value === "number";
  return el("tr", {
    "data-key": w.key, "data-partition": w.partition, "data-start": w.start, "data-end": w.end,
    "data-value": JSON.stringify(w.value ?? null),
  },
    el("td", { class: "strong" }, el("span", { class: "swatch", style: `background:${colors.get(w.key)}` }), w.key),
    el("td", { class: "nowrap bounds", title: `${w.start} … ${w.end} ms, ${fmtDuration(w.end - w.start)}, partition ${w.partition}` },
      fmtBounds(w.start, w.end, endExclusive)),
    el("td", { class: numeric ? "num value" : "num value json" }, fmtWindowValue(w.value)),
  );
}

/** Show the newest `limit` closed windows of `windows` in `tbody`. */
export function renderClosedWindows(tbody, windows, { limit, endExclusive, colors, empty }) {
  const closed = windows.filter((w) => w.closed)
    .sort((a, b) => b.end - a.end || b.start - a.start || a.key.localeCompare(b.key))
    .slice(0, limit);
  reconcileRows(tbody, closed, {
    id: (w) => `${w.partition}|${w.key}|${w.start}|${w.end}`,
    render: (w) => closedRow(w, { endExclusive, colors }),
    empty,
  });
}
