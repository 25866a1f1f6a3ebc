//! What a guest can reach: the `host` interface (log, config, time) and a locked-down
//! WASI (clocks, random; no filesystem, no network, no environment), plus the
//! per-store memory limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::{HasData, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Level, host};

/// Who is calling: used to tag guest log lines.
#[derive(Debug, Clone)]
pub struct GuestIdentity {
    pub binding: Arc<str>,
    pub function: Arc<str>,
}

/// The data of one `Store`: one per worker, rebuilt after a trap.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: MemoryLimit,
    identity: GuestIdentity,
    config: LiveConfig,
}

/// A binding's `config:` values, swapped in place when kfn.yaml changes them: every
/// `config(key)` call reads the current map (one atomic load), so a running instance
/// sees new values from its next call on, without a restart.
pub type LiveConfig = Arc<arc_swap::ArcSwap<BTreeMap<String, String>>>;

impl HostState {
    pub fn new(identity: GuestIdentity, config: LiveConfig, memory_bytes: u64) -> Self {
        let limits = MemoryLimit {
            max_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            hit: false,
            used: 0,
        };
        Self {
            // No preopens, no env, no args, no sockets: WASI here is only clocks,
            // random and (discarded) stdio that language runtimes expect to exist.
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build(),
            table: ResourceTable::new(),
            limits,
            identity,
            config,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HasData for HostState {
    type Data<'a> = &'a mut HostState;
}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let binding = &*self.identity.binding;
        let function = &*self.identity.function;
        match level {
            Level::Trace => tracing::trace!(target: "kfn::guest", binding, function, "{message}"),
            Level::Debug => tracing::debug!(target: "kfn::guest", binding, function, "{message}"),
            Level::Info => tracing::info!(target: "kfn::guest", binding, function, "{message}"),
            Level::Warn => tracing::warn!(target: "kfn::guest", binding, function, "{message}"),
            Level::Error => tracing::error!(target: "kfn::guest", binding, function, "{message}"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.load().get(&key).cloned()
    }

    fn now_ms(&mut self) -> i64 {
        crate::record::now_ms()
    }
}

/// Caps the linear memory of a store and remembers whether a guest hit the cap, so a
/// trap that follows (Rust guests abort on allocation failure) can be reported as
/// "memory limit reached" rather than a bare `unreachable`.
#[derive(Debug)]
pub struct MemoryLimit {
    max_bytes: usize,
    pub(super) hit: bool,
    /// The largest linear memory granted so far.
    used: usize,
}

impl MemoryLimit {
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Whether the guest has grown past three quarters of its cap: worth a fresh
    /// instance before the next call, rather than a trap in the middle of one.
    pub fn nearly_full(&self) -> bool {
        self.used > self.max_bytes / 4 * 3
    }
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_bytes;
        self.hit |= !ok;
        if ok {
            self.used = self.used.max(desired);
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any real
        // guest and bounds the host memory a table can take.
        Ok(desired <= 1_000_000)
    }
}
