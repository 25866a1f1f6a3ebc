//! The wasmtime engine kfn runs every function on: configuration (epoch interruption
//! for CPU-time limits), the shared linker (WASI + the `host` interface), and
//! compilation through a precompiled-artifact cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::bindings;
use super::host::HostState;
use super::{LoadError, World};

/// How often the epoch ticks. CPU-time limits are rounded up to whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A compiled component plus what we learned compiling it.
pub struct Compiled {
    pub component: Component,
    pub world: World,
    /// Hex blake3 of the `.wasm` bytes: the function's version.
    pub hash: String,
    pub size_bytes: u64,
    /// Time spent compiling, or loading from the cache.
    pub compile_ms: u64,
    pub from_cache: bool,
}

/// The engine and linker shared by every function.
pub struct WasmEngine {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl WasmEngine {
    /// Builds the engine. `cache_dir` holds precompiled artifacts keyed by the wasm's
    /// hash and the engine's compatibility hash; `None` disables the cache.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Arc<Self>, LoadError> {
        let mut config = Config::new();
        // Epoch interruption costs a few percent per call and is the only way to stop
        // a guest that loops forever without giving it its own thread.
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| LoadError::Engine {
            message: format!("{e:#}"),
        })?;

        let mut linker = Linker::new(&engine);
        let link = |r: wasmtime::Result<()>| {
            r.map_err(|e| LoadError::Engine {
                message: format!("linking host interfaces: {e:#}"),
            })
        };
        link(wasmtime_wasi::p2::add_to_linker_sync(&mut linker))?;
        link(bindings::host::add_to_linker::<HostState, HostState>(
            &mut linker,
            |s| s,
        ))?;

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| LoadError::Engine {
                message: format!("creating the compile cache {}: {e}", dir.display()),
            })?;
        }

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("kfn-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| LoadError::Engine {
                    message: format!("starting the epoch ticker: {e}"),
                })?;
        }

        Ok(Arc::new(Self {
            engine,
            linker,
            cache_dir,
            ticker_stop,
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Compiles `bytes` (read from `path`, used in messages) into a component of a
    /// known world, going through the cache. Blocking and CPU-heavy: call it off the
    /// data path.
    pub fn compile(&self, path: &Path, bytes: &[u8]) -> Result<Compiled, LoadError> {
        let started = Instant::now();
        let hash = blake3::hash(bytes).to_hex().to_string();
        let file = path.display().to_string();

        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm { file });
        }
        // Core modules have version 1 and layer 0; components have layer 1.
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(LoadError::CoreModule { file });
        }

        let (component, from_cache) = match self.cache_path(&hash) {
            Some(cached) if cached.exists() => {
                // SAFETY: the cache directory is written only by kfn, with artifacts
                // produced by `precompile_component` of an engine with the same
                // compatibility hash (it is part of the file name), and files are
                // renamed into place only once complete.
                match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                    Ok(c) => (c, true),
                    Err(e) => {
                        tracing::warn!(file = %cached.display(), error = %e, "ignoring unusable cached artifact");
                        let _ = std::fs::remove_file(&cached);
                        (self.compile_and_cache(&file, bytes, Some(&cached))?, false)
                    }
                }
            }
            cached => (
                self.compile_and_cache(&file, bytes, cached.as_deref())?,
                false,
            ),
        };

        let world =
            World::of(&self.engine, &component).map_err(|exports| LoadError::UnknownWorld {
                file: file.clone(),
                exports,
            })?;

        Ok(Compiled {
            component,
            world,
            hash,
            size_bytes: bytes.len() as u64,
            compile_ms: started.elapsed().as_millis() as u64,
            from_cache,
        })
    }

    fn compile_and_cache(
        &self,
        file: &str,
        bytes: &[u8],
        cached: Option<&Path>,
    ) -> Result<Component, LoadError> {
        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            file: file.to_string(),
            message: format!("{e:#}"),
        };
        let Some(cached) = cached else {
            return Component::new(&self.engine, bytes).map_err(compile_err);
        };
        let artifact = self
            .engine
            .precompile_component(bytes)
            .map_err(compile_err)?;
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::write(&tmp, &artifact).and_then(|()| std::fs::rename(&tmp, cached));
        if let Err(e) = written {
            // A cache we cannot write costs a recompile next time, nothing more.
            tracing::warn!(file = %cached.display(), error = %e, "could not write the compile cache");
            let _ = std::fs::remove_file(&tmp);
        }
        // SAFETY: `artifact` was produced just now by this engine.
        unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(compile_err)
    }

    fn cache_path(&self, hash: &str) -> Option<PathBuf> {
        use std::hash::{Hash, Hasher};
        let dir = self.cache_dir.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        Some(dir.join(format!("{hash}-{:016x}.cwasm", h.finish())))
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
