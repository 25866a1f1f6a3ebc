//! {{name}}: a kfn *consumer*: receives each record for a side effect.

wit_bindgen::generate!({ world: "consumer", path: "{{wit}}" });

use kfn::component::host;

struct Component;

impl Guest for Component {
    fn consume(msg: Message) -> Result<(), String> {
        let text = String::from_utf8_lossy(&msg.value);
        host::log(host::Level::Info, &format!("{{name}} got {}[{}]@{}: {text}", msg.topic, msg.partition, msg.offset));
        Ok(())
    }
}

export!(Component);
