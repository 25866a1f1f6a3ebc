// DOM helpers.
//
// The XSS rule of the whole dashboard lives here: every string that comes from
// the API reaches the page through textContent or an attribute (see `el`), never
// through innerHTML. Function names, error texts, record keys and event messages
// are all user-controlled.

/** Build an element. `attrs` keys starting with "on" are listeners; children are nodes or text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

export function badge(text, tone) {
  return el("span", { class: `badge badge-${tone}` }, text);
}

export function setNote(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle("is-error", isError);
}

/** How many columns `tbody`'s table has, read from its header: never a literal. */
function columnCount(tbody) {
  return tbody.closest("table")?.tHead?.rows[0]?.cells.length ?? 1;
}

/** Show one explanatory row spanning the whole table. */
export function showEmpty(tbody, text) {
  const only = tbody.rows.length === 1 ? tbody.rows[0] : null;
  if (only?.classList.contains("empty-row") && only.textContent === text) return;
  tbody.replaceChildren(el("tr", { class: "empty-row" }, el("td", { colspan: columnCount(tbody) }, text)));
}

/**
 * Make `tbody` show one row per item, in order, reusing the rows already there:
 * a row is matched by `data-id` (from `id(item)`), and of a matched row only the
 * cells that changed are replaced. Unchanged rows keep hover, focus and text
 * selection; a table polled every two seconds no longer flickers.
 */
export function reconcileRows(tbody, items, { id, render, empty }) {
  if (items.length === 0) {
    showEmpty(tbody, empty);
    return;
  }
  const existing = new Map();
  for (const row of [...tbody.rows]) {
    if (row.dataset.id !== undefined) existing.set(row.dataset.id, row);
    else row.remove(); // the empty-row placeholder
  }
  let cursor = tbody.firstElementChild;
  for (const item of items) {
    const key = String(id(item));
    const fresh = render(item);
    fresh.dataset.id = key;
    let row = existing.get(key);
    if (row) {
      existing.delete(key);
      patchRow(row, fresh);
    } else {
      row = fresh;
    }
    if (row !== cursor) tbody.insertBefore(row, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const row of existing.values()) row.remove();
}

function patchRow(row, fresh) {
  for (const name of row.getAttributeNames()) {
    if (!fresh.hasAttribute(name)) row.removeAttribute(name);
  }
  for (const name of fresh.getAttributeNames()) {
    const value = fresh.getAttribute(name);
    if (row.getAttribute(name) !== value) row.setAttribute(name, value);
  }
  const cells = [...fresh.children];
  cells.forEach((cell, i) => {
    const old = row.children[i];
    if (!old) row.append(cell);
    else if (!old.isEqualNode(cell)) old.replaceWith(cell);
  });
  while (row.children.length > cells.length) row.lastElementChild.remove();
}
