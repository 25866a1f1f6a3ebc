//! {{name}}: a kfn *batch function*: many records in per call, zero or more records
//! out per record.

wit_bindgen::generate!({ world: "batch-function", path: "{{wit}}" });
// `Message`, `Output` and `Guest` are now in scope; host calls are in `kfn::component::host`.

use kfn::component::host;

struct Component;

impl Guest for Component {
    /// One result per message, in the same order.
    fn process_batch(msgs: Vec<Message>) -> Vec<Result<Vec<Output>, String>> {
        host::log(host::Level::Debug, &format!("{{name}}: {} records", msgs.len()));
        msgs.into_iter().map(process).collect()
    }
}

fn process(msg: Message) -> Result<Vec<Output>, String> {
    if msg.value.is_empty() {
        // An error sends this record (only) to the binding's dead-letter topic.
        return Err("{{name}}: empty value".into());
    }
    Ok(vec![Output {
        topic: None, // the binding's `out`; Some("topic") routes elsewhere
        key: msg.key,
        value: msg.value,
        headers: msg.headers,
    }])
}

export!(Component);
