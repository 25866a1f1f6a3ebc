// {{name}}: a kfn *supplier*: called on the binding's schedule (`every:`).
import { nowMs } from 'kfn:component/host@0.1.2';

const encoder = new TextEncoder();

export function supply() {
  const record = { source: '{{name}}', at: Number(nowMs()) };
  return [
    {
      topic: undefined, // the binding's `out`
      key: undefined,
      value: encoder.encode(JSON.stringify(record)),
      headers: [],
    },
  ];
}
