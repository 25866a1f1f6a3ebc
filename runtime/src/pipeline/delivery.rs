//! How the record loop makes a batch's effects durable: the one thing that differs
//! between `at-least-once` ([`Pipelined`]) and `exactly-once` ([`Transactional`]).
//!
//! A batch is the records a step handled (each with its outputs and, if it failed,
//! its dead letter) plus the step's [`Effects`] (state changes, results, and what
//! must follow them). Under both guarantees a record's effects are durable before
//! its offset moves, an output the broker refuses for good dead-letters its record,
//! and the counters move once, when the batch is durable.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::{Done, Refusal, Route};
use crate::kafka::{KafkaSettings, Sends, Sink, Source, TxnSink, dead_letter, is_permanent};
use crate::observe::{FailureKind, Failures};
use crate::record::{Effects, Output};

/// Records whose effects are still being acknowledged, per binding (at-least-once).
pub const MAX_IN_FLIGHT: usize = 10_000;
/// Fatal producer errors in a row (e.g. the broker expired a transaction during an
/// outage) met with a new producer before the binding gives up.
const MAX_NEW_PRODUCERS: u32 = 3;

/// What became durable: records to acknowledge, and what to count.
#[derive(Debug, Default)]
pub struct Settled {
    /// (partition, offset, lease) of each record, in input order (at-least-once).
    pub acks: Vec<(i32, i64, u64)>,
    pub records: u64,
    /// Outputs to the user's topics (records' outputs and window results).
    pub outputs: u64,
    /// Records that failed, by kind (late: for some or all of their windows).
    pub failures: Failures,
    pub dead_lettered: u64,
    /// The timestamps (ms) of the records, for end-to-end latency.
    pub timestamps: Vec<i64>,
}

/// Why a transaction did not commit; its records are read and processed again.
#[derive(Debug)]
pub struct Aborted {
    pub message: String,
    /// The first offset of each partition the transaction held, to read again from.
    pub first: BTreeMap<i32, i64>,
    /// Records whose output (or dead letter) the broker refused for good: next time
    /// they are dead-lettered (or skipped).
    pub refused: Vec<((i32, i64), Refusal)>,
    /// Going on is pointless (the producer cannot be replaced).
    pub stop: bool,
}

/// How a record loop makes effects durable.
pub trait Delivery: Send {
    /// Whether another batch may be read now.
    fn has_room(&self) -> bool;
    /// Whether effects are still on their way (the loop is busy).
    fn in_flight(&self) -> bool;
    /// Whether the step should flush its held-back state after every batch (its
    /// changes then travel with that batch) rather than before each commit.
    fn flush_each_batch(&self) -> bool;
    /// Whether effects are committed in transactions with the input offsets
    /// (exactly-once): then a record read twice must be processed once.
    fn transactional(&self) -> bool {
        false
    }
    /// Takes a handled batch (no records: a tick's effects) and starts sending it.
    fn deliver(&mut self, route: &Arc<Route>, done: Vec<Done>, fx: Effects);
    /// The next batch that became durable (at-least-once); `None` if none is on its
    /// way. Cancel-safe.
    fn settled(&mut self) -> impl Future<Output = Option<Settled>> + Send;
    /// When the open transaction should commit, if one is open.
    fn commit_due(&self) -> Option<Instant>;
    /// Commits the open transaction with its input offsets.
    fn commit(&mut self, source: &Source) -> impl Future<Output = Result<Settled, Aborted>> + Send;
    /// Waits for everything still on its way (shutdown).
    fn finish(self) -> impl Future<Output = Vec<Settled>> + Send;
}

/// At-least-once: each batch is sent at once; it settles when every effect of it is
/// acknowledged, and batches settle in input order.
pub struct Pipelined {
    sink: Sink,
    batches: FuturesOrdered<BoxFuture<'static, Settled>>,
    records: usize,
}

impl Pipelined {
    pub fn new(sink: Sink) -> Self {
        Self {
            sink,
            batches: FuturesOrdered::new(),
            records: 0,
        }
    }
}

impl Delivery for Pipelined {
    fn has_room(&self) -> bool {
        self.records < MAX_IN_FLIGHT
    }

    fn in_flight(&self) -> bool {
        !self.batches.is_empty()
    }

    fn flush_each_batch(&self) -> bool {
        true
    }

    fn deliver(&mut self, route: &Arc<Route>, done: Vec<Done>, fx: Effects) {
        self.records += done.len();
        // One group for the batch: its records' outputs, state changes and results.
        let mut sends = Sends::new();
        let mut owners = Vec::new();
        let mut records = Vec::with_capacity(done.len());
        for d in done {
            let failure = send_outputs(
                &self.sink,
                route,
                &mut sends,
                &mut owners,
                records.len(),
                d.outputs,
                d.failure,
            );
            records.push((d.record, failure));
        }
        for (owner, outputs) in [(Owner::State, fx.changes), (Owner::Result, fx.results)] {
            for o in outputs {
                let topic = o.topic.clone().unwrap_or_default();
                sends.push(&self.sink, topic, o);
                owners.push(owner);
            }
        }
        let (sink, route) = (self.sink.clone(), route.clone());
        let after = fx.after;
        self.batches.push_back(Box::pin(async move {
            let mut s = Settled {
                acks: records.iter().map(|(r, _)| (r.partition, r.offset, r.lease)).collect(),
                timestamps: records.iter().map(|(r, _)| r.timestamp_ms).collect(),
                records: records.len() as u64,
                ..Settled::default()
            };
            let results = sends.acked(&sink, true).await;
            for (owner, result) in owners.into_iter().zip(results) {
                match (owner, result) {
                    (Owner::Output(_) | Owner::Result, Ok(())) => s.outputs += 1,
                    (Owner::Output(i), Err(e)) => {
                        // The broker refused an output for good (e.g. too large): the
                        // input is dead-lettered with the reason.
                        let (record, failure) = &mut records[i];
                        let error = format!("an output was rejected by the broker: {e}");
                        tracing::warn!(binding = %route.name, topic = %record.topic, partition = record.partition, offset = record.offset, "{error}");
                        failure.get_or_insert(super::Failure {
                            error,
                            kind: FailureKind::OutputRefused,
                            attempts: 1,
                        });
                    }
                    (_, Err(e)) => report_refused(&route, &e),
                    _ => {}
                }
            }
            // Dead letters (rare) once the outputs' fate is known.
            let mut letters = Sends::new();
            for (record, failure) in &records {
                if let Some(f) = failure {
                    s.failures.add(f.kind);
                    let letter = dead_letter(record, &route.name, route.function.as_deref(), &f.error, f.attempts);
                    letters.push(&sink, route.dlq.clone(), letter);
                }
            }
            if !letters.is_empty() {
                for result in letters.acked(&sink, true).await {
                    match result {
                        Ok(()) => s.dead_lettered += 1,
                        Err(e) => tracing::error!(dlq = %route.dlq, error = %e, "dead-letter topic refused the record"),
                    }
                }
            }
            // Closed-markers only once the results they follow are durable: a crash in
            // between publishes a result twice rather than never.
            if !after.is_empty() {
                let mut markers = Sends::new();
                for o in after {
                    let topic = o.topic.clone().unwrap_or_default();
                    markers.push(&sink, topic, o);
                }
                for e in markers.acked(&sink, true).await.into_iter().filter_map(Result::err) {
                    report_refused(&route, &e);
                }
            }
            s
        }));
    }

    async fn settled(&mut self) -> Option<Settled> {
        let s = self.batches.next().await?;
        self.records -= s.records as usize;
        Some(s)
    }

    fn commit_due(&self) -> Option<Instant> {
        None
    }

    async fn commit(&mut self, _: &Source) -> Result<Settled, Aborted> {
        Ok(Settled::default())
    }

    async fn finish(mut self) -> Vec<Settled> {
        let mut all = Vec::new();
        while let Some(s) = self.batches.next().await {
            all.push(s);
        }
        all
    }
}

/// Aborts the open transaction (blocking, so on the blocking pool).
async fn abort(txn: Arc<TxnSink>) {
    let _ = tokio::task::spawn_blocking(move || txn.abort()).await;
}

fn report_refused(route: &Route, e: &KafkaError) {
    tracing::error!(binding = %route.name, error = %e, "the broker refused a state change or result for good");
}

/// The topic of a record's output, or why it has none.
fn topic_of(route: &Route, o: &Output) -> Result<String, String> {
    o.topic
        .clone()
        .or_else(|| route.out.clone())
        .ok_or_else(|| {
            format!(
                "the function returned an output without a topic, and binding '{}' has no 'out'",
                route.name
            )
        })
}

/// Sends one record's outputs (now) into `sends`, noting each one's owner (record
/// `i`); an output without a topic fails the record. Returns the record's failure.
fn send_outputs(
    sink: &Sink,
    route: &Route,
    sends: &mut Sends,
    owners: &mut Vec<Owner>,
    i: usize,
    outputs: Vec<Output>,
    mut failure: Option<super::Failure>,
) -> Option<super::Failure> {
    for o in outputs {
        match topic_of(route, &o) {
            Ok(topic) => {
                sends.push(sink, topic, o);
                owners.push(Owner::Output(i));
            }
            Err(error) => {
                failure.get_or_insert(super::Failure {
                    error,
                    kind: FailureKind::OutputRefused,
                    attempts: 1,
                });
            }
        }
    }
    failure
}

/// Exactly-once: batches go into one open Kafka transaction, which commits with the
/// input offsets of its records when due.
pub struct Transactional {
    settings: KafkaSettings,
    name: String,
    txn: Arc<TxnSink>,
    sink: Sink,
    open: Option<Open>,
    new_producers: u32,
    /// This instance, as each commit records it in the offsets' metadata.
    committer: String,
}

/// Who a send in a transaction belongs to.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// An output of record `i`.
    Output(usize),
    /// The dead letter of record `i`.
    DeadLetter(usize),
    /// A state change or closed-marker.
    State,
    /// A result for the user's topic.
    Result,
}

struct InTxn {
    topic: String,
    partition: i32,
    offset: i64,
    lease: u64,
    timestamp_ms: i64,
    failure: Option<FailureKind>,
}

struct Open {
    started: Instant,
    /// `begin` failed: the transaction can only be aborted.
    broken: Option<KafkaError>,
    records: Vec<InTxn>,
    sends: Sends,
    owners: Vec<Owner>,
}

impl Transactional {
    /// `txn` must have registered its transactional id already (which aborts what a
    /// predecessor left open); `settings` make a new producer if it fails for good.
    pub fn new(settings: KafkaSettings, name: &str, txn: TxnSink) -> Self {
        Self {
            committer: TxnSink::committer(&settings),
            settings,
            name: name.to_string(),
            sink: txn.sink(),
            txn: Arc::new(txn),
            open: None,
            new_producers: 0,
        }
    }

    fn send(&self, open: &mut Open, owner: Owner, topic: String, o: Output) {
        if open.broken.is_none() {
            open.sends.push(&self.sink, topic, o);
            open.owners.push(owner);
        }
    }

    /// A fatal error (e.g. fenced, or the broker expired the transaction while it
    /// was away): a new producer with the same transactional id goes on, up to a
    /// limit. Returns whether it did.
    async fn replace_producer(&mut self, why: &str) -> Result<(), String> {
        self.new_producers += 1;
        if self.new_producers > MAX_NEW_PRODUCERS {
            return Err(format!(
                "{} producers in a row failed",
                self.new_producers - 1
            ));
        }
        tracing::warn!(binding = %self.name, "transactional producer failed ({why}); starting a new one");
        let (settings, name) = (self.settings.clone(), self.name.clone());
        let new = tokio::task::spawn_blocking(move || TxnSink::new(&settings, &name))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let old = std::mem::replace(&mut self.txn, Arc::new(new));
        self.sink = self.txn.sink();
        tokio::task::spawn_blocking(move || drop(old));
        Ok(())
    }

    /// Aborts, replacing the producer if `fatal`.
    async fn aborted(
        &mut self,
        message: String,
        fatal: bool,
        first: BTreeMap<i32, i64>,
        refused: Vec<((i32, i64), Refusal)>,
    ) -> Aborted {
        abort(self.txn.clone()).await;
        let stop = if fatal {
            self.replace_producer(&message).await.err()
        } else {
            None
        };
        Aborted {
            message: match &stop {
                Some(e) => format!("{message} ({e})"),
                None => message,
            },
            first,
            refused,
            stop: stop.is_some(),
        }
    }
}

impl Delivery for Transactional {
    fn transactional(&self) -> bool {
        true
    }

    fn has_room(&self) -> bool {
        self.open
            .as_ref()
            .is_none_or(|o| o.records.len() < self.settings.transactions.records)
    }

    fn in_flight(&self) -> bool {
        self.open.is_some()
    }

    fn flush_each_batch(&self) -> bool {
        false
    }

    fn deliver(&mut self, route: &Arc<Route>, done: Vec<Done>, fx: Effects) {
        let mut open = self.open.take().unwrap_or_else(|| Open {
            started: Instant::now(),
            broken: self.txn.begin().err(),
            records: Vec::new(),
            sends: Sends::new(),
            owners: Vec::new(),
        });
        for d in done {
            let i = open.records.len();
            let mut failure = d.failure;
            for o in d.outputs {
                match topic_of(route, &o) {
                    Ok(topic) => self.send(&mut open, Owner::Output(i), topic, o),
                    Err(error) => {
                        failure.get_or_insert(super::Failure {
                            error,
                            kind: FailureKind::OutputRefused,
                            attempts: 1,
                        });
                    }
                }
            }
            if let Some(f) = &failure {
                let letter = dead_letter(
                    &d.record,
                    &route.name,
                    route.function.as_deref(),
                    &f.error,
                    f.attempts,
                );
                self.send(&mut open, Owner::DeadLetter(i), route.dlq.clone(), letter);
            }
            open.records.push(InTxn {
                topic: d.record.topic,
                partition: d.record.partition,
                offset: d.record.offset,
                lease: d.record.lease,
                timestamp_ms: d.record.timestamp_ms,
                failure: failure.map(|f| f.kind),
            });
        }
        for (owner, outputs) in [
            (Owner::State, fx.changes),
            (Owner::Result, fx.results),
            (Owner::State, fx.after),
        ] {
            for o in outputs {
                let topic = o.topic.clone().unwrap_or_default();
                self.send(&mut open, owner, topic, o);
            }
        }
        self.open = Some(open);
    }

    async fn settled(&mut self) -> Option<Settled> {
        std::future::pending().await
    }

    fn commit_due(&self) -> Option<Instant> {
        self.open.as_ref().map(|o| {
            if o.records.len() >= self.settings.transactions.records {
                Instant::now()
            } else {
                o.started + self.settings.transactions.interval
            }
        })
    }

    async fn commit(&mut self, source: &Source) -> Result<Settled, Aborted> {
        let Some(open) = self.open.take() else {
            return Ok(Settled::default());
        };
        // Where to read again from if this does not commit (partitions that moved
        // are read by their new owner from the committed offset anyway).
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        for r in &open.records {
            if source.ownership().lease(r.partition) == Some(r.lease) {
                let at = first.entry(r.partition).or_insert(r.offset);
                *at = (*at).min(r.offset);
            }
        }
        if let Some(e) = open.broken {
            let fatal = TxnSink::is_fatal(&e);
            return Err(self
                .aborted(format!("begin: {e}"), fatal, first, Vec::new())
                .await);
        }
        let key = |i: usize| (open.records[i].partition, open.records[i].offset);
        let mut s = Settled {
            records: open.records.len() as u64,
            ..Settled::default()
        };
        for r in &open.records {
            if let Some(kind) = r.failure {
                s.failures.add(kind);
            }
            s.timestamps.push(r.timestamp_ms);
        }
        let results = open.sends.acked(&self.sink, false).await;
        let mut refused: Vec<((i32, i64), Refusal)> = Vec::new();
        let mut failed: Option<KafkaError> = None;
        for (owner, result) in open.owners.into_iter().zip(results) {
            match (owner, result) {
                (Owner::Output(_) | Owner::Result, Ok(())) => s.outputs += 1,
                (Owner::DeadLetter(_), Ok(())) => s.dead_lettered += 1,
                (Owner::State, Ok(())) => {}
                (Owner::Output(i), Err(e)) if is_permanent(&e) => refused.push((
                    key(i),
                    Refusal {
                        error: format!("an output was rejected by the broker: {e}"),
                        dead_letter_refused: false,
                    },
                )),
                (Owner::DeadLetter(i), Err(e)) if is_permanent(&e) => refused.push((
                    key(i),
                    Refusal {
                        error: format!("its dead-letter record was rejected by the broker: {e}"),
                        dead_letter_refused: true,
                    },
                )),
                (Owner::State | Owner::Result, Err(e)) if is_permanent(&e) => {
                    return Err(Aborted {
                        stop: true,
                        ..self
                            .aborted(
                                format!(
                                    "the broker refused a state change or result for good: {e}"
                                ),
                                false,
                                first,
                                Vec::new(),
                            )
                            .await
                    });
                }
                (_, Err(e)) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if !refused.is_empty() {
            let message = format!(
                "{} record(s) with an output the broker refused for good; they are dead-lettered on the next try",
                refused.len()
            );
            return Err(self.aborted(message, false, first, refused).await);
        }
        if let Some(e) = failed {
            let fatal = TxnSink::is_fatal(&e);
            return Err(self
                .aborted(format!("send: {e}"), fatal, first, Vec::new())
                .await);
        }
        if open
            .records
            .iter()
            .any(|r| source.ownership().lease(r.partition) != Some(r.lease))
        {
            let message = "partitions were reassigned during the transaction".to_string();
            return Err(self.aborted(message, false, first, Vec::new()).await);
        }
        // The next offset to read, per partition.
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for r in &open.records {
            let at = next.entry((&r.topic, r.partition)).or_insert(r.offset + 1);
            *at = (*at).max(r.offset + 1);
        }
        let mut offsets = TopicPartitionList::new();
        let listed = next
            .into_iter()
            .try_for_each(|((topic, partition), offset)| {
                let mut e = offsets.add_partition(topic, partition);
                e.set_metadata(&self.committer);
                e.set_offset(Offset::Offset(offset))
            });
        if let Err(e) = listed {
            return Err(self
                .aborted(format!("offsets: {e}"), false, first, Vec::new())
                .await);
        }
        let Some(group) = source.group_metadata() else {
            let message = "the consumer has no group metadata".to_string();
            return Err(self.aborted(message, false, first, Vec::new()).await);
        };
        let txn = self.txn.clone();
        let has_offsets = offsets.count() > 0;
        let committed = tokio::task::spawn_blocking(move || {
            if has_offsets {
                txn.commit(&offsets, &group)
            } else {
                txn.commit_only()
            }
        })
        .await;
        match committed {
            Ok(Ok(())) => {
                self.new_producers = 0;
                Ok(s)
            }
            Ok(Err(e)) => {
                let fatal = TxnSink::is_fatal(&e);
                Err(self
                    .aborted(format!("commit: {e}"), fatal, first, Vec::new())
                    .await)
            }
            Err(e) => Err(self
                .aborted(format!("commit task: {e}"), false, first, Vec::new())
                .await),
        }
    }

    async fn finish(mut self) -> Vec<Settled> {
        // Not committed by the loop (shutdown mid-abort): the next owner reads again.
        if self.open.take().is_some() {
            abort(self.txn.clone()).await;
        }
        Vec::new()
    }
}
