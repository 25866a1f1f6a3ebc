//! Window assignment and closing.
//!
//! Time: *stream time* is the largest record timestamp seen. Kafka Streams closes
//! windows only when stream time moves, so a quiet topic never emits its last window.
//! Here the watermark also advances with wall-clock time while no record advances
//! stream time: `watermark = max(previous, stream_time + wall time since stream time
//! last moved)`. A window `[start, end)` closes when `end + grace <= watermark`; a
//! record whose window has closed is *late* and handed back to the caller, which
//! routes it somewhere visible instead of dropping it.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::aggregate::Acc;
use super::changelog::Entry;

/// Tumbling window size and grace, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub size_ms: i64,
    pub grace_ms: i64,
}

impl WindowSpec {
    /// The start of the window holding `ts` (floor, also for negative timestamps).
    pub fn start_of(&self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.size_ms)
    }
}

/// A record that arrived after its window closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late {
    pub window_start: i64,
    pub window_end: i64,
    pub watermark: i64,
}

/// A window that has just closed: its final value.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow {
    pub key: String,
    pub start: i64,
    pub end: i64,
    pub acc: Acc,
}

/// Open and recently closed windows of one stage.
#[derive(Debug)]
pub struct WindowState {
    spec: WindowSpec,
    /// Keyed by (window start, group key): iteration order is closing order.
    open: BTreeMap<(i64, String), Acc>,
    closed: BTreeMap<(i64, String), Acc>,
    stream_time: Option<i64>,
    advanced_at: Option<Instant>,
    watermark: i64,
    /// Closed windows older than this (behind the watermark) are forgotten.
    retention_ms: i64,
}

impl WindowState {
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            open: BTreeMap::new(),
            closed: BTreeMap::new(),
            stream_time: None,
            advanced_at: None,
            watermark: i64::MIN,
            // Enough history for a dashboard: an hour, and at least 12 windows.
            retention_ms: (3_600_000_i64).max(spec.size_ms.saturating_mul(12)),
        }
    }

    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    /// The watermark as of `now` (ms since the epoch), or `None` before any record.
    pub fn watermark(&mut self, now: Instant) -> Option<i64> {
        let (stream_time, at) = (self.stream_time?, self.advanced_at?);
        let idle = i64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(i64::MAX);
        self.watermark = self.watermark.max(stream_time.saturating_add(idle));
        Some(self.watermark)
    }

    /// Puts a window back as the changelog last recorded it (on restore). Stream time
    /// resumes from the latest restored window.
    pub fn restore(&mut self, start: i64, key: &str, acc: Acc, closed: bool, now: Instant) {
        let id = (start, key.to_string());
        if closed {
            self.open.remove(&id);
            self.closed.insert(id, acc);
        } else {
            self.closed.remove(&id);
            self.open.insert(id, acc);
        }
        if self.stream_time.is_none_or(|st| start > st) {
            self.stream_time = Some(start);
            self.advanced_at = Some(now);
        }
    }

    /// Applies one changelog record (`None`: a tombstone for `record_key`).
    pub fn apply_changelog(
        &mut self,
        record_key: &[u8],
        value: Option<&[u8]>,
        now: Instant,
    ) -> Result<(), String> {
        match value {
            Some(bytes) => {
                let e =
                    Entry::from_json(bytes).map_err(|e| format!("bad changelog record: {e}"))?;
                self.restore(e.start, &e.key, e.acc(), e.closed, now);
            }
            None => {
                let text = String::from_utf8_lossy(record_key);
                let (start, key) = text.split_once('/').ok_or("bad changelog key")?;
                let start = start.parse().map_err(|_| "bad changelog key")?;
                self.forget(start, key);
            }
        }
        Ok(())
    }

    /// Forgets a window (a changelog tombstone).
    pub fn forget(&mut self, start: i64, key: &str) {
        let id = (start, key.to_string());
        self.open.remove(&id);
        self.closed.remove(&id);
    }

    /// Adds `value` for `key` at event time `ts`; returns the window's start and its
    /// updated accumulator (what the changelog records).
    pub fn add(
        &mut self,
        ts: i64,
        key: &str,
        value: f64,
        now: Instant,
    ) -> Result<(i64, Acc), Late> {
        if self.stream_time.is_none_or(|st| ts > st) {
            self.stream_time = Some(ts);
            self.advanced_at = Some(now);
        }
        let watermark = self.watermark(now).unwrap_or(i64::MIN);
        let start = self.spec.start_of(ts);
        let end = start + self.spec.size_ms;
        if end + self.spec.grace_ms <= watermark
            || self.closed.contains_key(&(start, key.to_string()))
        {
            return Err(Late {
                window_start: start,
                window_end: end,
                watermark,
            });
        }
        let acc = self.open.entry((start, key.to_string())).or_default();
        acc.add(value);
        Ok((start, *acc))
    }

    /// Closes every window due as of `now`, in (start, key) order, and forgets closed
    /// windows past retention.
    pub fn close_due(
        &mut self,
        now: Instant,
        forgotten: &mut Vec<(i64, String)>,
    ) -> Vec<ClosedWindow> {
        let Some(watermark) = self.watermark(now) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            let start = entry.key().0;
            if start + self.spec.size_ms + self.spec.grace_ms > watermark {
                break;
            }
            let ((start, key), acc) = entry.remove_entry();
            self.closed.insert((start, key.clone()), acc);
            out.push(ClosedWindow {
                key,
                start,
                end: start + self.spec.size_ms,
                acc,
            });
        }
        let horizon = watermark.saturating_sub(self.retention_ms);
        while let Some(entry) = self.closed.first_entry() {
            if entry.key().0 >= horizon {
                break;
            }
            forgotten.push(entry.remove_entry().0);
        }
        out
    }

    /// Every window (open and retained closed) overlapping `[from, to)`.
    pub fn windows(&self, from: i64, to: i64) -> Vec<(String, i64, i64, Acc, bool)> {
        let size = self.spec.size_ms;
        let lo = (from.saturating_sub(size).saturating_add(1), String::new());
        let mut rows: Vec<_> = [(&self.closed, true), (&self.open, false)]
            .into_iter()
            .flat_map(|(map, closed)| {
                map.range(lo.clone()..)
                    .take_while(move |((start, _), _)| *start < to)
                    .filter(move |((start, _), _)| start + size > from)
                    .map(move |((start, key), acc)| {
                        (key.clone(), *start, start + size, *acc, closed)
                    })
            })
            .collect();
        rows.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        rows
    }

    /// Per key, the value of the window holding the watermark; keys seen in the
    /// window before it are included with an empty accumulator so that a chart's
    /// lines do not vanish at each window boundary.
    pub fn current(&mut self, now: Instant) -> BTreeMap<String, Acc> {
        let Some(watermark) = self.watermark(now) else {
            return BTreeMap::new();
        };
        let start = self.spec.start_of(watermark);
        let previous = start - self.spec.size_ms;
        let mut out = BTreeMap::new();
        for ((s, key), acc) in self.open.iter().chain(self.closed.iter()) {
            if *s == previous {
                out.entry(key.clone()).or_insert_with(Acc::default);
            } else if *s == start {
                out.insert(key.clone(), *acc);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec() -> WindowSpec {
        WindowSpec {
            size_ms: 5_000,
            grace_ms: 0,
        }
    }

    #[test]
    fn assignment_floors_to_the_window_start() {
        let s = spec();
        assert_eq!(s.start_of(0), 0);
        assert_eq!(s.start_of(4_999), 0);
        assert_eq!(s.start_of(5_000), 5_000);
        assert_eq!(s.start_of(-1), -5_000);
    }

    #[tokio::test(start_paused = true)]
    async fn stream_time_closes_windows_and_late_records_are_returned() {
        let mut w = WindowState::new(spec());
        let now = Instant::now();
        w.add(1_000, "P1", 1.0, now).unwrap();
        w.add(2_000, "P1", 1.0, now).unwrap();
        w.add(3_000, "P2", 1.0, now).unwrap();
        assert!(w.close_due(now, &mut Vec::new()).is_empty());
        // A record in the next window moves stream time to the first window's end.
        w.add(5_000, "P1", 1.0, now).unwrap();
        let closed = w.close_due(now, &mut Vec::new());
        let got: Vec<_> = closed
            .iter()
            .map(|c| (c.key.as_str(), c.start, c.acc.count))
            .collect();
        assert_eq!(got, [("P1", 0, 2), ("P2", 0, 1)]);
        // A record for the closed window is late, not silently counted or dropped.
        let late = w.add(4_000, "P1", 1.0, now).unwrap_err();
        assert_eq!((late.window_start, late.window_end), (0, 5_000));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_closes_on_wall_clock() {
        let mut w = WindowState::new(spec());
        w.add(1_000, "P1", 1.0, Instant::now()).unwrap();
        tokio::time::advance(Duration::from_millis(3_999)).await;
        assert!(
            w.close_due(Instant::now(), &mut Vec::new()).is_empty(),
            "window end not reached yet"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        let closed = w.close_due(Instant::now(), &mut Vec::new());
        assert_eq!(closed.len(), 1);
        assert_eq!(
            (closed[0].start, closed[0].end, closed[0].acc.count),
            (0, 5_000, 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn grace_keeps_a_window_open_for_stragglers() {
        let mut w = WindowState::new(WindowSpec {
            size_ms: 5_000,
            grace_ms: 2_000,
        });
        let now = Instant::now();
        w.add(1_000, "k", 1.0, now).unwrap();
        w.add(6_000, "k", 1.0, now).unwrap();
        assert!(w.close_due(now, &mut Vec::new()).is_empty());
        w.add(4_500, "k", 1.0, now).expect("within grace");
        w.add(7_000, "k", 1.0, now).unwrap();
        let closed = w.close_due(now, &mut Vec::new());
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].acc.count, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn current_is_the_window_holding_the_watermark() {
        let mut w = WindowState::new(spec());
        let now = Instant::now();
        w.add(1_000, "P1", 1.0, now).unwrap();
        w.add(6_000, "P2", 1.0, now).unwrap();
        w.add(6_500, "P2", 1.0, now).unwrap();
        let cur = w.current(now);
        assert_eq!(cur["P2"].count, 2);
        assert_eq!(
            cur["P1"].count, 0,
            "seen in the previous window, shown as zero"
        );
        let rows = w.windows(0, 10_000);
        assert_eq!(rows.len(), 2);
        assert_eq!(w.windows(5_000, 10_000).len(), 1);
    }
}
