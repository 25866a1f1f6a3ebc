//! Time in one partition of a stage: its stream time, and the watermark that decides
//! which windows are final and which records are late.
//!
//! *Stream time* follows Kafka Streams: the largest record timestamp seen. A
//! repartitioned stage receives each partition's records from every partition of its
//! input, interleaved in whatever order the instances upstream happened to process
//! them; taking the maximum over that mix would make records late merely because
//! another input partition was read ahead. So records carry the input partition they
//! came from (their *source*), and stream time is the smallest of the sources'
//! largest timestamps, over the sources heard from within the idle time: a source
//! that has gone quiet stops holding time back. With one source (a stage grouping by
//! record key) that is exactly Kafka Streams' stream time. Stream time never goes back.
//! A source is quiet only once nothing it sent can still be waiting: not while the
//! step before has not caught up with its input partition (it is *behind*), and not
//! while this partition has records left to read that the step before committed
//! (they are *unread*: catching up on a backlog, the records of one source can sit
//! behind seconds of the others').
//!
//! The *watermark* is stream time, except that a partition that is really idle — no
//! record for the idle time, nothing left to read, nothing upstream still in
//! progress — moves on with wall-clock time (`stream time + time since the last
//! record`), so the last windows of a quiet input still close. A consumer that is
//! merely behind or busy is never idle. With `idle: off` the watermark is stream time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Source {
    /// Largest record timestamp seen from this source.
    max_ts: i64,
    /// When its last record arrived.
    heard: Instant,
}

/// One partition's stream time and watermark.
#[derive(Debug, Clone)]
pub struct Clock {
    idle: Option<Duration>,
    sources: BTreeMap<i32, Source>,
    stream_time: Option<i64>,
    watermark: i64,
    /// When the last record arrived (or the state was restored).
    last_arrival: Instant,
    /// How many sources feed this partition (the partitions of the stage's input),
    /// if known: until every one has been heard from, or the idle time has passed,
    /// stream time waits, so the first records of a source read later than the others
    /// are not late.
    expected: usize,
    since: Instant,
    /// Sources whose input partition still has records to read (their consumer is
    /// behind, or their partition waits for an owner mid-rebalance): they keep
    /// holding time back however long they are silent, and the partition is not idle.
    behind: BTreeSet<i32>,
    /// This partition has records left to read that the step before has committed:
    /// no source is quiet, and stream time waits for every source, until they are read.
    unread: bool,
}

/// A clock's durable part, as written to the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub stream_time: i64,
    pub watermark: i64,
    pub sources: Vec<(i32, i64)>,
}

impl Clock {
    pub fn new(idle: Option<Duration>, now: Instant) -> Self {
        Self {
            idle,
            sources: BTreeMap::new(),
            stream_time: None,
            watermark: i64::MIN,
            last_arrival: now,
            expected: 0,
            since: now,
            behind: BTreeSet::new(),
            unread: false,
        }
    }

    /// Sets which sources are behind (see [`Clock`]).
    pub fn set_behind(&mut self, behind: &BTreeSet<i32>) {
        if *behind != self.behind {
            self.behind = behind.clone();
        }
    }

    /// Sets whether this partition has records left to read (see [`Clock`]).
    pub fn set_unread(&mut self, unread: bool) {
        self.unread = unread;
    }

    /// Sets how many sources feed this partition (see [`Clock`]).
    pub fn expect_sources(&mut self, n: usize) {
        self.expected = n;
    }

    /// Notes a record from `source` stamped `ts`; returns the watermark that decides
    /// its lateness (stream time including this record).
    pub fn observe(&mut self, source: i32, ts: i64, now: Instant) -> i64 {
        let s = self.sources.entry(source).or_insert(Source {
            max_ts: ts,
            heard: now,
        });
        s.max_ts = s.max_ts.max(ts);
        s.heard = now;
        self.last_arrival = now;
        self.advance(now);
        self.watermark
    }

    /// Moves stream time to the smallest largest timestamp of the active sources (or,
    /// with `idle: off`, the largest of all); once every source has gone quiet, none
    /// holds time back any more.
    fn advance(&mut self, now: Instant) {
        let waiting = self.idle.is_some_and(|idle| {
            self.sources.len() < self.expected
                && (self.unread || now.saturating_duration_since(self.since) < idle)
        });
        if waiting {
            return;
        }
        let largest = self.sources.values().map(|s| s.max_ts).max();
        let candidate = match self.idle {
            // Kafka Streams: the largest timestamp of any source.
            None => largest,
            Some(idle) => self
                .sources
                .iter()
                .filter(|(p, s)| {
                    self.unread
                        || now.saturating_duration_since(s.heard) < idle
                        || self.behind.contains(p)
                })
                .map(|(_, s)| s.max_ts)
                .min()
                .or(largest),
        };
        if let Some(t) = candidate {
            self.stream_time = Some(self.stream_time.map_or(t, |st| st.max(t)));
        }
        if let Some(st) = self.stream_time {
            self.watermark = self.watermark.max(st);
        }
    }

    /// The watermark now. `busy`: records of this partition are still to be read or
    /// still on their way through an earlier step, so it is not idle whatever the
    /// clock says.
    pub fn watermark(&mut self, now: Instant, busy: bool) -> i64 {
        self.advance(now);
        let busy = busy || self.unread || !self.behind.is_empty();
        if let (Some(idle), Some(st), false) = (self.idle, self.stream_time, busy) {
            let quiet = now.saturating_duration_since(self.last_arrival);
            if quiet >= idle {
                let quiet = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
                self.watermark = self.watermark.max(st.saturating_add(quiet));
            }
        }
        self.watermark
    }

    /// The watermark as last computed, without moving it.
    pub fn current(&self) -> i64 {
        self.watermark
    }

    pub fn stream_time(&self) -> Option<i64> {
        self.stream_time
    }

    pub fn save(&self) -> Option<Saved> {
        Some(Saved {
            stream_time: self.stream_time?,
            watermark: self.watermark,
            sources: self.sources.iter().map(|(p, s)| (*p, s.max_ts)).collect(),
        })
    }

    /// Restores what [`Clock::save`] wrote; the sources count as just heard from.
    pub fn restore(&mut self, saved: &Saved, now: Instant) {
        self.stream_time = Some(saved.stream_time);
        self.watermark = saved.watermark;
        self.sources = saved
            .sources
            .iter()
            .map(|&(p, max_ts)| (p, Source { max_ts, heard: now }))
            .collect();
        self.last_arrival = now;
        self.since = now;
    }

    /// Since the last record (or restore).
    pub fn quiet_since(&self) -> Instant {
        self.last_arrival
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Option<Duration> = Some(Duration::from_secs(5));

    #[tokio::test(start_paused = true)]
    async fn one_source_is_kafka_streams_stream_time() {
        let mut c = Clock::new(IDLE, Instant::now());
        assert_eq!(c.observe(0, 1_000, Instant::now()), 1_000);
        assert_eq!(c.observe(0, 500, Instant::now()), 1_000, "never goes back");
        assert_eq!(c.observe(0, 2_000, Instant::now()), 2_000);
    }

    #[tokio::test(start_paused = true)]
    async fn the_slowest_source_holds_time_back_until_it_goes_quiet() {
        let mut c = Clock::new(IDLE, Instant::now());
        c.observe(0, 10_000, Instant::now());
        // A source heard of for the first time cannot move time back.
        assert_eq!(c.observe(1, 4_000, Instant::now()), 10_000);
        let mut c = Clock::new(IDLE, Instant::now());
        c.observe(1, 4_000, Instant::now());
        // Source 0 was read ahead of source 1: time waits for source 1.
        assert_eq!(c.observe(0, 10_000, Instant::now()), 4_000);
        assert_eq!(c.observe(1, 6_000, Instant::now()), 6_000);
        // Source 1 goes quiet: after the idle time source 0 alone moves time.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(c.observe(0, 11_000, Instant::now()), 11_000);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_moves_the_watermark_with_the_wall_clock_only_when_not_busy() {
        let mut c = Clock::new(IDLE, Instant::now());
        c.observe(0, 1_000, Instant::now());
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert_eq!(c.watermark(Instant::now(), false), 1_000, "not idle yet");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            c.watermark(Instant::now(), true),
            1_000,
            "behind: never idle"
        );
        assert_eq!(c.watermark(Instant::now(), false), 6_000);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(c.watermark(Instant::now(), false), 7_000);
        // A record moves stream time, never the watermark back.
        assert_eq!(c.observe(0, 2_000, Instant::now()), 7_000);

        let mut off = Clock::new(None, Instant::now());
        off.observe(0, 1_000, Instant::now());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(off.watermark(Instant::now(), false), 1_000, "idle: off");
    }

    #[tokio::test(start_paused = true)]
    async fn time_waits_for_every_source_or_the_idle_time() {
        let mut c = Clock::new(IDLE, Instant::now());
        c.expect_sources(2);
        // Source 0 is read first, two seconds ahead of source 1: nothing is late.
        assert_eq!(c.observe(0, 10_000, Instant::now()), i64::MIN);
        assert_eq!(c.observe(1, 8_000, Instant::now()), 8_000);
        // A source that never sends stops holding time back after the idle time, even
        // with no record since.
        let mut c = Clock::new(IDLE, Instant::now());
        c.expect_sources(2);
        c.observe(0, 10_000, Instant::now());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(c.watermark(Instant::now(), true), 10_000);
        assert_eq!(c.observe(0, 11_000, Instant::now()), 11_000);
        // Once every source is quiet, the furthest one sets stream time.
        let mut c = Clock::new(IDLE, Instant::now());
        c.observe(1, 4_000, Instant::now());
        c.observe(0, 10_000, Instant::now());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(c.watermark(Instant::now(), true), 10_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_behind_holds_time_back_however_long_it_is_silent() {
        let mut c = Clock::new(IDLE, Instant::now());
        c.observe(1, 4_000, Instant::now());
        c.observe(0, 10_000, Instant::now());
        // Source 1's partition waits for a new owner: its records are still to come.
        c.set_behind(&BTreeSet::from([1]));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(c.observe(0, 40_000, Instant::now()), 4_000);
        assert_eq!(c.watermark(Instant::now(), false), 4_000, "not idle either");
        c.set_behind(&BTreeSet::new());
        assert_eq!(c.observe(0, 41_000, Instant::now()), 41_000);
    }

    #[tokio::test(start_paused = true)]
    async fn records_left_to_read_keep_a_silent_source_holding_time_back() {
        // Catching up on a backlog: source 1's records sit behind seconds of source
        // 0's in this partition, and the step before has committed them all.
        let mut c = Clock::new(IDLE, Instant::now());
        c.observe(1, 4_000, Instant::now());
        c.observe(0, 10_000, Instant::now());
        c.set_unread(true);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(c.observe(0, 40_000, Instant::now()), 4_000);
        assert_eq!(c.observe(1, 5_000, Instant::now()), 5_000, "not late");
        // Read to the end: a source silent for the idle time no longer holds it back.
        c.set_unread(false);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(c.observe(0, 41_000, Instant::now()), 41_000);

        // The same for a source not heard from at all yet.
        let mut c = Clock::new(IDLE, Instant::now());
        c.expect_sources(2);
        c.set_unread(true);
        c.observe(0, 10_000, Instant::now());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(c.observe(0, 40_000, Instant::now()), i64::MIN);
        assert_eq!(c.observe(1, 8_000, Instant::now()), 8_000, "not late");
    }

    #[tokio::test(start_paused = true)]
    async fn saved_and_restored() {
        let mut c = Clock::new(IDLE, Instant::now());
        c.observe(3, 1_000, Instant::now());
        c.observe(4, 2_000, Instant::now());
        let saved = c.save().unwrap();
        assert_eq!(saved.sources, [(3, 1_000), (4, 2_000)]);
        let mut back = Clock::new(IDLE, Instant::now());
        back.restore(&saved, Instant::now());
        assert_eq!(back.save().unwrap(), saved);
        assert_eq!(back.observe(3, 1_500, Instant::now()), 1_500);
    }
}
