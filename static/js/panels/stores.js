// The analytics panel: a StoreCard per window store of /api/stores, kept in the
// API's order, rebuilt only when a store's definition changes.

import { getJson, poll } from "../api.js";
import { $, setNote } from "../dom.js";
import { fmtDuration } from "../format.js";
import { StoreCard, storeIdentity } from "./store-card.js";

const STORES_POLL_MS = 10000;

/** The late count of the analytics step named like the store. */
function lateOf(bindings, store) {
  const b = bindings?.find((b) => b.name === store && b.kind === "analytics");
  return b?.late;
}

export function startStores(state, { spanMs }) {
  const container = $("charts");
  const empty = $("charts-empty");
  const note = $("charts-note");
  const cards = new Map(); // identity -> StoreCard

  state.on("bindings", (list) => {
    for (const card of cards.values()) card.setLate(lateOf(list, card.store.name));
  });

  return poll(async () => {
    try {
      const stores = await getJson("/api/stores");
      const wanted = new Map(stores.map((s) => [storeIdentity(s), s]));
      for (const [id, card] of cards) {
        if (!wanted.has(id)) { card.close(); cards.delete(id); }
      }
      let at = empty.nextElementSibling;
      for (const [id, store] of wanted) {
        let card = cards.get(id);
        if (!card) {
          card = new StoreCard(store, { spanMs });
          cards.set(id, card);
          container.insertBefore(card.card, at);
          card.mount(container);
          card.setLate(lateOf(state.get("bindings"), store.name));
        } else if (card.card !== at) {
          container.insertBefore(card.card, at);
        }
        at = card.card.nextElementSibling;
      }
      empty.hidden = cards.size > 0;
      empty.textContent = "No window stores. Add an analytics stage under `analytics:` in kfn.yaml.";
      setNote(note, `last ${fmtDuration(spanMs)}`);
    } catch (err) {
      if (cards.size === 0) empty.textContent = "Could not load stores.";
      setNote(note, `refresh failed: ${err.message}`, true);
    }
  }, STORES_POLL_MS);
}
