//! Rebuilding a partition's window state from the same partition of the changelog,
//! with its progress on the stage's status.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::changelog;
use super::state::PartitionState;
use super::store::WindowStore;
use crate::kafka::KafkaSettings;
use crate::observe::event::{Emit, RestoreProgress, Scope};
use crate::observe::{BindingState, BindingStats, EventKind, Events};

pub struct Restorer {
    pub settings: KafkaSettings,
    pub store: Arc<WindowStore>,
    pub stats: Arc<BindingStats>,
    pub events: Events,
    pub shutdown: CancellationToken,
}

impl Restorer {
    /// Makes sure the store holds `partition`'s state under `lease`, restoring it if
    /// not. Blocking; a failing restore (the broker is away) is retried, with the
    /// reason on the stage's status, until it works. False only on shutdown.
    pub fn ensure(&self, partition: i32, lease: u64) -> bool {
        if self.store.has(partition, lease) {
            return true;
        }
        let _restoring = self.store.restore_guard();
        if self.store.has(partition, lease) {
            return true;
        }
        let mut wait = Duration::from_millis(500);
        loop {
            match self.restore(partition) {
                Ok(state) => {
                    self.store.install(partition, lease, state);
                    self.stats.set_state(BindingState::Running, None);
                    return true;
                }
                Err(e) => {
                    let reason = format!(
                        "cannot restore partition {partition} from {}: {e}; retrying",
                        self.store.stage.changelog
                    );
                    tracing::warn!(store = %self.store.name(), "{reason}");
                    if self
                        .stats
                        .set_state(BindingState::Starting, Some(reason.clone()))
                    {
                        self.events
                            .emit(EventKind::Broker, self.store.name(), reason);
                    }
                }
            }
            if self.shutdown.is_cancelled() {
                return false;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// [`Restorer::ensure`] for every partition of `owned` (partition, lease) not
    /// here yet, restoring them side by side, one changelog reader each: a new owner
    /// of several partitions (a start, a takeover) waits for the largest, not for
    /// their sum. False only on shutdown.
    pub fn ensure_all(&self, owned: &[(i32, u64)]) -> bool {
        let missing: Vec<(i32, u64)> = owned
            .iter()
            .copied()
            .filter(|&(p, lease)| !self.store.has(p, lease))
            .collect();
        if missing.len() > 1 {
            let guard = self.store.restore_guard();
            let restored: Vec<_> = std::thread::scope(|s| {
                let readers: Vec<_> = missing
                    .iter()
                    .map(|&(p, lease)| s.spawn(move || (p, lease, self.restore(p))))
                    .collect();
                readers.into_iter().filter_map(|r| r.join().ok()).collect()
            });
            for (p, lease, state) in restored {
                // One that failed is retried below, alone, with its reason shown.
                if let Ok(state) = state {
                    self.store.install(p, lease, state);
                }
            }
            if missing.iter().all(|&(p, lease)| self.store.has(p, lease)) {
                self.stats.set_state(BindingState::Running, None);
            }
            drop(guard);
        }
        missing.iter().all(|&(p, lease)| self.ensure(p, lease))
    }

    fn restore(&self, partition: i32) -> Result<PartitionState, String> {
        let started = std::time::Instant::now();
        let stage = &self.store.stage;
        let mut state = PartitionState::new(stage, partition, Instant::now());
        let mut bad: Option<(u64, String)> = None;
        let now = Instant::now();
        let n = crate::kafka::replay(
            &self.settings,
            &stage.changelog,
            Some(partition),
            |key, value| {
                let applied = changelog::decode(key, value)
                    .and_then(|change| state.apply(stage, change, now));
                if let Err(e) = applied {
                    let (count, _) = bad.get_or_insert((0, e));
                    *count += 1;
                }
            },
            |done, total| {
                RestoreProgress {
                    partition,
                    changelog: &stage.changelog,
                    done,
                    total,
                }
                .emit(Scope {
                    binding: self.store.name(),
                    stats: &self.stats,
                    events: &self.events,
                });
            },
        )
        .map_err(|e| e.to_string())?;
        let ms = started.elapsed().as_millis();
        if n > 0 {
            let skipped = match &bad {
                Some((count, first)) => format!(" ({count} unreadable records skipped: {first})"),
                None => String::new(),
            };
            let name = self.store.name();
            tracing::info!(store = %name, partition, records = n, ms, "state restored from {}{skipped}", stage.changelog);
            self.events.emit(
                if bad.is_some() {
                    EventKind::RecordFailed
                } else {
                    EventKind::Info
                },
                name,
                format!(
                    "partition {partition} restored: {n} changelog records in {ms} ms{skipped}"
                ),
            );
        }
        Ok(state)
    }
}
