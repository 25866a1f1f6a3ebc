//! The typed events of a binding (after vector's `internal_events`): one struct per
//! thing that happens, whose [`Emit::emit`] does everything that is said about it:
//! the log line (fields first), the counters behind `/api/bindings` and `/metrics`,
//! the status, and the event on the feed. A call site builds the value and emits it;
//! it never logs, counts or broadcasts by hand, so the three cannot drift.
//!
//! Counting follows the pipeline's rule: a record counts when its effects are
//! durable ([`RecordsSettled`]), not when it is handled ([`RecordFailed`] only
//! reports), so a record retried after an aborted transaction counts once.

use super::{BindingState, BindingStats, EventKind, Events, FailureKind, Failures};

/// Where a binding's events go.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub binding: &'a str,
    pub stats: &'a BindingStats,
    pub events: &'a Events,
}

/// One thing that happened to a binding.
pub trait Emit {
    fn emit(self, to: Scope<'_>);
}

/// Records whose effects became durable (acknowledged, or committed with their
/// transaction).
pub struct RecordsSettled<'a> {
    pub records: u64,
    pub outputs: u64,
    pub failures: Failures,
    pub dead_lettered: u64,
    /// The settled records' timestamps (ms): how long each took from being written
    /// to being done (`kfn_end_to_end_seconds`).
    pub timestamps: &'a [i64],
}

impl Emit for RecordsSettled<'_> {
    fn emit(self, to: Scope<'_>) {
        to.stats.add_settled(
            self.records,
            self.outputs,
            self.failures,
            self.dead_lettered,
        );
        let now = crate::record::now_ms();
        for ts in self.timestamps {
            // A producer's clock ahead of ours is not negative latency.
            let ms = (now - ts).max(0);
            to.stats.end_to_end_seconds.observe(ms as f64 / 1000.0);
        }
    }
}

/// A record failed and goes to the dead-letter topic (it counts when settled).
pub struct RecordFailed<'a> {
    pub function: Option<&'a str>,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub dlq: &'a str,
    pub kind: FailureKind,
    pub error: &'a str,
    pub attempts: u32,
}

impl Emit for RecordFailed<'_> {
    fn emit(self, to: Scope<'_>) {
        let RecordFailed {
            function,
            topic,
            partition,
            offset,
            dlq,
            kind,
            error,
            attempts,
        } = self;
        tracing::warn!(
            binding = %to.binding, function = function.unwrap_or("-"), %topic, partition, offset,
            dlq, attempts, kind = kind.label(), "record failed: {error}"
        );
        let after = if attempts > 1 {
            format!(" (after {attempts} attempts)")
        } else {
            String::new()
        };
        to.events.emit(
            kind.event_kind(),
            to.binding,
            format!("{topic}[{partition}]@{offset}: {error}{after} → {dlq}"),
        );
    }
}

/// The binding runs (again) after starting or a pause.
pub struct BindingRunning;

impl Emit for BindingRunning {
    fn emit(self, to: Scope<'_>) {
        if to.stats.set_state(BindingState::Running, None) {
            tracing::info!(binding = %to.binding, "binding running");
            to.events
                .emit(EventKind::BindingResumed, to.binding, "running");
        }
    }
}

/// The binding waits (a function missing or broken) on the record it was about to
/// process.
pub struct BindingPaused {
    pub reason: String,
}

impl Emit for BindingPaused {
    fn emit(self, to: Scope<'_>) {
        if to
            .stats
            .set_state(BindingState::Paused, Some(self.reason.clone()))
        {
            tracing::warn!(binding = %to.binding, "binding paused: {}", self.reason);
            to.events
                .emit(EventKind::BindingPaused, to.binding, self.reason);
        }
    }
}

/// A Kafka transaction committed (`kfn_transactions_total{outcome="committed"}`).
pub struct TransactionCommitted {
    /// It is the first to commit after aborts: say so on the feed.
    pub after_aborts: bool,
}

impl Emit for TransactionCommitted {
    fn emit(self, to: Scope<'_>) {
        to.stats
            .txn_committed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.after_aborts {
            tracing::info!(binding = %to.binding, "transactions commit again");
            to.events
                .emit(EventKind::Broker, to.binding, "transactions commit again");
        }
    }
}

/// A Kafka transaction aborted (`kfn_transactions_total{outcome="aborted"}`).
pub struct TransactionAborted<'a> {
    pub message: &'a str,
    /// The binding cannot go on (stopped).
    pub stop: bool,
    /// Worth a line and an event (the first of a series, or one that refused
    /// records): a broker outage aborts every attempt, said once.
    pub report: bool,
}

impl Emit for TransactionAborted<'_> {
    fn emit(self, to: Scope<'_>) {
        to.stats
            .txn_aborted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.stop {
            let reason = format!("transaction failed, stopped: {}", self.message);
            tracing::error!(binding = %to.binding, "{reason}");
            to.events
                .emit(EventKind::Broker, to.binding, reason.clone());
            to.stats.set_state(BindingState::Stopped, Some(reason));
        } else if self.report {
            tracing::warn!(binding = %to.binding, "transaction aborted; its records will be read and processed again: {}", self.message);
            to.events.emit(
                EventKind::Broker,
                to.binding,
                format!("transaction aborted, retrying: {}", self.message),
            );
        }
    }
}

/// Restoring a partition's window state from its changelog got this far
/// (`kfn_restore_records{state="done"|"total"}`).
pub struct RestoreProgress<'a> {
    pub partition: i32,
    pub changelog: &'a str,
    pub done: u64,
    pub total: u64,
}

impl Emit for RestoreProgress<'_> {
    fn emit(self, to: Scope<'_>) {
        to.stats.set_progress(self.done, self.total);
        to.stats.set_state(
            BindingState::Starting,
            Some(format!(
                "restoring partition {} from {}: {} of {} records",
                self.partition, self.changelog, self.done, self.total
            )),
        );
    }
}

/// Reading the input failed (`ok: false`, said once per outage) or works again.
pub struct InputRead<'a> {
    pub topic: &'a str,
    pub error: Option<&'a str>,
}

impl Emit for InputRead<'_> {
    fn emit(self, to: Scope<'_>) {
        match self.error {
            Some(e) => {
                tracing::warn!(binding = %to.binding, topic = %self.topic, error = %e, "cannot read from Kafka; retrying");
                to.events.emit(
                    EventKind::Broker,
                    to.binding,
                    format!("cannot read {}: {e}", self.topic),
                );
            }
            None => to.events.emit(
                EventKind::Broker,
                to.binding,
                format!("reading {} again", self.topic),
            ),
        }
    }
}
