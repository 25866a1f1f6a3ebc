//! A binding's handle on its function: one `Store` and instance, called
//! synchronously between records. Before each call it checks the slot's version and
//! re-instantiates if a new one was swapped in (so in-flight calls always finish on
//! the version they started with; a batch split over forks of a worker runs on one
//! version, [`Worker::pin`]ned); after a trap it throws the store away, because
//! wasmtime poisons a store that trapped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use wasmtime::{Store, Trap};

use super::World;
use super::bindings::{
    self, aggregator::Aggregator, batch_function::BatchFunction, consumer::Consumer,
    function::Function, supplier::Supplier,
};
use super::engine::{EPOCH_TICK, WasmEngine};
use super::host::{GuestIdentity, HostState, LiveConfig};
use super::registry::{Pre, Prepared, Slot};
use crate::observe::FailureKind;
use crate::observe::metrics::Histogram;
use crate::record::{Output, Record};

/// Per-function resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the guest's linear memory.
    pub memory_bytes: u64,
    /// Longest a single call may run before it is interrupted (a trap).
    pub cpu_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(1),
        }
    }
}

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Nothing is loaded under the function's name: the binding waits.
    #[error("function '{function}' is not loaded")]
    NotLoaded { function: String },
    /// The loaded version targets another world than the binding needs: it waits.
    #[error("function '{function}' is a {actual} but this binding needs a {expected}")]
    WrongWorld {
        function: String,
        expected: World,
        actual: World,
    },
    /// The component could not be instantiated: the binding waits for a new version.
    #[error("function '{function}' failed to instantiate: {message}")]
    Instantiate { function: String, message: String },
    /// The guest returned an error for this record.
    #[error("guest error: {message}")]
    Guest { message: String },
    /// The guest trapped on this record (panic, CPU-time or memory limit).
    #[error("guest trapped: {message}")]
    Trap { message: String },
}

impl CallError {
    /// True for failures that belong to the record (dead-letter it and go on); false
    /// for failures of the function itself (pause the binding until it changes).
    pub fn is_record_failure(&self) -> bool {
        self.failure_kind().is_some()
    }

    /// How `/metrics` counts it, for a record failure.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self {
            CallError::Guest { .. } => Some(FailureKind::GuestError),
            CallError::Trap { message } if message.starts_with(CPU_TIME_EXCEEDED) => {
                Some(FailureKind::Timeout)
            }
            CallError::Trap { .. } => Some(FailureKind::Trap),
            _ => None,
        }
    }
}

enum Instance {
    Function(Function),
    BatchFunction(BatchFunction),
    Consumer(Consumer),
    Supplier(Supplier),
    Aggregator(Aggregator),
}

struct Active {
    store: Store<HostState>,
    instance: Instance,
    prepared: Arc<Prepared>,
}

/// Calls one function for one binding.
pub struct Worker {
    engine: Arc<WasmEngine>,
    slot: Arc<Slot>,
    identity: GuestIdentity,
    config: LiveConfig,
    limits: Limits,
    expected: World,
    active: Option<Active>,
    instantiations: u64,
    /// Marked seen at the start of every call, so a clone taken after a failed call
    /// fires only for versions swapped in after that call looked.
    changes: watch::Receiver<u64>,
    /// Where the time of each call goes (`kfn_guest_call_seconds`).
    call_seconds: Option<Histogram>,
    /// The version calls run on while set ([`Worker::pin`]), instead of the slot's
    /// current one.
    pinned: Option<Pin>,
}

/// A version of a function (or its absence) that several workers run one batch on,
/// so that the forks of a worker agree on it even when a new one is swapped in
/// meanwhile.
#[derive(Clone)]
pub struct Pin(Option<Arc<Prepared>>);

impl Worker {
    pub fn new(
        engine: Arc<WasmEngine>,
        slot: Arc<Slot>,
        identity: GuestIdentity,
        config: BTreeMap<String, String>,
        limits: Limits,
        expected: World,
    ) -> Self {
        let changes = slot.subscribe();
        Self {
            engine,
            slot,
            changes,
            identity,
            config: Arc::new(arc_swap::ArcSwap::from_pointee(config)),
            limits,
            expected,
            active: None,
            instantiations: 0,
            call_seconds: None,
            pinned: None,
        }
    }

    /// Another worker for the same function, binding, `config:` and limits, with an
    /// instance of its own (made on its first call): to run calls on another thread.
    pub fn fork(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            slot: self.slot.clone(),
            changes: self.slot.subscribe(),
            identity: self.identity.clone(),
            config: self.config.clone(),
            limits: self.limits,
            expected: self.expected,
            active: None,
            instantiations: 0,
            call_seconds: self.call_seconds.clone(),
            pinned: None,
        }
    }

    /// Runs the calls from now on, until [`Worker::unpin`], on the slot's current
    /// version, and returns it for [`Worker::pin_to`] on this worker's forks. Like a
    /// call, it marks the versions up to now seen.
    pub fn pin(&mut self) -> Pin {
        self.changes.borrow_and_update();
        let pin = Pin(self.slot.current());
        self.pinned = Some(pin.clone());
        pin
    }

    /// Runs the calls from now on, until [`Worker::unpin`], on `pin`'s version.
    pub fn pin_to(&mut self, pin: Pin) {
        self.changes.borrow_and_update();
        self.pinned = Some(pin);
    }

    /// Back to the slot's current version at each call.
    pub fn unpin(&mut self) {
        self.pinned = None;
    }

    /// The version the next call runs on.
    fn target(&self) -> Option<Arc<Prepared>> {
        match &self.pinned {
            Some(Pin(pinned)) => pinned.clone(),
            None => self.slot.current(),
        }
    }

    /// The `config:` values the guest reads: store a new map to change them live.
    pub fn live_config(&self) -> LiveConfig {
        self.config.clone()
    }

    /// Times every call into `histogram`.
    pub fn observe_calls(mut self, histogram: Histogram) -> Self {
        self.call_seconds = Some(histogram);
        self
    }

    pub fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    /// Fires when the function's version changes after the last call started.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// The generation and hash of the version the last call ran on.
    pub fn version(&self) -> Option<(u64, &str)> {
        self.active
            .as_ref()
            .map(|a| (a.prepared.generation, a.prepared.hash.as_str()))
    }

    /// How many stores this worker has created (first use, swaps, traps).
    pub fn instantiations(&self) -> u64 {
        self.instantiations
    }

    /// Calls `process` (world `function`).
    pub fn process(&mut self, record: &Record) -> Result<Vec<Output>, CallError> {
        self.process_message(&to_message(record))
    }

    /// Like [`Worker::process`], without copying the record on the data path: its
    /// key, value, headers and topic are lent to the call and put back afterwards.
    pub fn process_lent(&mut self, record: &mut Record) -> Result<Vec<Output>, CallError> {
        let msg = lend(record);
        let result = self.process_message(&msg);
        give_back(record, msg);
        result
    }

    fn process_message(&mut self, msg: &bindings::Message) -> Result<Vec<Output>, CallError> {
        let limits = self.limits;
        self.call(|active| match &active.instance {
            Instance::Function(f) => {
                arm(&mut active.store, limits);
                Ok(f.call_process(&mut active.store, msg))
            }
            // A batch of one.
            Instance::BatchFunction(f) => {
                arm(&mut active.store, limits);
                Ok(
                    f.call_process_batch(&mut active.store, std::slice::from_ref(msg))
                        .map(|results| one_per_record(results, 1).and_then(|mut r| r.remove(0))),
                )
            }
            _ => Err(active.prepared.world),
        })
        .map(|outs| outs.into_iter().map(from_output).collect())
    }

    /// Whether the function's current version takes records in batches (world
    /// `batch-function`): then [`Worker::process_batch_lent`] is one call per batch.
    pub fn batches(&self) -> bool {
        self.target()
            .is_some_and(|p| p.world == World::BatchFunction)
    }

    /// Calls `process-batch` (world `batch-function`) once for all of `records`, lent
    /// as [`Worker::process_lent`] lends one; one result per record, in order (an
    /// error there is that record's, from the guest). `Err` when the call as a whole
    /// failed (a trap, a result list of another length, no batch function loaded):
    /// nothing of it counts, and the records are to be handled one by one.
    pub fn process_batch_lent(
        &mut self,
        records: &mut [Record],
    ) -> Result<Vec<Result<Vec<Output>, CallError>>, CallError> {
        let msgs: Vec<bindings::Message> = records.iter_mut().map(lend).collect();
        let limits = self.limits;
        let result = self.call(|active| match &active.instance {
            Instance::BatchFunction(f) => {
                arm(&mut active.store, limits);
                Ok(f.call_process_batch(&mut active.store, &msgs)
                    .map(|results| one_per_record(results, msgs.len())))
            }
            _ => Err(active.prepared.world),
        });
        for (record, msg) in records.iter_mut().zip(msgs) {
            give_back(record, msg);
        }
        Ok(result?
            .into_iter()
            .map(|r| match r {
                Ok(outs) => Ok(outs.into_iter().map(from_output).collect()),
                Err(message) => Err(CallError::Guest { message }),
            })
            .collect())
    }

    /// Calls `consume` (world `consumer`).
    pub fn consume(&mut self, record: &Record) -> Result<(), CallError> {
        self.consume_message(&to_message(record))
    }

    /// Like [`Worker::consume`], lending the record as [`Worker::process_lent`] does.
    pub fn consume_lent(&mut self, record: &mut Record) -> Result<(), CallError> {
        let msg = lend(record);
        let result = self.consume_message(&msg);
        give_back(record, msg);
        result
    }

    fn consume_message(&mut self, msg: &bindings::Message) -> Result<(), CallError> {
        let limits = self.limits;
        self.call(|active| match &active.instance {
            Instance::Consumer(c) => {
                arm(&mut active.store, limits);
                Ok(c.call_consume(&mut active.store, msg))
            }
            _ => Err(active.prepared.world),
        })
    }

    /// Calls `supply` (world `supplier`).
    pub fn supply(&mut self) -> Result<Vec<Output>, CallError> {
        let limits = self.limits;
        self.call(|active| match &active.instance {
            Instance::Supplier(s) => {
                arm(&mut active.store, limits);
                Ok(s.call_supply(&mut active.store))
            }
            _ => Err(active.prepared.world),
        })
        .map(|outs| outs.into_iter().map(from_output).collect())
    }

    /// Calls `init` (world `aggregator`): an empty window's state.
    pub fn init(&mut self) -> Result<Vec<u8>, CallError> {
        self.aggregator(|a, store| a.call_init(store).map(Ok))
    }

    /// Calls `add` (world `aggregator`): `state` with `msg` added.
    pub fn add(&mut self, state: &[u8], msg: &bindings::Message) -> Result<Vec<u8>, CallError> {
        self.aggregator(|a, store| a.call_add(store, state, msg))
    }

    /// Calls `merge` (world `aggregator`).
    pub fn merge(&mut self, a: &[u8], b: &[u8]) -> Result<Vec<u8>, CallError> {
        self.aggregator(|g, store| g.call_merge(store, a, b))
    }

    /// Calls `finish` (world `aggregator`): the window's value.
    pub fn finish(&mut self, state: &[u8]) -> Result<Vec<u8>, CallError> {
        self.aggregator(|a, store| a.call_finish(store, state))
    }

    fn aggregator<T>(
        &mut self,
        f: impl FnOnce(&Aggregator, &mut Store<HostState>) -> wasmtime::Result<Result<T, String>>,
    ) -> Result<T, CallError> {
        let limits = self.limits;
        self.call(|active| match &active.instance {
            Instance::Aggregator(a) => {
                arm(&mut active.store, limits);
                Ok(f(a, &mut active.store))
            }
            _ => Err(active.prepared.world),
        })
    }

    /// Runs `f` on an up-to-date instance and sorts its outcome into a [`CallError`].
    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut Active) -> Result<wasmtime::Result<Result<T, String>>, World>,
    ) -> Result<T, CallError> {
        if self.pinned.is_none() {
            self.changes.borrow_and_update();
        }
        self.refresh()?;
        let Some(active) = self.active.as_mut() else {
            return Err(self.not_loaded());
        };
        active.store.data_mut().limits.hit = false;
        let started = std::time::Instant::now();
        let called = f(active);
        if let Some(h) = &self.call_seconds {
            h.observe(started.elapsed().as_secs_f64());
        }
        match called {
            Err(actual) => Err(CallError::WrongWorld {
                function: self.identity.function.to_string(),
                expected: self.expected,
                actual,
            }),
            Ok(Ok(result)) => {
                // Garbage-collected guests (JavaScript, Python, Go) grow their heap over
                // many calls; recycle the instance between calls, before the cap traps one.
                if active.store.data().limits.nearly_full() {
                    tracing::debug!(function = %self.identity.function, "memory 3/4 full: a fresh instance for the next call");
                    self.active = None;
                }
                result.map_err(|message| CallError::Guest { message })
            }
            Ok(Err(trap)) => {
                let message = describe_trap(&trap, &active.store, self.limits);
                // A trapped store is unusable: the next call instantiates afresh.
                self.active = None;
                Err(CallError::Trap { message })
            }
        }
    }

    /// Makes `active` an instance of the version to run on ([`Worker::target`]).
    fn refresh(&mut self) -> Result<(), CallError> {
        let Some(current) = self.target() else {
            self.active = None;
            return Err(self.not_loaded());
        };
        if let Some(active) = &self.active
            && active.prepared.generation == current.generation
        {
            return Ok(());
        }
        self.active = None;
        if !self.expected.takes(current.world) {
            return Err(CallError::WrongWorld {
                function: self.identity.function.to_string(),
                expected: self.expected,
                actual: current.world,
            });
        }
        let mut store = Store::new(
            self.engine.engine(),
            HostState::new(
                self.identity.clone(),
                self.config.clone(),
                self.limits.memory_bytes,
            ),
        );
        store.limiter(|s| &mut s.limits);
        arm(&mut store, self.limits);
        let instantiate_err = |e: wasmtime::Error| CallError::Instantiate {
            function: self.identity.function.to_string(),
            message: format!("{e:#}"),
        };
        let instance = match &current.pre {
            Pre::Function(pre) => {
                Instance::Function(pre.instantiate(&mut store).map_err(instantiate_err)?)
            }
            Pre::BatchFunction(pre) => {
                Instance::BatchFunction(pre.instantiate(&mut store).map_err(instantiate_err)?)
            }
            Pre::Consumer(pre) => {
                Instance::Consumer(pre.instantiate(&mut store).map_err(instantiate_err)?)
            }
            Pre::Supplier(pre) => {
                Instance::Supplier(pre.instantiate(&mut store).map_err(instantiate_err)?)
            }
            Pre::Aggregator(pre) => {
                Instance::Aggregator(pre.instantiate(&mut store).map_err(instantiate_err)?)
            }
        };
        self.instantiations += 1;
        self.active = Some(Active {
            store,
            instance,
            prepared: current,
        });
        Ok(())
    }

    fn not_loaded(&self) -> CallError {
        CallError::NotLoaded {
            function: self.identity.function.to_string(),
        }
    }
}

/// A batch call's results, if there is one per record (else the error for the
/// whole call: a guest that returns another number of results is broken).
fn one_per_record<T>(results: Vec<T>, records: usize) -> Result<Vec<T>, String> {
    if results.len() == records {
        Ok(results)
    } else {
        Err(format!(
            "process-batch returned {} results for {records} records; it must return one per record, in order",
            results.len()
        ))
    }
}

/// Sets the CPU-time deadline for the next call.
fn arm(store: &mut Store<HostState>, limits: Limits) {
    let ticks = limits
        .cpu_time
        .as_nanos()
        .div_ceil(EPOCH_TICK.as_nanos())
        .max(1);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
}

/// How a trap message for a call past its CPU-time limit starts.
const CPU_TIME_EXCEEDED: &str = "CPU-time limit";

fn describe_trap(err: &wasmtime::Error, store: &Store<HostState>, limits: Limits) -> String {
    if store.data().limits.hit {
        return format!(
            "memory limit of {} MiB reached ({err})",
            store.data().limits.max_bytes() >> 20
        );
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!("{CPU_TIME_EXCEEDED} of {:?} exceeded", limits.cpu_time),
        _ => {
            // The root cause first, then wasmtime's backtrace context, on one line.
            let text = format!("{err:#}");
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" | ")
        }
    }
}

/// The record as the guest sees it (a copy: for calls that keep the record).
pub fn to_message(r: &Record) -> bindings::Message {
    bindings::Message {
        key: r.key.clone(),
        value: r.value.clone(),
        headers: r
            .headers
            .iter()
            .map(|(name, value)| bindings::Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        timestamp: r.timestamp_ms,
        topic: r.topic.clone(),
        partition: r.partition,
        offset: r.offset,
    }
}

/// Runs `f` on `record` as the guest sees it, its fields lent (moved, not copied)
/// for the time of the call.
pub fn lend_message<R>(record: &mut Record, f: impl FnOnce(&bindings::Message) -> R) -> R {
    let msg = lend(record);
    let result = f(&msg);
    give_back(record, msg);
    result
}

/// The record as a message, its fields moved (not copied) into it.
fn lend(r: &mut Record) -> bindings::Message {
    bindings::Message {
        key: r.key.take(),
        value: std::mem::take(&mut r.value),
        headers: std::mem::take(&mut r.headers)
            .into_iter()
            .map(|(name, value)| bindings::Header { name, value })
            .collect(),
        timestamp: r.timestamp_ms,
        topic: std::mem::take(&mut r.topic),
        partition: r.partition,
        offset: r.offset,
    }
}

/// Puts back what [`lend`] took.
fn give_back(r: &mut Record, m: bindings::Message) {
    r.key = m.key;
    r.value = m.value;
    r.headers = m.headers.into_iter().map(|h| (h.name, h.value)).collect();
    r.topic = m.topic;
}

fn from_output(o: bindings::Output) -> Output {
    Output {
        topic: o.topic,
        partition: None,
        key: o.key,
        value: o.value,
        headers: o.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        ..Output::default()
    }
}
