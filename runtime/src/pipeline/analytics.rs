//! The steps of an analytics stage, around the window operator, the way Kafka Streams
//! groups a stream by a new key:
//!
//! 1. [`RepartitionStep`]: the stage's function (if any), then the group key; each
//!    output goes to the stage's internal repartition topic keyed by its group key —
//!    so every key lands in one partition whichever instance read the input — stamped
//!    with the input record's time and naming the input record it came from
//!    ([`crate::record::ORIGIN`]), so a late one is dead-lettered as itself;
//! 2. [`WindowStep`]: the numbers to aggregate, then the record into its windows
//!    ([`crate::window::Operator`]).
//!
//! A stage grouping by its record key with no function is partitioned already and
//! runs step 2 on its input directly.

use std::time::Duration;

use tokio::sync::watch;

use super::parallel::Fork;
use super::pointer::Pointers;
use super::wasm_step::{Retry, failed};
use super::{Outcome, Step};
use crate::config::KeySelector;
use crate::observe::FailureKind;
use crate::record::{Effects, Output, Record, origin, origin_of};
use crate::wasm::Worker;
use crate::window::{AddError, Late, Operator};

/// How often the window operator's timer runs: idle close, partitions moving, and
/// `emit: changes`.
const TICK: Duration = Duration::from_millis(100);

/// The internal topic through which `store`'s input is repartitioned by group key.
pub fn repartition_topic(app: &str, store: &str) -> String {
    format!("{app}.{store}.repartition")
}

/// The group key and the numbers to aggregate, taken from a record.
#[derive(Debug, Clone)]
pub struct Extract {
    key: KeySelector,
    /// JSON pointers to the numbers the aggregates need, in order.
    pointers: Vec<String>,
    /// The key's pointer (if it is one), then `pointers`: read in one pass.
    key_and_numbers: Pointers,
    key_only: Pointers,
    numbers_only: Pointers,
}

impl Extract {
    pub fn new(key: KeySelector, pointers: Vec<String>) -> Extract {
        let key_pointer = match &key {
            KeySelector::JsonPointer(p) => Some(p.as_str()),
            KeySelector::RecordKey => None,
        };
        let numbers = || pointers.iter().map(String::as_str);
        Extract {
            key_and_numbers: Pointers::new(key_pointer.into_iter().chain(numbers())),
            key_only: Pointers::new(key_pointer),
            numbers_only: Pointers::new(numbers()),
            key,
            pointers,
        }
    }

    /// The group key of a record with this key and value.
    fn key(&self, key: Option<&[u8]>, value: &[u8]) -> Result<String, String> {
        let mut found = find(&self.key_only, value)?.into_iter();
        self.key_from(key, &mut found)
    }

    /// The group key and the numbers of a record with this key and value.
    fn key_and_numbers(
        &self,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(String, Vec<f64>), String> {
        let mut found = find(&self.key_and_numbers, value)?.into_iter();
        let key = self.key_from(key, &mut found)?;
        Ok((key, self.numbers_from(found)?))
    }

    /// The numbers of a value.
    fn numbers(&self, value: &[u8]) -> Result<Vec<f64>, String> {
        self.numbers_from(find(&self.numbers_only, value)?.into_iter())
    }

    /// The key: the record's, or the first of `found` (its pointer's value).
    fn key_from(
        &self,
        key: Option<&[u8]>,
        found: &mut impl Iterator<Item = Option<serde_json::Value>>,
    ) -> Result<String, String> {
        match &self.key {
            KeySelector::RecordKey => match key {
                Some(k) => Ok(String::from_utf8_lossy(k).into_owned()),
                None => Err("record has no key (analytics key: record-key)".into()),
            },
            KeySelector::JsonPointer(p) => match found.next().flatten() {
                Some(serde_json::Value::String(s)) => Ok(s),
                Some(serde_json::Value::Null) | None => {
                    Err(format!("key {p} not found in the value"))
                }
                Some(other) => Ok(other.to_string()),
            },
        }
    }

    /// The numbers at `pointers`, from what was found there.
    fn numbers_from(
        &self,
        found: impl Iterator<Item = Option<serde_json::Value>>,
    ) -> Result<Vec<f64>, String> {
        self.pointers
            .iter()
            .zip(found)
            .map(|(p, v)| match v {
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| format!("value at {p} is not a number: {v}")),
                None => Err(format!("value {p} not found")),
            })
            .collect()
    }
}

/// What `pointers` find in `value`; a value is parsed only if a pointer needs it.
fn find(pointers: &Pointers, value: &[u8]) -> Result<Vec<Option<serde_json::Value>>, String> {
    if pointers.is_empty() {
        return Ok(Vec::new());
    }
    pointers
        .find(value)
        .map_err(|e| format!("value is not JSON: {e}"))
}

/// Step 1: the stage's function (if any), then one record per output, keyed by the
/// group key, to the repartition topic (the binding's `out`).
pub struct RepartitionStep {
    pub worker: Option<Worker>,
    pub retry: Retry,
    pub extract: Extract,
}

impl Step for RepartitionStep {
    fn handle(&mut self, record: &mut Record) -> Outcome {
        let outputs = match &mut self.worker {
            Some(worker) => match self.retry.run(|| worker.process_lent(record)) {
                Ok(outputs) => outputs,
                Err(e) => return failed(e),
            },
            None => vec![Output {
                key: record.key.clone(),
                value: record.value.clone(),
                headers: record.headers.clone(),
                ..Output::default()
            }],
        };
        let mut out = Vec::with_capacity(outputs.len());
        for o in outputs {
            let key = match self.extract.key(o.key.as_deref(), &o.value) {
                Ok(k) => k,
                Err(e) => return Outcome::fail(e, FailureKind::Invalid, 1),
            };
            let mut headers = o.headers;
            headers.push(origin_of(record));
            out.push(Output {
                topic: None,
                partition: None,
                key: Some(key.into_bytes()),
                value: o.value,
                headers,
                timestamp_ms: Some(record.timestamp_ms),
                tombstone: false,
            });
        }
        Outcome::emit(out)
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        self.worker.as_ref().map(Worker::changes)
    }

    fn restartable(&self) -> bool {
        true
    }
}

impl Fork for RepartitionStep {
    fn fork(&self) -> Self {
        RepartitionStep {
            worker: self.worker.as_ref().map(Worker::fork),
            retry: self.retry,
            extract: self.extract.clone(),
        }
    }

    fn worker(&mut self) -> Option<&mut Worker> {
        self.worker.as_mut()
    }
}

/// Step 2: each record into its windows, per partition of what the stage aggregates.
pub struct WindowStep {
    pub operator: Operator,
    pub extract: Extract,
    /// Reading the stage's input itself (grouped by record key, no function), not
    /// its repartition topic.
    pub direct: bool,
}

impl Step for WindowStep {
    fn handle(&mut self, record: &mut Record) -> Outcome {
        let read = if self.direct {
            self.extract
                .key_and_numbers(record.key.as_deref(), &record.value)
        } else {
            record
                .key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .ok_or_else(|| "repartition record without a key".to_string())
                .and_then(|k| Ok((k, self.extract.numbers(&record.value)?)))
        };
        let (key, values) = match read {
            Ok(kv) => kv,
            Err(e) => return Outcome::fail(e, FailureKind::Invalid, 1),
        };
        // Stream time is kept per input partition a record came from.
        let source = origin(record).map_or(record.partition, |(_, p, _)| p);
        let ts = record.timestamp_ms;
        match self.operator.add(record, source, ts, &key, &values) {
            Ok(None) => Outcome::emit(Vec::new()),
            Ok(Some(late)) => Outcome::fail(
                late_message(&self.operator, &key, &late),
                FailureKind::Late,
                1,
            ),
            Err(AddError::Bad(e)) => Outcome::fail(e, FailureKind::Invalid, 1),
            Err(AddError::Stopping) => Outcome::Pause {
                reason: "stopping while state was restored".into(),
            },
            // Refused by the aggregator: dead-lettered now, not retried (it is pure).
            Err(AddError::Guest(e)) => failed((e, 1)),
        }
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        // A pause is the aggregator's (not loaded, broken) or a restore's.
        match &self.operator.guest {
            Some(guest) => Some(guest.worker.changes()),
            None => Some(self.operator.ownership.changes()),
        }
    }

    fn flush(&mut self) -> Effects {
        self.operator.flush()
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(TICK)
    }

    fn tick(&mut self, lagging: &[i32], upstream_busy: bool) -> Effects {
        self.operator.tick(lagging, upstream_busy)
    }

    fn rollback(&mut self, partitions: &[i32]) {
        self.operator.rollback(partitions);
    }
}

/// `late record: window [5000, 10000) of key 'P1' closed at watermark 10175`, or for
/// a record late for part of its windows, which ones.
fn late_message(op: &Operator, key: &str, late: &Late) -> String {
    let spec = &op.store.stage.spec;
    let windows: Vec<String> = late.windows.iter().map(|b| spec.show(*b)).collect();
    let (what, list) = match windows.as_slice() {
        [one] => ("window", one.clone()),
        _ => ("windows", windows.join(", ")),
    };
    if late.entirely {
        format!(
            "late record: {what} {list} of key '{key}' closed at watermark {}",
            late.watermark
        )
    } else {
        format!(
            "late record for part of its windows: {what} {list} of key '{key}' closed at watermark {} \
             (counted in its other windows)",
            late.watermark
        )
    }
}
