//! One partition's window state: every key's windows, which of them are open (by the
//! watermark at which they close), which closed ones are kept for queries, and what
//! changed since the state was last written to the changelog.
//!
//! Nothing here talks to Kafka: changes come out as [`Effects`] (changelog records,
//! results for `out`, closed-markers), and the caller makes them durable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tokio::time::Instant;

use super::aggregate::Acc;
use super::changelog::{self, Change};
use super::clock::Clock;
use super::guest::GuestAcc;
use super::kinds;
use super::spec::Bounds;
use super::{Emit, Stage};
use crate::kafka::Upstream;
use crate::record::{Effects, Output};

/// One window of one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub acc: Acc,
    /// The largest record timestamp in the window (Kafka Streams' window timestamp;
    /// sliding windows are built from it).
    pub max_ts: i64,
    /// Final: reported, and never changed again.
    pub closed: bool,
}

type Id = (Arc<str>, Bounds);

/// The orderings kept beside the windows.
#[derive(Debug, Default)]
struct Index {
    /// Open windows by the watermark that closes them.
    open: BTreeSet<(i64, Arc<str>, Bounds)>,
    /// Closed windows by the watermark at which they are forgotten.
    retired: BTreeSet<(i64, Arc<str>, Bounds)>,
    /// Changed since the last flush: written to the changelog then.
    touched: BTreeSet<Id>,
    /// Changed since the last update was emitted (`emit: changes`).
    updated: BTreeSet<Id>,
    /// Aggregator state changed since `finish` last ran on it.
    stale: BTreeSet<Id>,
}

/// Each window as it was before the record being handled changed it, in the order
/// they were first changed: how a record the aggregator function refused is taken
/// back.
type Undo = Vec<Before>;

/// One window before the record: its slot (`None`: it did not exist) and whether it
/// was waiting to be written, emitted and finished.
#[derive(Debug)]
struct Before {
    bounds: Bounds,
    slot: Option<Slot>,
    touched: bool,
    updated: bool,
    stale: bool,
}

/// What the record being handled did in a stage with an aggregator function, until
/// the function has run: enough to take it back entirely, stream time included.
#[derive(Debug)]
struct Pending {
    key: Arc<str>,
    undo: Undo,
    clock: Clock,
}

/// Every window of a partition in one ordered map, keyed by (group key, start, end),
/// with the group keys interned: a window costs one map entry, however many keys
/// there are (a map per key would cost a whole tree node per key).
#[derive(Debug, Default)]
struct Windows {
    /// Each group key once, with how many windows it has.
    keys: HashMap<Arc<str>, u32>,
    map: BTreeMap<(Arc<str>, i64, i64), Slot>,
}

impl Windows {
    /// The shared copy of `key`.
    fn intern(&mut self, key: &str) -> Arc<str> {
        match self.keys.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => {
                let k: Arc<str> = Arc::from(key);
                self.keys.insert(k.clone(), 0);
                k
            }
        }
    }

    /// Forgets `key` if it has no window (after a record that went nowhere).
    fn release(&mut self, key: &Arc<str>) {
        if self.keys.get(key) == Some(&0) {
            self.keys.remove(key);
        }
    }

    fn get(&self, key: &Arc<str>, (start, end): Bounds) -> Option<&Slot> {
        self.map.get(&(key.clone(), start, end))
    }

    fn get_mut(&mut self, key: &Arc<str>, (start, end): Bounds) -> Option<&mut Slot> {
        self.map.get_mut(&(key.clone(), start, end))
    }

    /// Inserts or replaces; true if the window is new.
    fn insert(&mut self, key: &Arc<str>, (start, end): Bounds, slot: Slot) -> bool {
        let new = self.map.insert((key.clone(), start, end), slot).is_none();
        if new {
            *self.keys.entry(key.clone()).or_insert(0) += 1;
        }
        new
    }

    /// The aggregator function's part of a window, in a stage that has one.
    fn guest(&self, key: &Arc<str>, bounds: Bounds) -> Option<&GuestAcc> {
        self.get(key, bounds)?.acc.guest.as_deref()
    }

    fn guest_mut(&mut self, key: &Arc<str>, bounds: Bounds) -> Option<&mut GuestAcc> {
        self.get_mut(key, bounds)?.acc.guest.as_deref_mut()
    }

    fn remove(&mut self, key: &Arc<str>, (start, end): Bounds) -> Option<Slot> {
        let slot = self.map.remove(&(key.clone(), start, end))?;
        if let Some(n) = self.keys.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(key);
            }
        }
        Some(slot)
    }

    /// `key`'s windows starting in `[lo, hi]`, in start order.
    fn range(
        &self,
        key: &Arc<str>,
        lo: i64,
        hi: i64,
    ) -> impl DoubleEndedIterator<Item = (Bounds, &Slot)> {
        self.map
            .range((key.clone(), lo, i64::MIN)..=(key.clone(), hi, i64::MAX))
            .map(|((_, s, e), slot)| ((*s, *e), slot))
    }
}

/// One key's windows, with the bookkeeping every change needs: what a window kind
/// works on.
pub struct KeyWindows<'a> {
    key: Arc<str>,
    windows: &'a mut Windows,
    index: &'a mut Index,
    stage: &'a Stage,
    /// Kept when the stage has an aggregator function.
    undo: Option<&'a mut Undo>,
}

impl KeyWindows<'_> {
    /// Remembers `bounds`' window as it is, the first time the record changes it.
    fn save(&mut self, bounds: Bounds) {
        let Some(undo) = self.undo.as_deref_mut() else {
            return;
        };
        if !undo.iter().any(|b| b.bounds == bounds) {
            let id = (self.key.clone(), bounds);
            undo.push(Before {
                bounds,
                slot: self.windows.get(&self.key, bounds).cloned(),
                touched: self.index.touched.contains(&id),
                updated: self.index.updated.contains(&id),
                stale: self.index.stale.contains(&id),
            });
        }
    }

    pub fn get(&self, bounds: Bounds) -> Option<&Slot> {
        self.windows.get(&self.key, bounds)
    }

    /// The windows starting in `[lo, hi]`, in start order.
    pub fn starting_in(
        &self,
        lo: i64,
        hi: i64,
    ) -> impl DoubleEndedIterator<Item = (Bounds, &Slot)> {
        self.windows.range(&self.key, lo, hi)
    }

    /// The windows starting at or before `hi`, latest first.
    pub fn starting_until(&self, hi: i64) -> impl Iterator<Item = (Bounds, &Slot)> {
        self.windows.range(&self.key, i64::MIN, hi).rev()
    }

    /// Adds a record to an existing window.
    pub fn add(&mut self, bounds: Bounds, values: &[f64], ts: i64) {
        self.save(bounds);
        if let Some(slot) = self.windows.get_mut(&self.key, bounds) {
            slot.acc.add(values);
            slot.max_ts = slot.max_ts.max(ts);
            self.touch(bounds);
        }
    }

    /// Creates (or replaces) an open window.
    pub fn create(&mut self, bounds: Bounds, acc: Acc, max_ts: i64) {
        self.save(bounds);
        let slot = Slot {
            acc,
            max_ts,
            closed: false,
        };
        if self.windows.insert(&self.key, bounds, slot) {
            let close = self.stage.spec.close_at(bounds);
            self.index.open.insert((close, self.key.clone(), bounds));
        }
        self.touch(bounds);
    }

    /// Removes an open window (merged into another session).
    pub fn remove(&mut self, bounds: Bounds) -> Option<Slot> {
        self.save(bounds);
        let slot = self.windows.remove(&self.key, bounds)?;
        let close = self.stage.spec.close_at(bounds);
        self.index.open.remove(&(close, self.key.clone(), bounds));
        self.touch(bounds);
        Some(slot)
    }

    pub fn empty(&self) -> Acc {
        self.stage.aggregates.empty()
    }

    fn touch(&mut self, bounds: Bounds) {
        self.index.touched.insert((self.key.clone(), bounds));
        if matches!(self.stage.emit, Emit::Changes { .. }) {
            self.index.updated.insert((self.key.clone(), bounds));
        }
    }
}

/// A record that was late for some or all of its windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late {
    /// The windows it could not go into.
    pub windows: Vec<Bounds>,
    /// Whether it went into none.
    pub entirely: bool,
    pub watermark: i64,
}

/// One window as a query returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowRow {
    /// The partition whose state holds the window.
    pub partition: i32,
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub value: serde_json::Value,
    pub closed: bool,
    /// Why the aggregator's `finish` failed on the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state of one partition of a stage.
#[derive(Debug)]
pub struct PartitionState {
    partition: i32,
    windows: Windows,
    index: Index,
    clock: Clock,
    clock_saved: Option<super::clock::Saved>,
    updates_emitted: Instant,
    pending: Option<Pending>,
    /// The offset after the last record read from this partition since its state
    /// was made or restored.
    read_to: Option<i64>,
}

impl PartitionState {
    pub fn new(stage: &Stage, partition: i32, now: Instant) -> Self {
        Self {
            partition,
            windows: Windows::default(),
            index: Index::default(),
            clock: Clock::new(stage.spec.idle, now),
            clock_saved: None,
            updates_emitted: now,
            pending: None,
            read_to: None,
        }
    }

    /// Notes that the record at `offset` of this partition was read.
    pub fn note_read(&mut self, offset: i64) {
        self.read_to = Some(self.read_to.map_or(offset + 1, |r| r.max(offset + 1)));
    }

    /// Sets how many input partitions feed this one and, in a repartitioned stage,
    /// where the step before stands: which of them are behind, and whether this
    /// partition may still hold records of a source that looks quiet — it is
    /// `lagging` and not yet read to the end the probe saw (see [`Clock`]).
    pub fn set_sources(&mut self, n: usize, upstream: Option<&Upstream>, lagging: bool) {
        self.clock.expect_sources(n);
        let Some(up) = upstream else {
            return;
        };
        self.clock.set_behind(&up.behind);
        let read_to_end = self
            .read_to
            .zip(up.ends.get(&self.partition))
            .is_some_and(|(read, end)| read >= *end);
        self.clock.set_unread(lagging && !read_to_end);
    }

    /// Adds a record of `key` stamped `ts` (from input partition `source`), whose
    /// numbers are `values`, to its windows. `Ok(Some(late))` if it was late for some
    /// or all of them; `Err` for a record no window can take (a timestamp the kind
    /// does not support).
    pub fn add(
        &mut self,
        stage: &Stage,
        source: i32,
        ts: i64,
        key: &str,
        values: &[f64],
        now: Instant,
    ) -> Result<Option<Late>, String> {
        if ts < 0 {
            return Err(format!("timestamp {ts} is before 1970: windows start at 0"));
        }
        let guest = stage.aggregates.function().is_some();
        let clock = guest.then(|| self.clock.clone());
        let before = self.clock.current();
        let watermark = self.clock.observe(source, ts, now);
        let key = self.windows.intern(key);
        let mut undo = Undo::new();
        let mut view = KeyWindows {
            key: key.clone(),
            windows: &mut self.windows,
            index: &mut self.index,
            stage,
            undo: guest.then_some(&mut undo),
        };
        let late = kinds::add(&stage.spec, &mut view, ts, values, watermark, before);
        self.windows.release(&key);
        self.pending = clock.map(|clock| Pending { key, undo, clock });
        let late = late?;
        Ok(late.map(|(windows, entirely)| Late {
            windows,
            entirely,
            watermark,
        }))
    }

    /// The aggregator calls the last record queued, per window, taken out of the
    /// windows (which keep their state until [`PartitionState::settle`]).
    pub fn take_work(&mut self) -> Vec<(Bounds, GuestAcc)> {
        let Some(pending) = &self.pending else {
            return Vec::new();
        };
        let mut work = Vec::new();
        for Before { bounds, .. } in &pending.undo {
            if let Some(g) = self
                .windows
                .guest_mut(&pending.key, *bounds)
                .filter(|g| g.has_work())
            {
                work.push((*bounds, g.take_work()));
            }
        }
        work
    }

    /// Ends the last record's aggregator calls: `Some` gives each window its new
    /// state; `None` (the function refused the record) puts every window the record
    /// changed back as it was.
    pub fn settle(&mut self, stage: &Stage, states: Option<Vec<(Bounds, Arc<[u8]>)>>) {
        let Some(Pending { key, undo, clock }) = self.pending.take() else {
            return;
        };
        match states {
            Some(states) => {
                for (bounds, state) in states {
                    if let Some(g) = self.windows.guest_mut(&key, bounds) {
                        g.state = Some(state);
                    }
                }
                // Every window the record made or changed needs `finish`: also those
                // made as a copy of another (sliding windows), with no call of their own.
                for Before { bounds, .. } in undo {
                    if self
                        .windows
                        .guest(&key, bounds)
                        .is_some_and(|g| g.state.is_some())
                    {
                        self.index.stale.insert((key.clone(), bounds));
                    }
                }
            }
            None => {
                for before in undo.into_iter().rev() {
                    let bounds = before.bounds;
                    let id = (key.clone(), bounds);
                    let open = (stage.spec.close_at(bounds), key.clone(), bounds);
                    match before.slot {
                        Some(slot) => {
                            let closed = slot.closed;
                            if self.windows.insert(&key, bounds, slot) && !closed {
                                self.index.open.insert(open);
                            }
                        }
                        None => {
                            self.windows.remove(&key, bounds);
                            self.index.open.remove(&open);
                        }
                    }
                    for (set, was) in [
                        (&mut self.index.touched, before.touched),
                        (&mut self.index.updated, before.updated),
                        (&mut self.index.stale, before.stale),
                    ] {
                        if was {
                            set.insert(id.clone());
                        } else {
                            set.remove(&id);
                        }
                    }
                }
                self.windows.release(&key);
                self.clock = clock;
            }
        }
    }

    /// The aggregator states changed since `finish` last ran on them.
    pub fn take_stale(&mut self) -> Vec<(Arc<str>, Bounds, Arc<[u8]>)> {
        std::mem::take(&mut self.index.stale)
            .into_iter()
            .filter_map(|(key, bounds)| {
                let state = self.windows.guest(&key, bounds)?.state.clone()?;
                Some((key, bounds, state))
            })
            .collect()
    }

    /// What `finish` said for windows [`PartitionState::take_stale`] gave: a value,
    /// an error (the value stays the last one), or `None`: not now, ask again.
    pub fn set_finished(&mut self, done: Finished) {
        for (key, bounds, outcome) in done {
            let Some(g) = self.windows.guest_mut(&key, bounds) else {
                continue;
            };
            match outcome {
                Some(Ok(value)) => {
                    g.value = value;
                    g.error = None;
                }
                Some(Err(e)) => g.error = Some(Arc::from(e)),
                None => {
                    self.index.stale.insert((key, bounds));
                }
            }
        }
    }

    /// Closes what is due as of `now` and forgets what is past retention. `busy`:
    /// this partition has records still to read or on their way, so it is not idle.
    pub fn close_due(&mut self, stage: &Stage, now: Instant, busy: bool, fx: &mut Effects) {
        let watermark = self.clock.watermark(now, busy);
        while let Some((close, _, _)) = self.index.open.first() {
            if *close > watermark {
                break;
            }
            let Some((_, key, bounds)) = self.index.open.pop_first() else {
                break;
            };
            let Some(slot) = self.windows.get_mut(&key, bounds) else {
                continue;
            };
            slot.closed = true;
            let id = (key.clone(), bounds);
            // Its latest state goes out with the closed-marker, after the result.
            self.index.touched.remove(&id);
            self.index.updated.remove(&id);
            if let Some(out) = &stage.out {
                fx.results
                    .push(result(stage, out, &key, bounds, Some(slot), true));
            }
            fx.after.push(changelog_record(
                stage,
                self.partition,
                &key,
                bounds,
                Some(slot),
            ));
            let forget = bounds.1.saturating_add(stage.spec.retention());
            self.index.retired.insert((forget, key, bounds));
        }
        while let Some((forget, _, _)) = self.index.retired.first() {
            if *forget > watermark {
                break;
            }
            let Some((_, key, bounds)) = self.index.retired.pop_first() else {
                break;
            };
            self.windows.remove(&key, bounds);
            fx.changes
                .push(changelog_record(stage, self.partition, &key, bounds, None));
        }
    }

    /// Writes what changed since the last flush: windows (or their removal) and the
    /// clock.
    pub fn flush(&mut self, stage: &Stage, fx: &mut Effects) {
        for (key, bounds) in std::mem::take(&mut self.index.touched) {
            let slot = self.windows.get(&key, bounds);
            fx.changes
                .push(changelog_record(stage, self.partition, &key, bounds, slot));
        }
        let saved = self.clock.save();
        if saved.is_some() && saved != self.clock_saved {
            if let Some(s) = &saved {
                fx.changes.push(Output {
                    topic: Some(stage.changelog.clone()),
                    partition: Some(self.partition),
                    key: Some(changelog::clock_key()),
                    value: changelog::clock_value(s),
                    ..Output::default()
                });
            }
            self.clock_saved = saved;
        }
    }

    /// `emit: changes`: the current value of every window changed since the last
    /// emission, at most once per `every`.
    pub fn emit_updates(&mut self, stage: &Stage, now: Instant, fx: &mut Effects) {
        let (Emit::Changes { every }, Some(out)) = (stage.emit, &stage.out) else {
            return;
        };
        if now.saturating_duration_since(self.updates_emitted) < every {
            return;
        }
        self.updates_emitted = now;
        for (key, bounds) in std::mem::take(&mut self.index.updated) {
            let slot = self.windows.get(&key, bounds);
            fx.results
                .push(result(stage, out, &key, bounds, slot, false));
        }
    }

    /// Applies one changelog record while restoring.
    pub fn apply(&mut self, stage: &Stage, change: Change<'_>, now: Instant) -> Result<(), String> {
        match change {
            Change::Window {
                key,
                bounds,
                closed,
                max_ts,
                state,
            } => {
                let acc = stage.aggregates.decode(state)?;
                let stale = acc.guest.as_ref().is_some_and(|g| g.state.is_some());
                let key = self.windows.intern(key);
                self.forget_window(stage, &key, bounds);
                if stale {
                    self.index.stale.insert((key.clone(), bounds));
                }
                self.windows.insert(
                    &key,
                    bounds,
                    Slot {
                        acc,
                        max_ts,
                        closed,
                    },
                );
                if closed {
                    let forget = bounds.1.saturating_add(stage.spec.retention());
                    self.index.retired.insert((forget, key, bounds));
                } else {
                    self.index
                        .open
                        .insert((stage.spec.close_at(bounds), key, bounds));
                }
            }
            Change::Removed { key, bounds } => self.forget(stage, key, bounds),
            Change::Clock(saved) => {
                self.clock.restore(&saved, now);
                self.clock_saved = Some(saved);
            }
        }
        Ok(())
    }

    /// Removes a window and its index entries (restore).
    fn forget(&mut self, stage: &Stage, key: &str, bounds: Bounds) {
        let key = self.windows.intern(key);
        self.forget_window(stage, &key, bounds);
        self.windows.release(&key);
    }

    /// [`PartitionState::forget`] for an interned key, which it leaves interned.
    fn forget_window(&mut self, stage: &Stage, key: &Arc<str>, bounds: Bounds) {
        if self.windows.remove(key, bounds).is_none() {
            return;
        }
        let forget = bounds.1.saturating_add(stage.spec.retention());
        self.index.retired.remove(&(forget, key.clone(), bounds));
        self.index
            .open
            .remove(&(stage.spec.close_at(bounds), key.clone(), bounds));
    }

    /// The watermark as last computed.
    pub fn watermark(&self) -> i64 {
        self.clock.current()
    }

    /// Open windows (what memory grows with).
    pub fn open_windows(&self) -> usize {
        self.index.open.len()
    }

    /// Every window overlapping `[from, to)`.
    pub fn rows(&self, stage: &Stage, from: i64, to: i64) -> Vec<WindowRow> {
        self.windows
            .map
            .iter()
            .filter(|((_, s, e), _)| stage.spec.overlaps((*s, *e), from, to))
            .map(|((key, start, end), slot)| WindowRow {
                partition: self.partition,
                key: key.to_string(),
                start: *start,
                end: *end,
                value: stage.aggregates.value(&slot.acc),
                closed: slot.closed,
                error: finish_error(slot),
            })
            .collect()
    }

    /// Per key, its current window (see [`kinds::current`]) and that window's value.
    pub fn current(&self, stage: &Stage) -> BTreeMap<String, (Bounds, serde_json::Value)> {
        let watermark = self.clock.current();
        let mut out = BTreeMap::new();
        if watermark == i64::MIN {
            return out;
        }
        for key in self.windows.keys.keys() {
            let windows: Vec<(Bounds, &Slot)> =
                self.windows.range(key, i64::MIN, i64::MAX).collect();
            if let Some((bounds, slot)) = kinds::current(&stage.spec, &windows, watermark) {
                let value = match slot {
                    Some(slot) => stage.aggregates.value(&slot.acc),
                    None => stage.aggregates.value(&stage.aggregates.empty()),
                };
                out.insert(key.to_string(), (bounds, value));
            }
        }
        out
    }
}

/// Why the aggregator's `finish` failed on the window's state, if it did.
fn finish_error(slot: &Slot) -> Option<String> {
    slot.acc.guest.as_ref()?.error.as_deref().map(str::to_owned)
}

/// `finish` outcomes per window: a value, an error, or `None`: not now.
pub type Finished = Vec<(Arc<str>, Bounds, Option<Result<serde_json::Value, String>>)>;

/// The changelog record of a window (`slot` `None`: a tombstone).
fn changelog_record(
    stage: &Stage,
    partition: i32,
    key: &str,
    bounds: Bounds,
    slot: Option<&Slot>,
) -> Output {
    Output {
        topic: Some(stage.changelog.clone()),
        partition: Some(partition),
        key: Some(changelog::window_key(key, bounds)),
        value: slot.map_or_else(Vec::new, |s| {
            changelog::window_value(s.closed, s.max_ts, |v| s.acc.encode(v))
        }),
        tombstone: slot.is_none(),
        ..Output::default()
    }
}

/// A window's value for `out`: `{"store","key","start","end","value","final"}`,
/// keyed by the group key and stamped with the window's latest record time. A removed
/// window (a session merged into another) has value `null`.
fn result(
    stage: &Stage,
    out: &str,
    key: &str,
    (start, end): Bounds,
    slot: Option<&Slot>,
    is_final: bool,
) -> Output {
    let mut value = serde_json::json!({
        "store": stage.name,
        "key": key,
        "start": start,
        "end": end,
        "value": slot.map_or(serde_json::Value::Null, |s| stage.aggregates.value(&s.acc)),
        "final": is_final,
    });
    if let Some(error) = slot.and_then(finish_error) {
        value["error"] = error.into();
    }
    Output {
        topic: Some(out.to_string()),
        key: Some(key.as_bytes().to_vec()),
        value: value.to_string().into_bytes(),
        timestamp_ms: slot.map(|s| s.max_ts),
        ..Output::default()
    }
}
