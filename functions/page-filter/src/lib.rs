//! page-filter: a kfn *function* that keeps the page views lasting more than 100 ms.
//! A kept record is passed on unchanged (key, value and headers); a dropped one
//! simply produces no output.

// Generate the bindings for the `function` world of the WIT contract.
wit_bindgen::generate!({
    world: "function",
    path: "../../wit",
});
// The world `use`s the WIT types, so `Message` and `Output` are now in scope;
// the host imports live in `kfn::component::host`.

use serde::Deserialize;

/// Only the field we filter on; serde ignores the others.
#[derive(Deserialize)]
struct PageEvent {
    duration: u64,
}

struct PageFilter;

impl Guest for PageFilter {
    fn process(msg: Message) -> Result<Vec<Output>, String> {
        let page: PageEvent =
            serde_json::from_slice(&msg.value).map_err(|e| format!("not a PageEvent: {e}"))?;
        if page.duration <= 100 {
            return Ok(vec![]);
        }
        Ok(vec![Output {
            topic: None, // the binding's `out` topic
            key: msg.key,
            value: msg.value,
            headers: msg.headers,
        }])
    }
}

// Tell wit-bindgen which type implements the world's exports.
export!(PageFilter);
