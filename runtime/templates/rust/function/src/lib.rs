//! {{name}}: a kfn *function*: one record in, zero or more records out.

wit_bindgen::generate!({ world: "function", path: "{{wit}}" });
// `Message`, `Output` and `Guest` are now in scope; host calls are in `kfn::component::host`.

use kfn::component::host;

struct Component;

impl Guest for Component {
    fn process(msg: Message) -> Result<Vec<Output>, String> {
        host::log(host::Level::Info, &format!("{{name}}: {} bytes from {}", msg.value.len(), msg.topic));
        // Return Err("why") to send the record to the binding's dead-letter topic.
        Ok(vec![Output {
            topic: None, // the binding's `out`; Some("topic") routes elsewhere
            key: msg.key,
            value: msg.value,
            headers: msg.headers,
        }])
    }
}

export!(Component);
