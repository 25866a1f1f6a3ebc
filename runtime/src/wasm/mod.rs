//! The WebAssembly stage: compile components, keep the current version of each
//! function (hot-swappable), and call them from per-binding workers.
//!
//! - [`engine`]: engine, linker and the precompiled-artifact cache;
//! - [`registry`]: one slot per function name holding its current prepared version;
//!   loading a new version never blocks callers and a failed load keeps the old one;
//! - [`worker`]: a binding's `Store` + instance; picks up new versions between calls
//!   and re-instantiates after a trap.

mod bindings;
mod engine;
mod host;
mod registry;
mod worker;

use std::fmt;

pub use engine::{Compiled, EPOCH_TICK, WasmEngine};
pub use host::{GuestIdentity, LiveConfig};
pub use registry::{FunctionInfo, FunctionStatus, Registry, Slot};
pub use worker::{CallError, Limits, Worker};

/// The kind of component, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Function,
    Consumer,
    Supplier,
}

impl World {
    /// The export that identifies the world.
    pub fn export(self) -> &'static str {
        match self {
            World::Function => "process",
            World::Consumer => "consume",
            World::Supplier => "supply",
        }
    }

    /// Which world `component` targets, judged by its exports; on failure, the
    /// export names it has.
    fn of(
        engine: &wasmtime::Engine,
        component: &wasmtime::component::Component,
    ) -> Result<World, Vec<String>> {
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let has = |name: &str| exports.iter().any(|e| e == name);
        match (has("process"), has("consume"), has("supply")) {
            (true, false, false) => Ok(World::Function),
            (false, true, false) => Ok(World::Consumer),
            (false, false, true) => Ok(World::Supplier),
            _ => Err(exports),
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            World::Function => "function",
            World::Consumer => "consumer",
            World::Supplier => "supplier",
        };
        write!(f, "kfn:component/{name}")
    }
}

/// Why a `.wasm` could not become the running version of a function.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{file}: not a WebAssembly file (no \\0asm header)")]
    NotWasm { file: String },
    #[error(
        "{file}: is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
    )]
    CoreModule { file: String },
    #[error("{file}: does not compile: {message}")]
    Compile { file: String, message: String },
    #[error(
        "{file}: exports none of the kfn worlds (kfn:component/function exports `process`, consumer `consume`, supplier `supply`); it exports: {}",
        if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
    )]
    UnknownWorld { file: String, exports: Vec<String> },
    #[error("{file}: cannot be linked as {world}: {message}")]
    Link {
        file: String,
        world: World,
        message: String,
    },
    #[error("the WebAssembly engine failed: {message}")]
    Engine { message: String },
}
