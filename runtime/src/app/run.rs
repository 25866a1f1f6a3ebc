//! Starting a record-driven binding: its source and its loop (at-least-once or
//! exactly-once).

use crate::config::Guarantee;
use crate::kafka::{KafkaSettings, Source, TxnSink};
use crate::observe::EventKind;
use crate::pipeline::{self, Binding};

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

/// Runs a record-driven binding with the loop its guarantee needs. Under
/// exactly-once the transactional producer is registered first, which aborts
/// whatever this instance's predecessor left open, so that restoring state reads
/// settled data.
pub(super) async fn run_binding<S: pipeline::Step + 'static>(
    settings: KafkaSettings,
    guarantee: Guarantee,
    binding: Binding,
    step: S,
) {
    if guarantee == Guarantee::AtLeastOnce {
        return pipeline::run_records(binding, step).await;
    }
    if settings.embedded {
        binding.events.emit(
            EventKind::Info,
            &binding.name,
            "exactly-once on the embedded broker: transactions are accepted but not enforced (use a real cluster)",
        );
    }
    let (name, settings_) = (binding.name.clone(), settings.clone());
    match tokio::task::spawn_blocking(move || TxnSink::new(&settings_, &name)).await {
        Ok(Ok(txn)) => pipeline::run_records_exactly_once(binding, settings, txn, step).await,
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
