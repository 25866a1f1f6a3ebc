// The dashboard's tables of runtime enums against the runtime's own source, so a
// kind added in Rust cannot silently render as a muted "unknown" (as
// late-record once did). No kfn or browser needed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { REPO } from "./harness.mjs";
import { EVENT_REFRESHES, EVENT_TONES } from "../../static/js/kinds.js";

/** The variants of `pub enum <name>` in a Rust file, as serde's kebab-case renders them. */
async function rustVariants(file, name) {
  const source = await readFile(path.join(REPO, file), "utf8");
  const body = source.match(new RegExp(`pub enum ${name} \\{([^}]*)\\}`))?.[1];
  assert.ok(body, `${file} has no \`pub enum ${name}\``);
  return body.split(",").map((v) => v.replace(/\/\/.*$/gm, "").trim()).filter(Boolean)
    .map((v) => v.replace(/[A-Z]/g, (c, i) => (i ? "-" : "") + c.toLowerCase()));
}

test("every EventKind of observe/mod.rs has a tone, and every tone an EventKind", async () => {
  const kinds = await rustVariants("runtime/src/observe/mod.rs", "EventKind");
  assert.ok(kinds.includes("late-record"), `parsed kinds: ${kinds.join(", ")}`);
  assert.deepEqual([...kinds].sort(), Object.keys(EVENT_TONES).sort());
  for (const kind of Object.keys(EVENT_REFRESHES)) assert.ok(kinds.includes(kind), `EVENT_REFRESHES names ${kind}`);
});

test("late records have a tone of their own", () => {
  const tones = Object.entries(EVENT_TONES).filter(([, tone]) => tone === EVENT_TONES["late-record"]);
  assert.deepEqual(tones.map(([kind]) => kind), ["late-record"]);
});
