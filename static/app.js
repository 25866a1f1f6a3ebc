// kfn dashboard: plain ES modules, no build step. This file wires the panels;
// each lives in js/panels/, with helpers in js/ (dom, format, api, state, kinds)
// and the store charts in js/charts/.
//
// Every string that comes from the API reaches the page through textContent or
// an attribute, never innerHTML (see js/dom.js).

import { poll } from "./js/api.js";
import { $, showEmpty } from "./js/dom.js";
import { bindingsSource, renderBindings } from "./js/panels/bindings.js";
import { startEvents } from "./js/panels/events.js";
import { functionsSource, renderFunctions } from "./js/panels/functions.js";
import { startHeader } from "./js/panels/header.js";
import { startPublish } from "./js/panels/publish.js";
import { startStores } from "./js/panels/stores.js";
import { EVENT_REFRESHES } from "./js/kinds.js";
import { createState } from "./js/state.js";
import { adoptFragmentToken } from "./js/token.js";

const POLL_MS = 2000;
// How much history each store chart shows.
const CHART_SPAN_MS = 120_000;

// First: under `http.auth: all` every request below needs the token's cookie.
adoptFragmentToken();

for (const id of ["functions-body", "bindings-body"]) showEmpty($(id), "Loading…");

const state = createState();
const { attention } = startHeader();
state.on("functions", (list) => renderFunctions(list, attention));
state.on("bindings", (list) => renderBindings(list, attention));

// The panels poll slowly; an event about a panel's subject refreshes it at once.
const refresh = {
  functions: poll(functionsSource(state), POLL_MS),
  bindings: poll(bindingsSource(state), POLL_MS),
  stores: startStores(state, { spanMs: CHART_SPAN_MS }),
};
startEvents({ onEvent: (ev) => refresh[EVENT_REFRESHES[ev.kind]]?.kick() });
startPublish();
