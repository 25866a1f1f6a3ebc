//! A test guest for the `batch-function` world, driven by each record's UTF-8 value:
//!
//!   trap          -> panics: the whole call traps
//!   error         -> Err("probe-batch error: asked to fail") in its place
//!   short         -> the call returns one result fewer than it got records
//!   anything else -> one output "batch-of-N:" + value (N: the records in this
//!                    call), same key

wit_bindgen::generate!({
    world: "batch-function",
    path: "../../../../wit",
});

struct Probe;

impl Guest for Probe {
    fn process_batch(msgs: Vec<Message>) -> Vec<Result<Vec<Output>, String>> {
        let n = msgs.len();
        let inputs: Vec<(Option<Vec<u8>>, String)> = msgs
            .into_iter()
            .map(|m| (m.key, String::from_utf8_lossy(&m.value).into_owned()))
            .collect();
        if inputs.iter().any(|(_, v)| v == "trap") {
            panic!("probe-batch trap");
        }
        let short = inputs.iter().any(|(_, v)| v == "short");
        let mut results: Vec<_> = inputs
            .into_iter()
            .map(|(key, value)| match value.as_str() {
                "error" => Err("probe-batch error: asked to fail".to_string()),
                _ => Ok(vec![Output {
                    topic: None,
                    key,
                    value: format!("batch-of-{n}:{value}").into_bytes(),
                    headers: vec![],
                }]),
            })
            .collect();
        if short {
            results.pop();
        }
        results
    }
}

export!(Probe);
