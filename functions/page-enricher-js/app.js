// page-enricher-js: a kfn *function* in JavaScript, the twin of functions/page-enricher.
// It parses a PageEvent and emits it with three added fields: `enriched_by`,
// `slow` (duration > 5000 ms) and, when the binding's config sets it, `tag`.
import { config } from 'kfn:component/host@0.1.2';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parsePageEvent(bytes) {
  let page;
  try {
    page = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    // Only a thrown *string* becomes the WIT error (the record is dead-lettered).
    throw `not a PageEvent: ${e.message}`;
  }
  const { name, user, date, duration } = page ?? {};
  for (const [field, value] of Object.entries({ name, user, date })) {
    if (typeof value !== 'string') throw `not a PageEvent: "${field}" must be a string`;
  }
  if (!Number.isInteger(duration) || duration < 0) {
    throw 'not a PageEvent: "duration" must be a non-negative integer';
  }
  return { name, user, date, duration };
}

export function process(msg) {
  const page = parsePageEvent(msg.value);
  const enriched = {
    ...page,
    enriched_by: 'page-enricher-js v1',
    slow: page.duration > 5000,
  };
  const tag = config('tag'); // from `config: {tag: ...}` in kfn.yaml
  if (tag !== undefined) enriched.tag = tag;
  return [
    {
      topic: undefined, // the binding's `out` topic
      // Keep the input key; records without one are keyed by page name.
      key: msg.key ?? encoder.encode(page.name),
      value: encoder.encode(JSON.stringify(enriched)),
      headers: msg.headers,
    },
  ];
}
