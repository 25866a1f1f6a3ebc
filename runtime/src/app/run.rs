//! Starting a record-driven binding: its source, its loop (at-least-once or
//! exactly-once), and restoring a store's state before its stage reads a record.

use std::sync::Arc;

use crate::config::Guarantee;
use crate::kafka::{KafkaSettings, Source, TxnSink};
use crate::observe::{BindingStats, EventKind, Events};
use crate::pipeline::{self, Binding};
use crate::window::WindowStore;

/// A binding's source: exactly-once bindings read only committed records and commit
/// offsets inside their transactions.
pub(super) fn source(
    settings: &KafkaSettings,
    name: &str,
    topic: &str,
    guarantee: Guarantee,
) -> Result<Source, rdkafka::error::KafkaError> {
    match guarantee {
        Guarantee::AtLeastOnce => Source::new(settings, name, topic),
        Guarantee::ExactlyOnce => Source::transactional(settings, name, topic),
    }
}

/// Runs a record-driven binding with the loop its guarantee needs.
pub(super) async fn run_binding<S: pipeline::Step + 'static>(
    settings: KafkaSettings,
    guarantee: Guarantee,
    binding: Binding,
    step: S,
) {
    run_binding_after(settings, guarantee, binding, step, async { true }).await;
}

/// [`run_binding`], once `ready` (e.g. restoring state) says true. Under exactly-once
/// the transactional producer is registered first, which aborts whatever a crashed
/// predecessor left open, so that `ready` reads settled data.
pub(super) async fn run_binding_after<S: pipeline::Step + 'static>(
    settings: KafkaSettings,
    guarantee: Guarantee,
    binding: Binding,
    step: S,
    ready: impl std::future::Future<Output = bool>,
) {
    if guarantee == Guarantee::AtLeastOnce {
        if ready.await {
            pipeline::run_records(binding, step).await;
        }
        return;
    }
    if settings.embedded {
        binding.events.emit(
            EventKind::Info,
            &binding.name,
            "exactly-once on the embedded broker: transactions are accepted but not enforced (use a real cluster)",
        );
    }
    let name = binding.name.clone();
    match tokio::task::spawn_blocking(move || TxnSink::new(&settings, &name)).await {
        Ok(Ok(txn)) => {
            if ready.await {
                pipeline::run_records_exactly_once(binding, txn, step).await;
            }
        }
        Ok(Err(e)) => {
            let reason = format!("cannot start transactions: {e}");
            tracing::error!(binding = %binding.name, "{reason}");
            binding
                .events
                .emit(EventKind::Broker, &binding.name, reason.clone());
            binding
                .stats
                .set_state(crate::observe::BindingState::Stopped, Some(reason));
        }
        Err(e) => {
            binding
                .stats
                .set_state(crate::observe::BindingState::Stopped, Some(e.to_string()));
        }
    }
}

/// Replays a store's changelog into it, showing progress on the stage's status.
/// Returns false if the changelog cannot be read (the stage then stays stopped, with
/// the reason shown, rather than run on incomplete state).
pub(super) async fn restore(
    settings: &KafkaSettings,
    changelog: &str,
    store: Arc<WindowStore>,
    stats: &Arc<BindingStats>,
    events: &Events,
) -> bool {
    let started = std::time::Instant::now();
    let (settings_, topic, progress_stats) =
        (settings.clone(), changelog.to_string(), stats.clone());
    let replayed = tokio::task::spawn_blocking(move || {
        let mut bad = 0u64;
        let n = crate::kafka::replay(
            &settings_,
            &topic,
            |key, value| {
                if store.restore(key, value).is_err() {
                    bad += 1;
                }
            },
            |done, total| {
                progress_stats.set_state(
                    crate::observe::BindingState::Starting,
                    Some(format!(
                        "restoring state from {topic}: {done} of {total} records"
                    )),
                );
            },
        );
        n.map(|n| (n, bad))
    })
    .await;
    let name = &stats.name;
    match replayed {
        Ok(Ok((n, bad))) => {
            let ms = started.elapsed().as_millis();
            if n > 0 {
                let skipped = if bad > 0 {
                    format!(" ({bad} unreadable records skipped)")
                } else {
                    String::new()
                };
                tracing::info!(store = %name, records = n, ms, "state restored from {changelog}{skipped}");
                events.emit(
                    EventKind::Info,
                    name,
                    format!("state restored: {n} changelog records in {ms} ms{skipped}"),
                );
            }
            true
        }
        Ok(Err(e)) => {
            let reason = format!("cannot restore state from {changelog}: {e}");
            tracing::error!(store = %name, "{reason}");
            events.emit(EventKind::Broker, name, reason.clone());
            stats.set_state(crate::observe::BindingState::Stopped, Some(reason));
            false
        }
        Err(e) => {
            stats.set_state(
                crate::observe::BindingState::Stopped,
                Some(format!("restore failed: {e}")),
            );
            false
        }
    }
}
