// Test guest (world `function`): its behaviour depends on the UTF-8 input value.
//   error        -> the error string "js probe error: asked to fail"
//   config:KEY   -> one output: host config(KEY), or "<unset>"
//   log:MSG      -> host log(info, MSG), then one output "logged"
//   now          -> one output: host now-ms in decimal
//   anything     -> one output "probe-js:" + input, same key, to the binding's out
import { log, config, nowMs } from 'kfn:component/host@0.1.2';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const one = (msg, value) => [
  { topic: undefined, key: msg.key, value: encoder.encode(value), headers: [] },
];

export function process(msg) {
  const input = decoder.decode(msg.value);
  if (input === 'error') {
    // Only a thrown string becomes the WIT error value.
    throw 'js probe error: asked to fail';
  }
  if (input.startsWith('config:')) {
    return one(msg, config(input.slice('config:'.length)) ?? '<unset>');
  }
  if (input.startsWith('log:')) {
    log('info', input.slice('log:'.length));
    return one(msg, 'logged');
  }
  if (input === 'now') {
    return one(msg, nowMs().toString());
  }
  return one(msg, 'probe-js:' + input);
}
