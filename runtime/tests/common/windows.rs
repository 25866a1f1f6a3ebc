//! Window-stage test drivers shared by the oracle tests: a stage, randomized input
//! streams, and a run of one partition's window state the way the operator drives it.

use std::collections::BTreeMap;

use kfn::config;
use kfn::record::Effects;
use kfn::window::{Aggregates, Emit, Kind, PartitionState, Spec, Stage, changelog};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::{Duration, Instant};

pub const BASE: i64 = 1_800_000_000_000;
const KEYS: [&str; 3] = ["a", "b", "c"];
pub const RECORDS: usize = 400;

pub fn stage(kind: Kind, grace: i64, idle: Option<Duration>) -> Stage {
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
pub fn horizon(kind: Kind, grace: i64) -> i64 {
    grace
        + match kind {
            Kind::Tumbling { size } | Kind::Hopping { size, .. } => size,
            Kind::Sliding { difference } => 2 * difference,
            Kind::Session { gap } => 3 * gap,
        }
}

#[derive(Debug, Clone)]
pub enum Event {
    Record {
        key: &'static str,
        ts: i64,
    },
    /// No record for this long (wall clock, which event time follows).
    Quiet(Duration),
}

/// Event time follows a clock that moves 0..`step` ms per record; records are stamped
/// up to `grace` behind it (out of order but on time), one in 20 far behind (late),
/// with `edges` one in 10 right at the edge of the grace (late for part of its windows,
/// or just on time), and with `idle`, one in 40 is
/// followed by a quiet spell. Times are multiples of 25 ms, so records often fall
/// exactly on window bounds and closing times.
pub fn stream(seed: u64, kind: Kind, grace: i64, step: i64, idle: bool, edges: bool) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut clock, mut hi) = (BASE, BASE);
    let mut events = Vec::new();
    for _ in 0..RECORDS {
        clock += 25 * rng.random_range(0..=step / 25);
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let edge = edges && rng.random_ratio(1, 10);
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
pub struct Outcome {
    pub finals: BTreeMap<(String, i64, i64), u64>,
    pub late: BTreeMap<usize, bool>,
    /// Windows records were late for, in all.
    pub late_windows: u64,
    /// Every window's value after the input, before anything closes the rest.
    pub state: BTreeMap<(String, i64, i64), u64>,
    /// The final values reported by then (before the rest is closed).
    pub closed: BTreeMap<(String, i64, i64), u64>,
}

/// Runs `events` through the window state as the operator does (flush after
/// batches of random size, idle close after quiet spells), rebuilding it from its
/// changelog after `restore_at` events. A final record far ahead closes the rest.
pub async fn run(stage: &Stage, events: &[Event], restore_at: usize, seed: u64) -> Outcome {
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
                    out.late_windows += late.windows.len() as u64;
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
    let fx = flush(&mut state);
    drain(fx, &mut log, &mut out);
    out.state = state
        .rows(stage, i64::MIN, i64::MAX)
        .into_iter()
        .map(|r| ((r.key, r.start, r.end), r.value.as_u64().unwrap()))
        .collect();
    out.closed = out.finals.clone();
    let end = max_ts + 100 * horizon(stage.spec.kind, stage.spec.grace);
    state
        .add(stage, 0, end, "~end", &[], Instant::now())
        .unwrap();
    let fx = flush(&mut state);
    drain(fx, &mut log, &mut out);
    out.finals.retain(|(k, _, _), _| k != "~end");
    out
}
