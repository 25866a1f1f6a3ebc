//! {{name}}: a kfn *supplier*: called on the binding's schedule (`every:`).

wit_bindgen::generate!({ world: "supplier", path: "{{wit}}" });

use kfn::component::host;

struct Component;

impl Guest for Component {
    fn supply() -> Result<Vec<Output>, String> {
        let now = host::now_ms();
        Ok(vec![Output {
            topic: None, // the binding's `out`
            key: None,
            value: format!("{{\"source\":\"{{name}}\",\"at\":{now}}}").into_bytes(),
            headers: vec![],
        }])
    }
}

export!(Component);
