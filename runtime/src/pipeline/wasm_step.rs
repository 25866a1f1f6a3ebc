//! Steps that call a wasm function: `function` bindings emit its outputs,
//! `consumer` bindings emit nothing. A record whose call fails is retried with
//! backoff a bounded number of times, then dead-lettered: never an endless replay.

use std::time::Duration;

use tokio::sync::watch;

use super::parallel::Fork;
use super::{BATCH, Outcome, Step, handle_each};
use crate::record::Record;
use crate::wasm::{CallError, Worker};

/// How often a failing record is tried, and how long to wait between tries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Calls per record, at least 1.
    pub attempts: u32,
    /// Wait before the first retry; doubles per retry, capped at ten times this.
    pub backoff: Duration,
}

impl Retry {
    pub const NONE: Retry = Retry {
        attempts: 1,
        backoff: Duration::ZERO,
    };

    /// Calls `f` until it succeeds, fails for a reason that is not the record's, or
    /// runs out of attempts. Sleeps between tries: this runs on the binding's own
    /// thread, and the wait is bounded (by default 100 + 200 ms).
    pub fn run<T>(&self, f: impl FnMut() -> Result<T, CallError>) -> Result<T, (CallError, u32)> {
        self.tries(None, f)
    }

    /// [`Retry::run`] when the first call was made already (in a batch) and failed
    /// with `first`.
    pub fn after<T>(
        &self,
        first: CallError,
        f: impl FnMut() -> Result<T, CallError>,
    ) -> Result<T, (CallError, u32)> {
        self.tries(Some(first), f)
    }

    fn tries<T>(
        &self,
        mut first: Option<CallError>,
        mut f: impl FnMut() -> Result<T, CallError>,
    ) -> Result<T, (CallError, u32)> {
        let mut delay = self.backoff;
        for attempt in 1.. {
            match first.take().map_or_else(&mut f, Err) {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_record_failure() || attempt >= self.attempts => {
                    return Err((e, attempt));
                }
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "call failed; retrying in {delay:?}");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(self.backoff * 10);
                }
            }
        }
        unreachable!("the loop returns")
    }
}

/// Sorts a failed call into a record failure or a pause.
pub(super) fn failed((e, attempts): (CallError, u32)) -> Outcome {
    if let Some(kind) = e.failure_kind() {
        Outcome::fail(e.to_string(), kind, attempts)
    } else {
        Outcome::Pause {
            reason: e.to_string(),
        }
    }
}

pub struct FunctionStep(pub Worker, pub Retry);

/// Most bytes of keys and values in one `process-batch` call (its records are at most
/// a read batch, [`BATCH`]): small enough for a guest's memory.
const BATCH_BYTES: usize = 1 << 20;

impl Step for FunctionStep {
    fn handle(&mut self, record: &mut Record) -> Outcome {
        match self.1.run(|| self.0.process_lent(record)) {
            Ok(outputs) => Outcome::emit(outputs),
            Err(e) => failed(e),
        }
    }

    /// A `batch-function` guest gets the records in calls of up to [`BATCH`] records;
    /// a record whose result is an error is retried alone, and a call that fails as a
    /// whole (a trap) is made again record by record, so only a record that fails on
    /// its own is dead-lettered. A `function` guest gets a call per record.
    fn handle_batch(&mut self, batch: &mut [Record], outcomes: &mut Vec<Outcome>) {
        let mut rest = batch;
        while !rest.is_empty() {
            if !self.0.batches() {
                return handle_each(self, rest, outcomes);
            }
            let n = chunk_len(rest);
            let (chunk, after) = std::mem::take(&mut rest).split_at_mut(n);
            rest = after;
            match self.0.process_batch_lent(chunk) {
                Ok(results) => {
                    for (record, result) in chunk.iter_mut().zip(results) {
                        outcomes.push(match result {
                            Ok(outputs) => Outcome::emit(outputs),
                            Err(first) => match self.1.after(first, || self.0.process_lent(record))
                            {
                                Ok(outputs) => Outcome::emit(outputs),
                                Err(e) => failed(e),
                            },
                        });
                    }
                }
                Err(e) => {
                    tracing::debug!(records = n, error = %e, "the batch call failed; its records one by one");
                    handle_each(self, chunk, outcomes);
                    if matches!(outcomes.last(), Some(Outcome::Pause { .. })) {
                        return;
                    }
                }
            }
        }
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.0.changes())
    }

    fn restartable(&self) -> bool {
        true
    }
}

impl Fork for FunctionStep {
    fn fork(&self) -> Self {
        FunctionStep(self.0.fork(), self.1)
    }

    fn worker(&mut self) -> Option<&mut Worker> {
        Some(&mut self.0)
    }
}

/// How many of `records` (at least one) go into the next batch call.
fn chunk_len(records: &[Record]) -> usize {
    let mut bytes = 0;
    records
        .iter()
        .take(BATCH)
        .position(|r| {
            bytes += r.value.len() + r.key.as_ref().map_or(0, Vec::len);
            bytes > BATCH_BYTES
        })
        .unwrap_or(records.len().min(BATCH))
        .max(1)
}

pub struct ConsumerStep(pub Worker, pub Retry);

impl Step for ConsumerStep {
    fn handle(&mut self, record: &mut Record) -> Outcome {
        match self.1.run(|| self.0.consume_lent(record)) {
            Ok(()) => Outcome::emit(Vec::new()),
            Err(e) => failed(e),
        }
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.0.changes())
    }

    fn restartable(&self) -> bool {
        true
    }
}

impl Fork for ConsumerStep {
    fn fork(&self) -> Self {
        ConsumerStep(self.0.fork(), self.1)
    }

    fn worker(&mut self) -> Option<&mut Worker> {
        Some(&mut self.0)
    }
}
