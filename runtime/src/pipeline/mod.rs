//! The loops that join the stages: Kafka source → step (a wasm function, or the
//! window stage) → Kafka sink, one loop per binding.
//!
//! Every record-driven binding runs [`run_records`]: it reads a record, asks its
//! [`Step`] what to do, sends the outputs (or a dead-letter record), and stores the
//! record's offset only once those sends are acknowledged. Sends are pipelined
//! (up to [`MAX_IN_FLIGHT`] records) and acknowledged in input order, so an offset is
//! never stored ahead of an earlier record's effects: at-least-once.
//!
//! A failing record never stops a binding: it is counted, logged once with its
//! coordinates, dead-lettered, and the loop moves on. A missing or broken *function*
//! pauses the binding (visibly) on the record it was about to process, until a new
//! version is loaded; nothing is skipped.

mod analytics;
mod dedicated;
mod exactly_once;
mod supplier;
mod wasm_step;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::kafka::{Sink, Source, dead_letter};
use crate::observe::{BindingState, BindingStats, EventKind, Events};
use crate::record::{Output, Record};

pub use analytics::{
    AggregateInput, AnalyticsStep, Extract, KeySelector, RepartitionStep, Restorer, ValueSelector,
    run_closer,
};
pub use dedicated::Dedicated;
pub use exactly_once::run_records_exactly_once;
pub use supplier::{Supplier, run_supplier};
pub use wasm_step::{ConsumerStep, FunctionStep, Retry};

/// Records whose outputs are still being acknowledged, per binding.
pub const MAX_IN_FLIGHT: usize = 2_000;

/// What to do with one record.
pub enum Outcome {
    /// Send these (each to its own topic or the binding's `out`), then ack.
    Emit(Vec<Output>),
    /// The record failed (after `attempts` calls): dead-letter it with `error`,
    /// then ack.
    Fail {
        error: String,
        kind: EventKind,
        attempts: u32,
    },
    /// The step cannot run now (function missing or broken): keep the record and
    /// wait until `Step::changed` fires.
    Pause { reason: String },
}

/// The middle of a record-driven binding.
pub trait Step: Send {
    fn handle(&mut self, record: &Record) -> Outcome;
    /// A signal that fires when a paused step may be able to run again.
    fn changed(&self) -> Option<watch::Receiver<u64>>;
    /// The effects of the records handled since the last commit, on these
    /// partitions, were thrown away (an aborted transaction): forget any state they
    /// changed. The records are read again.
    fn rollback(&mut self, _partitions: &[i32]) {}
}

/// Everything a record loop needs besides its step.
pub struct Binding {
    pub name: String,
    pub function: Option<String>,
    pub source: Source,
    pub sink: Sink,
    /// Where outputs without their own topic go (`None`: emitting is a bug).
    pub out: Option<String>,
    pub dlq: String,
    pub stats: Arc<BindingStats>,
    pub events: Events,
    pub shutdown: CancellationToken,
}

/// Records handed to the step's thread at once.
pub const BATCH: usize = 64;

impl Binding {
    fn report_running(&self) {
        if self.stats.set_state(BindingState::Running, None) {
            self.events
                .emit(EventKind::BindingResumed, &self.name, "running");
        }
    }

    /// Counts, logs (once, with the record's coordinates) and reports a failed record.
    fn report_failure(&self, record: &Record, error: &str, kind: EventKind, attempts: u32) {
        self.stats.add_error();
        tracing::warn!(
            binding = %self.name, function = self.function.as_deref().unwrap_or("-"),
            topic = %record.topic, partition = record.partition, offset = record.offset,
            dlq = %self.dlq, attempts, "record failed: {error}"
        );
        self.events.emit(
            kind,
            &self.name,
            format!(
                "{}[{}]@{}: {error} (after {attempts} attempts) → {}",
                record.topic, record.partition, record.offset, self.dlq
            ),
        );
    }

    fn report_pause(&self, reason: String) {
        if self
            .stats
            .set_state(BindingState::Paused, Some(reason.clone()))
        {
            tracing::warn!(binding = %self.name, "binding paused: {reason}");
            self.events
                .emit(EventKind::BindingPaused, &self.name, reason);
        }
    }

    /// Reports a failed read (once per outage) and waits a little before the next.
    async fn report_read_error(&self, broker_down: &mut bool, e: &rdkafka::error::KafkaError) {
        if !std::mem::replace(broker_down, true) {
            tracing::warn!(binding = %self.name, topic = %self.source.topic(), error = %e, "cannot read from Kafka; retrying");
            self.events.emit(
                EventKind::Broker,
                &self.name,
                format!("cannot read {}: {e}", self.source.topic()),
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// Notes a successful read after an outage.
    fn report_read_ok(&self, broker_down: &mut bool) {
        if std::mem::take(broker_down) {
            self.events.emit(
                EventKind::Broker,
                &self.name,
                format!("reading {} again", self.source.topic()),
            );
        }
    }

    /// Drops records whose partition moved to another owner since they were read:
    /// the new owner reads them again.
    fn drop_stale(&self, pending: &mut VecDeque<Record>) {
        let before = pending.len();
        pending.retain(|r| self.source.is_current(r));
        if pending.len() < before {
            tracing::debug!(binding = %self.name, dropped = before - pending.len(), "records of reassigned partitions dropped");
        }
    }

    /// Appends to `pending` what the source has already fetched, up to `max`.
    fn take_fetched(&self, pending: &mut VecDeque<Record>, max: usize) {
        while pending.len() < max {
            match self.source.next().now_or_never() {
                Some(Ok(record)) => pending.push_back(record),
                _ => break,
            }
        }
    }
}

/// Runs `batch` through the step on its thread, stopping at the first record that
/// pauses it: the batch, the outcomes of its first records, and what to wait on.
async fn run_step<S: Step + 'static>(
    step: &Dedicated<S>,
    batch: Vec<Record>,
) -> (Vec<Record>, Vec<Outcome>, Option<watch::Receiver<u64>>) {
    step.run(move |step| {
        let mut outcomes = Vec::with_capacity(batch.len());
        for record in &batch {
            let outcome = step.handle(record);
            let pause = matches!(outcome, Outcome::Pause { .. });
            outcomes.push(outcome);
            if pause {
                return (batch, outcomes, step.changed());
            }
        }
        (batch, outcomes, None)
    })
    .await
}

/// Runs a record-driven binding until shutdown; then drains in-flight sends and
/// commits.
pub async fn run_records<S: Step + 'static>(b: Binding, step: S) {
    let step = match Dedicated::spawn(&b.name, step) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(binding = %b.name, error = %e, "cannot start the binding's worker thread");
            b.stats.set_state(
                BindingState::Stopped,
                Some(format!("no worker thread: {e}")),
            );
            return;
        }
    };
    let mut in_flight = FuturesOrdered::new();
    let mut pending: VecDeque<Record> = VecDeque::new();
    let mut paused: Option<watch::Receiver<u64>> = None;
    let mut broker_down = false;
    b.stats.set_state(BindingState::Running, None);

    loop {
        tokio::select! {
            biased;
            () = b.shutdown.cancelled() => break,
            Some((partition, offset, lease)) = in_flight.next() => {
                b.source.ack(partition, offset, lease);
                continue;
            }
            changed = async { paused.as_mut().expect("guarded").changed().await }, if paused.is_some() => {
                if changed.is_err() {
                    break;
                }
                paused = None;
            }
            next = b.source.next(), if pending.is_empty() && paused.is_none() && in_flight.len() < MAX_IN_FLIGHT => {
                match next {
                    Ok(record) => {
                        b.report_read_ok(&mut broker_down);
                        pending.push_back(record);
                        b.take_fetched(&mut pending, BATCH);
                        b.stats.add_in(pending.len() as u64);
                    }
                    Err(e) => b.report_read_error(&mut broker_down, &e).await,
                }
            }
        }
        b.drop_stale(&mut pending);
        if pending.is_empty() || paused.is_some() {
            continue;
        }

        let (batch, outcomes, changes) = run_step(&step, pending.drain(..).collect()).await;

        let mut records = batch.into_iter();
        for (record, outcome) in records.by_ref().zip(outcomes) {
            match outcome {
                Outcome::Emit(outputs) => {
                    b.report_running();
                    in_flight.push_back(emit(&b, record, outputs));
                }
                Outcome::Fail {
                    error,
                    kind,
                    attempts,
                } => {
                    b.report_failure(&record, &error, kind, attempts);
                    in_flight.push_back(emit_dead_letter(&b, record, error, attempts));
                }
                Outcome::Pause { reason } => {
                    b.report_pause(reason);
                    // This record and the rest of the batch wait for a new version.
                    pending.push_back(record);
                    break;
                }
            }
        }
        pending.extend(records);
        if !pending.is_empty() {
            match changes {
                Some(rx) => paused = Some(rx),
                None => {
                    // Nothing will ever change: a bug, not a state to wait in.
                    tracing::error!(binding = %b.name, "paused with nothing to wait for; stopping");
                    break;
                }
            }
        }
    }

    // Drain: everything already handed to the producer is acknowledged, then acked.
    while let Some((partition, offset, lease)) = in_flight.next().await {
        b.source.ack(partition, offset, lease);
    }
    b.stats.set_state(BindingState::Stopped, None);
    b.source.close();
}

/// Resolves when a record's effects are acknowledged: (partition, offset, lease).
type Acked = futures::future::BoxFuture<'static, (i32, i64, u64)>;

fn emit(b: &Binding, record: Record, outputs: Vec<Output>) -> Acked {
    let (sink, stats, out) = (b.sink.clone(), b.stats.clone(), b.out.clone());
    let (name, dlq) = (b.name.clone(), b.dlq.clone());
    let function = b.function.clone();
    Box::pin(async move {
        let sends = outputs.iter().map(|o| {
            let default = out.as_deref().unwrap_or(&dlq);
            sink.send(default, o)
        });
        let results = futures::future::join_all(sends).await;
        let sent = results.iter().filter(|r| r.is_ok()).count() as u64;
        stats.add_out(sent);
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            // The broker refused an output for good (e.g. too large): keep the input.
            stats.add_error();
            let error = format!("an output was rejected by the broker: {e}");
            tracing::warn!(binding = %name, topic = %record.topic, partition = record.partition, offset = record.offset, "{error}");
            let letter = dead_letter(&record, &name, function.as_deref(), &error, 1);
            if sink.send(&dlq, &letter).await.is_ok() {
                stats.add_dead_lettered();
            }
        }
        (record.partition, record.offset, record.lease)
    })
}

fn emit_dead_letter(b: &Binding, record: Record, error: String, attempts: u32) -> Acked {
    let (sink, stats, dlq) = (b.sink.clone(), b.stats.clone(), b.dlq.clone());
    let letter = dead_letter(&record, &b.name, b.function.as_deref(), &error, attempts);
    Box::pin(async move {
        match sink.send(&dlq, &letter).await {
            Ok(_) => stats.add_dead_lettered(),
            Err(e) => tracing::error!(%dlq, error = %e, "dead-letter topic refused the record"),
        }
        (record.partition, record.offset, record.lease)
    })
}
