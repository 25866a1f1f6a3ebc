// kfn:world aggregator
//
// {{name}}: a kfn *aggregator* in C: a windowed aggregate whose state kfn keeps.
// `kfn build` generates "aggregator.h" from wit/kfn.wit; the line above picks the world.
//
// Use it in an `analytics:` stage of kfn.yaml:
//
//   analytics:
//     my-store: { in: my-topic, key: /name, window: { tumbling: 1m }, aggregate: { function: {{name}} } }
//
// kfn calls `add` for each record and each window it falls in, `merge` when two
// session windows become one, and `finish` when a window changed (for the dashboard
// and queries) and when it closes (the value sent to `out`). The state is bytes you
// define: kfn stores them with the window, writes them to the stage's changelog,
// restores them after a restart and hands them to the next version of this function
// when you rebuild it. So start them with a format version: a later version that
// changes the format can still read (or knowingly refuse) the old one.
//
// Every export is pure: same arguments, same result. Returning false with `err` set
// refuses a record: it is dead-lettered with that message and the window keeps the
// state it had. A trap (e.g. abort()) fails the record without a message.
//
// This one counts records and their bytes: {"records":3,"bytes":240}. Its state is
// 17 bytes: the format version 1, then `records` and `bytes` as little-endian u64.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"

// Memory: every argument is yours (free it, e.g. aggregator_list_u8_free, or hand it
// on); everything you return (`ret`, `err`) is freed with free() after the call, so
// allocate it with malloc.

#define FORMAT 1      // the first byte of every state this version writes
#define STATE_LEN 17  // FORMAT + two u64

// What a window has seen so far.
typedef struct {
  uint64_t records;
  uint64_t bytes;
} state_t;

static uint64_t get_u64le(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void put_u64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

// Reads `bytes` into `*s` and frees them. Returns false with `*err` set if this
// version cannot read them.
static bool read_state(aggregator_list_u8_t *bytes, state_t *s, aggregator_string_t *err) {
  bool ok = false;
  if (bytes->len == 0) {
    aggregator_string_dup(err, "empty state");
  } else if (bytes->ptr[0] != FORMAT || bytes->len != STATE_LEN) {
    // Refusing is safe: the record is dead-lettered and the window's state kept, so
    // nothing is lost while you ship a version that reads this format.
    char why[96];
    snprintf(why, sizeof why, "unreadable state (format %u, %zu bytes): this version reads format %d",
             (unsigned)bytes->ptr[0], bytes->len, FORMAT);
    aggregator_string_dup(err, why);
  } else {
    s->records = get_u64le(bytes->ptr + 1);
    s->bytes = get_u64le(bytes->ptr + 9);
    ok = true;
  }
  aggregator_list_u8_free(bytes);
  return ok;
}

// `*s` as freshly allocated state bytes in `*out`.
static void write_state(const state_t *s, aggregator_list_u8_t *out) {
  out->ptr = malloc(STATE_LEN);
  out->len = STATE_LEN;
  out->ptr[0] = FORMAT;
  put_u64le(out->ptr + 1, s->records);
  put_u64le(out->ptr + 9, s->bytes);
}

// The state of a window with no record yet. `merge(init(), s)` must equal `s`.
void exports_aggregator_init(aggregator_list_u8_t *ret) {
  state_t s = {0, 0};
  write_state(&s, ret);
}

// The state after `msg` joins a window whose state is `state`.
bool exports_aggregator_add(aggregator_list_u8_t *state, aggregator_message_t *msg,
                            aggregator_list_u8_t *ret, aggregator_string_t *err) {
  state_t s;
  size_t len = msg->value.len;
  aggregator_message_free(msg);
  if (!read_state(state, &s, err)) return false;
  s.records += 1;
  s.bytes += len;
  write_state(&s, ret);
  return true;
}

// Two windows' states as one (when session windows merge).
bool exports_aggregator_merge(aggregator_list_u8_t *a, aggregator_list_u8_t *b,
                              aggregator_list_u8_t *ret, aggregator_string_t *err) {
  state_t x, y;
  if (!read_state(a, &x, err)) {
    aggregator_list_u8_free(b);
    return false;
  }
  if (!read_state(b, &y, err)) return false;
  state_t sum = {x.records + y.records, x.bytes + y.bytes};
  write_state(&sum, ret);
  return true;
}

// The window's value, as JSON bytes.
bool exports_aggregator_finish(aggregator_list_u8_t *state, aggregator_list_u8_t *ret,
                               aggregator_string_t *err) {
  state_t s;
  if (!read_state(state, &s, err)) return false;
  char json[64];
  int len = snprintf(json, sizeof json, "{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                     s.records, s.bytes);
  ret->ptr = malloc(len);
  memcpy(ret->ptr, json, len);
  ret->len = len;
  return true;
}
