// kfn:world batch-function
//
// {{name}}: a kfn *batch function* in C: many records in per call, zero or more
// records out per record. `kfn build` generates "batch_function.h" from wit/kfn.wit;
// the line above picks the world.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_function.h"

// One record: fills `result` with its outputs or its error. Takes `msg`'s contents
// (moves them into the output or frees them).
static void process(batch_function_message_t *msg, batch_function_result_list_output_string_t *result) {
  if (msg->value.len == 0) {
    // An error sends this record (only) to the binding's dead-letter topic.
    result->is_err = true;
    batch_function_string_dup(&result->val.err, "{{name}}: empty value");
    batch_function_message_free(msg);
    return;
  }
  // One output: the same key, value and headers, to the binding's `out` topic
  // (set out->topic.is_some and out->topic.val to route it elsewhere).
  batch_function_output_t *out = calloc(1, sizeof *out);
  out->key = msg->key;
  out->value = msg->value;
  out->headers = msg->headers;
  // Moved into the output: free only what is left (the topic).
  batch_function_string_free(&msg->topic);
  result->is_err = false;
  result->val.ok.ptr = out;
  result->val.ok.len = 1;
}

// The records kfn read together (up to 256): one result per record, in order.
// Everything in `msgs` is yours (free it or hand it on); everything you return is
// freed with free() after the call, so allocate it with malloc.
void exports_batch_function_process_batch(batch_function_list_message_t *msgs,
                                          batch_function_list_result_list_output_string_t *ret) {
  char line[64];
  snprintf(line, sizeof line, "{{name}}: %zu records", msgs->len);
  batch_function_string_t text;
  batch_function_string_set(&text, line);  // borrows `line`
  kfn_component_host_log(KFN_COMPONENT_HOST_LEVEL_DEBUG, &text);

  ret->len = msgs->len;
  ret->ptr = calloc(msgs->len ? msgs->len : 1, sizeof *ret->ptr);
  for (size_t i = 0; i < msgs->len; i++) {
    process(&msgs->ptr[i], &ret->ptr[i]);
  }
  free(msgs->ptr);  // the list itself; its messages were taken above
}
