// Tumbling windows: one stepped line per key, the value of the key's current
// window as it arrived every second on the store's SSE route.

import { createPlot, timeAxis, uPlot, valueAxis, valueRange } from "./plot.js";

// Until that much data has arrived the chart starts narrower and widens as it fills.
const MIN_SPAN_S = 30;
// A window's value holds until the next sample: draw steps, so a window closing
// shows as a drop rather than a slope.
const STEPPED = uPlot.paths.stepped({ align: 1 });

export function lineSeries(key, color) {
  return { label: key, stroke: color, width: 2, paths: STEPPED, points: { show: false } };
}

export class TimelineChart {
  /** `onHover({ idx })`: the sample under the cursor, or null. */
  constructor(container, { wholeNumbers, spanMs, onHover }) {
    this.keys = [];
    this.xs = [];
    const span = spanMs / 1000;
    this.handle = createPlot(container, {
      cursor: { points: { size: 6 }, drag: { x: false, y: false } },
      scales: {
        x: {
          time: true,
          // A scrolling window ending at the newest sample, so the chart moves
          // steadily even before the full span of data has arrived.
          range: () => {
            const xs = this.xs;
            const end = xs.length ? xs[xs.length - 1] : Date.now() / 1000;
            const seen = xs.length ? end - xs[0] : 0;
            return [end - Math.min(span, Math.max(MIN_SPAN_S, seen)), end];
          },
        },
        y: { range: (u, min, max) => valueRange(min, max) },
      },
      axes: [timeAxis(), valueAxis(wholeNumbers)],
      series: [{}],
      hooks: { setCursor: [(u) => onHover({ idx: u.cursor.idx ?? null })] },
    }, [[]]);
  }

  /** Draw `view` (see StoreCard.view). Returns how many windows it drew across their bounds: none. */
  update(view) {
    const plot = this.handle.plot;
    while (this.keys.length < view.keys.length) {
      const key = view.keys[this.keys.length];
      this.keys.push(key);
      plot.addSeries(lineSeries(key, view.colors.get(key)));
    }
    this.xs = view.xs;
    plot.setData([view.xs, ...view.series]);
    return 0;
  }

  destroy() {
    this.handle.destroy();
  }
}
