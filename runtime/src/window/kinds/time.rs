//! Tumbling and hopping windows (Kafka Streams' `TimeWindows`): fixed windows
//! `[start, start + size)` starting every `advance` (tumbling: `advance == size`). A
//! record goes into each window holding it whose `end + grace` is still ahead of the
//! watermark; it is late for the others.

use super::super::spec::time_windows;
use super::super::state::KeyWindows;
use super::{Lateness, lateness};

pub fn add(
    size: i64,
    advance: i64,
    grace: i64,
    w: &mut KeyWindows<'_>,
    ts: i64,
    values: &[f64],
    watermark: i64,
) -> Lateness {
    let (mut late, mut total) = (Vec::new(), 0);
    for bounds in time_windows(size, advance, ts) {
        total += 1;
        match w.get(bounds) {
            _ if bounds.1.saturating_add(grace) <= watermark => late.push(bounds),
            Some(slot) if slot.closed => late.push(bounds),
            Some(_) => w.add(bounds, values, ts),
            None => {
                let mut acc = w.empty();
                acc.add(values);
                w.create(bounds, acc, ts);
            }
        }
    }
    lateness(late, total)
}
