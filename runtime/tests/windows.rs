//! Every window kind against a brute-force oracle. Randomized streams — several keys,
//! records out of order within the grace, records late beyond it, idle gaps — go
//! through one partition's window state, flushed in batches of random size; every
//! final window value (and every late record) is compared with what an independent,
//! naive computation from the same input gives. Midway the state is thrown away and
//! rebuilt from nothing but the changelog it wrote, and must carry on identically.

use std::collections::{BTreeMap, BTreeSet};

use kfn::config;
use kfn::record::Effects;
use kfn::window::{Aggregates, Emit, Kind, PartitionState, Spec, Stage, changelog};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::{Duration, Instant};

const BASE: i64 = 1_800_000_000_000;
const KEYS: [&str; 3] = ["a", "b", "c"];
const SEEDS: u64 = 60;
const RECORDS: usize = 400;

fn stage(kind: Kind, grace: i64, idle: Option<Duration>) -> Stage {
    Stage {
        name: "test".into(),
        spec: Spec { kind, grace, idle },
        aggregates: Aggregates::new(&config::Aggregates::One(config::Aggregate::Count)),
        emit: Emit::Final,
        changelog: "test.changelog".into(),
        out: Some("out".into()),
        serve: None,
    }
}

/// The longest any window of `kind` spans, for picking offsets that are surely late.
fn horizon(kind: Kind, grace: i64) -> i64 {
    grace
        + match kind {
            Kind::Tumbling { size } | Kind::Hopping { size, .. } => size,
            Kind::Sliding { difference } => 2 * difference,
            Kind::Session { gap } => 3 * gap,
        }
}

#[derive(Debug, Clone)]
enum Event {
    Record {
        key: &'static str,
        ts: i64,
    },
    /// No record for this long (wall clock, which event time follows).
    Quiet(Duration),
}

/// Event time follows a clock that moves 0..`step` ms per record; records are stamped
/// up to `grace` behind it (out of order but on time), one in 20 far behind (late),
/// one in 10 right at the edge of the grace (except for sliding windows, whose oracle
/// takes no record late for only part of its windows), and with `idle`, one in 40 is
/// followed by a quiet spell. Times are multiples of 25 ms, so records often fall
/// exactly on window bounds and closing times.
fn stream(seed: u64, kind: Kind, grace: i64, step: i64, idle: bool) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut clock, mut hi) = (BASE, BASE);
    let mut events = Vec::new();
    for _ in 0..RECORDS {
        clock += 25 * rng.random_range(0..=step / 25);
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let edge = !matches!(kind, Kind::Sliding { .. }) && rng.random_ratio(1, 10);
        let ts = if rng.random_ratio(1, 20) {
            hi - horizon(kind, grace) - 25 * rng.random_range(1..=step / 2)
        } else if edge {
            // Right at the edge of the grace: on time or just late.
            hi - grace - 25 * rng.random_range(0..=2)
        } else {
            clock - 25 * rng.random_range(0..=grace / 25)
        };
        hi = hi.max(ts);
        events.push(Event::Record { key, ts });
        if idle && rng.random_ratio(1, 40) {
            let quiet = 25 * rng.random_range(40..320);
            events.push(Event::Quiet(Duration::from_millis(quiet)));
            clock += quiet as i64;
        }
    }
    events
}

/// What a run produced: final values per (key, start, end), and per record index
/// whether it was late for all (`true`) or some (`false`) of its windows.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    finals: BTreeMap<(String, i64, i64), u64>,
    late: BTreeMap<usize, bool>,
}

/// Runs `events` through the window state as the operator does (flush after
/// batches of random size, idle close after quiet spells), rebuilding it from its
/// changelog after `restore_at` events. A final record far ahead closes the rest.
async fn run(stage: &Stage, events: &[Event], restore_at: usize, seed: u64) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut state = PartitionState::new(stage, 0, Instant::now());
    let mut log: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    let mut out = Outcome::default();
    let drain = |fx: Effects, log: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>, out: &mut Outcome| {
        for o in fx.changes.into_iter().chain(fx.after) {
            let value = (!o.tombstone).then_some(o.value);
            log.insert(o.key.expect("changelog records are keyed"), value);
        }
        for r in fx.results {
            let v: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
            assert_eq!(v["final"], true, "emit: final");
            let id = (
                v["key"].as_str().unwrap().to_string(),
                v["start"].as_i64().unwrap(),
                v["end"].as_i64().unwrap(),
            );
            let value = v["value"].as_u64().unwrap();
            assert!(
                out.finals.insert(id.clone(), value).is_none(),
                "window {id:?} reported final twice"
            );
        }
    };
    let flush = |state: &mut PartitionState| {
        let mut fx = Effects::default();
        state.close_due(stage, Instant::now(), true, &mut fx);
        state.flush(stage, &mut fx);
        fx
    };
    let mut batch = rng.random_range(1..64);
    let mut max_ts = BASE;
    for (i, event) in events.iter().enumerate() {
        if i == restore_at {
            let fx = flush(&mut state);
            drain(fx, &mut log, &mut out);
            state = PartitionState::new(stage, 0, Instant::now());
            for (key, value) in &log {
                let change = changelog::decode(key, value.as_deref()).expect("readable");
                state.apply(stage, change, Instant::now()).expect("applies");
            }
        }
        match event {
            Event::Record { key, ts } => {
                max_ts = max_ts.max(*ts);
                if let Some(late) = state.add(stage, 0, *ts, key, &[], Instant::now()).unwrap() {
                    out.late.insert(i, late.entirely);
                }
                batch -= 1;
                if batch == 0 {
                    let fx = flush(&mut state);
                    drain(fx, &mut log, &mut out);
                    batch = rng.random_range(1..64);
                }
            }
            Event::Quiet(d) => {
                let fx = flush(&mut state);
                drain(fx, &mut log, &mut out);
                tokio::time::advance(*d).await;
                let mut fx = Effects::default();
                state.close_due(stage, Instant::now(), false, &mut fx);
                drain(fx, &mut log, &mut out);
            }
        }
    }
    let end = max_ts + 100 * horizon(stage.spec.kind, stage.spec.grace);
    state
        .add(stage, 0, end, "~end", &[], Instant::now())
        .unwrap();
    let fx = flush(&mut state);
    drain(fx, &mut log, &mut out);
    out.finals.retain(|(k, _, _), _| k != "~end");
    out
}

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
                let closed = |s: &(i64, i64, u64)| s.1 + 2 * gap + g + 1 <= wm;
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
        let events = stream(seed, kind, grace, step, idle.is_some());
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
