//! What a stage's windows are: Kafka Streams' four kinds, their bounds, and the
//! watermark at which each window is final.
//!
//! Bounds follow Kafka Streams: a tumbling or hopping window is `[start, end)` (end
//! exclusive); a sliding window `[start, end]` and a session `[first, last]` record
//! time are inclusive at both ends.
//!
//! | kind | a record at `t` belongs to | on time while | final once the watermark reaches |
//! |---|---|---|---|
//! | tumbling `size` | `[⌊t/size⌋·size, +size)` | `end + grace > wm` | `end + grace` |
//! | hopping `size`, `advance` | every `[k·advance, +size)` holding `t` | per window, as tumbling | `end + grace` |
//! | sliding `d` | every `[s, s+d]` holding `t`, one per distinct record-time difference | per window: `end + grace ≥ wm` | `end + grace + 1` |
//! | session `gap` | its key's session, merged with any open one within `gap` | merged `end + gap + grace ≥ wm` | `end + gap + grace` |
//!
//! A closed session is final: no record merges into it any more. That is Kafka
//! Streams' behaviour with its default store retention (`gap + grace`), where a
//! session past that is no longer found for merging.

use std::time::Duration;

/// How records are assigned to windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Fixed, non-overlapping windows of `size` ms.
    Tumbling { size: i64 },
    /// Fixed windows of `size` ms starting every `advance` ms; a record is in
    /// `size / advance` of them.
    Hopping { size: i64, advance: i64 },
    /// Kafka Streams' sliding windows (KIP-450): windows of `difference` ms, one per
    /// distinct set of records within `difference` of each other.
    Sliding { difference: i64 },
    /// Per-key sessions of activity separated by more than `gap` ms.
    Session { gap: i64 },
}

/// A stage's windows: kind, grace and idle close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    /// How long after its end (by stream time) a window still accepts records.
    pub grace: i64,
    /// How long an input partition must receive nothing (and have nothing left to
    /// read) before its watermark moves on with wall-clock time; `None`: never, as
    /// in Kafka Streams.
    pub idle: Option<Duration>,
}

/// A window's bounds, `(start, end)`.
pub type Bounds = (i64, i64);

impl Spec {
    /// The name of the kind, as in `kfn.yaml`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Tumbling { .. } => "tumbling",
            Kind::Hopping { .. } => "hopping",
            Kind::Sliding { .. } => "sliding",
            Kind::Session { .. } => "session",
        }
    }

    /// Whether `end` is exclusive (`[start, end)`) rather than inclusive.
    pub fn end_exclusive(&self) -> bool {
        matches!(self.kind, Kind::Tumbling { .. } | Kind::Hopping { .. })
    }

    /// The watermark at which window `(start, end)` is final: no record can change it
    /// any more. Records for it are late from then on.
    pub fn close_at(&self, (_, end): Bounds) -> i64 {
        let grace = end.saturating_add(self.grace);
        match self.kind {
            Kind::Tumbling { .. } | Kind::Hopping { .. } => grace,
            Kind::Sliding { .. } => grace.saturating_add(1),
            Kind::Session { gap } => grace.saturating_add(gap),
        }
    }

    /// How long a closed window stays queryable after its end, by watermark.
    pub fn retention(&self) -> i64 {
        const HOUR: i64 = 3_600_000;
        match self.kind {
            // Enough history for a dashboard: an hour, and at least 12 windows.
            Kind::Tumbling { size } | Kind::Hopping { size, .. } => {
                HOUR.max(size.saturating_mul(12))
            }
            // One window per record: keep less of them.
            Kind::Sliding { difference } => (5 * 60_000_i64).max(difference.saturating_mul(12)),
            Kind::Session { gap } => HOUR.max(gap.saturating_mul(12)),
        }
    }

    /// The windows of `[from, to)` overlap a window `(start, end)`.
    pub fn overlaps(&self, (start, end): Bounds, from: i64, to: i64) -> bool {
        let end = if self.end_exclusive() {
            end
        } else {
            end.saturating_add(1)
        };
        start < to && end > from
    }

    /// `[start, end)` or `[start, end]`, for messages.
    pub fn show(&self, (start, end): Bounds) -> String {
        if self.end_exclusive() {
            format!("[{start}, {end})")
        } else {
            format!("[{start}, {end}]")
        }
    }
}

/// The starts of the tumbling or hopping windows holding `ts`, oldest first. Like
/// Kafka Streams, no window starts before 0.
pub fn time_windows(size: i64, advance: i64, ts: i64) -> impl Iterator<Item = Bounds> {
    let first = (ts.saturating_sub(size).saturating_add(advance)).max(0) / advance * advance;
    (0..)
        .map(move |i| first + i * advance)
        .take_while(move |start| *start <= ts)
        .map(move |start| (start, start.saturating_add(size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: Kind, grace: i64) -> Spec {
        Spec {
            kind,
            grace,
            idle: None,
        }
    }

    #[test]
    fn tumbling_and_hopping_assignment_match_kafka_streams() {
        let tumbling: Vec<_> = time_windows(5_000, 5_000, 4_999).collect();
        assert_eq!(tumbling, [(0, 5_000)]);
        assert_eq!(
            time_windows(5_000, 5_000, 5_000).collect::<Vec<_>>(),
            [(5_000, 10_000)]
        );
        // A record is in size/advance hopping windows, oldest first.
        let hopping: Vec<_> = time_windows(60_000, 10_000, 125_000).collect();
        assert_eq!(hopping.len(), 6);
        assert_eq!(hopping[0], (70_000, 130_000));
        assert_eq!(hopping[5], (120_000, 180_000));
        // Near 0, only windows starting at 0 or later.
        assert_eq!(
            time_windows(60_000, 10_000, 15_000).collect::<Vec<_>>(),
            [(0, 60_000), (10_000, 70_000)]
        );
    }

    #[test]
    fn close_times_per_kind() {
        assert_eq!(spec(Kind::Tumbling { size: 10 }, 2).close_at((0, 10)), 12);
        assert_eq!(
            spec(Kind::Sliding { difference: 10 }, 2).close_at((0, 10)),
            13
        );
        assert_eq!(spec(Kind::Session { gap: 5 }, 2).close_at((0, 10)), 17);
        let tumbling = spec(Kind::Tumbling { size: 10 }, 0);
        assert!(tumbling.overlaps((0, 10), 9, 20));
        assert!(!tumbling.overlaps((0, 10), 10, 20));
        let session = spec(Kind::Session { gap: 5 }, 0);
        assert!(
            session.overlaps((0, 10), 10, 20),
            "session ends are inclusive"
        );
        assert_eq!(session.show((0, 10)), "[0, 10]");
    }
}
