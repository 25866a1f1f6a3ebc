// kfn:world function
//
// {{name}}: a kfn *function* in C: one record in, zero or more records out.
// `kfn build` generates "function.h" from wit/kfn.wit; the line above picks the world.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "function.h"

// Everything in `msg` is yours (free it or hand it on); everything you return is
// freed with free() after the call, so allocate it with malloc.
bool exports_function_process(function_message_t *msg, function_list_output_t *ret,
                              function_string_t *err) {
  if (msg->value.len == 0) {
    // An error sends the record to the binding's dead-letter topic.
    function_string_dup(err, "{{name}}: empty value");
    function_message_free(msg);
    return false;
  }

  char line[96];
  snprintf(line, sizeof line, "{{name}}: %zu bytes from %.*s", msg->value.len,
           (int)msg->topic.len, (const char *)msg->topic.ptr);
  function_string_t text;
  function_string_set(&text, line);  // borrows `line`
  kfn_component_host_log(KFN_COMPONENT_HOST_LEVEL_INFO, &text);

  // One output: the same key, value and headers, to the binding's `out` topic
  // (set out->topic.is_some and out->topic.val to route it elsewhere).
  function_output_t *out = calloc(1, sizeof *out);
  out->key = msg->key;
  out->value = msg->value;
  out->headers = msg->headers;
  // Moved into the output: free only what is left (the topic).
  function_string_free(&msg->topic);

  ret->ptr = out;
  ret->len = 1;
  return true;
}
