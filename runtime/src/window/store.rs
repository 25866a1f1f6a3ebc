//! The queryable window store of one analytics stage, shared between the stage (which
//! writes) and the HTTP layer (which reads). A std `Mutex`, never held across an
//! `.await`: every operation is a short in-memory update or copy.
//!
//! State is kept per partition of the stage's input, the unit that moves between kfn
//! instances: a partition's state is installed (restored from the same partition of
//! the changelog) when the partition is assigned here, under that assignment's lease,
//! and dropped when it moves away. Each partition has its own stream time, so when a
//! window closes does not depend on which partitions happen to share an instance.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use tokio::time::Instant;

use super::aggregate::AggregateKind;
use super::changelog::Entry;
use super::state::{ClosedWindow, Late, WindowSpec, WindowState};

/// One window of one key, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct WindowRow {
    /// The partition whose state holds the window.
    pub partition: i32,
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub value: serde_json::Value,
    pub closed: bool,
}

/// What closing due windows produced in one partition.
pub struct Closed {
    pub partition: i32,
    pub windows: Vec<ClosedWindow>,
    /// Windows forgotten after retention: (start, key).
    pub forgotten: Vec<(i64, String)>,
}

struct Part {
    lease: u64,
    state: WindowState,
}

pub struct WindowStore {
    pub name: String,
    pub aggregate: AggregateKind,
    /// The SSE route serving [`WindowStore::current`], if any.
    pub serve: Option<String>,
    spec: WindowSpec,
    parts: Mutex<BTreeMap<i32, Part>>,
    /// Held while a partition is restored, so it is restored once.
    restoring: Mutex<()>,
}

impl WindowStore {
    pub fn new(
        name: &str,
        spec: WindowSpec,
        aggregate: AggregateKind,
        serve: Option<String>,
    ) -> Self {
        Self {
            name: name.to_string(),
            aggregate,
            serve,
            spec,
            parts: Mutex::default(),
            restoring: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, Part>> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    /// An empty state for one partition, to restore into.
    pub fn empty_state(&self) -> WindowState {
        WindowState::new(self.spec)
    }

    /// Serialises restores: hold it while checking [`WindowStore::has`] and restoring.
    pub fn restore_guard(&self) -> MutexGuard<'_, ()> {
        self.restoring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `partition`'s state is here under `lease`.
    pub fn has(&self, partition: i32, lease: u64) -> bool {
        self.lock()
            .get(&partition)
            .is_some_and(|p| p.lease == lease)
    }

    /// Installs `partition`'s (restored) state under `lease`.
    pub fn install(&self, partition: i32, lease: u64, state: WindowState) {
        self.lock().insert(partition, Part { lease, state });
    }

    /// Drops the state of `partitions` (after an aborted transaction: it is restored
    /// again from the committed changelog).
    pub fn drop_partitions(&self, partitions: &[i32]) {
        let mut parts = self.lock();
        for p in partitions {
            parts.remove(p);
        }
    }

    /// Keeps only the partitions in `owned` (partition, lease); returns what it dropped.
    pub fn retain_owned(&self, owned: &[(i32, u64)]) -> Vec<i32> {
        let mut dropped = Vec::new();
        self.lock().retain(|p, part| {
            let keep = owned.contains(&(*p, part.lease));
            if !keep {
                dropped.push(*p);
            }
            keep
        });
        dropped
    }

    /// The partitions whose state is here.
    pub fn partitions(&self) -> Vec<i32> {
        self.lock().keys().copied().collect()
    }

    /// Adds a value in `partition`; returns the changelog entry of the window it
    /// changed. `None` if the partition's state is not here (not restored yet).
    pub fn add(
        &self,
        partition: i32,
        ts: i64,
        key: &str,
        value: f64,
    ) -> Option<Result<Entry, Late>> {
        let mut parts = self.lock();
        let part = parts.get_mut(&partition)?;
        Some(
            part.state
                .add(ts, key, value, Instant::now())
                .map(|(start, acc)| Entry::new(start, key, &acc, false)),
        )
    }

    /// Closes due windows in every partition.
    pub fn close_due(&self) -> Vec<Closed> {
        let now = Instant::now();
        let mut out = Vec::new();
        for (partition, part) in self.lock().iter_mut() {
            let mut forgotten = Vec::new();
            let windows = part.state.close_due(now, &mut forgotten);
            if !windows.is_empty() || !forgotten.is_empty() {
                out.push(Closed {
                    partition: *partition,
                    windows,
                    forgotten,
                });
            }
        }
        out
    }

    /// Every window here overlapping `[from, to)`, in (start, key) order.
    pub fn query(&self, from: Option<i64>, to: Option<i64>) -> Vec<WindowRow> {
        let (from, to) = (from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX));
        let mut rows: Vec<WindowRow> = self
            .lock()
            .iter()
            .flat_map(|(p, part)| {
                part.state
                    .windows(from, to)
                    .into_iter()
                    .map(move |w| (*p, w))
            })
            .map(|(partition, (key, start, end, acc, closed))| WindowRow {
                partition,
                key,
                start,
                end,
                value: acc.value(self.aggregate),
                closed,
            })
            .collect();
        rows.sort_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key)));
        rows
    }

    /// `{"P1": 3, "P2": 5}`: each key's value in its partition's current window.
    pub fn current(&self) -> BTreeMap<String, serde_json::Value> {
        let now = Instant::now();
        let mut out = BTreeMap::new();
        for part in self.lock().values_mut() {
            for (key, acc) in part.state.current(now) {
                out.insert(key, acc.value(self.aggregate));
            }
        }
        out
    }
}
