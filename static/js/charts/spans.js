// Hopping and sliding windows overlap, so one line per key cannot show them.
// Each closed window is a dot at its end and final value, and a bar across its
// bounds: bold for the newest of each key, a hairline for older ones. Sliding
// windows start at every record, a dozen overlap any moment: for them (`dense`)
// only the newest few get a bar, and the dots are joined into the trace of final
// values. Over all of it runs the line of each key's current window's value from
// the SSE route, as on the tumbling chart; it meets each dot when its window closes.

import { createPlot, historyRange, sameWindow, timeAxis, valueAxis, valueRange, withAlpha } from "./plot.js";
import { lineSeries } from "./timeline.js";

const HOVER_PX = 6;
// Dense charts: how many of each key's newest windows get a bar.
const DENSE_BARS = 3;

export class SpansChart {
  /** `onHover({ idx, window })`: the sample and the window under the cursor, each or null. */
  constructor(container, { wholeNumbers, spanMs, dense, onHover }) {
    this.dense = dense;
    this.keys = [];
    this.view = null;
    this.hovered = null;
    this.spanS = spanMs / 1000;
    this.handle = createPlot(container, {
      cursor: { points: { size: 6 }, drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => this.xRange() },
        y: {
          range: (u, min, max) => {
            const top = Math.max(max ?? 0, this.windowMax ?? 0);
            return valueRange(Math.min(min ?? 0, this.windowMin ?? 0), top);
          },
        },
      },
      axes: [timeAxis(), valueAxis(wholeNumbers)],
      series: [{}],
      hooks: {
        // After the grid, before the lines: the current value stays on top.
        drawAxes: [(u) => this.drawWindows(u)],
        setCursor: [(u) => {
          const window = this.windowAt(u);
          if (window !== this.hovered) {
            this.hovered = window;
            u.redraw(false, false);
          }
          onHover({ idx: this.view?.xs.length ? u.cursor.idx ?? null : null, window });
        }],
      },
    }, [[]]);
  }

  xRange() {
    return historyRange(this.view, this.spanS);
  }

  update(view) {
    const plot = this.handle.plot;
    while (this.keys.length < view.keys.length) {
      const key = view.keys[this.keys.length];
      this.keys.push(key);
      plot.addSeries(lineSeries(key, view.colors.get(key)));
    }
    this.view = view;
    const [from, to] = this.xRange();
    this.visible = view.windows.filter((w) => w.closed && typeof w.v === "number"
      && w.end / 1000 >= from && w.start / 1000 <= to);
    // Newest last, so it is drawn on top.
    this.visible.sort((a, b) => a.end - b.end || a.start - b.start);
    this.hovered = this.visible.find((w) => sameWindow(w, this.hovered)) ?? null;
    // Each key's windows, newest last.
    this.byKey = new Map();
    for (const w of this.visible) {
      if (!this.byKey.has(w.key)) this.byKey.set(w.key, []);
      this.byKey.get(w.key).push(w);
    }
    this.windowMax = Math.max(0, ...this.visible.map((w) => w.v));
    this.windowMin = Math.min(0, ...this.visible.map((w) => w.v));
    // Without samples yet (or without a serve route) uPlot still needs an x extent.
    const data = view.xs.length
      ? [view.xs, ...view.series]
      : [[from, to], ...view.keys.map(() => [null, null])];
    plot.setData(data);
    return this.visible.length;
  }

  drawWindows(u) {
    if (!this.visible?.length) return;
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const px = devicePixelRatio || 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    const pos = (w) => ({
      x0: u.valToPos(w.start / 1000, "x", true),
      x1: Math.max(u.valToPos(w.end / 1000, "x", true), u.valToPos(w.start / 1000, "x", true) + px),
      y: Math.round(u.valToPos(w.v, "y", true)),
    });
    const bar = (w, color, alpha, lineWidth, ticks) => {
      const { x0, x1, y } = pos(w);
      ctx.strokeStyle = withAlpha(color, alpha);
      ctx.lineWidth = lineWidth * px;
      ctx.beginPath();
      ctx.moveTo(x0, y);
      ctx.lineTo(x1, y);
      if (ticks) {
        // End ticks, so windows of equal value that touch still read as two.
        const tick = 4 * px;
        ctx.moveTo(x0, y - tick);
        ctx.lineTo(x0, y + tick);
        ctx.moveTo(x1, y - tick);
        ctx.lineTo(x1, y + tick);
      }
      ctx.stroke();
    };
    for (const [key, windows] of this.byKey) {
      const color = this.view.colors.get(key);
      const newest = windows.length - 1;
      if (this.dense) {
        ctx.strokeStyle = withAlpha(color, 0.35);
        ctx.lineWidth = 1 * px;
        ctx.beginPath();
        windows.forEach((w, i) => {
          const { x1, y } = pos(w);
          if (i === 0) ctx.moveTo(x1, y); else ctx.lineTo(x1, y);
        });
        ctx.stroke();
      }
      windows.forEach((w, i) => {
        const age = newest - i;
        if (age === 0) return; // drawn last, on top
        if (!this.dense) bar(w, color, 0.22, 1.5, false);
        else if (age < DENSE_BARS) bar(w, color, 0.45, 2, true);
        const { x1, y } = pos(w);
        ctx.fillStyle = withAlpha(color, 0.75);
        ctx.beginPath();
        ctx.arc(x1, y, (this.dense ? 2 : 2.5) * px, 0, 2 * Math.PI);
        ctx.fill();
      });
      bar(windows[newest], color, 0.9, 3, true);
    }
    if (this.hovered) bar(this.hovered, this.view.colors.get(this.hovered.key), 1, 4, true);
    ctx.restore();
  }

  /** The closed window nearest the cursor, if one is within a few pixels. */
  windowAt(u) {
    const { left, top } = u.cursor;
    if (!this.visible?.length || left == null || left < 0) return null;
    let best = null;
    let bestDist = HOVER_PX;
    for (const w of this.visible) {
      const x0 = u.valToPos(w.start / 1000, "x");
      const x1 = u.valToPos(w.end / 1000, "x");
      if (left < x0 - 2 || left > x1 + 2) continue;
      const dist = Math.abs(u.valToPos(w.v, "y") - top);
      // Ties go to the newer window, which is drawn on top.
      if (dist <= bestDist) { best = w; bestDist = dist; }
    }
    return best;
  }

  destroy() {
    this.handle.destroy();
  }
}
