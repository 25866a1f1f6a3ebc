//! The window store of one stage: the state of every input partition held by this
//! instance, shared between the stage (which writes) and the HTTP layer (which
//! reads). A std `Mutex`, never held across an `.await`: every operation is a short
//! in-memory update or copy.
//!
//! A partition's state is installed (restored from the same partition of the
//! changelog) when the partition is assigned here, under that assignment's lease,
//! and dropped when it moves away. Each partition has its own stream time, so when a
//! window closes does not depend on which partitions happen to share an instance.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::Stage;
use super::spec::Kind;
use super::state::{PartitionState, WindowRow};

struct Part {
    lease: u64,
    state: PartitionState,
}

/// A key's current window, as the dashboard charts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentWindow {
    pub partition: i32,
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub value: serde_json::Value,
}

pub struct WindowStore {
    pub stage: Arc<Stage>,
    parts: Mutex<BTreeMap<i32, Part>>,
    /// Held while a partition is restored, so it is restored once.
    restoring: Mutex<()>,
}

impl WindowStore {
    pub fn new(stage: Arc<Stage>) -> Self {
        Self {
            stage,
            parts: Mutex::default(),
            restoring: Mutex::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.stage.name
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, Part>> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
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
    pub fn install(&self, partition: i32, lease: u64, state: PartitionState) {
        self.lock().insert(partition, Part { lease, state });
    }

    /// Runs `f` on `partition`'s state if it is here under `lease`.
    pub fn with<R>(
        &self,
        partition: i32,
        lease: u64,
        f: impl FnOnce(&mut PartitionState) -> R,
    ) -> Option<R> {
        let mut parts = self.lock();
        let part = parts.get_mut(&partition).filter(|p| p.lease == lease)?;
        Some(f(&mut part.state))
    }

    /// Runs `f` on every partition's state.
    pub fn each(&self, mut f: impl FnMut(i32, &mut PartitionState)) {
        for (p, part) in self.lock().iter_mut() {
            f(*p, &mut part.state);
        }
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

    /// The furthest watermark of the partitions here (`None` before any record).
    pub fn watermark(&self) -> Option<i64> {
        self.lock()
            .values()
            .map(|p| p.state.watermark())
            .filter(|w| *w != i64::MIN)
            .max()
    }

    /// Open windows over all partitions here.
    pub fn open_windows(&self) -> usize {
        self.lock().values().map(|p| p.state.open_windows()).sum()
    }

    /// Every window here overlapping `[from, to)`, in (start, key) order.
    pub fn query(&self, from: Option<i64>, to: Option<i64>) -> Vec<WindowRow> {
        let (from, to) = (from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX));
        let mut rows: Vec<WindowRow> = self
            .lock()
            .values()
            .flat_map(|part| part.state.rows(&self.stage, from, to))
            .collect();
        rows.sort_by(|a, b| (a.start, a.end, &a.key).cmp(&(b.start, b.end, &b.key)));
        rows
    }

    /// Each key's current window (see [`super::kinds::current`]).
    pub fn current_windows(&self) -> Vec<CurrentWindow> {
        let mut out = Vec::new();
        for (p, part) in self.lock().iter() {
            for (key, ((start, end), value)) in part.state.current(&self.stage) {
                out.push(CurrentWindow {
                    partition: *p,
                    key,
                    start,
                    end,
                    value,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// `{"P1": 3, "P2": 5}`: each key's value in its current window, what the
    /// stage's `serve:` route pushes every second.
    pub fn current(&self) -> BTreeMap<String, serde_json::Value> {
        current_map(&self.current_windows())
    }

    /// Whether this store's current values are the seed application's map of the
    /// window holding the watermark (tumbling), rather than each key's latest window.
    pub fn serves_one_window(&self) -> bool {
        matches!(self.stage.spec.kind, Kind::Tumbling { .. })
    }
}

/// The `serve:` map of current windows (from this instance or gathered).
pub fn current_map(windows: &[CurrentWindow]) -> BTreeMap<String, serde_json::Value> {
    windows
        .iter()
        .map(|w| (w.key.clone(), w.value.clone()))
        .collect()
}
