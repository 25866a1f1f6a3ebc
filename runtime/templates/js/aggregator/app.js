// {{name}}: a kfn *aggregator*: a windowed aggregate whose state kfn keeps.
//
// Use it in an `analytics:` stage of kfn.yaml:
//
//   analytics:
//     my-store: { in: my-topic, key: /name, window: { tumbling: 1m }, aggregate: { function: {{name}} } }
//
// kfn calls `add` for each record and each window it falls in, `merge` when two
// session windows become one, and `finish` when a window changed (for the dashboard
// and queries) and when it closes (the value sent to `out`). The state is bytes you
// define (a Uint8Array): kfn stores them with the window, writes them to the stage's
// changelog, restores them after a restart and hands them to the next version of this
// function when you rebuild it. So start them with a format version: a later version
// that changes the format can still read (or knowingly refuse) the old one.
//
// Every export is pure: same arguments, same result. To refuse a record, throw a
// *string*: the record is dead-lettered with that message and the window keeps the
// state it had. Any other exception traps (the record fails without a message).
// Host calls (`log`, `config`, `nowMs`) are imported from 'kfn:component/host@0.1.2'.
// Types (see wit/kfn.wit): msg = { key?: Uint8Array, value: Uint8Array,
// headers: [{name, value: Uint8Array}], timestamp: bigint, topic, partition, offset: bigint }.
//
// This one counts records and their bytes: {"records":3,"bytes":240}. Its state is
// 17 bytes: the format version 1, then `records` and `bytes` as little-endian u64.

const FORMAT = 1; // the first byte of every state this version writes
const SIZE = 17; // FORMAT + two u64

const encoder = new TextEncoder();

// The state bytes as { records, bytes } (BigInts: u64 does not fit a JS number).
function read(state) {
  if (state.length === 0) throw 'empty state';
  if (state[0] !== FORMAT || state.length !== SIZE) {
    // Refusing is safe: the record is dead-lettered and the window's state kept, so
    // nothing is lost while you ship a version that reads this format.
    throw `unreadable state (format ${state[0]}, ${state.length} bytes): this version reads format ${FORMAT}`;
  }
  const view = new DataView(state.buffer, state.byteOffset, state.byteLength);
  return { records: view.getBigUint64(1, true), bytes: view.getBigUint64(9, true) };
}

function write({ records, bytes }) {
  const out = new Uint8Array(SIZE);
  const view = new DataView(out.buffer);
  out[0] = FORMAT;
  view.setBigUint64(1, records, true); // wraps modulo 2^64, like a u64
  view.setBigUint64(9, bytes, true);
  return out;
}

// The state of a window with no record yet. `merge(init(), s)` must equal `s`.
export function init() {
  return write({ records: 0n, bytes: 0n });
}

// The state after `msg` joins a window whose state is `state`.
export function add(state, msg) {
  const s = read(state);
  return write({ records: s.records + 1n, bytes: s.bytes + BigInt(msg.value.length) });
}

// Two windows' states as one (when session windows merge).
export function merge(a, b) {
  const [x, y] = [read(a), read(b)];
  return write({ records: x.records + y.records, bytes: x.bytes + y.bytes });
}

// The window's value, as JSON bytes.
export function finish(state) {
  const s = read(state);
  return encoder.encode(`{"records":${s.records},"bytes":${s.bytes}}`);
}
