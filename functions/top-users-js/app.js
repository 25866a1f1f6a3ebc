// top-users-js: a kfn *aggregator* in JavaScript: the top 3 users of each window by
// their total /duration.
//
// The records are PageEvents such as
// {"name":"P1","user":"U2","date":"2026-11-25T06:01:02.345Z","duration":1234};
// `finish` gives {"top":[["U3",5400],["U1",1200],["U2",800]]}: the three largest
// totals, largest first, ties by user name ascending (fewer when fewer users).
//
// State, format version 1: the byte 1, then a JSON object user -> total duration,
// with *every* user of the window (not only the top 3), so that merging two windows
// (session windows) adds their totals exactly. Keys are written sorted, so the
// encoding is canonical and `merge(init(), s)` gives `s` byte for byte.
//
// A record that is not a JSON object with a string `user` and a numeric `duration`
// is refused (a thrown string): it is dead-lettered and the window keeps its state.

const FORMAT = 1; // the first byte of every state this version writes
const TOP = 3;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// The state bytes as a Map user -> total. (A Map, not an object: a user called
// "__proto__" must stay an ordinary key.)
function read(state) {
  if (state.length === 0) throw 'empty state';
  if (state[0] !== FORMAT) throw `state format ${state[0]} unknown (this version reads ${FORMAT})`;
  let totals;
  try {
    totals = JSON.parse(decoder.decode(state.subarray(1)));
  } catch (e) {
    throw `state is not a version-1 totals object: ${e.message}`;
  }
  if (totals === null || typeof totals !== 'object' || Array.isArray(totals)) {
    throw 'state is not a version-1 totals object';
  }
  const map = new Map();
  for (const [user, total] of Object.entries(totals)) {
    if (!Number.isFinite(total)) throw 'state is not a version-1 totals object';
    map.set(user, total);
  }
  return map;
}

// By user name, ascending (UTF-16 code units, as JavaScript compares strings).
const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function write(map) {
  const users = [...map.keys()].sort(byName);
  const body = users.map((u) => `${JSON.stringify(u)}:${JSON.stringify(map.get(u))}`).join(',');
  return encoder.encode(`\u0001{${body}}`);
}

// The `user` and `duration` of a PageEvent.
function pageEvent(bytes) {
  let page;
  try {
    page = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw `not a PageEvent: value is not JSON: ${e.message}`;
  }
  if (page === null || typeof page !== 'object' || Array.isArray(page)) {
    throw 'not a PageEvent: value is not a JSON object';
  }
  const { user, duration } = page;
  if (typeof user !== 'string') throw 'not a PageEvent: "user" must be a string';
  if (!Number.isFinite(duration)) throw 'not a PageEvent: "duration" must be a number';
  return { user, duration };
}

// a + b, refused if it is too large for a number (JSON has no Infinity).
function sum(a, b) {
  const s = a + b;
  if (!Number.isFinite(s)) throw 'total duration out of range';
  return s;
}

// An empty window: no users.
export function init() {
  return write(new Map());
}

// A page view joins a window: its duration adds to its user's total.
export function add(state, msg) {
  const totals = read(state);
  const { user, duration } = pageEvent(msg.value);
  totals.set(user, sum(totals.get(user) ?? 0, duration));
  return write(totals);
}

// Two windows as one (session windows merging): the totals add up.
export function merge(a, b) {
  const totals = read(a);
  for (const [user, total] of read(b)) totals.set(user, sum(totals.get(user) ?? 0, total));
  return write(totals);
}

// The window's value: the top users, largest total first, ties by name.
export function finish(state) {
  const top = [...read(state)]
    .sort(([u1, t1], [u2, t2]) => t2 - t1 || byName(u1, u2))
    .slice(0, TOP);
  return encoder.encode(JSON.stringify({ top }));
}
