//! Sliding windows (Kafka Streams' `SlidingWindows`, KIP-450): windows `[s, s + d]`
//! of a fixed length `d`, one for each distinct set of records within `d` of each
//! other. For every record at `t` there is a window ending at it, `[t - d, t]`, and
//! one starting just after it, `[t + 1, t + 1 + d]`, if some record falls into it.
//! Windows are built from existing ones without keeping records: a new window takes
//! a copy of the accumulator of a window that holds exactly its records so far.
//!
//! Lateness is per window, as in Kafka Streams: a window takes a record while
//! `end >= watermark - grace`; a record is late entirely when even `[t, t + d]` would
//! be closed. Timestamps below `d` (before 1970 + `d`) are refused: their windows
//! would start before 0, which Kafka Streams handles with a special case kfn does
//! not copy.

use super::super::aggregate::Acc;
use super::super::spec::Bounds;
use super::super::state::KeyWindows;
use super::{Lateness, lateness};

pub fn add(
    d: i64,
    grace: i64,
    w: &mut KeyWindows<'_>,
    t: i64,
    values: &[f64],
    watermark: i64,
) -> Result<Lateness, String> {
    let close = watermark.saturating_sub(grace);
    if t.saturating_add(d) < close {
        return Ok(Some((vec![(t - d, t)], true)));
    }
    if t < d {
        return Err(format!(
            "timestamp {t} is earlier than the sliding window's time difference ({d} ms): \
             its windows would start before 1970"
        ));
    }
    // Scan the windows that can hold `t`, or tell what to build, latest start first.
    let mut update: Vec<Bounds> = Vec::new();
    let mut right: Option<(Acc, i64)> = None; // the latest window holding t, before t is added
    let mut left: Option<Acc> = None; // the latest window ending before t
    let mut previous: Option<i64> = None; // the latest record time before t
    let (mut left_exists, mut right_exists, mut complete) = (false, false, false);
    for ((s, e), slot) in w.starting_in(t.saturating_sub(2 * d), t + 1).rev() {
        if s == t + 1 {
            right_exists = true;
        } else if e > t {
            if right.is_none() {
                right = Some((slot.acc.clone(), slot.max_ts));
            }
            update.push((s, e));
        } else if e == t {
            left_exists = true;
            update.push((s, e));
            if slot.max_ts < t {
                previous = Some(slot.max_ts);
            } else {
                // A record at t came before: every window t needs exists already.
                complete = true;
                break;
            }
        } else {
            left = Some(slot.acc.clone());
            previous = Some(slot.max_ts);
            break;
        }
    }

    let (mut late, mut total) = (Vec::new(), 0);
    let open = |w: &KeyWindows<'_>, b: Bounds| b.1 >= close && w.get(b).is_none_or(|s| !s.closed);
    for b in update {
        total += 1;
        if open(w, b) {
            w.add(b, values, t);
        } else {
            late.push(b);
        }
    }
    if !complete {
        // The window just after the previous record, which t is the first to enter.
        if let Some(p) = previous {
            let b = (p + 1, p + 1 + d);
            if w.get(b).is_none() && b.1 >= t {
                total += 1;
                if b.1 >= close {
                    let mut acc = w.empty();
                    acc.add(values);
                    w.create(b, acc, t);
                } else {
                    late.push(b);
                }
            }
        }
        // The window ending at t: the previous records within d, and t.
        if !left_exists {
            total += 1;
            let b = (t - d, t);
            if t >= close {
                let mut acc = match (previous, left) {
                    (Some(p), Some(acc)) if t - d <= p => acc,
                    _ => w.empty(),
                };
                acc.add(values);
                w.create(b, acc, t);
            } else {
                late.push(b);
            }
        }
        // The window starting just after t: the later records within d.
        if !right_exists && let Some((acc, max_ts)) = right.filter(|(_, max_ts)| *max_ts > t) {
            w.create((t + 1, t + 1 + d), acc, max_ts);
        }
    }
    Ok(lateness(late, total))
}
