//! Self-test of the Kafka Streams oracle (`common::kstreams`): small inputs for each
//! window kind, with the counts worked out by hand from Kafka Streams' semantics.
//! Needs Java 17+ and Maven (the first run builds the oracle: about 10 s with the
//! downloads from Maven Central, 3-8 s offline).
//!
//! Rules used below (stream time = the largest timestamp seen so far, all keys):
//! - tumbling/hopping `[start, end)`: a record updates each of its windows with
//!   `end > stream time - grace`; each other window counts one dropped record; on window
//!   close a window is emitted once `stream time >= end + grace`.
//! - sliding `[start, end]`, time difference d: a record at t is dropped if
//!   `t + d < stream time - grace`; windows are its left window `[t-d, t]`, the right
//!   windows `[t'+1, t'+1+d]` of records that have a later record within d, and one
//!   `[0, d]` window for all records earlier than d; emitted once
//!   `stream time > end + grace`.
//! - session `[first, last]`, gap g: records at most g apart are one session; a record
//!   is dropped if its (merged) session ends before `stream time - g - grace`, and a
//!   session is emitted once `stream time > end + g + grace`.

mod common;

use common::kstreams::{self, Answer, Spec};

fn recs(input: &[(&str, i64)]) -> Vec<(String, i64)> {
    input.iter().map(|(k, t)| (k.to_string(), *t)).collect()
}

fn answer(windows: &[(&str, i64, i64, u64)], dropped: u64) -> Answer {
    Answer {
        windows: windows
            .iter()
            .map(|(k, s, e, c)| (k.to_string(), *s, *e, *c))
            .collect(),
        dropped,
    }
}

#[test]
fn tumbling_counts_per_key_and_drops_late_records() {
    let spec = Spec::Tumbling { size: 10, grace: 0 };
    // b@3 arrives at stream time 12: [0,10) closed (10 <= 12 - 0), dropped; a@9 at
    // stream time 25 likewise. Stream time is shared by the keys.
    let input = recs(&[
        ("a", 1),
        ("b", 2),
        ("a", 5),
        ("a", 12),
        ("b", 3),
        ("a", 25),
        ("a", 9),
    ]);
    assert_eq!(
        kstreams::run(&spec, false, &input),
        answer(
            &[
                ("a", 0, 10, 2),
                ("a", 10, 20, 1),
                ("a", 20, 30, 1),
                ("b", 0, 10, 1),
            ],
            2
        )
    );
}

#[test]
fn tumbling_grace_admits_late_records_until_end_plus_grace() {
    let spec = Spec::Tumbling { size: 10, grace: 5 };
    // a@9 at stream time 12: 10 > 12 - 5, counted. a@8 at stream time 15: 10 > 10 is
    // false, dropped.
    let input = recs(&[("a", 5), ("a", 12), ("a", 9), ("a", 15), ("a", 8)]);
    assert_eq!(
        kstreams::run(&spec, false, &input),
        answer(&[("a", 0, 10, 2), ("a", 10, 20, 2)], 1)
    );
}

#[test]
fn hopping_puts_a_record_in_two_windows_and_drops_per_window() {
    let spec = Spec::Hopping {
        size: 10,
        advance: 5,
        grace: 0,
    };
    let input = recs(&[
        // a@3 is in [0,10) only: time windows never start below 0 ([-5,5) is not made).
        ("a", 3),
        ("a", 7),  // [0,10) and [5,15)
        ("a", 12), // [5,15) and [10,20)
        // At stream time 12: [0,10) is closed (one drop), [5,15) still open.
        ("a", 6),
        ("b", 22), // [15,25) and [20,30)
        // At stream time 22 both of a@9's windows are closed: two drops for one record.
        ("a", 9),
    ]);
    assert_eq!(
        kstreams::run(&spec, false, &input),
        answer(
            &[
                ("a", 0, 10, 2),
                ("a", 5, 15, 3),
                ("a", 10, 20, 1),
                ("b", 15, 25, 1),
                ("b", 20, 30, 1),
            ],
            3
        )
    );
}

#[test]
fn sliding_windows_left_and_right_of_each_record() {
    let spec = Spec::Sliding { diff: 10, grace: 0 };
    let input = recs(&[
        ("a", 10), // left window [0,10]
        ("a", 15), // left [5,15] holds 10 and 15; a@10's right window [11,21] holds 15
        // 30 - 10 = 20 > 15: left [20,30] holds only 30, and a@15 gets no right window
        // ([16,26] would be empty).
        ("a", 30),
        // 19 + 10 < 30 - 0: its left window is closed, the record is dropped.
        ("a", 19),
    ]);
    assert_eq!(
        kstreams::run(&spec, false, &input),
        answer(
            &[
                ("a", 0, 10, 1),
                ("a", 5, 15, 2),
                ("a", 11, 21, 1),
                ("a", 20, 30, 1),
            ],
            1
        )
    );
}

#[test]
fn sliding_records_earlier_than_the_time_difference_share_window_zero() {
    let spec = Spec::Sliding { diff: 10, grace: 0 };
    // a@3 and a@5 would have left windows [-7,3] and [-5,5]; Kafka Streams puts both in
    // [0,10] instead. a@3's right window [4,14] holds 5 and 12, a@5's [6,16] holds 12,
    // a@12's left window [2,12] holds all three.
    let input = recs(&[("a", 3), ("a", 5), ("a", 12)]);
    assert_eq!(
        kstreams::run(&spec, false, &input),
        answer(
            &[
                ("a", 0, 10, 2),
                ("a", 2, 12, 3),
                ("a", 4, 14, 2),
                ("a", 6, 16, 1),
            ],
            0
        )
    );
}

#[test]
fn session_merges_two_sessions_bridged_by_a_third_record() {
    let spec = Spec::Session { gap: 5, grace: 10 };
    let input = recs(&[
        ("a", 0),
        ("a", 10), // 10 - 0 > 5: a second session
        ("b", 1),
        // Within 5 of both: [0,0] and [10,10] are deleted (tombstones) and [0,10] holds 3.
        ("a", 5),
        ("a", 30),
        // At stream time 30, b's session would end at 2 < 30 - 5 - 10: dropped.
        ("b", 2),
    ]);
    assert_eq!(
        kstreams::run(&spec, false, &input),
        answer(&[("a", 0, 10, 3), ("a", 30, 30, 1), ("b", 1, 1, 1)], 1)
    );
}

#[test]
fn session_closed_before_the_bridging_record_is_not_merged() {
    let spec = Spec::Session { gap: 5, grace: 0 };
    // At stream time 10 session [0,0] is closed (0 < 10 - 5 - 0), so a@5 joins only
    // [10,10]; it is not late itself (its session ends at 10).
    let input = recs(&[("a", 0), ("a", 10), ("a", 5)]);
    assert_eq!(
        kstreams::run(&spec, false, &input),
        answer(&[("a", 0, 0, 1), ("a", 5, 10, 2)], 0)
    );
}

#[test]
fn final_mode_emits_a_window_once_when_it_closes() {
    let spec = Spec::Tumbling { size: 10, grace: 5 };
    let input = recs(&[
        ("a", 1),
        ("a", 8),
        ("a", 12),
        ("a", 14),
        ("a", 9),  // late but within grace: 10 > 14 - 5
        ("a", 15), // stream time 15 >= 10 + 5: [0,10) closes
        ("a", 16),
        ("a", 24),
        ("a", 25), // 25 >= 20 + 5: [10,20) closes
    ]);
    // Up to a@9 nothing has closed: nothing is emitted, not even partial counts.
    assert_eq!(kstreams::run(&spec, true, &input[..5]), answer(&[], 0));
    assert_eq!(
        kstreams::run(&spec, true, &input[..6]),
        answer(&[("a", 0, 10, 3)], 0)
    );
    // Each window exactly once, in closing order; [20,30) is still open.
    assert_eq!(
        kstreams::run(&spec, true, &input),
        answer(&[("a", 0, 10, 3), ("a", 10, 20, 4)], 0)
    );
    // Without onWindowClose the same input gives the running counts.
    assert_eq!(
        kstreams::run(&spec, false, &input),
        answer(&[("a", 0, 10, 3), ("a", 10, 20, 4), ("a", 20, 30, 2)], 0)
    );
}

#[test]
fn final_mode_sliding_and_session_close_after_end_plus_grace() {
    // Sliding [0,10] (a@0 and a@10) and [1,11] (a@10) close at stream time 20 > 11;
    // [10,20] closes at 21 > 20.
    let sliding = Spec::Sliding { diff: 10, grace: 0 };
    let input = recs(&[("a", 0), ("a", 10), ("a", 20), ("a", 21)]);
    assert_eq!(
        kstreams::run(&sliding, true, &input),
        answer(&[("a", 0, 10, 2), ("a", 1, 11, 1), ("a", 10, 20, 2)], 0)
    );
    // Session [0,0] closes once stream time > 0 + 5 + 2: not at 7, at 8.
    let session = Spec::Session { gap: 5, grace: 2 };
    assert_eq!(
        kstreams::run(&session, true, &recs(&[("a", 0), ("a", 7)])),
        answer(&[], 0)
    );
    assert_eq!(
        kstreams::run(&session, true, &recs(&[("a", 0), ("a", 7), ("a", 8)])),
        answer(&[("a", 0, 0, 1)], 0)
    );
}

/// A Kafka Streams quirk the oracle reproduces: in onWindowClose mode the window store
/// (retention size + grace, measured from the newest window *start*) already hides a
/// window when the record that closes it jumps stream time a whole window further, so
/// it is never emitted. A longer retention shows the window.
#[test]
fn final_mode_loses_a_window_skipped_over_with_the_default_retention() {
    let spec = Spec::Tumbling { size: 10, grace: 0 };
    let input = recs(&[("a", 5), ("a", 29)]);
    assert_eq!(kstreams::run(&spec, true, &input), answer(&[], 0));
    assert_eq!(
        kstreams::run_retained(&spec, true, 1_000, &input),
        answer(&[("a", 0, 10, 1)], 0)
    );
}

#[test]
fn bad_arguments_exit_non_zero_with_a_message() {
    for args in [
        &["tumbling", "10"][..],
        &["hopping", "10", "0", "0", "changes"],
        &["sliding", "10", "0", "eventually"],
        &["weekly", "1", "2", "changes"],
        &["session", "-1", "0", "changes"],
    ] {
        let out = kstreams::command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the oracle");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("oracle: "), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
