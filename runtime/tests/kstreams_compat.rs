//! Kafka Streams itself as the oracle: the same randomized input (several keys, out of
//! order within the grace, at its edge, late beyond it) through Kafka Streams 4.4's
//! `TopologyTestDriver` and through kfn's window state (with `idle: off`, Kafka
//! Streams' stream time), for tumbling, hopping, sliding and session windows.
//!
//! What matches: every window's bounds and count in the final table, the number of
//! (record, window) pairs dropped as late, and — for time and sliding windows — the
//! set of windows reported on close with their values. Time and sliding windows are
//! compared with a Kafka Streams store retention long enough to keep every window
//! (with the default, a window that one record skips over is never emitted on close);
//! sessions with the default retention (`gap + grace`), which is what makes a closed
//! session final in Kafka Streams too: with a longer one, a record within the gap of
//! a closed session and of a newer one merges all three, after the first was emitted.
//!
//! Where kfn differs on purpose (so not compared here): kfn dead-letters late records
//! instead of dropping them (counted the same way here); a repartitioned stage's stream
//! time waits for every input partition (Kafka Streams takes the largest timestamp in
//! the repartition topic, so a reshuffle can make records late); and with `idle` on (the
//! default) a quiet input closes its windows on the wall clock, which Kafka Streams
//! never does.

mod common;

use std::collections::BTreeMap;

use common::kstreams::{self, Spec};
use common::windows::{Event, run, stage, stream};
use kfn::window::Kind;

const SEEDS: u64 = 4;
/// Kafka Streams' store retention: far beyond the input, so no window is dropped
/// before it is reported (with the default, windows that one record skips over are
/// never emitted).
const RETENTION: i64 = 10 * 24 * 3_600_000;

fn spec(kind: Kind, grace: i64) -> Spec {
    match kind {
        Kind::Tumbling { size } => Spec::Tumbling { size, grace },
        Kind::Hopping { size, advance } => Spec::Hopping {
            size,
            advance,
            grace,
        },
        Kind::Sliding { difference } => Spec::Sliding {
            diff: difference,
            grace,
        },
        Kind::Session { gap } => Spec::Session { gap, grace },
    }
}

fn table(windows: &[(String, i64, i64, u64)]) -> BTreeMap<(String, i64, i64), u64> {
    windows
        .iter()
        .map(|(k, s, e, n)| ((k.clone(), *s, *e), *n))
        .collect()
}

fn differences(
    ours: &BTreeMap<(String, i64, i64), u64>,
    theirs: &BTreeMap<(String, i64, i64), u64>,
) -> Vec<String> {
    let missing = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k:?}: Kafka Streams {v}, kfn {:?}", ours.get(k)));
    let extra = ours
        .iter()
        .filter(|(k, _)| !theirs.contains_key(*k))
        .map(|(k, v)| format!("{k:?}: only kfn, {v}"));
    missing.chain(extra).take(8).collect()
}

async fn compare(kind: Kind, grace: i64, step: i64) {
    let stage = stage(kind, grace, None);
    let spec = spec(kind, grace);
    for seed in 0..SEEDS {
        let events = stream(seed, kind, grace, step, false, true);
        let input: Vec<(String, i64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Record { key, ts } => Some((key.to_string(), *ts)),
                Event::Quiet(_) => None,
            })
            .collect();
        let ours = run(&stage, &events, usize::MAX, seed).await;
        // Sessions with the store's default retention (gap + grace), as Kafka Streams
        // runs by default: a closed session is not merged into, as in kfn.
        let theirs = match kind {
            Kind::Session { .. } => kstreams::run(&spec, false, &input),
            _ => kstreams::run_retained(&spec, false, RETENTION, &input),
        };
        let what = format!("{kind:?} grace {grace} seed {seed}");
        let diff = differences(&ours.state, &table(&theirs.windows));
        assert!(
            diff.is_empty(),
            "{what}: final tables differ:\n{}",
            diff.join("\n")
        );
        assert_eq!(
            ours.late_windows, theirs.dropped,
            "{what}: (record, window) pairs late"
        );
        assert!(theirs.dropped > 0, "{what}: the input has late records");
        if !matches!(kind, Kind::Session { .. }) {
            let emitted = kstreams::run_retained(&spec, true, RETENTION, &input);
            let diff = differences(&ours.closed, &table(&emitted.windows));
            assert!(
                diff.is_empty(),
                "{what}: windows reported on close differ:\n{}",
                diff.join("\n")
            );
            assert_eq!(
                emitted.windows.len(),
                ours.closed.len(),
                "{what}: Kafka Streams reported a window twice"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn tumbling_windows_match_kafka_streams() {
    compare(Kind::Tumbling { size: 1_000 }, 200, 40).await;
    compare(Kind::Tumbling { size: 1_000 }, 0, 40).await;
}

#[tokio::test(start_paused = true)]
async fn hopping_windows_match_kafka_streams() {
    let kind = Kind::Hopping {
        size: 1_000,
        advance: 250,
    };
    compare(kind, 300, 40).await;
    compare(kind, 0, 40).await;
}

#[tokio::test(start_paused = true)]
async fn sliding_windows_match_kafka_streams() {
    compare(Kind::Sliding { difference: 500 }, 200, 60).await;
    compare(Kind::Sliding { difference: 500 }, 0, 60).await;
}

#[tokio::test(start_paused = true)]
async fn session_windows_match_kafka_streams() {
    compare(Kind::Session { gap: 300 }, 200, 150).await;
    compare(Kind::Session { gap: 300 }, 0, 150).await;
}
