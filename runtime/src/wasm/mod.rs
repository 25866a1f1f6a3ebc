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

pub use bindings::Message;
pub use engine::{Compiled, EPOCH_TICK, WasmEngine};
pub use host::{GuestIdentity, LiveConfig};
pub use registry::{FunctionInfo, FunctionStatus, Registry, Slot};
pub use worker::{CallError, Limits, Pin, Worker, lend_message};

/// The kind of component, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Function,
    #[serde(rename = "batch-function")]
    BatchFunction,
    Consumer,
    Supplier,
    Aggregator,
}

/// What kfn knows about one world: the one table the engine, the builders, the
/// templates (`templates/<lang>/<name>/`) and the CLI read. A new world is a row
/// here, its `bindgen!` in [`bindings`], its calls in [`worker`] and its templates.
#[derive(Debug, Clone, Copy)]
pub struct WorldInfo {
    pub world: World,
    /// The WIT world's name, as `kfn new`, package.json and the markers spell it.
    pub name: &'static str,
    /// The export that tells a component of this world from the others.
    pub export: &'static str,
    /// How a Python `WitWorld` class defines that export.
    pub python: &'static str,
    /// What it is, for help texts.
    pub summary: &'static str,
    /// How kfn.yaml uses one (`NAME` stands for the function's name).
    pub example: &'static str,
}

/// Every world, in the order help texts list them.
pub const WORLDS: [WorldInfo; 5] = [
    WorldInfo {
        world: World::Function,
        name: "function",
        export: "process",
        python: "def process(self, msg)",
        summary: "one input record -> zero or more output records",
        example: "bindings: { NAME: { function: NAME, in: my-topic, out: my-output } }",
    },
    WorldInfo {
        world: World::BatchFunction,
        name: "batch-function",
        export: "process-batch",
        python: "def process_batch(self, msgs)",
        summary: "a batch of input records -> zero or more output records per record",
        example: "bindings: { NAME: { function: NAME, in: my-topic, out: my-output } }",
    },
    WorldInfo {
        world: World::Consumer,
        name: "consumer",
        export: "consume",
        python: "def consume(self, msg)",
        summary: "one input record -> a side effect",
        example: "bindings: { NAME: { consumer: NAME, in: my-topic } }",
    },
    WorldInfo {
        world: World::Supplier,
        name: "supplier",
        export: "supply",
        python: "def supply(self)",
        summary: "called on a schedule -> records",
        example: "bindings: { NAME: { supplier: NAME, every: 1s, out: my-topic } }",
    },
    WorldInfo {
        world: World::Aggregator,
        name: "aggregator",
        export: "finish",
        python: "def finish(self, state)",
        summary: "a windowed aggregate whose state kfn keeps (init, add, merge, finish)",
        example: "analytics: { my-store: { in: my-topic, key: /name, window: { tumbling: 1m }, aggregate: { function: NAME }, serve: /my-store } }",
    },
];

impl World {
    pub fn info(self) -> &'static WorldInfo {
        WORLDS
            .iter()
            .find(|w| w.world == self)
            .expect("every world has a row")
    }

    /// The world called `name` in WIT.
    pub fn named(name: &str) -> Option<World> {
        WORLDS.iter().find(|w| w.name == name).map(|w| w.world)
    }

    /// Every world's name, in table order.
    pub fn names() -> Vec<&'static str> {
        WORLDS.iter().map(|w| w.name).collect()
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The export that identifies the world.
    pub fn export(self) -> &'static str {
        self.info().export
    }

    /// Whether a guest of world `guest` can serve where `self` is needed: a
    /// `batch-function` serves wherever a `function` does.
    pub fn takes(self, guest: World) -> bool {
        self == guest || (self, guest) == (World::Function, World::BatchFunction)
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
        let mut matching = WORLDS
            .iter()
            .filter(|w| exports.iter().any(|e| e == w.export));
        match (matching.next(), matching.next()) {
            (Some(one), None) => Ok(one.world),
            _ => Err(exports),
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kfn:component/{}", self.name())
    }
}

/// `kfn:component/function exports `process`, consumer `consume`, ...`: what the
/// error for a component of no known world lists.
fn known_exports() -> String {
    WORLDS
        .iter()
        .map(|w| format!("{} `{}`", w.world, w.export))
        .collect::<Vec<_>>()
        .join(", ")
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
        "{file}: exports none of the kfn worlds ({}); it exports: {}",
        known_exports(),
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
