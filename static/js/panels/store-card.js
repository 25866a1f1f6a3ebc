// One card per window store: a chart fitting the store's window kind, latest
// values, the late-record count, and a table of the last closed windows.
//
// Two sources feed it: the store's SSE route (each key's value in its current
// window, every second) and `/api/stores/{name}?from=` (every window of the
// chart's span, open and closed), polled. The card exposes its state for tests
// and tooling: data-kind, data-chart, data-state (connecting | waiting | live |
// disconnected | no-serve), data-updates (SSE messages seen), data-windows
// (windows drawn across their bounds), data-aggregate and data-late.

import { getJson, poll, stream } from "../api.js";
import { SessionsChart } from "../charts/sessions.js";
import { SpansChart } from "../charts/spans.js";
import { SERIES_COLORS, sameWindow } from "../charts/plot.js";
import { TimelineChart } from "../charts/timeline.js";
import { el, setNote, showEmpty } from "../dom.js";
import { DASH, fmtBounds, fmtDuration, fmtInt, fmtShort, fmtTime, fmtValue, fmtWindowValue, numericPaths } from "../format.js";
import { WINDOW_KINDS } from "../kinds.js";
import { renderClosedWindows } from "./closed-windows.js";

const WINDOWS_POLL_MS = 2000;
const CLOSED_ROWS = 6;

const CHARTS = {
  timeline: {
    make: TimelineChart,
    explain: (s) => `Lines: each key's value in its current ${fmtDuration(s.window_ms)} window, every second.`,
  },
  spans: {
    make: SpansChart,
    explain: (s) => `Bars: closed windows across their bounds, at their final value.${s.serve ? " Lines: current window." : ""}`,
  },
  sessions: {
    make: SessionsChart,
    explain: () => "A lane per key, a bar per session with its value. Hollow, dotted tail: still open.",
  },
};

const STATE_TEXT = {
  connecting: "connecting…",
  waiting: "connected",
  live: "live",
  disconnected: "disconnected — retrying",
  "no-serve": "no serve route",
};

/** What makes two `/api/stores` entries the same card; anything else rebuilds it. */
export function storeIdentity(s) {
  return JSON.stringify([s.name, s.serve, s.kind, s.window_ms, s.advance_ms, s.end_exclusive, s.aggregate]);
}

/** The names of a store's named aggregates, or null when it has a single one. */
function aggregateNames(store) {
  const a = store.aggregate;
  return a && typeof a === "object" && !Array.isArray(a) ? Object.keys(a) : null;
}

/** Whether a store's aggregate (or one of its named ones) is an aggregator function. */
function hasFunction(store) {
  return /"function /.test(JSON.stringify(store.aggregate ?? null));
}

// "P2" before "P10".
const KEY_ORDER = new Intl.Collator(undefined, { numeric: true });

// Every aggregate kfn has is numeric today; should one not be, skip it for charting.
const NUMERIC = /^(count|sum|min|max|avg)\b/;

// The aggregate a user picked survives a reload; storage may be off, which is fine.
function remembered(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}
function remember(key, value) {
  try { localStorage.setItem(key, value); } catch { /* not remembered */ }
}

export class StoreCard {
  constructor(store, { spanMs }) {
    this.store = store;
    this.spanMs = spanMs;
    // Enough history to find the last closed windows even when windows are long.
    this.historyMs = Math.max(spanMs, 3 * store.window_ms + store.grace_ms);
    this.kind = WINDOW_KINDS[store.kind] ?? WINDOW_KINDS.hopping;
    // Without a serve route there is no line of current values: draw closed windows.
    this.chartKind = this.kind.chart === "timeline" && !store.serve ? "spans" : this.kind.chart;
    // With an aggregator function, what can be charted is learned from its values.
    this.learns = hasFunction(store);
    this.names = aggregateNames(store)?.filter((n) => !/^function /.test(store.aggregate[n])) ?? null;
    if (this.names && !this.names.length) this.names = null;
    this.aggregate = this.names ? this.defaultAggregate() : null;
    this.updates = 0;
    this.samples = []; // { t: ms, obj } from the SSE route
    this.windows = []; // from /api/stores/{name}
    this.keys = []; // sorted (KEY_ORDER)
    this.colors = new Map();
    this.hover = {};
    this.buildCard();
  }

  defaultAggregate() {
    const saved = remembered(this.storageKey());
    if (saved && this.names.includes(saved)) return saved;
    return this.names.find((n) => NUMERIC.test(this.store.aggregate[n])) ?? this.names[0];
  }

  storageKey() {
    return `kfn.aggregate.${this.store.name}`;
  }

  spec() {
    if (!this.names) return this.store.aggregate;
    return this.store.aggregate?.[this.aggregate] ?? "function";
  }

  /** Takes in the numeric fields of aggregator values; a new one joins the picker. */
  learn(values) {
    if (!this.learns) return;
    const fresh = [];
    for (const v of values) {
      for (const path of numericPaths(v)) {
        if (!(this.names ?? []).includes(path) && !fresh.includes(path)) fresh.push(path);
      }
    }
    if (!fresh.length) return;
    this.names = [...(this.names ?? []), ...fresh];
    if (!this.names.includes(this.aggregate)) this.aggregate = this.defaultAggregate();
    this.card.dataset.aggregate = this.aggregate;
    this.fillPicker();
    this.makeChart();
  }

  fillPicker() {
    const s = this.store;
    const label = (n) => `${n} (${s.aggregate?.[n] ?? (typeof s.aggregate === "string" ? s.aggregate : "function")})`;
    this.picker.replaceChildren(...(this.names ?? []).map((n) =>
      el("option", { value: n, selected: n === this.aggregate }, label(n))));
    this.picker.value = this.aggregate ?? "";
    this.pickLabel.hidden = !this.names;
  }

  buildCard() {
    const s = this.store;
    const details = [...this.kind.describe(s), this.names ? null : s.aggregate,
      s.emit === "changes" ? "emits every change" : null].filter(Boolean).join(" · ");
    this.stateEl = el("span", { class: "conn", "data-state": "connecting" }, STATE_TEXT.connecting);
    this.lateEl = el("span", { class: "late-count", "data-late": "0",
      title: "records late for some or all of their windows: they changed nothing and went to the dead-letter topic" },
    `${DASH} late`);
    this.legendEl = el("ul", { class: "legend", "aria-label": "latest values" });
    this.plotEl = el("div", { class: "plot" });
    this.waitingEl = el("div", { class: "plot-overlay" }, "waiting for data");
    this.readoutEl = el("p", { class: "chart-readout" });
    this.closedBody = el("tbody");
    this.closedNote = el("span", { class: "panel-note" });
    showEmpty(this.closedBody, "Loading…");

    this.picker = el("select", { class: "agg-select", "aria-label": `aggregate of ${s.name} to chart`,
      onchange: (e) => this.setAggregate(e.target.value) });
    this.pickLabel = el("label", { class: "agg-pick" }, "chart ", this.picker);
    this.fillPicker();

    this.card = el("article", {
      class: "chart-card",
      "data-store": s.name,
      "data-serve": s.serve ?? "",
      "data-kind": s.kind,
      "data-chart": this.chartKind,
      "data-state": "connecting",
      "data-updates": "0",
      "data-windows": "0",
      "data-aggregate": this.aggregate ?? "",
      "data-late": "0",
    },
      el("div", { class: "chart-head" },
        el("div", { class: "chart-title" },
          el("h3", {}, s.name, " ", el("span", { class: `badge badge-kind kind-${s.kind}` }, s.kind)),
          el("div", { class: "sub" }, s.serve ? el("code", {}, s.serve) : null, s.serve ? " · " : null, details),
        ),
        el("div", { class: "chart-status" }, this.lateEl, this.stateEl),
      ),
      el("div", { class: "chart-tools" },
        this.legendEl,
        this.names || this.learns ? this.pickLabel : null,
      ),
      el("div", { class: "plot-wrap" }, this.plotEl, this.waitingEl),
      this.readoutEl,
      el("div", { class: "closed" },
        el("div", { class: "closed-head" }, el("h4", {}, "Last closed windows"), this.closedNote),
        el("div", { class: "table-wrap" },
          el("table", { class: "data compact closed-table", "data-store": s.name, "aria-label": `last closed windows of ${s.name}` },
            el("thead", {}, el("tr", {},
              el("th", {}, "Key"),
              el("th", {}, "Window"),
              el("th", { class: "num" }, "Final value"))),
            this.closedBody)),
      ),
    );
  }

  /** Start drawing and fetching; the card goes at the end of `parent` unless placed already. */
  mount(parent) {
    if (!this.card.isConnected) parent.append(this.card);
    this.makeChart();
    if (this.store.serve) {
      this.closeStream = stream(this.store.serve, {
        onState: (state) => this.setState(state === "live" && !this.updates ? "waiting" : state),
        onData: (obj) => this.onSample(obj),
      });
    } else {
      this.setState("no-serve");
    }
    this.windowsPoll = poll(() => this.fetchWindows(), WINDOWS_POLL_MS);
  }

  makeChart() {
    this.hover = {};
    this.chart?.destroy();
    this.plotEl.replaceChildren();
    const spec = this.spec() ?? "";
    this.absentIsZero = /^(count|sum)\b/.test(spec);
    const { make, explain } = CHARTS[this.chartKind];
    this.explanation = explain(this.store);
    this.chart = new make(this.plotEl, {
      spanMs: this.spanMs,
      gapMs: this.store.window_ms,
      // Sliding windows start at every record: too many to draw each across its bounds.
      dense: this.store.kind === "sliding",
      wholeNumbers: spec === "count",
      format: fmtShort,
      onHover: (hover) => {
        this.hover = hover;
        this.renderLegend();
        this.renderReadout();
      },
    });
    this.render();
  }

  setAggregate(name) {
    this.aggregate = name;
    this.card.dataset.aggregate = name;
    remember(this.storageKey(), name);
    this.makeChart();
  }

  setState(state) {
    this.card.dataset.state = state;
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = STATE_TEXT[state];
    this.waitingEl.textContent = state === "disconnected" && !this.updates
      ? "disconnected — retrying" : "waiting for data";
  }

  setLate(n) {
    if (typeof n !== "number") return;
    this.card.dataset.late = String(n);
    this.lateEl.dataset.late = String(n);
    this.lateEl.textContent = `${fmtInt(n)} late`;
    this.lateEl.classList.toggle("is-late", n > 0);
  }

  /**
   * Take in keys seen in a message. Keys are kept sorted and coloured by their
   * place, so P1 is the same colour on every card and after every reload,
   * whichever key spoke first. A new key redraws the legend and the chart.
   */
  addKeys(keys) {
    const fresh = keys.filter((k) => !this.colors.has(k));
    if (!fresh.length) return;
    this.keys = [...new Set([...this.keys, ...fresh])].sort(KEY_ORDER.compare);
    this.colors = new Map(this.keys.map((k, i) => [k, SERIES_COLORS[i % SERIES_COLORS.length]]));
    this.legendEl.replaceChildren(...this.keys.map((key) => el("li", { "data-key": key },
      el("span", { class: "swatch", style: `background:${this.colors.get(key)}` }),
      el("span", { class: "legend-key" }, key),
      el("span", { class: "legend-value" }, DASH),
    )));
    // uPlot cannot recolour or reorder series: start the chart afresh (it keeps no data of its own).
    if (this.chart) this.makeChart();
  }

  onSample(obj) {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return;
    const now = Date.now();
    this.addKeys(Object.keys(obj));
    this.learn(Object.values(obj));
    this.samples.push({ t: now, obj });
    // Drop samples that scrolled out of view (keep one extra so the line enters from the edge).
    let drop = 0;
    while (drop < this.samples.length - 1 && this.samples[drop + 1].t < now - this.spanMs) drop++;
    if (drop) this.samples.splice(0, drop);

    this.updates += 1;
    this.card.dataset.updates = String(this.updates);
    this.card.dataset.lastUpdate = String(now);
    this.setState("live");
    this.render();
  }

  async fetchWindows() {
    const name = encodeURIComponent(this.store.name);
    try {
      const res = await getJson(`/api/stores/${name}?from=${Date.now() - this.historyMs}`);
      this.windows = (Array.isArray(res.windows) ? res.windows : []).map((w) => ({ ...w, key: String(w.key) }));
      this.addKeys(this.windows.map((w) => w.key));
      this.learn(this.windows.map((w) => w.value));
      const missing = Array.isArray(res.missing) && res.missing.length ? res.missing : null;
      setNote(this.closedNote, res.complete === false
        ? `partial: partition${missing?.length === 1 ? "" : "s"} ${missing ? missing.join(", ") : "?"} unavailable`
        : "", res.complete === false);
      this.render();
      this.renderClosed();
    } catch (err) {
      setNote(this.closedNote, `refresh failed: ${err.message}`, true);
    }
  }

  /** The charted number of a window value or SSE value: one aggregate, or the picked one of several. */
  pick(raw) {
    let v = raw;
    if (this.names) {
      for (const part of this.aggregate.split(".")) v = v && typeof v === "object" ? v[part] : undefined;
    }
    return typeof v === "number" ? v : null;
  }

  /** What the charts draw; they keep nothing else. */
  view() {
    // For count/sum an absent key means nothing arrived in the window: that is 0.
    // For min/max/avg there is no value, so leave a gap.
    const absent = this.absentIsZero ? 0 : null;
    return {
      nowMs: Date.now(),
      keys: this.keys,
      colors: this.colors,
      xs: this.samples.map((s) => s.t / 1000),
      series: this.keys.map((k) => this.samples.map((s) => (k in s.obj ? this.pick(s.obj[k]) : absent))),
      windows: this.windows.map((w) => ({ ...w, v: this.pick(w.value) })),
    };
  }

  render() {
    if (!this.chart) return;
    this.lastView = this.view();
    const drawn = this.chart.update(this.lastView);
    // A hovered open window keeps changing: read it out as it is now.
    const hovered = this.hover.window;
    if (hovered) this.hover = { ...this.hover, window: this.lastView.windows.find((w) => sameWindow(w, hovered)) ?? null };
    this.card.dataset.windows = String(drawn);
    this.waitingEl.hidden = this.samples.length > 0 || drawn > 0;
    this.renderLegend();
    this.renderReadout();
  }

  /** Each key's latest value, or its value under the cursor. */
  renderLegend() {
    const view = this.lastView;
    if (!view) return;
    const idx = this.hover.idx ?? null;
    const hovering = idx !== null && idx < view.xs.length;
    this.legendEl.classList.toggle("is-hover", hovering);
    this.legendEl.title = hovering ? `at ${fmtTime(view.xs[idx] * 1000)}` : "latest values";
    const latest = this.latestByKey(view);
    view.keys.forEach((key, i) => {
      const value = hovering ? view.series[i][idx] : latest.get(key);
      this.legendEl.children[i].querySelector(".legend-value").textContent = fmtValue(value);
    });
  }

  latestByKey(view) {
    const latest = new Map();
    if (view.xs.length) {
      view.keys.forEach((key, i) => latest.set(key, view.series[i][view.xs.length - 1]));
    } else {
      // No SSE route: each key's newest window.
      for (const w of [...view.windows].sort((a, b) => a.end - b.end)) latest.set(w.key, w.v);
    }
    return latest;
  }

  renderReadout() {
    const w = this.hover.window;
    if (!w) {
      this.readoutEl.classList.remove("is-hover");
      this.readoutEl.textContent = this.explanation;
      return;
    }
    this.readoutEl.classList.add("is-hover");
    this.readoutEl.replaceChildren(
      el("strong", {}, w.key), " ",
      el("code", {}, fmtBounds(w.start, w.end, this.store.end_exclusive)), " ",
      fmtWindowValue(w.value), w.closed ? "" : " (open)");
  }

  renderClosed() {
    renderClosedWindows(this.closedBody, this.windows, {
      limit: CLOSED_ROWS,
      endExclusive: this.store.end_exclusive,
      colors: this.colors,
      empty: `No window has closed in the last ${fmtDuration(this.historyMs)}.`,
    });
  }

  close() {
    this.closeStream?.();
    this.windowsPoll?.stop();
    this.chart?.destroy();
    this.card.remove();
  }
}
