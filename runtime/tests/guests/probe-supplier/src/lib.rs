//! A test guest for the `supplier` world: each call returns one output `tick:<n>`,
//! n counting this instance's calls from 1. With host config `fail` = "yes" it
//! returns an error instead.

wit_bindgen::generate!({
    world: "supplier",
    path: "../../../../wit",
});

use core::sync::atomic::{AtomicU64, Ordering};
use kfn::component::host;

static CALLS: AtomicU64 = AtomicU64::new(0);

struct ProbeSupplier;

impl Guest for ProbeSupplier {
    fn supply() -> Result<Vec<Output>, String> {
        if host::config("fail").as_deref() == Some("yes") {
            return Err("probe-supplier asked to fail".into());
        }
        let n = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(vec![Output {
            topic: None,
            key: None,
            value: format!("tick:{n}").into_bytes(),
            headers: vec![],
        }])
    }
}

export!(ProbeSupplier);
