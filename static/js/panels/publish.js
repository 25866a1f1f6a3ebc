// Publish form: POST a record to a topic and show where it landed.

import { $, el } from "../dom.js";

export function startPublish() {
  const form = $("publish-form");
  const result = $("publish-result");
  const button = $("publish-submit");
  const show = (state, ...children) => {
    result.dataset.state = state;
    result.replaceChildren(...children);
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const topic = $("publish-topic").value.trim();
    const key = $("publish-key").value;
    const value = $("publish-value").value;
    if (!topic) return;
    let url = `/api/topics/${encodeURIComponent(topic)}`;
    if (key !== "") url += `?key=${encodeURIComponent(key)}`;

    button.disabled = true;
    show("pending", "Publishing…");
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream" },
        body: value,
      });
      const text = await res.text();
      let body = null;
      try { body = JSON.parse(text); } catch { /* plain-text error */ }
      if (res.ok && body && typeof body === "object") {
        show("ok",
          el("div", { class: "result-summary" },
            "Published to ", el("code", {}, body.topic ?? topic),
            " · partition ", el("strong", { class: "result-partition" }, String(body.partition)),
            " · offset ", el("strong", { class: "result-offset" }, String(body.offset)),
          ),
          el("pre", { class: "result-json" }, JSON.stringify(body)),
        );
      } else {
        const message = body && typeof body.error === "string" ? body.error : text || res.statusText;
        show("error", el("div", { class: "result-summary" }, `HTTP ${res.status}: `, message));
      }
    } catch (err) {
      show("error", el("div", { class: "result-summary" }, `Request failed: ${err.message}`));
    } finally {
      button.disabled = false;
    }
  });
}
