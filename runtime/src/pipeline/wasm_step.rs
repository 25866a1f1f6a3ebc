//! Steps that call a wasm function: `function` bindings emit its outputs,
//! `consumer` bindings emit nothing. A record whose call fails is retried with
//! backoff a bounded number of times, then dead-lettered: never an endless replay.

use std::time::Duration;

use tokio::sync::watch;

use super::{Outcome, Step};
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
    pub fn run<T>(
        &self,
        mut f: impl FnMut() -> Result<T, CallError>,
    ) -> Result<T, (CallError, u32)> {
        let mut delay = self.backoff;
        for attempt in 1.. {
            match f() {
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

impl Step for FunctionStep {
    fn handle(&mut self, record: &mut Record) -> Outcome {
        match self.1.run(|| self.0.process_lent(record)) {
            Ok(outputs) => Outcome::emit(outputs),
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
