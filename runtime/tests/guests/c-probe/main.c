// kfn:world function
//
// A C test guest for the `function` world (see runtime/tests/polyglot_native_guests.rs),
// driven by the UTF-8 input value:
//
//   error         -> error "c probe error: asked to fail"
//   config:KEY    -> one output: config(KEY) or "<unset>"
//   log:MSG       -> logs MSG at info, one output "logged"
//   now           -> one output: now-ms in decimal
//   anything else -> "probe-c:" + value, same key, topic none
//
// `kfn build` generates `function.h` from wit/kfn.wit (wit-bindgen c) and links this
// file against wasi-libc. Everything handed to `process` is ours to free; everything
// returned is freed (with free()) by the generated post-return function.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "function.h"

// Whether `v` starts with `prefix`; if so `rest` is what follows (borrowed from `v`).
static bool has_prefix(const function_list_u8_t *v, const char *prefix,
                       function_string_t *rest) {
  size_t n = strlen(prefix);
  if (v->len < n || memcmp(v->ptr, prefix, n) != 0) return false;
  rest->ptr = v->ptr + n;
  rest->len = v->len - n;
  return true;
}

static bool equals(const function_list_u8_t *v, const char *s) {
  return v->len == strlen(s) && memcmp(v->ptr, s, v->len) == 0;
}

// A heap copy of `len` bytes of `a` followed by `len_b` bytes of `b`.
static function_list_u8_t concat(const void *a, size_t len_a, const void *b, size_t len_b) {
  function_list_u8_t out = {malloc(len_a + len_b + 1), len_a + len_b};
  memcpy(out.ptr, a, len_a);
  if (len_b) memcpy(out.ptr + len_a, b, len_b);
  return out;
}

static function_list_u8_t text(const char *s) { return concat(s, strlen(s), "", 0); }

bool exports_function_process(function_message_t *msg, function_list_output_t *ret,
                              function_string_t *err) {
  const function_list_u8_t *in = &msg->value;
  if (equals(in, "error")) {
    function_string_dup(err, "c probe error: asked to fail");
    function_message_free(msg);
    return false;
  }

  function_output_t *out = calloc(1, sizeof *out);  // topic none, key none, no headers
  function_string_t arg;
  if (has_prefix(in, "config:", &arg)) {
    function_string_t value;
    if (kfn_component_host_config(&arg, &value)) {
      // The host allocated it with cabi_realloc (malloc): hand it on as is.
      out->value.ptr = value.ptr;
      out->value.len = value.len;
    } else {
      out->value = text("<unset>");
    }
  } else if (has_prefix(in, "log:", &arg)) {
    kfn_component_host_log(KFN_COMPONENT_HOST_LEVEL_INFO, &arg);
    out->value = text("logged");
  } else if (equals(in, "now")) {
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, kfn_component_host_now_ms());
    out->value = text(buf);
  } else {
    out->value = concat("probe-c:", 8, in->ptr, in->len);
    out->key = msg->key;  // moved: the output now owns it
    msg->key.is_some = false;
  }
  function_message_free(msg);
  ret->ptr = out;
  ret->len = 1;
  return true;
}
