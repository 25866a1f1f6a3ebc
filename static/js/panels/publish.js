// Publish form: POST a record to a topic and show where it landed.

import { $, el } from "../dom.js";
import { authHeaders, getToken, setToken } from "../token.js";

export function startPublish() {
  const form = $("publish-form");
  const result = $("publish-result");
  const button = $("publish-submit");
  const tokenField = $("publish-token");
  tokenField.value = getToken();
  tokenField.addEventListener("change", () => setToken(tokenField.value.trim()));
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
        headers: { "Content-Type": "application/octet-stream", ...authHeaders() },
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
      } else if (res.status === 401) {
        show("error", el("div", { class: "result-summary" },
          "HTTP 401: this kfn needs its API token to publish. Enter it in the token field ",
          "(or open the dashboard as /#token=…)."));
        tokenField.focus();
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
