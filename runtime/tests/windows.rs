//! Every window kind against a brute-force oracle. Randomized streams — several keys,
//! records out of order within the grace, records late beyond it, idle gaps — go
//! through one partition's window state, flushed in batches of random size; every
//! final window value (and every late record) is compared with what an independent,
//! naive computation from the same input gives. Midway the state is thrown away and
//! rebuilt from nothing but the changelog it wrote, and must carry on identically.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::windows::{Event, Outcome, run, stage, stream};
use kfn::window::{Kind, Stage};
use tokio::time::Duration;

const SEEDS: u64 = 60;

/// The watermark as the rules define it: the largest timestamp seen, and after a
/// quiet spell of at least the idle time, that plus the quiet time.
struct Time {
    stream: i64,
    watermark: i64,
    quiet: Duration,
    idle: Option<Duration>,
}

impl Time {
    fn new(idle: Option<Duration>) -> Self {
        Time {
            stream: i64::MIN,
            watermark: i64::MIN,
            quiet: Duration::ZERO,
            idle,
        }
    }

    fn record(&mut self, ts: i64) -> i64 {
        self.stream = self.stream.max(ts);
        self.watermark = self.watermark.max(self.stream);
        self.quiet = Duration::ZERO;
        self.watermark
    }

    fn quiet(&mut self, d: Duration) {
        self.quiet += d;
        if self.idle.is_some_and(|idle| self.quiet >= idle) {
            self.watermark = self
                .watermark
                .max(self.stream + self.quiet.as_millis() as i64);
        }
    }
}

/// The oracle: for each record, which windows it belongs to and whether each still
/// takes it, straight from the definitions, with no incremental state but counts.
fn oracle(stage: &Stage, events: &[Event]) -> Outcome {
    let g = stage.spec.grace;
    let mut time = Time::new(stage.spec.idle);
    let mut out = Outcome::default();
    // Sliding windows: the records each key accepted; sessions: each key's sessions.
    let mut accepted: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    let mut sessions: BTreeMap<&str, Vec<(i64, i64, u64)>> = BTreeMap::new();
    for (i, event) in events.iter().enumerate() {
        let (key, ts) = match event {
            Event::Record { key, ts } => (*key, *ts),
            Event::Quiet(d) => {
                time.quiet(*d);
                continue;
            }
        };
        let before = time.watermark;
        let wm = time.record(ts);
        match stage.spec.kind {
            Kind::Tumbling { size } | Kind::Hopping { size, .. } => {
                let advance = match stage.spec.kind {
                    Kind::Hopping { advance, .. } => advance,
                    _ => size,
                };
                // Every start that is a multiple of `advance`, not before 0, holding ts.
                let (mut late, mut all) = (0, 0);
                let mut start = ts - ts % advance;
                while start > ts - size && start >= 0 {
                    all += 1;
                    if start + size + g > wm {
                        *out.finals
                            .entry((key.to_string(), start, start + size))
                            .or_default() += 1;
                    } else {
                        late += 1;
                    }
                    start -= advance;
                }
                if late > 0 {
                    out.late.insert(i, late == all);
                }
            }
            Kind::Sliding { difference: d } => {
                // The stream only holds records on time for all their windows or
                // late for all of them.
                if ts + d < wm - g {
                    out.late.insert(i, true);
                } else {
                    assert!(ts >= wm - g, "the stream must not hold partly late records");
                    accepted.entry(key).or_default().push(ts);
                }
            }
            Kind::Session { gap } => {
                let close = wm - g - gap;
                let list = sessions.entry(key).or_default();
                // Closed as of the watermark before this record.
                let closed = |s: &(i64, i64, u64)| s.1 + gap + g <= before;
                let (mut start, mut end, mut count) = (ts, ts, 1);
                let mut keep = Vec::new();
                let mut merged = Vec::new();
                for s in list.drain(..) {
                    if !closed(&s) && s.1 >= ts - gap && s.0 <= ts + gap {
                        merged.push(s);
                    } else {
                        keep.push(s);
                    }
                }
                for s in &merged {
                    start = start.min(s.0);
                    end = end.max(s.1);
                    count += s.2;
                }
                if end < close {
                    out.late.insert(i, true);
                    keep.extend(merged);
                } else {
                    keep.push((start, end, count));
                }
                *list = keep;
            }
        }
    }
    if let Kind::Sliding { difference: d } = stage.spec.kind {
        for (key, times) in &accepted {
            let mut windows = BTreeSet::new();
            for &t in times {
                windows.insert((t - d, t));
                if times.iter().any(|&r| r > t && r <= t + 1 + d) {
                    windows.insert((t + 1, t + 1 + d));
                }
            }
            for (s, e) in windows {
                let n = times.iter().filter(|&&r| r >= s && r <= e).count() as u64;
                out.finals.insert((key.to_string(), s, e), n);
            }
        }
    }
    for (key, list) in sessions {
        for (s, e, n) in list {
            out.finals.insert((key.to_string(), s, e), n);
        }
    }
    out
}

async fn check(kind: Kind, grace: i64, step: i64, idle: Option<Duration>) {
    let stage = stage(kind, grace, idle);
    for seed in 0..SEEDS {
        // The oracle takes no sliding record late for only part of its windows.
        let edges = !matches!(kind, Kind::Sliding { .. });
        let events = stream(seed, kind, grace, step, idle.is_some(), edges);
        let expected = oracle(&stage, &events);
        assert!(
            expected.late.len() > 5 && expected.finals.len() > 10,
            "seed {seed}: the stream exercises too little ({} late, {} windows)",
            expected.late.len(),
            expected.finals.len()
        );
        let restore_at = (seed as usize * 37) % events.len();
        let got = run(&stage, &events, restore_at, seed).await;
        let diff: Vec<_> = expected
            .finals
            .iter()
            .filter(|(k, v)| got.finals.get(*k) != Some(*v))
            .take(5)
            .map(|(k, v)| format!("{k:?}: expected {v}, got {:?}", got.finals.get(k)))
            .chain(
                got.finals
                    .iter()
                    .filter(|(k, _)| !expected.finals.contains_key(*k))
                    .take(5)
                    .map(|(k, v)| format!("{k:?}: not expected, got {v}")),
            )
            .collect();
        assert!(
            diff.is_empty(),
            "{kind:?} grace {grace} seed {seed} (restored after {restore_at} events): \
             {} windows expected, {} reported; first differences:\n{}",
            expected.finals.len(),
            got.finals.len(),
            diff.join("\n")
        );
        assert_eq!(
            got.late, expected.late,
            "{kind:?} seed {seed}: late records"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn tumbling_windows_equal_the_oracle() {
    check(Kind::Tumbling { size: 1_000 }, 200, 40, None).await;
    check(Kind::Tumbling { size: 1_000 }, 0, 40, None).await;
}

#[tokio::test(start_paused = true)]
async fn hopping_windows_equal_the_oracle() {
    let kind = Kind::Hopping {
        size: 1_000,
        advance: 250,
    };
    check(kind, 300, 40, None).await;
    // Not a divisor: windows of one record still start every `advance`.
    let odd = Kind::Hopping {
        size: 1_000,
        advance: 300,
    };
    check(odd, 0, 40, None).await;
}

#[tokio::test(start_paused = true)]
async fn sliding_windows_equal_the_oracle() {
    check(Kind::Sliding { difference: 500 }, 200, 60, None).await;
    check(Kind::Sliding { difference: 500 }, 0, 60, None).await;
}

#[tokio::test(start_paused = true)]
async fn session_windows_equal_the_oracle() {
    check(Kind::Session { gap: 300 }, 200, 150, None).await;
    check(Kind::Session { gap: 300 }, 0, 150, None).await;
}

#[tokio::test(start_paused = true)]
async fn idle_gaps_close_windows_the_way_the_rules_say_for_every_kind() {
    let idle = Some(Duration::from_secs(2));
    check(Kind::Tumbling { size: 1_000 }, 100, 40, idle).await;
    check(
        Kind::Hopping {
            size: 1_000,
            advance: 500,
        },
        100,
        40,
        idle,
    )
    .await;
    check(Kind::Session { gap: 300 }, 100, 150, idle).await;
}
