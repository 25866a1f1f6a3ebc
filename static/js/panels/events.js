// Events feed: the runtime's /api/events stream, newest first.

import { stream } from "../api.js";
import { $, el } from "../dom.js";
import { fmtTime } from "../format.js";
import { EVENT_TONES } from "../kinds.js";

const MAX_EVENTS = 200;
const CONN_TEXT = { live: "live", disconnected: "disconnected — retrying" };

/** `onEvent(ev)` hears every new event, e.g. to refresh the panel it is about. */
export function startEvents({ onEvent }) {
  const list = $("events");
  const empty = $("events-empty");
  const conn = $("events-conn");
  const seen = new Set();

  const add = (ev) => {
    // The server replays recent history on every (re)connect: skip what we have.
    const id = `${ev.ts_ms}|${ev.kind}|${ev.subject}|${ev.message}`;
    if (seen.has(id)) return;
    seen.add(id);

    const tone = EVENT_TONES[ev.kind] ?? "muted";
    const ts = typeof ev.ts_ms === "number" ? ev.ts_ms : Date.now();
    const item = el("li", { class: `event tone-${tone}`, "data-kind": ev.kind, "data-tone": tone, "data-ts": ts, "data-id": id },
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
      seen.delete(list.lastElementChild.dataset.id);
      list.lastElementChild.remove();
    }
    empty.hidden = true;
    onEvent(ev);
  };

  stream("/api/events", {
    onState(state) {
      conn.dataset.state = state;
      conn.textContent = CONN_TEXT[state];
    },
    onData(ev) {
      if (ev && typeof ev === "object") add(ev);
    },
  });
}
