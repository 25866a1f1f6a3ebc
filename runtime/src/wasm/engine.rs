//! The wasmtime engine kfn runs every function on: configuration (epoch interruption
//! for CPU-time limits), the shared linker (WASI + the `host` interface), and
//! compilation through a precompiled-artifact cache.
//!
//! The cache is pruned when an engine opens it ([`prune`]): artifacts of another
//! engine (another kfn or wasmtime version: never loadable again), artifacts unused
//! for [`CACHE_MAX_AGE`], and the least recently used beyond [`CACHE_MAX_BYTES`].
//! Every rebuild of a JavaScript or Python function leaves a 20-60 MB artifact behind,
//! so without this the folder only grows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::bindings;
use super::host::HostState;
use super::{LoadError, World};

/// Cached artifacts unused for this long are deleted.
pub const CACHE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The cache is kept under this size, least recently used first out.
pub const CACHE_MAX_BYTES: u64 = 2 << 30;

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
            let suffix = artifact_suffix(&engine);
            let removed = prune(dir, &suffix, CACHE_MAX_AGE, CACHE_MAX_BYTES);
            if removed > 0 {
                tracing::info!(dir = %dir.display(), removed, "compile cache pruned");
            }
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
                // Used now: the age and size limits of `prune` go by this time.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&cached)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
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
        let dir = self.cache_dir.as_ref()?;
        Some(dir.join(format!("{hash}{}", artifact_suffix(&self.engine))))
    }
}

/// The end of every artifact name this engine writes: `-<compatibility hash>.cwasm`.
fn artifact_suffix(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("-{:016x}.cwasm", h.finish())
}

/// Deletes from `dir` the artifacts not ending in `suffix`, those unused for `max_age`,
/// leftovers of interrupted writes, and then the least recently used until the rest
/// fits in `max_bytes`. Returns how many files it deleted; failures are skipped (a
/// file another kfn holds open stays, and is tried again next time).
pub fn prune(dir: &Path, suffix: &str, max_age: Duration, max_bytes: u64) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let age = |t: std::time::SystemTime| now.duration_since(t).unwrap_or_default();
    let mut removed = 0;
    let mut remove = |path: &Path| {
        if std::fs::remove_file(path).is_ok() {
            removed += 1;
        }
    };
    let mut kept = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        let used = meta.modified().unwrap_or(now);
        if !meta.is_file() {
            continue;
        }
        if name.contains(".tmp") {
            // Another kfn may be writing it right now.
            if age(used) > Duration::from_secs(3600) {
                remove(&path);
            }
        } else if !name.ends_with(".cwasm") {
            continue;
        } else if !name.ends_with(suffix) || age(used) > max_age {
            remove(&path);
        } else {
            kept.push((used, meta.len(), path));
        }
    }
    kept.sort_by_key(|k| std::cmp::Reverse(k.0));
    let mut total = 0;
    for (_, size, path) in kept {
        total += size;
        if total > max_bytes {
            remove(&path);
        }
    }
    removed
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_this_engines_recent_artifacts_within_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, size: usize, days_ago: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; size]).unwrap();
            let when = std::time::SystemTime::now() - Duration::from_secs(days_ago * 86_400);
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        };
        file("a-mine.cwasm", 10, 0);
        file("b-mine.cwasm", 10, 1);
        file("c-mine.cwasm", 10, 2);
        file("old-mine.cwasm", 10, 40);
        file("other-engine.cwasm", 10, 0);
        file("half-mine.cwasm.tmp123", 10, 1);
        file("unrelated.txt", 10, 400);
        let removed = prune(
            dir.path(),
            "-mine.cwasm",
            Duration::from_secs(30 * 86_400),
            25,
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a-mine.cwasm", "b-mine.cwasm", "unrelated.txt"]);
        assert_eq!(removed, 4);
    }
}
