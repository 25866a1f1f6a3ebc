//! Steps that call a wasm function: `function` bindings emit its outputs,
//! `consumer` bindings emit nothing.

use tokio::sync::watch;

use super::{Outcome, Step};
use crate::observe::EventKind;
use crate::record::Record;
use crate::wasm::{CallError, Worker};

/// Sorts a failed call into a record failure or a pause.
pub(super) fn failed(e: CallError) -> Outcome {
    if e.is_record_failure() {
        Outcome::Fail {
            error: e.to_string(),
            kind: EventKind::RecordFailed,
        }
    } else {
        Outcome::Pause {
            reason: e.to_string(),
        }
    }
}

pub struct FunctionStep(pub Worker);

impl Step for FunctionStep {
    fn handle(&mut self, record: &Record) -> Outcome {
        match self.0.process(record) {
            Ok(outputs) => Outcome::Emit(outputs),
            Err(e) => failed(e),
        }
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.0.changes())
    }
}

pub struct ConsumerStep(pub Worker);

impl Step for ConsumerStep {
    fn handle(&mut self, record: &Record) -> Outcome {
        match self.0.consume(record) {
            Ok(()) => Outcome::Emit(Vec::new()),
            Err(e) => failed(e),
        }
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.0.changes())
    }
}
