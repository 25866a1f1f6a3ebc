//! The generated host bindings for `wit/kfn.wit`, and nothing else.
//!
//! wasmtime's `bindgen!` generates one world per invocation, and a guest targets one
//! world, so there is one invocation per world. The `function` world owns the shared
//! `types` and `host` interfaces; the others reuse them through `with:` so the
//! host trait is implemented exactly once.

pub mod function {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "function",
    });
}

pub mod batch_function {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "batch-function",
        with: {
            "kfn:component/types": super::function::kfn::component::types,
            "kfn:component/host": super::function::kfn::component::host,
        },
    });
}

pub mod consumer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "consumer",
        with: {
            "kfn:component/types": super::function::kfn::component::types,
            "kfn:component/host": super::function::kfn::component::host,
        },
    });
}

pub mod supplier {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "supplier",
        with: {
            "kfn:component/types": super::function::kfn::component::types,
            "kfn:component/host": super::function::kfn::component::host,
        },
    });
}

pub mod aggregator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "aggregator",
        with: {
            "kfn:component/types": super::function::kfn::component::types,
            "kfn:component/host": super::function::kfn::component::host,
        },
    });
}

pub use function::kfn::component::host::{self, Level};
pub use function::kfn::component::types::{Header, Message, Output};
