// {{name}}: a kfn *function*: one record in, zero or more records out.
// Types (see wit/kfn.wit): msg = { key?: Uint8Array, value: Uint8Array,
// headers: [{name, value: Uint8Array}], timestamp: bigint, topic, partition, offset: bigint }.
import { log } from 'kfn:component/host@0.1.2';

export function process(msg) {
  log('info', `{{name}}: ${msg.value.length} bytes from ${msg.topic}`);
  // To fail this record (it is dead-lettered), throw a *string*: throw 'why';
  // any other exception traps and the record fails without a message.
  return [
    {
      topic: undefined, // the binding's `out`; a topic name routes elsewhere
      key: msg.key,
      value: msg.value,
      headers: msg.headers,
    },
  ];
}
