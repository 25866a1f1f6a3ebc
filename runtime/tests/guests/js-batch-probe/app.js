// Test guest (world `batch-function`): the JavaScript probe's echo, many records per
// call. Per record, by its UTF-8 value:
//   error        -> { tag: 'err', val: "js batch probe error: asked to fail" }
//   trap         -> throws an Error: the whole call traps
//   anything     -> one output "probe-js:" + input, same key, to the binding's out

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function processBatch(msgs) {
  return msgs.map((msg) => {
    const input = decoder.decode(msg.value);
    if (input === 'trap') {
      throw new Error('js batch probe trap');
    }
    if (input === 'error') {
      return { tag: 'err', val: 'js batch probe error: asked to fail' };
    }
    return {
      tag: 'ok',
      val: [{ topic: undefined, key: msg.key, value: encoder.encode('probe-js:' + input), headers: [] }],
    };
  });
}
