// The runtime's enums as the dashboard shows them: one table each, so a kind the
// server adds shows up here (and in the browser test, which checks the event
// kinds against `EventKind` in runtime/src/observe/mod.rs) instead of drifting.
// No DOM in this module: the test imports it under Node.

import { fmtDuration } from "./format.js";

/** `EventKind` (kebab-case) → tone. Tones are the badge/row colours in style.css. */
export const EVENT_TONES = Object.freeze({
  "function-loaded": "ok",
  "function-rejected": "bad",
  "function-removed": "warn",
  "binding-paused": "warn",
  "binding-resumed": "ok",
  "record-failed": "bad",
  "late-record": "late",
  config: "info",
  broker: "accent",
  info: "muted",
});

/** Which panel an event kind is news for: that panel refreshes at once instead of at its next poll. */
export const EVENT_REFRESHES = Object.freeze({
  "function-loaded": "functions",
  "function-rejected": "functions",
  "function-removed": "functions",
  "binding-paused": "bindings",
  "binding-resumed": "bindings",
  "record-failed": "bindings",
  "late-record": "bindings",
  config: "stores",
});

export const FUNCTION_TONES = Object.freeze({ ready: "ok", compiling: "info", error: "bad", missing: "warn" });
export const FUNCTION_PROBLEMS = new Set(["error", "missing"]);

export const BINDING_TONES = Object.freeze({ running: "ok", starting: "info", paused: "warn", stopped: "muted" });

const grace = (s) => (s.grace_ms > 0 ? `grace ${fmtDuration(s.grace_ms)}` : null);

/**
 * Window kinds of `/api/stores`: which chart draws them and how to say what the
 * window is. `spans`: closed windows drawn across their bounds over a line of the
 * current value; `sessions`: one lane per key with a bar per session.
 */
export const WINDOW_KINDS = Object.freeze({
  tumbling: { chart: "timeline", describe: (s) => [`${fmtDuration(s.window_ms)} tumbling`, grace(s)] },
  hopping: {
    chart: "spans",
    describe: (s) => [`${fmtDuration(s.window_ms)} windows every ${fmtDuration(s.advance_ms)}`, grace(s)],
  },
  sliding: { chart: "spans", describe: (s) => [`${fmtDuration(s.window_ms)} sliding`, grace(s)] },
  session: { chart: "sessions", describe: (s) => [`sessions, ${fmtDuration(s.window_ms)} gap`, grace(s)] },
});
