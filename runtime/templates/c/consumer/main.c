// kfn:world consumer
//
// {{name}}: a kfn *consumer* in C: receives each record for a side effect.
// `kfn build` generates "consumer.h" from wit/kfn.wit; the line above picks the world.

#include <stdio.h>
#include <stdlib.h>

#include "consumer.h"

// Everything in `msg` is yours to free.
bool exports_consumer_consume(consumer_message_t *msg, consumer_string_t *err) {
  (void)err;  // set it (consumer_string_dup) and return false to fail the record

  int len = snprintf(NULL, 0, "{{name}} got %.*s[%d]@%lld: %.*s", (int)msg->topic.len,
                     (const char *)msg->topic.ptr, (int)msg->partition, (long long)msg->offset,
                     (int)msg->value.len, (const char *)msg->value.ptr);
  char *line = malloc(len + 1);
  snprintf(line, len + 1, "{{name}} got %.*s[%d]@%lld: %.*s", (int)msg->topic.len,
           (const char *)msg->topic.ptr, (int)msg->partition, (long long)msg->offset,
           (int)msg->value.len, (const char *)msg->value.ptr);
  consumer_string_t text = {(uint8_t *)line, (size_t)len};
  kfn_component_host_log(KFN_COMPONENT_HOST_LEVEL_INFO, &text);
  free(line);

  consumer_message_free(msg);
  return true;
}
