//! A `function` guest built against the frozen 0.1.0 contract (`../wit-0.1.0`): the
//! proof that guests built before 0.1.1 still load and run. It answers
//! `v0.1.0:<value>:<config("tag") or unset>`.

wit_bindgen::generate!({
    world: "function",
    path: "../wit-0.1.0",
});

use kfn::component::host;

struct Component;

impl Guest for Component {
    fn process(msg: Message) -> Result<Vec<Output>, String> {
        let tag = host::config("tag").unwrap_or_else(|| "unset".into());
        let value = format!("v0.1.0:{}:{tag}", String::from_utf8_lossy(&msg.value));
        Ok(vec![Output { topic: None, key: msg.key, value: value.into_bytes(), headers: vec![] }])
    }
}

export!(Component);
