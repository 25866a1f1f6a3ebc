//! The record loop that joins the stages: Kafka source → step (a wasm function, or
//! the window operator) → delivery → Kafka. Every record-driven binding and stage
//! runs [`run`]; what differs between the two guarantees is only the [`Delivery`]:
//!
//! - [`Pipelined`] (at-least-once): each batch's effects are sent at once and a
//!   record's offset is stored only once everything it caused is acknowledged, in
//!   input order, with up to [`MAX_IN_FLIGHT`] records on their way;
//! - [`Transactional`] (exactly-once): batches are produced into one Kafka
//!   transaction, committed with their input offsets every `kafka.commit-interval`
//!   (or `kafka.transaction-records` records); an aborted transaction rewinds the
//!   source and the step's state, and the records are processed again.
//!
//! Reading, batching, sorting outcomes, pausing, dead-lettering and counting are
//! shared, so the two cannot drift apart. A failing record never stops a binding: it
//! is logged once with its coordinates and dead-lettered, and the loop moves on; an
//! output the broker refuses for good dead-letters its record under both guarantees.
//! A missing or broken *function* pauses the binding (visibly) on the record it was
//! about to process, until a new version is loaded; nothing is skipped. Counters move
//! only when a record's effects are durable (committed), so each record counts once.

mod analytics;
mod build;
mod dedicated;
mod delivery;
mod handed;
mod parallel;
mod pointer;
mod supplier;
mod wasm_step;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::kafka::Source;
use crate::observe::event::{
    BindingPaused, BindingRunning, Emit, InputRead, RecordFailed, RecordsSettled, Scope,
    TransactionAborted, TransactionCommitted,
};
use crate::observe::{BindingState, BindingStats, Events, FailureKind};
use crate::record::{Effects, Output, Record};

pub use analytics::{Extract, RepartitionStep, WindowStep, repartition_topic};
pub use build::{Built, Context, build_binding, build_stage};
pub use dedicated::Dedicated;
pub use delivery::{Aborted, Delivery, MAX_IN_FLIGHT, Pipelined, Settled, Transactional};
pub use parallel::{Fork, Parallel};
pub use supplier::{Supplier, run_supplier};
pub use wasm_step::{ConsumerStep, FunctionStep, Retry};

/// Why a record failed: dead-letter it with this.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: String,
    pub kind: FailureKind,
    /// Calls made before giving up.
    pub attempts: u32,
}

/// What to do with one record.
#[derive(Debug)]
pub enum Outcome {
    /// Send `outputs` (each to its own topic or the binding's `out`); if `failure`,
    /// dead-letter the record too (a record late for some of its windows counts in
    /// the others and is dead-lettered for the late part); then ack.
    Done {
        outputs: Vec<Output>,
        failure: Option<Failure>,
    },
    /// The step cannot run now (function missing or broken): keep the record and
    /// wait until `Step::changed` fires.
    Pause { reason: String },
}

impl Outcome {
    pub fn emit(outputs: Vec<Output>) -> Outcome {
        Outcome::Done {
            outputs,
            failure: None,
        }
    }

    pub fn fail(error: impl Into<String>, kind: FailureKind, attempts: u32) -> Outcome {
        Outcome::Done {
            outputs: Vec::new(),
            failure: Some(Failure {
                error: error.into(),
                kind,
                attempts,
            }),
        }
    }
}

/// A handled record, ready for delivery.
#[derive(Debug)]
pub struct Done {
    pub record: Record,
    pub outputs: Vec<Output>,
    pub failure: Option<Failure>,
}

/// The middle of a record-driven binding. It runs on a thread of its own.
pub trait Step: Send {
    /// Handles one record; it may borrow the record's fields meanwhile (e.g. lend
    /// them to a guest call) but leaves it as it was.
    fn handle(&mut self, record: &mut Record) -> Outcome;
    /// Handles `batch` in order, an outcome per record pushed to `outcomes`, up to
    /// and including the first [`Outcome::Pause`]; records after a pause are not
    /// handled. By default, [`Step::handle`] per record.
    fn handle_batch(&mut self, batch: &mut [Record], outcomes: &mut Vec<Outcome>) {
        handle_each(self, batch, outcomes);
    }
    /// A signal that fires when a paused step may be able to run again.
    fn changed(&self) -> Option<watch::Receiver<u64>>;
    /// State changes held back (coalesced) since the last flush, to deliver with the
    /// records handled since.
    fn flush(&mut self) -> Effects {
        Effects::default()
    }
    /// How often [`Step::tick`] runs, if the step needs a timer.
    fn tick_every(&self) -> Option<Duration> {
        None
    }
    /// What is due on time. `lagging`: partitions with records still to read;
    /// `upstream_busy`: records are still on their way through an earlier step.
    fn tick(&mut self, _lagging: &[i32], _upstream_busy: bool) -> Effects {
        Effects::default()
    }
    /// Whether a record may be handled again after its outcome was thrown away (the
    /// step keeps no state of its own in the host): the loop then hands the step's
    /// thread a second batch while the first is still running, and takes it back
    /// unsorted if the first pauses.
    fn restartable(&self) -> bool {
        false
    }
    /// The effects of the records handled since the last commit, on these
    /// partitions, were thrown away (an aborted transaction): forget any state they
    /// changed. The records are read again.
    fn rollback(&mut self, _partitions: &[i32]) {}
}

/// [`Step::handle`] for each record of `batch`, up to and including a pause.
fn handle_each<S: Step + ?Sized>(step: &mut S, batch: &mut [Record], outcomes: &mut Vec<Outcome>) {
    for record in batch {
        let outcome = step.handle(record);
        let pause = matches!(outcome, Outcome::Pause { .. });
        outcomes.push(outcome);
        if pause {
            return;
        }
    }
}

/// Whether a loop still has work in hand: records read and not yet durable, a pause,
/// or records left to read. A later step's idle close waits for it.
#[derive(Debug, Default)]
pub struct Activity(AtomicBool);

impl Activity {
    pub fn busy(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, busy: bool) {
        self.0.store(busy, Ordering::Relaxed);
    }
}

/// Where a binding's records go, shared with the deliveries in flight.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub function: Option<String>,
    /// Where outputs without their own topic go (`None`: they have to name one).
    pub out: Option<String>,
    pub dlq: String,
}

/// Everything a record loop needs besides its step and delivery.
pub struct Binding {
    pub route: Arc<Route>,
    pub source: Source,
    pub stats: Arc<BindingStats>,
    pub events: Events,
    pub shutdown: CancellationToken,
    /// Published by this loop: whether it still has work in hand.
    pub activity: Option<Arc<Activity>>,
    /// Read by this loop's step: the activity of the loop feeding its input.
    pub upstream: Option<Arc<Activity>>,
}

/// Records handed to the step's thread at once.
pub const BATCH: usize = 256;
/// How often a loop with an [`Activity`] refreshes it.
const ACTIVITY_EVERY: Duration = Duration::from_millis(100);

/// How often an idle loop samples its consumer lag.
const LAG_EVERY: Duration = Duration::from_secs(1);
/// The longest wait before reading a batch again after its transaction aborted.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Binding {
    fn name(&self) -> &str {
        &self.route.name
    }

    /// Where this binding's typed events go.
    fn scope(&self) -> Scope<'_> {
        Scope {
            binding: &self.route.name,
            stats: &self.stats,
            events: &self.events,
        }
    }

    fn report_running(&self) {
        BindingRunning.emit(self.scope());
    }

    /// Logs (once per attempt, with the record's coordinates) and reports a failure.
    fn report_failure(&self, record: &Record, f: &Failure) {
        let (topic, partition, offset) = crate::record::origin(record).unwrap_or((
            &record.topic,
            record.partition,
            record.offset,
        ));
        RecordFailed {
            function: self.route.function.as_deref(),
            topic,
            partition,
            offset,
            dlq: &self.route.dlq,
            kind: f.kind,
            error: &f.error,
            attempts: f.attempts,
        }
        .emit(self.scope());
    }

    fn report_pause(&self, reason: String) {
        BindingPaused { reason }.emit(self.scope());
    }

    /// Reports a failed read (once per outage) and waits a little before the next.
    async fn report_read_error(&self, broker_down: &mut bool, e: &rdkafka::error::KafkaError) {
        if !std::mem::replace(broker_down, true) {
            InputRead {
                topic: self.source.topic(),
                error: Some(&e.to_string()),
            }
            .emit(self.scope());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// Notes a successful read after an outage.
    fn report_read_ok(&self, broker_down: &mut bool) {
        if std::mem::take(broker_down) {
            InputRead {
                topic: self.source.topic(),
                error: None,
            }
            .emit(self.scope());
        }
    }

    /// Drops the records just read that the consumer had handed out already under
    /// the same lease (see [`handed`]), saying so once per batch: under exactly-once
    /// they would be processed, and committed, twice.
    fn drop_read_again(&self, handed: &mut handed::Handed, pending: &mut VecDeque<Record>) {
        let before = pending.len();
        let mut first = None;
        pending.retain(|r| {
            let new = handed.admit(r);
            if !new && first.is_none() {
                first = Some((r.partition, r.offset));
            }
            new
        });
        if let Some((partition, offset)) = first {
            tracing::warn!(
                binding = %self.name(), topic = %self.source.topic(), partition, offset,
                dropped = before - pending.len(), total = handed.dropped,
                "the consumer handed out records it had handed out before; dropped, not processed twice"
            );
        }
    }

    /// Drops records whose partition moved to another owner since they were read:
    /// the new owner reads them again.
    fn drop_stale(&self, pending: &mut VecDeque<Record>) {
        let before = pending.len();
        self.source.retain_current(pending);
        if pending.len() < before {
            tracing::debug!(binding = %self.name(), dropped = before - pending.len(), "records of reassigned partitions dropped");
        }
    }

    /// Acknowledges and counts what became durable.
    fn settle(&self, s: Settled) {
        if !s.acks.is_empty() {
            self.source.ack(&s.acks);
        }
        RecordsSettled {
            records: s.records,
            outputs: s.outputs,
            failures: s.failures,
            dead_lettered: s.dead_lettered,
            timestamps: &s.timestamps,
        }
        .emit(self.scope());
        if self.stats.lag_due() {
            self.stats.set_lag(self.source.lag());
        }
    }
}

/// An output the broker refused for good, remembered across an aborted transaction
/// so that its record is dead-lettered when it is read again.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub error: String,
    /// The dead-letter record was refused too: the record can only be skipped.
    pub dead_letter_refused: bool,
}

/// A batch handed to the step's thread, and what comes back.
struct Ran {
    /// Records dead-lettered without calling the step (their output was refused in
    /// an aborted transaction).
    direct: Vec<Done>,
    batch: Vec<Record>,
    /// The outcomes of the batch's first records, up to the first that paused.
    outcomes: Vec<Outcome>,
    /// The step's flushed state (if asked to flush).
    fx: Effects,
    /// What a pause waits on.
    changes: Option<watch::Receiver<u64>>,
}

type Running = futures::future::BoxFuture<'static, Ran>;

/// Takes everything in `pending` and hands it to the step's thread now; the future
/// of its outcomes. Records whose output was refused in an aborted transaction are
/// dead-lettered without calling the step again.
fn start_batch<S: Step + 'static>(
    b: &Binding,
    step: &Dedicated<S>,
    pending: &mut VecDeque<Record>,
    refused: &HashMap<(i32, i64), Refusal>,
    flush: bool,
) -> Running {
    let mut direct: Vec<Done> = Vec::new();
    let mut batch: Vec<Record> = Vec::with_capacity(pending.len());
    for record in pending.drain(..) {
        match refused.get(&(record.partition, record.offset)) {
            None => batch.push(record),
            Some(r) if r.dead_letter_refused => {
                tracing::error!(binding = %b.name(), topic = %record.topic, partition = record.partition, offset = record.offset,
                    "skipped: neither its output nor its dead-letter record was accepted by the broker");
            }
            Some(r) => {
                let failure = Failure {
                    error: r.error.clone(),
                    kind: FailureKind::OutputRefused,
                    attempts: 1,
                };
                b.report_failure(&record, &failure);
                direct.push(Done {
                    record,
                    outputs: Vec::new(),
                    failure: Some(failure),
                });
            }
        }
    }
    let ran = step.start(move |step| {
        let mut batch = batch;
        let mut outcomes = Vec::with_capacity(batch.len());
        step.handle_batch(&mut batch, &mut outcomes);
        let changes = match outcomes.last() {
            Some(Outcome::Pause { .. }) => step.changed(),
            _ => None,
        };
        let fx = if flush {
            step.flush()
        } else {
            Effects::default()
        };
        (batch, outcomes, fx, changes)
    });
    Box::pin(async move {
        let (batch, outcomes, fx, changes) = ran.await;
        Ran {
            direct,
            batch,
            outcomes,
            fx,
            changes,
        }
    })
}

/// Sorts a batch's outcomes into records done (reported) and records that wait: a
/// record that paused the step and the rest of its batch go back to the front of
/// `pending`, and `paused` is what to wait on. `Err` if the step paused with nothing
/// to wait on (a bug, not a state to wait in).
fn sort_outcomes(
    b: &Binding,
    ran: Ran,
    pending: &mut VecDeque<Record>,
    paused: &mut Option<watch::Receiver<u64>>,
) -> Result<(Vec<Done>, Effects), ()> {
    let Ran {
        mut direct,
        batch,
        outcomes,
        fx,
        changes,
    } = ran;
    let mut records = batch.into_iter();
    let mut ran_any = false;
    let mut waiting: Vec<Record> = Vec::new();
    for (record, outcome) in records.by_ref().zip(outcomes) {
        match outcome {
            Outcome::Done { outputs, failure } => {
                match &failure {
                    Some(f) => b.report_failure(&record, f),
                    None => ran_any = true,
                }
                direct.push(Done {
                    record,
                    outputs,
                    failure,
                });
            }
            Outcome::Pause { reason } => {
                if std::mem::take(&mut ran_any) {
                    b.report_running();
                }
                b.report_pause(reason);
                // This record and the rest of the batch wait for a new version.
                waiting.push(record);
                break;
            }
        }
    }
    if ran_any {
        b.report_running();
    }
    waiting.extend(records);
    if !waiting.is_empty() {
        // They come before what was read meanwhile.
        for record in waiting.into_iter().rev() {
            pending.push_front(record);
        }
        match changes {
            Some(rx) => *paused = Some(rx),
            None => {
                tracing::error!(binding = %b.name(), "paused with nothing to wait for; stopping");
                return Err(());
            }
        }
    }
    Ok((direct, fx))
}

/// Runs a record-driven binding until shutdown; then drains what is in flight and
/// commits.
///
/// The step runs one batch ahead of delivery: while the step's thread handles a
/// batch, this task sends the previous batch's effects and reads the next one. A
/// commit, a tick or a rewind first waits for the batch on the step's thread, so
/// they always see every handled record delivered.
pub async fn run<S: Step + 'static, D: Delivery>(b: Binding, step: S, mut delivery: D) {
    let tick_every = step.tick_every();
    // Batches on the step's thread at once.
    let depth = if step.restartable() { 2 } else { 1 };
    let step = match Dedicated::spawn(b.name(), step) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(binding = %b.name(), error = %e, "cannot start the binding's worker thread");
            b.stats.set_state(
                BindingState::Stopped,
                Some(format!("no worker thread: {e}")),
            );
            return;
        }
    };
    // Every loop ticks, at least to keep the lag gauge current when records stop
    // (settling samples it at most once a second, so the last batch may not).
    let timer = tick_every
        .or(b.activity.as_ref().map(|_| ACTIVITY_EVERY))
        .unwrap_or(LAG_EVERY);
    let mut tick = tokio::time::interval(timer);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: VecDeque<Record> = VecDeque::new();
    let mut running: VecDeque<Running> = VecDeque::new();
    let mut paused: Option<watch::Receiver<u64>> = None;
    let mut broker_down = false;
    let mut lagging: Vec<i32> = Vec::new();
    let mut refused: HashMap<(i32, i64), Refusal> = HashMap::new();
    let mut aborts = 0u32;
    let flush = delivery.flush_each_batch();
    // Exactly-once: each offset is handed to the step once per lease.
    let mut handed = delivery.transactional().then(handed::Handed::default);
    b.stats.set_state(BindingState::Running, None);

    // Hands the step's thread what was read, if it has room for another batch.
    macro_rules! start_if_room {
        () => {
            b.drop_stale(&mut pending);
            if running.len() < depth && paused.is_none() && !pending.is_empty() {
                running.push_back(start_batch(&b, &step, &mut pending, &refused, flush));
            }
        };
    }
    // What came back for the oldest batch on the step's thread: sorted and
    // delivered. If it paused, the batches handed over after it are taken back
    // unsorted (their step is [`Step::restartable`]) and their records wait behind
    // the paused one. `false` if the binding has to stop.
    macro_rules! finish_front {
        ($ran:expr) => {{
            let read_meanwhile = std::mem::take(&mut pending);
            let sorted = sort_outcomes(&b, $ran, &mut pending, &mut paused);
            if paused.is_some() {
                while let Some(later) = running.pop_front() {
                    let later = later.await;
                    pending.extend(later.direct.into_iter().map(|d| d.record));
                    pending.extend(later.batch);
                }
            }
            pending.extend(read_meanwhile);
            match sorted {
                Ok((done, fx)) => {
                    // The next batch goes to the step's thread before this one is sent.
                    start_if_room!();
                    if !done.is_empty() || !fx.is_empty() {
                        delivery.deliver(&b.route, done, fx);
                    }
                    true
                }
                Err(()) => false,
            }
        }};
    }
    // Waits for every batch on the step's thread and delivers what they did.
    macro_rules! drain {
        () => {{
            let mut go_on = true;
            while let Some(r) = running.pop_front() {
                let ran = r.await;
                go_on &= finish_front!(ran);
            }
            go_on
        }};
    }

    loop {
        start_if_room!();
        if let Some(a) = &b.activity {
            a.set(
                !pending.is_empty()
                    || !running.is_empty()
                    || paused.is_some()
                    || delivery.in_flight()
                    || !lagging.is_empty(),
            );
        }
        let commit_at = delivery.commit_due();
        tokio::select! {
            biased;
            () = b.shutdown.cancelled() => break,
            Some(settled) = delivery.settled() => {
                b.settle(settled);
                continue;
            }
            ran = async { running.front_mut().expect("guarded").await }, if !running.is_empty() => {
                running.pop_front();
                if !finish_front!(ran) {
                    break;
                }
            }
            () = tokio::time::sleep_until(commit_at.unwrap_or_else(tokio::time::Instant::now)), if commit_at.is_some() => {}
            _ = tick.tick() => {
                let lag = b.source.lag();
                lagging = crate::kafka::Source::lagging(&lag);
                if b.stats.lag_due() {
                    b.stats.set_lag(lag);
                }
                if tick_every.is_some() {
                    if !drain!() {
                        break;
                    }
                    let (lag, upstream) = (lagging.clone(), b.upstream.as_ref().is_some_and(|u| u.busy()));
                    let fx = step.run(move |s| s.tick(&lag, upstream)).await;
                    if !fx.is_empty() {
                        delivery.deliver(&b.route, Vec::new(), fx);
                    }
                }
            }
            changed = async { paused.as_mut().expect("guarded").changed().await }, if paused.is_some() => {
                if changed.is_err() {
                    break;
                }
                paused = None;
            }
            next = b.source.next(), if pending.is_empty() && paused.is_none() && delivery.has_room() => {
                match next {
                    Ok(record) => {
                        b.report_read_ok(&mut broker_down);
                        pending.push_back(record);
                        b.source.take_ready(&mut pending, BATCH);
                        if let Some(h) = &mut handed {
                            b.drop_read_again(h, &mut pending);
                        }
                    }
                    Err(e) => b.report_read_error(&mut broker_down, &e).await,
                }
            }
        }

        if delivery
            .commit_due()
            .is_some_and(|at| at <= tokio::time::Instant::now())
        {
            if !drain!() {
                break;
            }
            match commit(&b, &step, &mut delivery).await {
                Ok(()) => {
                    refused.clear();
                    TransactionCommitted {
                        after_aborts: std::mem::take(&mut aborts) > 0,
                    }
                    .emit(b.scope());
                }
                Err(aborted) => {
                    TransactionAborted {
                        message: &aborted.message,
                        stop: aborted.stop,
                        report: aborts == 0 || !aborted.refused.is_empty(),
                    }
                    .emit(b.scope());
                    if aborted.stop {
                        break;
                    }
                    let wait = if aborted.refused.is_empty() {
                        aborts += 1;
                        (Duration::from_millis(200) * aborts).min(MAX_BACKOFF)
                    } else {
                        // Not the broker's state: go again now, dead-lettering those.
                        Duration::ZERO
                    };
                    refused.extend(aborted.refused.iter().cloned());
                    rewind(&b, &step, &aborted, &mut pending, handed.as_mut()).await;
                    paused = None;
                    tokio::select! {
                        () = b.shutdown.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    // Shutdown: the batch on the step's thread is delivered, an open transaction
    // commits what the step handled, and at-least-once deliveries in flight are
    // awaited.
    let _ = drain!();
    if delivery.commit_due().is_some() {
        let _ = commit(&b, &step, &mut delivery).await;
    }
    for settled in delivery.finish().await {
        b.settle(settled);
    }
    if b.stats.state().0 != BindingState::Stopped {
        b.stats.set_state(BindingState::Stopped, None);
    }
    b.source.close();
}

/// Flushes the step's held-back state into the open transaction and commits it.
async fn commit<S: Step + 'static, D: Delivery>(
    b: &Binding,
    step: &Dedicated<S>,
    delivery: &mut D,
) -> Result<(), Aborted> {
    if !delivery.flush_each_batch() {
        let fx = step.run(|s| s.flush()).await;
        if !fx.is_empty() {
            delivery.deliver(&b.route, Vec::new(), fx);
        }
    }
    let settled = delivery.commit(&b.source).await?;
    b.settle(settled);
    Ok(())
}

/// After an aborted transaction: the step forgets the state the transaction touched,
/// and the source goes back to the first record of each partition it held (or that
/// waits in `pending`), so everything is read and processed again. A partition that
/// moved meanwhile is not rewound: its new owner reads from the committed offset
/// anyway. Going back through the source (rather than re-sending the same outputs)
/// also lets the consumer rejoin its group if the broker forgot it, so the next
/// commit carries valid group metadata.
async fn rewind<S: Step + 'static>(
    b: &Binding,
    step: &Dedicated<S>,
    aborted: &Aborted,
    pending: &mut VecDeque<Record>,
    mut handed: Option<&mut handed::Handed>,
) {
    let mut first: BTreeMap<i32, i64> = aborted.first.clone();
    let mut touched: Vec<i32> = first.keys().copied().collect();
    for record in pending.drain(..) {
        touched.push(record.partition);
        if b.source.is_current(&record) {
            let at = first.entry(record.partition).or_insert(record.offset);
            *at = (*at).min(record.offset);
        }
    }
    touched.sort_unstable();
    touched.dedup();
    step.run(move |step| step.rollback(&touched)).await;
    for (partition, offset) in first {
        b.source.rewind(partition, offset);
        if let Some(h) = handed.as_deref_mut() {
            h.rewound(partition, offset);
        }
    }
}
