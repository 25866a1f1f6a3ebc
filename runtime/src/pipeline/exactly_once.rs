//! The record loop of a `guarantee: exactly-once` binding or stage.
//!
//! Records are processed in batches; each batch's outputs, dead-letter records and
//! state changes are produced inside one Kafka transaction that also commits the
//! batch's input offsets. Readers with `isolation.level=read_committed` see a batch's
//! effects all at once, or — if kfn dies or the transaction aborts — not at all, and
//! the batch is processed again from the last committed offsets. Per record, the
//! effects then happen exactly once.
//!
//! An aborted transaction rewinds the source and processes the batch again; the step
//! rolls back the state the batch changed (a window store restores the partitions
//! from their changelog). A batch during which partitions moved to another instance
//! aborts too: its offsets belong to the old assignment.
//!
//! What stays at-least-once: a guest's own side effects (e.g. a consumer's logging),
//! and the final window results and closed-markers the window closer publishes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::{Binding, Dedicated, Outcome, Step, run_step};
use crate::kafka::{KafkaSettings, Sink, TxnSink, dead_letter};
use crate::observe::{BindingState, EventKind};
use crate::record::{Output, Record};

/// Records per transaction at most: a commit costs a few round trips, so
/// transactions are larger than the at-least-once batches.
pub const TXN_BATCH: usize = 1_000;
/// The longest wait before reading a batch again after its transaction aborted (e.g.
/// while the broker is away); this goes on until it commits or the producer is fenced.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Fatal producer errors (e.g. the broker expired a transaction during an outage)
/// in a row that are met with a new producer before the binding gives up.
const MAX_NEW_PRODUCERS: u32 = 3;

/// Runs an exactly-once binding. `settings` make a new transactional producer when
/// the current one fails for good.
pub async fn run_records_exactly_once<S: Step + 'static>(
    b: Binding,
    settings: KafkaSettings,
    txn: TxnSink,
    step: S,
) {
    let step = match Dedicated::spawn(&b.name, step) {
        Ok(s) => s,
        Err(e) => {
            b.stats.set_state(
                BindingState::Stopped,
                Some(format!("no worker thread: {e}")),
            );
            return;
        }
    };
    let (mut sink, mut txn) = (txn.sink(), Arc::new(txn));
    let mut new_producers = 0u32;
    let mut pending: VecDeque<Record> = VecDeque::new();
    let mut paused: Option<watch::Receiver<u64>> = None;
    let mut broker_down = false;
    let mut aborts = 0u32;
    b.stats.set_state(BindingState::Running, None);

    loop {
        if let Some(changes) = paused.as_mut() {
            tokio::select! {
                biased;
                () = b.shutdown.cancelled() => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    paused = None;
                }
            }
        }
        if pending.is_empty() {
            tokio::select! {
                biased;
                () = b.shutdown.cancelled() => break,
                next = b.source.next() => match next {
                    Ok(record) => {
                        b.report_read_ok(&mut broker_down);
                        pending.push_back(record);
                        b.take_fetched(&mut pending, TXN_BATCH);
                        b.stats.add_in(pending.len() as u64);
                    }
                    Err(e) => {
                        b.report_read_error(&mut broker_down, &e).await;
                        continue;
                    }
                },
            }
        }

        b.drop_stale(&mut pending);
        if pending.is_empty() {
            continue;
        }
        let (batch, outcomes, changes) = run_step(&step, pending.drain(..).collect()).await;
        let mut records = batch.into_iter();
        let mut done: Vec<(Record, Outcome)> = Vec::with_capacity(outcomes.len());
        for (record, outcome) in records.by_ref().zip(outcomes) {
            match outcome {
                Outcome::Pause { reason } => {
                    b.report_pause(reason);
                    pending.push_back(record);
                    break;
                }
                Outcome::Fail {
                    ref error,
                    kind,
                    attempts,
                } => {
                    b.report_failure(&record, error, kind, attempts);
                    done.push((record, outcome));
                }
                Outcome::Emit(_) => {
                    b.report_running();
                    done.push((record, outcome));
                }
            }
        }
        pending.extend(records);
        if !pending.is_empty() {
            paused = changes;
            if paused.is_none() {
                tracing::error!(binding = %b.name, "paused with nothing to wait for; stopping");
                break;
            }
        }
        if done.is_empty() {
            continue;
        }

        match commit_batch(&b, &txn, &sink, &done).await {
            Ok((outputs, dead_letters)) => {
                b.stats.add_out(outputs);
                for _ in 0..dead_letters {
                    b.stats.add_dead_lettered();
                }
                new_producers = 0;
                if std::mem::take(&mut aborts) > 0 {
                    b.events
                        .emit(EventKind::Broker, &b.name, "transactions commit again");
                }
            }
            Err(Failed { message, fatal }) => {
                let abort = txn.clone();
                let _ = tokio::task::spawn_blocking(move || abort.abort()).await;
                if fatal {
                    // The producer is unusable (e.g. the broker expired its transaction
                    // while it was away): a new one with the same transactional id goes
                    // on. Nothing of the batch is committed, so it is processed again.
                    new_producers += 1;
                    let replaced = if new_producers <= MAX_NEW_PRODUCERS {
                        tracing::warn!(binding = %b.name, "transactional producer failed ({message}); starting a new one");
                        b.events.emit(
                            EventKind::Broker,
                            &b.name,
                            format!(
                                "transactional producer failed ({message}); starting a new one"
                            ),
                        );
                        let (settings, name) = (settings.clone(), b.name.clone());
                        tokio::task::spawn_blocking(move || TxnSink::new(&settings, &name))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()))
                    } else {
                        Err(format!("{new_producers} producers in a row failed"))
                    };
                    match replaced {
                        Ok(new) => {
                            let old = std::mem::replace(&mut txn, Arc::new(new));
                            sink = txn.sink();
                            tokio::task::spawn_blocking(move || drop(old));
                        }
                        Err(e) => {
                            let reason = format!("transaction failed, stopped: {message} ({e})");
                            tracing::error!(binding = %b.name, "{reason}");
                            b.events.emit(EventKind::Broker, &b.name, reason.clone());
                            b.stats.set_state(BindingState::Stopped, Some(reason));
                            break;
                        }
                    }
                }
                if aborts == 0 {
                    tracing::warn!(binding = %b.name, "transaction aborted; the batch will be read and processed again: {message}");
                    b.events.emit(
                        EventKind::Broker,
                        &b.name,
                        format!("transaction aborted, retrying: {message}"),
                    );
                }
                aborts += 1;
                // Read the batch again: going back through the source (rather than
                // re-sending the same outputs) lets the consumer rejoin its group if
                // the broker forgot it, so the next commit carries valid group metadata.
                // A partition that moved meanwhile is not rewound: its new lease reads
                // from the committed offset anyway.
                let mut first: BTreeMap<i32, i64> = BTreeMap::new();
                let mut touched: Vec<i32> = Vec::new();
                for record in done.iter().map(|(r, _)| r).chain(pending.iter()) {
                    touched.push(record.partition);
                    if b.source.is_current(record) {
                        first.entry(record.partition).or_insert(record.offset);
                    }
                }
                pending.clear();
                touched.sort_unstable();
                touched.dedup();
                step.run(move |step| step.rollback(&touched)).await;
                for (partition, offset) in first {
                    b.source.rewind(partition, offset);
                }
                paused = None;
                let wait = (Duration::from_millis(200) * aborts).min(MAX_BACKOFF);
                tokio::select! {
                    () = b.shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    if b.stats.state().0 != BindingState::Stopped {
        b.stats.set_state(BindingState::Stopped, None);
    }
    // Offsets are committed inside transactions only; records fetched but not
    // committed are read again by the next owner of their partitions.
    b.source.close_uncommitted();
}

/// Why a batch did not commit.
struct Failed {
    message: String,
    /// The producer cannot go on (fenced): retrying is pointless.
    fatal: bool,
}

impl Failed {
    fn kafka(step: &str) -> impl Fn(rdkafka::error::KafkaError) -> Failed + '_ {
        move |e| Failed {
            fatal: TxnSink::is_fatal(&e),
            message: format!("{step}: {e}"),
        }
    }

    fn other(message: impl Into<String>) -> Failed {
        Failed {
            message: message.into(),
            fatal: false,
        }
    }
}

/// Produces a batch's effects and commits them with its offsets in one transaction.
/// Returns (outputs sent, dead-letter records sent).
async fn commit_batch(
    b: &Binding,
    txn: &Arc<TxnSink>,
    sink: &Sink,
    done: &[(Record, Outcome)],
) -> Result<(u64, u64), Failed> {
    txn.begin().map_err(Failed::kafka("begin"))?;
    let mut records: Vec<(String, Output)> = Vec::new();
    let mut dead_letters = 0;
    for (record, outcome) in done {
        match outcome {
            Outcome::Emit(outputs) => {
                for o in outputs {
                    let topic = o
                        .topic
                        .clone()
                        .or_else(|| b.out.clone())
                        .unwrap_or_else(|| b.dlq.clone());
                    records.push((topic, o.clone()));
                }
            }
            Outcome::Fail {
                error, attempts, ..
            } => {
                dead_letters += 1;
                let letter = dead_letter(record, &b.name, b.function.as_deref(), error, *attempts);
                records.push((b.dlq.clone(), letter));
            }
            Outcome::Pause { .. } => unreachable!("paused records are not in a batch"),
        }
    }
    let sends = records.iter().map(|(topic, o)| sink.send_once(topic, o));
    let total = records.len() as u64;
    for result in futures::future::join_all(sends).await {
        result.map_err(Failed::kafka("send"))?;
    }

    if done.iter().any(|(record, _)| !b.source.is_current(record)) {
        return Err(Failed::other("partitions were reassigned during the batch"));
    }
    // The next offset to read, per partition: the batch is in offset order per partition.
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (record, _) in done {
        next.insert((record.topic.clone(), record.partition), record.offset + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        offsets
            .add_partition_offset(&topic, partition, Offset::Offset(offset))
            .map_err(Failed::kafka("offsets"))?;
    }
    let group = b
        .source
        .group_metadata()
        .ok_or_else(|| Failed::other("the consumer has no group metadata"))?;
    let commit = txn.clone();
    tokio::task::spawn_blocking(move || commit.commit(&offsets, &group))
        .await
        .map_err(|e| Failed::other(format!("commit task: {e}")))?
        .map_err(Failed::kafka("commit"))?;
    Ok((total - dead_letters, dead_letters))
}
