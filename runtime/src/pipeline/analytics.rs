//! The analytics stage, in two steps joined by Kafka, the way Kafka Streams groups a
//! stream by a new key:
//!
//! 1. [`RepartitionStep`]: the optional wasm step, then key and value extraction; each
//!    point goes to the stage's internal repartition topic keyed by its group key, so
//!    every key lands in one partition whichever instance read the input record;
//! 2. [`AnalyticsStep`]: adds each point to the window state of its partition, and
//!    writes the changed window to the same partition of the changelog before the
//!    offset moves.
//!
//! A stage that groups by the record key with no function needs no new partitioning
//! and aggregates its input directly. [`run_closer`] closes windows on time and
//! publishes their final values; it also hands state over when partitions move
//! between instances.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::wasm_step::{Retry, failed};
use super::{Outcome, Step};
use crate::kafka::{KafkaSettings, Ownership, Sink};
use crate::observe::{BindingState, BindingStats, EventKind, Events};
use crate::record::{Output, Record};
use crate::wasm::Worker;
use crate::window::WindowStore;
use crate::window::changelog::{self, Entry};

/// How often due windows are closed and ownership changes handled.
const CLOSE_EVERY: Duration = Duration::from_millis(100);

/// Where the group key comes from.
#[derive(Debug, Clone)]
pub enum KeySelector {
    /// A JSON pointer into the value; strings are used as they are, other JSON as text.
    Pointer(String),
    /// The record key, as UTF-8.
    RecordKey,
}

/// What is aggregated.
#[derive(Debug, Clone)]
pub enum ValueSelector {
    /// Every record counts 1 (`aggregate: count`).
    One,
    /// A number at a JSON pointer into the value.
    Pointer(String),
}

/// The group key and the number to aggregate, taken from a record.
#[derive(Debug, Clone)]
pub struct Extract {
    pub key: KeySelector,
    pub value: ValueSelector,
}

impl Extract {
    /// Whether records keyed this way are already partitioned by their group key.
    pub fn keeps_partitioning(&self) -> bool {
        matches!(self.key, KeySelector::RecordKey)
    }

    fn point(&self, key: Option<&[u8]>, value: &[u8]) -> Result<(String, f64), String> {
        let json = || {
            serde_json::from_slice::<serde_json::Value>(value)
                .map_err(|e| format!("value is not JSON: {e}"))
        };
        let parsed = match (&self.key, &self.value) {
            (KeySelector::RecordKey, ValueSelector::One) => None,
            _ => Some(json()?),
        };
        let key = match &self.key {
            KeySelector::RecordKey => match key {
                Some(k) => String::from_utf8_lossy(k).into_owned(),
                None => return Err("record has no key (analytics key: record-key)".into()),
            },
            KeySelector::Pointer(p) => match parsed.as_ref().and_then(|v| v.pointer(p)) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => {
                    return Err(format!("key {p} not found in the value"));
                }
                Some(other) => other.to_string(),
            },
        };
        let value = match &self.value {
            ValueSelector::One => 1.0,
            ValueSelector::Pointer(p) => match parsed.as_ref().and_then(|v| v.pointer(p)) {
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| format!("value at {p} is not a number: {v}"))?,
                None => return Err(format!("value {p} not found")),
            },
        };
        Ok((key, value))
    }
}

/// A point on the repartition topic (keyed by the group key): the event time of the
/// input record and the number to aggregate.
#[derive(Debug, Serialize, Deserialize)]
struct Point {
    t: i64,
    v: f64,
}

fn bad_record(error: String) -> Outcome {
    Outcome::Fail {
        error,
        kind: EventKind::RecordFailed,
        attempts: 1,
    }
}

/// Step 1: the stage's function (if any), then one point per output, keyed by the
/// group key, to the repartition topic (the binding's `out`).
pub struct RepartitionStep {
    pub worker: Option<Worker>,
    pub retry: Retry,
    pub extract: Extract,
}

impl Step for RepartitionStep {
    fn handle(&mut self, record: &Record) -> Outcome {
        let outputs = match &mut self.worker {
            Some(worker) => match self.retry.run(|| worker.process(record)) {
                Ok(outputs) => outputs,
                Err(e) => return failed(e),
            },
            None => {
                return match self.extract.point(record.key.as_deref(), &record.value) {
                    Ok((key, v)) => Outcome::Emit(vec![point(key, record.timestamp_ms, v)]),
                    Err(error) => bad_record(error),
                };
            }
        };
        let mut points = Vec::with_capacity(outputs.len());
        for out in &outputs {
            match self.extract.point(out.key.as_deref(), &out.value) {
                Ok((key, v)) => points.push(point(key, record.timestamp_ms, v)),
                Err(error) => return bad_record(error),
            }
        }
        Outcome::Emit(points)
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        self.worker.as_ref().map(Worker::changes)
    }
}

fn point(key: String, t: i64, v: f64) -> Output {
    Output {
        topic: None,
        partition: None,
        key: Some(key.into_bytes()),
        value: serde_json::to_vec(&Point { t, v }).unwrap_or_default(),
        headers: Vec::new(),
    }
}

/// What the aggregating step reads.
#[derive(Debug, Clone)]
pub enum AggregateInput {
    /// Points from [`RepartitionStep`].
    Repartitioned,
    /// The stage's input itself (grouped by record key, no function).
    Direct(Extract),
}

/// Step 2: adds each point to the window state of its partition (restored first if
/// the partition just arrived) and emits the changed windows to the changelog.
pub struct AnalyticsStep {
    pub input: AggregateInput,
    pub restorer: Arc<Restorer>,
    pub ownership: Arc<Ownership>,
}

impl AnalyticsStep {
    fn point(&self, record: &Record) -> Result<(String, i64, f64), String> {
        match &self.input {
            AggregateInput::Direct(extract) => extract
                .point(record.key.as_deref(), &record.value)
                .map(|(key, v)| (key, record.timestamp_ms, v)),
            AggregateInput::Repartitioned => {
                let key = record
                    .key
                    .as_deref()
                    .ok_or("repartition record without a key")?;
                let p: Point = serde_json::from_slice(&record.value)
                    .map_err(|e| format!("bad repartition record: {e}"))?;
                Ok((String::from_utf8_lossy(key).into_owned(), p.t, p.v))
            }
        }
    }
}

impl Step for AnalyticsStep {
    fn handle(&mut self, record: &Record) -> Outcome {
        let (key, ts, value) = match self.point(record) {
            Ok(p) => p,
            Err(error) => return bad_record(error),
        };
        if !self.restorer.ensure(record.partition, record.lease) {
            return Outcome::Pause {
                reason: "stopping while state was restored".into(),
            };
        }
        let store = &self.restorer.store;
        match store.add(record.partition, ts, &key, value) {
            Some(Ok(entry)) => Outcome::Emit(vec![changelog_record(
                &self.restorer.changelog,
                record.partition,
                &entry,
            )]),
            Some(Err(late)) => Outcome::Fail {
                error: format!(
                    "late record: window [{}, {}) of key '{key}' closed at watermark {}",
                    late.window_start, late.window_end, late.watermark
                ),
                kind: EventKind::LateRecord,
                attempts: 1,
            },
            None => bad_record(format!("no state for partition {}", record.partition)),
        }
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.ownership.changes())
    }

    fn rollback(&mut self, partitions: &[i32]) {
        self.restorer.store.drop_partitions(partitions);
    }
}

fn changelog_record(topic: &str, partition: i32, entry: &Entry) -> Output {
    Output {
        topic: Some(topic.to_string()),
        partition: Some(partition),
        key: Some(entry.record_key()),
        value: entry.to_json(),
        headers: Vec::new(),
    }
}

/// Rebuilds a partition's window state from the same partition of the changelog,
/// with its progress on the stage's status.
pub struct Restorer {
    pub settings: KafkaSettings,
    pub changelog: String,
    pub store: Arc<WindowStore>,
    pub stats: Arc<BindingStats>,
    pub events: Events,
    pub shutdown: CancellationToken,
}

impl Restorer {
    /// Makes sure the store holds `partition`'s state under `lease`, restoring it if
    /// not. Blocking; a failing restore (the broker is away) is retried, with the
    /// reason on the stage's status, until it works. False only on shutdown.
    pub fn ensure(&self, partition: i32, lease: u64) -> bool {
        if self.store.has(partition, lease) {
            return true;
        }
        let _restoring = self.store.restore_guard();
        if self.store.has(partition, lease) {
            return true;
        }
        let mut wait = Duration::from_millis(500);
        loop {
            match self.restore(partition) {
                Ok(state) => {
                    self.store.install(partition, lease, state);
                    self.stats.set_state(BindingState::Running, None);
                    return true;
                }
                Err(e) => {
                    let reason = format!(
                        "cannot restore partition {partition} from {}: {e}; retrying",
                        self.changelog
                    );
                    tracing::warn!(store = %self.store.name, "{reason}");
                    if self
                        .stats
                        .set_state(BindingState::Starting, Some(reason.clone()))
                    {
                        self.events
                            .emit(EventKind::Broker, &self.store.name, reason);
                    }
                }
            }
            if self.shutdown.is_cancelled() {
                return false;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    fn restore(&self, partition: i32) -> Result<crate::window::WindowState, String> {
        let started = std::time::Instant::now();
        let mut state = self.store.empty_state();
        let now = tokio::time::Instant::now();
        let mut bad = 0u64;
        let n = crate::kafka::replay(
            &self.settings,
            &self.changelog,
            Some(partition),
            |key, value| {
                if state.apply_changelog(key, value, now).is_err() {
                    bad += 1;
                }
            },
            |done, total| {
                self.stats.set_state(
                    BindingState::Starting,
                    Some(format!(
                        "restoring partition {partition} from {}: {done} of {total} records",
                        self.changelog
                    )),
                );
            },
        )
        .map_err(|e| e.to_string())?;
        let ms = started.elapsed().as_millis();
        if n > 0 {
            let skipped = if bad > 0 {
                format!(" ({bad} unreadable records skipped)")
            } else {
                String::new()
            };
            let name = &self.store.name;
            tracing::info!(store = %name, partition, records = n, ms, "state restored from {}{skipped}", self.changelog);
            self.events.emit(
                EventKind::Info,
                name,
                format!(
                    "partition {partition} restored: {n} changelog records in {ms} ms{skipped}"
                ),
            );
        }
        Ok(state)
    }
}

/// Every [`CLOSE_EVERY`]: hands state over when partitions moved (drops what moved
/// away, restores what arrived without waiting for its first record), closes due
/// windows and publishes each final value to `out` as
/// `{"store","key","start","end","value"}`, keyed by the group key. Closing and
/// forgetting windows are recorded in the changelog too, so a restored store neither
/// re-publishes closed windows nor resurrects forgotten ones.
pub async fn run_closer(
    restorer: Arc<Restorer>,
    ownership: Arc<Ownership>,
    sink: Sink,
    out: Option<String>,
    stats: Arc<BindingStats>,
) {
    let (store, changelog) = (restorer.store.clone(), restorer.changelog.clone());
    let shutdown = restorer.shutdown.clone();
    let mut tick = tokio::time::interval(CLOSE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sends = tokio::task::JoinSet::new();
    let mut restoring = BTreeSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            Some(_) = sends.join_next(), if !sends.is_empty() => continue,
        }
        let owned = ownership.owned();
        let dropped = store.retain_owned(&owned);
        if !dropped.is_empty() {
            tracing::info!(store = %store.name, partitions = ?dropped, "state handed over to another instance");
        }
        restoring.retain(|p| owned.contains(p));
        for &(partition, lease) in &owned {
            if !store.has(partition, lease) && restoring.insert((partition, lease)) {
                let restorer = restorer.clone();
                tokio::task::spawn_blocking(move || restorer.ensure(partition, lease));
            }
        }

        for closed in store.close_due() {
            let partition = closed.partition;
            for window in &closed.windows {
                let entry = Entry::new(window.start, &window.key, &window.acc, true);
                let (sink, record) = (
                    sink.clone(),
                    changelog_record(&changelog, partition, &entry),
                );
                sends.spawn(async move {
                    let _ = sink.send("", &record).await;
                });
            }
            for (start, key) in closed.forgotten {
                let (sink, topic) = (sink.clone(), changelog.clone());
                sends.spawn(async move {
                    let key = changelog::record_key(start, &key);
                    let _ = sink.send_tombstone(&topic, partition, &key).await;
                });
            }
            for window in closed.windows {
                let Some(topic) = out.clone() else { continue };
                let value = serde_json::json!({
                    "store": store.name,
                    "key": window.key,
                    "start": window.start,
                    "end": window.end,
                    "value": window.acc.value(store.aggregate),
                });
                let record = Output {
                    topic: Some(topic.clone()),
                    partition: None,
                    key: Some(window.key.into_bytes()),
                    value: value.to_string().into_bytes(),
                    headers: Vec::new(),
                };
                let (sink, stats) = (sink.clone(), stats.clone());
                sends.spawn(async move {
                    if sink.send(&topic, &record).await.is_ok() {
                        stats.add_out(1);
                    }
                });
            }
        }
    }
    while sends.join_next().await.is_some() {}
}
