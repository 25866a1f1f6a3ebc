// kfn:world supplier
//
// {{name}}: a kfn *supplier* in C: called on the binding's schedule (`every:`).
// `kfn build` generates "supplier.h" from wit/kfn.wit; the line above picks the world.

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supplier.h"

// What you return is freed with free() after the call, so allocate it with malloc.
bool exports_supplier_supply(supplier_list_output_t *ret, supplier_string_t *err) {
  (void)err;  // set it (supplier_string_dup) and return false to report a failure

  char json[96];
  int len = snprintf(json, sizeof json, "{\"source\":\"{{name}}\",\"at\":%" PRId64 "}",
                     kfn_component_host_now_ms());

  supplier_output_t *out = calloc(1, sizeof *out);  // topic: the binding's `out`; no key
  out->value.ptr = malloc(len);
  memcpy(out->value.ptr, json, len);
  out->value.len = len;

  ret->ptr = out;
  ret->len = 1;
  return true;
}
