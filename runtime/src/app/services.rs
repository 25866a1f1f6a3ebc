//! The app's background services: loading functions at start, sampling rates, and
//! probing the broker's health.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::http::Health;
use crate::kafka::Sink;
use crate::observe::{Bindings, EventKind, Events};
use crate::wasm::Registry;

/// Loads the `*.wasm` in `dir` that the app binds (`needed`), compiling in parallel on
/// the blocking pool. The others are not compiled: a JavaScript or Python component
/// takes seconds of both cores, for nothing until kfn.yaml binds it (and then kfn is
/// restarted anyway), and it would hold up start-up and shutdown.
pub(super) async fn load_all(registry: &Arc<Registry>, dir: &Path, needed: &BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return tracing::warn!(dir = %dir.display(), "functions directory not readable");
    };
    let mut loads = JoinSet::new();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.extension().is_some_and(|e| e == "wasm")
            && let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned())
            && needed.contains(&name)
        {
            let registry = registry.clone();
            loads.spawn(async move {
                let _ = registry.load(&name, &path).await;
            });
        }
    }
    while loads.join_next().await.is_some() {}
}

pub(super) async fn sample_rates(bindings: Bindings, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => bindings.list().iter().for_each(|b| b.sample_rates(1.0)),
        }
    }
}

pub(super) async fn probe_broker(
    sink: Sink,
    health: Arc<Health>,
    events: Events,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = sink.clone();
        let result = tokio::task::spawn_blocking(move || s.ping(Duration::from_secs(2)))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let down = result.is_err();
        let detail = result.clone().err();
        if health.set(result) {
            let message = match (down, detail) {
                (true, Some(d)) => format!("broker unreachable: {d}"),
                (true, None) => "broker unreachable".into(),
                (false, _) => "broker reachable again".into(),
            };
            tracing::warn!("{message}");
            events.emit(EventKind::Broker, "kafka", message);
        }
    }
}
