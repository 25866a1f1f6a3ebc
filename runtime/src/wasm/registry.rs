//! The function registry: one [`Slot`] per function name, holding the prepared
//! current version behind an `ArcSwap`. Loading compiles off the data path and swaps
//! atomically; a failed load keeps the running version and records the error.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use wasmtime::component::InstancePre;

use super::bindings::{
    aggregator::AggregatorPre, batch_function::BatchFunctionPre, consumer::ConsumerPre,
    function::FunctionPre, supplier::SupplierPre,
};
use super::engine::WasmEngine;
use super::host::HostState;
use super::{LoadError, World};
use crate::observe::{EventKind, Events};

/// A version of a function ready to instantiate.
pub struct Prepared {
    pub world: World,
    pub hash: String,
    pub generation: u64,
    pub(super) pre: Pre,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("world", &self.world)
            .field("hash", &self.hash)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

pub(super) enum Pre {
    Function(FunctionPre<HostState>),
    BatchFunction(BatchFunctionPre<HostState>),
    Consumer(ConsumerPre<HostState>),
    Supplier(SupplierPre<HostState>),
    Aggregator(AggregatorPre<HostState>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionStatus {
    /// No `.wasm` loaded (never was, or it was deleted): its bindings are paused.
    Missing,
    Compiling,
    Ready,
    /// The last load failed; a previously loaded version may still be running.
    Error,
}

/// What the API shows about a function.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FunctionInfo {
    pub name: String,
    pub status: FunctionStatus,
    pub world: Option<World>,
    pub hash: Option<String>,
    pub generation: u64,
    pub loaded_at_ms: Option<i64>,
    pub size_bytes: Option<u64>,
    pub compile_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// One function name's current version and status.
pub struct Slot {
    current: ArcSwapOption<Prepared>,
    info: Mutex<FunctionInfo>,
    generation: watch::Sender<u64>,
}

impl Slot {
    fn new(name: &str) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            info: Mutex::new(FunctionInfo {
                name: name.to_string(),
                status: FunctionStatus::Missing,
                world: None,
                hash: None,
                generation: 0,
                loaded_at_ms: None,
                size_bytes: None,
                compile_ms: None,
                last_error: None,
            }),
            generation: watch::channel(0).0,
        }
    }

    pub fn name(&self) -> String {
        self.lock_info().name.clone()
    }

    /// The running version, if any.
    pub fn current(&self) -> Option<Arc<Prepared>> {
        self.current.load_full()
    }

    pub fn info(&self) -> FunctionInfo {
        self.lock_info().clone()
    }

    /// Resolves when the slot's version changes (loaded, swapped or removed).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn lock_info(&self) -> std::sync::MutexGuard<'_, FunctionInfo> {
        // The info is plain data, always left consistent: a poisoned lock is usable.
        self.info.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// All functions by name.
pub struct Registry {
    engine: Arc<WasmEngine>,
    slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    next_generation: AtomicU64,
    events: Events,
}

impl Registry {
    pub fn new(engine: Arc<WasmEngine>, events: Events) -> Arc<Self> {
        Arc::new(Self {
            engine,
            slots: Mutex::new(BTreeMap::new()),
            next_generation: AtomicU64::new(1),
            events,
        })
    }

    pub fn engine(&self) -> &Arc<WasmEngine> {
        &self.engine
    }

    /// The slot for `name`, created empty (status missing) if unknown.
    pub fn slot(&self, name: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Slot::new(name)))
            .clone()
    }

    pub fn list(&self) -> Vec<FunctionInfo> {
        let slots: Vec<Arc<Slot>> = {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.values().cloned().collect()
        };
        slots.iter().map(|s| s.info()).collect()
    }

    /// Reads, compiles and links `path` as the new version of `name`, then swaps it
    /// in. Blocking (compiling can take seconds): run it off the data path, e.g.
    /// through [`Registry::load`]. On failure the running version stays.
    pub fn load_blocking(&self, name: &str, path: &Path) -> Result<Arc<Prepared>, LoadError> {
        let slot = self.slot(name);
        // The same bytes again (a touch, a rebuild with no change): keep what runs.
        if let (Some(current), Ok(bytes)) = (slot.current(), std::fs::read(path))
            && blake3::hash(&bytes).to_hex().as_str() == current.hash
        {
            let mut info = slot.lock_info();
            if info.status == FunctionStatus::Error {
                info.status = FunctionStatus::Ready;
                info.last_error = None;
            }
            return Ok(current);
        }
        slot.lock_info().status = FunctionStatus::Compiling;
        let result = self.prepare(path);
        let mut info = slot.lock_info();
        match result {
            Ok((prepared, compiled_ms, size, from_cache)) => {
                let prepared = Arc::new(prepared);
                slot.current.store(Some(prepared.clone()));
                info.status = FunctionStatus::Ready;
                info.world = Some(prepared.world);
                info.hash = Some(prepared.hash.clone());
                info.generation = prepared.generation;
                info.loaded_at_ms = Some(crate::record::now_ms());
                info.size_bytes = Some(size);
                info.compile_ms = Some(compiled_ms);
                info.last_error = None;
                drop(info);
                slot.generation.send_replace(prepared.generation);
                let how = if from_cache { "from cache" } else { "compiled" };
                tracing::info!(function = name, hash = &prepared.hash[..12], generation = prepared.generation, world = %prepared.world, ms = compiled_ms, "function loaded ({how})");
                self.events.emit(
                    EventKind::FunctionLoaded,
                    name,
                    format!(
                        "version {} (generation {}, {}, {how} in {compiled_ms} ms)",
                        &prepared.hash[..12],
                        prepared.generation,
                        prepared.world
                    ),
                );
                Ok(prepared)
            }
            Err(err) => {
                let kept = slot.current();
                info.status = if kept.is_some() {
                    FunctionStatus::Error
                } else {
                    FunctionStatus::Missing
                };
                let message = match &kept {
                    Some(p) => format!("{err}; still running version {}", &p.hash[..12]),
                    None => err.to_string(),
                };
                info.last_error = Some(message.clone());
                drop(info);
                tracing::error!(function = name, "function rejected: {message}");
                self.events.emit(EventKind::FunctionRejected, name, message);
                Err(err)
            }
        }
    }

    /// [`Registry::load_blocking`] on the blocking thread pool.
    pub async fn load(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
    ) -> Result<Arc<Prepared>, LoadError> {
        let this = self.clone();
        let (name, path) = (name.to_string(), path.to_path_buf());
        tokio::task::spawn_blocking(move || this.load_blocking(&name, &path))
            .await
            .map_err(|e| LoadError::Engine {
                message: format!("load task failed: {e}"),
            })?
    }

    /// Unloads `name` (its `.wasm` was deleted): its bindings pause until it returns.
    pub fn remove(&self, name: &str, reason: &str) {
        let slot = self.slot(name);
        let had = slot.current.swap(None).is_some();
        {
            let mut info = slot.lock_info();
            info.status = FunctionStatus::Missing;
            info.world = None;
            info.hash = None;
            info.last_error = Some(reason.to_string());
        }
        slot.generation.send_modify(|g| *g += 1);
        if had {
            tracing::warn!(function = name, "function removed: {reason}");
            self.events
                .emit(EventKind::FunctionRemoved, name, reason.to_string());
        }
    }

    /// Marks `name` as failed to build (e.g. a syntax error: `message` names the file
    /// and line): status `error` with the message, on `/api/functions` and the
    /// dashboard. A loaded version keeps running, and the message says which.
    pub fn report_error(&self, name: &str, message: String) {
        let slot = self.slot(name);
        let message = match slot.current() {
            Some(p) => format!("{message}\n(still running version {})", &p.hash[..12]),
            None => message,
        };
        {
            let mut info = slot.lock_info();
            info.status = FunctionStatus::Error;
            info.last_error = Some(message.clone());
        }
        tracing::error!(function = name, "function did not build: {message}");
        self.events.emit(EventKind::FunctionRejected, name, message);
    }

    fn prepare(&self, path: &Path) -> Result<(Prepared, u64, u64, bool), LoadError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| LoadError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let compiled = self.engine.compile(path, &bytes)?;
        let link_err = |e: wasmtime::Error| LoadError::Link {
            file: file.clone(),
            world: compiled.world,
            message: format!("{e:#}"),
        };
        let instance_pre: InstancePre<HostState> = self
            .engine
            .linker()
            .instantiate_pre(&compiled.component)
            .map_err(link_err)?;
        let pre = match compiled.world {
            World::Function => Pre::Function(FunctionPre::new(instance_pre).map_err(link_err)?),
            World::BatchFunction => {
                Pre::BatchFunction(BatchFunctionPre::new(instance_pre).map_err(link_err)?)
            }
            World::Consumer => Pre::Consumer(ConsumerPre::new(instance_pre).map_err(link_err)?),
            World::Supplier => Pre::Supplier(SupplierPre::new(instance_pre).map_err(link_err)?),
            World::Aggregator => {
                Pre::Aggregator(AggregatorPre::new(instance_pre).map_err(link_err)?)
            }
        };
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        Ok((
            Prepared {
                world: compiled.world,
                hash: compiled.hash,
                generation,
                pre,
            },
            compiled.compile_ms,
            compiled.size_bytes,
            compiled.from_cache,
        ))
    }
}
