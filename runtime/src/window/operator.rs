//! The stage's behaviour, as the record loop drives it on the stage's own thread:
//! [`Operator::add`] per record (in a stage with an aggregator function, with the
//! function's calls for it, the store unlocked: see [`super::guest`]),
//! [`Operator::flush`] when the loop makes the state durable, [`Operator::tick`] on a
//! timer (idle close, partitions moving between instances, `emit: changes`),
//! [`Operator::rollback`] after an aborted transaction.
//!
//! The operator never sends anything itself: what it produces comes back as
//! [`Effects`] and leaves through the loop's delivery, so the windows' state changes,
//! closed-markers and results are written by one writer, in order, and under
//! exactly-once in the same transaction as the input offsets they follow from.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::guest::Aggregator;
use super::restore::Restorer;
use super::state::{Finished, Late};
use super::store::WindowStore;
use crate::kafka::{Ownership, Upstream};
use crate::record::{Effects, Record};
use crate::wasm::CallError;

/// Why a record did not go into any window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddError {
    /// No window can take it (e.g. a timestamp the window kind does not support).
    Bad(String),
    /// Shutting down while its partition's state was being restored.
    Stopping,
    /// The aggregator function refused it (or cannot run now): its windows are as
    /// they were before it.
    Guest(CallError),
}

pub struct Operator {
    pub store: Arc<WindowStore>,
    pub restorer: Arc<Restorer>,
    pub ownership: Arc<Ownership>,
    /// A repartitioned stage's input topic: its partitions are the sources each of
    /// this stage's partitions hears from.
    pub sources_from: Option<String>,
    /// How many, once looked up.
    pub sources: Option<usize>,
    /// Where the step before stands, as last looked up (see [`super::clock::Clock`]):
    /// which input partitions it has not caught up with, and where each partition here
    /// ends.
    pub upstream: Option<Arc<UpstreamProbe>>,
    /// This stage's partitions with records still to read, as the loop last said,
    /// and when.
    pub lagging: (Vec<i32>, std::time::Instant),
    /// The aggregator function, in a stage that has one.
    pub guest: Option<Aggregator>,
    /// The aggregator could not run on the last record (not loaded, broken): that
    /// record waits, so no partition is idle and nothing closes until it runs.
    pub blocked: bool,
}

/// The last [`Upstream`] of a repartitioned stage, kept up to date by a probe of the
/// step before's consumer group and of the repartition topic.
#[derive(Debug, Default)]
pub struct UpstreamProbe(std::sync::Mutex<Arc<Upstream>>);

impl UpstreamProbe {
    pub fn set(&self, upstream: Upstream) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(upstream);
    }

    pub fn get(&self) -> Arc<Upstream> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Operator {
    /// Adds `record` (grouped under `key`, stamped `ts`, from input partition
    /// `source`, giving the numbers `values`) to the windows of its partition,
    /// restoring that partition's state first if it just arrived. `Ok(Some(late))`:
    /// late for some or all of its windows.
    pub fn add(
        &mut self,
        record: &mut Record,
        source: i32,
        ts: i64,
        key: &str,
        values: &[f64],
    ) -> Result<Option<Late>, AddError> {
        let (partition, lease) = (record.partition, record.lease);
        if !self.store.has(partition, lease) {
            // Partitions arrive together: restore every one that is new at once.
            let owned = self.ownership.owned();
            if !self.restorer.ensure_all(&owned) {
                return Err(AddError::Stopping);
            }
        }
        if !self.restorer.ensure(partition, lease) {
            return Err(AddError::Stopping);
        }
        let expected = self.sources();
        let upstream = self.upstream.as_ref().map(|u| u.get());
        let lagging = self.lagging(partition, upstream.as_deref());
        let stage = &self.store.stage;
        let offset = record.offset;
        let (late, work) = self
            .store
            .with(partition, lease, |state| {
                state.note_read(offset);
                state.set_sources(expected, upstream.as_deref(), lagging);
                let late = state.add(stage, source, ts, key, values, Instant::now());
                if late.is_err() {
                    // A record no window takes changes nothing.
                    state.settle(stage, None);
                }
                (late, state.take_work())
            })
            .ok_or_else(|| {
                AddError::Bad(format!(
                    "partition {partition} moved while the record was handled"
                ))
            })?;
        let late = late.map_err(AddError::Bad)?;
        let Some(guest) = &mut self.guest else {
            return Ok(late);
        };
        // The function runs with the store unlocked; only this thread changes it.
        let settled: Result<Vec<_>, CallError> = crate::wasm::lend_message(record, |msg| {
            work.iter()
                .map(|(bounds, acc)| guest.settle(acc, msg).map(|state| (*bounds, state)))
                .collect()
        });
        let (states, refused) = match settled {
            Ok(states) => (Some(states), None),
            Err(e) => (None, Some(e)),
        };
        self.store
            .with(partition, lease, |state| state.settle(stage, states));
        self.blocked = refused.as_ref().is_some_and(|e| !e.is_record_failure());
        match refused {
            None => Ok(late),
            Some(e) => Err(AddError::Guest(e)),
        }
    }

    /// Runs `finish` for every window whose aggregator state changed since it last
    /// ran (with the store unlocked), so that what closes, what is emitted and what
    /// HTTP reads has its value. False if the function cannot run now (not loaded,
    /// broken): then nothing may close, or it would close with an old value.
    fn finish_changed(&mut self) -> bool {
        let Some(guest) = &mut self.guest else {
            return true;
        };
        let mut stale = BTreeMap::new();
        self.store.each(|partition, state| {
            let windows = state.take_stale();
            if !windows.is_empty() {
                stale.insert(partition, windows);
            }
        });
        if stale.is_empty() {
            return !self.blocked;
        }
        let mut done: BTreeMap<i32, Finished> = BTreeMap::new();
        let mut ready = true;
        for (partition, windows) in stale {
            let finished = windows
                .into_iter()
                .map(|(key, bounds, state)| {
                    // Once the function cannot run, the rest wait for it too.
                    let outcome = match ready {
                        true => guest.finish(&state).transpose(),
                        false => None,
                    };
                    match &outcome {
                        Some(Err(e)) => {
                            tracing::warn!(store = %self.store.name(), %key, window = %self.store.stage.spec.show(bounds), "finish failed: {e}");
                        }
                        None => ready = false,
                        Some(Ok(_)) => {}
                    }
                    (key, bounds, outcome)
                })
                .collect();
            done.insert(partition, finished);
        }
        self.store.each(|partition, state| {
            if let Some(finished) = done.remove(&partition) {
                state.set_finished(finished);
            }
        });
        ready && !self.blocked
    }

    /// Whether `partition` may have records left to read: the loop said so when it
    /// last looked, or it has not looked since the step before's ends were read.
    fn lagging(&self, partition: i32, upstream: Option<&Upstream>) -> bool {
        let (lagging, when) = &self.lagging;
        lagging.contains(&partition) || upstream.and_then(|u| u.at).is_some_and(|at| at > *when)
    }

    /// How many input partitions feed each partition here: 1 for a stage reading its
    /// input directly, the input's partition count for a repartitioned one (looked up
    /// once; 0 while unknown: then stream time does not wait for every source).
    fn sources(&mut self) -> usize {
        let Some(topic) = &self.sources_from else {
            return 1;
        };
        if self.sources.is_none() {
            match crate::kafka::partition_count(&self.restorer.settings, topic) {
                Ok(n) => self.sources = Some(n),
                Err(e) => {
                    tracing::debug!(%topic, error = %e, "partition count unknown for now");
                }
            }
        }
        self.sources.unwrap_or(0)
    }

    /// What changed since the last flush, and the windows stream time has closed.
    pub fn flush(&mut self) -> Effects {
        let ready = self.finish_changed();
        let mut fx = Effects::default();
        let (stage, now) = (&self.store.stage, Instant::now());
        self.store.each(|_, state| {
            // Stream time only: moving on with the wall clock is the tick's job.
            if ready {
                state.close_due(stage, now, true, &mut fx);
            }
            state.flush(stage, &mut fx);
        });
        fx
    }

    /// Follows partitions moving between instances (drops what moved away, restores
    /// what arrived without waiting for its first record), closes what is due — on
    /// the wall clock too for partitions that are really idle: not in `lagging` (still
    /// records to read) and not `upstream_busy` (records still on their way through
    /// the step before) — and emits updates.
    pub fn tick(&mut self, lagging: &[i32], upstream_busy: bool) -> Effects {
        let owned = self.ownership.owned();
        let dropped = self.store.retain_owned(&owned);
        if !dropped.is_empty() {
            tracing::info!(store = %self.store.name(), partitions = ?dropped, "state handed over to another instance");
        }
        if !self.restorer.ensure_all(&owned) {
            return Effects::default();
        }
        let ready = self.finish_changed();
        let mut fx = Effects::default();
        self.lagging = (lagging.to_vec(), std::time::Instant::now());
        let (expected, upstream) = (self.sources(), self.upstream.as_ref().map(|u| u.get()));
        let (stage, now) = (&self.store.stage, Instant::now());
        self.store.each(|partition, state| {
            state.set_sources(
                expected,
                upstream.as_deref(),
                self.lagging(partition, upstream.as_deref()),
            );
            let busy = upstream_busy || lagging.contains(&partition);
            if ready {
                state.close_due(stage, now, busy, &mut fx);
            }
            state.emit_updates(stage, now, &mut fx);
            state.flush(stage, &mut fx);
        });
        fx
    }

    /// The effects of what was handled since the last commit on `partitions` were
    /// thrown away: forget their state; it is restored from the committed changelog
    /// when their records are read again.
    pub fn rollback(&mut self, partitions: &[i32]) {
        self.store.drop_partitions(partitions);
    }
}
