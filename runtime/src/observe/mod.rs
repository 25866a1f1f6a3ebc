//! What the runtime shows about itself: per-binding counters, rates and status, and
//! the feed of runtime events (loads, rejections, pauses, record failures). Every
//! stage reports here; the HTTP layer reads it.
//!
//! - [`event`]: the typed events of a binding. Each is one value whose `emit` logs
//!   it, counts it and (if it is news) puts it on the feed, so the log, the
//!   dashboard and `/metrics` cannot tell different stories.
//! - [`metrics`]: `/metrics`, the Prometheus exposition of the same counters the
//!   JSON API shows, read at scrape time.

pub mod event;
pub mod metrics;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

/// How many past events a new subscriber is replayed.
const HISTORY: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    FunctionLoaded,
    FunctionRejected,
    FunctionRemoved,
    BindingPaused,
    BindingResumed,
    RecordFailed,
    LateRecord,
    Config,
    Broker,
    Info,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub ts_ms: i64,
    pub kind: EventKind,
    /// The function, binding, store or file the event is about.
    pub subject: String,
    pub message: String,
}

/// The runtime event feed: a bounded history plus a broadcast for live subscribers.
#[derive(Clone)]
pub struct Events {
    inner: Arc<EventsInner>,
}

struct EventsInner {
    history: Mutex<VecDeque<Event>>,
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(EventsInner {
                history: Mutex::new(VecDeque::with_capacity(HISTORY)),
                tx: broadcast::channel(1024).0,
            }),
        }
    }

    pub fn emit(&self, kind: EventKind, subject: impl Into<String>, message: impl Into<String>) {
        let event = Event {
            ts_ms: crate::record::now_ms(),
            kind,
            subject: subject.into(),
            message: message.into(),
        };
        let mut history = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        // Sent under the lock so a subscriber's snapshot + stream has no gap or dup.
        let _ = self.inner.tx.send(event);
    }

    /// The recent history and a receiver for what follows it.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let history = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        (history.iter().cloned().collect(), self.inner.tx.subscribe())
    }
}

/// The bindings (and stage loops) running now: they come and go as kfn.yaml changes.
#[derive(Clone, Default)]
pub struct Bindings(Arc<std::sync::RwLock<Vec<Arc<BindingStats>>>>);

impl Bindings {
    /// A snapshot, in the order of the file (a restarted binding keeps its place).
    pub fn list(&self) -> Vec<Arc<BindingStats>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `new` where `old` was (or at the end), removing `old`.
    pub fn replace(&self, old: &[Arc<BindingStats>], new: Vec<Arc<BindingStats>>) {
        let mut list = self.0.write().unwrap_or_else(|p| p.into_inner());
        let at = list
            .iter()
            .position(|b| old.iter().any(|o| Arc::ptr_eq(o, b)))
            .unwrap_or(list.len());
        list.retain(|b| !old.iter().any(|o| Arc::ptr_eq(o, b)));
        let at = at.min(list.len());
        list.splice(at..at, new);
    }

    /// The one named `name`, if it runs.
    pub fn get(&self, name: &str) -> Option<Arc<BindingStats>> {
        self.list().into_iter().find(|b| b.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingKind {
    Supplier,
    Function,
    Consumer,
    /// The first step of an analytics stage that groups by a new key.
    Repartition,
    Analytics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingState {
    Starting,
    Running,
    Paused,
    Stopped,
}

/// Why a record failed, as `/metrics` counts it (`kfn_errors_total{kind=...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The function returned an error for the record.
    GuestError,
    /// The function trapped (panic, memory limit).
    Trap,
    /// The function ran past its CPU-time limit.
    Timeout,
    /// Too late for (some of) its windows.
    Late,
    /// An output was refused: by the broker for good (e.g. too large), or it named
    /// no topic on a binding without `out`.
    OutputRefused,
    /// A stage could not read the record (not JSON, no key, not a number).
    Invalid,
}

impl FailureKind {
    pub const ALL: [FailureKind; 6] = [
        FailureKind::GuestError,
        FailureKind::Trap,
        FailureKind::Timeout,
        FailureKind::Late,
        FailureKind::OutputRefused,
        FailureKind::Invalid,
    ];

    /// The `kind` label value.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::GuestError => "guest_error",
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::Late => "late",
            FailureKind::OutputRefused => "output_refused",
            FailureKind::Invalid => "invalid",
        }
    }

    /// How the event feed shows it.
    pub fn event_kind(self) -> EventKind {
        match self {
            FailureKind::Late => EventKind::LateRecord,
            _ => EventKind::RecordFailed,
        }
    }
}

/// Failed records by [`FailureKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures([u64; FailureKind::ALL.len()]);

impl Failures {
    pub fn add(&mut self, kind: FailureKind) {
        self.0[kind as usize] += 1;
    }

    pub fn merge(&mut self, other: Failures) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    pub fn get(&self, kind: FailureKind) -> u64 {
        self.0[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Counters and status of one binding (or analytics stage).
pub struct BindingStats {
    pub name: String,
    pub kind: BindingKind,
    pub function: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Failed records in all; [`BindingStats::failures`] has them by kind.
    pub errors: AtomicU64,
    pub dead_lettered: AtomicU64,
    failures: [AtomicU64; FailureKind::ALL.len()],
    /// Kafka transactions committed and aborted (exactly-once).
    pub txn_committed: AtomicU64,
    pub txn_aborted: AtomicU64,
    /// Instances of its function that share its batches (`limits.instances`; 0 for a
    /// binding or stage without one).
    pub instances: AtomicU64,
    /// Records the input still has beyond the read position, per partition held,
    /// as last sampled.
    lag: Mutex<(Option<std::time::Instant>, BTreeMap<i32, i64>)>,
    /// Guest call time and record timestamp → acknowledged, in seconds.
    pub call_seconds: metrics::Histogram,
    pub end_to_end_seconds: metrics::Histogram,
    /// Changelog records restored so far and in all, of the latest restore.
    restore: Mutex<Option<(u64, u64)>>,
    state: Mutex<(BindingState, Option<String>)>,
    rates: Mutex<Rates>,
}

#[derive(Default)]
struct Rates {
    last_in: u64,
    last_out: u64,
    rate_in: f64,
    rate_out: f64,
}

/// What the API shows about a binding.
#[derive(Debug, Clone, Serialize)]
pub struct BindingInfo {
    pub name: String,
    pub kind: BindingKind,
    pub function: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    /// Instances of its function that share its batches.
    pub instances: u64,
    pub status: BindingState,
    pub status_reason: Option<String>,
    pub records_in: u64,
    pub records_out: u64,
    pub errors: u64,
    /// `errors` by kind (`guest_error`, `trap`, `timeout`, `late`, `output_refused`,
    /// `invalid`).
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    pub dead_lettered: u64,
    pub late: u64,
    /// The latest state restore: changelog records done and in all.
    pub restore: Option<RestoreProgress>,
    pub rate_in: f64,
    pub rate_out: f64,
}

/// How far a state restore got.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RestoreProgress {
    pub done: u64,
    pub total: u64,
}

impl BindingStats {
    pub fn new(
        name: &str,
        kind: BindingKind,
        function: Option<String>,
        input: Option<String>,
        output: Option<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_string(),
            kind,
            function,
            input,
            output,
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            failures: Default::default(),
            txn_committed: AtomicU64::new(0),
            txn_aborted: AtomicU64::new(0),
            instances: AtomicU64::new(0),
            lag: Mutex::new((None, BTreeMap::new())),
            call_seconds: metrics::call_histogram(),
            end_to_end_seconds: metrics::end_to_end_histogram(),
            restore: Mutex::new(None),
            state: Mutex::new((BindingState::Starting, None)),
            rates: Mutex::new(Rates::default()),
        })
    }

    /// Counts records whose effects became durable: `records` in, `outputs` out,
    /// `failures` failed, `dead_lettered` sent to the DLQ. Through
    /// [`event::RecordsSettled`].
    fn add_settled(&self, records: u64, outputs: u64, failures: Failures, dead_lettered: u64) {
        self.records_in.fetch_add(records, Ordering::Relaxed);
        self.records_out.fetch_add(outputs, Ordering::Relaxed);
        self.errors.fetch_add(failures.total(), Ordering::Relaxed);
        for kind in FailureKind::ALL {
            self.failures[kind as usize].fetch_add(failures.get(kind), Ordering::Relaxed);
        }
        self.dead_lettered
            .fetch_add(dead_lettered, Ordering::Relaxed);
    }

    /// Failed records by kind.
    pub fn failures(&self) -> Failures {
        let mut f = Failures::default();
        for kind in FailureKind::ALL {
            f.0[kind as usize] = self.failures[kind as usize].load(Ordering::Relaxed);
        }
        f
    }

    /// Whether the lag is due for a new sample (at most once a second: it asks
    /// librdkafka for positions).
    pub fn lag_due(&self) -> bool {
        let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        lag.0
            .is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(1))
    }

    /// Notes the lag of each partition held.
    pub fn set_lag(&self, lag: impl IntoIterator<Item = (i32, i64)>) {
        *self.lag.lock().unwrap_or_else(|p| p.into_inner()) =
            (Some(std::time::Instant::now()), lag.into_iter().collect());
    }

    /// The lag last sampled, per partition.
    pub fn lag(&self) -> BTreeMap<i32, i64> {
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    /// The latest restore: records done and in all.
    pub fn restore_progress(&self) -> Option<(u64, u64)> {
        *self.restore.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes restore progress.
    pub fn set_progress(&self, done: u64, total: u64) {
        *self.restore.lock().unwrap_or_else(|p| p.into_inner()) = Some((done, total));
    }

    pub fn add_in(&self, n: u64) {
        self.records_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_out(&self, n: u64) {
        self.records_out.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_error(&self, kind: FailureKind) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.failures[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn state(&self) -> (BindingState, Option<String>) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sets the state; returns whether it changed (so callers report transitions once).
    pub fn set_state(&self, state: BindingState, reason: Option<String>) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let changed = s.0 != state || s.1 != reason;
        *s = (state, reason);
        changed
    }

    /// Updates the rates from the counters; call once per `elapsed_s`.
    pub fn sample_rates(&self, elapsed_s: f64) {
        let (now_in, now_out) = (
            self.records_in.load(Ordering::Relaxed),
            self.records_out.load(Ordering::Relaxed),
        );
        let mut r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        // Exponential smoothing over ~3 samples keeps the dashboard steady.
        let alpha = 0.5;
        let inst_in = (now_in - r.last_in) as f64 / elapsed_s;
        let inst_out = (now_out - r.last_out) as f64 / elapsed_s;
        r.rate_in = alpha * inst_in + (1.0 - alpha) * r.rate_in;
        r.rate_out = alpha * inst_out + (1.0 - alpha) * r.rate_out;
        r.last_in = now_in;
        r.last_out = now_out;
    }

    pub fn info(&self) -> BindingInfo {
        let (status, status_reason) = self.state();
        let failures = self.failures();
        let r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        BindingInfo {
            name: self.name.clone(),
            kind: self.kind,
            function: self.function.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
            instances: self.instances.load(Ordering::Relaxed),
            status,
            status_reason,
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            errors_by_kind: FailureKind::ALL
                .iter()
                .map(|k| (k.label(), failures.get(*k)))
                .collect(),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            late: failures.get(FailureKind::Late),
            restore: self
                .restore
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map(|(done, total)| RestoreProgress { done, total }),
            rate_in: (r.rate_in * 10.0).round() / 10.0,
            rate_out: (r.rate_out * 10.0).round() / 10.0,
        }
    }
}
