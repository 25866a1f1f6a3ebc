//! A stage's aggregator function (`aggregate: { function: NAME }`, WIT world
//! `aggregator`): the guest holds the logic, kfn holds the state.
//!
//! Each window keeps the guest's state bytes in its accumulator ([`GuestAcc`]),
//! beside the built-in aggregates, so they go to the changelog with the window (in
//! the same transaction under exactly-once), are restored with it and survive a hot
//! swap: the next version of the function gets the same bytes.
//!
//! The guest is never called while the store's lock is held. A window kind only
//! *queues* calls while it updates a key's windows under the lock (`add` for the
//! record, `merge` when sessions merge); the operator then takes the queued work,
//! runs it on the guest with the lock released ([`Aggregator::settle`]), and puts the
//! new states back, or, if the guest refused the record, puts back every window as
//! it was before the record. `finish` runs only for windows that changed, when the
//! loop flushes or ticks ([`Aggregator::finish`]); queries and SSE read the value it
//! gave last, so HTTP never waits on a guest.

use std::sync::Arc;

use crate::wasm::{CallError, Message, Worker};

/// The aggregator function's part of one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestAcc {
    /// The state as the guest last computed it; `None`: no record yet (`init()`).
    pub state: Option<Arc<[u8]>>,
    /// What `finish` gave for the state (JSON; other bytes as a string): what the
    /// stage reports. `null` until `finish` has run.
    pub value: serde_json::Value,
    /// Why `finish` failed on the current state, if it did (the value is then the
    /// last one it gave).
    pub error: Option<Arc<str>>,
    /// Calls queued for the record being handled.
    ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq)]
enum Op {
    /// `add(state, record)`.
    Add,
    /// `merge(state, other)`, after `other`'s own queued calls.
    Merge(Box<GuestAcc>),
}

impl GuestAcc {
    pub(super) fn queue_add(&mut self) {
        self.ops.push(Op::Add);
    }

    pub(super) fn queue_merge(&mut self, other: &GuestAcc) {
        self.ops.push(Op::Merge(Box::new(other.clone())));
    }

    /// Whether calls are queued.
    pub fn has_work(&self) -> bool {
        !self.ops.is_empty()
    }

    /// Takes the queued calls: `self` keeps its state, the copy returned has the work.
    pub fn take_work(&mut self) -> GuestAcc {
        GuestAcc {
            state: self.state.clone(),
            value: serde_json::Value::Null,
            error: None,
            ops: std::mem::take(&mut self.ops),
        }
    }

    /// Appends the changelog form: `0` (no state yet) or `1` and the state's bytes
    /// (the rest of the record: the window's value ends with them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.state {
            None => out.push(0),
            Some(state) => {
                out.push(1);
                out.extend_from_slice(state);
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<GuestAcc, String> {
        let state = match bytes.split_first() {
            Some((0, [])) => None,
            Some((1, state)) => Some(Arc::from(state)),
            _ => {
                return Err(
                    "window state without the aggregator function's part (was the stage's \
                     aggregate changed? its changelog holds the old shape)"
                        .into(),
                );
            }
        };
        Ok(GuestAcc {
            state,
            ..GuestAcc::default()
        })
    }
}

/// The stage's handle on its aggregator function.
pub struct Aggregator {
    pub worker: Worker,
    /// `limits.state`: a record whose state would be larger is refused.
    pub max_state: usize,
}

impl Aggregator {
    /// Runs the calls queued in `work` for the record `msg`: the window's new state.
    pub fn settle(&mut self, work: &GuestAcc, msg: &Message) -> Result<Arc<[u8]>, CallError> {
        let mut state = work.state.clone();
        for op in &work.ops {
            let next = match op {
                Op::Add => {
                    let current = self.state_or_init(state)?;
                    self.worker.add(&current, msg)?
                }
                Op::Merge(other) => {
                    let other = self.settle(other, msg)?;
                    match state {
                        // merge(init(), s) == s: the contract spares the call.
                        None => {
                            state = Some(other);
                            continue;
                        }
                        Some(current) => self.worker.merge(&current, &other)?,
                    }
                }
            };
            if next.len() > self.max_state {
                return Err(CallError::Guest {
                    message: format!(
                        "the aggregator's state would be {} bytes, over limits.state ({} bytes): the record is refused and the window keeps its state",
                        next.len(),
                        self.max_state
                    ),
                });
            }
            state = Some(Arc::from(next));
        }
        self.state_or_init(state)
    }

    fn state_or_init(&mut self, state: Option<Arc<[u8]>>) -> Result<Arc<[u8]>, CallError> {
        match state {
            Some(s) => Ok(s),
            None => Ok(Arc::from(self.worker.init()?)),
        }
    }

    /// The value of a window whose state is `state`: `Ok(None)` when the function
    /// cannot run now (not loaded): try again later.
    pub fn finish(&mut self, state: &[u8]) -> Result<Option<serde_json::Value>, String> {
        match self.worker.finish(state) {
            Ok(bytes) => Ok(Some(value_of(bytes))),
            Err(e) if e.is_record_failure() => Err(e.to_string()),
            Err(e) => {
                tracing::debug!(error = %e, "finish postponed");
                Ok(None)
            }
        }
    }
}

/// What `finish` returned, as the stage reports it: JSON if it is, else a string.
fn value_of(bytes: Vec<u8>) -> serde_json::Value {
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_the_changelog_form() {
        for state in [
            None,
            Some(Arc::<[u8]>::from(&b""[..])),
            Some(Arc::from(&[1u8, 0, 7][..])),
        ] {
            let acc = GuestAcc {
                state: state.clone(),
                ..GuestAcc::default()
            };
            let mut bytes = Vec::new();
            acc.encode(&mut bytes);
            assert_eq!(GuestAcc::decode(&bytes).unwrap().state, state);
        }
        assert!(GuestAcc::decode(&[]).is_err());
        assert!(GuestAcc::decode(&[0, 1]).is_err());
    }

    #[test]
    fn finish_values_are_json_or_text() {
        assert_eq!(
            value_of(br#"{"p95":4.5}"#.to_vec()),
            serde_json::json!({"p95": 4.5})
        );
        assert_eq!(value_of(b"12".to_vec()), serde_json::json!(12));
        assert_eq!(
            value_of(b"top: a, b".to_vec()),
            serde_json::json!("top: a, b")
        );
    }
}
