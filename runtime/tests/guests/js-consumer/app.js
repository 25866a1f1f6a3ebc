// Test guest (world `consumer`): logs "consumed <value>" through the host;
// the input "error" fails with the error string "js consumer error: asked to fail".
import { log } from 'kfn:component/host@0.1.2';

const decoder = new TextDecoder();

export function consume(msg) {
  const input = decoder.decode(msg.value);
  if (input === 'error') {
    throw 'js consumer error: asked to fail';
  }
  log('info', `consumed ${input}`);
}
