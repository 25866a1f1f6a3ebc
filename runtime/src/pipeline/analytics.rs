//! The analytics stage: an optional wasm step, then key and value extraction, then
//! the window store. A second task closes windows on time and publishes their final
//! values to the `out` topic.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::wasm_step::{Retry, failed};
use super::{Outcome, Step};
use crate::kafka::Sink;
use crate::observe::{BindingStats, EventKind};
use crate::record::{Output, Record};
use crate::wasm::Worker;
use crate::window::WindowStore;
use crate::window::changelog::{self, Entry};

/// How often due windows are closed.
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

pub struct AnalyticsStep {
    pub worker: Option<Worker>,
    /// The store's changelog topic: every window change is written there before the
    /// input record's offset is stored, so the state survives a crash.
    pub changelog: Option<String>,
    pub retry: Retry,
    pub store: Arc<WindowStore>,
    pub key: KeySelector,
    pub value: ValueSelector,
}

impl AnalyticsStep {
    fn extract(&self, out: &Output) -> Result<(String, f64), String> {
        let json = || {
            serde_json::from_slice::<serde_json::Value>(&out.value)
                .map_err(|e| format!("value is not JSON: {e}"))
        };
        let parsed = match (&self.key, &self.value) {
            (KeySelector::RecordKey, ValueSelector::One) => None,
            _ => Some(json()?),
        };
        let key = match &self.key {
            KeySelector::RecordKey => match &out.key {
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

impl Step for AnalyticsStep {
    fn handle(&mut self, record: &Record) -> Outcome {
        let outputs = match &mut self.worker {
            Some(worker) => match self.retry.run(|| worker.process(record)) {
                Ok(outputs) => outputs,
                Err(e) => return failed(e),
            },
            None => vec![Output {
                topic: None,
                key: record.key.clone(),
                value: record.value.clone(),
                headers: Vec::new(),
            }],
        };
        let mut points = Vec::with_capacity(outputs.len());
        for out in &outputs {
            match self.extract(out) {
                Ok(point) => points.push(point),
                Err(error) => {
                    return Outcome::Fail {
                        error,
                        kind: EventKind::RecordFailed,
                        attempts: 1,
                    };
                }
            }
        }
        let mut changes = Vec::with_capacity(points.len());
        for (key, value) in points {
            match self.store.add(record.timestamp_ms, &key, value) {
                Ok(entry) => changes.push(entry),
                Err(late) => {
                    return Outcome::Fail {
                        error: format!(
                            "late record: window [{}, {}) of key '{key}' closed at watermark {}",
                            late.window_start, late.window_end, late.watermark
                        ),
                        kind: EventKind::LateRecord,
                        attempts: 1,
                    };
                }
            }
        }
        let Some(changelog) = &self.changelog else {
            return Outcome::Emit(Vec::new());
        };
        Outcome::Emit(
            changes
                .iter()
                .map(|e| changelog_record(changelog, e))
                .collect(),
        )
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        self.worker.as_ref().map(Worker::changes)
    }
}

fn changelog_record(topic: &str, entry: &Entry) -> Output {
    Output {
        topic: Some(topic.to_string()),
        key: Some(entry.record_key()),
        value: entry.to_json(),
        headers: Vec::new(),
    }
}

/// Closes due windows every [`CLOSE_EVERY`] and publishes each final value to `out`
/// as `{"store","key","start","end","value"}`, keyed by the group key. Closing and
/// forgetting windows are recorded in the changelog too, so a restored store neither
/// re-publishes closed windows nor resurrects forgotten ones.
pub async fn run_closer(
    store: Arc<WindowStore>,
    sink: Sink,
    out: Option<String>,
    changelog: Option<String>,
    stats: Arc<BindingStats>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(CLOSE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sends = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            Some(_) = sends.join_next(), if !sends.is_empty() => continue,
        }
        let (closed_windows, forgotten) = store.close_due();
        if let Some(changelog) = &changelog {
            for closed in &closed_windows {
                let entry = Entry::new(closed.start, &closed.key, &closed.acc, true);
                let (sink, record, topic) = (
                    sink.clone(),
                    changelog_record(changelog, &entry),
                    changelog.clone(),
                );
                sends.spawn(async move {
                    let _ = sink.send(&topic, &record).await;
                });
            }
            for (start, key) in forgotten {
                let (sink, topic) = (sink.clone(), changelog.clone());
                sends.spawn(async move {
                    let _ = sink
                        .send_tombstone(&topic, &changelog::record_key(start, &key))
                        .await;
                });
            }
        }
        for closed in closed_windows {
            let Some(topic) = out.clone() else { continue };
            let value = serde_json::json!({
                "store": store.name,
                "key": closed.key,
                "start": closed.start,
                "end": closed.end,
                "value": closed.acc.value(store.aggregate),
            });
            let record = Output {
                topic: Some(topic.clone()),
                key: Some(closed.key.into_bytes()),
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
    while sends.join_next().await.is_some() {}
}
