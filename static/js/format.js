// Formatting of numbers, times and window bounds for display.

export const DASH = "—";

export function fmtInt(n) {
  return typeof n === "number" ? n.toLocaleString() : DASH;
}

export function fmtRate(n) {
  return typeof n === "number"
    ? n.toLocaleString(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 })
    : DASH;
}

export function fmtValue(n) {
  if (typeof n !== "number") return DASH;
  return Number.isInteger(n) ? n.toLocaleString() : n.toLocaleString(undefined, { maximumFractionDigits: 2 });
}

const COMPACT = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

/** A number short enough for a chart label: `7`, `8.4K`, `1.2M`. */
export function fmtShort(n) {
  return typeof n === "number" ? COMPACT.format(n) : DASH;
}

export function fmtBytes(n) {
  if (typeof n !== "number") return DASH;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export function fmtTime(ms, withMillis = false) {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour12: false });
  return withMillis ? `${time}.${String(d.getMilliseconds()).padStart(3, "0")}` : time;
}

export function fmtLoadedAt(ms) {
  if (typeof ms !== "number") return DASH;
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? fmtTime(ms) : d.toLocaleString([], { hour12: false });
}

/** A duration in the unit it was most likely written in: `5 s`, `2 min`, `250 ms`. */
export function fmtDuration(ms) {
  if (typeof ms !== "number") return "";
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return `${ms} ms`;
}

/**
 * A window's bounds, with the bracket its kind uses: `[10:00:00, 10:00:05)` for
 * tumbling and hopping windows, `[10:00:00.340, 10:00:10.340]` for sliding and
 * session windows. Milliseconds only when a bound has them.
 */
export function fmtBounds(start, end, endExclusive) {
  const millis = start % 1000 !== 0 || end % 1000 !== 0;
  return `[${fmtTime(start, millis)}, ${fmtTime(end, millis)}${endExclusive ? ")" : "]"}`;
}

/**
 * A window's value as text: a number as a number, an object of named aggregates
 * as compact JSON. Fractions are cut to two decimals for reading; callers keep
 * the exact value in an attribute.
 */
export function fmtWindowValue(value) {
  if (typeof value === "number") return fmtValue(value);
  if (value === null || value === undefined) return DASH;
  return JSON.stringify(value, (_, v) =>
    typeof v === "number" && !Number.isInteger(v) ? Math.round(v * 100) / 100 : v);
}

/**
 * The numbers in a window value, as dotted paths: `views`, `p95.count`. An
 * aggregator function's value is whatever JSON it returns; its numbers (two levels
 * deep at most) are what can be charted.
 */
export function numericPaths(value, prefix = "", depth = 0) {
  if (typeof value === "number") return prefix ? [prefix] : [];
  if (!value || typeof value !== "object" || Array.isArray(value) || depth >= 2) return [];
  return Object.entries(value).flatMap(([k, v]) => numericPaths(v, prefix ? `${prefix}.${k}` : k, depth + 1));
}
