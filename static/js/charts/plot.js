// What every store chart shares: uPlot, the palette, axis styling, and a plot
// that follows its container's width.

import uPlot from "../../vendor/uPlot.esm.js";
import { fmtTime } from "../format.js";

export { uPlot };

export const CHART_HEIGHT = 220;

// A restrained palette, distinguishable for the common kinds of colour blindness.
export const SERIES_COLORS = [
  "#2563eb", "#d97706", "#059669", "#7c3aed",
  "#dc2626", "#0891b2", "#db2777", "#65a30d",
];

// Counts are whole numbers: never put ticks at 0.5.
const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6, 1e7];

const AXIS = {
  stroke: "#64748b",
  grid: { stroke: "#eef1f5", width: 1 },
  ticks: { stroke: "#e2e8f0", width: 1 },
  font: "11px system-ui, sans-serif",
};

export const LABEL_FONT = "600 11px system-ui, sans-serif";

export function timeAxis() {
  return { ...AXIS, space: 72, values: (u, ticks) => ticks.map((t) => fmtTime(t * 1000)) };
}

export function valueAxis(wholeNumbers) {
  return { ...AXIS, size: 48, ...(wholeNumbers ? { incrs: COUNT_INCRS } : {}) };
}

/** A y range from 0 (or below, for negative values) to a little above the largest value. */
export function valueRange(min, max) {
  return [Math.min(0, Math.floor(min ?? 0)), Math.max(1, Math.ceil((max ?? 0) * 1.15))];
}

// A history chart never shows less than this, however little data there is yet.
const MIN_SPAN_S = 30;

/**
 * The x range (seconds) of a history chart at `view`: the last `spanS` seconds,
 * or less while the data does not reach that far back, so a chart of a store
 * that has just started fills its width and widens as history grows.
 */
export function historyRange(view, spanS) {
  const end = (view?.nowMs ?? Date.now()) / 1000;
  let first = end;
  for (const w of view?.windows ?? []) first = Math.min(first, w.start / 1000);
  if (view?.xs.length) first = Math.min(first, view.xs[0]);
  return [Math.max(end - spanS, Math.min(first, end - MIN_SPAN_S)), end];
}

/** Whether `a` and `b` are the same window (charts get fresh objects on every update). */
export function sameWindow(a, b) {
  return !!a && !!b && a.partition === b.partition && a.key === b.key && a.start === b.start && a.end === b.end;
}

/** `#rrggbb` with opacity `alpha`, for canvas drawing. */
export function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/**
 * A uPlot in `container` at the container's width, resized with it. uPlot's
 * own legend is off: each card shows latest values in its legend instead.
 */
export function createPlot(container, options, data) {
  const plot = new uPlot({
    width: Math.max(container.clientWidth, 200),
    height: CHART_HEIGHT,
    legend: { show: false },
    ...options,
  }, data, container);
  let frame = 0;
  const observer = new ResizeObserver(() => {
    // Defer to the next frame: resizing synchronously inside the observer
    // callback can trigger "ResizeObserver loop" errors.
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      const width = container.clientWidth;
      if (width > 0 && width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT });
    });
  });
  observer.observe(container);
  return {
    plot,
    destroy() {
      cancelAnimationFrame(frame);
      observer.disconnect();
      plot.destroy();
    },
  };
}
