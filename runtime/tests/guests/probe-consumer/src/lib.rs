//! A test guest for the `consumer` world: logs `consumed <value>` at info.
//! Value `error` returns an error; value `trap` panics.

wit_bindgen::generate!({
    world: "consumer",
    path: "../../../../wit",
});

use kfn::component::host::{self, Level};

struct ProbeConsumer;

impl Guest for ProbeConsumer {
    fn consume(msg: Message) -> Result<(), String> {
        let value = String::from_utf8_lossy(&msg.value);
        host::log(Level::Info, &format!("consumed {value}"));
        match value.as_ref() {
            "error" => Err("probe-consumer error".into()),
            "trap" => panic!("probe-consumer trap"),
            _ => Ok(()),
        }
    }
}

export!(ProbeConsumer);
