//! A supplier binding: call the function every `every`, send what it returns.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::kafka::Sink;
use crate::observe::event::{BindingPaused, BindingRunning, Emit, Scope};
use crate::observe::{BindingState, BindingStats, EventKind, Events, FailureKind};
use crate::wasm::Worker;

pub struct Supplier {
    pub name: String,
    pub function: String,
    pub worker: Worker,
    pub sink: Sink,
    pub out: String,
    pub every: Duration,
    pub stats: Arc<BindingStats>,
    pub events: Events,
    pub shutdown: CancellationToken,
}

pub async fn run_supplier(s: Supplier) {
    let Supplier { worker, .. } = s;
    let worker = match super::Dedicated::spawn(&s.name, worker) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(binding = %s.name, error = %e, "cannot start the binding's worker thread");
            return;
        }
    };
    let mut tick = tokio::time::interval(s.every);
    // A slow tick (e.g. a compile on the same core) is not made up with a burst.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sends = tokio::task::JoinSet::new();
    s.stats.set_state(BindingState::Running, None);
    loop {
        tokio::select! {
            () = s.shutdown.cancelled() => break,
            Some(_) = sends.join_next(), if !sends.is_empty() => continue,
            _ = tick.tick() => {}
        }
        let scope = Scope {
            binding: &s.name,
            stats: &s.stats,
            events: &s.events,
        };
        match worker.run(|w| w.supply()).await {
            Ok(outputs) => {
                BindingRunning.emit(scope);
                s.stats.add_in(1);
                for out in outputs {
                    let (sink, stats, topic, name) = (
                        s.sink.clone(),
                        s.stats.clone(),
                        s.out.clone(),
                        s.name.clone(),
                    );
                    sends.spawn(async move {
                        match sink.send(&topic, &out).await {
                            Ok(_) => stats.add_out(1),
                            Err(e) => {
                                stats.add_error(FailureKind::OutputRefused);
                                tracing::warn!(binding = %name, %topic, error = %e, "supplied record rejected by the broker");
                            }
                        }
                    });
                }
            }
            Err(e) if let Some(kind) = e.failure_kind() => {
                s.stats.add_in(1);
                s.stats.add_error(kind);
                tracing::warn!(binding = %s.name, function = %s.function, "supply failed: {e}");
                s.events.emit(
                    EventKind::RecordFailed,
                    &s.name,
                    format!("supply failed: {e}"),
                );
            }
            Err(e) => {
                BindingPaused {
                    reason: e.to_string(),
                }
                .emit(scope);
                let mut changes = worker.run(|w| w.changes()).await;
                tokio::select! {
                    () = s.shutdown.cancelled() => break,
                    _ = changes.changed() => {}
                }
            }
        }
    }
    while sends.join_next().await.is_some() {}
    s.stats.set_state(BindingState::Stopped, None);
}
