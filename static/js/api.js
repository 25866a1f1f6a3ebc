// Talking to kfn: JSON requests, non-overlapping polls, and EventSource streams
// that come back after the server went away.

export async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

// However often `kick()` is called (a burst of events), runs start at least this far apart.
const KICK_GAP_MS = 250;

/**
 * Run `task` now and then `ms` after each completion (never overlapping).
 * `kick()` runs it again soon (as soon as the current run is over), for when an
 * event says the data changed; `stop()` ends the loop.
 */
export function poll(task, ms) {
  let timer = null;
  let running = false;
  let again = false;
  let stopped = false;
  let lastStart = 0;
  const schedule = (delay) => {
    clearTimeout(timer);
    timer = setTimeout(tick, delay);
  };
  const tick = async () => {
    timer = null;
    running = true;
    lastStart = Date.now();
    try {
      await task();
    } catch (err) {
      console.debug("poll task failed", err); // each task reports its own errors on the page
    } finally {
      running = false;
      if (!stopped) schedule(again ? KICK_GAP_MS : ms);
      again = false;
    }
  };
  tick();
  return {
    kick() {
      if (stopped) return;
      if (running) again = true;
      else schedule(Math.max(0, lastStart + KICK_GAP_MS - Date.now()));
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

const RETRY_MS = 3000;

/**
 * An EventSource on `url` whose JSON messages go to `onData`. `onState` hears
 * `live` and `disconnected`. EventSource retries by itself unless the server
 * answered with an error status or the wrong content type; then this retries by
 * hand. Returns `close()`.
 */
export function stream(url, { onData, onState }) {
  let source = null;
  let closed = false;
  let retry = null;
  const connect = () => {
    source = new EventSource(url);
    source.onopen = () => onState("live");
    source.onmessage = (msg) => {
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch {
        return; // kfn only sends JSON; anything else is not ours to show
      }
      onData(data);
    };
    source.onerror = () => {
      onState("disconnected");
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        retry = setTimeout(() => { if (!closed) connect(); }, RETRY_MS);
      }
    };
  };
  connect();
  return () => {
    closed = true;
    clearTimeout(retry);
    source?.close();
  };
}
