// What the panels share: the latest answer of each API resource, and who wants
// to hear when one changes. Each poller writes its slice; panels render from it.

export function createState() {
  const values = new Map();
  const listeners = new Map();
  return {
    get: (name) => values.get(name),
    set(name, value) {
      values.set(name, value);
      for (const fn of listeners.get(name) ?? []) fn(value);
    },
    /** Call `fn` on every change of `name` (and now, if it has a value). Returns the unsubscribe. */
    on(name, fn) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(fn);
      if (values.has(name)) fn(values.get(name));
      return () => listeners.get(name).delete(fn);
    },
  };
}
