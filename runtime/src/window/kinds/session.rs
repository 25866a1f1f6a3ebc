//! Session windows (Kafka Streams' `SessionWindows`): per key, records closer than
//! `gap` to each other form one session `[first, last]`. A record joins every session
//! within `gap` of it, merging them (the merged ones are removed from the store and
//! the changelog); it is late if the merged session ends before `watermark - grace -
//! gap`, as in Kafka Streams.
//!
//! A session closes (is final: reported, and no longer merged into) once its
//! `end + gap + grace` reaches the watermark. That is Kafka Streams' behaviour with
//! its default store retention: a session past it (as of the records before) is no
//! longer found for merging, so a record within the gap of it starts a session of
//! its own.

use super::super::spec::Spec;
use super::super::state::KeyWindows;
use super::Lateness;

pub fn add(
    spec: &Spec,
    gap: i64,
    w: &mut KeyWindows<'_>,
    ts: i64,
    values: &[f64],
    watermark: i64,
    before: i64,
) -> Lateness {
    let close = watermark.saturating_sub(spec.grace).saturating_sub(gap);
    let (mut start, mut end) = (ts, ts);
    let mut acc = w.empty();
    let mut merged = Vec::new();
    // Sessions of one key are disjoint: by start, latest first, their ends fall too.
    for (bounds, slot) in w.starting_until(ts.saturating_add(gap)) {
        if bounds.1 < ts.saturating_sub(gap) {
            break;
        }
        // Closed by the rule, not by when closing last ran (the same input always gives
        // the same sessions), as of the watermark before this record: a record may
        // still join the session its own time closes.
        if slot.closed || spec.close_at(bounds) <= before {
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
