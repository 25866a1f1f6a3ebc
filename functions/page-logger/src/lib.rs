//! page-logger: a kfn *consumer*. Each record read from the bound topic is parsed
//! as a PageEvent and written to the runtime's log. Returning `Err` makes the runtime
//! count the record as failed and dead-letter it; the stream goes on.

// Generate the bindings for the `consumer` world of the WIT contract.
wit_bindgen::generate!({
    world: "consumer",
    path: "../../wit",
});
// The world `use`s the WIT types, so `Message` and `Output` are now in scope;
// the host imports live in `kfn::component::host`.

use kfn::component::host::{self, Level};
use serde::Deserialize;

#[derive(Deserialize)]
struct PageEvent {
    name: String,
    user: String,
    date: String,
    duration: u64,
}

struct PageLogger;

impl Guest for PageLogger {
    fn consume(msg: Message) -> Result<(), String> {
        let page: PageEvent =
            serde_json::from_slice(&msg.value).map_err(|e| format!("not a PageEvent: {e}"))?;
        host::log(
            Level::Info,
            &format!(
                "page {} viewed by {} for {} ms at {}",
                page.name, page.user, page.duration, page.date
            ),
        );
        Ok(())
    }
}

// Tell wit-bindgen which type implements the world's exports.
export!(PageLogger);
