//! What the runtime shows about itself: per-binding counters, rates and status, and
//! the feed of runtime events (loads, rejections, pauses, record failures). Every
//! stage reports here; the HTTP layer reads it.

use std::collections::VecDeque;
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

/// Counters and status of one binding (or analytics stage).
pub struct BindingStats {
    pub name: String,
    pub kind: BindingKind,
    pub function: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub errors: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Records late for some or all of their windows (analytics).
    pub late: AtomicU64,
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
    pub status: BindingState,
    pub status_reason: Option<String>,
    pub records_in: u64,
    pub records_out: u64,
    pub errors: u64,
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
            late: AtomicU64::new(0),
            restore: Mutex::new(None),
            state: Mutex::new((BindingState::Starting, None)),
            rates: Mutex::new(Rates::default()),
        })
    }

    /// Counts records whose effects became durable: `records` in, `outputs` out,
    /// `errors` failed (`late` of them late), `dead_lettered` sent to the DLQ.
    pub fn add_settled(
        &self,
        records: u64,
        outputs: u64,
        errors: u64,
        dead_lettered: u64,
        late: u64,
    ) {
        self.records_in.fetch_add(records, Ordering::Relaxed);
        self.records_out.fetch_add(outputs, Ordering::Relaxed);
        self.errors.fetch_add(errors, Ordering::Relaxed);
        self.dead_lettered
            .fetch_add(dead_lettered, Ordering::Relaxed);
        self.late.fetch_add(late, Ordering::Relaxed);
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

    pub fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
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
        let r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        BindingInfo {
            name: self.name.clone(),
            kind: self.kind,
            function: self.function.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
            status,
            status_reason,
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
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
