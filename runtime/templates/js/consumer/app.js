// {{name}}: a kfn *consumer*: receives each record for a side effect.
import { log } from 'kfn:component/host@0.1.2';

const decoder = new TextDecoder();

export function consume(msg) {
  const text = decoder.decode(msg.value);
  log('info', `{{name}} got ${msg.topic}[${msg.partition}]@${msg.offset}: ${text}`);
  // To fail this record (it is dead-lettered), throw a *string*: throw 'why';
}
