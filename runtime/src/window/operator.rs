//! The stage's behaviour, as the record loop drives it on the stage's own thread:
//! [`Operator::add`] per record, [`Operator::flush`] when the loop makes the state
//! durable, [`Operator::tick`] on a timer (idle close, partitions moving between
//! instances, `emit: changes`), [`Operator::rollback`] after an aborted transaction.
//!
//! The operator never sends anything itself: what it produces comes back as
//! [`Effects`] and leaves through the loop's delivery, so the windows' state changes,
//! closed-markers and results are written by one writer, in order, and under
//! exactly-once in the same transaction as the input offsets they follow from.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::time::Instant;

use super::restore::Restorer;
use super::state::Late;
use super::store::WindowStore;
use crate::kafka::Ownership;
use crate::record::Effects;

/// Why a record did not go into any window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddError {
    /// No window can take it (e.g. a timestamp the window kind does not support).
    Bad(String),
    /// Shutting down while its partition's state was being restored.
    Stopping,
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
    /// Which of them still have records to read, as last looked up (see
    /// [`super::clock::Clock`]).
    pub behind: Option<Arc<Behind>>,
}

/// The input partitions of a repartitioned stage with records still to read by the
/// step before: kept up to date by a probe of that step's consumer group.
#[derive(Debug, Default)]
pub struct Behind(std::sync::Mutex<BTreeSet<i32>>);

impl Behind {
    pub fn set(&self, partitions: BTreeSet<i32>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = partitions;
    }

    pub fn get(&self) -> BTreeSet<i32> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Operator {
    /// Adds a record of `key` at `ts` (from input partition `source`) to the windows
    /// of `partition`, restoring that partition's state first if it just arrived.
    /// `Ok(Some(late))`: late for some or all of its windows.
    pub fn add(
        &mut self,
        partition: i32,
        lease: u64,
        source: i32,
        ts: i64,
        key: &str,
        values: &[f64],
    ) -> Result<Option<Late>, AddError> {
        if !self.restorer.ensure(partition, lease) {
            return Err(AddError::Stopping);
        }
        let expected = self.sources();
        let behind = self.behind.as_ref().map(|b| b.get()).unwrap_or_default();
        let stage = &self.store.stage;
        self.store
            .with(partition, lease, |state| {
                state.set_sources(expected, &behind);
                state.add(stage, source, ts, key, values, Instant::now())
            })
            .ok_or_else(|| {
                AddError::Bad(format!(
                    "partition {partition} moved while the record was handled"
                ))
            })?
            .map_err(AddError::Bad)
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
        let mut fx = Effects::default();
        let (stage, now) = (&self.store.stage, Instant::now());
        self.store.each(|_, state| {
            // Stream time only: moving on with the wall clock is the tick's job.
            state.close_due(stage, now, true, &mut fx);
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
        for &(partition, lease) in &owned {
            if !self.restorer.ensure(partition, lease) {
                return Effects::default();
            }
        }
        let mut fx = Effects::default();
        let (expected, behind) = (
            self.sources(),
            self.behind.as_ref().map(|b| b.get()).unwrap_or_default(),
        );
        let (stage, now) = (&self.store.stage, Instant::now());
        self.store.each(|partition, state| {
            state.set_sources(expected, &behind);
            let busy = upstream_busy || lagging.contains(&partition);
            state.close_due(stage, now, busy, &mut fx);
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
