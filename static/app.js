// kfn dashboard: plain ES module, no build step.
//
// Every string that comes from the API reaches the page through textContent or
// an attribute (see `el`), never through innerHTML: function names, error texts
// and event messages are user-controlled.

import uPlot from "./vendor/uPlot.esm.js";

const POLL_MS = 2000;
const STORES_POLL_MS = 10000;
const HEALTH_POLL_MS = 3000;
const CHART_SPAN_S = 120;
// Until that much data has arrived the chart starts narrower and widens as it fills.
const CHART_MIN_SPAN_S = 30;
const CHART_HEIGHT = 220;
const STEPPED = uPlot.paths.stepped({ align: 1 });
const MAX_EVENTS = 200;
// A restrained palette, distinguishable for the common kinds of colour blindness.
const SERIES_COLORS = [
  "#2563eb", "#d97706", "#059669", "#7c3aed",
  "#dc2626", "#0891b2", "#db2777", "#65a30d",
];

// ---------------------------------------------------------------- helpers

/** Build an element. `attrs` keys starting with "on" are listeners; children are nodes or text. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);
const DASH = "—";

function fmtInt(n) {
  return typeof n === "number" ? n.toLocaleString() : DASH;
}

function fmtRate(n) {
  return typeof n === "number"
    ? n.toLocaleString(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 })
    : DASH;
}

function fmtValue(n) {
  if (typeof n !== "number") return DASH;
  return Number.isInteger(n) ? n.toLocaleString() : n.toLocaleString(undefined, { maximumFractionDigits: 2 });
}

function fmtBytes(n) {
  if (typeof n !== "number") return DASH;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

function fmtTime(ms, withMillis = false) {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour12: false });
  return withMillis ? `${time}.${String(d.getMilliseconds()).padStart(3, "0")}` : time;
}

function fmtLoadedAt(ms) {
  if (typeof ms !== "number") return DASH;
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? fmtTime(ms) : d.toLocaleString([], { hour12: false });
}

function fmtWindow(ms) {
  if (typeof ms !== "number") return "";
  if (ms % 60000 === 0) return `${ms / 60000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

/** Run `task` now and then `ms` after each completion (never overlapping). */
function poll(task, ms) {
  const tick = async () => {
    try {
      await task();
    } finally {
      setTimeout(tick, ms);
    }
  };
  tick();
}

function badge(text, tone) {
  return el("span", { class: `badge badge-${tone}` }, text);
}

/** Replace the rows of a tbody, or show one explanatory row when there are none. */
function fillBody(tbody, rows, columns, emptyText) {
  if (rows.length === 0) {
    tbody.replaceChildren(el("tr", { class: "empty-row" }, el("td", { colspan: columns }, emptyText)));
  } else {
    tbody.replaceChildren(...rows);
  }
}

function setNote(id, text, isError = false) {
  const note = $(id);
  note.textContent = text;
  note.classList.toggle("is-error", isError);
}

// ---------------------------------------------------------------- header

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
    setTimeout(loadInfo, POLL_MS);
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

/** Problems worth a glance from anywhere on the page, shown as links in the top bar. */
const attention = new Map(); // area -> { names, text, href }

function setAttention(area, names, describe, href) {
  if (names.length) attention.set(area, { names, text: describe(names.length), href });
  else attention.delete(area);
  const box = $("attention");
  box.replaceChildren(...[...attention.values()].map((a) =>
    el("a", { class: "pill", "data-state": "bad", href: a.href, title: a.names.join(", ") },
      el("span", { class: "dot", "aria-hidden": "true" }), a.text)));
  box.hidden = attention.size === 0;
}

// ---------------------------------------------------------------- functions

const FUNCTION_TONES = { ready: "ok", compiling: "info", error: "bad", missing: "warn" };
const FUNCTION_PROBLEMS = new Set(["error", "missing"]);

function functionRow(f) {
  const hash = typeof f.hash === "string" ? f.hash : null;
  const loaded = el("td", { class: "nowrap" }, fmtLoadedAt(f.loaded_at_ms));
  if (typeof f.compile_ms === "number") {
    const ms = f.compile_ms < 1 ? "<1" : fmtInt(f.compile_ms);
    loaded.append(el("div", { class: "sub" }, `compiled in ${ms} ms`));
  }
  const status = el("td", {}, badge(f.status, FUNCTION_TONES[f.status] ?? "muted"));
  if (f.status === "error") {
    // The registry keeps the last good version running when a new one is rejected.
    status.append(el("div", { class: "sub nowrap" }, hash ? "previous version serving" : "not loaded"));
  }
  return el("tr", { class: FUNCTION_PROBLEMS.has(f.status) ? `row-${FUNCTION_TONES[f.status]}` : null,
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

let functionsJson = "";
async function refreshFunctions() {
  try {
    const list = await getJson("/api/functions");
    const json = JSON.stringify(list);
    if (json !== functionsJson) {
      functionsJson = json;
      fillBody($("functions-body"), list.map(functionRow), 8, "No functions in the functions directory.");
    }
    const ready = list.filter((f) => f.status === "ready").length;
    const errors = list.filter((f) => f.status === "error").length;
    const missing = list.filter((f) => f.status === "missing").length;
    const extra = [errors ? `${errors} rejected` : null, missing ? `${missing} missing` : null].filter(Boolean);
    setNote("functions-note", [`${ready} of ${list.length} ready`, ...extra].join(" · "), extra.length > 0);
    setAttention("functions", list.filter((f) => FUNCTION_PROBLEMS.has(f.status)).map((f) => f.name),
      (n) => `${n} function${n === 1 ? "" : "s"} failing`, "#functions-section");
  } catch (err) {
    setNote("functions-note", `refresh failed: ${err.message}`, true);
  }
}

// ---------------------------------------------------------------- bindings

const BINDING_TONES = { running: "ok", starting: "info", paused: "warn", stopped: "muted" };

function topics(b) {
  const input = b.input ?? DASH;
  const output = b.output ?? DASH;
  return el("span", { class: "topics" }, el("code", {}, input), el("span", { class: "arrow" }, "→"), el("code", {}, output));
}

function bindingRow(b) {
  const status = el("td", {}, badge(b.status, BINDING_TONES[b.status] ?? "muted"));
  if (b.status_reason) status.append(el("div", { class: "sub wrap" }, b.status_reason));
  const errCell = (n) => el("td", { class: `num${n > 0 ? " is-bad" : ""}` }, fmtInt(n));
  // A consumer has no output topic, so nothing to count there.
  const noOut = b.kind === "consumer" && !b.output;
  const outCount = noOut ? DASH : fmtInt(b.records_out);
  const outRate = noOut ? DASH : fmtRate(b.rate_out);
  const inTitle = b.kind === "supplier" ? "calls of supply()" : null;
  return el("tr", { class: b.status === "paused" ? "row-warn" : null, "data-name": b.name, "data-status": b.status },
    el("td", { class: "strong" }, b.name),
    el("td", {}, b.kind),
    el("td", { class: "nowrap" }, b.function ?? DASH),
    el("td", { class: "nowrap" }, topics(b)),
    status,
    // On narrow screens the rate columns are hidden and each rate shows under its count.
    el("td", { class: "num", title: inTitle }, fmtInt(b.records_in),
      el("div", { class: "sub rate-inline" }, `${fmtRate(b.rate_in)}/s`)),
    el("td", { class: "num" }, outCount, noOut ? null : el("div", { class: "sub rate-inline" }, `${outRate}/s`)),
    errCell(b.errors),
    errCell(b.dead_lettered),
    el("td", { class: "num col-rate", title: inTitle }, fmtRate(b.rate_in)),
    el("td", { class: "num col-rate" }, outRate),
  );
}

async function refreshBindings() {
  try {
    const list = await getJson("/api/bindings");
    fillBody($("bindings-body"), list.map(bindingRow), 11, "No bindings configured.");
    const running = list.filter((b) => b.status === "running").length;
    const paused = list.filter((b) => b.status === "paused");
    setNote("bindings-note", `${running} of ${list.length} running${paused.length ? ` · ${paused.length} paused` : ""}`,
      paused.length > 0);
    setAttention("bindings", paused.map((b) => b.name),
      (n) => `${n} binding${n === 1 ? "" : "s"} paused`, "#bindings-section");
  } catch (err) {
    setNote("bindings-note", `refresh failed: ${err.message}`, true);
  }
}

// ---------------------------------------------------------------- live charts

/**
 * One card per served store: an EventSource on the store's serve route and a
 * uPlot line chart of every key over the last CHART_SPAN_S seconds.
 *
 * The card exposes its state for tests and tooling: data-state
 * (connecting | waiting | live | disconnected) and data-updates (messages seen).
 */
class LiveChart {
  constructor(store) {
    this.store = store;
    this.updates = 0;
    this.keys = []; // in order of first appearance; series i+1 in uPlot
    this.xs = []; // seconds since epoch
    this.ys = []; // one array per key, aligned with xs
    this.latest = new Map();
    this.hoverIdx = null;
    // For count/sum an absent key means nothing arrived in the window: that is 0.
    // For min/max/avg there is no value, so leave a gap.
    this.absentIsZero = store.aggregate === "count" || store.aggregate === "sum";
    this.buildCard();
    this.connect();
  }

  buildCard() {
    const s = this.store;
    this.stateEl = el("span", { class: "conn", "data-state": "connecting" }, "connecting…");
    this.legendEl = el("ul", { class: "legend", "aria-label": "latest values" });
    this.plotEl = el("div", { class: "plot" });
    this.waitingEl = el("div", { class: "plot-overlay" }, "waiting for data");
    const details = [s.aggregate, s.window_ms ? `${fmtWindow(s.window_ms)} window` : null]
      .filter(Boolean).join(" · ");
    this.card = el("article", {
      class: "chart-card",
      "data-store": s.name,
      "data-serve": s.serve,
      "data-state": "connecting",
      "data-updates": "0",
    },
      el("div", { class: "chart-head" },
        el("div", {},
          el("h3", {}, s.name),
          el("div", { class: "sub" }, el("code", {}, s.serve), details ? ` · ${details}` : ""),
        ),
        this.stateEl,
      ),
      this.legendEl,
      el("div", { class: "plot-wrap" }, this.plotEl, this.waitingEl),
    );
  }

  mount(parent) {
    parent.append(this.card);
    this.plot = new uPlot(this.plotOptions(), [this.xs], this.plotEl);
    this.resizeObs = new ResizeObserver(() => {
      // Defer to the next frame: resizing synchronously inside the observer
      // callback can trigger "ResizeObserver loop" errors.
      cancelAnimationFrame(this.resizeFrame);
      this.resizeFrame = requestAnimationFrame(() => this.resize());
    });
    this.resizeObs.observe(this.plotEl);
  }

  plotOptions() {
    const axis = {
      stroke: "#64748b",
      grid: { stroke: "#eef1f5", width: 1 },
      ticks: { stroke: "#e2e8f0", width: 1 },
      font: "11px system-ui, sans-serif",
    };
    // Counts are whole numbers: never put ticks at 0.5.
    const yIncrs = this.store.aggregate === "count"
      ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6, 1e7]
      : undefined;
    return {
      width: Math.max(this.plotEl.clientWidth, 200),
      height: CHART_HEIGHT,
      legend: { show: false }, // our own legend shows latest values (below)
      cursor: { points: { size: 6 }, drag: { x: false, y: false } },
      scales: {
        x: {
          time: true,
          // A scrolling window ending at the newest sample, so the chart moves
          // steadily even before CHART_SPAN_S of data has arrived.
          range: () => {
            const end = this.xs.length ? this.xs[this.xs.length - 1] : Date.now() / 1000;
            const seen = this.xs.length ? end - this.xs[0] : 0;
            return [end - Math.min(CHART_SPAN_S, Math.max(CHART_MIN_SPAN_S, seen)), end];
          },
        },
        y: {
          range: (u, min, max) => [
            Math.min(0, Math.floor(min ?? 0)),
            Math.max(1, Math.ceil((max ?? 0) * 1.15)),
          ],
        },
      },
      axes: [
        { ...axis, space: 72, values: (u, ticks) => ticks.map((t) => fmtTime(t * 1000)) },
        { ...axis, size: 48, ...(yIncrs ? { incrs: yIncrs } : {}) },
      ],
      series: [{}],
      hooks: {
        setCursor: [(u) => {
          this.hoverIdx = u.cursor.idx ?? null;
          this.renderLegend();
        }],
      },
    };
  }

  resize() {
    const width = this.plotEl.clientWidth;
    if (width > 0 && this.plot && width !== this.plot.width) {
      this.plot.setSize({ width, height: CHART_HEIGHT });
    }
  }

  connect() {
    this.source = new EventSource(this.store.serve);
    this.source.onopen = () => this.setState(this.updates ? "live" : "waiting");
    this.source.onmessage = (ev) => this.onMessage(ev);
    this.source.onerror = () => {
      this.setState("disconnected");
      // EventSource retries by itself unless the server answered with an error
      // status or the wrong content type; then retry by hand.
      if (this.source.readyState === EventSource.CLOSED) {
        this.source = null;
        setTimeout(() => { if (!this.closed) this.connect(); }, 3000);
      }
    };
  }

  setState(state) {
    this.card.dataset.state = state;
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = {
      connecting: "connecting…",
      waiting: "connected",
      live: "live",
      disconnected: "disconnected — retrying",
    }[state];
    this.waitingEl.textContent = state === "disconnected" && !this.updates
      ? "disconnected — retrying" : "waiting for data";
  }

  onMessage(ev) {
    let obj;
    try {
      obj = JSON.parse(ev.data);
    } catch {
      return; // not ours to chart; the runtime only sends JSON objects
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return;

    const now = Date.now() / 1000;
    for (const key of Object.keys(obj)) {
      if (!this.keys.includes(key)) this.addKey(key);
    }
    this.xs.push(now);
    this.keys.forEach((key, i) => {
      const raw = obj[key];
      const value = typeof raw === "number" ? raw : (raw === undefined && this.absentIsZero ? 0 : null);
      this.ys[i].push(value);
      this.latest.set(key, value);
    });
    // Drop samples that scrolled out of view (keep one extra so the line enters from the edge).
    let drop = 0;
    while (drop < this.xs.length - 1 && this.xs[drop + 1] < now - CHART_SPAN_S) drop++;
    if (drop) {
      this.xs.splice(0, drop);
      this.ys.forEach((ys) => ys.splice(0, drop));
    }

    this.updates += 1;
    this.card.dataset.updates = String(this.updates);
    this.card.dataset.lastUpdate = String(Date.now());
    this.waitingEl.hidden = true;
    this.setState("live");
    this.plot.setData([this.xs, ...this.ys]);
    this.renderLegend();
  }

  addKey(key) {
    const color = SERIES_COLORS[this.keys.length % SERIES_COLORS.length];
    this.keys.push(key);
    // Earlier samples had no value for this key.
    this.ys.push(this.xs.map(() => (this.absentIsZero ? 0 : null)));
    this.plot.addSeries({
      label: key,
      stroke: color,
      width: 2,
      // A window's value holds until the next sample: draw steps, so a window
      // closing shows as a drop rather than a slope.
      paths: STEPPED,
      points: { show: false },
    });
    this.legendEl.append(el("li", { "data-key": key },
      el("span", { class: "swatch", style: `background:${color}` }),
      el("span", { class: "legend-key" }, key),
      el("span", { class: "legend-value" }, DASH),
    ));
  }

  renderLegend() {
    const idx = this.hoverIdx;
    const hovering = idx !== null && idx < this.xs.length;
    this.legendEl.classList.toggle("is-hover", hovering);
    this.legendEl.title = hovering ? `at ${fmtTime(this.xs[idx] * 1000)}` : "latest values";
    this.keys.forEach((key, i) => {
      const value = hovering ? this.ys[i][idx] : this.latest.get(key);
      this.legendEl.children[i].querySelector(".legend-value").textContent = fmtValue(value);
    });
  }

  close() {
    this.closed = true;
    this.source?.close();
    this.resizeObs?.disconnect();
    this.plot?.destroy();
    this.card.remove();
  }
}

const charts = new Map(); // "name serve" -> LiveChart

async function refreshStores() {
  const container = $("charts");
  const empty = $("charts-empty");
  try {
    const stores = (await getJson("/api/stores")).filter((s) => typeof s.serve === "string" && s.serve);
    const wanted = new Map(stores.map((s) => [`${s.name} ${s.serve}`, s]));
    for (const [id, chart] of charts) {
      if (!wanted.has(id)) { chart.close(); charts.delete(id); }
    }
    for (const [id, store] of wanted) {
      if (charts.has(id)) continue;
      const chart = new LiveChart(store);
      charts.set(id, chart);
      chart.mount(container);
    }
    empty.hidden = charts.size > 0;
    empty.textContent = "No store has a serve route. Add `serve: /path` to an analytics stage in kfn.yaml.";
    setNote("charts-note", "last 2 minutes");
  } catch (err) {
    if (charts.size === 0) empty.textContent = "Could not load stores.";
    setNote("charts-note", `refresh failed: ${err.message}`, true);
  }
}

// ---------------------------------------------------------------- events

const EVENT_TONES = {
  "function-loaded": "ok",
  "function-rejected": "bad",
  "function-removed": "warn",
  "binding-paused": "warn",
  "binding-resumed": "ok",
  "record-failed": "bad",
  config: "info",
  broker: "accent",
  info: "muted",
};

const seenEvents = new Set();

function addEvent(ev) {
  const list = $("events");
  // The server replays recent history on every (re)connect: skip what we have.
  const id = `${ev.ts_ms}|${ev.kind}|${ev.subject}|${ev.message}`;
  if (seenEvents.has(id)) return;
  seenEvents.add(id);

  const tone = EVENT_TONES[ev.kind] ?? "muted";
  const ts = typeof ev.ts_ms === "number" ? ev.ts_ms : Date.now();
  const item = el("li", { class: `event tone-${tone}`, "data-kind": ev.kind, "data-ts": ts, "data-id": id },
    el("time", { datetime: new Date(ts).toISOString() }, fmtTime(ts, true)),
    el("span", { class: `badge badge-${tone}` }, ev.kind ?? "event"),
    el("span", { class: "event-body" },
      ev.subject ? el("span", { class: "event-subject" }, ev.subject) : null,
      el("span", { class: "event-message" }, ev.message ?? ""),
    ),
  );
  // Newest first; replayed history can arrive out of order relative to the list.
  let before = list.firstElementChild;
  while (before && Number(before.dataset.ts) > ts) before = before.nextElementSibling;
  list.insertBefore(item, before);
  while (list.children.length > MAX_EVENTS) {
    seenEvents.delete(list.lastElementChild.dataset.id);
    list.lastElementChild.remove();
  }
  $("events-empty").hidden = true;
}

function connectEvents() {
  const conn = $("events-conn");
  const setConn = (state, text) => { conn.dataset.state = state; conn.textContent = text; };
  const source = new EventSource("/api/events");
  source.onopen = () => setConn("live", "live");
  source.onmessage = (msg) => {
    try {
      const ev = JSON.parse(msg.data);
      if (ev && typeof ev === "object") addEvent(ev);
    } catch {
      // ignore malformed frames; the feed is informational
    }
  };
  source.onerror = () => {
    setConn("disconnected", "disconnected — retrying");
    if (source.readyState === EventSource.CLOSED) setTimeout(connectEvents, 3000);
  };
}

// ---------------------------------------------------------------- publish

function setupPublish() {
  const form = $("publish-form");
  const result = $("publish-result");
  const button = $("publish-submit");
  const show = (state, ...children) => {
    result.dataset.state = state;
    result.replaceChildren(...children);
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const topic = $("publish-topic").value.trim();
    const key = $("publish-key").value;
    const value = $("publish-value").value;
    if (!topic) return;
    let url = `/api/topics/${encodeURIComponent(topic)}`;
    if (key !== "") url += `?key=${encodeURIComponent(key)}`;

    button.disabled = true;
    show("pending", "Publishing…");
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream" },
        body: value,
      });
      const text = await res.text();
      let body = null;
      try { body = JSON.parse(text); } catch { /* plain-text error */ }
      if (res.ok && body && typeof body === "object") {
        show("ok",
          el("div", { class: "result-summary" },
            "Published to ", el("code", {}, body.topic ?? topic),
            " · partition ", el("strong", { class: "result-partition" }, String(body.partition)),
            " · offset ", el("strong", { class: "result-offset" }, String(body.offset)),
          ),
          el("pre", { class: "result-json" }, JSON.stringify(body)),
        );
      } else {
        const message = body && typeof body.error === "string" ? body.error : text || res.statusText;
        show("error", el("div", { class: "result-summary" }, `HTTP ${res.status}: `, message));
      }
    } catch (err) {
      show("error", el("div", { class: "result-summary" }, `Request failed: ${err.message}`));
    } finally {
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- start

loadInfo();
poll(refreshHealth, HEALTH_POLL_MS);
poll(refreshStores, STORES_POLL_MS);
poll(refreshFunctions, POLL_MS);
poll(refreshBindings, POLL_MS);
connectEvents();
setupPublish();
