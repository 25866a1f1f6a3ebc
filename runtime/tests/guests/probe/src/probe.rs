// A test guest for the `function` world, driven by the UTF-8 input value.
// Included by probe/src/lib.rs and probe-v2/src/lib.rs, which define `VERSION`
// first. Both crates sit at the same depth, so the WIT path works for either.
//
//   trap          -> panics (a trap)
//   error         -> Err("probe error: asked to fail")
//   loop          -> spins forever (tests fuel/epoch interruption)
//   oom           -> allocates 1 MiB blocks until allocation fails (memory cap)
//   fanout:N      -> N outputs "0".."N-1"
//   big:N         -> one output of N bytes ("x" repeated)
//   route:TOPIC   -> one output "routed" to TOPIC
//   config:KEY    -> one output: config(KEY) or "<unset>"
//   log:MSG       -> logs MSG at info, one output "logged"
//   now           -> one output: now-ms in decimal
//   count         -> one output: calls served by this instance, including this one
//   flaky         -> Err on odd-numbered calls of this instance, else one output
//   grow          -> keeps 1 MiB more alive per call (a heap that only grows)
//   anything else -> "probe-v{VERSION}:" + value, same key, header probe-version

wit_bindgen::generate!({
    world: "function",
    path: "../../../../wit",
});

use core::sync::atomic::{AtomicU64, Ordering};
use kfn::component::host::{self, Level};
use kfn::component::types::Header;

/// Calls served by this instance; reset when the host re-instantiates.
static CALLS: AtomicU64 = AtomicU64::new(0);

fn out(value: impl Into<Vec<u8>>) -> Output {
    Output {
        topic: None,
        key: None,
        value: value.into(),
        headers: vec![],
    }
}

struct Probe;

impl Guest for Probe {
    fn process(msg: Message) -> Result<Vec<Output>, String> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let input =
            String::from_utf8(msg.value).map_err(|e| format!("probe: input is not UTF-8: {e}"))?;
        let cmd = input.as_str();
        if let Some(n) = cmd.strip_prefix("fanout:") {
            let n: u32 = n
                .parse()
                .map_err(|e| format!("probe: bad fanout count {n:?}: {e}"))?;
            return Ok((0..n).map(|i| out(i.to_string())).collect());
        }
        if let Some(n) = cmd.strip_prefix("big:") {
            let n: usize = n
                .parse()
                .map_err(|e| format!("probe: bad size {n:?}: {e}"))?;
            return Ok(vec![out("x".repeat(n))]);
        }
        if let Some(topic) = cmd.strip_prefix("route:") {
            return Ok(vec![Output {
                topic: Some(topic.to_string()),
                ..out("routed")
            }]);
        }
        if let Some(key) = cmd.strip_prefix("config:") {
            return Ok(vec![out(
                host::config(key).unwrap_or_else(|| "<unset>".into())
            )]);
        }
        if let Some(message) = cmd.strip_prefix("log:") {
            host::log(Level::Info, message);
            return Ok(vec![out("logged")]);
        }
        match cmd {
            "trap" => panic!("probe trap"),
            "error" => Err("probe error: asked to fail".into()),
            "loop" => {
                let mut i = 0u64;
                loop {
                    i = core::hint::black_box(i.wrapping_add(1));
                }
            }
            "oom" => {
                let mut blocks: Vec<Vec<u8>> = Vec::new();
                loop {
                    let block = core::hint::black_box(vec![1u8; 1 << 20]);
                    blocks.push(block);
                    core::hint::black_box(&mut blocks);
                }
            }
            "now" => Ok(vec![out(host::now_ms().to_string())]),
            "count" => Ok(vec![out(calls.to_string())]),
            // Keeps 1 MiB more alive on every call, like a heap that only grows.
            "grow" => {
                static KEPT: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
                let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
                kept.push(core::hint::black_box(vec![1u8; 1 << 20]));
                Ok(vec![out(format!("{} MiB kept", kept.len()))])
            }
            // Fails on odd-numbered calls of this instance: a retry succeeds.
            "flaky" if calls % 2 == 1 => Err("probe error: flaky, try again".into()),
            "flaky" => Ok(vec![out(format!("flaky ok on call {calls}"))]),
            _ => Ok(vec![Output {
                topic: None,
                key: msg.key,
                value: format!("probe-v{VERSION}:{input}").into_bytes(),
                headers: vec![Header {
                    name: "probe-version".into(),
                    value: VERSION.to_string().into_bytes(),
                }],
            }]),
        }
    }
}

export!(Probe);
