//! Session windows (Kafka Streams' `SessionWindows`): per key, records closer than
//! `gap` to each other form one session `[first, last]`. A record joins every session
//! within `gap` of it, merging them (the merged ones are removed from the store and
//! the changelog); it is late if the merged session ends before `watermark - grace -
//! gap`, as in Kafka Streams.
//!
//! Where kfn differs on purpose: a closed session is final. Kafka Streams emits a
//! session when its end passes `stream time - grace - gap`, yet a record on time by
//! itself can still extend it for one more gap, so its "final" result can be
//! followed by a larger session. kfn closes a session one gap later, when no record
//! on time by itself can reach it; the only record that could still touch it then is
//! one late by itself that bridges it to a newer, open session, and that record
//! joins the open session only.

use super::super::spec::Spec;
use super::super::state::KeyWindows;
use super::Lateness;

pub fn add(
    spec: &Spec,
    gap: i64,
    grace: i64,
    w: &mut KeyWindows<'_>,
    ts: i64,
    values: &[f64],
    watermark: i64,
) -> Lateness {
    let close = watermark.saturating_sub(grace).saturating_sub(gap);
    let (mut start, mut end) = (ts, ts);
    let mut acc = w.empty();
    let mut merged = Vec::new();
    // Sessions of one key are disjoint: by start, latest first, their ends fall too.
    for (bounds, slot) in w.starting_until(ts.saturating_add(gap)) {
        if bounds.1 < ts.saturating_sub(gap) {
            break;
        }
        // Closed by the rule, not by when closing last ran: the same input always
        // gives the same sessions.
        if slot.closed || spec.close_at(bounds) <= watermark {
            continue;
        }
        merged.push(bounds);
        start = start.min(bounds.0);
        end = end.max(bounds.1);
        acc.merge(&slot.acc);
    }
    if end < close {
        return Some((vec![(start, end)], true));
    }
    for bounds in merged {
        w.remove(bounds);
    }
    acc.add(values);
    w.create((start, end), acc, end);
    None
}
