//! page-enricher: a kfn *function* (one record in, zero or more records out).
//! It parses a PageEvent and emits it with three added fields:
//! `enriched_by`, `slow` (duration > 5000 ms) and, when the binding's config sets
//! it, `tag`.

// Generate the bindings for the `function` world of the WIT contract.
wit_bindgen::generate!({
    world: "function",
    path: "../../wit",
});
// The world `use`s the WIT types, so `Message` and `Output` are now in scope;
// the host imports live in `kfn::component::host`.

use kfn::component::host;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
struct PageEvent {
    name: String,
    user: String,
    date: String,
    duration: u64,
}

#[derive(Serialize)]
struct EnrichedPageEvent {
    #[serde(flatten)]
    page: PageEvent,
    enriched_by: &'static str,
    slow: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
}

struct PageEnricher;

impl Guest for PageEnricher {
    fn process(msg: Message) -> Result<Vec<Output>, String> {
        let page: PageEvent =
            serde_json::from_slice(&msg.value).map_err(|e| format!("not a PageEvent: {e}"))?;
        // Keep the input key; records without one are keyed by page name.
        let key = msg.key.unwrap_or_else(|| page.name.clone().into_bytes());
        let enriched = EnrichedPageEvent {
            slow: page.duration > 5000,
            page,
            enriched_by: "page-enricher v1",
            tag: host::config("tag"), // from `config: {tag: ...}` in kfn.yaml
        };
        let value = serde_json::to_vec(&enriched).map_err(|e| e.to_string())?;
        Ok(vec![Output {
            topic: None, // the binding's `out` topic
            key: Some(key),
            value,
            headers: msg.headers,
        }])
    }
}

// Tell wit-bindgen which type implements the world's exports.
export!(PageEnricher);
