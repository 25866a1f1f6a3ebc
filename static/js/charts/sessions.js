// Session windows: one lane per key, one bar per session from its first to its
// last record, labelled with the charted aggregate. A session still open is
// drawn hollow, with a dotted tail as long as the gap: a record before the tail
// ends joins it; after that the session closes.

import { LABEL_FONT, createPlot, historyRange, sameWindow, timeAxis, withAlpha } from "./plot.js";

const BAR_MAX_PX = 22;
const BAR_MIN_WIDTH_PX = 3;
const HOVER_PX = 3;

export class SessionsChart {
  /** `onHover({ window })`: the session under the cursor, or null. */
  constructor(container, { spanMs, gapMs, format, onHover }) {
    this.view = null;
    this.lanes = []; // keys, top lane first
    this.hovered = null;
    this.spanS = spanMs / 1000;
    this.gapMs = gapMs;
    this.format = format;
    this.handle = createPlot(container, {
      cursor: { y: false, points: { show: false }, drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => this.xRange() },
        y: { range: () => [-0.5, Math.max(this.lanes.length, 1) - 0.5] },
      },
      axes: [
        timeAxis(),
        {
          stroke: "#475569",
          font: LABEL_FONT,
          grid: { show: false },
          ticks: { show: false },
          // Key names, one per lane, instead of numbers.
          splits: () => this.lanes.map((_, i) => this.laneY(i)),
          values: (u, splits) => splits.map((y) => this.lanes[this.lanes.length - 1 - y] ?? ""),
          size: () => Math.min(140, 16 + 7 * Math.max(2, ...this.lanes.map((k) => k.length))),
        },
      ],
      // A series uPlot can range the y scale by; it draws nothing.
      series: [{}, { scale: "y", paths: () => null, points: { show: false } }],
      hooks: {
        drawClear: [(u) => this.drawLanes(u)],
        draw: [(u) => this.drawSessions(u)],
        setCursor: [(u) => {
          const window = this.windowAt(u);
          if (window !== this.hovered) {
            this.hovered = window;
            u.redraw(false, false);
          }
          onHover({ window });
        }],
      },
    }, [[], []]);
  }

  xRange() {
    return historyRange(this.view, this.spanS);
  }

  /** The y value of lane `i` (0 = top). */
  laneY(i) {
    return this.lanes.length - 1 - i;
  }

  update(view) {
    this.view = view;
    const [from, to] = this.xRange();
    this.lanes = [...view.keys];
    this.visible = view.windows.filter((w) => w.end / 1000 + this.gapMs / 1000 >= from && w.start / 1000 <= to);
    this.visible.sort((a, b) => a.start - b.start);
    this.hovered = this.visible.find((w) => sameWindow(w, this.hovered)) ?? null;
    this.handle.plot.setData([[from, to], [0, 0]]);
    return this.visible.length;
  }

  barHeight(u) {
    const lane = u.bbox.height / Math.max(this.lanes.length, 1);
    return Math.max(6, Math.min(BAR_MAX_PX * devicePixelRatio, lane * 0.4));
  }

  drawLanes(u) {
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const lane = height / Math.max(this.lanes.length, 1);
    ctx.save();
    ctx.fillStyle = "#f8fafc";
    for (let i = 1; i < this.lanes.length; i += 2) ctx.fillRect(left, top + i * lane, width, lane);
    ctx.restore();
  }

  drawSessions(u) {
    if (!this.visible?.length) return;
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const px = devicePixelRatio || 1;
    const bar = this.barHeight(u);
    const labelEnd = new Map(); // lane -> right edge of its last label, to avoid overlaps
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    ctx.font = LABEL_FONT.replace("11px", `${11 * px}px`);
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    for (const w of this.visible) {
      const lane = this.lanes.indexOf(w.key);
      if (lane < 0) continue;
      const color = this.view.colors.get(w.key);
      const y = u.valToPos(this.laneY(lane), "y", true);
      const x0 = u.valToPos(w.start / 1000, "x", true);
      const x1 = Math.max(u.valToPos(w.end / 1000, "x", true), x0 + BAR_MIN_WIDTH_PX * px);
      const hot = w === this.hovered;
      if (w.closed) {
        ctx.fillStyle = withAlpha(color, hot ? 1 : 0.8);
        ctx.fillRect(x0, y - bar / 2, x1 - x0, bar);
      } else {
        const tailEnd = Math.min(u.valToPos((w.end + this.gapMs) / 1000, "x", true), left + width);
        ctx.strokeStyle = withAlpha(color, 0.8);
        ctx.lineWidth = 1.5 * px;
        ctx.setLineDash([2 * px, 3 * px]);
        ctx.beginPath();
        ctx.moveTo(x1, y);
        ctx.lineTo(Math.max(tailEnd, x1), y);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = withAlpha(color, hot ? 0.5 : 0.25);
        ctx.fillRect(x0, y - bar / 2, x1 - x0, bar);
        ctx.strokeRect(x0, y - bar / 2, x1 - x0, bar);
      }
      const label = this.format(w.v);
      const mid = (x0 + x1) / 2;
      const half = ctx.measureText(label).width / 2;
      // Skip a label that would overlap the previous one or stick out of the plot.
      if (mid - half > Math.max(labelEnd.get(lane) ?? -Infinity, left) + 4 * px && mid + half < left + width) {
        ctx.fillStyle = hot ? "#0f172a" : "#334155";
        ctx.fillText(label, mid, y - bar / 2 - 3 * px);
        labelEnd.set(lane, mid + half);
      }
    }
    ctx.restore();
  }

  /** The session under the cursor, if any. */
  windowAt(u) {
    const { left, top } = u.cursor;
    if (!this.visible?.length || left == null || left < 0) return null;
    const lane = this.lanes.length - 1 - Math.round(u.posToVal(top, "y"));
    const key = this.lanes[lane];
    let best = null;
    let bestDist = Infinity;
    for (const w of this.visible) {
      if (w.key !== key) continue;
      const x0 = u.valToPos(w.start / 1000, "x");
      const x1 = Math.max(u.valToPos(w.end / 1000, "x"), x0 + BAR_MIN_WIDTH_PX);
      const dist = left < x0 ? x0 - left : left > x1 ? left - x1 : 0;
      if (dist <= HOVER_PX && dist < bestDist) { best = w; bestDist = dist; }
    }
    return best;
  }

  destroy() {
    this.handle.destroy();
  }
}
