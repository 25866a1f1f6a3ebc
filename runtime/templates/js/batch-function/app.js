// {{name}}: a kfn *batch function*: many records in per call, zero or more records
// out per record. Types (see wit/kfn.wit): msg = { key?: Uint8Array, value: Uint8Array,
// headers: [{name, value: Uint8Array}], timestamp: bigint, topic, partition, offset: bigint }.
import { log } from 'kfn:component/host@0.1.2';

// Called with the records kfn read together (up to 256); returns one result per
// record, in the same order: { tag: 'ok', val: [outputs] } or { tag: 'err', val: 'why' }
// (that record alone is dead-lettered with the message).
export function processBatch(msgs) {
  log('debug', `{{name}}: ${msgs.length} records`);
  return msgs.map((msg) => {
    try {
      return { tag: 'ok', val: process(msg) };
    } catch (e) {
      return { tag: 'err', val: String(e) };
    }
  });
}

function process(msg) {
  if (msg.value.length === 0) {
    throw '{{name}}: empty value';
  }
  return [
    {
      topic: undefined, // the binding's `out`; a topic name routes elsewhere
      key: msg.key,
      value: msg.value,
      headers: msg.headers,
    },
  ];
}
